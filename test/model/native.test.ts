// The addon's error, cancellation and ownership paths on a real model file: what a user notices as
// "the engine said what was wrong" instead of a crash, and "cancel stops the work".
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { specFromGGUF } from '../../engine/archTable';
import { openGGUF } from '../../engine/gguf';
import { makeModel } from '../../engine/makeModel';
import { loadModel } from '../../engine/model';
import { loadAddon, type ModelSpec } from '../../engine/native';
import { fixture, HAVE_SHARED } from '../shared';

const addon = loadAddon();

describe('mapFile', () => {
  test('maps a file read-only with its exact size', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-map-'));
    const p = join(dir, 'x.bin');
    writeFileSync(p, Buffer.from([1, 2, 3, 250]));
    const b = addon.mapFile(p);
    expect(b.size).toBe(4);
    expect([...new Uint8Array(b.read(0, b.size))]).toEqual([1, 2, 3, 250]);
  });
  test('empty, missing and non-regular files give errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fc-map-'));
    writeFileSync(join(dir, 'empty'), '');
    expect(() => addon.mapFile(join(dir, 'empty'))).toThrow(/empty/);
    expect(() => addon.mapFile(join(dir, 'nope'))).toThrow(/cannot open/);
    expect(() => addon.mapFile(dir)).toThrow(/not a readable regular file/);
  });
});

