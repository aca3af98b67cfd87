// End to end through the real native engine: a small random-weight llama model (2 layers, GQA)
// written by make-model with the real DeepSeek-Coder vocabulary, so prompts use its FIM template.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CancelledError, ModelSession, complete, generate, type CompletionModel } from '../../engine/complete';
import { makeModel } from '../../engine/makeModel';
import { loadModel, type Model } from '../../engine/model';
import type { NativeContext } from '../../engine/native';
import { buildPrompt } from '../../engine/prompt';
import type { CompleteParams } from '../../engine/protocol';
import { HAVE_SHARED, fixture } from '../shared';

const dir = mkdtempSync(join(tmpdir(), 'forkcast-complete-'));
const never = { isCancellationRequested: false };
let model: Model;
let f32Model: Model;
let path: string;

const PREFIX = 'import os\n\ndef read_lines(path):\n    with open(path) as f:\n        ';
const SUFFIX = '\n\nif __name__ == "__main__":\n    print(read_lines("x"))\n';

beforeAll(() => {
  if (!HAVE_SHARED) return;
  path = join(dir, 'tiny-llama.gguf');
  makeModel({
    arch: 'llama', layers: 2, embd: 128, heads: 4, kvHeads: 2, ff: 256, ctx: 1024, type: 'Q8_0',
    vocabFrom: fixture('vocab', 'ggml-vocab-deepseek-coder.gguf'), seed: 7, out: path,
  });
  model = loadModel(path, { ctx: 512, threads: 2 });
  makeModel({
    arch: 'llama', layers: 2, embd: 128, heads: 4, kvHeads: 2, ff: 256, ctx: 1024, type: 'F32',
    vocabFrom: fixture('vocab', 'ggml-vocab-deepseek-coder.gguf'), seed: 7, out: join(dir, 'tiny-llama-f32.gguf'),
  });
  f32Model = loadModel(join(dir, 'tiny-llama-f32.gguf'), { ctx: 512, threads: 2 });
});
afterAll(() => { model?.dispose(); f32Model?.dispose(); rmSync(dir, { recursive: true, force: true }); });

const run = (s: ModelSession, p: Partial<CompleteParams>) => complete(s, { prefix: PREFIX, suffix: SUFFIX, maxTokens: 12, ...p }, never);
const key = (r: Awaited<ReturnType<typeof complete>>) => r.candidates.map((c) => `${c.count}:${c.text}`);

