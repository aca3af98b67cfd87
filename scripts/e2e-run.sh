#!/usr/bin/env bash
# Runs both editor suites against a real VS Code (code-server from npm, installed by
# scripts/e2e-setup.sh) with the real engine and a real model:
#   1. the extension-host suite (test/e2e/suite) in VS Code's server, Chromium as the window;
#   2. the UI test (test/e2e/ui.ts): the packaged .vsix installed into code-server, driven by Chromium.
# Needs the native addon built (npm run build:native). Exit code: non-zero if either suite failed.
# Env: E2E_DIR (install dir, default .e2e), FORKCAST_E2E_MODEL / FORKCAST_E2E_MODEL2 (models),
#      E2E_ONLY=host|ui (run one suite), FORKCAST_UPDATE_SCREENSHOT=1 (refresh media/ghost-text.png).
set -uo pipefail
cd "$(dirname "$0")/.."
t0=$(date +%s)
if [ ! -f native/build/Release/forkcast.node ] && [ ! -f dist/native/forkcast.node ]; then
  echo "e2e: native/build/Release/forkcast.node missing: run npm run build:native first" >&2
  exit 2
fi
bash scripts/e2e-build.sh || exit 2
rc=0
run_host=1; run_ui=1
case "${E2E_ONLY:-}" in host) run_ui=0 ;; ui) run_host=0 ;; esac
if [ $run_host = 1 ]; then
  echo "== extension-host suite (code-server's VS Code server + Chromium) =="
  timeout 900 node out/test/host.js || rc=1
fi
if [ $run_ui = 1 ]; then
  echo "== UI end-to-end (.vsix in code-server, driven by Chromium) =="
  vsix="${E2E_DIR:-.e2e}/forkcast-e2e.vsix"
  mkdir -p "$(dirname "$vsix")"
  if npx vsce package --no-dependencies --allow-missing-repository --no-rewrite-relative-links -o "$vsix" >"$vsix.log" 2>&1; then
    timeout 900 node out/test/ui.js "$vsix" || rc=1
  else
    echo "e2e: vsce package failed:"; tail -20 "$vsix.log"; rc=1
  fi
fi
echo "e2e: done in $(( $(date +%s) - t0 )) s, exit $rc"
exit $rc
