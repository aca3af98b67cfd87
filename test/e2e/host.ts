// Runs the extension-host suite (test/e2e/suite → out/test/suite.js) inside a real VS Code:
// code-server's bundled VS Code server, with headless Chromium as the window (the server starts an
// extension host only when a workbench connects). The suite's exit code comes back through
// codeAutomationExit. Usage: node out/test/host.js (after scripts/e2e-build.sh).
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { e2eModels, freePort, installed, killGroup, launchChromium, ROOT, startGroup, waitHttp } from './common';

async function main() {
  const t0 = Date.now();
  const { node24, codeServer } = installed();
  const scratch = mkdtempSync(join(tmpdir(), 'forkcast-host-e2e-'));
  const ws = join(scratch, 'workspace');
  mkdirSync(ws);
  const models = e2eModels(scratch);
  // The extension under test is a snapshot of the build (package.json, dist/, models/), so a rebuild
  // while the suite runs cannot change the native library or model file under the running engine.
  const extDir = join(scratch, 'extension');
  mkdirSync(extDir);
  copyFileSync(join(ROOT, 'package.json'), join(extDir, 'package.json'));
  cpSync(join(ROOT, 'dist'), join(extDir, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.map') });
  if (existsSync(join(ROOT, 'models'))) cpSync(join(ROOT, 'models'), join(extDir, 'models'), { recursive: true, filter: (src) => !/\.json$/.test(src) });
  const primary = models.primary.startsWith(join(ROOT, 'models') + '/') ? join(extDir, 'models', basename(models.primary)) : models.primary;
  Object.assign(models, { primary });
  writeFileSync(join(ws, '.forkcast-e2e.json'), JSON.stringify(models, null, 2));
  writeFileSync(join(ws, 'sample.py'), '');
  // Machine settings of the server: quiet workbench. (The model is set by the suite in user settings.)
  const sd = join(scratch, 'server-data');
  mkdirSync(join(sd, 'data', 'Machine'), { recursive: true });
  writeFileSync(join(sd, 'data', 'Machine', 'settings.json'), JSON.stringify({ 'extensions.autoUpdate': false, 'extensions.autoCheckUpdates': false, 'telemetry.telemetryLevel': 'off' }));
  const port = await freePort();
  const serverLog = join(scratch, 'server.log');
  const server = startGroup(
    node24,
    [join(codeServer, 'lib', 'vscode', 'out', 'server-main.js'), '--host', '127.0.0.1', '--port', String(port), '--without-connection-token', '--accept-server-license-terms',
      '--enable-smoke-test-driver', '--disable-telemetry', '--server-data-dir', sd, '--extensions-dir', join(scratch, 'extensions')],
    { ...process.env, VSCODE_AGENT_FOLDER: sd },
    serverLog,
  );
  let exitCode = 1;
  const ctx = await (async () => {
    await waitHttp(`http://127.0.0.1:${port}/`, 60_000);
    return launchChromium(join(scratch, 'chromium'));
  })().catch((e) => { killGroup(server); throw e; });
  try {
    const page = ctx.pages()[0] ?? (await ctx.newPage());
    const remote = (p: string) => `vscode-remote://127.0.0.1:${port}${p}`;
    const payload = [['extensionDevelopmentPath', remote(extDir)], ['extensionTestsPath', remote(join(ROOT, 'out', 'test', 'suite.js'))], ['skipWelcome', 'true']];
    const done = new Promise<number>((resolve) => void page.exposeFunction('codeAutomationExit', (code: number) => resolve(code)));
    page.on('console', (msg) => {
      const t = msg.text();
      const m = /\[(suite|pass|FAIL|done)\][\s\S]*|(cancel →|KV reuse:)[\s\S]*/.exec(t);
      if (m) console.log(`  ${m[0]}`);
    });
    const url = `http://127.0.0.1:${port}/?folder=${encodeURIComponent(remote(ws))}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
    await page.goto(url);
    const limit = Number(process.env.FORKCAST_E2E_TIMEOUT_MS ?? 600_000);
    exitCode = await Promise.race([done, new Promise<number>((r) => setTimeout(() => r(124), limit))]);
    if (exitCode === 124) console.log(`extension-host suite did not finish within ${limit} ms`);
    await page.screenshot({ path: join(scratch, 'host-final.png') }).catch(() => undefined);
  } finally {
    await ctx.close().catch(() => undefined);
    killGroup(server);
  }
  console.log(`extension-host suite: exit ${exitCode} in ${((Date.now() - t0) / 1000).toFixed(1)} s (scratch ${scratch})`);
  if (exitCode !== 0) {
    console.log('--- server log (tail) ---');
    console.log(readFileSync(serverLog, 'utf8').split('\n').slice(-40).join('\n'));
  }
  // The Forkcast output channel as the extension host wrote it (requests, timings, engine events).
  for (const f of (readdirSync(sd, { recursive: true }) as string[]).filter((f) => f.endsWith('Forkcast.log'))) {
    const text = readFileSync(join(sd, f), 'utf8');
    writeFileSync(join(scratch, 'forkcast-output.log'), text);
    if (exitCode !== 0 || process.env.FORKCAST_E2E_VERBOSE) console.log(`--- ${f} (tail) ---\n${text.split('\n').slice(-60).join('\n')}`);
  }
  if (exitCode === 0 && !process.env.FORKCAST_E2E_KEEP) rmSync(scratch, { recursive: true, force: true });
  process.exit(exitCode);
}

main().catch((e) => { console.error(e); process.exit(1); });
