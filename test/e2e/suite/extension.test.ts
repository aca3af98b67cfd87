// Forkcast inside a real VS Code extension host, with the real engine process and a real model.
// Run by test/e2e/host.ts (code-server's VS Code server + headless Chromium as the window) or by
// @vscode/test-electron (npm run test:vscode). The workspace holds `.forkcast-e2e.json` naming the
// models to use (written by the runner): { primary, secondary, bad } absolute paths.
import * as assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import * as vscode from 'vscode';
import type { ForkcastApi } from '../../../extension/extension';
import type { CompletionEvent } from '../../../extension/inlineProvider';

interface E2EConfig { primary: string; secondary: string; bad: string }

function waitFor<T>(event: vscode.Event<T>, pred: (v: T) => boolean, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { sub.dispose(); reject(new Error(`timed out after ${ms} ms waiting for ${what}`)); }, ms);
    const sub = event((v) => {
      if (!pred(v)) return;
      clearTimeout(timer);
      sub.dispose();
      resolve(v);
    });
  });
}

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string, stepMs = 100) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

const cfg = () => vscode.workspace.getConfiguration('forkcast');

export function defineTests() {
  let api: ForkcastApi;
  let conf: E2EConfig;
  let editor: vscode.TextEditor;

  /** Puts `text` in the editor (whole document), cursor at the end, and asks VS Code for inline
   *  suggestions; resolves with what our provider answered for that position (from the engine or cache). */
  async function triggerAt(text: string, source?: CompletionEvent['source']): Promise<CompletionEvent> {
    const doc = editor.document;
    await editor.edit((b) => b.replace(new vscode.Range(0, 0, doc.lineCount, 0), text));
    const end = doc.positionAt(doc.getText().length);
    editor.selection = new vscode.Selection(end, end);
    const got = waitFor(api.onDidComplete, (e) => e.line === end.line && e.character === end.character && (!source || e.source === source), 60_000, `completion at ${end.line}:${end.character}`);
    await vscode.commands.executeCommand('editor.action.inlineSuggest.trigger');
    return got;
  }

  /** Accepts the shown ghost text (Tab's command) once VS Code has rendered it. */
  async function commitGhost(before: string): Promise<string> {
    await until(async () => {
      await vscode.commands.executeCommand('editor.action.inlineSuggest.commit');
      return editor.document.getText() !== before;
    }, 10_000, 'the inline suggestion to be accepted', 150);
    return editor.document.getText();
  }

  suiteSetup(async function () {
    this.timeout(180_000);
    const folder = vscode.workspace.workspaceFolders?.[0];
    assert.ok(folder, 'the runner opens a workspace folder');
    conf = JSON.parse(readFileSync(join(folder.uri.fsPath, '.forkcast-e2e.json'), 'utf8'));
    const ext = vscode.extensions.getExtension<ForkcastApi>('forkcast.forkcast');
    assert.ok(ext, 'the extension under test is installed');
    api = await ext.activate();
    // Quick completions for the test: short answers, no debounce wait.
    await cfg().update('maxTokens', 24, vscode.ConfigurationTarget.Global);
    await cfg().update('candidates', 4, vscode.ConfigurationTarget.Global);
    await cfg().update('temperature', 0.9, vscode.ConfigurationTarget.Global);
    if (api.engine.model?.path !== conf.primary) {
      const loaded = waitFor(api.onDidLoadModel, (m) => m.path === conf.primary, 120_000, 'the primary model to load');
      await cfg().update('model', conf.primary, vscode.ConfigurationTarget.Global);
      await loaded;
    }
    const doc = await vscode.workspace.openTextDocument(join(folder.uri.fsPath, 'sample.py'));
    editor = await vscode.window.showTextDocument(doc);
  });

  suite('Forkcast in VS Code', () => {
    test('the engine runs as a child process with a model loaded', () => {
      assert.ok(api.engine.pid && api.engine.pid !== process.pid, 'engine pid');
      assert.equal(api.engine.model?.path, conf.primary);
      assert.ok(['ready', 'busy'].includes(api.engine.currentState), api.engine.currentState);
      assert.ok(api.engine.engineInfo?.capabilities.attention.includes('bifurcated'));
    });

    test('VS Code asks the provider and gets ranked candidates; Tab accepts the first', async () => {
      const before = 'def greet(name):\n    print("Hello, " + name)\n\ngreet("World")\nx = '
      const ev = await triggerAt(before);
      assert.equal(ev.source, 'engine');
      assert.ok(ev.items.length >= 1, 'at least one candidate');
      assert.ok(ev.result && ev.result.candidates.length >= 1);
      // Best first: the engine's ranking order is kept.
      const scores = ev.result!.candidates.map((c) => c.score);
      assert.deepEqual([...scores].sort((a, b) => b - a), scores);
      // Single line here (text before the cursor on its line).
      for (const t of ev.items) assert.ok(!t.includes('\n'), JSON.stringify(t));
      const after = await commitGhost(before);
      assert.ok(ev.items.some((t) => after === before + t), `document became ${JSON.stringify(after.slice(before.length))}; candidates ${JSON.stringify(ev.items)}`);
    });

    test('Alt+] (showNext) moves to another candidate', async () => {
      // Several tries with fresh prompts: a tiny model can agree with itself on one prompt.
      let done = false;
      for (let i = 0; i < 6 && !done; i++) {
        const before = `n${i} = ${i}\nvalue = `;
        const ev = await triggerAt(before);
        if (ev.items.length < 2) continue;
        await until(() => true, 300, 'render');
        await vscode.commands.executeCommand('editor.action.inlineSuggest.showNext');
        const after = await commitGhost(before);
        const inserted = after.slice(before.length);
        assert.ok(ev.items.includes(inserted), `inserted ${JSON.stringify(inserted)} is a candidate`);
        assert.notEqual(inserted, ev.items[0], 'showNext moved away from the best candidate');
        done = true;
      }
      assert.ok(done, 'some prompt gave two distinct candidates');
    });

    test('typing what the suggestion shows reuses it without a new request', async () => {
      const before = 'import os\nprint(os.getcwd())\ny = '
      const ev = await triggerAt(before);
      const first = ev.items[0];
      assert.ok(first.length >= 2, 'a candidate to type through');
      const typed = first.slice(0, 1);
      const again = triggerAt(before + typed, 'cache');
      const hit = await again;
      assert.equal(hit.items[0], first.slice(1));
    });

    test('multi-line completions after a block opener use the document\'s indentation (tabs here)', async () => {
      editor.options = { insertSpaces: false, tabSize: 4 };
      await cfg().update('maxTokens', 64, vscode.ConfigurationTarget.Global);
      try {
        let multi: string | undefined;
        for (let i = 0; i < 6 && !multi; i++) {
          api.provider.clearCache();
          const ev = await triggerAt(`class Stack${i}:\n\tdef __init__(self):\n\t\tself.items = []\n\n\tdef push(self, x):\n\t\t`, 'engine');
          multi = ev.items.find((t) => t.includes('\n'));
        }
        assert.ok(multi, 'a multi-line candidate at the body of a new method');
        for (const line of multi.split('\n').slice(1)) {
          if (line.trim() === '') continue;
          assert.match(line, /^\t*\S/, `no space indentation in ${JSON.stringify(multi)}`);
        }
      } finally {
        editor.options = { insertSpaces: true, tabSize: 4 };
        await cfg().update('maxTokens', 24, vscode.ConfigurationTarget.Global);
      }
    });

    test('with the suggest widget open, ghost text extends the highlighted suggestion', async () => {
      const text = 'def total_sum(values):\n    return sum(values)\n\n\nresult = tot';
      await editor.edit((b) => b.replace(new vscode.Range(0, 0, editor.document.lineCount, 0), text));
      const doc = editor.document;
      const end = doc.positionAt(text.length);
      const range = new vscode.Range(end.line, end.character - 3, end.line, end.character); // "tot"
      // VS Code's own trigger after the edit may supersede a call (newest wins): ask until one answers.
      let items: vscode.InlineCompletionItem[] | undefined;
      for (let i = 0; i < 5 && !items?.length; i++) {
        await new Promise((r) => setTimeout(r, 300));
        api.provider.clearCache();
        items = await api.provider.provideInlineCompletionItems(
          doc, end,
          { triggerKind: vscode.InlineCompletionTriggerKind.Invoke, selectedCompletionInfo: { range, text: 'total_sum' } },
          new vscode.CancellationTokenSource().token,
        );
      }
      assert.ok(items && items.length >= 1, 'candidates while the widget is open');
      for (const it of items) {
        assert.ok(String(it.insertText).startsWith('total_sum'), JSON.stringify(it.insertText));
        assert.ok(it.range?.isEqual(range), 'replaces the suggestion\'s range');
      }
    });

    test('typing on: the next request reuses the previous prompt KV in the engine', async () => {
      const base = 'def mean(values):\n    total = sum(values)\n    return total / len(values)\n\n\nresult = mean([1, 2])\n'
      api.provider.clearCache();
      const a = await triggerAt(base, 'engine');
      api.provider.clearCache(); // force a request, not the typing-through cache
      const b = await triggerAt(base + 'print(res', 'engine');
      const ta = a.result!.timings;
      const tb = b.result!.timings;
      console.log(`KV reuse: first prompt ${ta.prompt_tokens} tokens; next ${tb.prompt_tokens} tokens, ${tb.reused_tokens} reused, prefill ${ta.prefill_ms.toFixed(1)} → ${tb.prefill_ms.toFixed(1)} ms`);
      assert.ok(tb.prompt_tokens > ta.prompt_tokens);
      // Everything up to the cursor comes from the KV; only the fill-in-the-middle tail after the
      // prefix (at most <fim_suffix>, <fim_middle> and a boundary token) is evaluated again.
      assert.ok(tb.reused_tokens >= ta.prompt_tokens - 3, `reused ${tb.reused_tokens} of ${ta.prompt_tokens}`);
    });

    test('Forkcast: Generate lists candidates with score and agreement, and inserts the pick', async () => {
      const before = 'def square(v):\n    return v * v\n\nz = '
      await editor.edit((b) => b.replace(new vscode.Range(0, 0, editor.document.lineCount, 0), before));
      const end = editor.document.positionAt(before.length);
      editor.selection = new vscode.Selection(end, end);
      const shown = waitFor(api.onDidShowCandidates, () => true, 60_000, 'the Generate quick pick');
      const run = vscode.commands.executeCommand<string | undefined>('forkcast.generate');
      const picks = await shown;
      assert.ok(picks.length >= 1);
      for (const p of picks) assert.match(p.description ?? '', /^score -?\d+\.\d\d · \d+\/\d+ agree$/);
      // Enter in the quick pick: repeated until it lands (the widget renders after the event).
      let settled = false;
      void Promise.resolve(run).finally(() => (settled = true));
      await until(async () => {
        if (!settled) await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
        return settled;
      }, 20_000, 'the pick to be accepted', 300);
      const inserted = await run;
      assert.equal(inserted, picks[0].text);
      assert.equal(editor.document.getText(), before + picks[0].text);
    });

    test('changing forkcast.model reloads the engine; a bad file is refused and the previous model keeps working', async () => {
      const loaded = waitFor(api.onDidLoadModel, (m) => m.path === conf.secondary, 120_000, 'the secondary model');
      await cfg().update('model', conf.secondary, vscode.ConfigurationTarget.Global);
      const info = await loaded;
      assert.equal(api.engine.model?.path, conf.secondary);
      const ev = await triggerAt('for i in range(3):\n    print(i)\nw = ');
      assert.equal(ev.source, 'engine');
      assert.equal(ev.result?.timings.prompt_tokens !== undefined, true);

      const failed = waitFor(api.onDidFailModel, () => true, 60_000, 'the bad-model error');
      await cfg().update('model', conf.bad, vscode.ConfigurationTarget.Global);
      const msg = await failed;
      assert.ok(msg.includes(basename(conf.bad)), `error names the file: ${msg}`);
      assert.ok(msg.includes(`Still using ${info.name || basename(info.path)}`), msg);
      assert.equal(api.engine.model?.path, conf.secondary, 'previous model still loaded');
      const ev2 = await triggerAt('for j in range(4):\n    print(j)\nq = ');
      assert.equal(ev2.source, 'engine', 'completions still work');

      const back = waitFor(api.onDidLoadModel, (m) => m.path === conf.primary, 120_000, 'the primary model again');
      await cfg().update('model', conf.primary, vscode.ConfigurationTarget.Global);
      await back;
    });

    test('killing the engine mid-request fails that request cleanly; the editor keeps working and the next completion arrives', async () => {
      const pid = api.engine.pid!;
      const cts = new vscode.CancellationTokenSource();
      const t0 = Date.now();
      const pending = api.engine.complete({ prefix: 'Once upon a time', n: 16, maxTokens: 1000, temperature: 1 }, cts.token);
      await until(() => api.engine.currentState === 'busy', 5000, 'the request to be in flight', 5);
      process.kill(pid, 'SIGKILL');
      await assert.rejects(pending, (e: { code?: unknown }) => e.code === 'dead');
      assert.ok(Date.now() - t0 < 5000, 'the pending request failed at once, not after a timeout');
      // The editor is fine meanwhile.
      await editor.edit((b) => b.insert(new vscode.Position(0, 0), '# still editable\n'));
      assert.ok(editor.document.getText().startsWith('# still editable\n'));
      await until(() => api.engine.pid !== undefined && api.engine.pid !== pid && api.engine.currentState === 'ready', 60_000, 'the engine to restart');
      const ev = await triggerAt('def cube(v):\n    return v * v * v\n\nk = ');
      assert.equal(ev.source, 'engine');
      assert.ok(ev.items.length >= 1, 'the next completion arrives');
    });

    test('a keystroke cancels the running request in the engine ($/cancelRequest)', async () => {
      const cts = new vscode.CancellationTokenSource();
      const pending = api.engine.complete({ prefix: 'def f():\n', n: 16, maxTokens: 1000, temperature: 1 }, cts.token);
      await until(() => api.engine.currentState === 'busy', 5000, 'the request to be in flight', 5);
      const t0 = Date.now();
      cts.cancel();
      await assert.rejects(pending, (e: { code?: unknown }) => e.code === 'cancelled');
      // The engine stopped that work: the next request is answered without waiting for 16 x 1000 tokens.
      const r = await api.engine.complete({ prefix: 'x = ', n: 1, maxTokens: 4, temperature: 0 });
      assert.ok(r.candidates.length >= 0);
      console.log(`cancel → next answer in ${Date.now() - t0} ms`);
    });

    test('absurd settings are clamped, never passed on', async () => {
      await cfg().update('candidates', 100000, vscode.ConfigurationTarget.Global);
      await cfg().update('debounceMs', -5, vscode.ConfigurationTarget.Global);
      await until(() => api.settings().candidates === 64, 5000, 'clamped candidates');
      assert.equal(api.settings().debounceMs, 0);
      await cfg().update('candidates', 4, vscode.ConfigurationTarget.Global);
      await cfg().update('debounceMs', undefined, vscode.ConfigurationTarget.Global);
    });

    test('Restricted Mode: a workspace cannot point the engine at a file (forkcast.model from the workspace is ignored)', async function () {
      if (vscode.workspace.isTrusted) return this.skip(); // the code-server runner opens the folder untrusted
      // What a cloned repository would carry: .vscode/settings.json naming a file of its choosing.
      const dir = join(vscode.workspace.workspaceFolders![0].uri.fsPath, '.vscode');
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'settings.json'), JSON.stringify({ 'forkcast.model': conf.bad, 'forkcast.modelFolders': ['/'], 'forkcast.candidates': 3 }));
      try {
        // The harmless setting from the same file arrives: the file was read.
        await until(() => api.settings().candidates === 3, 20_000, 'the workspace settings file to be read');
        assert.equal(api.settings().model, conf.primary, 'the user setting wins');
        assert.deepEqual(api.settings().modelFolders, [], 'workspace model folders ignored');
        await new Promise((r) => setTimeout(r, 500));
        assert.equal(api.engine.model?.path, conf.primary, 'the engine never loaded the workspace file');
      } finally {
        rmSync(dir, { recursive: true, force: true });
        await until(() => api.settings().candidates === 4, 20_000, 'the workspace settings to go away');
      }
    });

    test('Toggle Inline Completions turns ghost text off and on', async () => {
      await vscode.commands.executeCommand('forkcast.toggle');
      await until(() => api.settings().enable === false, 5000, 'disabled');
      const doc = editor.document;
      const r = await api.provider.provideInlineCompletionItems(doc, doc.positionAt(doc.getText().length), { triggerKind: vscode.InlineCompletionTriggerKind.Invoke, selectedCompletionInfo: undefined }, new vscode.CancellationTokenSource().token);
      assert.equal(r, undefined);
      await vscode.commands.executeCommand('forkcast.toggle');
      await until(() => api.settings().enable === true, 5000, 'enabled');
    });
  });
}
