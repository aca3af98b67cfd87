// make-model writes what llama.cpp's converter writes: for the shapes of the converter-made arch
// fixtures, the same tensor names, shapes and hyperparameter keys; the tokenizer copied whole; the
// K-quant mixes and per-tensor fallbacks following llama.cpp's quantizer rules; seeded and deterministic.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GGMLType, GGUFFile, ggmlTypeName, parseGGUF } from '../../engine/gguf';
import { makeModel, MakeModelArch, MakeModelOptions, toBF16, toF16 } from '../../engine/makeModel';
import { loadAddon } from '../../engine/native';
import { HAVE_SHARED, fixture } from '../shared';

const dir = mkdtempSync(join(tmpdir(), 'forkcast-mm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const load = (p: string) => parseGGUF(new Uint8Array(readFileSync(p)));
const haveQuantize = (() => {
  try { return typeof loadAddon().quantize === 'function'; } catch { return false; }
})();
if (!haveQuantize) console.warn('[makeModel tests] native addon with quantize() not built: quantized-type cases skipped');

function f32s(f: GGUFFile, name: string): Float32Array {
  const t = f.tensor(name)!;
  const b = f.tensorData(t);
  if (t.type === GGMLType.F32) return new Float32Array(b.slice().buffer);
  if (t.type === GGMLType.F16 || t.type === GGMLType.BF16) {
    const h = new Uint16Array(b.slice().buffer);
    return Float32Array.from(h, (x) => (t.type === GGMLType.F16 ? fromF16(x) : new Float32Array(new Uint32Array([x << 16]).buffer)[0]));
  }
  return loadAddon().dequantize(t.type, b, t.dims.reduce((a, c) => a * c, 1));
}
function fromF16(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
const stats = (x: Float32Array) => {
  let m = 0; for (const v of x) m += v; m /= x.length;
  let v2 = 0; for (const v of x) v2 += (v - m) ** 2;
  return { mean: m, std: Math.sqrt(v2 / x.length) };
};

const FIXTURES: Array<{ file: string; arch: MakeModelArch; kvHeads: number; ff: number; ctx: number; tied: boolean }> = [
  { file: 'llama-tiny', arch: 'llama', kvHeads: 2, ff: 176, ctx: 256, tied: false },
  { file: 'qwen2-tiny', arch: 'qwen2', kvHeads: 1, ff: 160, ctx: 256, tied: true },
  { file: 'starcoder2-tiny', arch: 'starcoder2', kvHeads: 2, ff: 256, ctx: 256, tied: true },
  { file: 'gpt_bigcode-tiny', arch: 'starcoder', kvHeads: 1, ff: 256, ctx: 128, tied: true },
];

describe.skipIf(!HAVE_SHARED)('make-model', () => {
  for (const fx of FIXTURES) {
    it(`${fx.arch}: same tensors and hyperparameter keys as llama.cpp's converter (${fx.file}.gguf)`, () => {
      const ref = load(fixture('arch', `${fx.file}.gguf`));
      const out = join(dir, `${fx.arch}.gguf`);
      const r = makeModel({
        arch: fx.arch, layers: 2, embd: 64, heads: 4, kvHeads: fx.kvHeads, ff: fx.ff, ctx: fx.ctx, type: 'F32',
        vocabFrom: fixture('arch', `${fx.file}.gguf`), seed: 7, out, tiedOutput: fx.tied,
      });
      const f = load(out);
      const shape = (g: GGUFFile) => g.tensors.map((t) => `${t.name} ${t.dims.join('x')} ${ggmlTypeName(t.type)}`).sort();
      expect(shape(f)).toEqual(shape(ref));
      // Every hyperparameter the converter wrote is there with the same value (names/labels aside).
      const skip = new Set(['general.name', 'general.size_label']);
      for (const [k, v] of ref.metadata) {
        if (skip.has(k)) continue;
        expect(f.get(k), k).toEqual(v);
      }
      expect(r.vocabSize).toBe(ref.getStringArray('tokenizer.ggml.tokens').length);
      expect(r.parameters).toBe(ref.tensors.reduce((s, t) => s + t.dims.reduce((a, b) => a * b, 1), 0));
      expect(r.fallbacks).toEqual([]);
    });
  }

  it('is deterministic in the seed, with weights scaled like real inits', () => {
    const opts: MakeModelOptions = {
      arch: 'llama', layers: 1, embd: 128, heads: 4, kvHeads: 4, ff: 256, ctx: 64, type: 'F32',
      vocabFrom: fixture('vocab', 'ggml-vocab-llama-spm.gguf'), seed: 1, out: join(dir, 'a.gguf'),
    };
    makeModel(opts);
    makeModel({ ...opts, out: join(dir, 'b.gguf') });
    makeModel({ ...opts, seed: 2, out: join(dir, 'c.gguf') });
    const [a, b, c] = ['a', 'b', 'c'].map((n) => readFileSync(join(dir, `${n}.gguf`)));
    expect(Buffer.compare(a, b)).toBe(0);
    expect(Buffer.compare(a, c)).not.toBe(0);
    const f = load(join(dir, 'a.gguf'));
    expect(f.tensor('token_embd.weight')!.dims).toEqual([128, 32000]);
    const emb = stats(f32s(f, 'token_embd.weight'));
    expect(Math.abs(emb.mean)).toBeLessThan(0.002);
    expect(emb.std).toBeCloseTo(1 / Math.sqrt(128), 3);
    const down = stats(f32s(f, 'blk.0.ffn_down.weight'));
    expect(down.std).toBeCloseTo(1 / Math.sqrt(256), 2);
    const norm = stats(f32s(f, 'blk.0.attn_norm.weight'));
    expect(norm.mean).toBeGreaterThan(0.95); // 128 draws of 1 + 0.1 N(0,1): 5 standard errors
    expect(norm.mean).toBeLessThan(1.05);
    expect(norm.std).toBeGreaterThan(0.07);
    expect(norm.std).toBeLessThan(0.13);
    // Different tensors get different streams (no two weights identical).
    expect(Buffer.compare(f.tensorData(f.tensor('blk.0.attn_q.weight')!), f.tensorData(f.tensor('blk.0.attn_k.weight')!))).not.toBe(0);
    // The tokenizer is copied whole.
    const vocab = load(fixture('vocab', 'ggml-vocab-llama-spm.gguf'));
    for (const [k, v] of vocab.metadata) if (k.startsWith('tokenizer.')) expect(f.get(k), k).toEqual(v);
  });

  it('F16 and BF16 encodings round to nearest even', () => {
    expect(toF16(1)).toBe(0x3c00);
    expect(toF16(65504)).toBe(0x7bff);
    expect(toF16(65520)).toBe(0x7c00); // rounds up to infinity
    expect(toF16(2 ** -24)).toBe(1); // smallest subnormal
    expect(toF16(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(toF16(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(toF16(-0.1)).toBe(0xae66);
    expect(toBF16(1)).toBe(0x3f80);
    expect(toBF16(1 + 2 ** -8)).toBe(0x3f80); // tie -> even
    expect(toBF16(1 + 3 * 2 ** -8)).toBe(0x3f82);
    // Against a float64 reference: every encoded float32 value goes to the nearest representable half
    // (fresh inputs each run; the inputs are float32, as make-model's weights are).
    for (let i = 0; i < 2000; i++) {
      const x = Math.fround((Math.random() - 0.5) * 10);
      const h = fromF16(toF16(x));
      expect(Math.abs(h - x), `${x}`).toBeLessThanOrEqual(Math.max(2 ** -25, 2 ** (Math.floor(Math.log2(Math.abs(x))) - 11)));
    }
  });

  it('falls back per tensor when a row length does not fit the block, and says so', () => {
    // embd 40 and ff 72: no row length is a multiple of 32, so every Q8_0 weight becomes F16.
    const warnings: string[] = [];
    const r = makeModel({
      arch: 'starcoder2', layers: 1, embd: 40, heads: 5, kvHeads: 1, ff: 72, ctx: 32, type: 'Q8_0',
      vocabFrom: fixture('arch', 'starcoder2-tiny.gguf'), seed: 3, out: join(dir, 'fb.gguf'), onWarning: (w) => warnings.push(w),
    });
    expect(r.fallbacks.map((f) => f.tensor).sort()).toEqual(
      ['token_embd.weight', 'blk.0.attn_q.weight', 'blk.0.attn_k.weight', 'blk.0.attn_v.weight', 'blk.0.attn_output.weight', 'blk.0.ffn_up.weight', 'blk.0.ffn_down.weight'].sort());
    expect(r.fallbacks.find((f) => f.tensor === 'blk.0.ffn_down.weight')).toEqual(
      { tensor: 'blk.0.ffn_down.weight', wanted: 'Q8_0', used: 'F16', reason: 'row length 72 is not a multiple of 32' });
    expect(warnings).toEqual([r.warning]);
    expect(r.warning).toMatch(/7 of \d+ tensors fell back.*6x Q8_0->F16 \(row length 40 is not a multiple of 32\); 1x Q8_0->F16 \(row length 72/);
    expect(load(join(dir, 'fb.gguf')).tensors.filter((t) => t.type === GGMLType.F16)).toHaveLength(7);
  });

  it('streams: writing a 390 MB model holds far less than the model in memory', () => {
    // 12 layers of width 1024 / ff 4096 in F16: about 390 MB. Memory is sampled after every tensor;
    // growth must stay well below the file (one tensor and a few generation chunks, plus GC lag).
    const base = process.memoryUsage();
    let peak = 0, calls = 0;
    const r = makeModel({
      arch: 'llama', layers: 12, embd: 1024, heads: 8, kvHeads: 8, ff: 4096, ctx: 256, type: 'F16',
      vocabFrom: fixture('arch', 'llama-tiny.gguf'), seed: 1, out: join(dir, 'big.gguf'),
      onProgress: (done, total) => {
        calls++;
        expect(done).toBe(calls);
        expect(total).toBe(12 * 9 + 3);
        const m = process.memoryUsage();
        peak = Math.max(peak, m.heapUsed + m.arrayBuffers - base.heapUsed - base.arrayBuffers);
      },
    });
    rmSync(join(dir, 'big.gguf'));
    console.log(`[make-model] ${(r.bytes / 2 ** 20).toFixed(0)} MB written with at most ${(peak / 2 ** 20).toFixed(0)} MB more JS heap + array buffers`);
    expect(r.bytes).toBeGreaterThan(380 * 2 ** 20);
    expect(calls).toBe(12 * 9 + 3);
    expect(peak).toBeLessThan(r.bytes / 3);
  });

  it('rejects impossible shapes with the flag named', () => {
    const base: MakeModelOptions = {
      arch: 'llama', layers: 1, embd: 64, heads: 4, kvHeads: 2, ff: 64, ctx: 16, type: 'F32',
      vocabFrom: fixture('arch', 'llama-tiny.gguf'), seed: 1, out: join(dir, 'x.gguf'),
    };
    expect(() => makeModel({ ...base, embd: 65 })).toThrow(/--embd 65 is not divisible by --heads 4/);
    expect(() => makeModel({ ...base, kvHeads: 3 })).toThrow(/--heads 4 is not a multiple of --kv-heads 3/);
    expect(() => makeModel({ ...base, layers: 0 })).toThrow(/--layers must be an integer/);
    expect(() => makeModel({ ...base, type: 'Q3_K' as any })).toThrow(/--type must be one of/);
    expect(() => makeModel({ ...base, vocabFrom: join(dir, 'nope.gguf') })).toThrow(/cannot open model file/);
  });

  it.skipIf(!haveQuantize)('Q4_K_M follows llama.cpp\'s mix: Q6_K output and use_more_bits layers of attn_v/ffn_down', () => {
    const r = makeModel({
      arch: 'llama', layers: 8, embd: 256, heads: 4, kvHeads: 2, ff: 512, ctx: 64, type: 'Q4_K_M',
      vocabFrom: fixture('arch', 'llama-tiny.gguf'), seed: 5, out: join(dir, 'q4km.gguf'),
    });
    const f = load(join(dir, 'q4km.gguf'));
    const typeOf = (n: string) => ggmlTypeName(f.tensor(n)!.type);
    // use_more_bits(i, 8): i < 1, i >= 7, or (i - 1) % 3 == 2 -> layers 0, 3, 6, 7.
    for (let i = 0; i < 8; i++) {
      const more = [0, 3, 6, 7].includes(i);
      expect(typeOf(`blk.${i}.attn_v.weight`)).toBe(more ? 'Q6_K' : 'Q4_K');
      expect(typeOf(`blk.${i}.ffn_down.weight`)).toBe(more ? 'Q6_K' : 'Q4_K');
      expect(typeOf(`blk.${i}.attn_q.weight`)).toBe('Q4_K');
      expect(typeOf(`blk.${i}.attn_norm.weight`)).toBe('F32');
    }
    expect(typeOf('output.weight')).toBe('Q6_K');
    expect(typeOf('token_embd.weight')).toBe('Q4_K');
    expect(r.warning).toBeNull();
  });

  it.skipIf(!haveQuantize)('K-quants fall back to Q8_0 where rows are multiples of 32 but not 256 (Qwen2.5-Coder-0.5B widths)', () => {
    const r = makeModel({
      arch: 'qwen2', layers: 1, embd: 896, heads: 14, kvHeads: 2, ff: 4864, ctx: 64, type: 'Q4_K_M',
      vocabFrom: fixture('arch', 'qwen2-tiny.gguf'), seed: 5, out: join(dir, 'qwen-fb.gguf'),
    });
    const f = load(join(dir, 'qwen-fb.gguf'));
    // Tied output: token_embd is the output, rows of 896 don't fit 256 -> Q8_0 by the output rule itself.
    expect(ggmlTypeName(f.tensor('token_embd.weight')!.type)).toBe('Q8_0');
    expect(ggmlTypeName(f.tensor('blk.0.ffn_down.weight')!.type)).toBe('Q6_K'); // 4864 = 19 * 256
    expect(ggmlTypeName(f.tensor('blk.0.attn_q.weight')!.type)).toBe('Q8_0');
    expect(r.fallbacks.map((x) => x.tensor).sort()).toEqual(
      ['blk.0.attn_q.weight', 'blk.0.attn_k.weight', 'blk.0.attn_v.weight', 'blk.0.attn_output.weight', 'blk.0.ffn_gate.weight', 'blk.0.ffn_up.weight'].sort());
    expect(r.warning).toMatch(/5x Q4_K->Q8_0 \(row length 896 is not a multiple of 256\); 1x Q6_K->Q8_0/);
  });
});
