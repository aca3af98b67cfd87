// The tokenizer a GGUF file carries: SentencePiece-style (`llama`) or byte-level BPE (`gpt2`), built from
// the `tokenizer.ggml.*` metadata alone (a vocab-only GGUF with no tensors is enough).
//
// Behaviour follows llama.cpp's llama_tokenize(add_special = false, parse_special = false), which its
// test vectors (the Hugging Face tokenizers' output) pin down:
//  - control and unknown tokens are never produced from text: "<fim_prefix>" in a user's file is plain
//    text. Control tokens (BOS/EOS/FIM) are inserted by id by the prompt builder.
//  - user-defined tokens (token type 4) ARE matched in text, longest first, before the rest is tokenized
//    (as Hugging Face does for non-special added tokens) — except tokens llama.cpp treats as control by
//    their text (EOS/EOT/FIM names such as "<|fim_prefix|>", "<｜fim▁begin｜>"), and the special ids.
//  - decode() is the inverse for round trips: control tokens produce no text, SentencePiece's prefix
//    space is removed from the first token, and no "clean up" of spaces before punctuation is done.
import type { GGUFFile } from '../gguf';
import type { SpecialTokens } from '../protocol';
import { BpeEncoder, byteLevelDecode } from './bpe';
import { makePreTokenizer, type PreTokenizer } from './pretokenizers';
import { SPACE, SpmEncoder } from './spm';

/** GGUF token types (llama_token_type). */
export const TokenType = { Undefined: 0, Normal: 1, Unknown: 2, Control: 3, UserDefined: 4, Unused: 5, Byte: 6 } as const;

export class TokenizerError extends Error {
  override name = 'TokenizerError';
}

// Token texts llama.cpp treats as control whatever their stored type (its EOT / EOM / FIM / EOG
// auto-detection lists in llama-vocab.cpp): never matched in user text.
const FIM_NAMES = {
  fim_prefix: ['<|fim_prefix|>', '<fim-prefix>', '<fim_prefix>', '<｜fim▁begin｜>', '<PRE>', '▁<PRE>', '<|code_prefix|>', '<|prefix|>'],
  fim_suffix: ['<|fim_suffix|>', '<fim-suffix>', '<fim_suffix>', '<｜fim▁hole｜>', '<SUF>', '▁<SUF>', '<|code_suffix|>', '<|suffix|>'],
  fim_middle: ['<|fim_middle|>', '<fim-middle>', '<fim_middle>', '<｜fim▁end｜>', '<MID>', '▁<MID>', '<|code_middle|>', '<|middle|>'],
  fim_pad: ['<|fim_pad|>', '<fim-pad>', '<fim_pad>', '<PAD>'],
  // StarCoder2 spells the repository-level tokens "<repo_name>" / "<file_sep>" (its vocabulary, ids 5 and 6).
  fim_rep: ['<|fim_repo|>', '<|repo_name|>', '<fim-repo>', '<REPO>', '<reponame>', '<repo_name>'],
  fim_sep: ['<|file_sep|>', '<file_sep>'],
} as const;
// CodeLlama's end of infill is "▁<EOT>" (id 32010 in its vocabulary); llama.cpp's list spells it "_<EOT>".
const EOT_NAMES = ['<|eot_id|>', '<|im_end|>', '<|end|>', '<end_of_turn>', '<|endoftext|>', '<|end_of_text|>', '<EOT>', '_<EOT>', '▁<EOT>', '<｜end▁of▁sentence｜>', '<end_of_utterance>'];
const EOG_NAMES = [...EOT_NAMES, '<|eom_id|>', '</s>', '<eos>', '<|return|>', '<|call|>'];
const CONTROL_BY_NAME = new Set<string>([...EOG_NAMES, ...Object.values(FIM_NAMES).flat()]);

export interface TokenizerOptions {
  /** Receives warnings (unknown pre-tokenizer, bad special ids). Default: console.warn. */
  warn?: (message: string) => void;
}

export interface EncodeOptions {
  /**
   * SentencePiece vocabularies only: put the prefix space in front of this text (default: the file's
   * `add_space_prefix`, normally true). A prompt builder joining pieces may turn it off for later pieces.
   */
  addSpacePrefix?: boolean;
}

