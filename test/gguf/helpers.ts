// A hand-rolled GGUF byte builder for the reader's tests, independent of engine/ggufWriter.ts (so a
// bug shared by reader and writer cannot hide), able to write what a hostile file would hold:
// wrong versions, absurd counts and lengths, bad bool bytes, unknown types, arrays nested deep.
import { GGUFType } from '../../engine/gguf';

export type TinyKV = [string, number, number | bigint | boolean | string];
export interface TinyTensor { name: string; dims: number[]; type: number; offset: number }
export interface BuildOpts {
  version?: number;
  kv?: TinyKV[];
  /** Arrays: numbers become int32 items, strings string items, arrays nested arrays. */
  arrays?: Array<[string, unknown[]]>;
  tensors?: TinyTensor[];
  alignment?: number;
  dataLen?: number;
  tensorCountOverride?: bigint;
  kvCountOverride?: bigint;
  arrayLenOverride?: bigint; // replaces the count of the first array written
  stringLenOverride?: bigint; // replaces the length of the first string value written
  deepArray?: number; // an extra key holding arrays nested this deep
}

const BYTES: Record<number, number> = { 0: 18, 1: 2, 2: 18, 8: 34, 12: 144, 13: 176, 14: 210, 30: 2 };
const BLOCK: Record<number, number> = { 0: 1, 1: 1, 2: 32, 8: 32, 12: 256, 13: 256, 14: 256, 30: 1 };

export function buildGGUF(o: BuildOpts = {}): Uint8Array {
  const out: number[] = [];
  const u8 = (v: number) => out.push(v & 0xff);
  const u32 = (v: number) => { for (let i = 0; i < 4; i++) u8(v >>> (8 * i)); };
  const u64 = (v: number | bigint) => { let b = BigInt.asUintN(64, BigInt(v)); for (let i = 0; i < 8; i++) { u8(Number(b & 0xffn)); b >>= 8n; } };
  const bytes = (b: Uint8Array) => b.forEach((x) => u8(x));
  const str = (s: string, len?: bigint) => { const b = new TextEncoder().encode(s); u64(len ?? b.length); bytes(b); };
  let arrayPatched = false, stringPatched = false;

  const kv = o.kv ?? [];
  const arrays = o.arrays ?? [];
  out.push(...new TextEncoder().encode('GGUF'));
  u32(o.version ?? 3);
  const tensors = o.tensors ?? [];
  u64(o.tensorCountOverride ?? tensors.length);
  u64(o.kvCountOverride ?? kv.length + arrays.length + (o.deepArray ? 1 : 0));
  for (const [key, type, value] of kv) {
    str(key);
    u32(type);
    const f = new DataView(new ArrayBuffer(8));
    switch (type) {
      case GGUFType.UINT8: case GGUFType.INT8: case GGUFType.BOOL: u8(Number(value)); break;
      case GGUFType.UINT16: case GGUFType.INT16: u8(Number(value)); u8(Number(value) >> 8); break;
      case GGUFType.UINT32: case GGUFType.INT32: u32(Number(value)); break;
      case GGUFType.FLOAT32: f.setFloat32(0, Number(value), true); bytes(new Uint8Array(f.buffer, 0, 4)); break;
      case GGUFType.FLOAT64: f.setFloat64(0, Number(value), true); bytes(new Uint8Array(f.buffer, 0, 8)); break;
      case GGUFType.UINT64: case GGUFType.INT64: u64(value as bigint); break;
      case GGUFType.STRING: str(String(value), stringPatched ? undefined : o.stringLenOverride); stringPatched = true; break;
      default: break; // unknown type: no value bytes
    }
  }
  const writeArray = (items: unknown[]) => {
    const elem = typeof items[0] === 'string' ? GGUFType.STRING : Array.isArray(items[0]) ? GGUFType.ARRAY : GGUFType.INT32;
    u32(elem);
    u64(!arrayPatched && o.arrayLenOverride !== undefined ? o.arrayLenOverride : items.length);
    arrayPatched = true;
    for (const it of items) {
      if (elem === GGUFType.STRING) str(it as string);
      else if (elem === GGUFType.ARRAY) writeArray(it as unknown[]);
      else u32(it as number);
    }
  };
  for (const [key, items] of arrays) { str(key); u32(GGUFType.ARRAY); writeArray(items); }
  if (o.deepArray) {
    str('deep.array'); u32(GGUFType.ARRAY);
    for (let i = 0; i < o.deepArray; i++) { u32(GGUFType.ARRAY); u64(1); }
    u32(GGUFType.UINT8); u64(0);
  }
  const align = o.alignment ?? 32;
  let end = 0;
  for (const t of tensors) {
    str(t.name); u32(t.dims.length); t.dims.forEach((d) => u64(d)); u32(t.type); u64(t.offset);
    const n = t.dims.reduce((a, b) => a * b, 1);
    const size = t.type === 0 ? 4 * n : (n / (BLOCK[t.type] ?? 1)) * (BYTES[t.type] ?? 1);
    if (Number.isFinite(size) && size < 1 << 20) end = Math.max(end, t.offset + size);
  }
  if (tensors.length) while (out.length % align) u8(0);
  const dataLen = o.dataLen ?? end;
  for (let i = 0; i < dataLen; i++) u8((i * 37 + 11) & 0xff);
  return new Uint8Array(out);
}
