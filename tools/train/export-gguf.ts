// Writes Forkcast's default model GGUF from a training run's outputs (tools/train/train.py on the GPU
// machine): bf16 weights split in parts + results.json (weight index, config) + tokenizer.json (HF
// `tokenizers` byte-level BPE). Uses the project's own GGUF writer and the native reference quantizer.
//
//   npx esbuild tools/train/export-gguf.ts --bundle --platform=node --outfile=dist/export-gguf.js
//   node dist/export-gguf.js --run .train/run3 --out models/forkcast-default-q8_0.gguf [--type Q8_0|F16|F32] [--add-bos true]
//
// Layout facts (llama.cpp's `llama` architecture, as in the converted fixtures of shared/fixtures/arch):
//  - tensor names token_embd / blk.N.{attn_norm,attn_q,attn_k,attn_v,attn_output,ffn_norm,ffn_gate,ffn_up,
//    ffn_down} / output_norm; dims ne0-first, so a torch [out, in] weight is dims [in, out];
//  - the model was trained with adjacent-pair RoPE, which is llama.cpp's "normal" rope for `llama`, so
//    attn_q/attn_k rows are stored exactly as trained (no permutation);
//  - embeddings are tied: no output.weight, the engine uses token_embd (llama.cpp does the same).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GGMLType, GGUFType, GGUFValue } from '../../engine/gguf';
import { writeGGUF, GGUFWriteTensor } from '../../engine/ggufWriter';
import { loadAddon } from '../../engine/native';
import { toF16 } from '../../engine/makeModel';

interface WeightIndex { dtype: string; tensors: { name: string; shape: number[]; offset: number; nbytes: number }[]; parts: string[] }
interface RunResults {
  config: { vocab: number; dim: number; n_layer: number; n_head: number; n_kv_head: number; ff: number; ctx: number; rope_base: number; norm_eps: number };
  weights: WeightIndex;
  specials: string[];
  steps: number;
  tokens: number;
}

/** bf16 bits are the top half of a float32. */
export function bf16ToF32(b: Uint8Array): Float32Array {
  const u16 = new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);
  const u32 = new Uint32Array(u16.length);
  for (let i = 0; i < u16.length; i++) u32[i] = u16[i] << 16;
  return new Float32Array(u32.buffer);
}

function f32ToF16Bytes(x: Float32Array): Uint8Array {
  const out = new Uint16Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = toF16(x[i]);
  return new Uint8Array(out.buffer);
}

/** Byte-level BPE vocabulary and merges from a tokenizer.json, in id order. */
export function readTokenizer(path: string, specials: string[]) {
  const tj = JSON.parse(readFileSync(path, 'utf8'));
  const vocab: Record<string, number> = tj.model.vocab;
  const n = Object.keys(vocab).length;
  const tokens: string[] = new Array(n);
  for (const [t, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || id < 0 || id >= n || tokens[id] !== undefined) throw new Error(`tokenizer.json: bad id ${id} for ${t}`);
    tokens[id] = t;
  }
  specials.forEach((s, i) => { if (tokens[i] !== s) throw new Error(`tokenizer.json: id ${i} is ${tokens[i]}, expected ${s}`); });
  const merges: string[] = tj.model.merges.map((m: string | [string, string]) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : m));
  const types = new Int32Array(n).fill(1);
  for (let i = 0; i < specials.length; i++) types[i] = 3; // control
  if (tj.pre_tokenizer?.type !== 'ByteLevel' || tj.pre_tokenizer.use_regex !== true) throw new Error('tokenizer.json: expected the ByteLevel pre-tokenizer with the GPT-2 regex');
  return { tokens, merges, types };
}

function arg(name: string, def?: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (def === undefined) throw new Error(`--${name} is required`);
  return def;
}

