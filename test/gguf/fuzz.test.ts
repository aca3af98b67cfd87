// Fuzzing the GGUF reader with mutations of real files made by llama.cpp's converter: truncation at
// every header boundary, random byte flips, absurd counts and lengths, overlapping and out-of-file
// tensor data, bad alignments, unknown types. Each parse must either succeed (and then describe a
// file whose every tensor lies inside it, aligned and disjoint) or throw GGUFError; any other
// exception fails, a hang runs into the test timeout, and memory is sampled throughout.
import { readFileSync } from 'node:fs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GGUFError, GGUFType, parseGGUF, type GGUFFile } from '../../engine/gguf';
import { writeGGUF } from '../../engine/ggufWriter';
import { HAVE_SHARED, fixture } from '../shared';

const FILES = [
  ['models', 'tinystories-656k-q8_0.gguf'],
  ['models', 'llama-2-tiny-random-f16.gguf'],
  ['arch', 'llama-tiny.gguf'],
  ['arch', 'llama-tiny-f16.gguf'],
  ['arch', 'qwen2-tiny.gguf'],
  ['arch', 'starcoder2-tiny.gguf'],
  ['arch', 'gpt_bigcode-tiny.gguf'],
  ['vocab', 'ggml-vocab-deepseek-coder.gguf'],
  ['vocab', 'ggml-vocab-llama-spm.gguf'],
] as const;

/** One field of the file as laid out on disk: where it starts, how long, what it is. */
interface Field { off: number; size: number; kind: 'u32' | 'u64' | 'bytes' | 'u8'; what: string }
interface Layout { fields: Field[]; kvTypeFields: Field[]; tensorTypeFields: Field[]; tensorOffsetFields: Field[]; countFields: Field[]; end: number }

/**
 * An independent walk over a valid file recording every field (not the reader under test: its
 * boundaries must not come from the code they are meant to break). Long arrays record only their first
 * and last few elements.
 */
function layout(buf: Uint8Array): Layout {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const fields: Field[] = [], kvTypeFields: Field[] = [], tensorTypeFields: Field[] = [], tensorOffsetFields: Field[] = [], countFields: Field[] = [];
  let p = 0;
  const f = (size: number, kind: Field['kind'], what: string) => { const x = { off: p, size, kind, what }; fields.push(x); p += size; return x; };
  const u64 = (at: number) => Number(v.getBigUint64(at, true));
  const str = (what: string, record = true) => {
    const len = u64(p);
    if (record) { countFields.push(f(8, 'u64', `${what} length`)); f(len, 'bytes', what); } else p += 8 + len;
  };
  const SIZES = [1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8];
  const value = (type: number, what: string, record: boolean) => {
    if (type === GGUFType.STRING) return str(what, record);
    if (type === GGUFType.ARRAY) {
      const et = v.getUint32(p, true);
      if (record) f(4, 'u32', `${what} elem type`); else p += 4;
      const n = u64(p);
      if (record) countFields.push(f(8, 'u64', `${what} count`)); else p += 8;
      if (SIZES[et]) {
        // Fixed-size elements: record the first and last few boundaries.
        for (let i = 0; i < n; i++) {
          if (record && (i < 3 || i >= n - 2)) f(SIZES[et], et === GGUFType.BOOL ? 'u8' : 'bytes', `${what}[${i}]`); else p += SIZES[et];
        }
        return;
      }
      for (let i = 0; i < n; i++) value(et, `${what}[${i}]`, record && (i < 3 || i >= n - 2));
      return;
    }
    if (record) f(SIZES[type], type === GGUFType.BOOL ? 'u8' : 'bytes', what); else p += SIZES[type];
  };
  f(4, 'bytes', 'magic');
  f(4, 'u32', 'version');
  const nt = u64(p); countFields.push(f(8, 'u64', 'tensor count'));
  const nkv = u64(p); countFields.push(f(8, 'u64', 'kv count'));
  for (let i = 0; i < nkv; i++) {
    str(`key ${i}`);
    const type = v.getUint32(p, true);
    kvTypeFields.push(f(4, 'u32', `kv ${i} type`));
    value(type, `kv ${i} value`, true);
  }
  for (let i = 0; i < nt; i++) {
    str(`tensor ${i} name`);
    const nd = v.getUint32(p, true);
    f(4, 'u32', `tensor ${i} n_dims`);
    for (let d = 0; d < nd; d++) countFields.push(f(8, 'u64', `tensor ${i} dim ${d}`));
    tensorTypeFields.push(f(4, 'u32', `tensor ${i} type`));
    tensorOffsetFields.push(f(8, 'u64', `tensor ${i} offset`));
  }
  return { fields, kvTypeFields, tensorTypeFields, tensorOffsetFields, countFields, end: p };
}

