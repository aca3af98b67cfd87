// Loading mutated real models all the way (GGUF parse + architecture table + tokenizer + native Model,
// then a forward pass when loading succeeds): each either runs or fails with an Error that says what is
// wrong; nothing crashes the process, and a good model still loads and runs afterwards.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GGMLType, parseGGUF } from '../../engine/gguf';
import { loadModel } from '../../engine/model';
import { loadAddon } from '../../engine/native';
import { HAVE_SHARED, fixture } from '../shared';

const haveAddon = (() => { try { return typeof loadAddon().Model === 'function'; } catch { return false; } })();
if (!haveAddon) console.warn('[load fuzz] native addon not built: skipped');

const dir = mkdtempSync(join(tmpdir(), 'forkcast-loadfuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Offset of the value of metadata `key` (after its u32 type), found by its exact length-prefixed bytes. */
function valueOffset(buf: Uint8Array, key: string): number {
  const k = Buffer.from(key);
  const needle = Buffer.alloc(8 + k.length);
  needle.writeBigUInt64LE(BigInt(k.length));
  k.copy(needle, 8);
  const at = Buffer.from(buf).indexOf(needle);
  if (at < 0) throw new Error(`test setup: ${key} not in file`);
  return at + needle.length + 4;
}
const patched = (buf: Uint8Array, fn: (c: Uint8Array, v: DataView) => void) => {
  const c = buf.slice();
  fn(c, new DataView(c.buffer));
  return c;
};

interface Case { name: string; bytes: Uint8Array; expectError?: RegExp }

async function tryLoad(c: Case, i: number): Promise<'ran' | 'error'> {
  const path = join(dir, `case-${i}.gguf`);
  writeFileSync(path, c.bytes);
  let model;
  try {
    model = loadModel(path, { threads: 1, warn: () => {} });
  } catch (e) {
    expect(e, c.name).toBeInstanceOf(Error);
    expect((e as Error).message.length, c.name).toBeGreaterThan(10);
    if (c.expectError) expect((e as Error).message, c.name).toMatch(c.expectError);
    return 'error';
  }
  try {
    expect(c.expectError, `${c.name} loaded but should have failed`).toBeUndefined();
    const ctx = model.createContext({ ctx: 16, maxSamples: 1, maxDecode: 1, threads: 1 });
    try {
      const logits = await ctx.evalPrompt(Int32Array.from([1, 2, 3]), 0);
      expect(logits.length).toBe(model.spec.n_vocab);
      // The tokenizer's largest id either runs or is refused by id, never read out of bounds.
      const last = model.tokenizer.vocabSize - 1;
      await ctx.evalPrompt(Int32Array.from([1, last]), 0).then(
        (l) => expect(l.length).toBe(model!.spec.n_vocab),
        (e) => expect((e as Error).message).toMatch(/token id \d+ out of range/));
    } finally {
      ctx.dispose();
    }
    return 'ran';
  } finally {
    model.dispose();
  }
}

describe.skipIf(!HAVE_SHARED || !haveAddon)('loading mutated models fails cleanly', () => {
  for (const [sub, file, arch] of [['models', 'tinystories-656k-q8_0.gguf', 'llama'], ['arch', 'qwen2-tiny.gguf', 'qwen2'], ['arch', 'gpt_bigcode-tiny.gguf', 'starcoder']] as const) {
    it(`${file}: truncated data, wrong shapes, renamed tensors, bad hyperparameters`, async () => {
      const full = new Uint8Array(readFileSync(fixture(sub, file)));
      const f = parseGGUF(full);
      const cases: Case[] = [];
      // Truncated tensor data: the reader refuses it (the tensor is named).
      for (const t of f.tensors.slice(-3)) {
        cases.push({ name: `cut inside ${t.name}`, bytes: full.subarray(0, t.offset + (t.size >> 1)), expectError: new RegExp(`tensor "${t.name.replace(/\./g, '\\.')}": data .* lies outside`) });
      }
      // Shape changes: a smaller second dimension keeps the file parseable, the architecture check must object.
      const infoOffset = (name: string) => { // -> the tensor info's n_dims field
        const needle = Buffer.alloc(8 + name.length);
        needle.writeBigUInt64LE(BigInt(name.length));
        needle.write(name, 8);
        return Buffer.from(full).indexOf(needle) + needle.length;
      };
      for (const t of f.tensors.filter((x) => x.dims.length === 2).slice(0, 6)) {
        cases.push({
          name: `${t.name} dim1 - 1`,
          bytes: patched(full, (_, v) => v.setBigUint64(infoOffset(t.name) + 4 + 8, BigInt(t.dims[1] - 1), true)),
          // Fewer embedding/output rows than tokens is accepted (n_vocab = rows; larger ids are refused
          // at evaluation, see tryLoad); any other shape change must be refused.
          expectError: /token_embd|^output/.test(t.name) ? undefined : /shape|dims|expected|rows|size|vocab|embd|\d+ x \d+/i,
        });
      }
      // Type swaps between supported types of different sizes: parse may pass (smaller) or not (overlap).
      for (const t of f.tensors.slice(0, 8)) {
        for (const type of [GGMLType.F16, GGMLType.Q8_0, GGMLType.F32]) {
          if (type === t.type || (t.dims[0] % 32 !== 0 && type === GGMLType.Q8_0)) continue;
          cases.push({ name: `${t.name} as type ${type}`, bytes: patched(full, (_, v) => v.setUint32(infoOffset(t.name) + 4 + 8 * t.dims.length, type, true)) });
        }
      }
      // A renamed (so: missing) tensor.
      for (const t of f.tensors.slice(0, 4)) {
        cases.push({ name: `${t.name} renamed`, bytes: patched(full, (c) => { c[infoOffset(t.name) - 1] ^= 0x20; }) });
      }
      // Hyperparameters out of range or inconsistent with the tensors.
      const u32 = (key: string, value: number): Case => ({ name: `${key} = ${value}`, bytes: patched(full, (_, v) => v.setUint32(valueOffset(full, key), value, true)) });
      for (const key of [`${arch}.attention.head_count`, `${arch}.attention.head_count_kv`, `${arch}.embedding_length`, `${arch}.block_count`, `${arch}.feed_forward_length`, `${arch}.context_length`]) {
        for (const value of [0, 3, 7, 1000, 0x7fffffff, 0xffffffff]) cases.push(u32(key, value));
      }
      cases.push({ name: 'architecture renamed', bytes: patched(full, (c) => { c[valueOffset(full, 'general.architecture') + 8] ^= 0x01; }), expectError: /architecture/i });
      const eps = f.has(`${arch}.attention.layer_norm_rms_epsilon`) ? `${arch}.attention.layer_norm_rms_epsilon` : `${arch}.attention.layer_norm_epsilon`;
      for (const value of [NaN, -1, Infinity]) {
        cases.push({ name: `${eps} = ${value}`, bytes: patched(full, (_, v) => v.setFloat32(valueOffset(full, eps), value, true)) });
      }
      // The tokenizer's token count no longer matching the embedding rows.
      cases.push({ name: 'token array one shorter', bytes: patched(full, (_, v) => {
        const at = valueOffset(full, 'tokenizer.ggml.tokens') + 4;
        v.setBigUint64(at, v.getBigUint64(at, true) - 1n, true);
      }) });

      const tally = { ran: 0, error: 0 };
      const ran: string[] = [];
      for (let i = 0; i < cases.length; i++) { const r = await tryLoad(cases[i], i); tally[r]++; if (r === 'ran') ran.push(cases[i].name); }
      console.log(`[load fuzz] ${file}: ${cases.length} mutated models: ${tally.error} refused with an error, ${tally.ran} loaded and ran (${ran.join(", ")})`);
      expect(tally.error).toBeGreaterThan(cases.length / 2);
      // Still healthy afterwards.
      expect(await tryLoad({ name: 'original', bytes: full }, 9999)).toBe('ran');
    });
  }
});
