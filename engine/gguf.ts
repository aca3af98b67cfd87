// GGUF reader. Every file is untrusted input: each count, length, offset and size is checked against
// the bytes actually present before it is used, so a truncated, corrupt or hostile file ends in a
// GGUFError that names the key or tensor at fault, never a crash, a hang or a huge allocation.
//
// Format facts from the GGUF specification, ggml-org/ggml docs/gguf.md:
// - header: magic "GGUF" (bytes 47 47 55 46), u32 version, u64 tensor_count, u64 metadata_kv_count;
//   v1 used u32 for counts and string lengths, v2 made them u64, v3 only added big-endian files
//   (which cannot be told apart from the header; we read little-endian, the default).
// - string: u64 byte length + UTF-8 bytes, no terminator. Keys at most 65535 bytes, tensor names at most 64.
// - metadata value types 0..12 (u8 i8 u16 i16 u32 i32 f32 bool string array u64 i64 f64); bool is one
//   byte, 0 or 1, anything else invalid; array = u32 element type + u64 count + elements, may nest.
// - general.alignment (u32, default 32) aligns the data section start and every tensor offset.
// - tensor info: name, u32 n_dims (at most 4), u64 dims[n_dims] (ne0 first), u32 ggml type, u64 offset
//   relative to the data section, a multiple of the alignment.
// - the data section starts at the end of the tensor infos rounded up to the alignment.
// Block sizes of the quantized types (elements per block / bytes per block) are from ggml's type
// traits as documented with the formats: Q4_0 32/18, Q8_0 32/34, Q4_K 256/144, Q5_K 256/176, Q6_K 256/210.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { loadAddon, type MappedFile } from './native';

export class GGUFError extends Error {
  override name = 'GGUFError';
  /**
   * Set only when parsing a view of the file's start ran off the end of the view while the file itself
   * is long enough: the header continues past the view, and a view of at least this many bytes is
   * needed to go on. Any other defect leaves it undefined.
   */
  needBytes?: number;
}

/** Metadata value type ids (gguf_metadata_value_type). */
export const GGUFType = {
  UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6,
  BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12,
} as const;
export type GGUFTypeId = (typeof GGUFType)[keyof typeof GGUFType];
const TYPE_NAMES = ['uint8', 'int8', 'uint16', 'int16', 'uint32', 'int32', 'float32', 'bool', 'string', 'array', 'uint64', 'int64', 'float64'];
export const ggufTypeName = (t: number) => TYPE_NAMES[t] ?? `unknown(${t})`;
/** Byte size of fixed-size value types (0 = variable: string, array). */
const TYPE_SIZE = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];

/** u64/i64 values are numbers when exactly representable, bigints otherwise. */
export type GGUFScalar = number | bigint | boolean | string;
export type GGUFArrayItems =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array | Float32Array | Float64Array
  | Array<number | bigint> | boolean[] | string[] | GGUFArrayValue[];
export interface GGUFArrayValue {
  elemType: GGUFTypeId;
  items: GGUFArrayItems;
}
/** A typed metadata value, as stored (and as the writer takes it). */
export type GGUFValue =
  | { type: 0 | 1 | 2 | 3 | 4 | 5 | 6 | 12; value: number }
  | { type: 10 | 11; value: number | bigint }
  | { type: 7; value: boolean }
  | { type: 8; value: string }
  | { type: 9; value: GGUFArrayValue };

