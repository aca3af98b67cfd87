// The text windows around the cursor sent to the engine. The engine tokenizes them, builds the FIM
// prompt and cuts it to the token budget keeping the nearest whole lines (engine/prompt.ts); here we
// only cap by characters and lines so a 10 MB file never crosses the pipe. No 'vscode' import.

export interface Windows { prefix: string; suffix: string }

/** Generous character caps: a token is rarely shorter than ~2.5 characters of code, so
 *  contextTokens * 4 characters always holds more than the engine will keep. */
export function windowCaps(contextTokens: number) {
  return {
    prefixChars: Math.max(1024, contextTokens * 4),
    suffixChars: Math.max(256, contextTokens * 2),
    prefixLines: Math.max(32, Math.ceil(contextTokens / 2)),
    suffixLines: Math.max(8, Math.ceil(contextTokens / 6)),
  };
}

/** prefix = text before the cursor, suffix = text after it, each cut at whole lines to the caps
 *  (the cursor's own line is always kept whole on both sides). */
export function cutWindows(text: string, offset: number, contextTokens: number): Windows {
  const caps = windowCaps(contextTokens);
  const before = text.slice(0, offset);
  const after = text.slice(offset);
  return { prefix: tailLines(before, caps.prefixChars, caps.prefixLines), suffix: headLines(after, caps.suffixChars, caps.suffixLines) };
}

function tailLines(s: string, maxChars: number, maxLines: number): string {
  // start = beginning of the kept text; the partial line holding the cursor always counts.
  let start = s.lastIndexOf('\n') + 1;
  let lines = 1;
  while (start > 0 && lines < maxLines) {
    const prev = s.lastIndexOf('\n', start - 2) + 1; // beginning of the line above
    if (s.length - prev > maxChars) break;
    start = prev;
    lines++;
  }
  return s.slice(start);
}

function headLines(s: string, maxChars: number, maxLines: number): string {
  let end = 0;
  let lines = 0;
  while (end < s.length) {
    const nl = s.indexOf('\n', end);
    const next = nl < 0 ? s.length : nl + 1;
    if (lines > 0 && (next > maxChars || lines >= maxLines)) break;
    end = next;
    lines++;
  }
  return s.slice(0, end);
}
