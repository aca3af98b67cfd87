// npm run test:vscode: the same extension-host suite under @vscode/test-electron, for machines that
// can download VS Code (this one cannot: CI uses test/e2e/host.ts on code-server instead).
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTests } from '@vscode/test-electron';
import { e2eModels, ROOT } from './common';

async function main() {
  const scratch = mkdtempSync(join(tmpdir(), 'forkcast-electron-e2e-'));
  const ws = join(scratch, 'workspace');
  mkdirSync(ws);
  writeFileSync(join(ws, '.forkcast-e2e.json'), JSON.stringify(e2eModels(scratch), null, 2));
  writeFileSync(join(ws, 'sample.py'), '');
  await runTests({
    version: process.env.VSCODE_VERSION ?? 'stable',
    extensionDevelopmentPath: ROOT,
    extensionTestsPath: join(ROOT, 'out', 'test', 'suite.js'),
    launchArgs: [ws, '--disable-extensions', '--disable-workspace-trust', '--user-data-dir', join(scratch, 'user-data')],
  });
}

main().catch((e) => { console.error(`test:vscode failed: ${e instanceof Error ? e.message : e}`); process.exit(1); });
