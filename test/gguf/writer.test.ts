// The writer's files read back identically: every metadata type, every tensor type, alignment, and
// a real fixture rewritten from its parse is byte-identical in content (metadata and tensor bytes).
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GGMLType, GGUFType, GGUFValue, ggmlTensorBytes, parseGGUF } from '../../engine/gguf';
import { writeGGUF } from '../../engine/ggufWriter';
import { HAVE_SHARED, fixture } from '../shared';

const dir = mkdtempSync(join(tmpdir(), 'forkcast-gguf-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const read = (p: string) => new Uint8Array(readFileSync(p));

function randomBytes(n: number, seed: number) {
  const b = new Uint8Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) { s = (s * 1664525 + 1013904223) >>> 0; b[i] = s >>> 24; }
  return b;
}

describe('GGUF writer round trip', () => {
  it('metadata of every type and tensors of every supported type read back exactly', () => {
    const metadata: Array<[string, GGUFValue]> = [
      ['general.architecture', { type: GGUFType.STRING, value: 'llama' }],
      ['t.u8', { type: GGUFType.UINT8, value: 200 }],
      ['t.i8', { type: GGUFType.INT8, value: -100 }],
      ['t.u16', { type: GGUFType.UINT16, value: 60000 }],
      ['t.i16', { type: GGUFType.INT16, value: -20000 }],
      ['t.u32', { type: GGUFType.UINT32, value: 3000000000 }],
      ['t.i32', { type: GGUFType.INT32, value: -1 }],
      ['t.f32', { type: GGUFType.FLOAT32, value: Math.fround(0.3) }],
      ['t.bool', { type: GGUFType.BOOL, value: false }],
      ['t.str', { type: GGUFType.STRING, value: 'ünïcødé ✓ <fim_prefix>' }],
      ['t.u64', { type: GGUFType.UINT64, value: 2n ** 63n + 5n }],
      ['t.i64', { type: GGUFType.INT64, value: -42 }],
      ['t.f64', { type: GGUFType.FLOAT64, value: 1e-300 }],
      ['t.strs', { type: GGUFType.ARRAY, value: { elemType: GGUFType.STRING, items: ['a', '', 'Ġthe', '\u0000x'] } }],
      ['t.i32s', { type: GGUFType.ARRAY, value: { elemType: GGUFType.INT32, items: new Int32Array([1, -2, 3]) } }],
      ['t.f32s', { type: GGUFType.ARRAY, value: { elemType: GGUFType.FLOAT32, items: [0.5, -0.25] } }],
      ['t.bools', { type: GGUFType.ARRAY, value: { elemType: GGUFType.BOOL, items: [true, false] } }],
      ['t.nested', { type: GGUFType.ARRAY, value: { elemType: GGUFType.ARRAY, items: [
        { elemType: GGUFType.UINT8, items: new Uint8Array([1, 2]) },
        { elemType: GGUFType.STRING, items: ['z'] },
      ] } }],
    ];
    const types = [GGMLType.F32, GGMLType.F16, GGMLType.BF16, GGMLType.Q8_0, GGMLType.Q4_0, GGMLType.Q4_K, GGMLType.Q5_K, GGMLType.Q6_K];
    const tensors = types.map((type, i) => {
      const dims = [256, 3];
      return { name: `t${i}.weight`, dims, type, data: randomBytes(ggmlTensorBytes(type, 768), i + 1) };
    });
    tensors.push({ name: 'lazy.weight', dims: [5], type: GGMLType.F32, data: (() => randomBytes(20, 99)) as any });
    for (const alignment of [32, 64, 4096]) {
      const path = join(dir, `all-${alignment}.gguf`);
      const size = writeGGUF(path, { metadata, tensors, alignment });
      expect(statSync(path).size).toBe(size);
      const f = parseGGUF(read(path));
      expect(f.version).toBe(3);
      expect(f.alignment).toBe(alignment);
      expect(f.dataOffset % alignment).toBe(0);
      for (const [k, v] of metadata) expect(f.get(k)).toEqual(normalise(v));
      expect(f.metadata.size).toBe(metadata.length + (alignment === 32 ? 0 : 1));
      for (const t of tensors) {
        const info = f.tensor(t.name)!;
        expect(info.dims).toEqual(t.dims);
        expect(info.type).toBe(t.type);
        expect(info.offset % alignment).toBe(0);
        const want = typeof t.data === 'function' ? (t.data as () => Uint8Array)() : t.data;
        expect(Buffer.compare(f.tensorData(info), want)).toBe(0);
      }
    }
  });

  it('refuses a tensor whose bytes do not match its shape and type, leaving no file', () => {
    const path = join(dir, 'bad.gguf');
    expect(() => writeGGUF(path, { metadata: [], tensors: [{ name: 'w', dims: [32, 2], type: GGMLType.Q8_0, data: new Uint8Array(60) }] }))
      .toThrow(/tensor "w" \(Q8_0 32x2\) needs 68 bytes, got 60/);
    expect(() => statSync(path)).toThrow();
  });

  it.skipIf(!HAVE_SHARED)('rewriting real fixtures from their parse keeps metadata and tensor bytes', () => {
    for (const p of [fixture('models', 'tinystories-656k-q8_0.gguf'), fixture('arch', 'starcoder2-tiny.gguf'), fixture('vocab', 'ggml-vocab-deepseek-coder.gguf')]) {
      const src = parseGGUF(read(p));
      const out = join(dir, 'rewrite.gguf');
      writeGGUF(out, {
        metadata: [...src.metadata],
        tensors: src.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, data: src.tensorData(t) })),
      });
      const back = parseGGUF(read(out));
      expect([...back.metadata]).toEqual([...src.metadata]);
      expect(back.tensors.map((t) => [t.name, t.dims, t.type, t.size])).toEqual(src.tensors.map((t) => [t.name, t.dims, t.type, t.size]));
      for (const t of src.tensors) expect(Buffer.compare(back.tensorData(back.tensor(t.name)!), src.tensorData(t))).toBe(0);
      // llama.cpp's converter and this writer lay files out the same way: same total size.
      expect(statSync(out).size).toBe(statSync(p).size);
    }
  });
});

/** What the reader returns for a value the writer was given (numeric arrays come back typed, u64 as number when exact). */
function normalise(v: GGUFValue): GGUFValue {
  if (v.type === GGUFType.UINT64 || v.type === GGUFType.INT64) {
    const b = BigInt(v.value);
    return { type: v.type, value: b <= BigInt(Number.MAX_SAFE_INTEGER) && b >= -BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b };
  }
  if (v.type !== GGUFType.ARRAY) return v;
  return { type: 9, value: normaliseArray(v.value) };
}
function normaliseArray(a: any): any {
  const ctors: Record<number, any> = { 0: Uint8Array, 1: Int8Array, 2: Uint16Array, 3: Int16Array, 4: Uint32Array, 5: Int32Array, 6: Float32Array, 12: Float64Array };
  if (a.elemType === GGUFType.ARRAY) return { elemType: 9, items: a.items.map(normaliseArray) };
  if (ctors[a.elemType]) return { elemType: a.elemType, items: ctors[a.elemType].from(a.items) };
  return a;
}