/** ggml tensor types this engine computes with. */
export const GGMLType = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 } as const;
export type GGMLTypeName = keyof typeof GGMLType;
interface TypeTraits { name: GGMLTypeName; block: number; bytes: number }
const GGML_TRAITS = new Map<number, TypeTraits>([
  [0, { name: 'F32', block: 1, bytes: 4 }],
  [1, { name: 'F16', block: 1, bytes: 2 }],
  [2, { name: 'Q4_0', block: 32, bytes: 18 }],
  [8, { name: 'Q8_0', block: 32, bytes: 34 }],
  [12, { name: 'Q4_K', block: 256, bytes: 144 }],
  [13, { name: 'Q5_K', block: 256, bytes: 176 }],
  [14, { name: 'Q6_K', block: 256, bytes: 210 }],
  [30, { name: 'BF16', block: 1, bytes: 2 }],
]);
// Names of the ggml types we do not compute with, so an error can say what the file holds.
const OTHER_GGML_NAMES: Record<number, string> = {
  3: 'Q4_1', 6: 'Q5_0', 7: 'Q5_1', 9: 'Q8_1', 10: 'Q2_K', 11: 'Q3_K', 15: 'Q8_K', 16: 'IQ2_XXS', 17: 'IQ2_XS',
  18: 'IQ3_XXS', 19: 'IQ1_S', 20: 'IQ4_NL', 21: 'IQ3_S', 22: 'IQ2_S', 23: 'IQ4_XS', 24: 'I8', 25: 'I16',
  26: 'I32', 27: 'I64', 28: 'F64', 29: 'IQ1_M', 34: 'TQ1_0', 35: 'TQ2_0', 39: 'MXFP4',
};
export function ggmlTypeName(type: number): string {
  return GGML_TRAITS.get(type)?.name ?? OTHER_GGML_NAMES[type] ?? `unknown`;
}
export function ggmlTypeTraits(type: number): { block: number; bytes: number } | undefined {
  return GGML_TRAITS.get(type);
}
/** Bytes of `n` elements of `type`; n must be a multiple of the block size. */
export function ggmlTensorBytes(type: number, n: number): number {
  const t = GGML_TRAITS.get(type);
  if (!t) throw new GGUFError(`unsupported ggml type ${type} (${ggmlTypeName(type)})`);
  if (n % t.block !== 0) throw new GGUFError(`${n} elements is not a multiple of the ${t.name} block size ${t.block}`);
  return (n / t.block) * t.bytes;
}

export interface GGUFTensorInfo {
  name: string;
  dims: number[]; // ne0 (row length) first
  type: number;
  offset: number; // absolute byte offset of the data in the file
  size: number; // bytes
}

export interface GGUFFile {
  version: number;
  alignment: number;
  dataOffset: number; // absolute offset of the data section (meaningful when there are tensors)
  metadata: Map<string, GGUFValue>;
  tensors: GGUFTensorInfo[];
  /**
   * The bytes that were parsed: for parseGGUF, the buffer given; for openGGUF, a copy of the file's
   * head (the header, and tensor data only as far as the head happens to reach).
   */
  bytes: Uint8Array;
  has(key: string): boolean;
  get(key: string): GGUFValue | undefined;
  /** String value; throws when absent (without a default) or not a string. */
  getString(key: string, dflt?: string): string;
  /** Any numeric type as a number; throws when absent (without a default), not numeric, or not exact. */
  getNumber(key: string, dflt?: number): number;
  getBool(key: string, dflt?: boolean): boolean;
  /** Array items (typed arrays for numeric element types); throws when absent (without a default) or not an array. */
  getArray(key: string, dflt?: GGUFArrayItems): GGUFArrayItems;
  getStringArray(key: string): string[];
  tensor(name: string): GGUFTensorInfo | undefined;
  /**
   * A tensor's bytes: a view (no copy) when they lie in `bytes`; for an openGGUF file, a fresh copy
   * read from the file otherwise (for tools and tests: the engine's forward pass reads the mapping natively).
   */
  tensorData(t: GGUFTensorInfo): Uint8Array;
}

const MAX_KEY_BYTES = 65535;
const MAX_NAME_BYTES = 64;
const MAX_DIMS = 4;
const MAX_ARRAY_DEPTH = 8;
const TWO32 = 4294967296;

/**
 * Sequential little-endian reader whose every read is bounds-checked; `what` names the field for errors.
 * `buf` may be a view of only the start of a file of `fileSize` bytes: a read past the view that the
 * file could satisfy throws a GGUFError with `needBytes` (read a longer view and parse again); a read
 * past the end of the file is an ordinary error.
 */
