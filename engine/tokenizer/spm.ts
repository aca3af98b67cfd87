// SentencePiece-style BPE (GGUF `tokenizer.ggml.model = llama`).
//
// Facts (SentencePiece's BPE model as llama.cpp runs it from a GGUF, llm_tokenizer_spm):
//  - Spaces are written as U+2581 '▁'; a space is put in front of the text first when the vocabulary
//    asks for it (`add_space_prefix`, on by default), so "Hello" is spelled "▁Hello".
//  - The text starts as one symbol per code point. Repeatedly, the adjacent pair whose concatenation is
//    a vocabulary piece with the highest score is merged (on equal scores the leftmost pair), until no
//    adjacent pair forms a piece.
//  - A final symbol that is not a piece (only single code points can be such) is written as its UTF-8
//    bytes through the byte tokens `<0xAB>` ("byte fallback").
//
// Speed: merges only ever join neighbours whose concatenation is a piece. When no piece has a '▁' right
// after another character (true of Llama's, Phi-3's, Baichuan's vocabularies: whitespace only starts a
// piece), no merge can cross the point before a word's '▁', so words are merged independently — with
// exactly the same result — and cached. Vocabularies with pieces like "the▁" are merged whole.

import { PairHeap } from './heap';

export interface SpmVocab {
  toId: Map<string, number>;
  scores: Float32Array;
  unkId: number | null;
}

export const SPACE = '\u2581';

const heap = new PairHeap(); // reused: encoding is synchronous
const CACHE_LIMIT = 100_000;
const SPACE_CODE = 0x2581;

export class SpmEncoder {
  /** Whether text may be cut before every word-initial '▁' (see the file comment). */
  readonly wordwise: boolean;
  private cache = new Map<string, number[]>();

  constructor(private readonly vocab: SpmVocab, tokens: readonly string[]) {
    this.wordwise = !tokens.some((t) => /[^\u2581]\u2581/u.test(t));
  }

  /** Appends the ids of `text` (already '▁'-escaped, prefix space included by the caller) to `out`. */
  encode(text: string, out: number[]): void {
    if (!this.wordwise) { spmEncode(this.vocab, text, out); return; }
    let start = 0;
    for (let i = 1; i <= text.length; i++) {
      if (i < text.length && !(text.charCodeAt(i) === SPACE_CODE && text.charCodeAt(i - 1) !== SPACE_CODE)) continue;
      const word = text.slice(start, i);
      let ids = this.cache.get(word);
      if (!ids) {
        ids = [];
        spmEncode(this.vocab, word, ids);
        if (this.cache.size >= CACHE_LIMIT) this.cache = new Map();
        this.cache.set(word, ids);
      }
      for (const id of ids) out.push(id);
      start = i;
    }
  }
}

/** Appends the ids of `text` (already '▁'-escaped, prefix space included by the caller) to `out`. */
export function spmEncode(vocab: SpmVocab, text: string, out: number[]): void {
  const sym = Array.from(text);
  const n = sym.length;
  if (n === 0) return;
  const prev = new Int32Array(n), next = new Int32Array(n);
  for (let i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
  heap.clear();
  const consider = (l: number, r: number) => {
    if (l < 0 || r < 0) return;
    const piece = sym[l] + sym[r];
    const id = vocab.toId.get(piece);
    if (id !== undefined) heap.push(-vocab.scores[id], l, piece.length); // highest score first
  };
  for (let i = 0; i + 1 < n; i++) consider(i, i + 1);
  while (heap.size > 0) {
    heap.pop();
    const left = heap.topLeft, len = heap.topLen;
    const right = next[left];
    // Stale when either side was merged since (its length changed or it is gone).
    if (sym[left] === '' || right < 0 || sym[left].length + sym[right].length !== len) continue;
    sym[left] += sym[right];
    sym[right] = '';
    next[left] = next[right];
    if (next[right] >= 0) prev[next[right]] = left;
    consider(prev[left], left);
    consider(left, next[left]);
  }
  for (let i = 0; i >= 0; i = next[i]) {
    const id = vocab.toId.get(sym[i]);
    if (id !== undefined) out.push(id);
    else byteFallback(vocab, sym[i], out);
  }
}

const HEX = '0123456789ABCDEF';

/** A code point that is no piece: its UTF-8 bytes as `<0xAB>` tokens, or one unknown token when the vocabulary lacks them. */
function byteFallback(vocab: SpmVocab, s: string, out: number[]): void {
  const ids: number[] = [];
  for (const b of Buffer.from(s, 'utf8')) {
    const id = vocab.toId.get(`<0x${HEX[b >> 4]}${HEX[b & 15]}>`)
      // A vocabulary without byte tokens may still hold an ASCII byte as a piece of its own.
      ?? (b < 0x80 ? vocab.toId.get(String.fromCharCode(b)) : undefined);
    if (id === undefined) {
      if (vocab.unkId !== null) out.push(vocab.unkId);
      return;
    }
    ids.push(id);
  }
  for (const id of ids) out.push(id);
}