describe.skipIf(!HAVE_SHARED)('Model and Context on a real file', () => {
  const path = fixture('arch', 'qwen2-tiny.gguf');
  // A random model (the project's writer) big enough that a 500-token prompt takes far longer than
  // the JS calls that cancel or dispose it, so those land while the worker computes.
  let big: string | undefined;
  const bigModel = () => (big ??= makeModel({ arch: 'llama', layers: 6, embd: 256, heads: 4, kvHeads: 2, ff: 512, ctx: 512,
    type: 'F32', vocabFrom: fixture('arch', 'llama-tiny.gguf'), seed: 7, out: join(mkdtempSync(join(tmpdir(), 'fc-big-')), 'm.gguf') }).path);

  test('the native Model re-checks every tensor against the buffer (defence in depth)', () => {
    const { file, map } = openGGUF(path);
    const spec = specFromGGUF(file);
    const bad = (mut: (s: ModelSpec) => void) => {
      const s: ModelSpec = structuredClone(spec);
      mut(s);
      return () => new addon.Model(map, s);
    };
    expect(bad((s) => { s.layers[1].wq!.offset = map.size - 10; })).toThrow(/layers\[1\]\.wq data .* outside the file/);
    expect(bad((s) => { s.output = { ...s.output, type: 3 }; })).toThrow(/spec\.output has unsupported type 3/);
    expect(bad((s) => { s.layers[0].ffn_down.ne0 = 64; })).toThrow(/layers\[0\]\.ffn_down has shape \[64, 64\]/);
    expect(bad((s) => { delete (s.layers[0] as Partial<typeof s.layers[0]>).wo; })).toThrow(/layers\[0\]\.wo is missing/);
    expect(bad((s) => { s.n_head_kv = 3; })).toThrow(/multiple of n_head_kv/);
    expect(() => new addon.Model(map, spec).dispose()).not.toThrow();
  });

  test('the JS spec builder names a missing or misshapen tensor', () => {
    const { file } = openGGUF(path);
    const hide = (name: string) => ({ ...file, tensor: (n: string) => (n === name ? undefined : file.tensor(n)) });
    expect(() => specFromGGUF(hide('blk.1.attn_k.bias'))).toThrow(/blk\.1\.attn_k\.bias is missing/);
    expect(() => specFromGGUF(hide('blk.0.ffn_gate.weight'))).toThrow(/blk\.0\.ffn_gate\.weight is missing/);
    const reshaped = { ...file, tensor: (n: string) => {
      const t = file.tensor(n);
      return t && n === 'blk.0.attn_q.weight' ? { ...t, dims: [64, 48] } : t;
    } };
    expect(() => specFromGGUF(reshaped)).toThrow(/blk\.0\.attn_q\.weight has shape \[64, 48\], expected \[64, 64\]/);
    const other = { ...file, getString: (k: string, d?: string) => (k === 'general.architecture' ? 'mamba' : file.getString(k, d)) };
    expect(() => specFromGGUF(other)).toThrow(/unsupported architecture 'mamba'/);
  });

  test('cancel() stops a running step between layers with Error("cancelled"); the context stays usable', async () => {
    const model = loadModel(bigModel(), { threads: 2 });
    const ctx = model.createContext({ ctx: 512, maxSamples: 32, maxDecode: 8, threads: 2 });
    try {
      const prompt = Int32Array.from({ length: 500 }, (_, i) => (i * 37) % 500 + 1);
      let outcome = '';
      for (let attempt = 0; attempt < 10 && outcome !== 'cancelled'; attempt++) {
        const p = ctx.evalPrompt(prompt, 0);
        ctx.cancel(); // lands while the worker computes unless this thread was descheduled meanwhile
        outcome = await p.then(() => 'finished first', (e: Error) => e.message);
      }
      expect(outcome).toBe('cancelled');
      expect(ctx.promptLength).toBeLessThan(500); // it stopped before the end
      const want = await ctx.evalPrompt(prompt, 0); // and runs to the end when left alone
      expect(ctx.promptLength).toBe(500);
      // One decode step of 32 slots is short (milliseconds): if this busy machine runs the whole step
      // before the cancel() call lands, there was nothing left to cancel; try again (fresh samples).
      const slots = Int32Array.from({ length: 32 }, (_, i) => i);
      const toks = Int32Array.from(slots, (i) => (i === 1 ? 4 : 3 + i));
      outcome = '';
      for (let attempt = 0; attempt < 10 && outcome !== 'cancelled'; attempt++) {
        ctx.beginSamples(32, 'bifurcated');
        const d = ctx.decode(slots, toks);
        ctx.cancel();
        outcome = await d.then(() => 'finished first', (e: Error) => e.message);
      }
      expect(outcome).toBe('cancelled');
      // A cancelled step leaves no trace: the same step again equals a fresh evaluation.
      const step = await ctx.decode(slots, toks);
      const fresh = model.createContext({ ctx: 512, maxSamples: 1, maxDecode: 1, threads: 2 });
      const ref = await fresh.evalPrompt(Int32Array.from([...prompt, 4]), 0);
      fresh.dispose();
      const V = model.spec.n_vocab;
      let e = 0;
      for (let i = 0; i < V; i++) e = Math.max(e, Math.abs(step[V + i] - ref[i]));
      expect(e).toBeLessThan(1e-4);
      expect(want.every(Number.isFinite)).toBe(true);
    } finally {
      ctx.dispose();
      model.dispose();
    }
  });

  test('one job per context: a concurrent call rejects clearly; bad calls reject with the reason', async () => {
    const model = loadModel(path, { threads: 2 });
    const ctx = model.createContext({ ctx: 16, maxSamples: 2, maxDecode: 2, threads: 2 });
    try {
      const first = ctx.evalPrompt(Int32Array.from([1, 2, 3]), 0);
      await expect(ctx.evalPrompt(Int32Array.from([1]), 0)).rejects.toThrow(/another evalPrompt\/decode is still running/);
      expect(() => ctx.beginSamples(1, 'bifurcated')).toThrow(/still running/);
      await first;
      await expect(ctx.evalPrompt(Int32Array.from([1, 99999]), 0)).rejects.toThrow(/token id 99999 out of range/);
      await expect(ctx.evalPrompt(Int32Array.from(new Array(17).fill(1)), 0)).rejects.toThrow(/exceed the context of 16/);
      await expect(ctx.evalPrompt(Int32Array.from([1]), 5)).rejects.toThrow(/keep=5 but only 3/);
      await expect(ctx.decode(Int32Array.of(0), Int32Array.of(1))).rejects.toThrow(/no samples/);
      ctx.beginSamples(2, 'bifurcated');
      await expect(ctx.decode(Int32Array.of(1, 0), Int32Array.of(1, 1))).rejects.toThrow(/strictly increasing/);
      await ctx.decode(Int32Array.of(0), Int32Array.of(1));
      await ctx.decode(Int32Array.of(0), Int32Array.of(1));
      await expect(ctx.decode(Int32Array.of(0), Int32Array.of(1))).rejects.toThrow(/slot 0 is full/);
      expect(() => ctx.beginSamples(3, 'bifurcated')).toThrow(/outside \[1, 2\]/);
      expect(() => ctx.beginSamples(1, 'sideways' as 'bifurcated')).toThrow(/mode/);
    } finally {
      ctx.dispose();
      model.dispose();
    }
  });

  // Two contexts on one model, each fed `prompt` and given three bifurcated sample slots: one runs the
  // path under test, the other the reference. dispose() frees all three.
  async function twinContexts(prompt: Int32Array) {
    const model = loadModel(path, { threads: 2 });
    const [a, b] = [0, 1].map(() => model.createContext({ ctx: 32, maxSamples: 3, maxDecode: 4, threads: 2 }));
    const dispose = () => {
      a.dispose();
      b.dispose();
      model.dispose();
    };
    try {
      for (const c of [a, b]) {
        await c.evalPrompt(prompt, 0);
        c.beginSamples(3, 'bifurcated');
      }
    } catch (e) {
      dispose();
      throw e;
    }
    return { model, a, b, dispose };
  }

  test('decode and decodeSync write into a caller buffer when given one: same logits, a view of its head', async () => {
    const { model, a, b, dispose } = await twinContexts(Int32Array.from({ length: 9 }, (_, i) => 4 + 5 * i));
    try {
      const V = model.spec.n_vocab, out = new Float32Array(3 * V).fill(NaN);
      // three samples, then two (one left the batch): the view shrinks, the buffer stays
      for (const [slots, toks] of [[Int32Array.of(0, 1, 2), Int32Array.of(7, 8, 9)], [Int32Array.of(0, 2), Int32Array.of(3, 4)]]) {
        const fresh = await a.decode(slots, toks);
        const into = await b.decode(slots, toks, out);
        expect(into.buffer).toBe(out.buffer);
        expect(into.length).toBe(slots.length * V);
        expect(Array.from(into)).toEqual(Array.from(fresh));
      }
      const sync = b.decodeSync(Int32Array.of(1), Int32Array.of(5), out);
      expect(sync.buffer).toBe(out.buffer);
      expect(Array.from(sync)).toEqual(Array.from(a.decodeSync(Int32Array.of(1), Int32Array.of(5))));
      expect(() => b.decodeSync(Int32Array.of(0, 1), Int32Array.of(1, 1), new Float32Array(V))).toThrow(/out holds/);
      await expect(b.decode(Int32Array.of(0, 1), Int32Array.of(1, 1), new Float32Array(V))).rejects.toThrow(/out holds/);
    } finally {
      dispose();
    }
  });

  test('decodeSync is the same step as decode on the calling thread: same logits, same KV, errors thrown', async () => {
    const prompt = Int32Array.from({ length: 9 }, (_, i) => 5 + 3 * i);
    const { model, a, b, dispose } = await twinContexts(prompt);
    try {
      const slots = Int32Array.of(0, 2), V = model.spec.n_vocab;
      for (const toks of [Int32Array.of(7, 11), Int32Array.of(13, 2), Int32Array.of(40, 41)]) {
        const async = await a.decode(slots, toks);
        const sync = b.decodeSync(slots, toks); // each step attends to the KV the previous steps wrote
        expect(sync.length).toBe(2 * V);
        expect(sync.every(Number.isFinite)).toBe(true);
        expect(Buffer.from(sync.buffer).equals(Buffer.from(async.buffer))).toBe(true);
      }
      expect(b.kvBytes()).toBe(a.kvBytes());
      expect(() => b.decodeSync(Int32Array.of(2, 0), Int32Array.of(1, 1))).toThrow(/strictly increasing/);
      expect(() => b.decodeSync(Int32Array.of(0), Int32Array.of(1, 2))).toThrow(/differ in length/);
      const busy = b.evalPrompt(prompt, 0);
      expect(() => b.decodeSync(slots, Int32Array.of(1, 1))).toThrow(/still running/);
      await busy;
      b.dispose();
      expect(() => b.decodeSync(slots, Int32Array.of(1, 1))).toThrow(/disposed/);
    } finally {
      dispose();
    }
  });

  test('Context.rowStats spreads the rows over its threads: the same numbers as addon.rowStats, busy or not', async () => {
    const model = loadModel(path, { threads: 2 });
    const ctx = model.createContext({ ctx: 32, maxSamples: 5, maxDecode: 4, threads: 2 });
    try {
      await ctx.evalPrompt(Int32Array.from({ length: 9 }, (_, i) => 5 + 3 * i), 0);
      ctx.beginSamples(5, 'bifurcated');
      const V = model.spec.n_vocab;
      const logits = await ctx.decode(Int32Array.of(0, 1, 2, 3, 4), Int32Array.of(7, 11, 13, 17, 19));
      const want = addon.rowStats(logits, V, 40);
      expect(want.length).toBe(5 * 43);
      expect([...ctx.rowStats(logits, V, 40)]).toEqual([...want]);
      const busy = ctx.evalPrompt(Int32Array.of(3, 4, 5), 0); // the threads are taken: computed on this one
      expect([...ctx.rowStats(logits, V, 40)]).toEqual([...want]);
      await busy;
      expect(() => ctx.rowStats(logits.subarray(1), V, 40)).toThrow(/not a whole number of rows/);
    } finally {
      ctx.dispose();
      model.dispose();
    }
  });

  test('kvBytes: one prompt KV plus what each sample generated (bifurcated) vs n private prompt copies (replicated)', async () => {
    const model = loadModel(path, { threads: 2 });
    const { n_layer, n_head_kv, head_dim } = model.spec;
    const perPos = n_layer * 2 * n_head_kv * head_dim * 4;
    const ctx = model.createContext({ ctx: 64, maxSamples: 8, maxDecode: 4, threads: 2 });
    const all = Int32Array.from({ length: 8 }, (_, i) => i);
    try {
      await ctx.evalPrompt(Int32Array.from({ length: 40 }, (_, i) => i + 1), 0);
      expect(ctx.promptLength).toBe(40);
      expect(ctx.kvBytes()).toBe(perPos * 40);
      ctx.beginSamples(8, 'bifurcated');
      expect(ctx.kvBytes()).toBe(perPos * 40);
      await ctx.decode(all, all);
      await ctx.decode(Int32Array.of(0, 5), Int32Array.of(1, 2)); // two samples go on
      expect(ctx.kvBytes()).toBe(perPos * (40 + 8 + 2));
      ctx.beginSamples(8, 'replicated');
      expect(ctx.kvBytes()).toBe(perPos * (40 + 8 * 40));
      await ctx.decode(all, all);
      expect(ctx.kvBytes()).toBe(perPos * (40 + 8 * 41));
    } finally {
      ctx.dispose();
      model.dispose();
    }
  });

  test('disposing a context while it computes, and the model before its contexts, is safe', async () => {
    const model = loadModel(bigModel(), { threads: 2 });
    const ctx = model.createContext({ ctx: 512, maxSamples: 1, maxDecode: 1, threads: 2 });
    const other = model.createContext({ ctx: 64, maxSamples: 1, maxDecode: 1, threads: 2 });
    const p = ctx.evalPrompt(Int32Array.from({ length: 500 }, (_, i) => i + 1), 0);
    ctx.dispose();
    // Normally the job is told to stop and rejects; if it had already finished, it resolves. Either
    // way nothing crashes and the caches are freed once the job is over.
    expect(['cancelled', 'finished first']).toContain(await p.then(() => 'finished first', (e: Error) => e.message));
    await expect(ctx.evalPrompt(Int32Array.from([1]), 0)).rejects.toThrow(/disposed/);
    model.dispose(); // `other` keeps the weights alive until it is disposed
    const l = await other.evalPrompt(Int32Array.from([1, 2, 3]), 0);
    expect(l.every(Number.isFinite)).toBe(true);
    other.dispose();
    expect(() => model.createContext()).toThrow(/disposed/);
  });

  test('a GGUF that is not a model gives a clear error', () => {
    expect(() => specFromGGUF(openGGUF(fixture('vocab', 'ggml-vocab-gpt-2.gguf')).file))
      .toThrow(/unsupported architecture|embedding_length|missing/);
  });
});
