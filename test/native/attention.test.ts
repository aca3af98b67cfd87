// The decode attention kernels (bifurcated and the replicated baseline) against a naive float64
// reference of ordinary attention over the concatenated KV [context ; sample's decode part], on fresh
// random inputs, for MHA, GQA and MQA, odd sizes. Error per output row is normwise relative:
// max_i |out_i - ref_i| / max_i |ref_i|; the worst row over the sweep is printed and must stay < 1e-5.
import { describe, expect, test } from 'vitest';
import { loadAddon, type AttentionMode, type AttentionTestArgs } from '../../engine/native';
import { freshSeed, gaussian, xorshift } from '../random';

const addon = loadAddon();

// Normals from a seeded xorshift, so a failure can be replayed from the printed seed.
const SEED = freshSeed();
const normal = gaussian(xorshift(SEED));
function randn(len: number, scale = 1): Float32Array {
  const a = new Float32Array(len);
  for (let i = 0; i < len; i++) a[i] = normal() * scale;
  return a;
}

function makeArgs(n: number, n_head: number, n_kv: number, hd: number, P: number, D: number): Omit<AttentionTestArgs, 'mode'> {
  return {
    n, n_head, n_kv, hd, P, D, threads: 2,
    // Queries scaled up so some softmaxes are sharply peaked (tests the max handling), others flat.
    q: randn(n * n_head * hd, 2),
    kc: randn(n_kv * P * hd), vc: randn(n_kv * P * hd),
    kd: randn(n * n_kv * D * hd), vd: randn(n * n_kv * D * hd),
  };
}

/** softmax(q K^T / sqrt(hd)) V over [context; decode] for every sample and head, in float64. */
function reference(a: Omit<AttentionTestArgs, 'mode'>): Float64Array {
  const { n, n_head, n_kv, hd, P, D } = a;
  const g = n_head / n_kv, scale = 1 / Math.sqrt(hd);
  const out = new Float64Array(n * n_head * hd);
  const s = new Float64Array(P + D);
  for (let i = 0; i < n; i++)
    for (let h = 0; h < n_head; h++) {
      const kvh = Math.floor(h / g), qo = (i * n_head + h) * hd;
      const key = (t: number) => (t < P ? [a.kc, (kvh * P + t) * hd] : [a.kd, ((i * n_kv + kvh) * D + t - P) * hd]) as [Float32Array, number];
      const val = (t: number) => (t < P ? [a.vc, (kvh * P + t) * hd] : [a.vd, ((i * n_kv + kvh) * D + t - P) * hd]) as [Float32Array, number];
      let m = -Infinity;
      for (let t = 0; t < P + D; t++) {
        const [K, o] = key(t);
        let d = 0;
        for (let x = 0; x < hd; x++) d += a.q[qo + x] * K[o + x];
        s[t] = d * scale;
        m = Math.max(m, s[t]);
      }
      let l = 0;
      for (let t = 0; t < P + D; t++) { s[t] = Math.exp(s[t] - m); l += s[t]; }
      for (let t = 0; t < P + D; t++) {
        const [V, o] = val(t);
        const w = s[t] / l;
        for (let x = 0; x < hd; x++) out[qo + x] += w * V[o + x];
      }
    }
  return out;
}

/** Worst normwise relative error over output rows (one row = one sample's one head). */
function maxRelError(got: Float32Array, ref: Float64Array, hd: number): number {
  let worst = 0;
  for (let r = 0; r < ref.length / hd; r++) {
    let num = 0, den = 0;
    for (let x = 0; x < hd; x++) {
      num = Math.max(num, Math.abs(got[r * hd + x] - ref[r * hd + x]));
      den = Math.max(den, Math.abs(ref[r * hd + x]));
    }
    worst = Math.max(worst, num / den);
  }
  return worst;
}

// Shapes: head counts of MHA, GQA (4 or 5 query heads per KV head) and MQA; head dims that are not
// multiples of the SIMD width as well as ones that are; together with the sample counts they give
// every row-block remainder of the vector kernels.
const SHAPES = [
  { name: 'MHA', n_head: 4, n_kv: 4, hd: 16 },
  { name: 'GQA', n_head: 8, n_kv: 2, hd: 36 },
  { name: 'GQA5', n_head: 10, n_kv: 2, hd: 32 }, // 5 query heads per KV head: odd row blocks
  { name: 'MQA', n_head: 6, n_kv: 1, hd: 64 },
];
const CONTEXTS = [1, 7, 1000];
const DECODES = [0, 1, 5, 33];
const SAMPLES = [1, 3, 8, 16, 64];

