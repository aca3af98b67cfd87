// Byte-level BPE (GGUF `tokenizer.ggml.model = gpt2`).
//
// Facts (GPT-2 paper's released encoder, Hugging Face tokenizers' BPE model, llama.cpp's llm_tokenizer_bpe):
//  - Text is cut into words by the pre-tokenizer; each word's UTF-8 bytes are written as printable
//    characters through GPT-2's byte-to-unicode table (printable Latin-1 bytes map to themselves, the
//    other 68 bytes to U+0100 + n in byte order), so the vocabulary and merges are plain strings.
//  - Inside a word, the adjacent pair with the lowest merge rank is merged, leftmost first on ties,
//    until no adjacent pair has a rank.
//  - Llama-3-style vocabularies ("ignore_merges") emit a whole word that is itself a token directly.
//  - A byte whose character is not in the vocabulary is dropped (llama.cpp does the same).
import { PairHeap } from './heap';
import type { PreTokenizer } from './pretokenizers';

// ---- GPT-2 byte <-> unicode table ------------------------------------------------------------------
export const BYTE_TO_CHAR: string[] = new Array(256);
export const CHAR_TO_BYTE = new Map<number, number>();
{
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const cp = printable(b) ? b : 256 + n++;
    BYTE_TO_CHAR[b] = String.fromCodePoint(cp);
    CHAR_TO_BYTE.set(cp, b);
  }
}

/** The byte-level spelling of `s`: its UTF-8 bytes (lone surrogates as U+FFFD, like TextEncoder), each as a GPT-2 char. */
export function byteLevel(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    let cp = s.charCodeAt(i);
    if (cp < 0x80) { out += BYTE_TO_CHAR[cp]; continue; }
    if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < s.length) {
      const lo = s.charCodeAt(i + 1);
      if (lo >= 0xdc00 && lo <= 0xdfff) { cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00); i++; }
    }
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x800) {
      out += BYTE_TO_CHAR[0xc0 | (cp >> 6)] + BYTE_TO_CHAR[0x80 | (cp & 63)];
    } else if (cp < 0x10000) {
      out += BYTE_TO_CHAR[0xe0 | (cp >> 12)] + BYTE_TO_CHAR[0x80 | ((cp >> 6) & 63)] + BYTE_TO_CHAR[0x80 | (cp & 63)];
    } else {
      out += BYTE_TO_CHAR[0xf0 | (cp >> 18)] + BYTE_TO_CHAR[0x80 | ((cp >> 12) & 63)] +
        BYTE_TO_CHAR[0x80 | ((cp >> 6) & 63)] + BYTE_TO_CHAR[0x80 | (cp & 63)];
    }
  }
  return out;
}

/** Bytes of a byte-level token string; characters outside the table are kept as their UTF-8 bytes. */
export function byteLevelDecode(token: string): Uint8Array {
  const out: number[] = [];
  for (const ch of token) {
    const b = CHAR_TO_BYTE.get(ch.codePointAt(0)!);
    if (b !== undefined) out.push(b);
    else out.push(...Buffer.from(ch, 'utf8'));
  }
  return Uint8Array.from(out);
}

// ---- merging ------------------------------------------------------------------------------------------

export interface BpeVocab {
  toId: Map<string, number>;
}

const CACHE_LIMIT = 100_000;
const DEAD = -2; // a symbol merged into its left neighbour

/** (left id, right id) -> rank, open addressing over typed arrays: no per-entry objects, no string keys. */
class PairTable {
  private readonly left: Int32Array;
  private readonly right: Int32Array;
  private readonly rank: Int32Array;
  private readonly mask: number;
  constructor(capacity: number) {
    let size = 16;
    while (size < capacity * 2) size *= 2;
    this.mask = size - 1;
    this.left = new Int32Array(size).fill(-1);
    this.right = new Int32Array(size);
    this.rank = new Int32Array(size);
  }
  private slot(l: number, r: number): number {
    let h = (Math.imul(l, 0x9e3779b1) ^ Math.imul(r + 0x632be5ab, 0x85ebca77)) & this.mask;
    while (this.left[h] !== -1 && (this.left[h] !== l || this.right[h] !== r)) h = (h + 1) & this.mask;
    return h;
  }
  /** Sets the rank of (l, r) unless it has one already (the first merge listed wins). */
  add(l: number, r: number, rank: number) {
    const h = this.slot(l, r);
    if (this.left[h] !== -1) return;
    this.left[h] = l; this.right[h] = r; this.rank[h] = rank;
  }
  /** Rank of (l, r), or -1. */
  get(l: number, r: number): number {
    const h = this.slot(l, r);
    return this.left[h] === -1 ? -1 : this.rank[h];
  }
}