export class Tokenizer {
  readonly kind: 'spm' | 'bpe';
  readonly vocabSize: number;
  readonly special: SpecialTokens;
  /** Whether prompts for this model should start with BOS (`add_bos_token`, else the vocab type's default). */
  readonly addBos: boolean;
  /** SentencePiece: whether a space is put in front of the text. */
  readonly addSpacePrefix: boolean;
  /** The pre-tokenizer in use (byte-level BPE only). */
  readonly preTokenizer: PreTokenizer | null;
  readonly warnings: string[] = [];

  private readonly tokens: string[];
  private readonly types: Int32Array;
  private readonly toId: Map<string, number>;
  private readonly bytesCache: Array<Uint8Array | undefined>;
  private readonly spm?: SpmEncoder;
  private readonly bpe?: BpeEncoder;
  /** User-defined tokens matched in text, longest first. */
  private readonly matchable: Array<{ text: string; id: number }>;

  private constructor(file: GGUFFile, opts: TokenizerOptions) {
    const warn = (m: string) => {
      this.warnings.push(m);
      if (opts.warn) opts.warn(m);
      else console.warn(`[forkcast tokenizer] ${m}`);
    };
    const model = file.has('tokenizer.ggml.model') ? file.getString('tokenizer.ggml.model') : undefined;
    if (model === undefined) throw new TokenizerError('the model file has no tokenizer (metadata "tokenizer.ggml.model" is missing)');
    if (model !== 'llama' && model !== 'gpt2') {
      throw new TokenizerError(`tokenizer "${model}" is not supported (supported: "llama" SentencePiece, "gpt2" byte-level BPE)`);
    }
    this.kind = model === 'llama' ? 'spm' : 'bpe';

    if (!file.has('tokenizer.ggml.tokens')) throw new TokenizerError('the model file has no vocabulary (metadata "tokenizer.ggml.tokens" is missing)');
    const tokens = file.getStringArray('tokenizer.ggml.tokens');
    const n = tokens.length;
    if (n === 0) throw new TokenizerError('the vocabulary ("tokenizer.ggml.tokens") is empty');
    this.vocabSize = n;
    this.tokens = tokens.map((t, i) => (t.length > 0 ? t : `[EMPTY_${i}]`)); // an empty token must never match

    this.types = new Int32Array(n).fill(TokenType.Normal);
    if (file.has('tokenizer.ggml.token_type')) {
      const t = numericArray(file, 'tokenizer.ggml.token_type', n);
      for (let i = 0; i < n; i++) this.types[i] = t[i];
    }
    const scores = new Float32Array(n);
    if (file.has('tokenizer.ggml.scores')) {
      const s = numericArray(file, 'tokenizer.ggml.scores', n);
      for (let i = 0; i < n; i++) scores[i] = s[i];
    }

    this.toId = new Map();
    for (let i = 0; i < n; i++) if (!this.toId.has(this.tokens[i])) this.toId.set(this.tokens[i], i);
    this.bytesCache = new Array(n);

    const { special, unkId } = readSpecialTokens(file, n, this.toId, this.kind, warn);
    this.special = special;
    this.matchable = userDefinedMatchers(this.tokens, this.types, this.toId, special);

    // ---- the encoder proper
    if (this.kind === 'spm') {
      this.preTokenizer = null;
      this.spm = new SpmEncoder({ toId: this.toId, scores, unkId }, this.tokens);
      this.addSpacePrefix = boolMeta(file, 'tokenizer.ggml.add_space_prefix', true);
      this.addBos = boolMeta(file, 'tokenizer.ggml.add_bos_token', true);
    } else {
      const preName = file.has('tokenizer.ggml.pre') ? file.getString('tokenizer.ggml.pre') : undefined;
      const pre = makePreTokenizer(preName);
      if (pre.unknown) warn(`unknown pre-tokenizer "${preName}": using the default one; tokens may differ from the model's training`);
      if (preName === undefined) warn('the file names no pre-tokenizer ("tokenizer.ggml.pre"): using the default one');
      this.preTokenizer = pre;
      if (!file.has('tokenizer.ggml.merges')) throw new TokenizerError('byte-level BPE vocabulary without merges ("tokenizer.ggml.merges" is missing)');
      this.bpe = new BpeEncoder({ toId: this.toId }, file.getStringArray('tokenizer.ggml.merges'), pre);
      this.addSpacePrefix = false;
      this.addBos = boolMeta(file, 'tokenizer.ggml.add_bos_token', pre.addBos);
    }
    if (this.addBos && this.special.bos === null) {
      warn('the file asks for BOS but names no BOS token; prompts start without it');
      this.addBos = false;
    }
  }