describe('decode attention vs float64 reference over the concatenated KV', () => {
  console.log(`[attention] random seed ${SEED}`);
  // Every kernel path this CPU has: the best one (auto), and capped to AVX2 and to scalar code through
  // the same switches as the matmul kernels (read by the addon at each call). The capped runs use a
  // smaller sweep; the row-block remainders are still all there.
  const cpu = addon.cpuInfo();
  const ISAS = [
    { name: 'auto', env: { FORKCAST_NO_SIMD: undefined, FORKCAST_SIMD: undefined }, samples: SAMPLES },
    ...(cpu.avx512 && cpu.avx2 ? [{ name: 'avx2', env: { FORKCAST_NO_SIMD: undefined, FORKCAST_SIMD: 'avx2' }, samples: [1, 3, 8] }] : []),
    { name: 'scalar', env: { FORKCAST_NO_SIMD: '1', FORKCAST_SIMD: undefined }, samples: [1, 3] },
  ];
  const withEnv = <T>(env: Record<string, string | undefined>, fn: () => T): T => {
    const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
    const set = (e: Record<string, string | undefined>) => {
      for (const [k, v] of Object.entries(e)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    };
    set(env);
    try { return fn(); } finally { set(saved); }
  };
  for (const isa of ISAS)
    for (const mode of ['bifurcated', 'replicated'] as AttentionMode[]) {
      test(`${mode} (${isa.name} kernels): MHA/GQA/MQA, context ${CONTEXTS.join('/')}, decode ${DECODES.join('/')}, n ${isa.samples.join('/')}`, () => {
        const worst: Record<string, number> = {};
        let cases = 0;
        withEnv(isa.env, () => {
          for (const sh of SHAPES)
            for (const P of CONTEXTS)
              for (const D of DECODES)
                for (const n of isa.samples) {
                  if (n === 64 && P === 1000 && D === 33 && sh.name !== 'MQA') continue; // keep the sweep to seconds
                  const args = makeArgs(n, sh.n_head, sh.n_kv, sh.hd, P, D);
                  const got = addon.attention({ ...args, mode });
                  const e = maxRelError(got, reference(args), sh.hd);
                  worst[sh.name] = Math.max(worst[sh.name] ?? 0, e);
                  cases++;
                  if (!(e < 1e-5)) throw new Error(`${mode} ${isa.name} ${sh.name} n=${n} P=${P} D=${D}: max relative error ${e}`);
                }
        });
        console.log(`[attention] ${mode}, ${isa.name} kernels: ${cases} cases, max relative error per shape`, worst);
        for (const e of Object.values(worst)) expect(e).toBeLessThan(1e-5);
      });
    }

  test('few jobs, many threads: positions split across threads and merged (n 1-2, 8 threads)', () => {
    let worst = 0;
    for (const mode of ['bifurcated', 'replicated'] as AttentionMode[])
      for (const sh of SHAPES)
        for (const P of [300, 1000])
          for (const D of [0, 7])
            for (const n of [1, 2]) {
              const args = { ...makeArgs(n, sh.n_head, sh.n_kv, sh.hd, P, D), threads: 8 };
              const e = maxRelError(addon.attention({ ...args, mode }), reference(args), sh.hd);
              if (!(e < 1e-5)) throw new Error(`${mode} ${sh.name} n=${n} P=${P} D=${D} (8 threads): max relative error ${e}`);
              worst = Math.max(worst, e);
            }
    console.log(`[attention] split over positions (8 threads): max relative error ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(1e-5);
  });

  test('bifurcated and replicated agree on the same inputs (GQA, n=16, context 300, decode 9)', () => {
    const args = makeArgs(16, 14, 2, 64, 300, 9);
    const b = addon.attention({ ...args, mode: 'bifurcated' });
    const r = addon.attention({ ...args, mode: 'replicated' });
    const ref = reference(args);
    const eb = maxRelError(b, ref, 64), er = maxRelError(r, ref, 64);
    console.log(`[attention] Qwen-like GQA: bifurcated ${eb.toExponential(2)}, replicated ${er.toExponential(2)}`);
    expect(eb).toBeLessThan(1e-5);
    expect(er).toBeLessThan(1e-5);
  });

  test('bad arguments give clear errors, not crashes', () => {
    const args = makeArgs(2, 4, 2, 16, 5, 1);
    expect(() => addon.attention({ ...args, mode: 'bifurcated', kc: new Float32Array(3) })).toThrow(/kc has 3 floats/);
    expect(() => addon.attention({ ...args, mode: 'bifurcated', n_kv: 3 })).toThrow(/multiple of n_kv/);
    expect(() => addon.attention({ ...args, mode: 'sideways' as AttentionMode })).toThrow(/mode/);
  });
});

// Prompt chunks (attention_prefill): T new tokens at positions p0..p0+T-1, each attending causally to
// positions 0..its own, against float64. On CPUs with AMX BF16 the 'auto' kernels put both products on
// the matrix unit, every float split exactly into three bf16 parts (six part products per block,
// fp32-accurate); capped to AVX-512, AVX2 and scalar code the same chunks run on the vector kernels.
describe('prefill attention vs float64 causal reference', () => {
  const cpu = addon.cpuInfo();
  const FAMILIES = [
    { name: 'auto', env: { FORKCAST_NO_SIMD: undefined, FORKCAST_SIMD: undefined } },
    ...(cpu.avx512 ? [{ name: 'avx512', env: { FORKCAST_NO_SIMD: undefined, FORKCAST_SIMD: 'avx512' } }] : []),
    ...(cpu.avx2 ? [{ name: 'avx2', env: { FORKCAST_NO_SIMD: undefined, FORKCAST_SIMD: 'avx2' } }] : []),
    { name: 'scalar', env: { FORKCAST_NO_SIMD: '1', FORKCAST_SIMD: undefined } },
  ];
  // hd 64 and 128 take the tile kernel; hd 36 the vector kernels whatever the CPU. 14/2: Qwen's GQA.
  const PSHAPES = [
    { name: 'MHA', n_head: 4, n_kv: 4, hd: 64 },
    { name: 'GQA', n_head: 14, n_kv: 2, hd: 64 },
    { name: 'MQA', n_head: 8, n_kv: 1, hd: 128 },
    { name: 'GQA36', n_head: 8, n_kv: 2, hd: 36 },
  ];
  function causalReference(q: Float32Array, kc: Float32Array, vc: Float32Array, T: number, p0: number, n_head: number, n_kv: number, hd: number): Float64Array {
    const g = n_head / n_kv, scale = 1 / Math.sqrt(hd), N = p0 + T;
    const out = new Float64Array(T * n_head * hd), s = new Float64Array(N);
    for (let t = 0; t < T; t++)
      for (let h = 0; h < n_head; h++) {
        const kvh = Math.floor(h / g), qo = (t * n_head + h) * hd, seen = p0 + t + 1;
        let m = -Infinity;
        for (let u = 0; u < seen; u++) {
          let d = 0;
          for (let x = 0; x < hd; x++) d += q[qo + x] * kc[(kvh * N + u) * hd + x];
          s[u] = d * scale;
          m = Math.max(m, s[u]);
        }
        let l = 0;
        for (let u = 0; u < seen; u++) { s[u] = Math.exp(s[u] - m); l += s[u]; }
        for (let u = 0; u < seen; u++)
          for (let x = 0; x < hd; x++) out[qo + x] += (s[u] / l) * vc[(kvh * N + u) * hd + x];
      }
    return out;
  }
  for (const fam of FAMILIES)
    test(`${fam.name} kernels: MHA/GQA/MQA, chunks of 1/7/16/45/100 tokens after 0/5/130 cached positions`, () => {
      const worst: Record<string, number> = {};
      for (const [k, v] of Object.entries(fam.env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
      try {
        for (const sh of PSHAPES)
          for (const T of [1, 7, 16, 45, 100])
            for (const p0 of [0, 5, 130]) {
              const N = p0 + T;
              const q = randn(T * sh.n_head * sh.hd, 2), kc = randn(sh.n_kv * N * sh.hd), vc = randn(sh.n_kv * N * sh.hd);
              const got = addon.attention({ mode: 'prefill', n: T, n_head: sh.n_head, n_kv: sh.n_kv, hd: sh.hd, P: p0, D: 0, q, kc, vc, threads: 2 });
              const e = maxRelError(got, causalReference(q, kc, vc, T, p0, sh.n_head, sh.n_kv, sh.hd), sh.hd);
              worst[sh.name] = Math.max(worst[sh.name] ?? 0, e);
              if (!(e < 1e-5)) throw new Error(`prefill ${fam.name} ${sh.name} T=${T} p0=${p0}: max relative error ${e}`);
            }
      } finally {
        delete process.env.FORKCAST_NO_SIMD;
        delete process.env.FORKCAST_SIMD;
      }
      console.log(`[attention] prefill, ${fam.name} kernels: max relative error per shape`, worst);
      for (const e of Object.values(worst)) expect(e).toBeLessThan(1e-5);
    });
});
