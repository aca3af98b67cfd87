// make-model: random-weight GGUF models of any shape, for tests and benchmarks. Tensor names, shapes
// and hyperparameter keys are those llama.cpp's converter writes for each architecture (checked against
// the converter-made fixtures in ../shared/fixtures/arch); the tokenizer is copied from another GGUF.
// Weights come from a seeded PRNG, one independent stream per tensor, generated and quantized a chunk
// of rows at a time and streamed to the file, so a 1.3B-parameter model never sits in memory.
import { openGGUF, GGMLType, GGMLTypeName, GGUFError, GGUFType, GGUFValue, ggmlTypeTraits, ggmlTypeName } from './gguf';
import { writeGGUF, GGUFWriteTensor } from './ggufWriter';
import { loadAddon } from './native';

export type MakeModelArch = 'llama' | 'qwen2' | 'starcoder2' | 'starcoder';
/** A single tensor type for every 2-D weight ("pure"), or one of llama.cpp's K-quant mixes. */
export type MakeModelType = GGMLTypeName | 'Q4_K_M' | 'Q5_K_M';
export const MAKE_MODEL_ARCHS: readonly MakeModelArch[] = ['llama', 'qwen2', 'starcoder2', 'starcoder'];
export const MAKE_MODEL_TYPES: readonly MakeModelType[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q5_K', 'Q6_K', 'Q4_K_M', 'Q5_K_M'];

export interface MakeModelOptions {
  arch: MakeModelArch;
  layers: number;
  embd: number;
  heads: number;
  kvHeads: number;
  ff: number;
  ctx: number;
  type: MakeModelType;
  /** A GGUF (vocab-only or a model) whose tokenizer.* metadata is copied; vocab size = its token count. */
  vocabFrom: string;
  seed: number;
  out: string;
  /** Output projection shared with token_embd (no output.weight). Default: false for llama, true otherwise. */
  tiedOutput?: boolean;
  /** Rope frequency base (default per arch: llama 1e4, qwen2 1e6, starcoder2 1e5). */
  ropeBase?: number;
  /** Linear rope scaling factor written as {arch}.rope.scaling.* (DeepSeek-Coder uses 4). */
  ropeScaleLinear?: number;
  /** Norm epsilon (default: RMS 1e-5 for llama, 1e-6 for qwen2; LayerNorm 1e-5). */
  normEps?: number;
  name?: string;
  /** Receives the one-line fallback warning (and nothing else). */
  onWarning?: (line: string) => void;
  /** Called after each tensor is written (progress for long writes; tests sample memory here). */
  onProgress?: (done: number, total: number, tensor: string) => void;
}

export interface MakeModelFallback {
  tensor: string;
  wanted: string;
  used: string;
  reason: string;
}

export interface MakeModelResult {
  path: string;
  bytes: number;
  parameters: number;
  vocabSize: number;
  tensorTypes: Record<string, number>;
  fallbacks: MakeModelFallback[];
  /** One line summarising the fallbacks, or null when every tensor got the type asked for. */
  warning: string | null;
}

interface TensorPlan {
  name: string;
  dims: number[];
  init: { kind: 'normal'; std: number } | { kind: 'norm' };
  role: 'embd' | 'output' | 'attn_v' | 'ffn_down' | 'attn_qkv' | 'posembd' | 'other';
  layer: number; // -1 for non-block tensors
}

// general.file_type values (llama_ftype, from the GGUF spec's list plus llama.cpp's later additions).
const FILE_TYPE: Record<MakeModelType, number> = {
  F32: 0, F16: 1, Q4_0: 2, Q8_0: 7, Q4_K: 14, Q5_K: 16, Q6_K: 18, Q4_K_M: 15, Q5_K_M: 17, BF16: 32,
};

/** Checks the options the way a CLI user needs: one message per mistake, naming the flag. */
export function validateMakeModelOptions(o: MakeModelOptions): void {
  const bad = (msg: string) => { throw new GGUFError(`make-model: ${msg}`); };
  if (!MAKE_MODEL_ARCHS.includes(o.arch)) bad(`--arch must be one of ${MAKE_MODEL_ARCHS.join(', ')} (got ${o.arch})`);
  if (!MAKE_MODEL_TYPES.includes(o.type)) bad(`--type must be one of ${MAKE_MODEL_TYPES.join(', ')} (got ${o.type})`);
  const posInt = (v: number, flag: string, max: number) => {
    if (!Number.isInteger(v) || v < 1 || v > max) bad(`${flag} must be an integer in 1..${max} (got ${v})`);
  };
  posInt(o.layers, '--layers', 512);
  posInt(o.embd, '--embd', 65536);
  posInt(o.heads, '--heads', 1024);
  posInt(o.kvHeads, '--kv-heads', 1024);
  posInt(o.ff, '--ff', 1 << 20);
  posInt(o.ctx, '--ctx', 1 << 24);
  if (!Number.isInteger(o.seed)) bad(`--seed must be an integer (got ${o.seed})`);
  if (o.embd % o.heads !== 0) bad(`--embd ${o.embd} is not divisible by --heads ${o.heads}`);
  if (o.heads % o.kvHeads !== 0) bad(`--heads ${o.heads} is not a multiple of --kv-heads ${o.kvHeads}`);
  const hd = o.embd / o.heads;
  if (o.arch !== 'starcoder' && hd % 2 !== 0) bad(`head size ${hd} must be even for rope`);
  if (!o.out) bad('--out is required');
  if (!o.vocabFrom) bad('--vocab-from is required');
}

/** The tensors llama.cpp expects for each architecture, in the converter's order, with their inits. */
function planTensors(o: MakeModelOptions, nVocab: number, tied: boolean): TensorPlan[] {
  const E = o.embd, F = o.ff, hd = E / o.heads, q = o.heads * hd, kv = o.kvHeads * hd;
  const layerNorm = o.arch === 'starcoder' || o.arch === 'starcoder2';
  const plan: TensorPlan[] = [];
  // Scales like real inits so activations and logits stay in a realistic range: projections
  // ~ N(0, 1/fan_in), embeddings such that a tied output gives logits of unit spread, norms ~ 1.
  const w = (name: string, dims: number[], role: TensorPlan['role'] = 'other', layer = -1, std = 1 / Math.sqrt(dims[0])) =>
    plan.push({ name, dims, init: { kind: 'normal', std }, role, layer });
  const bias = (name: string, n: number, layer: number) => plan.push({ name, dims: [n], init: { kind: 'normal', std: 0.05 }, role: 'other', layer });
  const norm = (name: string, layer: number) => plan.push({ name, dims: [E], init: { kind: 'norm' }, role: 'other', layer });

  w('token_embd.weight', [E, nVocab], 'embd', -1, 1 / Math.sqrt(E));
  if (o.arch === 'starcoder') w('position_embd.weight', [E, o.ctx], 'posembd', -1, 0.5 / Math.sqrt(E));
  for (let i = 0; i < o.layers; i++) {
    const b = `blk.${i}.`;
    norm(`${b}attn_norm.weight`, i);
    if (layerNorm) bias(`${b}attn_norm.bias`, E, i);
    if (o.arch === 'starcoder') {
      w(`${b}attn_qkv.weight`, [E, q + 2 * kv], 'attn_qkv', i);
      bias(`${b}attn_qkv.bias`, q + 2 * kv, i);
    } else {
      w(`${b}attn_q.weight`, [E, q], 'other', i);
      w(`${b}attn_k.weight`, [E, kv], 'other', i);
      w(`${b}attn_v.weight`, [E, kv], 'attn_v', i);
      if (o.arch !== 'llama') {
        bias(`${b}attn_q.bias`, q, i);
        bias(`${b}attn_k.bias`, kv, i);
        bias(`${b}attn_v.bias`, kv, i);
      }
    }
    w(`${b}attn_output.weight`, [q, E], 'other', i);
    if (layerNorm) bias(`${b}attn_output.bias`, E, i);
    norm(`${b}ffn_norm.weight`, i);
    if (layerNorm) bias(`${b}ffn_norm.bias`, E, i);
    if (!layerNorm) w(`${b}ffn_gate.weight`, [E, F], 'other', i);
    w(`${b}ffn_up.weight`, [E, F], 'other', i);
    if (layerNorm) bias(`${b}ffn_up.bias`, F, i);
    w(`${b}ffn_down.weight`, [F, E], 'ffn_down', i);
    if (layerNorm) bias(`${b}ffn_down.bias`, E, i);
  }
  norm('output_norm.weight', -1);
  if (layerNorm) bias('output_norm.bias', E, -1);
  if (!tied) w('output.weight', [E, nVocab], 'output', -1, 2 / Math.sqrt(E));
  return plan;
}

// use_more_bits from llama.cpp's llama_tensor_get_type (src/llama-quant.cpp): the first and last eighth
// of the layers and every third layer in between get more bits in the _M mixes.
const useMoreBits = (i: number, n: number) =>
  i < Math.floor(n / 8) || i >= Math.floor((7 * n) / 8) || (i - Math.floor(n / 8)) % 3 === 2;

/**
 * The type of one tensor, following llama.cpp's quantizer rules (llama_tensor_get_type) as facts:
 * 1-D tensors and position embeddings stay F32; for Q4_K_M/Q5_K_M the output projection (token_embd when
 * tied) is Q6_K (Q8_0 if its rows don't fit the base block), attn_v and ffn_down of use_more_bits layers are
 * Q6_K, a fused attn_qkv is Q5_K (Q4_K_M) / Q6_K (Q5_K_M). Pure types apply to every 2-D weight. A row
 * length that does not fit the block falls back (llama.cpp: Q4_K->Q5_0, Q5_K->Q5_1, Q6_K->Q8_0, then
 * F16); Q5_0/Q5_1 are not supported here, so K-quants fall back to Q8_0, and anything still not fitting to F16.
 */
function chooseType(t: TensorPlan, o: MakeModelOptions, tied: boolean): { type: number; fallback?: MakeModelFallback } {
  if (t.dims.length === 1 || t.role === 'posembd') return { type: GGMLType.F32 };
  const mix = o.type === 'Q4_K_M' || o.type === 'Q5_K_M';
  const base: number = o.type === 'Q4_K_M' ? GGMLType.Q4_K : o.type === 'Q5_K_M' ? GGMLType.Q5_K : GGMLType[o.type as GGMLTypeName];
  let want = base;
  const ne0 = t.dims[0];
  if (mix) {
    const isOutput = t.role === 'output' || (tied && t.role === 'embd');
    if (isOutput) want = ne0 % 256 !== 0 ? GGMLType.Q8_0 : GGMLType.Q6_K;
    else if (t.role === 'attn_v' && useMoreBits(t.layer, o.layers)) want = GGMLType.Q6_K;
    else if (t.role === 'ffn_down' && useMoreBits(t.layer, o.layers)) want = GGMLType.Q6_K;
    else if (t.role === 'attn_qkv') want = o.type === 'Q4_K_M' ? GGMLType.Q5_K : GGMLType.Q6_K;
  }
  const block = ggmlTypeTraits(want)!.block;
  if (ne0 % block === 0) return { type: want };
  const used = ne0 % 32 === 0 && block === 256 ? GGMLType.Q8_0 : GGMLType.F16;
  return {
    type: used,
    fallback: { tensor: t.name, wanted: ggmlTypeName(want), used: ggmlTypeName(used), reason: `row length ${ne0} is not a multiple of ${block}` },
  };
}

/**
 * xoshiro128** (Blackman & Vigna), seeded through a splitmix-style hash of (seed, tensor name), so every
 * tensor has its own stream and the file does not depend on generation order or chunking. Normals come
 * from a 65536-entry inverse-CDF table indexed by 16 random bits (two per PRNG step): a discretised
 * N(0, 1), plenty for random weights and several times faster than Box-Muller in JavaScript.
 */
class Rng {
  private s = new Uint32Array(4);
  constructor(seed: number, name: string) {
    let h = (seed ^ 0x9e3779b9) >>> 0;
    for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 0x01000193) >>> 0;
    for (let i = 0; i < 4; i++) {
      h = (h + 0x9e3779b9) >>> 0;
      let z = h;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      this.s[i] = (z ^ (z >>> 16)) >>> 0;
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }
  next(): number {
    const s = this.s;
    const r = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0]; s[3] ^= s[1]; s[1] ^= s[2]; s[0] ^= s[3]; s[2] ^= t; s[3] = rotl(s[3], 11);
    return r;
  }
  /** x[i] = mean + std * N(0, 1). */
  fillNormal(x: Float32Array, mean: number, std: number) {
    const tab = normalTable();
    let i = 0;
    for (; i + 1 < x.length; i += 2) {
      const r = this.next();
      x[i] = mean + std * tab[r & 0xffff];
      x[i + 1] = mean + std * tab[r >>> 16];
    }
    if (i < x.length) x[i] = mean + std * tab[this.next() & 0xffff];
  }
}

