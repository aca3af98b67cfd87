// Reranking of the n sampled candidates of one request: merge identical texts, score, explain.
//
// score = mean token logprob                       (the model's confidence, length-normalised)
//       + AGREEMENT_WEIGHT * ln(count)              (samples that agree: a strong signal that
//                                                    the text is what the model means)
//       - penalties                                 (what users hate, one reason string each)
// Filtered candidates (empty, or a plain copy of the text after the cursor) stay in the list so
// callers can see why, but carry `filtered: true` and FILTER_PENALTY so they always rank last.
//
// Each rule is a small function of (candidate, context) so it can be tested on its own.
import type { Candidate } from './protocol';

export const AGREEMENT_WEIGHT = 0.5;
export const FILTER_PENALTY = 100;
export const SUFFIX_LINE_PENALTY = 1;
export const BRACKET_PENALTY = 1; // per bracket made unbalanced, at most 3
export const REPETITION_PENALTY = 2;
export const PARTIAL_LINE_PENALTY = 1;
export const REPEAT_PREVIOUS_PENALTY = 1;

export interface Sample {
  text: string;
  /** Generated token ids that make up `text` (the terminating EOS/stop token excluded). */
  ids: number[];
  /** Raw-model logprob of every sampled token, the terminating one included. */
  logprobs: number[];
  finish: Candidate['finish'];
}

export interface RerankContext {
  prefix: string;
  suffix: string;
  singleLine: boolean;
}

export interface Ranked extends Candidate {
  filtered: boolean;
  /** The member of the merged group shown (highest mean logprob), with its ids and logprobs. */
  ids: number[];
  logprobs: number[];
  /** Indices (into the input samples) merged into this candidate. */
  samples: number[];
}

/** Whitespace normalisation for merging: trailing spaces and blank tail lines dropped, runs of
 * spaces/tabs inside a line collapsed; leading indentation and line structure kept (they change
 * what the code means in Python, YAML, ...). */
export function normalizeWhitespace(text: string): string {
  const lines = text.split(/\r?\n/).map((l) => {
    const indent = /^[ \t]*/.exec(l)![0];
    return indent + l.slice(indent.length).replace(/[ \t]+/g, ' ').trimEnd();
  });
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines.join('\n');
}

export function meanLogprob(logprobs: number[]): number {
  if (!logprobs.length) return 0;
  return logprobs.reduce((a, b) => a + b, 0) / logprobs.length;
}

// ---- rules ----------------------------------------------------------------------------------

export interface Verdict { penalty: number; reason: string; filter?: boolean }

export function ruleEmpty(text: string): Verdict | null {
  return text.trim() === '' ? { penalty: FILTER_PENALTY, reason: 'empty or whitespace only', filter: true } : null;
}

/** The model copied what already follows the cursor: inserting it would duplicate code. */
export function ruleRepeatsSuffix(text: string, suffix: string): Verdict | null {
  const cand = normalizeWhitespace(text).trim();
  if (!cand) return null;
  const after = normalizeWhitespace(suffix).trimStart();
  if (after.startsWith(cand)) return { penalty: FILTER_PENALTY, reason: 'repeats the text after the cursor', filter: true };
  const nextLine = after.split('\n').map((l) => l.trim()).find((l) => l !== '');
  const lastLine = cand.split('\n').map((l) => l.trim()).filter((l) => l !== '').pop();
  if (nextLine && nextLine.length >= 3 && lastLine === nextLine) {
    return { penalty: SUFFIX_LINE_PENALTY, reason: 'ends with the line that follows the cursor' };
  }
  return null;
}

/** Small models often copy the line above the cursor; a whole line equal to it is a wasted suggestion. */
export function ruleRepeatsPreviousLine(text: string, prefix: string): Verdict | null {
  const lines = prefix.split('\n');
  lines.pop(); // the cursor's own (partial) line
  const prev = lines.map((l) => l.trim()).filter((l) => l !== '').pop();
  if (!prev || prev.length < 6) return null;
  const first = text.split('\n').map((l) => l.trim()).find((l) => l !== '');
  const atLineStart = /(^|\n)[ \t]*$/.test(prefix);
  if (atLineStart && first === prev) return { penalty: REPEAT_PREVIOUS_PENALTY, reason: 'repeats the line before the cursor' };
  return null;
}

const OPEN = '([{', CLOSE = ')]}';

/** Bracket state: open brackets, closers that matched nothing, openers skipped by a closer of
 * another kind (in "( [ )" the "[" is never closed). */
export interface BracketState { stack: string[]; stray: number; skipped: number }

export function scanBrackets(text: string, state: BracketState = { stack: [], stray: 0, skipped: 0 }): BracketState {
  const stack = state.stack.slice();
  let { stray, skipped } = state;
  for (const ch of text) {
    if (OPEN.includes(ch)) { stack.push(ch); continue; }
    const k = CLOSE.indexOf(ch);
    if (k < 0) continue;
    const at = stack.lastIndexOf(OPEN[k]);
    if (at < 0) { stray++; continue; }
    skipped += stack.length - 1 - at;
    stack.length = at;
  }
  return { stack, stray, skipped };
}