class Reader {
  pos = 0;
  readonly view: DataView;
  readonly text: Buffer;
  constructor(readonly buf: Uint8Array, readonly fileSize: number) {
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    this.text = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  /** Bytes left in the view. */
  get remaining() {
    return this.buf.byteLength - this.pos;
  }
  /** Bytes left in the file. */
  get fileRemaining() {
    return this.fileSize - this.pos;
  }
  private pastView(bytes: number, what: string): GGUFError {
    const e = new GGUFError(`${what}: needs ${bytes} bytes at offset ${this.pos}, past the ${this.buf.byteLength} bytes of the file's start that were read`);
    e.needBytes = this.pos + bytes;
    return e;
  }
  need(n: number, what: string) {
    if (n > this.remaining) {
      if (n <= this.fileRemaining) throw this.pastView(n, what);
      throw new GGUFError(`${what}: needs ${n} bytes at offset ${this.pos} but the file has ${this.fileRemaining} left (truncated or corrupt)`);
    }
  }
  u8(what: string) { this.need(1, what); return this.view.getUint8(this.pos++); }
  u32(what: string) { this.need(4, what); const v = this.view.getUint32(this.pos, true); this.pos += 4; return v; }
  /** u64 as an exact number; anything above Number.MAX_SAFE_INTEGER is an error (no file is that big). */
  u64(what: string): number {
    this.need(8, what);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
    // hi < 2^21 <=> value < 2^53: then hi * 2^32 + lo is exact in a double.
    if (hi >= 0x200000) {
      const big = (BigInt(hi) << 32n) | BigInt(lo);
      throw new GGUFError(`${what}: value ${big} is absurdly large (corrupt or hostile file)`);
    }
    return hi * TWO32 + lo;
  }
  /** A length/count that must fit in the bytes left, given each unit takes at least `unit` bytes. */
  count(what: string, unit: number): number {
    const n = this.u64(what);
    if (n * unit > this.fileRemaining) {
      throw new GGUFError(`${what}: ${n} is more than the ${this.fileRemaining} bytes left in the file can hold (truncated, corrupt or hostile file)`);
    }
    if (n * unit > this.remaining) throw this.pastView(n * unit, what);
    return n;
  }
  string(what: string, maxBytes = Infinity): string {
    const len = this.count(`${what} (string length)`, 1);
    if (len > maxBytes) throw new GGUFError(`${what}: string length ${len} exceeds the limit of ${maxBytes} bytes`);
    const s = this.text.toString('utf8', this.pos, this.pos + len);
    this.pos += len;
    return s;
  }
}

function readScalar(r: Reader, type: number, what: string): GGUFScalar {
  const v = r.view;
  switch (type) {
    case 0: return r.u8(what);
    case 1: r.need(1, what); return v.getInt8(r.pos++);
    case 2: { r.need(2, what); const x = v.getUint16(r.pos, true); r.pos += 2; return x; }
    case 3: { r.need(2, what); const x = v.getInt16(r.pos, true); r.pos += 2; return x; }
    case 4: return r.u32(what);
    case 5: { r.need(4, what); const x = v.getInt32(r.pos, true); r.pos += 4; return x; }
    case 6: { r.need(4, what); const x = v.getFloat32(r.pos, true); r.pos += 4; return x; }
    case 7: {
      const b = r.u8(what);
      if (b > 1) throw new GGUFError(`${what}: bool byte is ${b}, must be 0 or 1`);
      return b === 1;
    }
    case 8: return r.string(what);
    case 10: { r.need(8, what); const x = v.getBigUint64(r.pos, true); r.pos += 8; return toNumberIfSafe(x); }
    case 11: { r.need(8, what); const x = v.getBigInt64(r.pos, true); r.pos += 8; return toNumberIfSafe(x); }
    case 12: { r.need(8, what); const x = v.getFloat64(r.pos, true); r.pos += 8; return x; }
    default: throw new GGUFError(`${what}: unknown value type ${type}`);
  }
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER), MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);
const toNumberIfSafe = (x: bigint): number | bigint => (x <= MAX_SAFE && x >= MIN_SAFE ? Number(x) : x);