function main() {
  const run = arg('run', '.train/run');
  const out = arg('out', 'models/forkcast-default-q8_0.gguf');
  const typeName = arg('type', 'Q8_0') as 'Q8_0' | 'F16' | 'F32';
  const addBos = arg('add-bos', 'false') === 'true';
  const res: RunResults = JSON.parse(readFileSync(join(run, 'results.json'), 'utf8'));
  const c = res.config;
  const blob = Buffer.concat(res.weights.parts.map((p) => readFileSync(join(run, p))));
  const { tokens, merges, types } = readTokenizer(join(run, 'tokenizer.json'), res.specials);
  if (tokens.length !== c.vocab) throw new Error(`vocab ${tokens.length} != config ${c.vocab}`);
  const addon = typeName === 'Q8_0' ? loadAddon() : null;
  const wtype = { Q8_0: GGMLType.Q8_0, F16: GGMLType.F16, F32: GGMLType.F32 }[typeName];

  const tensors: GGUFWriteTensor[] = res.weights.tensors.map((t) => {
    const dims = [...t.shape].reverse(); // torch [rows, cols] -> ggml ne0 = cols first
    const matrix = t.shape.length === 2;
    const type = matrix ? wtype : GGMLType.F32; // norms stay F32 (as llama.cpp's quantizer keeps them)
    return {
      name: t.name, dims, type,
      data: () => {
        const x = bf16ToF32(new Uint8Array(blob.buffer, blob.byteOffset + t.offset, t.nbytes).slice());
        if (type === GGMLType.F32) return new Uint8Array(x.buffer);
        if (type === GGMLType.F16) return f32ToF16Bytes(x);
        return addon!.quantize(type, x);
      },
    };
  });
  const u32 = (value: number): GGUFValue => ({ type: GGUFType.UINT32, value });
  const f32 = (value: number): GGUFValue => ({ type: GGUFType.FLOAT32, value });
  const str = (value: string): GGUFValue => ({ type: GGUFType.STRING, value });
  const bool = (value: boolean): GGUFValue => ({ type: GGUFType.BOOL, value });
  const hd = c.dim / c.n_head;
  const metadata: Array<[string, GGUFValue]> = [
    ['general.architecture', str('llama')],
    ['general.type', str('model')],
    ['general.name', str('Forkcast Default')],
    ['general.description', str(`Small code model trained by the Forkcast project (${(res.tokens / 1e6).toFixed(0)}M tokens, ${res.steps} steps); see models/README.md`)],
    ['general.license', str('MIT')],
    ['general.size_label', str(`${Math.round(res.weights.tensors.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0) / 1e6)}M`)],
    ['llama.context_length', u32(c.ctx)],
    ['llama.embedding_length', u32(c.dim)],
    ['llama.block_count', u32(c.n_layer)],
    ['llama.feed_forward_length', u32(c.ff)],
    ['llama.attention.head_count', u32(c.n_head)],
    ['llama.attention.head_count_kv', u32(c.n_kv_head)],
    ['llama.rope.freq_base', f32(c.rope_base)],
    ['llama.attention.layer_norm_rms_epsilon', f32(c.norm_eps)],
    ['llama.attention.key_length', u32(hd)],
    ['llama.attention.value_length', u32(hd)],
    ['llama.vocab_size', u32(c.vocab)],
    ['llama.rope.dimension_count', u32(hd)],
    ['general.file_type', u32({ F32: 0, F16: 1, Q8_0: 7 }[typeName])],
    ['tokenizer.ggml.model', str('gpt2')],
    ['tokenizer.ggml.pre', str('gpt-2')], // HF ByteLevel(use_regex) = GPT-2's split pattern
    ['tokenizer.ggml.tokens', { type: GGUFType.ARRAY, value: { elemType: GGUFType.STRING, items: tokens } }],
    ['tokenizer.ggml.token_type', { type: GGUFType.ARRAY, value: { elemType: GGUFType.INT32, items: types } }],
    ['tokenizer.ggml.merges', { type: GGUFType.ARRAY, value: { elemType: GGUFType.STRING, items: merges } }],
    ['tokenizer.ggml.bos_token_id', u32(0)],
    ['tokenizer.ggml.eos_token_id', u32(0)],
    ['tokenizer.ggml.eot_token_id', u32(0)],
    ['tokenizer.ggml.padding_token_id', u32(4)],
    // No BOS, as StarCoder: prompts start with <fim_prefix> (the eval on the GPU machine and the parity
    // references use that form; a leading <|endoftext|> made no difference to held-out infilling here)
    ['tokenizer.ggml.add_bos_token', bool(addBos)],
    ['tokenizer.ggml.add_eos_token', bool(false)],
    ['tokenizer.ggml.fim_pre_token_id', u32(1)],
    ['tokenizer.ggml.fim_mid_token_id', u32(2)],
    ['tokenizer.ggml.fim_suf_token_id', u32(3)],
    ['tokenizer.ggml.fim_pad_token_id', u32(4)],
    ['general.quantization_version', u32(2)],
  ];
  const bytes = writeGGUF(out, { metadata, tensors });
  console.log(`wrote ${out}: ${(bytes / 1e6).toFixed(1)} MB, ${tensors.length} tensors (${typeName}), vocab ${tokens.length}, ${merges.length} merges`);
}

if (require.main === module) main();
