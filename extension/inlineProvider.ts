// Ghost text: one InlineCompletionItemProvider for every language.
// Path of a keystroke: cache (exact prompt or typing-through) → debounce → newest request wins
// (the previous one is cancelled, which reaches the engine as $/cancelRequest) → the engine's ranked
// candidates, shaped to the line, all returned best first so Alt+] / Alt+[ cycle through them.
import * as vscode from 'vscode';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { CompletionCache } from './completionCache';
import { shapeCandidate, wantsMultiLine } from './completionShape';
import { EngineClient, EngineError } from './engineClient';
import { Log } from './log';
import { cutWindows, windowCaps } from './promptWindows';
import { ForkcastSettings } from './settingsSchema';
import type { CompleteResult } from '../engine/protocol';

export interface CompletionEvent {
  uri: string;
  line: number;
  character: number;
  items: string[];
  source: 'engine' | 'cache';
  latencyMs: number;
  result?: CompleteResult;
}

/** Lines around the cursor the single/multi-line rule looks at (it needs the block, not the file). */
const RULE_LINES = 60;

export class InlineProvider implements vscode.InlineCompletionItemProvider, vscode.Disposable {
  private readonly cache = new CompletionCache(64);
  private current?: CancellationTokenSource;
  private seq = 0;
  private readonly completed = new vscode.EventEmitter<CompletionEvent>();
  readonly onDidComplete = this.completed.event;

  constructor(
    private readonly engine: EngineClient,
    private readonly settings: () => ForkcastSettings,
    private readonly log: Log,
    private readonly onTimings: (ms: number, r: CompleteResult) => void,
  ) {}

  clearCache() { this.cache.clear(); }