/** Copies n fixed-size little-endian elements into a fresh (aligned) typed array. */
function readTypedArray(r: Reader, elemType: number, n: number): GGUFArrayItems {
  const bytes = n * TYPE_SIZE[elemType];
  const copy = r.buf.slice(r.pos, r.pos + bytes); // aligned copy; buffer is little-endian like the host (x86/ARM LE)
  r.pos += bytes;
  switch (elemType) {
    case 0: return copy;
    case 1: return new Int8Array(copy.buffer);
    case 2: return new Uint16Array(copy.buffer);
    case 3: return new Int16Array(copy.buffer);
    case 4: return new Uint32Array(copy.buffer);
    case 5: return new Int32Array(copy.buffer);
    case 6: return new Float32Array(copy.buffer);
    case 12: return new Float64Array(copy.buffer);
    default: throw new Error('unreachable');
  }
}

function readArray(r: Reader, what: string, depth: number): GGUFArrayValue {
  if (depth > MAX_ARRAY_DEPTH) throw new GGUFError(`${what}: arrays nested deeper than ${MAX_ARRAY_DEPTH} levels`);
  const elemType = r.u32(`${what} (array element type)`);
  if (elemType > 12) throw new GGUFError(`${what}: unknown array element type ${elemType}`);
  // Minimum bytes per element: fixed size, 8 for a string's length, 12 for a nested array's header.
  const unit = elemType === 8 ? 8 : elemType === 9 ? 12 : TYPE_SIZE[elemType];
  const n = r.count(`${what} (array length)`, unit);
  const t = elemType as GGUFTypeId;
  if (t === 8) {
    // Hot path (vocabularies hold 150k strings): bounds checks inline, error text built only on failure.
    const out = new Array<string>(n);
    const view = r.view, text = r.text, end = r.buf.byteLength;
    let pos = r.pos;
    for (let i = 0; i < n; i++) {
      if (pos + 8 > end) { r.pos = pos; r.need(8, `${what}[${i}] (string length)`); }
      const lo = view.getUint32(pos, true), hi = view.getUint32(pos + 4, true);
      pos += 8;
      if (hi !== 0 || lo > end - pos) { r.pos = pos - 8; out[i] = r.string(`${what}[${i}]`); pos = r.pos; continue; }
      out[i] = lo === 0 ? '' : text.toString('utf8', pos, pos + lo);
      pos += lo;
    }
    r.pos = pos;
    return { elemType: t, items: out };
  }
  if (t === 9) {
    const out = new Array<GGUFArrayValue>(n);
    for (let i = 0; i < n; i++) out[i] = readArray(r, `${what}[${i}]`, depth + 1);
    return { elemType: t, items: out };
  }
  // n * unit bytes are known to be present (count() checked), so these loops read without per-element checks.
  if (t === 7) {
    const out = new Array<boolean>(n);
    for (let i = 0; i < n; i++) {
      const b = r.buf[r.pos + i];
      if (b > 1) { r.pos += i; throw new GGUFError(`${what}[${i}]: bool byte is ${b}, must be 0 or 1`); }
      out[i] = b === 1;
    }
    r.pos += n;
    return { elemType: t, items: out };
  }
  if (t === 10 || t === 11) {
    const out = new Array<number | bigint>(n);
    for (let i = 0; i < n; i++, r.pos += 8) {
      out[i] = toNumberIfSafe(t === 10 ? r.view.getBigUint64(r.pos, true) : r.view.getBigInt64(r.pos, true));
    }
    return { elemType: t, items: out };
  }
  return { elemType: t, items: readTypedArray(r, t, n) };
}

function readValue(r: Reader, type: number, key: string): GGUFValue {
  const what = `metadata "${key}"`;
  if (type === 9) return { type: 9, value: readArray(r, what, 1) };
  if (type > 12) throw new GGUFError(`${what}: unknown value type ${type}`);
  return { type, value: readScalar(r, type, what) } as GGUFValue;
}

const alignUp = (x: number, a: number) => Math.ceil(x / a) * a;

/**
 * Parses the header, metadata and tensor infos of a GGUF file held in `buf` (tensor data is not copied).
 * `fileSize` is the whole file's size when `buf` holds only its start (the engine never holds a whole
 * model in JavaScript: 7B files pass 4 GiB): the header must lie in `buf` (if it runs past it, the
 * GGUFError carries `needBytes`), tensor ranges are checked against `fileSize`, and the native side
 * reads tensor data from the mapping. `readData(offset, length)` serves tensorData past `buf`.
 */
