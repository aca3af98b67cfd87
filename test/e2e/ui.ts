/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The user's view, end to end: the packaged .vsix installed into a real VS Code (code-server from
// npm), driven through headless Chromium like a person would: type in a Python file, see ghost
// text, Tab, Alt+], Forkcast: Generate, Forkcast: Select Model, and the engine killed mid-request.
// Usage: node out/test/ui.js [path/to/forkcast.vsix]   (scripts/e2e-run.sh builds and packages first)
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Page } from 'playwright-core';
import { e2eModels, E2E_DIR, freePort, installed, killGroup, launchChromium, ROOT, sleep, startGroup, waitHttp } from './common';

/** What this test promises a user: ghost text within this long after the last keystroke on this
 *  2-core machine (debounce 120 ms included). The measured times are printed. */
const GHOST_TEXT_BUDGET_MS = Number(process.env.FORKCAST_GHOST_BUDGET_MS ?? 3000);

const results: Array<[string, string]> = [];
let failures = 0;
async function step(name: string, fn: () => Promise<string | void>) {
  const t0 = Date.now();
  try {
    const note = (await fn()) ?? '';
    results.push([`ok   ${name}`, `${Date.now() - t0} ms ${note}`]);
    console.log(`ok   ${name} (${Date.now() - t0} ms) ${note}`);
  } catch (e) {
    failures++;
    results.push([`FAIL ${name}`, (e as Error).message]);
    console.log(`FAIL ${name}: ${(e as Error).stack ?? e}`);
    throw e;
  }
}

async function until<T>(what: string, ms: number, fn: () => Promise<T | undefined | false>, stepMs = 25): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

const ghostText = (page: Page) =>
  page.evaluate(() => {
    const parts = [...document.querySelectorAll('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text')].map((e) => e.textContent ?? '');
    return parts.join('').replace(/\u00a0/g, ' ');
  });

const statusText = (page: Page) => page.evaluate(() => {
  const el = [...document.querySelectorAll('.statusbar-item')].find((e) => (e.textContent ?? '').includes('Forkcast'));
  return el?.textContent?.trim() ?? '';
});

async function runCommand(page: Page, title: string) {
  await page.keyboard.press('F1');
  await page.waitForSelector('.quick-input-widget input', { state: 'visible' });
  await page.keyboard.type(title);
  await until(`command "${title}" in the palette`, 10_000, async () => (await page.locator('.quick-input-list .monaco-list-row', { hasText: title }).count()) > 0);
  await page.keyboard.press('Enter');
}

/** Pids of engine processes started by the extension installed in extDir. */
function enginePids(extDir: string): number[] {
  const out = execFileSync('ps', ['-ww', '-eo', 'pid=,args='], { encoding: 'utf8' });
  return out.split('\n').filter((l) => l.includes(extDir) && l.includes('cli.js serve')).map((l) => Number(l.trim().split(/\s+/)[0]));
}

function forkcastLog(ud: string): string {
  const files = (readdirSync(join(ud, 'logs'), { recursive: true }) as string[]).filter((f) => f.endsWith('Forkcast.log'));
  return files.map((f) => readFileSync(join(ud, 'logs', f), 'utf8')).join('\n');
}

