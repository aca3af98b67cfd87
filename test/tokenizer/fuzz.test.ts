// Hostile tokenizer metadata: a GGUF's vocabulary is untrusted input like the rest of the file. Every
// mutated vocabulary either gives a clear error (TokenizerError / GGUFError) or a tokenizer whose
// encode terminates with ids inside the vocabulary and whose decode does not throw.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { GGUFError, parseGGUF, type GGUFValue } from '../../engine/gguf';
import { Tokenizer, TokenizerError } from '../../engine/tokenizer';
import { fixture, HAVE_SHARED } from '../shared';
import { xorshift } from '../random';

const SEED = Number(process.env.FORKCAST_SEED ?? Math.floor(Math.random() * 2 ** 31));

const TEXTS = ['Hello world', "  def f(x):\n\treturn x**2  # it's", '<fim_prefix><s></s>', '🦙 中文 Привет 123456', '', ' ', '\n\n\n'];
const WEIRD = ['', ' ', 'Ġ', '▁', '<0x41>', '<0xZZ>', '<s>', '\u0000', 'a b c', '\ud800', '🦙', 'x'.repeat(300)];

describe.skipIf(!HAVE_SHARED)('tokenizer fuzz: mutated vocabulary metadata', () => {
  it(`each mutation gives a clear error or a working tokenizer (seed ${SEED})`, () => {
    console.log(`[tokenizer fuzz] seed ${SEED} (FORKCAST_SEED=${SEED} replays it)`);
    const next = xorshift(SEED);
    const pick = <T,>(a: readonly T[]): T => a[Math.floor(next() * a.length)];
    const int = (n: number) => Math.floor(next() * n);
    const files = [fixture('arch', 'llama-tiny.gguf'), fixture('models', 'tinystories-656k-q8_0.gguf')].map((p) => readFileSync(p));
    let built = 0, refused = 0;
    for (let c = 0; c < 400; c++) {
      const f = parseGGUF(new Uint8Array(pick(files)));
      const md = f.metadata;
      const tokens = [...(md.get('tokenizer.ggml.tokens')!.value as { items: string[] }).items];
      const n = tokens.length;
      const mutations = 1 + int(3);
      for (let m = 0; m < mutations; m++) {
        switch (int(10)) {
          case 0: tokens[int(n)] = pick(WEIRD); break; // odd, empty or duplicate token texts
          case 1: tokens[int(n)] = tokens[int(n)]; break;
          case 2: { // random token types
            const t = Int32Array.from({ length: n }, () => pick([1, 1, 1, 2, 3, 4, 5, 6, 0, -7, 99]));
            md.set('tokenizer.ggml.token_type', { type: 9, value: { elemType: 5, items: t } });
            break;
          }
          case 3: { // scores with NaN / infinities, or too few
            const s = Float32Array.from({ length: next() < 0.2 ? int(n) : n }, () => pick([0, -1, NaN, Infinity, -Infinity, next()]));
            md.set('tokenizer.ggml.scores', { type: 9, value: { elemType: 6, items: s } });
            break;
          }
          case 4: { // merges that are not "a b"
            const merges = Array.from({ length: 50 }, () => pick(WEIRD) + pick(['', ' ', '  ']) + pick(WEIRD));
            md.set('tokenizer.ggml.merges', { type: 9, value: { elemType: 8, items: merges } });
            break;
          }
          case 5: { // special ids of the wrong type or out of range
            const key = pick(['bos_token_id', 'eos_token_id', 'fim_pre_token_id', 'unknown_token_id', 'eot_token_id']);
            const v: GGUFValue = pick<GGUFValue>([
              { type: 8, value: 'seven' }, { type: 7, value: true }, { type: 5, value: -1 }, { type: 4, value: 4294967295 },
              { type: 6, value: 1.5 }, { type: 10, value: 2n ** 63n }, { type: 4, value: n }, { type: 9, value: { elemType: 4, items: new Uint32Array(2) } },
            ]);
            md.set(`tokenizer.ggml.${key}`, v);
            break;
          }
          case 6: md.set('tokenizer.ggml.pre', { type: 8, value: pick(['', 'qwen2', 'deepseek-llm', 'chameleon', '\u0000', 'x'.repeat(100)]) }); break;
          case 7: md.set('tokenizer.ggml.add_bos_token', pick<GGUFValue>([{ type: 8, value: 'yes' }, { type: 7, value: true }, { type: 0, value: 3 }])); break;
          case 8: md.set('tokenizer.ggml.model', { type: 8, value: pick(['llama', 'gpt2', 'bert', '', 'rwkv']) }); break;
          case 9: md.set('tokenizer.ggml.token_type', pick<GGUFValue>([
            { type: 9, value: { elemType: 8, items: tokens.map(() => 'x') } }, // strings where numbers belong
            { type: 9, value: { elemType: 10, items: tokens.map(() => pick([1n, 3n, 2n ** 63n])) } }, // 64-bit values
          ])); break;
        }
      }
      md.set('tokenizer.ggml.tokens', { type: 9, value: { elemType: 8, items: tokens } });
      let tok: Tokenizer;
      try {
        tok = Tokenizer.fromGGUF(f, { warn: () => {} });
      } catch (e) {
        if (!(e instanceof TokenizerError || e instanceof GGUFError)) throw e;
        expect((e as Error).message.length).toBeGreaterThan(10);
        refused++;
        continue;
      }
      built++;
      for (const text of TEXTS) {
        const ids = tok.encode(text);
        for (const id of ids) expect(Number.isInteger(id) && id >= 0 && id < tok.vocabSize).toBe(true);
        expect(typeof tok.decode(ids)).toBe('string');
      }
    }
    console.log(`[tokenizer fuzz] 400 mutated vocabularies: ${built} built and used, ${refused} refused with a clear error`);
    expect(built).toBeGreaterThan(50);
    expect(refused).toBeGreaterThan(10);
  });
});
