// Supported architectures as data: which metadata keys hold the hyperparameters, which tensors a
// block has, and the flags (norm, rope, MLP, biases) that steer the one native forward pass.
// Names follow llama.cpp's GGUF conventions (gguf-py constants: `{arch}.embedding_length`,
// `blk.N.attn_q.weight`, ...), which is how the files users download are written.
import type { GGUFFile, GGUFTensorInfo } from './gguf';
import { ggmlTypeName, ggmlTypeTraits } from './gguf';
import type { LayerSpec, ModelSpec, TensorRef } from './native';

export class ArchError extends Error {
  override name = 'ArchError';
}

type LayerField = keyof LayerSpec;

interface ArchDef {
  norm: ModelSpec['norm'];
  /** Metadata key (after `{arch}.`) of the norm epsilon. */
  epsKey: string;
  rope: ModelSpec['rope'];
  /** Rope frequency base when the file does not say (llama.cpp's default). */
  ropeBase: number;
  mlp: ModelSpec['mlp'];
  /** Learned absolute position embeddings (`position_embd.weight`) are required. */
  learnedPositions: boolean;
  /** Bias tensors every block of this architecture must have (others are used when present). */
  requiredBiases: LayerField[];
  /** Output norm has a bias. */
  outputNormBias: boolean;
}

const RMS_EPS = 'attention.layer_norm_rms_epsilon';
const LN_EPS = 'attention.layer_norm_epsilon';

export const ARCHS: Record<string, ArchDef> = {
  // Llama, CodeLlama, DeepSeek-Coder, TinyLlama. The converter permutes attn_q/attn_k rows for
  // llama.cpp's adjacent-pair rope ('norm').
  llama: { norm: 'rms', epsKey: RMS_EPS, rope: 'norm', ropeBase: 10000, mlp: 'swiglu', learnedPositions: false,
    requiredBiases: [], outputNormBias: false },
  // Qwen2 / Qwen2.5-Coder: biases on Q, K, V; half-split rope.
  qwen2: { norm: 'rms', epsKey: RMS_EPS, rope: 'neox', ropeBase: 10000, mlp: 'swiglu', learnedPositions: false,
    requiredBiases: ['bq', 'bk', 'bv'], outputNormBias: false },
  // StarCoder2: LayerNorm with bias, GELU MLP, biases everywhere, half-split rope.
  starcoder2: { norm: 'layer', epsKey: LN_EPS, rope: 'neox', ropeBase: 10000, mlp: 'gelu', learnedPositions: false,
    requiredBiases: ['attn_norm_b', 'ffn_norm_b', 'bq', 'bk', 'bv', 'bo', 'ffn_up_b', 'ffn_down_b'], outputNormBias: true },
  // GPTBigCode (StarCoder, SantaCoder): multi-query attention through a fused QKV, learned positions.
  starcoder: { norm: 'layer', epsKey: LN_EPS, rope: 'none', ropeBase: 10000, mlp: 'gelu', learnedPositions: true,
    requiredBiases: ['attn_norm_b', 'ffn_norm_b', 'bqkv', 'bo', 'ffn_up_b', 'ffn_down_b'], outputNormBias: true },
};

/** GGUF tensor name (after `blk.N.`) of each LayerSpec field. */
export const LAYER_TENSORS: Record<LayerField, string> = {
  attn_norm: 'attn_norm.weight', attn_norm_b: 'attn_norm.bias',
  wq: 'attn_q.weight', wk: 'attn_k.weight', wv: 'attn_v.weight', wqkv: 'attn_qkv.weight',
  bq: 'attn_q.bias', bk: 'attn_k.bias', bv: 'attn_v.bias', bqkv: 'attn_qkv.bias',
  wo: 'attn_output.weight', bo: 'attn_output.bias',
  ffn_norm: 'ffn_norm.weight', ffn_norm_b: 'ffn_norm.bias',
  ffn_gate: 'ffn_gate.weight', ffn_up: 'ffn_up.weight', ffn_up_b: 'ffn_up.bias',
  ffn_down: 'ffn_down.weight', ffn_down_b: 'ffn_down.bias',
};

export const GLOBAL_TENSORS = {
  token_embd: 'token_embd.weight',
  position_embd: 'position_embd.weight',
  output_norm: 'output_norm.weight',
  output_norm_b: 'output_norm.bias',
  output: 'output.weight', // absent = tied to token_embd
} as const;

