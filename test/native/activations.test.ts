// The elementwise kernels (SwiGLU's silu, GELU) and the sampler's row statistics (max, argmax,
// log-sum-exp, top-k ids) against float64 references on fresh random inputs, with the SIMD path the
// CPU picks and the portable scalar twin (FORKCAST_NO_SIMD=1, read at each call).
import { afterEach, describe, expect, test } from 'vitest';
import { loadAddon } from '../../engine/native';
import { Rng, Sampler, rowStatsJS, topK } from '../../engine/sampler';
import { freshSeed, gaussian, xorshift } from '../random';

const addon = loadAddon();
const SEED = freshSeed();
const normal = gaussian(xorshift(SEED));
console.log(`activations seed ${SEED}`);

function randn(len: number, scale: number): Float32Array {
  return Float32Array.from({ length: len }, () => normal() * scale);
}

const PATHS = ['simd', 'scalar'] as const;
function usePath(p: (typeof PATHS)[number]) {
  if (p === 'scalar') process.env.FORKCAST_NO_SIMD = '1';
  else delete process.env.FORKCAST_NO_SIMD;
}
afterEach(() => { delete process.env.FORKCAST_NO_SIMD; });

/**
 * max_i |got_i - ref_i| / max(|ref_i|, 1): relative error where the value is at least 1, absolute
 * below. Both functions go to 0 for large negative inputs through a cancellation (1 + tanh, or
 * x - x * sigmoid) that float32 cannot resolve relatively; what a layer feels is the absolute error.
 */
function maxRel(got: Float32Array, ref: Float64Array): number {
  let worst = 0;
  for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]) / Math.max(Math.abs(ref[i]), 1));
  return worst;
}

describe.each(PATHS)('activations (%s)', (path) => {
  // Odd length: the vector loop and its scalar tail both run. Scale 6 reaches the saturated ends;
  // a few huge values check the clamping of exp.
  const n = 4099;
  const g = randn(n, 6), h = randn(n, 1);
  g[5] = 120; g[6] = -120; g[7] = 90; g[8] = -90;

  test('silu(g) * h matches float64 within 1e-6', () => {
    usePath(path);
    const got = addon.activation('silu_mul', h, g);
    const ref = Float64Array.from(g, (x, i) => (x / (1 + Math.exp(-x))) * h[i]);
    const err = maxRel(got, ref);
    console.log(`silu_mul ${path}: max rel error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-6);
  });

  test('gelu(h) (tanh form) matches float64 within 1e-6', () => {
    usePath(path);
    const x = g;
    const got = addon.activation('gelu', x);
    const ref = Float64Array.from(x, (v) => 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v))));
    const err = maxRel(got, ref);
    console.log(`gelu ${path}: max rel error ${err.toExponential(2)}`);
    expect(err).toBeLessThan(1e-6);
  });
});

describe.each(PATHS)('sampler row statistics (%s)', (path) => {
  const V = 151_936 + 7, rows = 3, k = 40;

  function logitsWithTies(): Float32Array {
    const x = randn(V * rows, 3);
    // Ties at the top-k boundary and at the max: the lower id must win in both implementations.
    for (let r = 0; r < rows; r++) {
      const row = x.subarray(r * V, (r + 1) * V);
      const order = Array.from(row.keys()).sort((a, b) => row[b] - row[a]);
      row[order[k - 1] + 1 < V ? V - 1 : 0] = row[order[k - 1]]; // a later id ties the k-th largest
      row[V - 2] = row[order[0]]; // a later id ties the max
    }
    return x;
  }

  test('max, argmax and log-sum-exp match float64; top-k ids equal the JS heap (ties included)', () => {
    usePath(path);
    const x = logitsWithTies();
    const got = addon.rowStats(x, V, k);
    expect(got.length).toBe(rows * (3 + k));
    const js = rowStatsJS(x, V, k);
    let lseErr = 0;
    for (let r = 0; r < rows; r++) {
      const row = x.subarray(r * V, (r + 1) * V);
      let max = -Infinity, arg = 0;
      for (let i = 0; i < V; i++) if (row[i] > max) { max = row[i]; arg = i; }
      let s = 0;
      for (let i = 0; i < V; i++) s += Math.exp(row[i] - max);
      const lse = max + Math.log(s);
      const at = r * (3 + k);
      expect(got[at]).toBe(max);
      expect(got[at + 1]).toBe(arg);
      lseErr = Math.max(lseErr, Math.abs(got[at + 2] - lse) / Math.abs(lse));
      const ids = Array.from(got.subarray(at + 3, at + 3 + k)).sort((a, b) => a - b);
      const jsIds = Array.from(js.subarray(at + 3, at + 3 + k)).sort((a, b) => a - b);
      expect(ids).toEqual(jsIds);
      const heap = new Int32Array(k);
      topK(row, k, heap);
      // Every id kept is at least as large as every id dropped.
      const kept = new Set(ids);
      const minKept = Math.min(...ids.map((i) => row[i]));
      for (let i = 0; i < V; i++) if (!kept.has(i)) expect(row[i]).toBeLessThanOrEqual(minKept);
    }
    console.log(`rowStats ${path}: log-sum-exp max rel error ${lseErr.toExponential(2)} over ${rows} rows of ${V}`);
    expect(lseErr).toBeLessThan(1e-6);
  });

  test('a sampler fed the native statistics draws what the JS one draws', () => {
    usePath(path);
    const x = randn(V * 4, 2);
    const params = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 };
    const native = new Sampler(params, (l, v, kk) => addon.rowStats(l, v, kk));
    const plain = new Sampler(params);
    const seeds = [1, 2, 3, 4];
    const a = native.sampleRows(x, V, seeds.map((s) => new Rng(SEED, s)));
    const b = plain.sampleRows(x, V, seeds.map((s) => new Rng(SEED, s)));
    expect(a.map((d) => d.id)).toEqual(b.map((d) => d.id));
    a.forEach((d, i) => expect(Math.abs(d.logprob - b[i].logprob)).toBeLessThan(1e-6));
  });
});