  /** Builds the tokenizer of a parsed GGUF (tensors are not needed). Throws TokenizerError on a bad vocabulary. */
  static fromGGUF(file: GGUFFile, opts: TokenizerOptions = {}): Tokenizer {
    return new Tokenizer(file, opts);
  }

  /** Token ids of `text`, without BOS; text that looks like a control token is plain text. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (text.length === 0) return out;
    let prevWasToken = true; // SentencePiece puts its prefix space at the start and after matched tokens
    const spacePrefix = opts.addSpacePrefix ?? this.addSpacePrefix;
    for (const frag of this.partition(text)) {
      if (typeof frag === 'number') {
        out.push(frag);
        prevWasToken = true;
        continue;
      }
      if (this.spm) {
        const prefixed = spacePrefix && prevWasToken ? ' ' + frag : frag;
        this.spm.encode(prefixed.replaceAll(' ', SPACE), out);
      } else {
        this.bpe!.encode(frag, out);
      }
      prevWasToken = false;
    }
    return out;
  }

  /**
   * Text of `ids` (control tokens give no text; invalid UTF-8 becomes U+FFFD). For ids that continue a
   * prompt (generated tokens) pass `{ stripPrefixSpace: false }`: only the start of a text carries
   * SentencePiece's prefix space.
   */
  decode(ids: ArrayLike<number>, opts: { stripPrefixSpace?: boolean } = {}): string {
    const strip = (opts.stripPrefixSpace ?? true) && this.addSpacePrefix;
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      let b = this.tokenBytes(ids[i]);
      // SentencePiece's prefix space is not part of the text (llama.cpp strips it from the first token).
      if (i === 0 && strip && b.length > 0 && b[0] === 0x20) b = b.subarray(1);
      parts.push(b);
      total += b.length;
    }
    const all = new Uint8Array(total);
    let o = 0;
    for (const p of parts) { all.set(p, o); o += p.length; }
    return new TextDecoder('utf-8', { ignoreBOM: true }).decode(all); // a leading U+FEFF is text too
  }

  /** The raw bytes token `id` stands for (may be part of a UTF-8 character); empty for control tokens. */
  tokenBytes(id: number): Uint8Array {
    this.check(id);
    let b = this.bytesCache[id];
    if (b === undefined) {
      b = this.computeBytes(id);
      this.bytesCache[id] = b;
    }
    return b;
  }

  /** The token's text as stored in the vocabulary (e.g. "▁Hello", "Ġworld", "<fim_prefix>"). */
  tokenText(id: number): string {
    this.check(id);
    return this.tokens[id];
  }

  /** The GGUF token type of `id` (see TokenType). */
  tokenType(id: number): number {
    this.check(id);
    return this.types[id];
  }

  /** Id of the token stored exactly as `text`, or null. */
  findToken(text: string): number | null {
    return this.toId.get(text) ?? null;
  }

  private check(id: number) {
    if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize) {
      throw new RangeError(`token id ${id} is outside the vocabulary (0..${this.vocabSize - 1})`);
    }
  }

  private computeBytes(id: number): Uint8Array {
    const text = this.tokens[id];
    switch (this.types[id]) {
      case TokenType.Control: case TokenType.Unknown: case TokenType.Unused:
        return new Uint8Array(0);
      case TokenType.UserDefined:
        return new TextEncoder().encode(text);
      case TokenType.Byte: {
        const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(text);
        if (m) return Uint8Array.of(parseInt(m[1], 16));
        return this.kind === 'bpe' ? byteLevelDecode(text) : new TextEncoder().encode(text);
      }
      default:
        return this.kind === 'spm' ? new TextEncoder().encode(text.replaceAll(SPACE, ' ')) : byteLevelDecode(text);
    }
  }

  /** Splits text around user-defined tokens (longest first): strings to tokenize and ids to emit as they are. */
  private partition(text: string): Array<string | number> {
    let frags: Array<string | number> = [text];
    for (const { text: t, id } of this.matchable) {
      if (!text.includes(t)) continue;
      const next: Array<string | number> = [];
      for (const f of frags) {
        if (typeof f === 'number') { next.push(f); continue; }
        let from = 0;
        for (let at = f.indexOf(t); at >= 0; at = f.indexOf(t, from)) {
          if (at > from) next.push(f.slice(from, at));
          next.push(id);
          from = at + t.length;
        }
        if (from < f.length) next.push(f.slice(from));
      }
      frags = next;
    }
    return frags;
  }
}