/**
 * Merging works on token ids, not strings: a word starts as the ids of its bytes' characters and each
 * merge (left id, right id) -> merged id is looked up in a typed-array hash table, so no strings are
 * built while merging. A merge whose sides or result are not in the vocabulary can never apply (Hugging Face
 * refuses such vocabularies) and is left out.
 */
export class BpeEncoder {
  /** (left id, right id) -> rank (index in tokenizer.ggml.merges; the first occurrence wins). */
  private readonly pairRank: PairTable;
  /** rank -> id of the merged token. */
  private readonly mergedId: Int32Array;
  /** byte -> id of its byte-level character (-1 when the vocabulary lacks it). */
  private readonly byteId = new Int32Array(256);
  private cache = new Map<string, number[]>();
  private readonly heap = new PairHeap();

  constructor(private readonly vocab: BpeVocab, merges: string[], private readonly pre: PreTokenizer) {
    const { toId } = vocab;
    this.mergedId = new Int32Array(merges.length);
    this.pairRank = new PairTable(merges.length);
    for (let i = 0; i < merges.length; i++) {
      const m = merges[i];
      const sp = m.indexOf(' ', 1); // the left side may itself start with a space character
      if (sp < 0) continue;
      const left = m.slice(0, sp), right = m.slice(sp + 1);
      const l = toId.get(left), r = toId.get(right), merged = toId.get(left + right);
      if (l === undefined || r === undefined || merged === undefined) continue;
      this.pairRank.add(l, r, i);
      this.mergedId[i] = merged;
    }
    for (let b = 0; b < 256; b++) this.byteId[b] = toId.get(BYTE_TO_CHAR[b]) ?? -1;
  }

  /** Appends the ids of plain text (no special-token handling here) to `out`. */
  encode(text: string, out: number[]): void {
    for (const word of this.pre.split(text)) {
      let ids = this.cache.get(word);
      if (!ids) {
        ids = this.encodeWord(word);
        if (this.cache.size >= CACHE_LIMIT) this.cache = new Map();
        this.cache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
  }

  /** BPE over one pre-tokenized word. */
  private encodeWord(word: string): number[] {
    if (this.pre.ignoreMerges) {
      const id = this.vocab.toId.get(byteLevel(word));
      if (id !== undefined) return [id];
    }
    const bytes = Buffer.from(word, 'utf8'); // lone surrogates become U+FFFD, as in byteLevel()
    const n = bytes.length;
    const sym = new Int32Array(n), prev = new Int32Array(n), next = new Int32Array(n);
    for (let i = 0; i < n; i++) { sym[i] = this.byteId[bytes[i]]; prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
    const rankOf = (l: number, r: number) => (sym[l] >= 0 && sym[r] >= 0 ? this.pairRank.get(sym[l], sym[r]) : -1);
    const heap = this.heap;
    heap.clear();
    const consider = (l: number, r: number) => {
      if (l < 0 || r < 0) return;
      const rank = rankOf(l, r);
      if (rank >= 0) heap.push(rank, l, 0);
    };
    for (let i = 0; i + 1 < n; i++) consider(i, i + 1);
    while (heap.size > 0) {
      heap.pop();
      const left = heap.topLeft, rank = heap.topKey;
      const right = next[left];
      // Stale when the pair at `left` changed since the entry was made (a rank names exactly one pair).
      if (sym[left] === DEAD || right < 0 || rankOf(left, right) !== rank) continue;
      sym[left] = this.mergedId[rank];
      sym[right] = DEAD;
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      consider(prev[left], left);
      consider(left, next[left]);
    }
    const ids: number[] = [];
    for (let i = 0; i >= 0 && i < n; i = next[i]) if (sym[i] >= 0) ids.push(sym[i]); // bytes without a token are dropped
    return ids;
  }
}
