// The native addon's surface, typed, and the one place that loads it. Everything heavy (the forward
// pass, matmuls, attention) lives in native/; JavaScript decides what to compute.
import { existsSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { RowStatsFn } from './sampler';

/** A weight tensor inside the mapped file: absolute byte offset of its data, ggml type id, ne0 = row length, ne1 = rows. */
export interface TensorRef {
  offset: number;
  type: number;
  ne0: number;
  ne1: number;
}

/** One transformer block's tensors; absent ones are undefined. Either wq/wk/wv or the fused wqkv. */
export interface LayerSpec {
  attn_norm: TensorRef;
  attn_norm_b?: TensorRef;
  wq?: TensorRef; wk?: TensorRef; wv?: TensorRef; wqkv?: TensorRef;
  bq?: TensorRef; bk?: TensorRef; bv?: TensorRef; bqkv?: TensorRef;
  wo: TensorRef;
  bo?: TensorRef;
  ffn_norm: TensorRef;
  ffn_norm_b?: TensorRef;
  ffn_gate?: TensorRef; // present for SwiGLU
  ffn_up: TensorRef;
  ffn_up_b?: TensorRef;
  ffn_down: TensorRef;
  ffn_down_b?: TensorRef;
}

/** What the forward pass needs, derived from the GGUF by engine/archTable.ts. */
export interface ModelSpec {
  n_vocab: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_head_kv: number;
  head_dim: number;
  n_ff: number;
  n_ctx_train: number;
  norm: 'rms' | 'layer';
  norm_eps: number;
  rope: 'none' | 'norm' | 'neox'; // 'norm' = llama.cpp's adjacent-pair layout, 'neox' = half split
  rope_base: number;
  rope_scale: number; // linear scaling factor (positions are divided by it); 1 = none
  rope_dim?: number; // leading dims of each head that rotate (default head_dim)
  mlp: 'swiglu' | 'gelu';
  token_embd: TensorRef;
  position_embd?: TensorRef;
  output_norm: TensorRef;
  output_norm_b?: TensorRef;
  output: TensorRef; // token_embd when the embeddings are tied
  layers: LayerSpec[];
}

export type AttentionMode = 'bifurcated' | 'replicated';

export interface ContextOptions {
  ctx: number;        // shared (prompt) KV capacity in tokens
  maxSamples: number; // decode slots
  maxDecode: number;  // decode KV capacity per slot in tokens
  threads: number;
}

export interface NativeModel {
  dispose(): void;
}

export interface NativeContext {
  /** Keeps the first `keep` positions of the shared KV, appends `tokens`, returns last-position logits. */
  evalPrompt(tokens: Int32Array, keep: number): Promise<Float32Array>;
  /** Number of valid positions in the shared KV. */
  readonly promptLength: number;
  /** Starts n samples after the prompt: clears their decode KVs; replicated copies the prompt KV into each. */
  beginSamples(n: number, mode: AttentionMode): void;
  /**
   * One step for the given slots (slot ids < n, increasing): token i goes to slots[i]. Returns logits
   * [slots.length][vocab]: a view of the first slots.length x vocab floats of `out` when given (reused
   * across steps: the previous step's view is overwritten), else a new array.
   */
  decode(slots: Int32Array, tokens: Int32Array, out?: Float32Array): Promise<Float32Array>;
  /** The same step on the calling thread (throws instead of rejecting): for steps of a few ms, see engine/complete.ts decodeStep(). */
  decodeSync(slots: Int32Array, tokens: Int32Array, out?: Float32Array): Float32Array;
  /** Aborts the running evalPrompt/decode between layers; its promise rejects with Error('cancelled'). */
  cancel(): void;
  /**
   * KV bytes held for the current request: the shared prompt KV (promptLength positions) plus the
   * positions each sample has decoded; replicated adds each sample's private copy of the prompt.
   * Caches are committed page by page as written, so this is physical memory, not capacity.
   */
  kvBytes(): number;
  /** Addon.rowStats with the rows spread over this context's threads (between steps). */
  rowStats(logits: Float32Array, V: number, k?: number): Float64Array;
  dispose(): void;
}

export interface CpuInfo {
  physicalCores: number;
  logicalCores: number;
  avx2: boolean;
  avx512: boolean;
  avx512vnni: boolean;
  /** The matmul kernel family chosen at run time ('amx', 'avx512vnni', 'avx2', 'scalar'). */
  kernels: string;
  /** Prompt-sized products (n >= 128, quantized weights) run on AMX BF16 tiles (FORKCAST_NO_BF16=1: int8 instead). */
  bf16Tiles: boolean;
}

export interface AttentionTestArgs {
  /** 'prefill': causal attention of n new tokens at positions P..P+n-1 (kc/vc hold [n_kv][P+n][hd], D = 0, kd/vd unused). */
  mode: AttentionMode | 'prefill';
  n: number; n_head: number; n_kv: number; hd: number; P: number; D: number;
  q: Float32Array;  // [n][n_head][hd]
  kc: Float32Array; vc: Float32Array; // [n_kv][P][hd]
  kd?: Float32Array; vd?: Float32Array; // [n][n_kv][D][hd]
  threads: number;
}

/**
 * A read-only memory map of a whole file, held natively (never an ArrayBuffer of the file: Node
 * refuses those over 4 GiB and Electron's memory cage refuses external ones). A Model built on it
 * keeps the mapping alive; it is unmapped once close() was called (or the handle collected) and no
 * model uses it any more.
 */
export interface MappedFile {
  /** File size in bytes (exact up to 2^53). */
  readonly size: number;
  /** A fresh copy of bytes [offset, offset + length): for the GGUF header, not for tensor data. */
  read(offset: number, length: number): ArrayBuffer;
  /** Lets go of the mapping (models built on it keep it until they are disposed); read() fails after. */
  close(): void;
}

export interface Addon {
  /** Maps a whole file read-only; throws with the reason when it cannot be opened or is empty. */
  mapFile(path: string): MappedFile;
  cpuInfo(): CpuInfo;
  /** Weights read from `file`; every TensorRef is checked against the file's real size. */
  Model: new (file: MappedFile, spec: ModelSpec) => NativeModel;
  Context: new (model: NativeModel, opts: ContextOptions) => NativeContext;
  /** Reference quantizer (used by the GGUF writer): n floats -> blocks of `type`. */
  quantize(type: number, data: Float32Array, threads?: number): Uint8Array;
  /** Decodes n elements of `type` from bytes. */
  dequantize(type: number, data: Uint8Array, n: number): Float32Array;
  /** y = x W^T through the production matmul kernels (tests and benchmarks); with `gate` (same type
   * and shape as w), y = (x W^T) * silu(x gate^T), the SwiGLU hidden layer; with `down` too (ne0 rows
   * of ne1 weights, w's type), the whole feed-forward: that times down^T (n x ne0). */
  matmul(type: number, w: Uint8Array, ne0: number, ne1: number, x: Float32Array, n: number, threads: number, gate?: Uint8Array, down?: Uint8Array): Float32Array;
  /** Per row of V logits: [max, argmax (lowest on ties), log-sum-exp, ids of the k largest (ties: lower id; unordered)], 3 + k numbers per row (the sampler's full passes, in SIMD). */
  rowStats(logits: Float32Array, V: number, k?: number): Float64Array;
  /** The forward pass's elementwise kernels on explicit inputs (tests): silu(g) * h, or gelu(h). */
  activation(kind: 'silu_mul' | 'gelu', h: Float32Array, g?: Float32Array): Float32Array;
  /** The decode attention kernels on explicit inputs (tests and benchmarks). Returns [n][n_head][hd]. */
  attention(args: AttentionTestArgs): Float32Array;
  /** Benchmark: best-of-`iters` seconds for one call of the attention kernel alone (inputs prepared outside the timing; cold = caches flushed before each call). */
  attentionBench(args: AttentionTestArgs, iters: number, cold?: boolean): number;
  /** Benchmark: memory read bandwidth in bytes/second, reading a `bytes`-sized array with `threads` threads (best of iters). */
  readBandwidth(bytes: number, threads: number, iters: number): number;
}

let cached: Addon | undefined;

/** Finds forkcast.node beside the bundle (packaged) or in native/build (development), the newest if both. */
export function loadAddon(): Addon {
  if (cached) return cached;
  const candidates = [
    join(__dirname, 'native', 'forkcast.node'),
    join(__dirname, '..', 'native', 'build', 'Release', 'forkcast.node'),
    join(__dirname, '..', 'dist', 'native', 'forkcast.node'),
    join(process.cwd(), 'native', 'build', 'Release', 'forkcast.node'),
  ];
  // The newest one: after `npm run build:native` alone, dist/native still holds the copy the last
  // bundling made, and loading it silently measured an old build.
  const found = candidates.filter((p) => existsSync(p)).sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!found) throw new Error(`Forkcast native addon not found (looked in ${candidates.join(', ')}); run "npm run build"`);
  // createRequire works the same in the esbuild CJS bundle and under vitest's vite-node, where a
  // bare `require` of a computed path is not guaranteed to exist.
  cached = createRequire(join(__dirname, 'noop.js'))(found) as Addon;
  return cached;
}

/** The addon's SIMD row statistics for the sampler, or undefined (the sampler's JS passes) without it. */
export function nativeRowStats(): RowStatsFn | undefined {
  try {
    const addon = loadAddon();
    return (logits, V, k) => addon.rowStats(logits, V, k);
  } catch {
    return undefined;
  }
}
