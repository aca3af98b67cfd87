// The reader against real files made by llama.cpp's converter: what it reports must agree with the
// independent description of each file (gguf-py's reading, stored in the fixtures' .ref.json), and
// every kind of malformed input must end in a GGUFError that names the key or tensor at fault.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GGMLType, GGUFError, GGUFType, GGUFValue, openGGUF, parseGGUF } from '../../engine/gguf';
import { HAVE_SHARED, fixture } from '../shared';
import { buildGGUF, TinyKV } from './helpers';

const read = (p: string) => new Uint8Array(readFileSync(p));

describe.skipIf(!HAVE_SHARED)('GGUF reader on real fixtures', () => {
  for (const name of ['llama-tiny', 'llama-tiny-f16', 'qwen2-tiny', 'starcoder2-tiny', 'gpt_bigcode-tiny']) {
    it(`${name}.gguf matches gguf-py's description of it`, () => {
      const ref = JSON.parse(readFileSync(fixture('arch', `${name}.ref.json`), 'utf8')).gguf[`${name}.gguf`];
      const bytes = read(fixture('arch', `${name}.gguf`));
      expect(bytes.length).toBe(ref.bytes);
      const f = parseGGUF(bytes);
      expect(f.version).toBe(3);
      expect([...f.metadata.keys()].sort()).toEqual(Object.keys(ref.metadata).sort());
      for (const [k, want] of Object.entries(ref.metadata) as Array<[string, any]>) {
        const v = f.get(k)!;
        if (want && typeof want === 'object' && 'array_of' in want) {
          expect(v.type).toBe(GGUFType.ARRAY);
          expect(f.getArray(k).length).toBe(want.len);
        } else if (typeof want === 'number') {
          expect(f.getNumber(k)).toBeCloseTo(want, 12);
        } else {
          expect(v.value).toEqual(want);
        }
      }
      const typeName = Object.fromEntries(Object.entries(GGMLType).map(([n, id]) => [id, n]));
      expect(f.tensors.map((t) => [t.name, t.dims, typeName[t.type]])).toEqual(ref.tensors);
      // Data ranges are inside the file, aligned, and F32 tensors hold exactly 4 bytes per element.
      for (const t of f.tensors) {
        expect(t.offset % f.alignment).toBe(0);
        expect(t.offset + t.size).toBeLessThanOrEqual(bytes.length);
        if (t.type === GGMLType.F32) expect(t.size).toBe(4 * t.dims.reduce((a, b) => a * b, 1));
      }
    });
  }

  it('reads the Q8_0 TinyStories model: types, block sizes, and a 2048-token SentencePiece vocab', () => {
    const { file, map } = openGGUF(fixture('models', 'tinystories-656k-q8_0.gguf'));
    const bytes = read(fixture('models', 'tinystories-656k-q8_0.gguf'));
    expect(map.size).toBe(bytes.length);
    const counts: Record<number, number> = {};
    for (const t of file.tensors) counts[t.type] = (counts[t.type] ?? 0) + 1;
    expect(counts).toEqual({ [GGMLType.Q8_0]: 15, [GGMLType.F32]: 5 });
    const q = file.tensors.find((t) => t.type === GGMLType.Q8_0)!;
    expect(q.size).toBe((q.dims[0] * q.dims[1] / 32) * 34);
    expect(file.getString('tokenizer.ggml.model')).toBe('llama');
    expect(file.getStringArray('tokenizer.ggml.tokens')).toHaveLength(2048);
    expect(file.getArray('tokenizer.ggml.scores')).toBeInstanceOf(Float32Array);
    expect(file.getNumber('llama.attention.head_count_kv')).toBe(4);
    // The tensor data read through the mapping is the file's bytes at the tensor's offset.
    expect(Buffer.compare(file.tensorData(q), bytes.subarray(q.offset, q.offset + q.size))).toBe(0);
  });

  it('reads GGUF v2 files (same layout as v3 for little-endian files)', () => {
    const v3 = read(fixture('arch', 'qwen2-tiny.gguf'));
    const v2 = v3.slice();
    new DataView(v2.buffer).setUint32(4, 2, true);
    const a = parseGGUF(v3), b = parseGGUF(v2);
    expect(b.version).toBe(2);
    expect([...b.metadata]).toEqual([...a.metadata]);
    expect(b.tensors).toEqual(a.tensors);
  });

  it('reads vocab-only files (no tensors) and 32k-50k string arrays', () => {
    for (const v of ['ggml-vocab-gpt-2.gguf', 'ggml-vocab-llama-spm.gguf', 'ggml-vocab-deepseek-coder.gguf']) {
      const f = parseGGUF(read(fixture('vocab', v)));
      expect(f.tensors).toHaveLength(0);
      const toks = f.getStringArray('tokenizer.ggml.tokens');
      expect(toks.length).toBeGreaterThan(30000);
      expect(toks.every((t) => typeof t === 'string')).toBe(true);
    }
  });
});