/**
 * Brackets judged relative to the surrounding code: prefix+candidate+suffix must not be less
 * balanced than prefix+suffix (the code around the cursor may well be unbalanced on its own,
 * for example a prefix cut mid-function). Each kind of damage counts on its own: more stray
 * closers, more skipped openers, more brackets left open. `afterPrefix` = scanBrackets(prefix).
 */
export function ruleBrackets(text: string, afterPrefix: BracketState, suffix: string): Verdict | null {
  const a = scanBrackets(suffix, afterPrefix);
  const b = scanBrackets(suffix, scanBrackets(text, afterPrefix));
  const worse = Math.max(0, b.stray - a.stray) + Math.max(0, b.skipped - a.skipped) + Math.max(0, b.stack.length - a.stack.length);
  if (worse <= 0) return null;
  return { penalty: BRACKET_PENALTY * Math.min(worse, 3), reason: `unbalanced brackets (+${worse})` };
}

/** Degenerate repetition: a line repeated, or a short run of words looping. */
export function ruleRepetition(text: string): Verdict | null {
  // Lines: the same substantive line three times, or twice in a row.
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => /[\w]/.test(l) && l.length >= 4);
  const seen = new Map<string, number>();
  for (let i = 0; i < lines.length; i++) {
    const c = (seen.get(lines[i]) ?? 0) + 1;
    seen.set(lines[i], c);
    if (c >= 3 || (i > 0 && lines[i] === lines[i - 1])) {
      return { penalty: REPETITION_PENALTY, reason: `repeated line "${lines[i].slice(0, 40)}"` };
    }
  }
  // Words/punctuation: an n-gram (n <= 8) repeated 5 or more times back to back.
  const toks = text.match(/\w+|[^\s\w]+/g) ?? [];
  for (let n = 1; n <= 8; n++) {
    let run = 0;
    for (let i = 0; i + n < toks.length; i++) {
      run = toks[i] === toks[i + n] ? run + 1 : 0;
      const repeats = 1 + Math.floor(run / n);
      if (repeats >= 5) {
        const gram = toks.slice(i + 1, i + 1 + n).join(' ');
        return { penalty: REPETITION_PENALTY, reason: `degenerate repetition of "${gram.slice(0, 40)}"` };
      }
    }
  }
  return null;
}

/** Single-line mode wants a whole line: one cut off by max tokens is a partial line. */
export function rulePartialLine(finish: Candidate['finish'], singleLine: boolean): Verdict | null {
  if (!singleLine || finish !== 'length') return null;
  return { penalty: PARTIAL_LINE_PENALTY, reason: 'line cut off at max tokens' };
}

/** Multi-line text cut off by max tokens: its unfinished last line is dropped (shown as reason). */
export function dropPartialLastLine(text: string, finish: Candidate['finish'], singleLine: boolean): string {
  if (singleLine || finish !== 'length') return text;
  const nl = text.lastIndexOf('\n');
  if (nl <= 0 || text.slice(0, nl).trim() === '') return text;
  return text.slice(0, nl);
}

// ---- rerank ---------------------------------------------------------------------------------

export function rerank(samples: Sample[], ctx: RerankContext): Ranked[] {
  const afterPrefix = scanBrackets(ctx.prefix);
  const groups = new Map<string, number[]>();
  const texts = samples.map((s) => dropPartialLastLine(s.text, s.finish, ctx.singleLine));
  texts.forEach((t, i) => {
    const key = normalizeWhitespace(t);
    const g = groups.get(key);
    if (g) g.push(i); else groups.set(key, [i]);
  });

  const ranked: Ranked[] = [];
  for (const members of groups.values()) {
    // Show the member the model liked best; ties go to the earliest sample.
    let rep = members[0];
    for (const i of members) if (meanLogprob(samples[i].logprobs) > meanLogprob(samples[rep].logprobs)) rep = i;
    const s = samples[rep];
    const text = texts[rep];
    const lp = meanLogprob(s.logprobs);
    const reasons: string[] = [`mean logprob ${lp.toFixed(3)}`];
    let score = lp;
    if (members.length > 1) {
      score += AGREEMENT_WEIGHT * Math.log(members.length);
      reasons.push(`${members.length} samples agree`);
    }
    if (text !== s.text) reasons.push('trailing partial line dropped');
    let filtered = false;
    const verdicts = [
      ruleEmpty(text),
      ruleRepeatsSuffix(text, ctx.suffix),
      ruleRepeatsPreviousLine(text, ctx.prefix),
      ruleBrackets(text, afterPrefix, ctx.suffix),
      ruleRepetition(text),
      rulePartialLine(s.finish, ctx.singleLine),
    ];
    for (const v of verdicts) {
      if (!v) continue;
      score -= v.penalty;
      reasons.push(v.reason);
      filtered ||= !!v.filter;
      if (v.filter) break; // one filter says enough
    }
    ranked.push({
      text, score, logprob: lp, count: members.length, tokens: s.ids.length, reasons, finish: s.finish,
      filtered, ids: s.ids, logprobs: s.logprobs, samples: members,
    });
  }
  ranked.sort((a, b) => b.score - a.score || b.count - a.count || a.samples[0] - b.samples[0]);
  return ranked;
}
