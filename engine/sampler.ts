// Token sampling for one row of logits: greedy, temperature, top-k, min-p, top-p, each sample
// with its own seeded random stream.
//
// Order of operations (documented because implementations differ): logits are divided by the
// temperature first (as Hugging Face transformers' warpers do), then top-k, min-p and top-p filter
// the tempered distribution, then one token is drawn from what is left, renormalised.
//
// Reported log-probability: the chosen token's log-softmax under the model's *raw* distribution
// (temperature 1, no filters). It measures how much the model itself believed the token,
// independent of the sampling knobs, so candidates of one request and of different requests are
// compared on one scale by the reranker. Greedy (temperature 0) reports the same quantity.
//
// Cost per row: one pass for the max, one pass of exp for the raw log-sum-exp, then the filters
// touch only the candidate set: top-k keeps a k-entry min-heap, top-p partitions by mass with
// quickselect (expected linear), so no full sort of a 150k vocabulary ever happens.

export interface SamplerParams {
  /** 0 (or less) = greedy. */
  temperature: number;
  /** 0 = off. */
  topK: number;
  /** 1 = off. */
  topP: number;
  /** 0 = off. Keep tokens with p >= minP * p(max) under the tempered distribution. */
  minP: number;
}

export const DEFAULT_SAMPLER: SamplerParams = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 };

export interface Sampled {
  id: number;
  /** log p(id) under the raw model distribution (temperature 1, unfiltered). */
  logprob: number;
}

// ---- random streams -------------------------------------------------------------------------

