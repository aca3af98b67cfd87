#!/usr/bin/env bash
# Builds what the editor tests run: the product bundles (dist/ via scripts/bundle.mjs) and the test
# bundles in out/test/ (git-ignored): suite.js (extension-host suite, mocha external), host.js and
# ui.js (runners, Node 20), electron.js (@vscode/test-electron launcher for npm run test:vscode).
set -euo pipefail
cd "$(dirname "$0")/.."
node scripts/bundle.mjs
mkdir -p out/test
common=(--bundle --platform=node --target=node20 --format=cjs --sourcemap --log-level=warning)
npx esbuild test/e2e/suite/index.ts "${common[@]}" --external:vscode --external:mocha --outfile=out/test/suite.js
npx esbuild test/e2e/host.ts "${common[@]}" --external:playwright-core --outfile=out/test/host.js
npx esbuild test/e2e/ui.ts "${common[@]}" --external:playwright-core --outfile=out/test/ui.js
npx esbuild test/e2e/electron.ts "${common[@]}" --external:@vscode/test-electron --external:playwright-core --outfile=out/test/electron.js
