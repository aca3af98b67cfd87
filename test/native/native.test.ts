// The native file mapping (MappedFile) and models past 4 GiB: what a user with a 7B Q4_K_M download
// (~4.1 GB) notices is whether the model opens at all, computes the same as a small file would, and
// does not sit in the JS heap. A sparse file stands in for a real 7B download: a real model's header
// and tensor data, with the data moved past the 4 GiB mark and a hole before it (reads as zeros,
// takes no disk).
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { specFromGGUF } from '../../engine/archTable';
import { openGGUF, parseGGUF } from '../../engine/gguf';
import { loadModel } from '../../engine/model';
import { loadAddon } from '../../engine/native';
import { fixture, HAVE_SHARED } from '../shared';

const addon = loadAddon();
const dir = mkdtempSync(join(tmpdir(), 'fc-mapped-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('MappedFile', () => {
  test('read copies exactly the asked range and refuses ranges outside the file', () => {
    const p = join(dir, 'r.bin');
    const data = Uint8Array.from({ length: 1000 }, () => Math.floor(Math.random() * 256));
    writeFileSync(p, data);
    const m = addon.mapFile(p);
    expect(m.size).toBe(1000);
    const a = new Uint8Array(m.read(123, 456));
    expect(Buffer.compare(a, data.subarray(123, 579))).toBe(0);
    a[0] ^= 0xff; // a copy: writing it changes neither the mapping nor the file
    expect(new Uint8Array(m.read(123, 1))[0]).toBe(data[123]);
    expect(m.read(1000, 0).byteLength).toBe(0);
    expect(() => m.read(999, 2)).toThrow(/\[999, \+2\) lie outside the file \(1000 bytes\)/);
    expect(() => m.read(-1, 1)).toThrow(/offset must be an integer/);
    expect(() => m.read(2 ** 53 + 2, 1)).toThrow(/offset must be an integer/);
    m.close();
    expect(() => m.read(0, 1)).toThrow(/closed/);
    expect(m.size).toBe(1000);
  });

  test.skipIf(!HAVE_SHARED)('a Model takes only a MappedFile, not a closed one, and keeps its mapping after close()', async () => {
    const { file, map } = openGGUF(fixture('arch', 'llama-tiny.gguf'));
    const spec = specFromGGUF(file);
    expect(() => new addon.Model(new ArrayBuffer(16) as never, spec)).toThrow(/file must come from mapFile/);
    const model = new addon.Model(map, spec);
    map.close(); // the model still owns the mapping: the forward pass below reads it
    expect(() => new addon.Model(map, spec)).toThrow(/mapped file was closed/);
    const ctx = new addon.Context(model, { ctx: 16, maxSamples: 1, maxDecode: 4, threads: 1 });
    const logits = await ctx.evalPrompt(Int32Array.from([1, 2, 3]), 0);
    expect(logits).toHaveLength(spec.n_vocab);
    expect(logits.every(Number.isFinite)).toBe(true);
    ctx.dispose();
    model.dispose();
  });
});

/** Byte position of tensor `name`'s u64 data-offset field in a GGUF header (tensor infos follow the metadata). */
function offsetField(head: Uint8Array, name: string, nDims: number): number {
  const enc = Buffer.alloc(8 + Buffer.byteLength(name));
  enc.writeBigUInt64LE(BigInt(Buffer.byteLength(name)));
  enc.write(name, 8);
  const at = Buffer.from(head.buffer, head.byteOffset, head.byteLength).lastIndexOf(enc);
  expect(at).toBeGreaterThan(0);
  return at + enc.length + 4 + 8 * nDims + 4; // name, n_dims, dims, type, then the offset
}

describe.skipIf(!HAVE_SHARED)('a model file larger than 4 GiB', () => {
  const src = fixture('arch', 'llama-tiny.gguf');
  const SHIFT = 2 ** 32 + 2 ** 20; // a multiple of every allowed alignment

  let bigPath: string | undefined;
  const bigFile = () => (bigPath ??= makeBig());

  /** The fixture with every tensor's data moved SHIFT bytes further, after a sparse hole. */
  function makeBig(): string {
    const bytes = new Uint8Array(readFileSync(src));
    const f = parseGGUF(bytes);
    const head = bytes.slice(0, f.dataOffset);
    const dv = new DataView(head.buffer);
    for (const t of f.tensors) {
      const at = offsetField(head, t.name, t.dims.length);
      expect(Number(dv.getBigUint64(at, true))).toBe(t.offset - f.dataOffset);
      dv.setBigUint64(at, BigInt(t.offset - f.dataOffset + SHIFT), true);
    }
    const out = join(dir, 'big.gguf');
    const fd = openSync(out, 'w');
    try {
      writeSync(fd, head, 0, head.length, 0);
      writeSync(fd, bytes, f.dataOffset, bytes.length - f.dataOffset, f.dataOffset + SHIFT);
    } finally {
      closeSync(fd);
    }
    return out;
  }

  test('opens, computes the same logits as the small file, and never holds the file in an ArrayBuffer', async () => {
    const big = bigFile();
    const st = statSync(big);
    expect(st.size).toBe(statSync(src).size + SHIFT);
    expect(st.blocks * 512).toBeLessThan(64 * 2 ** 20); // sparse: the hole takes no disk

    const ids = Int32Array.from([1, 15, 7, 300, 42, 2]);
    const run = async (path: string) => {
      const model = loadModel(path, { threads: 1, ctx: 32 });
      const ctx = model.createContext();
      try {
        return { model, logits: await ctx.evalPrompt(ids, 0) };
      } finally {
        ctx.dispose();
      }
    };
    const small = await run(src);
    small.model.dispose();

    const before = process.memoryUsage().arrayBuffers;
    const { model, logits } = await run(big);
    const grown = process.memoryUsage().arrayBuffers - before;
    console.log(`[>4 GiB] file ${(st.size / 2 ** 30).toFixed(2)} GiB, ${(st.blocks * 512 / 2 ** 20).toFixed(1)} MiB on disk; ` +
      `JS ArrayBuffers grew by ${(grown / 2 ** 20).toFixed(1)} MiB while opening it and running a prompt`);
    try {
      expect(Math.min(...model.file.tensors.map((t) => t.offset))).toBeGreaterThan(2 ** 32);
      expect(grown).toBeLessThan(64 * 2 ** 20);
      expect(logits).toHaveLength(small.logits.length);
      // Same bytes, same kernels, one thread: the same numbers, read from past 4 GiB.
      let maxDiff = 0;
      for (let i = 0; i < logits.length; i++) maxDiff = Math.max(maxDiff, Math.abs(logits[i] - small.logits[i]));
      console.log(`[>4 GiB] max |logit difference| vs the same model in a small file: ${maxDiff}`);
      expect(maxDiff).toBe(0);
      expect(new Set(small.logits).size).toBeGreaterThan(10); // real logits, not a constant
    } finally {
      model.dispose();
    }
  });

  test('the native Model checks tensor ranges against the real (over 2^32) size', () => {
    const { file, map } = openGGUF(bigFile());
    try {
      const spec = specFromGGUF(file);
      const out = structuredClone(spec);
      out.layers[0].wq!.offset = map.size - 8; // inside the file only if the size were cut to 32 bits
      expect(() => new addon.Model(map, out)).toThrow(new RegExp(`layers\\[0\\]\\.wq data .* outside the file \\(${map.size} bytes\\)`));
      expect(map.size).toBeGreaterThan(2 ** 32);
      expect(() => new addon.Model(map, spec).dispose()).not.toThrow();
    } finally {
      map.close();
    }
  });
});