/**
 * BOS/EOS/EOT/FIM ids: the metadata's ids when valid (out-of-range ones are reported and ignored),
 * else SentencePiece's defaults (BOS 1, EOS 2, UNK 0, as llama.cpp assumes), else — for EOT and FIM —
 * the first vocabulary token with a known name.
 */
function readSpecialTokens(file: GGUFFile, n: number, toId: Map<string, number>, kind: 'spm' | 'bpe', warn: (m: string) => void):
  { special: SpecialTokens; unkId: number | null } {
  const metaId = (key: string): number | undefined => {
    const full = `tokenizer.ggml.${key}`;
    if (!file.has(full)) return undefined;
    let v: number;
    try { v = file.getNumber(full); } catch { warn(`"${full}" is not a number; ignored`); return undefined; }
    if (!Number.isInteger(v) || v < 0 || v >= n) { warn(`"${full}" = ${v} is outside the vocabulary (${n} tokens); ignored`); return undefined; }
    return v;
  };
  const byName = (names: readonly string[]): number | null => {
    for (const name of names) { const id = toId.get(name); if (id !== undefined) return id; }
    return null;
  };
  const spmDefault = (id: number) => (kind === 'spm' && id < n ? id : null);
  const special: SpecialTokens = {
    bos: metaId('bos_token_id') ?? spmDefault(1),
    eos: metaId('eos_token_id') ?? spmDefault(2),
    eot: metaId('eot_token_id') ?? byName(EOT_NAMES),
    fim_prefix: metaId('fim_pre_token_id') ?? metaId('prefix_token_id') ?? byName(FIM_NAMES.fim_prefix),
    fim_suffix: metaId('fim_suf_token_id') ?? metaId('suffix_token_id') ?? byName(FIM_NAMES.fim_suffix),
    fim_middle: metaId('fim_mid_token_id') ?? metaId('middle_token_id') ?? byName(FIM_NAMES.fim_middle),
    fim_pad: metaId('fim_pad_token_id') ?? byName(FIM_NAMES.fim_pad),
    fim_rep: metaId('fim_rep_token_id') ?? byName(FIM_NAMES.fim_rep),
    fim_sep: metaId('fim_sep_token_id') ?? byName(FIM_NAMES.fim_sep),
  };
  return { special, unkId: metaId('unknown_token_id') ?? spmDefault(0) };
}

/** User-defined tokens that text can produce, longest first (control look-alikes and special ids excluded). */
function userDefinedMatchers(tokens: readonly string[], types: Int32Array, toId: Map<string, number>, special: SpecialTokens):
  Array<{ text: string; id: number }> {
  const specialIds = new Set(Object.values(special).filter((v): v is number => v !== null));
  const out: Array<{ text: string; id: number }> = [];
  for (let i = 0; i < tokens.length; i++) {
    if (types[i] !== TokenType.UserDefined) continue;
    const text = tokens[i];
    if (CONTROL_BY_NAME.has(text) || specialIds.has(i) || toId.get(text) !== i) continue;
    out.push({ text, id: i });
  }
  return out.sort((a, b) => b.text.length - a.text.length);
}

/** A per-token numeric array (scores, types) as plain numbers; any element type, checked for length and kind. */
function numericArray(file: GGUFFile, key: string, n: number): Float64Array {
  const a = file.getArray(key);
  if (a.length < n) throw new TokenizerError(`"${key}" has ${a.length} entries for ${n} tokens`);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = a[i];
    if (typeof v === 'number') out[i] = v;
    else if (typeof v === 'bigint') out[i] = Number(v);
    else throw new TokenizerError(`"${key}" should hold numbers (entry ${i} is ${typeof v})`);
  }
  return out;
}

function boolMeta(file: GGUFFile, key: string, dflt: boolean): boolean {
  const v = file.get(key);
  if (!v) return dflt;
  if (v.type === 7) return v.value;
  if (v.type !== 8 && v.type !== 9 && typeof v.value === 'number') return v.value !== 0;
  return dflt;
}
