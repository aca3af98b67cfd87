// Real GGUF files made by llama.cpp's converter run exactly right: per architecture, last-prompt
// logits against Hugging Face transformers' float32 reference, the 16 greedy ids, and the decode
// path (bifurcated and replicated slots) against single-sequence evaluation of the same tokens.
//
// Tolerance 1e-4 absolute on logits: both sides compute in float32 from the same weights (the f16
// fixture's reference used the f16-rounded weights), logits are at most ~5, and float32 summation
// order alone moves them by a few 1e-6 over two layers; 1e-4 leaves room for that while a wrong rope
// layout, missing bias or wrong norm is off by 1e-1 or more. Greedy ids must be exact: every greedy
// margin in the references is at least 0.0129.
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { loadModel, type Model } from '../../engine/model';
import type { AttentionMode, NativeContext } from '../../engine/native';
import { fixture, HAVE_SHARED } from '../shared';

interface Ref {
  prompt_ids: number[];
  last_prompt_logits: number[];
  greedy_ids: number[];
  greedy_top5: Array<Array<[number, number]>>;
}

const ARCH_FIXTURES = ['llama-tiny', 'llama-tiny-f16', 'qwen2-tiny', 'starcoder2-tiny', 'gpt_bigcode-tiny'];

const argmax = (a: ArrayLike<number>) => {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
};
const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let e = 0;
  for (let i = 0; i < a.length; i++) e = Math.max(e, Math.abs(a[i] - b[i]));
  return e;
};

/** Logits after feeding `ids` to a fresh single-sequence context (prompt path only). */
async function promptLogits(model: Model, ids: number[]): Promise<Float32Array> {
  const ctx = model.createContext({ ctx: 64, maxSamples: 1, maxDecode: 1, threads: 2 });
  try {
    return await ctx.evalPrompt(Int32Array.from(ids), 0);
  } finally {
    ctx.dispose();
  }
}

/** Greedy continuation through evalPrompt + decode of one slot; returns the ids and each step's logits. */
async function greedy(ctx: NativeContext, prompt: number[], steps: number, mode: AttentionMode) {
  let logits = await ctx.evalPrompt(Int32Array.from(prompt), 0);
  ctx.beginSamples(1, mode);
  const ids: number[] = [], all: Float32Array[] = [];
  for (let i = 0; i < steps; i++) {
    all.push(logits);
    ids.push(argmax(logits));
    if (i + 1 < steps) logits = await ctx.decode(Int32Array.of(0), Int32Array.of(ids[i]));
  }
  return { ids, logits: all };
}

describe.skipIf(!HAVE_SHARED)('architectures vs Hugging Face float32 references', () => {
  const summary: Record<string, string> = {};
  for (const name of ARCH_FIXTURES) {
    describe(name, () => {
      const path = fixture('arch', `${name}.gguf`);
      const ref: Ref = HAVE_SHARED ? JSON.parse(readFileSync(fixture('arch', `${name}.ref.json`), 'utf8')) : ({} as Ref);

      test('last-position logits within 1e-4 and 16 greedy ids exact (both attention modes)', async () => {
        const model = loadModel(path, { threads: 2 });
        const ctx = model.createContext({ ctx: 64, maxSamples: 1, maxDecode: 32, threads: 2 });
        try {
          const last = await ctx.evalPrompt(Int32Array.from(ref.prompt_ids), 0);
          expect(last.length).toBe(ref.last_prompt_logits.length);
          const err = maxAbsDiff(last, ref.last_prompt_logits);
          for (const mode of ['bifurcated', 'replicated'] as AttentionMode[]) {
            const g = await greedy(ctx, ref.prompt_ids, 16, mode);
            expect(g.ids, `${mode} greedy ids`).toEqual(ref.greedy_ids);
            // The reference's top-5 logits at every greedy step, too.
            let stepErr = 0;
            g.logits.forEach((l, i) => ref.greedy_top5[i].forEach(([id, v]) => { stepErr = Math.max(stepErr, Math.abs(l[id] - v)); }));
            expect(stepErr, `${mode} top-5 logits along the greedy path`).toBeLessThan(1e-4);
            summary[name] = `last logits max abs err ${err.toExponential(2)}, greedy-path top5 err ${stepErr.toExponential(2)}`;
          }
          console.log(`[arch] ${name}: ${summary[name]}, greedy 16/16 exact`);
          expect(err).toBeLessThan(1e-4);
        } finally {
          ctx.dispose();
          model.dispose();
        }
      });

      test('n=4 decode slots (bifurcated and replicated) match single-sequence evaluation, also after a slot leaves', async () => {
        const model = loadModel(path, { threads: 2 });
        const ctx = model.createContext({ ctx: 64, maxSamples: 4, maxDecode: 16, threads: 2 });
        try {
          const V = model.spec.n_vocab;
          for (const mode of ['bifurcated', 'replicated'] as AttentionMode[]) {
            await ctx.evalPrompt(Int32Array.from(ref.prompt_ids), 0);
            ctx.beginSamples(4, mode);
            // Slots 0 and 1 follow the greedy path; slots 2 and 3 their own token streams.
            const streams = [ref.greedy_ids, ref.greedy_ids, [...ref.greedy_ids].reverse(), ref.greedy_ids.map((t, i) => (t * 7 + i) % V)];
            let worst = 0;
            for (let step = 0; step < 6; step++) {
              const live = step >= 3 ? [0, 2, 3] : [0, 1, 2, 3]; // slot 1 leaves the batch after 3 steps
              const logits = await ctx.decode(Int32Array.from(live), Int32Array.from(live, (s) => streams[s][step]));
              for (let r = 0; r < live.length; r++) {
                const s = live[r];
                const want = await promptLogits(model, [...ref.prompt_ids, ...streams[s].slice(0, step + 1)]);
                worst = Math.max(worst, maxAbsDiff(logits.subarray(r * V, (r + 1) * V), want));
              }
            }
            console.log(`[arch] ${name} ${mode} n=4 vs single sequence: max abs diff ${worst.toExponential(2)}`);
            expect(worst).toBeLessThan(1e-5);
          }
        } finally {
          ctx.dispose();
          model.dispose();
        }
      });
    });
  }
});

