// Prompt building: the fill-in-the-middle template chosen from the model's vocabulary, the token
// budget cut to whole lines nearest the cursor, and the stop tokens of the template.
//
// Templates (facts from each family's model card / reference code; all are PSM, prefix then
// suffix, with the model generating the middle after the last marker):
//   StarCoder, StarCoder2, SantaCoder, Refact:  <fim_prefix>P<fim_suffix>S<fim_middle>
//   Qwen2.5-Coder:                               <|fim_prefix|>P<|fim_suffix|>S<|fim_middle|>
//   DeepSeek-Coder (BOS first):                  <｜fim▁begin｜>P<｜fim▁hole｜>S<｜fim▁end｜>
//     (the names differ: "hole" marks where the suffix starts, "end" asks for the middle)
//   CodeLlama (Meta's generation.py, infilling_prompt_tokens, PSM):
//     BOS ▁<PRE> encode(P) ▁<SUF> encode_infilling(S) ▁<MID>
//     P keeps SentencePiece's leading space, S is encoded without it.
//   No FIM tokens: plain prefix completion, BOS (if the model wants it) + P; the suffix is unused.
// Special tokens go in by id; P and S are tokenized as plain text, so "<fim_prefix>" written in a
// user's file can never act as a control token.

export type FimTemplateName = 'starcoder' | 'qwen' | 'deepseek' | 'codellama' | 'none';

/** What the prompt builder needs from a tokenizer (engine/tokenizer's Tokenizer has it). */
export interface PromptTokenizer {
  encode(text: string, opts?: { addSpacePrefix?: boolean }): number[];
  findToken(text: string): number | null;
  tokenText(id: number): string;
  readonly addBos: boolean;
  readonly vocabSize: number;
  readonly special: {
    bos: number | null; eos: number | null; eot: number | null;
    fim_prefix: number | null; fim_suffix: number | null; fim_middle: number | null;
    fim_pad: number | null; fim_rep: number | null; fim_sep: number | null;
  };
}

export interface FimTemplate {
  name: FimTemplateName;
  /** Ids of the three markers in prompt order (null for 'none'). */
  pre: number | null;
  suf: number | null;
  mid: number | null;
  bos: number | null;
  /** SentencePiece: encode the suffix without the implicit leading space (CodeLlama). */
  suffixWithoutSpacePrefix: boolean;
  /** Generation ends at any of these ids. */
  stopIds: Set<number>;
}

// Token texts that end a completion whichever family uses them: end of text/turn, FIM padding,
// a new file or repository header (the model moving on to other code), and the FIM markers.
const STOP_NAMES = [
  '<|endoftext|>', '<|end_of_text|>', '</s>', '<|im_end|>', '<|EOT|>', '<EOT>', '▁<EOT>', '<｜end▁of▁sentence｜>',
  '<fim_pad>', '<|fim_pad|>', '<file_sep>', '<|file_sep|>', '<repo_name>', '<|repo_name|>', '<reponame>', '<filename>',
  '<fim_prefix>', '<fim_suffix>', '<fim_middle>', '<|fim_prefix|>', '<|fim_suffix|>', '<|fim_middle|>',
  '<｜fim▁begin｜>', '<｜fim▁hole｜>', '<｜fim▁end｜>', '▁<PRE>', '▁<SUF>', '▁<MID>',
];

