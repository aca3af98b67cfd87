// Sampler: seeded streams, greedy ties, and each filter against a brute-force sorted reference on
// fresh random logits (150k vocabulary, the size of Qwen2.5-Coder's).
import { describe, expect, it } from 'vitest';
import { Rng, Sampler, argmax, logSumExp } from '../../engine/sampler';

function randomLogits(V: number, rng: Rng, scale = 4): Float32Array {
  const l = new Float32Array(V);
  for (let i = 0; i < V; i++) {
    // Box-Muller normal, scaled: a peaked but wide distribution like a real model's.
    const u = rng.next() || 1e-12, v = rng.next();
    l[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
  return l;
}

/** Reference: sort descending, apply temperature, top-k, min-p, top-p on float64 probabilities. */
function referenceSet(l: Float32Array, T: number, k: number, p: number, minP: number): Set<number> {
  const order = Array.from(l.keys()).sort((a, b) => l[b] - l[a] || a - b);
  let kept = k > 0 ? order.slice(0, k) : order;
  const w = (i: number) => Math.exp((l[i] - l[order[0]]) / T);
  if (minP > 0) kept = kept.filter((i) => w(i) >= minP);
  if (p < 1) {
    const total = kept.reduce((s, i) => s + w(i), 0);
    let acc = 0, cut = 0;
    while (cut < kept.length && acc < p * total) acc += w(kept[cut++]);
    kept = kept.slice(0, Math.max(cut, 1));
  }
  return new Set(kept);
}

describe('Rng', () => {
  it('is reproducible per (seed, stream) and streams differ', () => {
    const a = new Rng(42, 3), b = new Rng(42, 3), c = new Rng(42, 4), d = new Rng(43, 3);
    const xs = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(xs);
    expect(Array.from({ length: 8 }, () => d.nextU32())).not.toEqual(xs);
  });

  it('is uniform in [0,1): mean and variance over 200k draws', () => {
    const r = new Rng(7, 0);
    let s = 0, s2 = 0, min = 1, max = 0;
    const N = 200_000;
    for (let i = 0; i < N; i++) { const x = r.next(); s += x; s2 += x * x; min = Math.min(min, x); max = Math.max(max, x); }
    const mean = s / N, variance = s2 / N - mean * mean;
    console.log(`rng mean ${mean.toFixed(5)} variance ${variance.toFixed(5)} (1/12 = 0.08333)`);
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.005);
    expect(Math.abs(variance - 1 / 12)).toBeLessThan(0.002);
    expect(min).toBeGreaterThanOrEqual(0);
    expect(max).toBeLessThan(1);
  });
});

describe('Sampler', () => {
  it('temperature 0 is argmax with ties going to the lowest id, logprob from the raw distribution', () => {
    const l = new Float32Array([0.5, 2, -1, 2, 1]);
    const s = new Sampler({ temperature: 0, topK: 0, topP: 1, minP: 0 });
    const r = s.sample(l, new Rng(1));
    expect(r.id).toBe(1);
    const ref = 2 - Math.log([0.5, 2, -1, 2, 1].reduce((a, x) => a + Math.exp(x), 0));
    expect(r.logprob).toBeCloseTo(ref, 6);
    expect(argmax(l)).toBe(1);
  });

  it('logSumExp does not overflow on large logits', () => {
    const l = new Float32Array([1000, 1000, 999]);
    expect(logSumExp(l)).toBeCloseTo(1000 + Math.log(2 + Math.exp(-1)), 4);
  });

  const V = 150_000;
  const cases: Array<[number, number, number, number]> = [
    [0.8, 40, 1, 0], [0.8, 0, 0.95, 0], [1.2, 0, 0.9, 0], [0.7, 0, 1, 0.05], [0.8, 40, 0.95, 0.05], [0.5, 1, 1, 0],
  ];
  for (const [T, k, p, minP] of cases) {
    it(`candidate set equals a sorted reference: T=${T} top-k=${k} top-p=${p} min-p=${minP}`, () => {
      const rng = new Rng(Date.now() >>> 0); // fresh inputs every run
      const l = randomLogits(V, rng, 1 + rng.next() * 4);
      const s = new Sampler({ temperature: T, topK: k, topP: p, minP });
      const got = new Set(s.candidates(l).ids);
      const want = referenceSet(l, T, k, p, minP);
      console.log(`T=${T} k=${k} p=${p} minP=${minP}: ${want.size} candidates of ${V}`);
      expect(got.size).toBe(want.size);
      for (const id of want) expect(got.has(id)).toBe(true);
    });
  }

  it('draws tokens with the tempered, renormalised frequencies', () => {
    const l = new Float32Array([1, 2, 0.5, 3, -2]);
    const T = 0.7;
    const s = new Sampler({ temperature: T, topK: 0, topP: 1, minP: 0 });
    const rng = new Rng(99, 1);
    const counts = new Array(5).fill(0);
    const N = 100_000;
    for (let i = 0; i < N; i++) counts[s.sample(l, rng).id]++;
    const w = Array.from(l, (x) => Math.exp(x / T));
    const Z = w.reduce((a, b) => a + b, 0);
    let maxErr = 0;
    for (let i = 0; i < 5; i++) maxErr = Math.max(maxErr, Math.abs(counts[i] / N - w[i] / Z));
    console.log(`max frequency error ${maxErr.toFixed(4)} over ${N} draws`);
    expect(maxErr).toBeLessThan(0.01);
  });

  it('never draws outside top-k and reports raw logprobs', () => {
    const rng = new Rng(5);
    const l = randomLogits(1000, rng);
    const top3 = new Set(Array.from(l.keys()).sort((a, b) => l[b] - l[a]).slice(0, 3));
    const s = new Sampler({ temperature: 1.5, topK: 3, topP: 1, minP: 0 });
    const lse = Math.log(Array.from(l).reduce((a, x) => a + Math.exp(x), 0));
    for (let i = 0; i < 500; i++) {
      const r = s.sample(l, rng);
      expect(top3.has(r.id)).toBe(true);
      expect(r.logprob).toBeCloseTo(l[r.id] - lse, 4);
    }
  });

  it('same seed and stream give the same draws', () => {
    const l = randomLogits(5000, new Rng(11), 1);
    const s = new Sampler({ temperature: 1, topK: 0, topP: 0.9, minP: 0 });
    const draw = (stream: number) => { const r = new Rng(123, stream); return Array.from({ length: 20 }, () => s.sample(l, r).id); };
    expect(draw(0)).toEqual(draw(0));
    expect(draw(0)).not.toEqual(draw(1));
  });
});
