// The architecture table turns real converter-made GGUFs into the forward pass's flags, and reads
// the rope settings a user's file may carry (DeepSeek-Coder's linear scaling x4) or refuses them
// by name (scaling types the engine does not implement would silently give wrong text).
import { describe, expect, test } from 'vitest';
import { specFromGGUF } from '../../engine/archTable';
import { openGGUF, type GGUFFile } from '../../engine/gguf';
import { fixture, HAVE_SHARED } from '../shared';

/** The same parsed file with some metadata values replaced (a file that says something else). */
function withMeta(file: GGUFFile, over: Record<string, string | number>): GGUFFile {
  const has = (k: string) => k in over || file.has(k);
  return {
    ...file,
    has,
    getString: (k: string, d?: string) => (k in over ? String(over[k]) : file.getString(k, d)),
    getNumber: (k: string, d?: number) => (k in over ? Number(over[k]) : file.getNumber(k, d)),
  };
}

describe.skipIf(!HAVE_SHARED)('architecture table on the converter fixtures', () => {
  const load = (name: string) => openGGUF(fixture('arch', `${name}.gguf`)).file;

  test('each architecture gets its norm, rope, MLP, biases, tied output and positions from the table', () => {
    const llama = specFromGGUF(load('llama-tiny'));
    expect([llama.norm, llama.rope, llama.mlp, llama.rope_base]).toEqual(['rms', 'norm', 'swiglu', 10000]);
    expect(llama.output).not.toEqual(llama.token_embd); // llama-tiny has its own output.weight
    expect(llama.n_head_kv).toBe(2);

    const qwen = specFromGGUF(load('qwen2-tiny'));
    expect([qwen.norm, qwen.rope, qwen.mlp, qwen.rope_base]).toEqual(['rms', 'neox', 'swiglu', 1e6]);
    expect(qwen.output).toEqual(qwen.token_embd); // tied
    expect(qwen.layers[0].bq && qwen.layers[0].bk && qwen.layers[0].bv).toBeTruthy();
    expect(qwen.layers[0].bo).toBeUndefined();

    const sc2 = specFromGGUF(load('starcoder2-tiny'));
    expect([sc2.norm, sc2.rope, sc2.mlp]).toEqual(['layer', 'neox', 'gelu']);
    expect(sc2.output_norm_b && sc2.layers[1].ffn_up_b && sc2.layers[1].bo).toBeTruthy();
    expect(sc2.layers[0].ffn_gate).toBeUndefined();

    const sc = specFromGGUF(load('gpt_bigcode-tiny'));
    expect([sc.norm, sc.rope, sc.mlp, sc.n_head_kv]).toEqual(['layer', 'none', 'gelu', 1]);
    expect(sc.position_embd?.ne1).toBe(128);
    expect(sc.layers[0].wqkv?.ne1).toBe(64 + 2 * 16);
    expect(sc.layers[0].wq).toBeUndefined();
  });

  test('linear rope scaling is read from metadata; other scaling types are refused by name', () => {
    const file = load('llama-tiny');
    expect(specFromGGUF(file).rope_scale).toBe(1);
    const scaled = specFromGGUF(withMeta(file, { 'llama.rope.scaling.type': 'linear', 'llama.rope.scaling.factor': 4 }));
    expect(scaled.rope_scale).toBe(4);
    expect(() => specFromGGUF(withMeta(file, { 'llama.rope.scaling.type': 'yarn', 'llama.rope.scaling.factor': 4 })))
      .toThrow(/rope\.scaling\.type 'yarn' is not supported/);
    expect(() => specFromGGUF(withMeta(file, { 'llama.rope.dimension_count': 15 }))).toThrow(/must be even/);
    expect(() => specFromGGUF(withMeta(file, { 'llama.attention.head_count_kv': 3 }))).toThrow(/not a multiple of head_count_kv 3/);
    expect(() => specFromGGUF(withMeta(file, { 'llama.embedding_length': 0 }))).toThrow(/embedding_length = 0/);
  });

  test('a file whose required per-arch bias or learned positions are missing is refused naming the tensor', () => {
    const sc = load('gpt_bigcode-tiny');
    const without = (f: GGUFFile, name: string): GGUFFile => ({ ...f, tensor: (n: string) => (n === name ? undefined : f.tensor(n)) });
    expect(() => specFromGGUF(without(sc, 'position_embd.weight'))).toThrow(/position_embd\.weight is missing/);
    expect(() => specFromGGUF(without(sc, 'blk.1.attn_qkv.bias'))).toThrow(/blk\.1\.attn_qkv\.bias is missing/);
    expect(() => specFromGGUF(without(load('starcoder2-tiny'), 'output_norm.bias'))).toThrow(/output_norm\.bias is missing/);
  });
});