async function main() {
  const t0 = Date.now();
  const vsix = process.argv[2] ?? join(ROOT, 'forkcast.vsix');
  if (!existsSync(vsix)) throw new Error(`${vsix} missing: run npm run package first`);
  installed();
  const cs = join(E2E_DIR, 'code-server');
  const scratch = mkdtempSync(join(tmpdir(), 'forkcast-ui-e2e-'));
  const ws = join(scratch, 'workspace');
  const ud = join(scratch, 'user-data');
  const ext = join(scratch, 'extensions');
  mkdirSync(ws, { recursive: true });
  mkdirSync(join(ud, 'User'), { recursive: true });
  const models = e2eModels(scratch);
  const usesBundled = models.primary.startsWith(join(ROOT, 'models') + '/');
  const otherFolder = join(scratch, 'more-models');
  mkdirSync(otherFolder);
  const second = join(otherFolder, `second-${basename(models.secondary)}`);
  copyFileSync(models.secondary, second);
  // A broken model file in the same folder: picking it must fail with a message, not break anything.
  const broken = join(otherFolder, 'broken-model.gguf');
  copyFileSync(models.bad, broken);
  const file = join(ws, 'shapes.py');
  writeFileSync(file, 'import math\n\n\ndef area(r):\n    return math.pi * r * r\n\n\n');
  const settingsFile = join(ud, 'User', 'settings.json');
  writeFileSync(
    settingsFile,
    JSON.stringify({
      // The bundled model when this build has one: then the .vsix's own models/ folder is what runs.
      'forkcast.model': usesBundled ? '' : models.primary,
      'forkcast.modelFolders': [otherFolder],
      'forkcast.candidates': 4,
      'forkcast.maxTokens': 24,
      'forkcast.temperature': 0.9,
      'workbench.startupEditor': 'none',
      'workbench.colorTheme': 'Default Dark Modern',
      'workbench.tips.enabled': false,
      'workbench.secondarySideBar.defaultVisibility': 'hidden',
      'workbench.editor.useModal': 'off', // settings.json in a tab, not a modal over the editor
      'security.workspace.trust.enabled': false,
      'editor.inlineSuggest.enabled': true,
      'editor.quickSuggestions': { other: 'off', comments: 'off', strings: 'off' },
      'editor.suggestOnTriggerCharacters': false,
      'editor.fontSize': 15,
      'editor.minimap.enabled': false,
      'extensions.autoUpdate': false,
      'extensions.autoCheckUpdates': false,
      'extensions.ignoreRecommendations': true,
      'telemetry.telemetryLevel': 'off',
      'chat.disableAIFeatures': true,
      'files.autoSave': 'off',
    }),
  );
  // An Ollama store laid out as Ollama writes it (manifest → sha256 blob), holding a real model:
  // Select Model must list it by its Ollama name and load the blob. OLLAMA_MODELS points at it.
  const ollamaStore = join(scratch, 'ollama-models');
  const blobHex = createHash('sha256').update(readFileSync(models.secondary)).digest('hex');
  const ollamaBlob = join(ollamaStore, 'blobs', `sha256-${blobHex}`);
  mkdirSync(join(ollamaStore, 'blobs'), { recursive: true });
  copyFileSync(models.secondary, ollamaBlob);
  mkdirSync(join(ollamaStore, 'manifests', 'registry.ollama.ai', 'library', 'e2e-second'), { recursive: true });
  writeFileSync(
    join(ollamaStore, 'manifests', 'registry.ollama.ai', 'library', 'e2e-second', 'latest'),
    JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.docker.distribution.manifest.v2+json', layers: [{ mediaType: 'application/vnd.ollama.image.model', digest: `sha256:${blobHex}`, size: statSync(ollamaBlob).size }] }),
  );
  const env = { ...process.env, XDG_CONFIG_HOME_FOR_CODE_SERVER: join(scratch, 'xdg'), OLLAMA_MODELS: ollamaStore };

  await step('the .vsix installs into code-server', async () => {
    const out = execFileSync(cs, ['--config', '/dev/null', '--user-data-dir', ud, '--extensions-dir', ext, '--install-extension', vsix], { env, encoding: 'utf8' });
    if (!/successfully installed/i.test(out)) throw new Error(out);
    const dir = readdirSync(ext).find((d) => d.startsWith('forkcast.forkcast-'));
    if (!dir) throw new Error(`not in ${ext}: ${readdirSync(ext)}`);
    for (const f of ['dist/extension.js', 'dist/cli.js', 'dist/native/forkcast.node']) if (!existsSync(join(ext, dir, f))) throw new Error(`${f} missing from the installed extension`);
    return `(${dir})`;
  });

  const port = await freePort();
  const server = startGroup(
    cs,
    ['--config', '/dev/null', '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust', '--user-data-dir', ud, '--extensions-dir', ext],
    env,
    join(scratch, 'code-server.log'),
  );
  const ctx = await waitHttp(`http://127.0.0.1:${port}/healthz`, 60_000).then(() => launchChromium(join(scratch, 'chromium')), (e) => { killGroup(server); throw e; });
  const page = ctx.pages()[0] ?? (await ctx.newPage());
  const shot = (name: string) => page.screenshot({ path: join(scratch, `${name}.png`) }).catch(() => undefined);
  try {
    await step('VS Code opens and Forkcast reports ready with the model', async () => {
      await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(ws)}`);
      await page.waitForSelector('.monaco-workbench', { timeout: 90_000 });
      const s = await until('the Forkcast status bar item to say ready', 120_000, async () => {
        const t = await statusText(page);
        return t.includes('Forkcast:') && !/starting|loading|error|disabled/.test(t) ? t : undefined;
      }, 200);
      if (usesBundled) {
        const from = await until('the log to name the bundled model file', 10_000, async () => /model loaded: .* from (\S+)/.exec(forkcastLog(ud))?.[1], 200);
        if (!from.startsWith(ext)) throw new Error(`the bundled model was loaded from ${from}, not from the installed extension`);
        return `(status "${s}"; bundled model from the .vsix: ${from.slice(ext.length + 1)})`;
      }
      return `(status "${s}")`;
    });

    const openSample = async () => {
      await page.keyboard.press('Control+P');
      await page.waitForSelector('.quick-input-widget input', { state: 'visible' });
      await page.keyboard.type('shapes.py');
      await sleep(400);
      await page.keyboard.press('Enter');
      await page.waitForSelector('.monaco-editor .view-lines');
      await sleep(200);
      await page.click('.monaco-editor .view-lines');
    };
    /** Rewrites settings.json the way a user would: in VS Code's settings JSON editor, then back to shapes.py. */
    const editUserSettings = async (obj: object) => {
      await runCommand(page, 'Preferences: Open User Settings (JSON)');
      // It opens as a tab or (VS Code 1.139) a modal editor: wait until the focused editor shows it.
      await until('settings.json to open', 10_000, async () =>
        page.evaluate(() => (document.activeElement?.closest('.monaco-editor')?.textContent ?? '').includes('forkcast.model')));
      await sleep(300);
      await page.keyboard.press('Control+A');
      // One line, like a paste: no auto-closing or auto-indent gets in the way.
      await page.keyboard.insertText(JSON.stringify(obj));
      // The editor still auto-closes the first '{' and '"': drop whatever follows the cursor.
      await page.keyboard.press('Shift+Control+End');
      await page.keyboard.press('Delete');
      await page.keyboard.press('Control+S');
      const want = (o: Record<string, unknown>) => JSON.stringify(Object.entries(o).filter(([k]) => k.startsWith('forkcast.')));
      await until('settings.json saved', 10_000, async () => { try { return want(JSON.parse(readFileSync(settingsFile, 'utf8'))) === want(obj as Record<string, unknown>); } catch { return false; } });
      await openSample(); // settings.json stays open in its tab
    };

    await openSample();
    await page.keyboard.press('Control+End');

    let shown = '';
    const typeAndWaitGhost = async (text: string) => {
      await page.keyboard.type(text, { delay: 40 });
      const tKey = Date.now();
      const g = await until('ghost text', 30_000, async () => (await ghostText(page)) || undefined, 10);
      return { ghost: g, ms: Date.now() - tKey };
    };

    const latencies: number[] = [];
    await step(`typing in a Python file shows ghost text within ${GHOST_TEXT_BUDGET_MS} ms`, async () => {
      const r = await typeAndWaitGhost('def perimeter(r):\n');
      shown = r.ghost;
      latencies.push(r.ms);
      await sleep(150);
      await page.screenshot({ path: join(scratch, 'ghost-text.png') });
      // media/ghost-text.png (shown in the README) is refreshed only on request, so CI leaves the tree clean.
      if (process.env.FORKCAST_UPDATE_SCREENSHOT) copyFileSync(join(scratch, 'ghost-text.png'), join(ROOT, 'media', 'ghost-text.png'));
      if (r.ms > GHOST_TEXT_BUDGET_MS) throw new Error(`ghost text took ${r.ms} ms`);
      return `(${r.ms} ms after the last keystroke: ${JSON.stringify(shown.slice(0, 60))})`;
    });

    await step('Tab accepts the ghost text and the document changes', async () => {
      const before = readFileSync(file, 'utf8');
      await page.keyboard.press('Tab');
      await sleep(100);
      await page.keyboard.press('Control+S');
      const after = await until('the saved file to change', 10_000, async () => {
        const t = readFileSync(file, 'utf8');
        return t !== before ? t : undefined;
      });
      const firstLine = shown.split('\n').find((l) => l.trim())!.trim();
      if (!after.includes(firstLine)) throw new Error(`saved file lacks the accepted text ${JSON.stringify(firstLine)}:\n${after}`);
      if (!after.includes('def perimeter(r):\n')) throw new Error('typed text lost');
      return `(inserted ${JSON.stringify(firstLine.slice(0, 50))})`;
    });

    await step('Alt+] shows a different candidate', async () => {
      for (let i = 0; i < 6; i++) {
        await page.keyboard.press('Control+End');
        await page.keyboard.press('Enter');
        await page.keyboard.press('Shift+Tab');
        const r = await typeAndWaitGhost(`v${i} = `);
        latencies.push(r.ms);
        await page.keyboard.press('Alt+]');
        const next = await until('another candidate', 3000, async () => {
          const g = await ghostText(page);
          return g && g !== r.ghost ? g : undefined;
        }).catch(() => undefined);
        await page.keyboard.press('Escape');
        if (next) return `(${JSON.stringify(r.ghost.slice(0, 30))} → ${JSON.stringify(next.slice(0, 30))})`;
      }
      throw new Error('Alt+] never changed the ghost text in 6 prompts');
    });

    await step('typing what the ghost text shows keeps it on screen: no flicker, no new request', async () => {
      let r: { ghost: string; ms: number } | undefined;
      // A suggestion that starts with a visible character and is long enough to type into.
      for (let i = 0; i < 6; i++) {
        await page.keyboard.press('Control+End');
        await page.keyboard.press('Enter');
        await page.keyboard.press('Shift+Tab');
        r = await typeAndWaitGhost(`def volume${i}(r):\n`);
        latencies.push(r.ms);
        if (/^\S/.test(r.ghost) && r.ghost.length >= 6) break;
        await page.keyboard.press('Escape');
        r = undefined;
      }
      if (!r) throw new Error('no suggestion to type through in 6 prompts');
      const ghost = r!.ghost;
      const requestsBefore = (forkcastLog(ud).match(/ shown of /g) ?? []).length;
      // Count every moment the ghost text is missing while the user types through it.
      await page.evaluate(() => {
        const w = window as unknown as { forkcastGhostGone: number; forkcastObs: MutationObserver };
        w.forkcastGhostGone = 0;
        const editor = document.querySelector('.monaco-editor .view-lines')!;
        w.forkcastObs = new MutationObserver(() => { if (!document.querySelector('.monaco-editor .ghost-text-decoration, .monaco-editor .ghost-text')) w.forkcastGhostGone++; });
        w.forkcastObs.observe(editor, { subtree: true, childList: true, characterData: true });
      });
      const typed = ghost.slice(0, 4);
      const seen: string[] = [];
      for (const ch of typed) {
        await page.keyboard.type(ch);
        await sleep(60);
        seen.push(await ghostText(page));
      }
      const gone = await page.evaluate(() => { const w = window as unknown as { forkcastGhostGone: number; forkcastObs: MutationObserver }; w.forkcastObs.disconnect(); return w.forkcastGhostGone; });
      await sleep(300);
      const requestsAfter = (forkcastLog(ud).match(/ shown of /g) ?? []).length;
      await page.keyboard.press('Escape');
      for (let i = 0; i < seen.length; i++) if (seen[i] !== ghost.slice(i + 1)) throw new Error(`after typing ${JSON.stringify(typed.slice(0, i + 1))} the ghost text was ${JSON.stringify(seen[i])}, expected ${JSON.stringify(ghost.slice(i + 1))}`);
      if (gone) throw new Error(`the ghost text disappeared ${gone} times while typing through it`);
      if (requestsAfter !== requestsBefore) throw new Error(`${requestsAfter - requestsBefore} engine requests while typing through`);
      return `(typed ${JSON.stringify(typed)} of ${JSON.stringify(ghost.slice(0, 30))}; ghost text stayed, 0 requests)`;
    });

    await step('Forkcast: Generate lists candidates with scores; Enter inserts one', async () => {
      await page.keyboard.press('Control+End');
      await page.keyboard.press('Enter');
      await page.keyboard.type('total = ', { delay: 30 });
      await page.keyboard.press('Control+S');
      const before = readFileSync(file, 'utf8');
      await runCommand(page, 'Forkcast: Generate');
      const rows = await until('the candidates quick pick', 60_000, async () => {
        const n = await page.locator('.quick-input-list .monaco-list-row', { hasText: 'agree' }).count();
        return n > 0 ? n : undefined;
      });
      const firstRow = (await page.locator('.quick-input-list .monaco-list-row').first().textContent()) ?? '';
      await shot('generate');
      await page.keyboard.press('Enter');
      await sleep(200);
      await page.keyboard.press('Control+S');
      await until('the pick to be inserted', 10_000, async () => readFileSync(file, 'utf8') !== before);
      return `(${rows} candidates; first: ${JSON.stringify(firstRow.slice(0, 70))})`;
    });

    await step('clicking the status bar item shows the Forkcast log with requests and timings', async () => {
      await page.locator('.statusbar-item', { hasText: 'Forkcast' }).first().click();
      const text = await until('the output panel with the Forkcast log', 15_000, async () => {
        const t = ((await page.locator('.part.panel').textContent().catch(() => '')) ?? '').replace(/\u00a0/g, ' ');
        // The output view renders only its visible lines: the latest requests and timings.
        return / shown of .* in \d+ ms/.test(t) && /generate: /.test(t) ? t : undefined;
      }, 200);
      const line = / shown of [^\n]*?tok in \d+ ms\)/.exec(text)?.[0] ?? '';
      await page.click('.monaco-editor .view-lines');
      return `(${JSON.stringify(line.slice(0, 120))})`;
    });

    await step('Forkcast: Select Model lists folder and Ollama models and switches to the Ollama one (engine reloads)', async () => {
      const before = await statusText(page);
      await runCommand(page, 'Forkcast: Select Model');
      const rows = page.locator('.quick-input-list .monaco-list-row');
      await until('the model list', 20_000, async () => (await rows.filter({ hasText: 'e2e-second:latest' }).count()) > 0);
      const listed = ((await page.locator('.quick-input-list').textContent()) ?? '').replace(/\s+/g, ' ');
      for (const want of [basename(second), 'Ollama', 'e2e-second:latest']) if (!listed.includes(want)) throw new Error(`"${want}" not in the list: ${listed.slice(0, 300)}`);
      await page.keyboard.type('e2e-second:latest');
      await sleep(300);
      await page.keyboard.press('Enter');
      const loaded = await until('the log to show the Ollama blob loaded', 60_000, async () => forkcastLog(ud).includes(`from ${ollamaBlob}`), 200);
      const after = await until('the status bar to show the new model ready', 30_000, async () => {
        const t = await statusText(page);
        return t !== before && !/loading|starting|error/.test(t) ? t : undefined;
      });
      const settings = JSON.parse(readFileSync(join(ud, 'User', 'settings.json'), 'utf8'));
      if (settings['forkcast.model'] !== ollamaBlob) throw new Error(`forkcast.model = ${settings['forkcast.model']}`);
      // A completion from the new model.
      await page.click('.monaco-editor .view-lines');
      await page.keyboard.press('Control+End');
      await page.keyboard.press('Enter');
      const r = await typeAndWaitGhost('w = ');
      latencies.push(r.ms);
      await page.keyboard.press('Escape');
      return `(status "${before}" → "${after}"; loaded ${loaded ? `blobs/sha256-${blobHex.slice(0, 12)}…` : ''}; ghost text in ${r.ms} ms)`;
    });

    await step('Select Model with a broken file: an error names the file and the problem; the previous model keeps working', async () => {
      const before = await statusText(page);
      await runCommand(page, 'Forkcast: Select Model');
      await until('the model list', 20_000, async () => (await page.locator('.quick-input-list .monaco-list-row', { hasText: 'broken-model.gguf' }).count()) > 0);
      await page.keyboard.type('broken-model.gguf');
      await sleep(300);
      await page.keyboard.press('Enter');
      const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'could not load the model' });
      await until('the error notification', 30_000, async () => (await toast.count()) > 0, 100);
      const text = ((await toast.first().textContent()) ?? '').replace(/\s+/g, ' ');
      if (!text.includes('broken-model.gguf')) throw new Error(`the error does not name the file: ${text}`);
      if (!/Still using/.test(text)) throw new Error(`the error does not say what keeps working: ${text}`);
      await shot('bad-model');
      await page.keyboard.press('Escape');
      await page.click('.monaco-editor .view-lines');
      await page.keyboard.press('Control+End');
      await page.keyboard.press('Enter');
      const r = await typeAndWaitGhost('z = ');
      const after = await statusText(page);
      const modelIn = (t: string) => t.replace(/^.*?Forkcast[^:]*: /, '').replace(/ \d+ ms · .*$/, '');
      if (modelIn(after) !== modelIn(before) || /error|loading/.test(after)) throw new Error(`status changed: "${before}" → "${after}"`);
      await page.keyboard.press('Escape');
      return `(${JSON.stringify(text.slice(0, 160))}; next ghost text in ${r.ms} ms)`;
    });

    await step('killing the engine mid-request leaves the editor working; the next completion arrives', async () => {
      const [pid] = enginePids(ext);
      if (!pid) throw new Error('no engine process found');
      // A request long enough to be caught in flight: 64 candidates of up to 1024 tokens, at a
      // multi-line position (the body of a new function), so only EOS or the length ends them.
      // The first model (the bundled code model when there is one) rarely stops early, so the
      // request surely outlives the time it takes the browser to see "busy".
      const fast = JSON.parse(readFileSync(settingsFile, 'utf8'));
      const loads = () => (forkcastLog(ud).match(/model loaded: /g) ?? []).length;
      const loadsBefore = loads();
      await editUserSettings({ ...fast, 'forkcast.model': usesBundled ? '' : models.primary, 'forkcast.candidates': 64, 'forkcast.maxTokens': 1024 });
      await until('the first model to be loaded again', 60_000, async () => loads() > loadsBefore, 100);
      await until('Forkcast ready', 30_000, async () => !/starting|loading|error/.test(await statusText(page)) || undefined, 100);
      await page.keyboard.press('Control+End');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Shift+Tab');
      // Type the line, then Enter: requests made mid-typing are superseded by the next key; the
      // one after Enter (body of a new function) is long and nothing cancels it.
      await page.keyboard.type('def slow(count):', { delay: 40 });
      await page.keyboard.press('Enter');
      await sleep(60); // the superseded request is gone; the new one waits out the 120 ms debounce
      // Kill the moment the status bar says a request is in flight.
      await page.exposeFunction('forkcastKillEngine', () => { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } });
      await page.evaluate(() => {
        const check = () => {
          const el = [...document.querySelectorAll('.statusbar-item')].find((e) => (e.textContent ?? '').includes('Forkcast busy'));
          if (el) { obs.disconnect(); (window as unknown as { forkcastKillEngine: () => void }).forkcastKillEngine(); }
        };
        const obs = new MutationObserver(check);
        obs.observe(document.querySelector('.part.statusbar')!, { subtree: true, childList: true, characterData: true, attributes: true });
        check();
      });
      await until('the engine to be killed', 20_000, async () => !enginePids(ext).includes(pid) || undefined, 20);
      // The editor keeps working while the engine is down.
      await page.keyboard.type('return len(', { delay: 30 });
      await page.keyboard.press('Control+S');
      await until('typing to reach the file', 10_000, async () => readFileSync(file, 'utf8').includes('    return len('));
      await editUserSettings(fast);
      const midRequest = /stopped during the request|PendingResponseRejected|connection got disposed/.test(forkcastLog(ud));
      if (!midRequest) throw new Error('the log does not show a request cut off by the kill');
      await until('a new engine process', 30_000, async () => enginePids(ext).some((p) => p !== pid) || undefined, 100);
      await until('Forkcast ready again', 60_000, async () => !/starting|loading|error/.test(await statusText(page)) || undefined, 100);
      const toast = await page.locator('.notifications-toasts', { hasText: 'completion engine stopped' }).count();
      await page.keyboard.press('Control+End');
      await page.keyboard.press('Enter');
      const r = await typeAndWaitGhost('again = ');
      return `(engine pid ${pid} killed mid-request; user told: ${toast > 0}; next ghost text in ${r.ms} ms: ${JSON.stringify(r.ghost.slice(0, 30))})`;
    });

    latencies.sort((a, b) => a - b);
    console.log(`ghost text latency after the last keystroke (debounce 120 ms included): ${latencies.join(', ')} ms; median ${latencies[latencies.length >> 1]} ms`);
  } catch {
    await shot('failure');
  } finally {
    await ctx.close().catch(() => undefined);
    killGroup(server);
  }
  console.log(`\nUI e2e: ${results.length - failures} passed, ${failures} failed in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${failures || process.env.FORKCAST_E2E_KEEP ? `screenshots and logs in ${scratch}` : 'scratch removed (FORKCAST_E2E_KEEP=1 keeps it)'}`);
  if (failures) {
    const log = (() => { try { return forkcastLog(ud); } catch { return ''; } })();
    console.log(`--- Forkcast output (tail) ---\n${log.split('\n').slice(-50).join('\n')}`);
  }
  // Scratch (~50 MB: the installed extension, browser profile) is kept only when something failed.
  if (!failures && !process.env.FORKCAST_E2E_KEEP) rmSync(scratch, { recursive: true, force: true });
  process.exit(failures ? 1 : 0);
}

main().catch((e) => { console.error(e); process.exit(1); });
