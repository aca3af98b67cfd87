// The CLI as a user runs it: `node dist/cli.js <command>`; --json prints exactly one JSON object,
// bad input exits non-zero with one line on stderr.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HAVE_SHARED, fixture } from '../shared';
import { ROOT, builtCli } from './built';

const dir = mkdtempSync(join(tmpdir(), 'forkcast-cli-'));
let cli: string;
let model: string;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(args: string[], input?: string) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: ROOT, input, encoding: 'utf8', timeout: 120_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function json(args: string[], input?: string) {
  const r = run([...args, '--json'], input);
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.err}`);
  expect(r.out.trim().split('\n')).toHaveLength(1); // exactly one JSON object
  return JSON.parse(r.out);
}

describe.skipIf(!HAVE_SHARED)('cli', () => {
  beforeAll(() => {
    cli = builtCli();
    model = join(dir, 'm.gguf');
    const r = run(['make-model', '--arch', 'llama', '--layers', '2', '--embd', '64', '--heads', '4', '--kv-heads', '2', '--ff', '128',
      '--ctx', '512', '--type', 'Q8_0', '--vocab-from', fixture('vocab', 'ggml-vocab-starcoder.gguf'), '--seed', '3', '--out', model]);
    if (r.code !== 0) throw new Error(r.err);
  });

  it('info reports the model and its FIM tokens', () => {
    const j = json(['info', '--model', model]);
    expect(j.architecture).toBe('llama');
    expect(j.vocab_size).toBe(49152);
    expect(j.special_tokens).toMatchObject({ fim_prefix: 1, fim_middle: 2, fim_suffix: 3 });
    expect(j.tensor_types.Q8_0).toBeGreaterThan(0);
    expect(j.fim_template).toBe('starcoder');
    const human = run(['info', '--model', model]);
    expect(human.out).toMatch(/llama, [\d,]+ parameters/);
  });

  it('tokenize: --text-file and --jsonl (one line per input line)', () => {
    const f = join(dir, 't.txt');
    writeFileSync(f, 'def f(x):\n    return x');
    const a = json(['tokenize', '--model', model, '--text-file', f]);
    const r = run(['tokenize', '--model', model, '--jsonl'], [JSON.stringify('def f(x):\n    return x'), JSON.stringify('<fim_prefix>')].join('\n') + '\n');
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l).ids);
    expect(lines[0]).toEqual(a.ids);
    expect(lines[1]).not.toContain(1); // marker-looking text is plain text
    const bad = run(['tokenize', '--model', model, '--jsonl'], '{"not": "a string"}\n');
    expect(bad.code).not.toBe(0);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
  });

  it('generate: greedy is deterministic, --prompt and --prompt-ids agree, timings present', () => {
    const ids = json(['tokenize', '--model', model, '--text-file', (writeFileSync(join(dir, 'p.txt'), 'import numpy as'), join(dir, 'p.txt'))]).ids;
    const a = json(['generate', '--model', model, '--prompt', 'import numpy as', '--max-tokens', '8', '--ignore-eos']);
    const b = json(['generate', '--model', model, '--prompt-ids', ids.join(' '), '--max-tokens', '8', '--ignore-eos', '--threads', '1', '--ctx', '64']);
    expect(a.ids).toHaveLength(8);
    expect(b.ids).toEqual(a.ids);
    expect(Object.keys(a.timings).sort()).toEqual(['decode_ms', 'generated_tokens', 'prefill_ms', 'prompt_tokens']);
    const s1 = json(['generate', '--model', model, '--prompt', 'x', '--max-tokens', '8', '--temperature', '1', '--seed', '4', '--ignore-eos']);
    const s2 = json(['generate', '--model', model, '--prompt', 'x', '--max-tokens', '8', '--temperature', '1', '--seed', '4', '--ignore-eos']);
    expect(s2.ids).toEqual(s1.ids);
  });

  it('logits: full vocabulary, argmax = the first greedy token', () => {
    const l = json(['logits', '--model', model, '--prompt-ids', '10 20 30']).logits as number[];
    const g = json(['generate', '--model', model, '--prompt-ids', '10 20 30', '--max-tokens', '1', '--ignore-eos']);
    expect(l).toHaveLength(49152);
    expect(l.indexOf(Math.max(...l))).toBe(g.ids[0]);
  });

  it('complete: ranked candidates with scores, counts adding up to n, timings and KV memory', () => {
    const pre = join(dir, 'pre.py'), suf = join(dir, 'suf.py');
    writeFileSync(pre, 'def add(a, b):\n    return ');
    writeFileSync(suf, '\n\nprint(add(1, 2))\n');
    const j = json(['complete', '--model', model, '--prefix-file', pre, '--suffix-file', suf, '--n', '8', '--max-tokens', '6', '--seed', '2']);
    expect(j.candidates.reduce((a: number, c: { count: number }) => a + c.count, 0)).toBe(8);
    for (let i = 1; i < j.candidates.length; i++) expect(j.candidates[i - 1].score).toBeGreaterThanOrEqual(j.candidates[i].score);
    for (const k of ['prefill_ms', 'decode_ms', 'total_ms']) expect(j.timings[k]).toBeGreaterThanOrEqual(0);
    expect(j.memory.kv_bytes).toBeGreaterThan(0);
    const human = run(['complete', '--model', model, '--prefix-file', pre, '--suffix-file', suf, '--n', '8', '--max-tokens', '6', '--seed', '2']);
    expect(human.code).toBe(0);
    expect(human.out).toMatch(/FIM template: starcoder/);
    expect(human.out).toMatch(/#1 {2}score -?\d+\.\d+ {2}logprob -?\d+\.\d+ {2}x\d+/);
    expect(human.out).toMatch(/total [\d.]+ ms; KV [\d.]+ MiB/);
    const rep = json(['complete', '--model', model, '--prefix-file', pre, '--n', '4', '--max-tokens', '4', '--seed', '2', '--attention', 'replicated']);
    expect(rep.candidates.length).toBeGreaterThan(0);
  });

  it('bad input: non-zero exit and one line on stderr, nothing on stdout', () => {
    const cases: string[][] = [
      ['info', '--model', join(dir, 'missing.gguf')],
      ['frobnicate'],
      ['generate', '--model', model, '--prompt-ids', '1', '--max-tokens', '0'],
      ['generate', '--model', model, '--prompt-ids', '1 999999', '--max-tokens', '2'],
      ['generate', '--model', model, '--prompt', 'a', '--prompt-ids', '1', '--max-tokens', '2'],
      ['complete', '--model', model, '--prefix-file', join(dir, 'missing.py')],
      ['complete', '--model', model, '--prefix-file', join(dir, 'pre.py'), '--n', '65'],
      ['complete', '--model', model, '--prefix-file', join(dir, 'pre.py'), '--attention', 'sideways'],
      ['logits', '--model', model, '--prompt-ids', 'one two'],
      ['make-model', '--arch', 'gpt5', '--layers', '1', '--embd', '64', '--heads', '4', '--kv-heads', '1', '--ff', '64', '--ctx', '64',
        '--type', 'Q8_0', '--vocab-from', fixture('vocab', 'ggml-vocab-starcoder.gguf'), '--out', join(dir, 'x.gguf')],
      ['info', '--model', model, '--unknown-flag'],
    ];
    for (const args of cases) {
      const r = run([...args, '--json']);
      expect(r.code, args.join(' ')).toBeGreaterThan(0);
      expect(r.code).toBeLessThan(128);
      expect(r.err.trim().split('\n'), args.join(' ')).toHaveLength(1);
      expect(r.err).toMatch(/^forkcast: /);
      expect(r.out).toBe('');
    }
  });
});
