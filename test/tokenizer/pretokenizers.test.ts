// Pre-tokenizers on their own: every name the engine knows compiles and cuts text without losing or
// inventing characters, and the cuts follow the regex semantics of the reference (Hugging Face's
// Oniguruma), including where JavaScript's own regex meaning differs, and llama.cpp's where it differs
// from Hugging Face's.
import { describe, expect, it } from 'vitest';
import { knownPreTokenizers, makePreTokenizer } from '../../engine/tokenizer/pretokenizers';
import { xorshift } from '../random';

const SEED = Number(process.env.FORKCAST_SEED ?? Math.floor(Math.random() * 2 ** 31));
const PIECES = ['x', 'Abc', ' def', "'s", "'LL", '123456', '3.14', '  ', '\t', '\n', '\r\n', '\n\n  ', '(', ');', '=>', '...',
  '<sentinel:12>', 'IMGIMGABZ', 'é', 'ώ', 'K', 'ƻ', 'Привет', '中文', '한국어', 'ｆｕｌｌ', '！', '🦙', '\u0085', '\ufeff', '\u3000'];

describe('pre-tokenizers', () => {
  it(`every known pre-tokenizer cuts random text into non-empty pieces that add up to it (seed ${SEED})`, () => {
    const next = xorshift(SEED);
    const texts = Array.from({ length: 200 }, () => {
      let s = '';
      for (let n = 1 + Math.floor(next() * 25); n > 0; n--) s += PIECES[Math.floor(next() * PIECES.length)];
      return s;
    });
    for (const name of knownPreTokenizers()) {
      const pre = makePreTokenizer(name);
      expect(pre.unknown).toBe(false);
      for (const t of texts) {
        const pieces = pre.split(t);
        expect(pieces.join(''), name).toBe(t);
        expect(pieces.filter((p) => p.length === 0), name).toEqual([]);
      }
    }
  });

  it('GPT-2: contractions, leading spaces on words, whitespace left before a word', () => {
    const p = makePreTokenizer('gpt-2');
    expect(p.split("Hello, world's  test\n\n")).toEqual(['Hello', ',', ' world', "'s", ' ', ' test', '\n\n']);
    expect(p.split("I'M")).toEqual(['I', "'", 'M']); // GPT-2's contractions are lower-case only
  });

  it('\\s means Unicode White_Space as in Oniguruma: U+0085 is a space, U+FEFF is not', () => {
    const p = makePreTokenizer('gpt-2');
    // Two NEL characters are whitespace (split one by one before a letter); JavaScript's \s would
    // have taken them as one run of symbols.
    expect(p.split('\u0085\u0085a')).toEqual(['\u0085', '\u0085', 'a']);
    // U+FEFF is a symbol, glued to the space before it like punctuation, not a whitespace run.
    expect(p.split('x \ufeff\ufeff')).toEqual(['x', ' \ufeff\ufeff']);
  });

  it('Llama 3 and Qwen2: case-insensitive contractions; digits in threes vs one by one', () => {
    expect(makePreTokenizer('llama-bpe').split("I'M 12345")).toEqual(['I', "'M", ' ', '123', '45']);
    expect(makePreTokenizer('qwen2').split("I'M 12345")).toEqual(['I', "'M", ' ', '1', '2', '3', '4', '5']);
    expect(makePreTokenizer('llama-bpe').ignoreMerges).toBe(true);
  });

  it('StarCoder / DeepSeek-Coder: digits one by one, newlines on their own', () => {
    expect(makePreTokenizer('starcoder').split('x = 2024;')).toEqual(['x', ' =', ' ', '2', '0', '2', '4', ';']);
    expect(makePreTokenizer('deepseek-coder').split('a\n\nb 12')).toEqual(['a', '\n', '\n', 'b', ' ', '1', '2']);
  });

  it('DeepSeek LLM: its letter class is the cased letters, read from escapes (no NFC damage)', () => {
    const p = makePreTokenizer('deepseek-llm');
    expect(p.split('aƻb')).toEqual(['a', 'ƻ', 'b']); // U+01BB is a letter but not a cased one
    expect(p.split('\u1f7d\u212a')).toEqual(['\u1f7d\u212a']); // Greek ώ (oxia) and the Kelvin sign are in it
    expect(p.split('Z[')).toEqual(['Z', '[']);
  });

  it('DeepSeek: non-ASCII whitespace is outside their explicit ranges, as in llama.cpp (which reads it as U+000B)', () => {
    // U+2005 lies in the CJK range U+0800-U+4E00 and U+3000 in the punctuation range U+3000-U+3002; Hugging
    // Face's regex engine would take them there, llama.cpp does not.
    expect(makePreTokenizer('deepseek-llm').split('\u{1f596}  \u2005\u2550')).toEqual(['\u{1f596}  \u2005', '\u2550']);
    expect(makePreTokenizer('deepseek-coder').split('x\u2005\u2550')).toEqual(['x', '\u2005', '\u2550']);
    expect(makePreTokenizer('deepseek-llm').split('\u3000\u3000\u3002')).toEqual(['\u3000', '\u3000', '\u3002']); // HF: one piece
  });

  it('GPT-4o / Tekken: camel case splits, combining marks stay in the word (tokenizer.json regex, \\p{M} included)', () => {
    const p = makePreTokenizer('gpt-4o');
    expect(p.split('getHTTPResponse')).toEqual(['get', 'HTTPResponse']);
    expect(p.split(' parseJSONValue')).toEqual([' parse', 'JSONValue']);
    expect(p.split("हिन्दी's 1234")).toEqual(["हिन्दी's", ' ', '123', '4']);
    expect(makePreTokenizer('tekken').split('a/b\n\n')).toEqual(['a', '/b', '\n\n']); // one non-letter may lead a word
  });

  it('an unknown name falls back to the default pre-tokenizer and says so', () => {
    const p = makePreTokenizer('no-such-pre');
    expect(p.unknown).toBe(true);
    expect(p.split('a+b 123456')).toEqual(makePreTokenizer('default').split('a+b 123456'));
  });
});
