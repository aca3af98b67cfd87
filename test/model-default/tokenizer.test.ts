// The bundled default model's vocabulary (byte-level BPE trained by tools/train/train.py with Hugging
// Face `tokenizers`, GPT-2 pre-tokenizer regex) through Forkcast's own Tokenizer:
//  - the GGUF says what the engine needs: gpt2 model, pre "gpt-2", StarCoder's FIM tokens as control ids;
//  - Forkcast's ids equal the ids Hugging Face `tokenizers` produced on the GPU machine for the reference
//    prompts (models/forkcast-default.ref.json), so training and inference see the same tokens;
//  - decode(encode(text)) gives the text back on this repository's real source files and on hostile text
//    (unicode, CRLF, tabs, special-token look-alikes), and special-looking text stays plain text;
//  - llama.cpp (node-llama-cpp, the reference build) tokenizes the same texts to the same ids.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseGGUF } from '../../engine/gguf';
import { Tokenizer } from '../../engine/tokenizer';
import { HAVE_LLAMA_CPP, loadLlamaCpp } from '../shared';

const ROOT = resolve(__dirname, '..', '..');
const MODEL = resolve(ROOT, 'models', 'forkcast-default-q8_0.gguf');
const REF = resolve(ROOT, 'models', 'forkcast-default.ref.json');
const file = parseGGUF(new Uint8Array(readFileSync(MODEL)));
const tok = Tokenizer.fromGGUF(file, { warn: (m) => { throw new Error(`unexpected tokenizer warning: ${m}`); } });

/** Real source text: this repository's TypeScript, C++ and the training tools' Python, cut into chunks. */
function sourceChunks(): string[] {
  const out: string[] = [];
  for (const dir of ['engine', 'engine/tokenizer', 'native/src', 'tools/train', 'extension']) {
    let names: string[] = [];
    try { names = readdirSync(join(ROOT, dir)).sort(); } catch { continue; }
    for (const n of names) {
      const p = join(ROOT, dir, n);
      if (!/\.(ts|cpp|h|py)$/.test(n) || !statSync(p).isFile()) continue;
      const text = readFileSync(p, 'utf8');
      for (let i = 0; i < text.length; i += 1500) out.push(text.slice(i, i + 1500 + (i % 7) * 50));
    }
  }
  return out;
}

const HOSTILE = [
  'def f(x):\r\n\treturn x  # tab + CRLF\r\n',
  '    \n\n\t\t  \u00a0 trailing   ',
  'naïve café — “quotes” 日本語のコード 🚀🧪 emoji 👩‍💻',
  '<fim_prefix>print(1)<fim_suffix><fim_middle><|endoftext|><fim_pad>',
  "it's they'll we've I'm you'd 'quoted' don't",
  '0x7fffffff 1e-9 3.14159 1_000_000 0b1010',
  '\u0000\u0001\u001b[31mred\u001b[0m',
  'a'.repeat(3000),
  ' '.repeat(257) + 'x',
];

describe('default model tokenizer', () => {
  it('declares a GPT-2-style byte-level BPE with StarCoder FIM tokens as control ids', () => {
    expect(file.getString('tokenizer.ggml.model')).toBe('gpt2');
    expect(file.getString('tokenizer.ggml.pre')).toBe('gpt-2');
    expect(tok.vocabSize).toBe(16384);
    expect(tok.special.fim_prefix).toBe(1);
    expect(tok.special.fim_middle).toBe(2);
    expect(tok.special.fim_suffix).toBe(3);
    expect(tok.special.eos).toBe(0);
    const types = file.getArray('tokenizer.ggml.token_type') as ArrayLike<number>;
    ['<|endoftext|>', '<fim_prefix>', '<fim_middle>', '<fim_suffix>', '<fim_pad>'].forEach((s, i) => {
      expect(tok.tokenText(i)).toBe(s);
      expect(types[i]).toBe(3);
    });
  });

  it('gives the same ids as Hugging Face tokenizers did at training time', () => {
    const ref: { prompts: { text: string; ids: number[] }[] } = JSON.parse(readFileSync(REF, 'utf8'));
    const plain = ref.prompts.filter((p) => !p.text.startsWith('FIM:'));
    expect(plain.length).toBeGreaterThanOrEqual(5);
    for (const p of plain) expect(tok.encode(p.text), p.text).toEqual(p.ids);
  });

  it('round-trips real source code and hostile text, and keeps special-looking text plain', () => {
    const texts = [...sourceChunks(), ...HOSTILE];
    expect(texts.length).toBeGreaterThan(50);
    let tokens = 0, chars = 0;
    for (const t of texts) {
      const ids = tok.encode(t);
      expect(tok.decode(ids), t.slice(0, 80)).toBe(t);
      tokens += ids.length;
      chars += t.length;
    }
    const fim = tok.encode(HOSTILE[3]);
    expect(fim.some((id) => id < 5), 'a file that spells <fim_prefix> must not produce the control id').toBe(false);
    console.log(`[model-default] round trip on ${texts.length} texts: ${chars} chars -> ${tokens} tokens (${(chars / tokens).toFixed(2)} chars/token)`);
  });
});

type LlamaModel = { tokenize(text: string, special?: boolean): number[]; dispose(): Promise<void> };
type Llama = { loadModel(o: { modelPath: string; vocabOnly: boolean }): Promise<LlamaModel>; dispose(): Promise<void> };

describe.skipIf(!HAVE_LLAMA_CPP)('default model tokenizer vs llama.cpp', () => {
  let llama: Llama | null = null;
  let why = '';
  beforeAll(async () => { ({ llama, why } = await loadLlamaCpp<Llama>()); });
  afterAll(async () => { await llama?.dispose(); });

  it('llama.cpp tokenizes the same texts to the same ids', async (ctx) => {
    if (!llama) { console.log(`[model-default] llama.cpp unavailable: ${why}`); ctx.skip(); return; }
    const ref = await llama.loadModel({ modelPath: MODEL, vocabOnly: true });
    try {
      const texts = [...sourceChunks(), ...HOSTILE.filter((t) => !t.includes('<fim_'))];
      let same = 0;
      const diffs: string[] = [];
      for (const t of texts) {
        const want = Array.from(ref.tokenize(t, false));
        const got = tok.encode(t);
        if (got.join(' ') === want.join(' ')) same++;
        else if (diffs.length < 3) diffs.push(`${JSON.stringify(t.slice(0, 120))}\n  got  ${got.slice(0, 30).join(' ')}\n  want ${want.slice(0, 30).join(' ')}`);
      }
      console.log(`[model-default] llama.cpp agreement: ${same}/${texts.length} texts identical`);
      expect(diffs).toEqual([]);
    } finally {
      await ref.dispose();
    }
  });
});