  async provideInlineCompletionItems(
    doc: vscode.TextDocument,
    pos: vscode.Position,
    ctx: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[] | undefined> {
    const id = ++this.seq;
    const s = this.settings();
    const skip = (why: string) => { this.log('info', `#${id} no completion: ${why}`); return undefined; };
    if (!s.enable) return skip('disabled (forkcast.enable)');
    const t0 = performance.now();
    // With the suggest widget open, VS Code shows ghost text only if it extends the highlighted
    // suggestion: complete as if that suggestion were accepted, and replace its range.
    const sel = ctx.selectedCompletionInfo;
    const start = sel ? sel.range.start : pos;
    const lead = sel ? sel.text : '';
    const range = sel ? sel.range : new vscode.Range(pos, pos);
    const around = cursorContext(doc, start, s.contextTokens);
    const prefix = around.prefix + lead;
    const suffix = sel ? cursorContext(doc, sel.range.end, s.contextTokens).suffix : around.suffix;
    const { lines, cursorLine } = around;
    const lineText = doc.lineAt(pos.line).text;
    const lineSuffix = lineText.slice(range.end.character);
    const linePrefix = lineText.slice(0, start.character) + lead;
    const itemsOf = (texts: string[]) => texts.map((t) => new vscode.InlineCompletionItem(lead + t, range));

    const hit = this.cache.get(prefix, suffix);
    if (hit) {
      const items = hit.candidates.map((c) => c.text);
      this.log('info', `#${id} ${hit.typed ? `typing-through (${hit.typed} chars typed)` : 'cache hit'}: ${items.length} candidates`);
      this.completed.fire({ uri: doc.uri.toString(), line: pos.line, character: pos.character, items, source: 'cache', latencyMs: performance.now() - t0 });
      return itemsOf(items);
    }

    if (ctx.triggerKind === vscode.InlineCompletionTriggerKind.Automatic && s.debounceMs > 0) {
      if (await sleep(s.debounceMs, token)) return skip('typing went on (debounce)');
    }
    if (token.isCancellationRequested) return skip('cancelled before the request');

    // Newest wins: the engine should not keep working for a cursor position that is gone.
    this.current?.cancel();
    const cts = new CancellationTokenSource();
    this.current = cts;
    const sub = token.onCancellationRequested(() => cts.cancel());

    const editor = vscode.window.visibleTextEditors.find((e) => e.document === doc);
    const tabSize = typeof editor?.options.tabSize === 'number' ? editor.options.tabSize : 4;
    const insertSpaces = editor ? editor.options.insertSpaces !== false : true;
    const singleLine = sel ? true : !wantsMultiLine(lines, cursorLine, pos.character, tabSize);

    const tReq = performance.now();
    let result: CompleteResult;
    try {
      result = await this.engine.complete(
        { prefix, suffix, n: s.candidates, maxTokens: s.maxTokens, temperature: s.temperature, topP: s.topP, singleLine, contextTokens: s.contextTokens },
        cts.token,
        15_000,
      );
    } catch (e) {
      const err = e as EngineError;
      if (err.code === 'cancelled') return skip('cancelled (newer keystroke)');
      this.log(err.code === 'dead' ? 'warn' : 'error', `#${id} request failed: ${err.message}`);
      return undefined;
    } finally {
      sub.dispose();
      if (this.current === cts) this.current = undefined;
      cts.dispose();
    }
    const ms = performance.now() - tReq;
    this.onTimings(ms, result);

    const seen = new Set<string>();
    const shaped = [];
    for (const c of result.candidates) {
      const t = shapeCandidate(c.text, { singleLine, lineSuffix, linePrefix, style: { insertSpaces, tabSize } });
      if (!t || seen.has(t)) continue;
      seen.add(t);
      shaped.push({ text: t, score: c.score, count: c.count });
    }
    this.cache.put(prefix, suffix, shaped);
    const tm = result.timings;
    this.log(
      'info',
      `#${id} ${doc.languageId} ${pos.line + 1}:${pos.character + 1} ${singleLine ? 'single-line' : 'multi-line'}${sel ? ` after suggestion ${JSON.stringify(lead)}` : ''} n=${s.candidates}: ` +
        `${shaped.length} shown of ${result.candidates.length} in ${ms.toFixed(0)} ms ` +
        `(prompt ${tm.prompt_tokens} tok, ${tm.reused_tokens} reused, prefill ${tm.prefill_ms.toFixed(0)} ms; ` +
        `${tm.generated_tokens} tok in ${tm.decode_ms.toFixed(0)} ms)`,
    );
    const items = shaped.map((c) => c.text);
    this.completed.fire({ uri: doc.uri.toString(), line: pos.line, character: pos.character, items, source: 'engine', latencyMs: performance.now() - t0, result });
    if (token.isCancellationRequested) return skip('cancelled after the answer (kept in the cache)');
    return itemsOf(items);
  }

  dispose() {
    this.current?.cancel();
    this.completed.dispose();
  }
}

/**
 * Prefix/suffix windows and the lines around the cursor, read from a range of lines rather than the
 * whole document (a keystroke in a 10 MB file must not copy 10 MB).
 */
export function cursorContext(doc: vscode.TextDocument, pos: vscode.Position, contextTokens: number) {
  const caps = windowCaps(contextTokens);
  const first = Math.max(0, pos.line - Math.max(caps.prefixLines, RULE_LINES));
  const last = Math.min(doc.lineCount - 1, pos.line + Math.max(caps.suffixLines, RULE_LINES));
  const range = new vscode.Range(first, 0, last, doc.lineAt(last).text.length);
  const text = doc.getText(range);
  const offset = doc.offsetAt(pos) - doc.offsetAt(range.start);
  const { prefix, suffix } = cutWindows(text, offset, contextTokens);
  const lines: string[] = [];
  for (let i = Math.max(first, pos.line - RULE_LINES); i <= Math.min(last, pos.line + RULE_LINES); i++) lines.push(doc.lineAt(i).text);
  return { prefix, suffix, lines, cursorLine: pos.line - Math.max(first, pos.line - RULE_LINES) };
}

/** Resolves true if cancelled during the wait. */
function sleep(ms: number, token: vscode.CancellationToken): Promise<boolean> {
  return new Promise((resolve) => {
    const t = setTimeout(() => { sub.dispose(); resolve(false); }, ms);
    const sub = token.onCancellationRequested(() => { clearTimeout(t); sub.dispose(); resolve(true); });
  });
}