export function parseGGUF(buf: Uint8Array, fileSize = buf.byteLength,
  readData?: (offset: number, length: number) => Uint8Array): GGUFFile {
  if (!(fileSize >= buf.byteLength)) throw new GGUFError(`file size ${fileSize} is smaller than the ${buf.byteLength} bytes given`);
  const r = new Reader(buf, fileSize);
  r.need(4, 'GGUF magic');
  if (buf[0] !== 0x47 || buf[1] !== 0x47 || buf[2] !== 0x55 || buf[3] !== 0x46) {
    throw new GGUFError(`not a GGUF file: the first bytes are not "GGUF"`);
  }
  r.pos = 4;
  const version = r.u32('GGUF version');
  if (version === 1) throw new GGUFError('GGUF version 1 is not supported (it used 32-bit counts); re-convert the model with a current llama.cpp');
  if (version !== 2 && version !== 3) {
    const swapped = ((version & 0xff) << 24) | ((version >>> 8 & 0xff) << 16) | ((version >>> 16 & 0xff) << 8) | (version >>> 24);
    if (swapped === 2 || swapped === 3) throw new GGUFError(`GGUF version field reads ${version}: this looks like a big-endian file, only little-endian is supported`);
    throw new GGUFError(`unsupported GGUF version ${version} (supported: 2, 3)`);
  }
  // Minimum bytes: a tensor info is >= 8 (name length) + 4 + 4 + 8 = 24 bytes plus a name and a dim;
  // a key-value pair is >= 8 (key length) + 4 (type) + 1 (smallest value).
  const tensorCount = r.count('tensor count', 33);
  const kvCount = r.count('metadata key-value count', 13);

  const metadata = new Map<string, GGUFValue>();
  for (let i = 0; i < kvCount; i++) {
    const key = r.string(`metadata key #${i}`, MAX_KEY_BYTES);
    if (key.length === 0) throw new GGUFError(`metadata key #${i} is empty`);
    if (metadata.has(key)) throw new GGUFError(`metadata "${key}" appears twice`);
    const type = r.u32(`metadata "${key}" (value type)`);
    metadata.set(key, readValue(r, type, key));
  }

  let alignment = 32;
  const alignValue = metadata.get('general.alignment');
  if (alignValue) {
    const a = alignValue.value;
    if (alignValue.type === 9 || alignValue.type === 7 || alignValue.type === 8 || typeof a !== 'number' || !Number.isInteger(a)) {
      throw new GGUFError(`metadata "general.alignment" must be an integer, found ${ggufTypeName(alignValue.type)}`);
    }
    if (a <= 0 || a > 0x40000000 || (a & (a - 1)) !== 0) {
      throw new GGUFError(`metadata "general.alignment" is ${a}: must be a non-zero power of two (at most 2^30)`);
    }
    alignment = a;
  }

  const infos: Array<GGUFTensorInfo & { rel: number }> = [];
  const names = new Set<string>();
  for (let i = 0; i < tensorCount; i++) {
    const name = r.string(`tensor #${i} name`, MAX_NAME_BYTES);
    const what = `tensor "${name}"`;
    if (name.length === 0) throw new GGUFError(`tensor #${i} has an empty name`);
    if (names.has(name)) throw new GGUFError(`${what} appears twice`);
    names.add(name);
    const nDims = r.u32(`${what} (dimension count)`);
    if (nDims < 1 || nDims > MAX_DIMS) throw new GGUFError(`${what}: ${nDims} dimensions (must be 1..${MAX_DIMS})`);
    const dims: number[] = [];
    let nElem = 1;
    for (let d = 0; d < nDims; d++) {
      const ne = r.u64(`${what} dimension ${d}`);
      if (ne === 0) throw new GGUFError(`${what}: dimension ${d} is 0`);
      nElem *= ne;
      if (nElem > Number.MAX_SAFE_INTEGER) throw new GGUFError(`${what}: element count overflows (dims ${[...dims, ne].join('x')}...)`);
      dims.push(ne);
    }
    const type = r.u32(`${what} (type)`);
    const traits = GGML_TRAITS.get(type);
    if (!traits) {
      throw new GGUFError(`${what} has ggml type ${type} (${ggmlTypeName(type)}), which Forkcast does not support (supported: ${[...GGML_TRAITS.values()].map((t) => t.name).join(', ')})`);
    }
    if (dims[0] % traits.block !== 0) {
      throw new GGUFError(`${what}: row length ${dims[0]} is not a multiple of the ${traits.name} block size ${traits.block}`);
    }
    const size = (nElem / traits.block) * traits.bytes;
    const rel = r.u64(`${what} (data offset)`);
    if (rel % alignment !== 0) throw new GGUFError(`${what}: data offset ${rel} is not a multiple of the alignment ${alignment}`);
    infos.push({ name, dims, type, offset: 0, size, rel });
  }

  const dataOffset = alignUp(r.pos, alignment);
  for (const t of infos) {
    t.offset = dataOffset + t.rel;
    if (t.offset + t.size > fileSize) {
      throw new GGUFError(`tensor "${t.name}": data [${t.offset}, ${t.offset + t.size}) lies outside the file (${fileSize} bytes; truncated or corrupt)`);
    }
  }
  const byOffset = [...infos].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const prev = byOffset[i - 1], cur = byOffset[i];
    if (cur.offset < prev.offset + prev.size) {
      throw new GGUFError(`tensor "${cur.name}": data at ${cur.offset} overlaps tensor "${prev.name}" [${prev.offset}, ${prev.offset + prev.size})`);
    }
  }
  const tensors: GGUFTensorInfo[] = infos.map(({ name, dims, type, offset, size }) => ({ name, dims, type, offset, size }));
  return makeFile(buf, version, alignment, dataOffset, metadata, tensors, readData);
}

