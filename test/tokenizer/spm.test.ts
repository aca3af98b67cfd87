// SentencePiece merging word by word (cached) must give exactly what merging the whole text gives.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseGGUF } from '../../engine/gguf';
import { SPACE, SpmEncoder, spmEncode, type SpmVocab } from '../../engine/tokenizer/spm';
import { fixture, HAVE_SHARED } from '../shared';
import { xorshift } from '../random';

const SEED = Number(process.env.FORKCAST_SEED ?? Math.floor(Math.random() * 2 ** 31));

function load(path: string): { vocab: SpmVocab; tokens: string[] } {
  const f = parseGGUF(new Uint8Array(readFileSync(path)));
  const tokens = f.getStringArray('tokenizer.ggml.tokens');
  const toId = new Map<string, number>();
  tokens.forEach((t, i) => { if (!toId.has(t)) toId.set(t, i); });
  return { vocab: { toId, scores: Float32Array.from(f.getArray('tokenizer.ggml.scores') as Float32Array), unkId: 0 }, tokens };
}

const WORDS = ['the', 'The', ' ', '  ', '    ', '\n', '\t', 'function', '(', ')', '{', '}', ';', '.', ',', "'s", 'x1', '2024',
  'über', 'naïve', 'Привет', '中文', '🦙', 'int', 'main', '//', 'TODO', '->', '::', 'a', 'b'];

describe.skipIf(!HAVE_SHARED)('SentencePiece word-by-word merging', () => {
  it(`equals whole-text merging on random text (llama-spm, phi-3; seed ${SEED})`, () => {
    const next = xorshift(SEED);
    for (const name of ['llama-spm', 'phi-3']) {
      const { vocab, tokens } = load(fixture('vocab', `ggml-vocab-${name}.gguf`));
      const enc = new SpmEncoder(vocab, tokens);
      expect(enc.wordwise).toBe(true);
      for (let k = 0; k < 300; k++) {
        let text = ' ';
        for (let n = 1 + Math.floor(next() * 40); n > 0; n--) text += WORDS[Math.floor(next() * WORDS.length)];
        const escaped = text.replaceAll(' ', SPACE);
        const whole: number[] = [];
        spmEncode(vocab, escaped, whole);
        const wordwise: number[] = [];
        enc.encode(escaped, wordwise);
        expect(wordwise, JSON.stringify(text)).toEqual(whole);
      }
    }
  });

  it('decodes the TinyStories greedy ids of ../shared/README.md to the story it quotes', async () => {
    const { Tokenizer } = await import('../../engine/tokenizer');
    const tok = Tokenizer.fromGGUF(parseGGUF(new Uint8Array(readFileSync(fixture('models', 'tinystories-656k-q8_0.gguf')))), { warn: () => {} });
    const ids = '1 147 201 282 215 286 598 1662 356 499 826 1363 1145 1652'.split(' ').map(Number);
    expect(tok.special.bos).toBe(1);
    expect(tok.decode(ids)).toBe('Once upon a time, there was a little girl named Lily. She had a toy car that she loved very much');
  });

  it('a vocabulary with pieces that span words ("the▁") is merged as a whole', () => {
    const { vocab, tokens } = load(fixture('models', 'tinystories-656k-q8_0.gguf'));
    const enc = new SpmEncoder(vocab, tokens);
    expect(enc.wordwise).toBe(false);
    const ids: number[] = [];
    enc.encode('Once▁upon▁a▁time', ids);
    expect(ids.map((i) => tokens[i]).join('')).toBe('Once▁upon▁a▁time');
    expect(ids.some((i) => /[^▁]▁./u.test(tokens[i]))).toBe(true); // at least one piece spans a word boundary
  });
});