interface Hyper { E: number; F: number; qd: number; kvd: number }

/** Expected [ne0, ne1] of each block tensor (ne1 = 1 for vectors). */
function layerShape(f: LayerField, h: Hyper): [number, number] {
  const { E, F, qd, kvd } = h;
  switch (f) {
    case 'attn_norm': case 'attn_norm_b': case 'ffn_norm': case 'ffn_norm_b': case 'bo': case 'ffn_down_b': return [E, 1];
    case 'wq': return [E, qd];
    case 'wk': case 'wv': return [E, kvd];
    case 'wqkv': return [E, qd + 2 * kvd];
    case 'bq': return [qd, 1];
    case 'bk': case 'bv': return [kvd, 1];
    case 'bqkv': return [qd + 2 * kvd, 1];
    case 'wo': return [qd, E];
    case 'ffn_gate': case 'ffn_up': return [E, F];
    case 'ffn_up_b': return [F, 1];
    case 'ffn_down': return [F, E];
  }
}

/** A tensor as the native side wants it, after checking it is there, shaped as expected and of a supported type. */
function tensorRef(file: GGUFFile, name: string, shape: [number, number | null]): TensorRef {
  const t = file.tensor(name);
  if (!t) throw new ArchError(`tensor ${name} is missing`);
  return checkedRef(t, shape);
}

function checkedRef(t: GGUFTensorInfo, [ne0, ne1]: [number, number | null]): TensorRef {
  const traits = ggmlTypeTraits(t.type);
  if (!traits) throw new ArchError(`tensor ${t.name} has unsupported type ${ggmlTypeName(t.type)} (${t.type})`);
  const dims = t.dims.length === 0 ? [1] : t.dims;
  if (dims.slice(2).some((d) => d !== 1)) throw new ArchError(`tensor ${t.name} has ${dims.length} dimensions [${dims.join(', ')}], expected at most 2`);
  const [a, b = 1] = dims;
  if (a !== ne0 || (ne1 !== null && b !== ne1))
    throw new ArchError(`tensor ${t.name} has shape [${dims.join(', ')}], expected [${ne0}, ${ne1 ?? 'any'}]`);
  if (a % traits.block !== 0) throw new ArchError(`tensor ${t.name}: row length ${a} is not a multiple of the ${ggmlTypeName(t.type)} block size ${traits.block}`);
  return { offset: t.offset, type: t.type, ne0: a, ne1: b };
}

function num(file: GGUFFile, key: string, dflt?: number): number {
  const v = file.getNumber(key, dflt);
  if (!Number.isFinite(v)) throw new ArchError(`metadata ${key} is not a finite number`);
  return v;
}

function posInt(file: GGUFFile, key: string, dflt?: number): number {
  const v = num(file, key, dflt);
  if (!Number.isInteger(v) || v < 1) throw new ArchError(`metadata ${key} = ${v} must be a positive integer`);
  return v;
}