/** Picks the template from the FIM marker tokens the vocabulary has. */
export function chooseTemplate(tok: PromptTokenizer): FimTemplate {
  const sp = tok.special;
  const stopIds = new Set<number>();
  for (const id of [sp.eos, sp.eot, sp.fim_pad, sp.fim_sep, sp.fim_rep, sp.fim_prefix, sp.fim_suffix, sp.fim_middle]) {
    if (id !== null) stopIds.add(id);
  }
  for (const name of STOP_NAMES) {
    const id = tok.findToken(name);
    if (id !== null) stopIds.add(id);
  }
  const bos = tok.addBos ? sp.bos : null;
  const none: FimTemplate = { name: 'none', pre: null, suf: null, mid: null, bos, suffixWithoutSpacePrefix: false, stopIds };
  if (sp.fim_prefix === null || sp.fim_suffix === null || sp.fim_middle === null) return none;
  const marker = tok.tokenText(sp.fim_prefix);
  const name: FimTemplateName | null =
    marker === '<fim_prefix>' || marker === '<fim-prefix>' ? 'starcoder'
      : marker === '<|fim_prefix|>' ? 'qwen'
        : marker === '<｜fim▁begin｜>' ? 'deepseek'
          : marker === '▁<PRE>' || marker === '<PRE>' ? 'codellama'
            : null;
  if (name === null) return none; // unknown marker family: don't guess an order
  return {
    name, pre: sp.fim_prefix, suf: sp.fim_suffix, mid: sp.fim_middle, bos,
    suffixWithoutSpacePrefix: name === 'codellama', stopIds,
  };
}

export interface BuiltPrompt {
  ids: number[];
  template: FimTemplateName;
  /** The prefix/suffix text that made it into the prompt after the budget cut. */
  prefix: string;
  suffix: string;
  prefixTokens: number;
  suffixTokens: number;
  stopIds: Set<number>;
  /** Start of the kept prefix when it was cut (pass it back with the next request), else null. */
  anchor: string | null;
}

/**
 * When the prefix must be cut, it is cut this much below its budget, so the next requests while
 * the user types still fit without moving the cut: the prompt then starts with the same tokens and
 * the engine reuses their KV instead of evaluating the whole prompt again.
 */
export const PREFIX_SLACK = 1 / 8;

/** Share of the budget the prefix gets when both sides need more than they can have. */
export const PREFIX_SHARE = 0.75;

/**
 * Builds the prompt for (prefix, suffix) within `contextTokens` tokens of text (the template's
 * few marker tokens come on top). The prefix loses lines from its top, the suffix from its bottom;
 * whole lines are kept, nearest the cursor first. What one side leaves unused goes to the other.
 */
export function buildPrompt(tok: PromptTokenizer, template: FimTemplate, prefix: string, suffix: string, contextTokens: number,
  anchor: string | null = null): BuiltPrompt {
  const budget = Math.max(1, Math.floor(contextTokens));
  const fim = template.name !== 'none';
  const encP = (t: string) => tok.encode(t);
  const encS = (t: string) => tok.encode(t, template.suffixWithoutSpacePrefix ? { addSpacePrefix: false } : {});

  let p: Cut, s: Cut = { text: '', ids: [] };
  if (!fim) {
    p = cutPrefixStable(prefix, budget, encP, anchor);
  } else {
    const suffixShare = budget - Math.floor(budget * PREFIX_SHARE);
    p = cutPrefixStable(prefix, budget - suffixShare, encP, anchor);
    // A cut prefix keeps its whole share (its slack is room to grow, not the suffix's).
    s = cutSuffix(suffix, p.text.length < prefix.length ? suffixShare : budget - p.ids.length, encS);
    // The suffix needed less than its share and the prefix was cut: give the prefix the rest.
    if (p.text.length < prefix.length && p.ids.length + s.ids.length < budget) {
      p = cutPrefixStable(prefix, budget - s.ids.length, encP, anchor);
    }
  }

  const ids: number[] = [];
  if (template.bos !== null) ids.push(template.bos);
  if (fim) {
    ids.push(template.pre!, ...p.ids, template.suf!, ...s.ids, template.mid!);
  } else {
    ids.push(...p.ids);
  }
  return {
    ids, template: template.name, prefix: p.text, suffix: s.text,
    prefixTokens: p.ids.length, suffixTokens: s.ids.length, stopIds: template.stopIds,
    anchor: p.text.length < prefix.length ? anchorOf(p.text) : null,
  };
}

