// Byte-level BPE (GGUF `tokenizer.ggml.model = gpt2`).
//
// Facts (GPT-2 paper's released encoder, Hugging Face tokenizers' BPE model, llama.cpp's llm_tokenizer_bpe):
//  - Text is cut into words by the pre-tokenizer; each word's UTF-8 bytes are written as printable
//    characters through GPT-2's byte-to-unicode table (printable Latin-1 bytes map to themselves, the
//    other 68 bytes to U+0100 + n in byte order), so the vocabulary and merges are plain strings.
//  - Inside a word, the adjacent pair with the lowest merge rank is merged, leftmost first on ties,
//    until no adjacent pair has a rank.
//  - Llama-3-style vocabularies ("ignore_merges") emit a whole word that is itself a token directly.
//  - A final piece missing from the vocabulary falls back to its single characters (bytes).
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

export class BpeEncoder {
  /** "left right" -> rank (the merge's index in tokenizer.ggml.merges; the first occurrence wins). */
  private readonly ranks = new Map<string, number>();
  private cache = new Map<string, number[]>();
  private readonly heap = new PairHeap();

  constructor(private readonly vocab: BpeVocab, merges: string[], private readonly pre: PreTokenizer) {
    for (let i = 0; i < merges.length; i++) {
      const m = merges[i];
      // Split at the first space after position 0 (a merge's left side may itself be a space token).
      const sp = m.indexOf(' ', 1);
      if (sp < 0) continue;
      const key = m.slice(0, sp) + ' ' + m.slice(sp + 1);
      if (!this.ranks.has(key)) this.ranks.set(key, i);
    }
  }

  /** Appends the ids of plain text (no special-token handling here) to `out`. */
  encode(text: string, out: number[]): void {
    for (const word of this.pre.split(text)) {
      let ids = this.cache.get(word);
      if (!ids) {
        ids = this.encodeWord(byteLevel(word));
        if (this.cache.size >= CACHE_LIMIT) this.cache = new Map();
        this.cache.set(word, ids);
      }
      for (const id of ids) out.push(id);
    }
  }

  /** BPE over one byte-level word. */
  private encodeWord(word: string): number[] {
    const toId = this.vocab.toId;
    if (this.pre.ignoreMerges) {
      const id = toId.get(word);
      if (id !== undefined) return [id];
    }
    // Symbols as a doubly linked list over code points; merged-away symbols become ''.
    const sym = Array.from(word);
    const n = sym.length;
    const prev = new Int32Array(n), next = new Int32Array(n);
    for (let i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
    const heap = this.heap;
    heap.clear();
    const consider = (l: number, r: number) => {
      if (l < 0 || r < 0) return;
      const rank = this.ranks.get(sym[l] + ' ' + sym[r]);
      if (rank !== undefined) heap.push(rank, l, sym[l].length + sym[r].length);
    };
    for (let i = 0; i + 1 < n; i++) consider(i, i + 1);
    while (heap.size > 0) {
      heap.pop();
      const left = heap.topLeft;
      const right = next[left];
      // Stale when either side changed since the entry was made: lengths only grow, so a changed pair
      // can never add up to the remembered length again.
      if (sym[left] === '' || right < 0 || sym[left].length + sym[right].length !== heap.topLen) continue;
      sym[left] += sym[right];
      sym[right] = '';
      next[left] = next[right];
      if (next[right] >= 0) prev[next[right]] = left;
      consider(prev[left], left);
      consider(left, next[left]);
    }
    const ids: number[] = [];
    for (let i = 0; i >= 0 && i < n; i = next[i]) {
      const id = toId.get(sym[i]);
      if (id !== undefined) { ids.push(id); continue; }
      for (const ch of sym[i]) { // not a token: fall back to its characters (bytes), dropping unknown ones
        const cid = toId.get(ch);
        if (cid !== undefined) ids.push(cid);
      }
    }
    return ids;
  }
}