/** Builds the forward pass's spec from a parsed GGUF, or throws ArchError naming what is wrong. */
export function specFromGGUF(file: GGUFFile): ModelSpec {
  const arch = file.getString('general.architecture', '');
  const def = ARCHS[arch];
  if (!def) throw new ArchError(`unsupported architecture '${arch}' (supported: ${Object.keys(ARCHS).join(', ')})`);
  const k = (s: string) => `${arch}.${s}`;

  const n_embd = posInt(file, k('embedding_length'));
  const n_layer = posInt(file, k('block_count'));
  const n_head = posInt(file, k('attention.head_count'));
  const n_head_kv = posInt(file, k('attention.head_count_kv'), n_head);
  const n_ff = posInt(file, k('feed_forward_length'));
  const n_ctx_train = posInt(file, k('context_length'), 2048);
  const head_dim = posInt(file, k('attention.key_length'), Math.floor(n_embd / n_head));
  if (n_head % n_head_kv !== 0) throw new ArchError(`${k('attention.head_count')} ${n_head} is not a multiple of head_count_kv ${n_head_kv}`);
  if (n_layer > 4096 || n_head > 4096 || head_dim > 4096) throw new ArchError(`implausible hyperparameters (layers ${n_layer}, heads ${n_head}, head_dim ${head_dim})`);
  const norm_eps = num(file, k(def.epsKey), 1e-5);
  if (!(norm_eps > 0 && norm_eps < 1)) throw new ArchError(`${k(def.epsKey)} = ${norm_eps} is not a usable epsilon`);

  let rope_base = def.ropeBase, rope_scale = 1, rope_dim = head_dim;
  if (def.rope !== 'none') {
    rope_base = num(file, k('rope.freq_base'), def.ropeBase);
    if (!(rope_base > 1)) throw new ArchError(`${k('rope.freq_base')} = ${rope_base} must be > 1`);
    const scaling = file.has(k('rope.scaling.type')) ? file.getString(k('rope.scaling.type')) : 'none';
    if (scaling === 'linear') rope_scale = num(file, k('rope.scaling.factor'), 1);
    else if (scaling !== 'none') throw new ArchError(`${k('rope.scaling.type')} '${scaling}' is not supported (only linear)`);
    else if (file.has(k('rope.scale_linear'))) rope_scale = num(file, k('rope.scale_linear')); // older key
    if (!(rope_scale > 0)) throw new ArchError(`rope scaling factor ${rope_scale} must be positive`);
    rope_dim = posInt(file, k('rope.dimension_count'), head_dim);
    if (rope_dim > head_dim || rope_dim % 2 !== 0) throw new ArchError(`${k('rope.dimension_count')} = ${rope_dim} must be even and at most head_dim ${head_dim}`);
  }

  const tokEmbd = file.tensor(GLOBAL_TENSORS.token_embd);
  if (!tokEmbd) throw new ArchError(`tensor ${GLOBAL_TENSORS.token_embd} is missing`);
  const n_vocab = tokEmbd.dims[1] ?? 1;
  const token_embd = checkedRef(tokEmbd, [n_embd, null]);
  const h: Hyper = { E: n_embd, F: n_ff, qd: n_head * head_dim, kvd: n_head_kv * head_dim };

  const optional = (name: string, shape: [number, number | null]) => (file.tensor(name) ? tensorRef(file, name, shape) : undefined);
  const layers: LayerSpec[] = [];
  for (let i = 0; i < n_layer; i++) {
    const name = (f: LayerField) => `blk.${i}.${LAYER_TENSORS[f]}`;
    const L: Partial<LayerSpec> = {};
    for (const f of Object.keys(LAYER_TENSORS) as LayerField[]) {
      if (file.tensor(name(f))) L[f] = tensorRef(file, name(f), layerShape(f, h));
    }
    const need = (f: LayerField) => { if (!L[f]) throw new ArchError(`tensor ${name(f)} is missing`); };
    ['attn_norm', 'wo', 'ffn_norm', 'ffn_up', 'ffn_down'].forEach((f) => need(f as LayerField));
    if (def.mlp === 'swiglu') need('ffn_gate');
    if (!L.wqkv) ['wq', 'wk', 'wv'].forEach((f) => need(f as LayerField));
    for (const b of def.requiredBiases) {
      // A fused-QKV file carries bqkv instead of bq/bk/bv and vice versa.
      if (L.wqkv && (b === 'bq' || b === 'bk' || b === 'bv')) { need('bqkv'); continue; }
      if (!L.wqkv && b === 'bqkv') { ['bq', 'bk', 'bv'].forEach((f) => need(f as LayerField)); continue; }
      need(b);
    }
    layers.push(L as LayerSpec);
  }

  const output_norm = tensorRef(file, GLOBAL_TENSORS.output_norm, [n_embd, 1]);
  const output_norm_b = def.outputNormBias ? tensorRef(file, GLOBAL_TENSORS.output_norm_b, [n_embd, 1]) : optional(GLOBAL_TENSORS.output_norm_b, [n_embd, 1]);
  const output = optional(GLOBAL_TENSORS.output, [n_embd, n_vocab]) ?? token_embd;
  const position_embd = def.learnedPositions ? tensorRef(file, GLOBAL_TENSORS.position_embd, [n_embd, null]) : undefined;

  return {
    n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx_train,
    norm: def.norm, norm_eps, rope: def.rope, rope_base, rope_scale, rope_dim, mlp: def.mlp,
    token_embd, position_embd, output_norm, output_norm_b, output, layers,
  };
}