/** splitmix32 finaliser: a bijective 32-bit mix used to spread (seed, stream) into the state. */
function mix32(x: number): number {
  x = (x + 0x9e3779b9) | 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * xoshiro128** (Blackman & Vigna, "Scrambled linear pseudorandom number generators", 2021),
 * seeded from (seed, stream) so sample i of a request draws the same numbers whatever n is.
 */
export class Rng {
  private s0: number; private s1: number; private s2: number; private s3: number;

  constructor(seed: number, stream = 0) {
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0; // seeds above 2^32 still differ
    let h = mix32(lo ^ mix32(hi ^ mix32(stream >>> 0)));
    this.s0 = h = mix32(h); this.s1 = h = mix32(h); this.s2 = h = mix32(h); this.s3 = h = mix32(h);
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1; // the all-zero state is a fixed point
  }

  /** Next 32 random bits as an unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0; this.s3 ^= this.s1; this.s1 ^= this.s2; this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  next(): number {
    const a = this.nextU32() >>> 5, b = this.nextU32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

// ---- sampling -------------------------------------------------------------------------------

/** Index of the largest logit; ties go to the lowest id. */
export function argmax(logits: Float32Array): number {
  let best = 0, bv = logits[0];
  for (let i = 1; i < logits.length; i++) if (logits[i] > bv) { bv = logits[i]; best = i; }
  return best;
}

// exp(x) for x <= 0, twice as fast as Math.exp here (which dominates sampling: a 150k vocabulary
// needs one exp per token per row): exp(-i/16) from a table times a degree-5 Taylor polynomial of
// exp(y) for y in (-1/16, 0]; relative error < 1e-10, exactly 0 below -745.
const EXP_STEPS = 16;
const EXP_TABLE = Float64Array.from({ length: EXP_STEPS * 746 + 1 }, (_, i) => Math.exp(-i / EXP_STEPS));

export function expNeg(x: number): number {
  const t = -x * EXP_STEPS;
  if (!(t < EXP_STEPS * 745)) return 0;
  const i = t | 0;
  const y = (i - t) / EXP_STEPS;
  return EXP_TABLE[i] * (1 + y * (1 + y * (0.5 + y * (1 / 6 + y * (1 / 24 + y * (1 / 120))))));
}

/** log sum_i exp(logits[i]) computed around the max for stability. */
export function logSumExp(logits: Float32Array, max = logits[argmax(logits)]): number {
  let s = 0;
  for (let i = 0; i < logits.length; i++) s += expNeg(logits[i] - max);
  return max + Math.log(s);
}

/**
 * Per row of V logits: [max, argmax (lowest id on ties), log-sum-exp, then the ids of the k largest
 * logits (ties: lower id wins; any order)], 3 + k numbers per row. These are the passes over the whole
 * vocabulary a draw needs; the filters after them touch only k candidates. The engine passes the
 * addon's SIMD version (rowStats) to the Sampler; this is the portable one.
 */
export type RowStatsFn = (logits: Float32Array, V: number, k: number) => Float64Array;

export const rowStatsJS: RowStatsFn = (logits, V, k) => {
  const rows = logits.length / V, per = 3 + k;
  const out = new Float64Array(per * rows);
  const heap = new Int32Array(k);
  for (let r = 0; r < rows; r++) {
    const row = logits.subarray(r * V, (r + 1) * V);
    const best = argmax(row);
    out[per * r] = row[best];
    out[per * r + 1] = best;
    out[per * r + 2] = logSumExp(row, row[best]);
    if (k > 0) {
      topK(row, k, heap);
      out.set(heap, per * r + 3);
    }
  }
  return out;
};

/** The k largest logits' ids into `ids[0..k)` (a min-heap: ties go to the lower id). */
export function topK(logits: Float32Array, k: number, ids: Int32Array) {
  const V = logits.length;
  const worse = (a: number, b: number) => logits[a] < logits[b] || (logits[a] === logits[b] && a > b);
  for (let i = 0; i < k; i++) { ids[i] = i; siftUp(ids, i, worse); }
  // Later ids lose ties, so only a strictly larger logit enters; the heap's minimum is kept in a
  // local so the scan over the vocabulary is one comparison per token.
  let floor = logits[ids[0]];
  for (let i = k; i < V; i++) {
    if (!(logits[i] > floor)) continue;
    ids[0] = i;
    siftDown(ids, k, worse);
    floor = logits[ids[0]];
  }
}

/** Reusable scratch buffers so a decode step of 64 samples allocates nothing per row. */
export class Sampler {
  private ids = new Int32Array(0);
  private w = new Float64Array(0);

  constructor(readonly params: SamplerParams, private readonly stats: RowStatsFn = rowStatsJS) {}

  /** Draws one token from `logits` (one row, full vocabulary). */
  sample(logits: Float32Array, rng: Rng): Sampled {
    return this.sampleRows(logits, logits.length, [rng])[0];
  }

  /** Draws one token per row of `logits` ([rngs.length][V]), row r with rngs[r]. */
  sampleRows(logits: Float32Array, V: number, rngs: Rng[]): Sampled[] {
    if (logits.length !== V * rngs.length) throw new Error(`sampleRows: ${logits.length} logits for ${rngs.length} rows of ${V}`);
    const k = this.topKFor(V);
    const st = this.stats(logits, V, k);
    const per = 3 + k;
    return rngs.map((rng, r) => {
      const row = logits.subarray(r * V, (r + 1) * V);
      const at = per * r;
      const lse = st[at + 2];
      if (!(this.params.temperature > 0)) return { id: st[at + 1], logprob: row[st[at + 1]] - lse };
      const n = this.filter(row, st[at], k > 0 ? st.subarray(at + 3, at + 3 + k) : null);
      const id = this.draw(n, rng);
      return { id, logprob: row[id] - lse };
    });
  }

  /** top-k's k when it filters anything (0 = off) and the temperature samples at all. */
  private topKFor(V: number): number {
    const { temperature, topK } = this.params;
    return temperature > 0 && topK > 0 && topK < V ? topK : 0;
  }

  /** One draw from the n filtered candidates, by weight. */
  private draw(n: number, rng: Rng): number {
    let total = 0;
    for (let i = 0; i < n; i++) total += this.w[i];
    let u = rng.next() * total;
    let pick = this.ids[n - 1];
    for (let i = 0; i < n; i++) {
      u -= this.w[i];
      if (u < 0) { pick = this.ids[i]; break; }
    }
    return pick;
  }

  /**
   * The candidate set after temperature, top-k, min-p and top-p, as ids with unnormalised weights
   * exp((l - max) / T) (the best token has weight 1), in id order. Exposed for tests.
   */
  candidates(logits: Float32Array): { ids: Int32Array; weights: Float64Array } {
    const k = this.topKFor(logits.length);
    const st = this.stats(logits, logits.length, k);
    const n = this.filter(logits, st[0], k > 0 ? st.subarray(3, 3 + k) : null);
    return { ids: this.ids.slice(0, n), weights: this.w.slice(0, n) };
  }

  /** `top`: the top-k ids from the row statistics, or null when top-k is off. */
  private filter(logits: Float32Array, max: number, top: Float64Array | null): number {
    const { temperature, topP, minP } = this.params;
    const invT = 1 / temperature;
    let n = this.collect(logits, max, invT, top);
    if (minP > 0) n = this.minP(n, minP);
    if (topP < 1) n = this.topP(n, topP);
    // Canonical order (by id) for the draw: the heap and quickselect leave candidates in an order
    // that depends on exact logit values, so a rounding-level change (bifurcated vs replicated
    // attention) could reorder them and change the token drawn for the same random number.
    // In id order, a tiny change of the logits moves the boundaries only a tiny bit.
    if (n > 1) {
      const ids = this.ids.subarray(0, n).sort();
      for (let i = 0; i < n; i++) this.w[i] = expNeg((logits[ids[i]] - max) * invT);
    }
    return n;
  }

  /** Fills ids/w with the top-k candidates (all V tokens when top is null); returns the count. */
  private collect(logits: Float32Array, max: number, invT: number, top: Float64Array | null): number {
    const k = top ? top.length : logits.length;
    if (this.ids.length < k) { this.ids = new Int32Array(k); this.w = new Float64Array(k); }
    const ids = this.ids, w = this.w;
    for (let i = 0; i < k; i++) {
      const id = top ? top[i] : i;
      ids[i] = id;
      w[i] = expNeg((logits[id] - max) * invT);
    }
    return k;
  }

  /** Keeps candidates whose tempered probability is at least minP times the best one's (weight 1). */
  private minP(n: number, minP: number): number {
    let m = 0;
    for (let i = 0; i < n; i++) {
      if (this.w[i] >= minP) { this.ids[m] = this.ids[i]; this.w[m] = this.w[i]; m++; }
    }
    return Math.max(m, 1);
  }

  /**
   * Nucleus (Holtzman et al. 2020): the smallest set of most probable candidates whose mass is at
   * least p. Found by quickselect on weights (3-way partition, descending), not by sorting.
   */
  private topP(n: number, p: number): number {
    const ids = this.ids, w = this.w;
    let total = 0;
    for (let i = 0; i < n; i++) total += w[i];
    let need = p * total;
    let lo = 0, hi = n;
    while (hi - lo > 1) {
      const pivot = median3(w[lo], w[(lo + hi) >>> 1], w[hi - 1]);
      // Partition [lo, hi) into  > pivot | == pivot | < pivot.
      let gt = lo, i = lo, lt = hi;
      while (i < lt) {
        if (w[i] > pivot) { swap(ids, w, i, gt); gt++; i++; }
        else if (w[i] < pivot) { lt--; swap(ids, w, i, lt); }
        else i++;
      }
      let above = 0, equal = 0;
      for (let j = lo; j < gt; j++) above += w[j];
      for (let j = gt; j < lt; j++) equal += w[j];
      if (above >= need) { hi = gt; continue; }
      if (above + equal >= need) {
        // Take as many of the ties as needed.
        let acc = above, j = gt;
        while (j < lt && acc < need) acc += w[j++];
        return j;
      }
      need -= above + equal;
      lo = lt;
    }
    return Math.max(hi, 1);
  }
}

function median3(a: number, b: number, c: number): number {
  return a < b ? (b < c ? b : a < c ? c : a) : (a < c ? a : b < c ? c : b);
}

function swap(ids: Int32Array, w: Float64Array, i: number, j: number) {
  const t = ids[i]; ids[i] = ids[j]; ids[j] = t;
  const u = w[i]; w[i] = w[j]; w[j] = u;
}

function siftUp(h: Int32Array, i: number, worse: (a: number, b: number) => boolean) {
  while (i > 0) {
    const p = (i - 1) >> 1;
    if (!worse(h[i], h[p])) break;
    const t = h[i]; h[i] = h[p]; h[p] = t; i = p;
  }
}

function siftDown(h: Int32Array, n: number, worse: (a: number, b: number) => boolean) {
  let i = 0;
  for (;;) {
    const l = 2 * i + 1, r = l + 1;
    let m = i;
    if (l < n && worse(h[l], h[m])) m = l;
    if (r < n && worse(h[r], h[m])) m = r;
    if (m === i) return;
    const t = h[i]; h[i] = h[m]; h[m] = t; i = m;
  }
}