let NORMAL_TABLE: Float64Array | undefined;
/** table[i] = inverse normal CDF at (i + 0.5) / 65536. */
function normalTable(): Float64Array {
  if (NORMAL_TABLE) return NORMAL_TABLE;
  const t = new Float64Array(65536);
  for (let i = 0; i < 65536; i++) t[i] = inverseNormalCdf((i + 0.5) / 65536);
  return (NORMAL_TABLE = t);
}
/** Acklam's rational approximation of the inverse normal CDF (relative error < 1.2e-9). */
export function inverseNormalCdf(p: number): number {
  const a = [-3.969683028665376e1, 2.209460984245205e2, -2.759285104469687e2, 1.38357751867269e2, -3.066479806614716e1, 2.506628277459239];
  const b = [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
  const c = [-7.784894002430293e-3, -3.223964580411365e-1, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
  const tail = (q: number) => (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  if (p < 0.02425) return tail(Math.sqrt(-2 * Math.log(p)));
  if (p > 1 - 0.02425) return -tail(Math.sqrt(-2 * Math.log(1 - p)));
  const q = p - 0.5, r = q * q;
  return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}
const rotl = (x: number, k: number) => (x << k) | (x >>> (32 - k));

// IEEE half / bfloat16 encodings, round to nearest even (F16 subnormals included).
const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
export function toF16(x: number): number {
  f32[0] = x;
  const b = u32[0], sign = (b >>> 16) & 0x8000, exp = (b >>> 23) & 0xff, man = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (man ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = man | 0x800000, shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1), half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (man >>> 13);
  const rem = man & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++; // may carry into the exponent: still correct
  return sign | h;
}
export function toBF16(x: number): number {
  f32[0] = x;
  const b = u32[0];
  if ((b & 0x7fffffff) > 0x7f800000) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Encodes floats as `type`: F32/F16/BF16 here, block types through the native reference quantizer. */
function encode(type: number, x: Float32Array): Uint8Array {
  if (type === GGMLType.F32) return new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  if (type === GGMLType.F16 || type === GGMLType.BF16) {
    const h = new Uint16Array(x.length);
    const conv = type === GGMLType.F16 ? toF16 : toBF16;
    for (let i = 0; i < x.length; i++) h[i] = conv(x[i]);
    return new Uint8Array(h.buffer);
  }
  return loadAddon().quantize(type, x);
}

/** Generates a tensor's values row chunk by row chunk (about 1M floats each) and encodes each chunk. */
function* tensorChunks(t: TensorPlan, type: number, seed: number): Generator<Uint8Array> {
  const rng = new Rng(seed, t.name);
  const ne0 = t.dims[0];
  const rows = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const rowsPerChunk = Math.max(1, Math.floor((1 << 20) / ne0));
  for (let r0 = 0; r0 < rows; r0 += rowsPerChunk) {
    const n = Math.min(rowsPerChunk, rows - r0) * ne0;
    const x = new Float32Array(n);
    if (t.init.kind === 'norm') rng.fillNormal(x, 1, 0.1);
    else rng.fillNormal(x, 0, t.init.std);
    yield encode(type, x);
  }
}

function hyperparameters(o: MakeModelOptions, nVocab: number): Array<[string, GGUFValue]> {
  const a = o.arch;
  const u32 = (value: number): GGUFValue => ({ type: GGUFType.UINT32, value });
  const f32v = (value: number): GGUFValue => ({ type: GGUFType.FLOAT32, value });
  const hd = o.embd / o.heads;
  const kv: Array<[string, GGUFValue]> = [
    [`${a}.context_length`, u32(o.ctx)],
    [`${a}.embedding_length`, u32(o.embd)],
    [`${a}.block_count`, u32(o.layers)],
    [`${a}.feed_forward_length`, u32(o.ff)],
    [`${a}.attention.head_count`, u32(o.heads)],
    [`${a}.attention.head_count_kv`, u32(o.kvHeads)],
  ];
  const defaultBase = { llama: 10000, qwen2: 1000000, starcoder2: 100000, starcoder: 0 }[a];
  if (a !== 'starcoder') kv.push([`${a}.rope.freq_base`, f32v(o.ropeBase ?? defaultBase)]);
  if (a === 'llama' || a === 'qwen2') {
    kv.push([`${a}.attention.layer_norm_rms_epsilon`, f32v(o.normEps ?? (a === 'qwen2' ? 1e-6 : 1e-5))]);
  } else {
    kv.push([`${a}.attention.layer_norm_epsilon`, f32v(o.normEps ?? 1e-5)]);
  }
  if (a === 'llama') {
    kv.push([`${a}.attention.key_length`, u32(hd)], [`${a}.attention.value_length`, u32(hd)],
      [`${a}.vocab_size`, u32(nVocab)], [`${a}.rope.dimension_count`, u32(hd)]);
  }
  if (o.ropeScaleLinear !== undefined && o.ropeScaleLinear !== 1) {
    kv.push([`${a}.rope.scaling.type`, { type: GGUFType.STRING, value: 'linear' }], [`${a}.rope.scaling.factor`, f32v(o.ropeScaleLinear)]);
  }
  return kv;
}

/** Writes a random-weight model; see MakeModelOptions. Synchronous: it is a batch job (CLI, tests, benchmarks). */
export function makeModel(o: MakeModelOptions): MakeModelResult {
  validateMakeModelOptions(o);
  const { file: vocab } = openGGUF(o.vocabFrom);
  const tokens = vocab.getStringArray('tokenizer.ggml.tokens');
  const nVocab = tokens.length;
  if (nVocab < 1) throw new GGUFError(`make-model: ${o.vocabFrom} has an empty vocabulary`);
  const tied = o.tiedOutput ?? o.arch !== 'llama';

  const plan = planTensors(o, nVocab, tied);
  const fallbacks: MakeModelFallback[] = [];
  const tensorTypes: Record<string, number> = {};
  let done = 0;
  const tensors: GGUFWriteTensor[] = plan.map((t) => {
    const { type, fallback } = chooseType(t, o, tied);
    if (fallback) fallbacks.push(fallback);
    tensorTypes[ggmlTypeName(type)] = (tensorTypes[ggmlTypeName(type)] ?? 0) + 1;
    return {
      name: t.name, dims: t.dims, type,
      data: function* () {
        yield* tensorChunks(t, type, o.seed);
        o.onProgress?.(++done, plan.length, t.name);
      },
    };
  });
  const metadata: Array<[string, GGUFValue]> = [
    ['general.architecture', { type: GGUFType.STRING, value: o.arch }],
    ['general.type', { type: GGUFType.STRING, value: 'model' }],
    ['general.name', { type: GGUFType.STRING, value: o.name ?? `Forkcast random ${o.arch} L${o.layers} E${o.embd} ${o.type} seed ${o.seed}` }],
    ...hyperparameters(o, nVocab),
    ['general.file_type', { type: GGUFType.UINT32, value: FILE_TYPE[o.type] }],
    ...[...vocab.metadata].filter(([k]) => k.startsWith('tokenizer.')),
    ['general.quantization_version', { type: GGUFType.UINT32, value: 2 }],
  ];
  const bytes = writeGGUF(o.out, { metadata, tensors });

  let warning: string | null = null;
  if (fallbacks.length) {
    const groups = new Map<string, number>();
    for (const f of fallbacks) {
      const k = `${f.wanted}->${f.used} (${f.reason})`;
      groups.set(k, (groups.get(k) ?? 0) + 1);
    }
    warning = `make-model: ${fallbacks.length} of ${plan.length} tensors fell back to another type: ` +
      [...groups].map(([k, n]) => `${n}x ${k}`).join('; ');
    o.onWarning?.(warning);
  }
  return {
    path: o.out,
    bytes,
    parameters: plan.reduce((s, t) => s + t.dims.reduce((a, b) => a * b, 1), 0),
    vocabSize: nVocab,
    tensorTypes,
    fallbacks,
    warning,
  };
}
