// "Forkcast: Generate": n candidates at the cursor in a QuickPick, best first, each with its score
// and how many samples agreed on it; picking one inserts it.
import * as vscode from 'vscode';
import { shapeCandidate, wantsMultiLine } from './completionShape';
import { EngineClient, EngineError } from './engineClient';
import { Log } from './log';
import { cursorContext } from './inlineProvider';
import { ForkcastSettings } from './settingsSchema';
import type { Candidate, CompleteResult } from '../engine/protocol';

export interface CandidatePick extends vscode.QuickPickItem { text: string; candidate: Candidate }

export async function generateCommand(
  engine: EngineClient,
  settings: ForkcastSettings,
  log: Log,
  shown: (items: CandidatePick[]) => void,
  onTimings: (ms: number, r: CompleteResult) => void,
): Promise<string | undefined> {
  const editor = vscode.window.activeTextEditor;
  if (!editor) {
    void vscode.window.showInformationMessage('Forkcast: open a file and place the cursor where code should go.');
    return undefined;
  }
  const doc = editor.document;
  const pos = editor.selection.active;
  const version = doc.version;
  const { prefix, suffix, lines, cursorLine } = cursorContext(doc, pos, settings.contextTokens);
  const tabSize = typeof editor.options.tabSize === 'number' ? editor.options.tabSize : 4;
  const singleLine = !wantsMultiLine(lines, cursorLine, pos.character, tabSize);
  const n = Math.max(2, settings.candidates);
  const t0 = performance.now();
  let result: CompleteResult;
  try {
    result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Forkcast: generating ${n} candidates…`, cancellable: true },
      (_p, token) =>
        engine.complete(
          { prefix, suffix, n, maxTokens: settings.maxTokens, temperature: Math.max(settings.temperature, 0.2), topP: settings.topP, singleLine, contextTokens: settings.contextTokens },
          token,
        ),
    );
  } catch (e) {
    const err = e as EngineError;
    if (err.code === 'cancelled') return undefined;
    log('error', `generate failed: ${err.message}`);
    void vscode.window.showErrorMessage(`Forkcast: ${err.message}`);
    return undefined;
  }
  const ms = performance.now() - t0;
  onTimings(ms, result);
  const lineSuffix = doc.lineAt(pos.line).text.slice(pos.character);
  const insertSpaces = editor.options.insertSpaces !== false;
  const picks: CandidatePick[] = [];
  for (const c of result.candidates) {
    const text = shapeCandidate(c.text, { singleLine, lineSuffix, linePrefix: doc.lineAt(pos.line).text.slice(0, pos.character), style: { insertSpaces, tabSize } });
    if (!text || picks.some((p) => p.text === text)) continue;
    const textLines = text.split('\n');
    picks.push({
      text,
      candidate: c,
      // "$(name)" in a label is an icon: keep code such as "$(pwd)" as text.
      label: textLines.find((l) => l.trim() !== '')!.trim().replace(/\$\(/g, '$\u200b('),
      description: `score ${c.score.toFixed(2)} · ${c.count}/${n} agree`,
      detail: [textLines.length > 1 ? `${textLines.length} lines` : '', `${c.tokens} tokens`, `logprob ${c.logprob.toFixed(2)}`, ...c.reasons].filter(Boolean).join(' · '),
    });
  }
  log('info', `generate: ${picks.length} distinct of ${result.candidates.length} candidates (n=${n}) in ${ms.toFixed(0)} ms`);
  if (!picks.length) {
    void vscode.window.showInformationMessage('Forkcast: the model produced nothing useful here.');
    return undefined;
  }
  const qp = vscode.window.showQuickPick(picks, {
    title: `Forkcast: ${picks.length} candidates, best first (${ms.toFixed(0)} ms)`,
    placeHolder: 'Pick one to insert it at the cursor',
    matchOnDetail: true,
  });
  shown(picks);
  const pick = await qp;
  if (!pick) return undefined;
  // Insert where the command was run if the document did not change meanwhile, else at the cursor.
  const at = doc.version === version ? pos : editor.selection.active;
  await editor.edit((b) => b.insert(at, pick.text));
  log('info', `generate: inserted candidate ${picks.indexOf(pick) + 1} (${pick.text.length} chars)`);
  return pick.text;
}
