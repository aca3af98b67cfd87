// Pure rules that decide the shape of a completion at the cursor and fit the engine's text to the
// document: single or multi line, indentation, overlap with the text after the cursor.
// No 'vscode' import (vitest loads it).

/** A line ends with something that opens a block: Python/YAML ':', C-family '{' '(' '[', '=>' and
 *  keyword openers of Ruby/Lua/shell (do, then, else, begin, in) — a trailing comment is ignored. */
const BLOCK_OPENER = /(?:[:{([]|=>|\b(?:do|then|else|begin|in))\s*$/;

export function indentOf(line: string): string {
  return /^[ \t]*/.exec(line)![0];
}

function stripLineComment(line: string): string {
  // Good enough for the opener check: drop '# ...' and '// ...' that follow code.
  return line.replace(/\s(?:#|\/\/).*$/, '');
}

/** Width of an indentation string in columns (tabs to the next multiple of tabSize). */
export function indentWidth(indent: string, tabSize: number): number {
  let w = 0;
  for (const ch of indent) w = ch === '\t' ? w + tabSize - (w % tabSize) : w + 1;
  return w;
}

/**
 * The single/multi-line rule (README: "When is a completion multi-line?").
 * Multi-line when the cursor's line is blank (only indentation before and nothing after the cursor) and
 *   (a) the nearest non-blank line above ends with a block opener (`def f():`, `if (x) {`), or
 *   (b) the cursor ends a new block: the nearest non-blank line above is indented like the cursor or
 *       deeper, and the next non-blank line below (if any) is indented less than the cursor — the body
 *       the user is writing has nothing after it yet.
 * Single line otherwise (in the middle of a line, or on a blank line between statements of one block).
 */
export function wantsMultiLine(lines: readonly string[], line: number, character: number, tabSize = 4): boolean {
  const cur = lines[line] ?? '';
  if (cur.trim() !== '') return false; // text on the line: finish this line only
  if (character < cur.length && cur.slice(character).trim() !== '') return false;
  let above = line - 1;
  while (above >= 0 && lines[above].trim() === '') above--;
  if (above < 0) return false; // empty file start: one line at a time
  const aboveText = stripLineComment(lines[above]).trimEnd();
  if (BLOCK_OPENER.test(aboveText)) return true;
  const curIndent = indentWidth(cur.slice(0, Math.min(character, cur.length)), tabSize);
  if (curIndent === 0) return false; // top level: not inside a block
  if (indentWidth(indentOf(lines[above]), tabSize) < curIndent) return false;
  let below = line + 1;
  while (below < lines.length && lines[below].trim() === '') below++;
  if (below >= lines.length) return true;
  return indentWidth(indentOf(lines[below]), tabSize) < curIndent;
}

export interface IndentStyle { insertSpaces: boolean; tabSize: number }

/**
 * Fits a multi-line completion to the document's indentation: the lines after the first keep their
 * depth relative to the cursor line's but use the document's unit (tabs or spaces of tabSize).
 * The engine's text was written against the prefix, so its indentation is already absolute; only the
 * unit can differ (a model trained on spaces writing into a tab-indented file).
 */
export function fitIndentation(text: string, style: IndentStyle): string {
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const ind = indentOf(lines[i]);
    if (ind === '') continue;
    const w = indentWidth(ind, style.tabSize);
    const unit = style.insertSpaces ? ' '.repeat(w) : '\t'.repeat(Math.floor(w / style.tabSize)) + ' '.repeat(w % style.tabSize);
    lines[i] = unit + lines[i].slice(ind.length);
  }
  return lines.join('\n');
}

/**
 * Turns one engine candidate into the text inserted at the cursor:
 * - single-line: up to the first newline;
 * - no second space after a space the user typed in the middle of a line;
 * - trailing whitespace dropped (it would only move the cursor), trailing blank lines too;
 * - the part that the rest of the line already holds is not inserted twice (`foo(|)` + `x)` → `x`).
 * Returns '' when nothing useful is left.
 */
export function shapeCandidate(raw: string, opts: { singleLine: boolean; lineSuffix: string; linePrefix?: string; style?: IndentStyle }): string {
  let t = raw.replace(/\r\n?/g, '\n');
  if (opts.singleLine) t = t.split('\n')[0];
  // "x = " + " y": a model whose tokens carry their leading space repeats the space the user typed.
  if (opts.linePrefix && /[ \t]$/.test(opts.linePrefix) && opts.linePrefix.trim() !== '') t = t.replace(/^[ \t]+/, '');
  t = t.replace(/\s+$/, '');
  const rest = opts.lineSuffix.trim();
  if (rest && !t.includes('\n') && t.endsWith(rest)) t = t.slice(0, t.length - rest.length).replace(/\s+$/, '');
  if (!opts.singleLine && opts.style) t = fitIndentation(t, opts.style);
  return t.trim() === '' ? '' : t;
}