function makeFile(bytes: Uint8Array, version: number, alignment: number, dataOffset: number,
  metadata: Map<string, GGUFValue>, tensors: GGUFTensorInfo[],
  readData?: (offset: number, length: number) => Uint8Array): GGUFFile {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const lookup = (key: string, want: string, hasDefault: boolean): GGUFValue | undefined => {
    const v = metadata.get(key);
    if (!v && !hasDefault) throw new GGUFError(`metadata "${key}" is missing (expected ${want})`);
    return v;
  };
  const wrong = (key: string, want: string, v: GGUFValue) =>
    new GGUFError(`metadata "${key}" should be ${want} but is ${ggufTypeName(v.type)}`);
  return {
    version, alignment, dataOffset, metadata, tensors, bytes,
    has: (key) => metadata.has(key),
    get: (key) => metadata.get(key),
    getString(key, dflt) {
      const v = lookup(key, 'a string', dflt !== undefined);
      if (!v) return dflt as string;
      if (v.type !== 8) throw wrong(key, 'a string', v);
      return v.value;
    },
    getNumber(key, dflt) {
      const v = lookup(key, 'a number', dflt !== undefined);
      if (!v) return dflt as number;
      if (v.type === 7 || v.type === 8 || v.type === 9) throw wrong(key, 'a number', v);
      if (typeof v.value === 'bigint') throw new GGUFError(`metadata "${key}" is ${v.value}, too large to use`);
      return v.value;
    },
    getBool(key, dflt) {
      const v = lookup(key, 'a bool', dflt !== undefined);
      if (!v) return dflt as boolean;
      if (v.type !== 7) throw wrong(key, 'a bool', v);
      return v.value;
    },
    getArray(key, dflt) {
      const v = lookup(key, 'an array', dflt !== undefined);
      if (!v) return dflt as GGUFArrayItems;
      if (v.type !== 9) throw wrong(key, 'an array', v);
      return v.value.items;
    },
    getStringArray(key) {
      const v = lookup(key, 'an array of strings', false)!;
      if (v.type !== 9 || v.value.elemType !== 8) {
        throw new GGUFError(`metadata "${key}" should be an array of strings but is ${v.type === 9 ? `an array of ${ggufTypeName(v.value.elemType)}` : ggufTypeName(v.type)}`);
      }
      return v.value.items as string[];
    },
    tensor: (name) => byName.get(name),
    tensorData: (t) => {
      if (t.offset + t.size <= bytes.byteLength) return bytes.subarray(t.offset, t.offset + t.size);
      if (readData) return readData(t.offset, t.size);
      throw new GGUFError(`tensor "${t.name}" lies beyond the first ${bytes.byteLength} bytes viewable from JavaScript; only the native engine reads it`);
    },
  };
}