/** What a successful parse must guarantee about the tensors it hands to the engine. */
function checkInvariants(f: GGUFFile, size: number) {
  const sorted = [...f.tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i];
    if (!(t.offset >= f.dataOffset && t.offset + t.size <= size && t.size > 0)) throw new Error(`invariant: ${t.name} outside the file`);
    if ((t.offset - f.dataOffset) % f.alignment) throw new Error(`invariant: ${t.name} misaligned`);
    if (i && sorted[i - 1].offset + sorted[i - 1].size > t.offset) throw new Error(`invariant: ${t.name} overlaps`);
    if (t.dims.length < 1 || t.dims.length > 4) throw new Error('invariant: dims');
  }
}

type Outcome = 'ok' | 'error';
interface Tally { cases: number; ok: number; errors: number; byClass: Record<string, number>; maxMemMB: number; slowestMs: number; slowest: string }
const tally: Tally = { cases: 0, ok: 0, errors: 0, byClass: {}, maxMemMB: 0, slowestMs: 0, slowest: '' };

/** Parses one mutated buffer; returns the outcome, throws (failing the test) on anything but GGUFError. */
function attempt(cls: string, buf: Uint8Array, label: string): { outcome: Outcome; message?: string } {
  tally.cases++;
  tally.byClass[cls] = (tally.byClass[cls] ?? 0) + 1;
  const t0 = performance.now();
  let res: { outcome: Outcome; message?: string };
  try {
    const f = parseGGUF(buf);
    checkInvariants(f, buf.byteLength);
    tally.ok++;
    res = { outcome: 'ok' };
  } catch (e) {
    if (!(e instanceof GGUFError)) {
      throw new Error(`${cls} ${label}: threw ${(e as Error)?.name}: ${(e as Error)?.message} instead of GGUFError`);
    }
    tally.errors++;
    res = { outcome: 'error', message: e.message };
  }
  const ms = performance.now() - t0;
  if (ms > tally.slowestMs) { tally.slowestMs = ms; tally.slowest = `${cls} ${label}`; }
  if (tally.cases % 64 === 0) {
    const m = process.memoryUsage();
    tally.maxMemMB = Math.max(tally.maxMemMB, (m.heapUsed + m.arrayBuffers) / 2 ** 20);
    if (tally.maxMemMB > 1500) throw new Error(`${cls} ${label}: memory use reached ${tally.maxMemMB.toFixed(0)} MB`);
  }
  return res;
}