describe.skipIf(!HAVE_SHARED)('complete on a real model file', () => {
  // On the F32 model: with Q8_0 weights the batched (n=16, AMX tiles) and single-row kernels round
  // activations identically but sum in another order, and this random-weight model has greedy
  // near-ties that such ulp-level differences flip; that is kernel rounding, not the sampling loop
  // this test is about (kernel agreement is proven in test/native/matmul.test.ts).
  it('temperature 0 with n=16 gives one merged candidate equal to greedy generate', async () => {
    const s = new ModelSession(f32Model);
    const r = await run(s, { n: 16, temperature: 0, maxTokens: 16 });
    expect(r.candidates).toHaveLength(1);
    expect(r.candidates[0].count).toBe(16);
    expect(r.timings.generated_tokens).toBeGreaterThanOrEqual(16);

    const prompt = buildPrompt(f32Model.tokenizer, s.template, PREFIX, SUFFIX, 512 - 8);
    const g = await generate(new ModelSession(f32Model), prompt.ids, { maxTokens: 16, temperature: 0 }, never);
    console.log(`greedy: ${JSON.stringify(g.text)}`);
    expect(r.tokens).toEqual(g.ids.filter((id) => !prompt.stopIds.has(id)).slice(0, r.tokens.length));
    expect(r.text).toBe(g.text);
    s.dispose();
  });

  it('same seed gives the same candidates, another seed other ones', async () => {
    const s = new ModelSession(model);
    const a = await run(s, { n: 8, seed: 11, temperature: 0.9 });
    const b = await run(s, { n: 8, seed: 11, temperature: 0.9 });
    const c = await run(s, { n: 8, seed: 12, temperature: 0.9 });
    expect(key(b)).toEqual(key(a));
    expect(key(c)).not.toEqual(key(a));
    expect(a.candidates.reduce((x, y) => x + y.count, 0)).toBe(8);
    s.dispose();
  });

  it('sample i does not depend on n (its own stream): n=4 samples are among the n=8 ones', async () => {
    const s = new ModelSession(model);
    const a = await run(s, { n: 4, seed: 5, temperature: 1, topK: 0, topP: 1, minP: 0 });
    const b = await run(s, { n: 8, seed: 5, temperature: 1, topK: 0, topP: 1, minP: 0 });
    const bTexts = new Set(b.candidates.map((c) => c.text));
    for (const c of a.candidates) expect(bTexts.has(c.text)).toBe(true);
    s.dispose();
  });

  // Bifurcated and replicated attention compute the same logits up to float32 rounding (~5e-6
  // here). With F32 weights that never changes a draw. With Q8_0 weights the matmuls quantize
  // activations to int8 (as llama.cpp does), and a rounding-level change occasionally moves an
  // activation across a quantization step, changing logits by ~1e-2: a few samples then differ.
  for (const type of ['F32', 'Q8_0'] as const) {
    it(`bifurcated and replicated attention give the same candidates (${type} weights)`, async () => {
      const s = new ModelSession(type === 'F32' ? f32Model : model);
      let same = 0, sampleDiffs = 0, maxLpDiff = 0;
      const seeds = [1, 2, 3, 4, 5, 6, 7, 8];
      for (const seed of seeds) {
        const a = await run(s, { n: 16, seed, temperature: 0.8, attention: 'bifurcated', maxTokens: 16 });
        const b = await run(s, { n: 16, seed, temperature: 0.8, attention: 'replicated', maxTokens: 16 });
        if (JSON.stringify(key(a).sort()) === JSON.stringify(key(b).sort())) same++;
        const ta = a.candidates.flatMap((c) => Array(c.count).fill(c.text)).sort();
        const tb = b.candidates.flatMap((c) => Array(c.count).fill(c.text)).sort();
        sampleDiffs += ta.filter((t, i) => t !== tb[i]).length;
        for (const c of a.candidates) {
          const d = b.candidates.find((x) => x.text === c.text);
          if (d) maxLpDiff = Math.max(maxLpDiff, Math.abs(d.logprob - c.logprob));
        }
      }
      console.log(`${type}: bifurcated vs replicated: identical candidate lists for ${same}/${seeds.length} seeds, ` +
        `${sampleDiffs}/${seeds.length * 16} samples differ, max mean-logprob difference ${maxLpDiff.toExponential(2)}`);
      if (type === 'F32') {
        expect(same).toBe(seeds.length);
        expect(maxLpDiff).toBeLessThan(1e-4);
      } else {
        expect(sampleDiffs).toBeLessThanOrEqual(seeds.length * 16 / 4);
        expect(maxLpDiff).toBeLessThan(0.05);
      }
      s.dispose();
    });
  }

  it('reuses the previous prompt KV when the new prompt extends it, with the same result as from scratch', async () => {
    const s = new ModelSession(model);
    await run(s, { n: 4, seed: 3 });
    const typed = { prefix: PREFIX + 'lines = f.read', n: 4, seed: 3 };
    const warm = await run(s, typed);
    const cold = await run(new ModelSession(model), typed);
    console.log(`prompt ${warm.timings.prompt_tokens} tokens, ${warm.timings.reused_tokens} reused`);
    expect(cold.timings.reused_tokens).toBe(0);
    expect(warm.timings.reused_tokens).toBeGreaterThan(PREFIX.length / 8);
    expect(warm.timings.reused_tokens).toBeLessThan(warm.timings.prompt_tokens);
    expect(key(warm)).toEqual(key(cold));
    // The same prompt again: everything but the last token is reused.
    const again = await run(s, typed);
    expect(again.timings.reused_tokens).toBe(again.timings.prompt_tokens - 1);
    expect(key(again)).toEqual(key(cold));
    s.dispose();
  });

  it('keeps reusing the prompt KV while typing in a file longer than the context budget', async () => {
    const s = new ModelSession(model);
    let prefix = Array.from({ length: 80 }, (_, i) => `v${i} = f(${i})\n`).join('');
    const reused: number[] = [];
    for (const ch of 'total = v1 + v2') {
      prefix += ch;
      const r = await complete(s, { prefix, suffix: SUFFIX, n: 2, maxTokens: 2, contextTokens: 200 }, never);
      reused.push(r.timings.prompt_tokens - r.timings.reused_tokens);
    }
    console.log(`tokens evaluated per keystroke (prompt ~200): ${reused.join(' ')}`);
    // After the first request only the changed tail (last prefix tokens + the suffix) is evaluated.
    for (const n of reused.slice(1)) expect(n).toBeLessThan(40);
    s.dispose();
  });

  it('stops each sample on its own: max tokens, single line, stop sequences; text matches its tokens', async () => {
    const s = new ModelSession(model);
    const r = await run(s, { n: 16, seed: 9, temperature: 1.2, maxTokens: 10, topK: 0, topP: 1, minP: 0 });
    expect(r.candidates.reduce((a, c) => a + c.count, 0)).toBe(16);
    for (const c of r.candidates) expect(c.tokens).toBeLessThanOrEqual(10);
    // Incremental UTF-8 decoding gives the same text as decoding all ids at once.
    const best = r.candidates[0];
    if (best.finish === 'length' && !best.reasons.includes('trailing partial line dropped')) {
      const bytes = r.tokens.map((id) => model.tokenizer.tokenBytes(id));
      expect(r.text).toBe(new TextDecoder().decode(Buffer.concat(bytes)));
    }

    const single = await run(s, { n: 16, seed: 9, temperature: 1.2, maxTokens: 24, singleLine: true });
    for (const c of single.candidates) expect(c.text).not.toContain('\n');

    const g = await run(s, { n: 1, temperature: 0, maxTokens: 12 });
    const stop = g.text.slice(4, 7);
    if (stop.length === 3 && stop.trim()) {
      const cut = await run(s, { n: 1, temperature: 0, maxTokens: 12, stop: [stop] });
      expect(cut.text).toBe(g.text.slice(0, g.text.indexOf(stop)));
      expect(cut.candidates[0].finish).toBe('stop');
    }
    s.dispose();
  });

  it('cancellation stops the whole batch within one decode step and the context stays usable', async () => {
    // A spy around the real context counts decode steps.
    let decodes = 0;
    const spy: CompletionModel = {
      info: model.info, tokenizer: model.tokenizer, ctx: model.ctx,
      createContext: (o) => {
        const c = model.createContext(o);
        return new Proxy(c, {
          get(t, k) {
            if (k === 'decode' || k === 'decodeSync') return (slots: Int32Array, toks: Int32Array) => { decodes++; return t[k](slots, toks); };
            const v = Reflect.get(t, k, t);
            return typeof v === 'function' ? v.bind(t) : v;
          },
        }) as NativeContext;
      },
    };
    const s = new ModelSession(spy);
    // Cancelled after the 3rd check: the loop checks before each decode step.
    let checks = 0;
    const token = { get isCancellationRequested() { return ++checks > 3; } };
    await expect(complete(s, { prefix: PREFIX, n: 16, maxTokens: 200, temperature: 1, topK: 0, topP: 1, minP: 0 }, token))
      .rejects.toBeInstanceOf(CancelledError);
    console.log(`cancelled after ${decodes} decode steps (${checks} checks)`);
    expect(decodes).toBeLessThanOrEqual(2);
    // Afterwards the same session serves a request normally.
    const r = await complete(s, { prefix: PREFIX, n: 2, maxTokens: 4, seed: 1 }, never);
    expect(r.candidates.length).toBeGreaterThan(0);
    s.dispose();
  });

  it('a cancellation that fires during a native step aborts that step (ctx.cancel)', async () => {
    const s = new ModelSession(model, 4096);
    const listeners: Array<() => void> = [];
    let cancelled = false;
    const token = {
      get isCancellationRequested() { return cancelled; },
      onCancellationRequested: (l: () => void) => { listeners.push(l); return { dispose() {} }; },
    };
    const long = 'x = 1\n'.repeat(600); // ~3600 tokens of prefill
    // (Many decode tokens: on a machine fast enough to finish the prefill before the timer, the
    // batch is still cancelled between steps, so the test checks cancellation either way.)
    const p = complete(s, { prefix: long, n: 4, maxTokens: 400 }, token);
    setTimeout(() => { cancelled = true; listeners.forEach((l) => l()); }, 5);
    await expect(p).rejects.toBeInstanceOf(CancelledError);
    // The KV kept nothing of the aborted prompt: the next request evaluates it again and works.
    const r = await complete(s, { prefix: 'y = 2\n', n: 1, maxTokens: 2 }, never);
    expect(r.timings.reused_tokens).toBeLessThanOrEqual(3);
    s.dispose();
  });

  it('learned-position models (StarCoder): the prompt is cut so prompt + samples fit the trained positions', async () => {
    const m = loadModel(fixture('arch', 'gpt_bigcode-tiny.gguf'), { ctx: 1024, threads: 2 });
    try {
      const s = new ModelSession(m);
      const r = await complete(s, { prefix: 'x = 1\n'.repeat(400), n: 4, maxTokens: 20, temperature: 1, topK: 0, topP: 1, minP: 0 }, never);
      expect(r.timings.prompt_tokens + 20).toBeLessThanOrEqual(m.info.context_length);
      expect(r.candidates.reduce((a, c) => a + c.count, 0)).toBe(4);
      await expect(complete(s, { prefix: 'x', maxTokens: 200 }, never)).rejects.toThrow(/no room for a prompt/);
      s.dispose();
    } finally {
      m.dispose();
    }
  });

  it('rejects bad params with a clear message', async () => {
    const s = new ModelSession(model);
    await expect(complete(s, { prefix: 'x', n: 65 }, never)).rejects.toThrow(/"n" must be an integer in 1..64/);
    await expect(complete(s, { prefix: 'x', temperature: -1 }, never)).rejects.toThrow(/temperature/);
    await expect(complete(s, { prefix: 42 as unknown as string }, never)).rejects.toThrow(/prefix/);
    await expect(complete(s, { prefix: 'x', attention: 'other' as 'bifurcated' }, never)).rejects.toThrow(/attention/);
    s.dispose();
  });
});