describe.skipIf(!HAVE_SHARED)('every kernel path gives the same model outputs', () => {
  // The addon reads FORKCAST_SIMD / FORKCAST_NO_SIMD at each call (matmul and attention kernels alike).
  const paths = [{ name: 'avx2', env: { FORKCAST_SIMD: 'avx2' } }, { name: 'scalar', env: { FORKCAST_NO_SIMD: '1' } }];
  for (const p of paths)
    test(`${p.name} kernels: last logits within 1e-4 and greedy ids exact for every fixture`, async () => {
      Object.assign(process.env, p.env);
      try {
        for (const name of ARCH_FIXTURES) {
          const ref: Ref = JSON.parse(readFileSync(fixture('arch', `${name}.ref.json`), 'utf8'));
          const model = loadModel(fixture('arch', `${name}.gguf`), { threads: 2 });
          const ctx = model.createContext({ ctx: 64, maxSamples: 1, maxDecode: 32, threads: 2 });
          try {
            const g = await greedy(ctx, ref.prompt_ids, 16, 'bifurcated');
            const err = maxAbsDiff(g.logits[0], ref.last_prompt_logits);
            console.log(`[arch] ${name} with ${p.name} kernels: last logits max abs err ${err.toExponential(2)}`);
            expect(err).toBeLessThan(1e-4);
            expect(g.ids).toEqual(ref.greedy_ids);
          } finally {
            ctx.dispose();
            model.dispose();
          }
        }
      } finally {
        for (const k of Object.keys(p.env)) delete process.env[k];
      }
    });
});

describe.skipIf(!HAVE_SHARED)('real models from llama.cpp', () => {
  // ../shared/README.md: greedy ids from BOS by an independent float32 reference (BOS included).
  const TINYSTORIES = '1 147 201 282 215 286 598 1662 356 499 826 1363 1145 1652 615 242 1482 951 628 499 826 872 921 318 385 628 499 826 617 242 198 1047 425'
    .split(' ').map(Number);

  test('TinyStories 656K Q8_0: greedy from BOS gives the reference ids (first 24 exact)', async () => {
    const model = loadModel(fixture('models', 'tinystories-656k-q8_0.gguf'), { threads: 2 });
    const ctx = model.createContext({ ctx: 64, maxSamples: 1, maxDecode: 64, threads: 2 });
    try {
      expect(model.info.architecture).toBe('llama');
      expect(model.info.tensor_types).toEqual({ Q8_0: 15, F32: 5 });
      const g = await greedy(ctx, [1], TINYSTORIES.length - 1, 'bifurcated');
      const ids = [1, ...g.ids];
      let same = 0;
      while (same < ids.length && ids[same] === TINYSTORIES[same]) same++;
      console.log(`[arch] TinyStories: ${same}/${TINYSTORIES.length} ids match the reference; text: ${JSON.stringify(model.tokenizer.decode(ids))}`);
      expect(ids.slice(0, 24)).toEqual(TINYSTORIES.slice(0, 24));
    } finally {
      ctx.dispose();
      model.dispose();
    }
  });

  test('llama-2-tiny-random-f16 (F16 weights, 32000-token vocab) loads and runs', async () => {
    const path = fixture('models', 'llama-2-tiny-random-f16.gguf');
    expect(existsSync(path)).toBe(true);
    const model = loadModel(path, { threads: 2 });
    const ctx = model.createContext({ ctx: 32, maxSamples: 2, maxDecode: 8, threads: 2 });
    try {
      expect(model.spec.n_vocab).toBe(32000);
      expect(model.info.tensor_types.F16).toBeGreaterThan(0);
      const prompt = [1, ...model.tokenizer.encode('Hello world')];
      const last = await ctx.evalPrompt(Int32Array.from(prompt), 0);
      expect(last.length).toBe(32000);
      expect(last.every(Number.isFinite)).toBe(true);
      // Prompt path and decode path agree on the next position.
      ctx.beginSamples(2, 'bifurcated');
      const next = argmax(last);
      const step = await ctx.decode(Int32Array.of(0, 1), Int32Array.of(next, next));
      const want = await promptLogits(model, [...prompt, next]);
      expect(maxAbsDiff(step.subarray(0, 32000), want)).toBeLessThan(1e-5);
      expect(maxAbsDiff(step.subarray(32000), want)).toBeLessThan(1e-5);
    } finally {
      ctx.dispose();
      model.dispose();
    }
  });
});