/** Deterministic PRNG (mulberry32) so a failure can be replayed. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function patchU64(buf: Uint8Array, off: number, value: bigint) {
  const c = buf.slice();
  new DataView(c.buffer).setBigUint64(off, BigInt.asUintN(64, value), true);
  return c;
}
function patchU32(buf: Uint8Array, off: number, value: number) {
  const c = buf.slice();
  new DataView(c.buffer).setUint32(off, value >>> 0, true);
  return c;
}

const HUGE = [2n ** 63n, 2n ** 64n - 1n, 2n ** 32n, 2n ** 53n - 1n, 2n ** 31n, 0n];

describe.skipIf(!HAVE_SHARED)('GGUF reader fuzzing on real files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'forkcast-fuzz-'));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    console.log(`[gguf fuzz] ${tally.cases} cases: ${tally.ok} parsed, ${tally.errors} GGUFError, 0 other; by class ${JSON.stringify(tally.byClass)}; ` +
      `peak heap+arrayBuffers ${tally.maxMemMB.toFixed(0)} MB, slowest case ${tally.slowestMs.toFixed(1)} ms (${tally.slowest})`);
  });

  for (const [sub, name] of FILES) {
    const full = new Uint8Array(readFileSync(fixture(sub, name)));
    const L = layout(full);
    const base = parseGGUF(full);
    const dataEnd = base.tensors.reduce((m, t) => Math.max(m, t.offset + t.size), L.end);

    it(`${name}: truncation at every header field boundary and every tensor's data edges always fails`, () => {
      const cuts = new Set<number>([0, 1, 3, 7, L.end, L.end + 1, base.dataOffset, dataEnd - 1]);
      for (const fl of L.fields) for (const d of [-1, 0]) cuts.add(fl.off + d); // just before and at each field
      for (const t of base.tensors) for (const d of [0, 1, t.size >> 1, t.size - 1]) cuts.add(t.offset + d);
      for (const cut of cuts) {
        if (cut < 0 || cut >= full.length || cut >= dataEnd) continue;
        const r = attempt('truncate', full.subarray(0, cut), `${name} cut at ${cut}`);
        expect(r.outcome, `${name} truncated at ${cut} parsed`).toBe('error');
      }
    });

    it(`${name}: random byte flips never crash`, () => {
      const rand = rng(name.length * 7919 + full.length);
      for (let i = 0; i < 250; i++) {
        const c = full.slice();
        const nflip = 1 + Math.floor(rand() * 4);
        for (let k = 0; k < nflip; k++) {
          // Mostly inside the header (where structure lives), sometimes anywhere.
          const pos = rand() < 0.85 ? Math.floor(rand() * L.end) : Math.floor(rand() * c.length);
          c[pos] = rand() < 0.5 ? c[pos] ^ (1 << Math.floor(rand() * 8)) : Math.floor(rand() * 256);
        }
        attempt('flip', c, `${name} flip case ${i}`);
      }
    });

    it(`${name}: absurd counts, lengths and dims are refused without allocating them`, () => {
      for (const fl of L.countFields) {
        for (const h of HUGE) {
          const r = attempt('huge', patchU64(full, fl.off, h), `${name} ${fl.what} = ${h}`);
          if (h >= 2n ** 32n) expect(r.outcome, `${name} ${fl.what} = ${h}`).toBe('error');
        }
      }
    });

    if (base.tensors.length > 1) {
      it(`${name}: overlapping and out-of-file tensor data is refused, naming the tensor`, () => {
        const offs = L.tensorOffsetFields;
        for (let i = 0; i < offs.length; i++) {
          const rel = (k: number) => BigInt(base.tensors[k].offset - base.dataOffset);
          const j = (i + 1) % offs.length;
          const ov = attempt('overlap', patchU64(full, offs[i].off, rel(j)), `${name} tensor ${i} onto ${j}`);
          expect(ov.message).toMatch(new RegExp(`overlaps tensor|data .* lies outside`));
          const past = BigInt(full.length - base.dataOffset + base.alignment * 4 - ((full.length - base.dataOffset) % base.alignment));
          const out = attempt('out-of-file', patchU64(full, offs[i].off, past), `${name} tensor ${i} past the end`);
          expect(out.message).toContain(`tensor "${base.tensors[i].name}": data [`);
          const odd = attempt('misaligned', patchU64(full, offs[i].off, rel(i) + 1n), `${name} tensor ${i} offset + 1`);
          expect(odd.message).toMatch(/is not a multiple of the alignment|overlaps|outside/);
          const huge = attempt('out-of-file', patchU64(full, offs[i].off, 2n ** 62n), `${name} tensor ${i} offset 2^62`);
          expect(huge.outcome).toBe('error');
        }
      });
    }

    it(`${name}: unknown value types and tensor types are named`, () => {
      for (const fl of L.kvTypeFields) {
        for (const t of [13, 100, 0xffffffff]) {
          const r = attempt('kv-type', patchU32(full, fl.off, t), `${name} ${fl.what} = ${t}`);
          expect(r.message).toMatch(/metadata ".+": unknown value type/);
        }
        // Re-typing a value as another valid type misreads everything after it: must still be clean.
        for (const t of [GGUFType.UINT64, GGUFType.STRING, GGUFType.ARRAY, GGUFType.BOOL]) attempt('kv-retype', patchU32(full, fl.off, t), `${name} ${fl.what} = ${t}`);
      }
      L.tensorTypeFields.forEach((fl, i) => {
        for (const t of [3, 6, 9, 11, 15, 23, 28, 31, 39, 1000, 0xffffffff]) {
          const r = attempt('tensor-type', patchU32(full, fl.off, t), `${name} tensor ${i} type ${t}`);
          expect(r.message).toContain(`tensor "${base.tensors[i].name}" has ggml type ${t >>> 0}`);
        }
      });
      for (const fl of L.fields.filter((x) => x.kind === 'u8')) {
        const c = full.slice(); c[fl.off] = 2;
        expect(attempt('bool', c, `${name} ${fl.what} = 2`).message).toMatch(/bool byte is 2/);
      }
    });

    it(`${name}: general.alignment values (power of two or not)`, () => {
      // The converter's files carry no general.alignment: rewrite with one (64) and patch its value.
      const p = join(dir, `aligned-${name}`);
      writeGGUF(p, {
        metadata: [...base.metadata],
        tensors: base.tensors.map((t) => ({ name: t.name, dims: t.dims, type: t.type, data: base.tensorData(t) })),
        alignment: 64,
      });
      const aligned = new Uint8Array(readFileSync(p));
      const at = Buffer.from(aligned).indexOf(Buffer.from('general.alignment')) + 'general.alignment'.length + 4;
      expect(new DataView(aligned.buffer).getUint32(at, true)).toBe(64);
      expect(attempt('alignment', aligned, 'valid 64').outcome).toBe('ok');
      for (const a of [0, 3, 24, 48, 100, 0x80000001, 0xffffffff]) {
        expect(attempt('alignment', patchU32(aligned, at, a), `alignment ${a}`).message).toMatch(/"general.alignment" is \d+: must be a non-zero power of two/);
      }
      for (const a of [1, 8, 16, 32, 128, 4096, 0x80000000]) attempt('alignment', patchU32(aligned, at, a), `alignment ${a}`);
      // Alignment stored with a non-integer type.
      const retyped = patchU32(aligned, at - 4, GGUFType.FLOAT32);
      expect(attempt('alignment', retyped, 'alignment as f32').message).toMatch(/general.alignment/);
    });
  }

  it('ran a few thousand cases', () => {
    expect(tally.cases).toBeGreaterThan(3000);
  });
});