describe('GGUF reader value types and errors (files built here, byte by byte)', () => {
  it('reads every metadata value type, nested arrays included', () => {
    const kv: TinyKV[] = [
      ['a.u8', GGUFType.UINT8, 250], ['a.i8', GGUFType.INT8, -5], ['a.u16', GGUFType.UINT16, 65000],
      ['a.i16', GGUFType.INT16, -30000], ['a.u32', GGUFType.UINT32, 4000000000], ['a.i32', GGUFType.INT32, -2000000000],
      ['a.f32', GGUFType.FLOAT32, 1.5], ['a.b', GGUFType.BOOL, true], ['a.s', GGUFType.STRING, 'héllo'],
      ['a.u64', GGUFType.UINT64, 2n ** 60n], ['a.i64', GGUFType.INT64, -(2n ** 62n)], ['a.f64', GGUFType.FLOAT64, Math.PI],
      ['a.small64', GGUFType.UINT64, 12345n],
    ];
    const f = parseGGUF(buildGGUF({ kv, arrays: [['a.arr', [[1, 2], [3]]], ['a.strs', ['x', '', 'yz']]] }));
    expect(f.getNumber('a.u8')).toBe(250);
    expect(f.getNumber('a.i8')).toBe(-5);
    expect(f.getNumber('a.u16')).toBe(65000);
    expect(f.getNumber('a.i16')).toBe(-30000);
    expect(f.getNumber('a.u32')).toBe(4000000000);
    expect(f.getNumber('a.i32')).toBe(-2000000000);
    expect(f.getNumber('a.f32')).toBe(1.5);
    expect(f.getBool('a.b')).toBe(true);
    expect(f.getString('a.s')).toBe('héllo');
    expect(f.get('a.u64')!.value).toBe(2n ** 60n);
    expect(f.get('a.i64')!.value).toBe(-(2n ** 62n));
    expect(f.getNumber('a.f64')).toBe(Math.PI);
    expect(f.getNumber('a.small64')).toBe(12345);
    const nested = f.getArray('a.arr') as Array<{ items: Int32Array }>;
    expect(nested.map((a) => [...a.items])).toEqual([[1, 2], [3]]);
    expect(f.getStringArray('a.strs')).toEqual(['x', '', 'yz']);
    // Typed getters name the key and the actual type.
    expect(() => f.getString('a.u8')).toThrow(/"a.u8" should be a string but is uint8/);
    expect(() => f.getNumber('a.s')).toThrow(/"a.s" should be a number but is string/);
    expect(() => f.getNumber('a.u64')).toThrow(/"a.u64" is 1152921504606846976, too large/);
    expect(() => f.getStringArray('a.arr')).toThrow(/"a.arr" should be an array of strings but is an array of array/);
    expect(() => f.getNumber('missing.key')).toThrow(/"missing.key" is missing/);
    expect(f.getNumber('missing.key', 7)).toBe(7);
  });

  const err = (b: Uint8Array) => {
    try {
      parseGGUF(b);
    } catch (e) {
      expect(e).toBeInstanceOf(GGUFError);
      return (e as Error).message;
    }
    throw new Error('parse unexpectedly succeeded');
  };
  const t32 = (name: string, dims: number[], offset = 0, type = GGMLType.F32) => ({ name, dims, type, offset });

  it('names the problem in each error class', () => {
    expect(err(new TextEncoder().encode('GGML....'))).toMatch(/not a GGUF file/);
    expect(err(buildGGUF({ version: 1 }))).toMatch(/version 1 is not supported/);
    expect(err(buildGGUF({ version: 0x03000000 }))).toMatch(/big-endian/);
    expect(err(buildGGUF({ version: 7 }))).toMatch(/unsupported GGUF version 7/);
    expect(err(buildGGUF({ kv: [['x.y', GGUFType.UINT32, 1], ['x.y', GGUFType.UINT32, 2]] }))).toMatch(/metadata "x.y" appears twice/);
    expect(err(buildGGUF({ kv: [['x.bad', 13 as any, 0]] }))).toMatch(/metadata "x.bad": unknown value type 13/);
    expect(err(buildGGUF({ kv: [['x.b', GGUFType.BOOL, 2]] }))).toMatch(/metadata "x.b": bool byte is 2/);
    expect(err(buildGGUF({ kv: [['general.alignment', GGUFType.UINT32, 24]] }))).toMatch(/"general.alignment" is 24: must be a non-zero power of two/);
    expect(err(buildGGUF({ kv: [['general.alignment', GGUFType.UINT32, 0]] }))).toMatch(/"general.alignment" is 0/);
    expect(err(buildGGUF({ kv: [['general.alignment', GGUFType.STRING, '32']] }))).toMatch(/"general.alignment" must be an integer/);
    expect(err(buildGGUF({ tensors: [t32('w', [8]), t32('w', [8], 32)] }))).toMatch(/tensor "w" appears twice/);
    expect(err(buildGGUF({ tensors: [t32('w', [2, 2, 2, 2, 2])] }))).toMatch(/tensor "w": 5 dimensions/);
    expect(err(buildGGUF({ tensors: [t32('w', [8, 0])] }))).toMatch(/tensor "w": dimension 1 is 0/);
    expect(err(buildGGUF({ tensors: [{ ...t32('w.q', [64, 2]), type: 6 }] }))).toMatch(/tensor "w.q" has ggml type 6 \(Q5_0\), which Forkcast does not support/);
    expect(err(buildGGUF({ tensors: [{ ...t32('w.k', [128, 2]), type: GGMLType.Q4_K }] }))).toMatch(/tensor "w.k": row length 128 is not a multiple of the Q4_K block size 256/);
    expect(err(buildGGUF({ tensors: [t32('w', [8], 16)] }))).toMatch(/tensor "w": data offset 16 is not a multiple of the alignment 32/);
    expect(err(buildGGUF({ tensors: [t32('a', [16]), t32('b', [16], 32)] }))).toMatch(/tensor "b": data at \d+ overlaps tensor "a"/);
    expect(err(buildGGUF({ tensors: [t32('w', [8], 4096)], dataLen: 64 }))).toMatch(/tensor "w": data \[\d+, \d+\) lies outside the file/);
    expect(err(buildGGUF({ tensors: [t32('x'.repeat(65), [8])] }))).toMatch(/tensor #0 name: string length 65 exceeds the limit of 64/);
    expect(err(buildGGUF({ tensors: [t32('w', [2 ** 30, 2 ** 30, 2 ** 30])], dataLen: 0 }))).toMatch(/tensor "w": element count overflows/);
  });

  it('rejects hostile counts and lengths without allocating them', () => {
    expect(err(buildGGUF({ tensorCountOverride: 2n ** 63n }))).toMatch(/tensor count: value 9223372036854775808 is absurdly large/);
    expect(err(buildGGUF({ kvCountOverride: 2n ** 32n }))).toMatch(/metadata key-value count: 4294967296 is more than/);
    expect(err(buildGGUF({ arrays: [['big.arr', ['a']]], arrayLenOverride: 2n ** 40n }))).toMatch(/metadata "big.arr" \(array length\): 1099511627776 is more than/);
    expect(err(buildGGUF({ kv: [['s.s', GGUFType.STRING, 'abc']], stringLenOverride: 2n ** 53n }))).toMatch(/metadata "s.s" \(string length\): value 9007199254740992 is absurdly large/);
    const deep = buildGGUF({ deepArray: 50 });
    expect(err(deep)).toMatch(/nested deeper than 8 levels/);
    expect(err(buildGGUF({ kv: [['a.s', GGUFType.STRING, 'abc']] }).subarray(0, 30))).toMatch(/truncated/);
  });

  it('a GGUFValue-typed value keeps its declared type', () => {
    const f = parseGGUF(buildGGUF({ kv: [['k.f', GGUFType.FLOAT32, 0.1]] }));
    const v = f.get('k.f') as GGUFValue;
    expect(v.type).toBe(GGUFType.FLOAT32);
    expect(v.value).toBe(Math.fround(0.1));
  });
});

describe('files larger than 4 GiB (7B models)', () => {
  // Node 20's typed arrays stop at 2^32 elements, so openGGUF parses a view of the file's start and
  // checks tensor ranges against the mapping's real size (the native side reads the data).
  it('checks tensors past 2^32 against the real file size, from a view of the header only', () => {
    const bigDims = [256, 4_400_000]; // 4.5e9 bytes of F32
    const head = buildGGUF({
      tensors: [{ name: 'small', dims: [64], type: GGMLType.F32, offset: 0 }, { name: 'big', dims: bigDims, type: GGMLType.F32, offset: 256 }],
      dataLen: 256,
    });
    const full = head.length + 4 * bigDims[0] * bigDims[1];
    const file = parseGGUF(head, full);
    const big = file.tensor('big')!;
    expect(big.offset + big.size).toBe(full);
    expect(big.offset + big.size).toBeGreaterThan(2 ** 32);
    expect(file.tensorData(file.tensor('small')!)).toHaveLength(256);
    expect(() => file.tensorData(big)).toThrow(/tensor "big" lies beyond the first \d+ bytes viewable/);
    expect(() => parseGGUF(head, full - 1)).toThrow(/tensor "big": data \[\d+, \d+\) lies outside the file \(\d+ bytes/);
    expect(() => parseGGUF(head, head.length - 1)).toThrow(GGUFError);
  });
});