/** The first whole lines (up to 200 characters) of a kept prefix: where the cut was. */
function anchorOf(kept: string): string | null {
  const nl = kept.lastIndexOf('\n', 200);
  return nl > 0 ? kept.slice(0, nl + 1) : null;
}

/**
 * cutPrefix, but stable while the user types: if the previous request's cut (`anchor`) is still
 * at a line start and what follows it still fits (and fills at least 3/4 of the budget, so a cursor
 * moved far away gets a fresh cut), keep cutting there. Otherwise cut PREFIX_SLACK below the budget.
 */
export function cutPrefixStable(text: string, budget: number, encode: (t: string) => number[], anchor: string | null): Cut {
  if (anchor) {
    for (let pos = text.indexOf(anchor); pos >= 0; pos = text.indexOf(anchor, pos + 1)) {
      if (pos > 0 && text[pos - 1] !== '\n') continue;
      const kept = text.slice(pos);
      const ids = encode(kept);
      if (ids.length <= budget && ids.length >= budget * 0.75) return { text: kept, ids };
      break;
    }
  }
  const tight = cutPrefix(text, budget, encode);
  if (tight.text.length === text.length) return tight; // everything fits: nothing to keep stable
  return cutPrefix(text, Math.max(1, Math.floor(budget * (1 - PREFIX_SLACK))), encode);
}

interface Cut { text: string; ids: number[] }

/** Lines with their newline kept, so joining them gives the text back. */
function splitLines(text: string): string[] {
  const out = text.split(/(?<=\n)/);
  return out.length === 1 && out[0] === '' ? [] : out;
}

/**
 * The longest tail of `text` made of whole lines (the cursor's partial line always kept) whose
 * tokens fit `budget`. Lines are counted one by one from the cursor upwards, so a 100k-line file
 * costs only the lines that fit; the kept text is then encoded as a whole and trimmed if the
 * per-line estimate was short (tokenizers can merge across a line start).
 */
export function cutPrefix(text: string, budget: number, encode: (t: string) => number[]): Cut {
  const lines = splitLines(text);
  let start = lines.length, used = 0;
  while (start > 0) {
    const n = encode(lines[start - 1]).length;
    if (used + n > budget && start < lines.length) break;
    used += n;
    start--;
    if (used > budget) break; // the cursor line alone is too long: cut it below
  }
  for (;;) {
    const kept = lines.slice(start).join('');
    const ids = encode(kept);
    if (ids.length <= budget) return { text: kept, ids };
    if (start < lines.length - 1) { start++; continue; }
    return cutChars(kept, budget, encode, 'tail');
  }
}

/** The longest head of `text` made of whole lines whose tokens fit `budget` (mirror of cutPrefix). */
export function cutSuffix(text: string, budget: number, encode: (t: string) => number[]): Cut {
  if (budget <= 0 || text === '') return { text: '', ids: [] };
  const lines = splitLines(text);
  let end = 0, used = 0;
  while (end < lines.length) {
    const n = encode(lines[end]).length;
    if (used + n > budget) break;
    used += n;
    end++;
  }
  for (;;) {
    if (end === 0) {
      // Not even the cursor's line fits whole: keep the part of it nearest the cursor.
      return lines.length ? cutChars(lines[0], budget, encode, 'head') : { text: '', ids: [] };
    }
    const kept = lines.slice(0, end).join('');
    const ids = encode(kept);
    if (ids.length <= budget) return { text: kept, ids };
    end--;
  }
}

/** One over-long line: keep its tail (prefix side) or head (suffix side) by halving the cut. */
function cutChars(line: string, budget: number, encode: (t: string) => number[], keep: 'head' | 'tail'): Cut {
  let lo = 0, hi = line.length; // number of characters kept
  let best: Cut = { text: '', ids: [] };
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const text = keep === 'tail' ? line.slice(line.length - mid) : line.slice(0, mid);
    const ids = encode(text);
    if (ids.length <= budget) { best = { text, ids }; lo = mid + 1; } else hi = mid - 1;
  }
  return best;
}
