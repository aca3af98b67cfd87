// GGUF v3 writer (little-endian), the mirror of engine/gguf.ts; layout facts from ggml-org/ggml
// docs/gguf.md. The header, metadata and tensor infos are built in memory (a vocabulary is a few MB);
// tensor data goes to the file descriptor one tensor at a time, and a tensor's bytes may be produced
// lazily by a callback, so writing a 500 MB model never holds more than one tensor in memory.
import { closeSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { GGUFArrayItems, GGUFArrayValue, GGUFError, GGUFType, GGUFValue, ggmlTensorBytes, ggmlTypeName } from './gguf';

export interface GGUFWriteTensor {
  name: string;
  dims: number[]; // ne0 first
  type: number; // ggml type id
  /**
   * The tensor's bytes, or a function called when the writer reaches this tensor that returns them
   * whole or as consecutive chunks (so even one large tensor need not sit in memory at once).
   */
  data: Uint8Array | (() => Uint8Array | Iterable<Uint8Array>);
}

export interface GGUFWriteSpec {
  metadata: Array<[string, GGUFValue]>;
  tensors: GGUFWriteTensor[];
  /** Data alignment (power of two, default 32); written as general.alignment when not 32. */
  alignment?: number;
}

/** Growable little-endian byte builder for the header part of the file. */
class Bytes {
  buf = Buffer.alloc(1 << 16);
  len = 0;
  private room(n: number) {
    if (this.len + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.len + n) cap *= 2;
    const next = Buffer.alloc(cap);
    this.buf.copy(next, 0, 0, this.len);
    this.buf = next;
  }
  u8(v: number) { this.room(1); this.buf.writeUInt8(v, this.len); this.len += 1; }
  i8(v: number) { this.room(1); this.buf.writeInt8(v, this.len); this.len += 1; }
  u16(v: number) { this.room(2); this.buf.writeUInt16LE(v, this.len); this.len += 2; }
  i16(v: number) { this.room(2); this.buf.writeInt16LE(v, this.len); this.len += 2; }
  u32(v: number) { this.room(4); this.buf.writeUInt32LE(v, this.len); this.len += 4; }
  i32(v: number) { this.room(4); this.buf.writeInt32LE(v, this.len); this.len += 4; }
  f32(v: number) { this.room(4); this.buf.writeFloatLE(v, this.len); this.len += 4; }
  f64(v: number) { this.room(8); this.buf.writeDoubleLE(v, this.len); this.len += 8; }
  u64(v: number | bigint) { this.room(8); this.buf.writeBigUInt64LE(BigInt(v), this.len); this.len += 8; }
  i64(v: number | bigint) { this.room(8); this.buf.writeBigInt64LE(BigInt(v), this.len); this.len += 8; }
  str(s: string) {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(n);
    this.room(n);
    this.buf.write(s, this.len, 'utf8');
    this.len += n;
  }
  bytes(b: Uint8Array) { this.room(b.length); this.buf.set(b, this.len); this.len += b.length; }
}

function writeScalar(out: Bytes, type: number, v: unknown, what: string) {
  const num = () => {
    if (typeof v !== 'number') throw new GGUFError(`${what}: expected a number, got ${typeof v}`);
    return v;
  };
  switch (type) {
    case 0: return out.u8(num());
    case 1: return out.i8(num());
    case 2: return out.u16(num());
    case 3: return out.i16(num());
    case 4: return out.u32(num());
    case 5: return out.i32(num());
    case 6: return out.f32(num());
    case 7:
      if (typeof v !== 'boolean') throw new GGUFError(`${what}: expected a bool`);
      return out.u8(v ? 1 : 0);
    case 8:
      if (typeof v !== 'string') throw new GGUFError(`${what}: expected a string`);
      return out.str(v);
    case 10: return out.u64(v as number | bigint);
    case 11: return out.i64(v as number | bigint);
    case 12: return out.f64(num());
    default: throw new GGUFError(`${what}: cannot write value type ${type}`);
  }
}

function writeArray(out: Bytes, arr: GGUFArrayValue, what: string) {
  out.u32(arr.elemType);
  const items = arr.items as ArrayLike<unknown>;
  out.u64(items.length);
  if (arr.elemType === GGUFType.ARRAY) {
    (arr.items as GGUFArrayValue[]).forEach((a, i) => writeArray(out, a, `${what}[${i}]`));
    return;
  }
  // Typed arrays whose element type matches are copied as raw little-endian bytes.
  const raw = rawTypedBytes(arr.elemType, arr.items);
  if (raw) return out.bytes(raw);
  for (let i = 0; i < items.length; i++) writeScalar(out, arr.elemType, items[i], what);
}

function rawTypedBytes(elemType: number, items: GGUFArrayItems): Uint8Array | undefined {
  const ctor = [Uint8Array, Int8Array, Uint16Array, Int16Array, Uint32Array, Int32Array, Float32Array][elemType] ??
    (elemType === GGUFType.FLOAT64 ? Float64Array : undefined);
  if (ctor && items instanceof ctor) return new Uint8Array(items.buffer, items.byteOffset, items.byteLength);
  return undefined;
}

function writeValue(out: Bytes, v: GGUFValue, key: string) {
  out.u32(v.type);
  if (v.type === GGUFType.ARRAY) writeArray(out, v.value, `metadata "${key}"`);
  else writeScalar(out, v.type, v.value, `metadata "${key}"`);
}

const alignUp = (x: number, a: number) => Math.ceil(x / a) * a;

/** Writes a GGUF v3 file; returns its size in bytes. */
export function writeGGUF(path: string, spec: GGUFWriteSpec): number {
  const metadata = [...spec.metadata];
  const keys = new Set(metadata.map(([k]) => k));
  if (keys.size !== metadata.length) throw new GGUFError('writeGGUF: duplicate metadata key');
  let alignment = spec.alignment ?? 32;
  const declared = metadata.find(([k]) => k === 'general.alignment');
  if (declared) {
    if (typeof declared[1].value !== 'number') throw new GGUFError('writeGGUF: general.alignment must be a number');
    if (spec.alignment !== undefined && spec.alignment !== declared[1].value) throw new GGUFError('writeGGUF: alignment disagrees with general.alignment');
    alignment = declared[1].value;
  } else if (alignment !== 32) {
    metadata.push(['general.alignment', { type: GGUFType.UINT32, value: alignment }]);
  }
  if (!(alignment > 0 && (alignment & (alignment - 1)) === 0)) throw new GGUFError(`writeGGUF: alignment ${alignment} is not a power of two`);

  const head = new Bytes();
  head.bytes(Buffer.from('GGUF', 'latin1'));
  head.u32(3);
  head.u64(spec.tensors.length);
  head.u64(metadata.length);
  for (const [key, v] of metadata) {
    head.str(key);
    writeValue(head, v, key);
  }
  const sizes: number[] = [];
  const names = new Set<string>();
  let rel = 0;
  for (const t of spec.tensors) {
    if (names.has(t.name)) throw new GGUFError(`writeGGUF: tensor "${t.name}" appears twice`);
    names.add(t.name);
    if (t.dims.length < 1 || t.dims.length > 4) throw new GGUFError(`writeGGUF: tensor "${t.name}" has ${t.dims.length} dims`);
    const n = t.dims.reduce((a, b) => a * b, 1);
    const size = ggmlTensorBytes(t.type, n);
    sizes.push(size);
    head.str(t.name);
    head.u32(t.dims.length);
    for (const d of t.dims) head.u64(d);
    head.u32(t.type);
    head.u64(rel);
    rel = alignUp(rel + size, alignment);
  }
  const dataStart = alignUp(head.len, alignment);

  const fd = openSync(path, 'w');
  try {
    let pos = 0;
    const put = (b: Uint8Array) => {
      let off = 0;
      while (off < b.length) off += writeSync(fd, b, off, b.length - off, pos + off);
      pos += b.length;
    };
    const padTo = (target: number) => { if (target > pos) put(new Uint8Array(target - pos)); };
    put(head.buf.subarray(0, head.len));
    if (spec.tensors.length) padTo(dataStart); // vocab-only files end after the metadata
    spec.tensors.forEach((t, i) => {
      padTo(alignUp(pos, alignment));
      const data = typeof t.data === 'function' ? t.data() : t.data;
      const chunks = data instanceof Uint8Array ? [data] : data;
      let written = 0;
      const wrongSize = (got: string) => new GGUFError(
        `writeGGUF: tensor "${t.name}" (${ggmlTypeName(t.type)} ${t.dims.join('x')}) needs ${sizes[i]} bytes, got ${got}`);
      for (const chunk of chunks) {
        written += chunk.length;
        if (written > sizes[i]) throw wrongSize(`more`);
        put(chunk);
      }
      if (written !== sizes[i]) throw wrongSize(`${written}`);
    });
    closeSync(fd);
    return pos;
  } catch (e) {
    closeSync(fd);
    unlinkSync(path); // no half-written model left behind
    throw e;
  }
}

/** Copies every `tokenizer.*` key of a parsed GGUF, typed as stored, for writing into another file. */
export function tokenizerMetadata(metadata: Map<string, GGUFValue>): Array<[string, GGUFValue]> {
  return [...metadata].filter(([k]) => k.startsWith('tokenizer.'));
}