export interface OpenOptions {
  /** Bytes of the file's start read for the first parse (default 8 MiB); doubled while the header runs past it. */
  headBytes?: number;
  /** Largest head read (default 256 MiB, far above any real header); a header running past it is refused. */
  maxHeadBytes?: number;
}

const HEAD_BYTES = 8 << 20;
// Real headers are a few MB (a 151k-token vocabulary and its merges: ~7 MB); the cap keeps a hostile
// file that declares a huge array of empty strings over gigabytes of zeros from making us copy them.
const MAX_HEAD_BYTES = 256 << 20;

/**
 * Opens a GGUF file: the native addon maps it (the mapping is handed to the native Model, which reads
 * tensor data from it: never copied into the JS heap, no 4 GiB limit), and only a copy of the file's
 * head is parsed here, grown while the header runs past it. The caller owns `map` (close() it, or a
 * Model built on it keeps it until disposed). Without the addon (tools run before `npm run build`) the
 * head is read with positioned fs reads instead, and no Model can be built.
 */
export function openGGUF(path: string, opts: OpenOptions = {}): { file: GGUFFile; map: MappedFile } {
  let map: MappedFile;
  try {
    map = openFile(path);
  } catch (e) {
    throw new GGUFError(`cannot open model file ${path}: ${(e as Error).message}`);
  }
  try {
    return { file: parseHead(map, opts), map };
  } catch (e) {
    map.close();
    if (e instanceof GGUFError) e.message = `${path}: ${e.message}`;
    throw e;
  }
}

/**
 * Parses the file from a copy of its start, at least doubling the copy while the header runs past it.
 * Terminates: each retry grows the head, which is capped (file size, maxHeadBytes), and at the cap a
 * header running past it is an error.
 */
function parseHead(map: MappedFile, opts: OpenOptions): GGUFFile {
  const max = Math.max(1, Math.min(map.size, opts.maxHeadBytes ?? MAX_HEAD_BYTES));
  let len = Math.max(1, Math.min(max, opts.headBytes ?? HEAD_BYTES));
  const readData = (offset: number, length: number) => new Uint8Array(map.read(offset, length));
  for (;;) {
    try {
      return parseGGUF(readData(0, len), map.size, readData);
    } catch (e) {
      if (!(e instanceof GGUFError) || e.needBytes === undefined) throw e;
      if (len >= max) {
        throw new GGUFError(`${e.message}; a header longer than ${max} bytes is refused (corrupt or hostile file)`);
      }
      len = Math.min(max, Math.max(2 * len, e.needBytes));
    }
  }
}

function openFile(path: string): MappedFile {
  let addon: ReturnType<typeof loadAddon> | undefined;
  try {
    addon = loadAddon();
  } catch {
    addon = undefined; // not built: positioned reads below
  }
  return addon ? addon.mapFile(path) : fsFile(path);
}

/**
 * Stand-in for the addon's MappedFile when the addon is not built: the same size/read/close, served by
 * positioned fs reads (so even then no whole file is read). A native Model cannot be built on it.
 */
function fsFile(path: string): MappedFile {
  const st = statSync(path);
  if (!st.isFile()) throw new Error(`${path} is not a readable regular file`);
  if (st.size === 0) throw new Error(`${path} is empty (0 bytes)`);
  let closed = false;
  return {
    size: st.size,
    read(offset, length) {
      if (closed) throw new Error('MappedFile.read: the file was closed');
      if (!(Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0 && offset + length <= st.size)) {
        throw new Error(`MappedFile.read: bytes [${offset}, +${length}) lie outside the file (${st.size} bytes)`);
      }
      const out = new Uint8Array(length);
      const fd = openSync(path, 'r');
      try {
        for (let done = 0; done < length;) {
          const n = readSync(fd, out, done, length - done, offset + done);
          if (n === 0) throw new Error(`${path} shrank while being read`);
          done += n;
        }
      } finally {
        closeSync(fd);
      }
      return out.buffer;
    },
    close() { closed = true; },
  };
}
