// The work queue both merge loops share: candidate merges of adjacent symbols, popped in order of
// (key ascending, left position ascending). BPE uses the merge rank as key, SentencePiece the negated
// piece score; both break ties towards the leftmost pair. An entry made stale by an earlier merge is
// recognised on pop: SentencePiece compares the remembered merged length (lengths only grow), BPE the
// rank of the pair now at that position.
// Parallel typed arrays, no per-entry objects: tokenizing a large file pushes ~2 entries per character.

export class PairHeap {
  private key = new Float64Array(64);
  private left = new Int32Array(64);
  private len = new Int32Array(64);
  size = 0;
  /** Key, position and merged length of the entry last popped. */
  topKey = 0;
  topLeft = 0;
  topLen = 0;

  clear() { this.size = 0; }

  private before(i: number, j: number) {
    const a = this.key[i], b = this.key[j];
    return a < b || (a === b && this.left[i] < this.left[j]);
  }

  private swap(i: number, j: number) {
    const k = this.key[i]; this.key[i] = this.key[j]; this.key[j] = k;
    const l = this.left[i]; this.left[i] = this.left[j]; this.left[j] = l;
    const n = this.len[i]; this.len[i] = this.len[j]; this.len[j] = n;
  }

  push(key: number, left: number, len: number) {
    if (this.size === this.key.length) this.grow();
    let i = this.size++;
    this.key[i] = key; this.left[i] = left; this.len[i] = len;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }

  /** Removes the first entry into topLeft / topLen. */
  pop() {
    this.topKey = this.key[0];
    this.topLeft = this.left[0];
    this.topLen = this.len[0];
    const last = --this.size;
    this.swap(0, last);
    for (let i = 0; ;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < last && this.before(l, m)) m = l;
      if (r < last && this.before(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }

  private grow() {
    const cap = this.key.length * 2;
    const key = new Float64Array(cap); key.set(this.key); this.key = key;
    const left = new Int32Array(cap); left.set(this.left); this.left = left;
    const len = new Int32Array(cap); len.set(this.len); this.len = len;
  }
}
