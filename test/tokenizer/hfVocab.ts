// Test helper: turns a Hugging Face byte-level BPE tokenizer.json into a vocab-only GGUF with the project's
// own writer, laid out the way llama.cpp's converter (convert_hf_to_gguf.py) lays it out:
//  - tokens by id; a hole in the id range becomes "[PAD<id>]" of type USER_DEFINED;
//  - added tokens marked `special`, or that look special ("<|...|>", "<｜...｜>", "<pad>", "<mask>"),
//    are CONTROL, other added tokens USER_DEFINED, the rest NORMAL;
//  - merges as "left right" strings in rank order.
import { readFileSync } from 'node:fs';
import { GGUFType, type GGUFValue } from '../../engine/gguf';
import { writeGGUF } from '../../engine/ggufWriter';

interface HFTokenizerJson {
  model: { type: string; vocab: Record<string, number>; merges: Array<string | [string, string]> };
  added_tokens: Array<{ id: number; content: string; special: boolean }>;
}

const looksSpecial = (t: string) =>
  t === '<pad>' || t === '<mask>' || (t.startsWith('<|') && t.endsWith('|>')) || (t.startsWith('<｜') && t.endsWith('｜>'));

export interface HFVocabOptions {
  pre: string;
  /** general.architecture (llama.cpp refuses to open a file of an architecture it does not know). */
  architecture?: string;
  bos?: string;
  eos?: string;
  pad?: string;
  addBos: boolean;
}

/** Writes `out` (a vocab-only GGUF) from `tokenizerJsonPath`; returns the vocabulary size. */
export function writeVocabGGUF(tokenizerJsonPath: string, out: string, opts: HFVocabOptions): number {
  const tj = JSON.parse(readFileSync(tokenizerJsonPath, 'utf8')) as HFTokenizerJson;
  if (tj.model.type !== 'BPE') throw new Error(`${tokenizerJsonPath}: model type ${tj.model.type}, expected BPE`);
  const byId = new Map<number, { text: string; type: number }>();
  for (const [text, id] of Object.entries(tj.model.vocab)) byId.set(id, { text, type: 1 });
  for (const a of tj.added_tokens) {
    byId.set(a.id, { text: a.content, type: a.special || looksSpecial(a.content) ? 3 : 4 });
  }
  let n = 0;
  for (const id of byId.keys()) n = Math.max(n, id + 1);
  const tokens: string[] = [];
  const types = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const t = byId.get(i) ?? { text: `[PAD${i}]`, type: 4 };
    tokens.push(t.text);
    types[i] = t.type;
  }
  const merges = tj.model.merges.map((m) => (typeof m === 'string' ? m : `${m[0]} ${m[1]}`));
  const idOf = (text: string) => {
    const i = tokens.indexOf(text);
    if (i < 0) throw new Error(`token ${text} not in ${tokenizerJsonPath}`);
    return i;
  };
  const u32 = (v: number): GGUFValue => ({ type: GGUFType.UINT32, value: v });
  const metadata: Array<[string, GGUFValue]> = [
    ['general.architecture', { type: GGUFType.STRING, value: opts.architecture ?? 'llama' }],
    ['tokenizer.ggml.model', { type: GGUFType.STRING, value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: GGUFType.STRING, value: opts.pre }],
    ['tokenizer.ggml.tokens', { type: GGUFType.ARRAY, value: { elemType: GGUFType.STRING, items: tokens } }],
    ['tokenizer.ggml.token_type', { type: GGUFType.ARRAY, value: { elemType: GGUFType.INT32, items: types } }],
    ['tokenizer.ggml.merges', { type: GGUFType.ARRAY, value: { elemType: GGUFType.STRING, items: merges } }],
    ['tokenizer.ggml.add_bos_token', { type: GGUFType.BOOL, value: opts.addBos }],
  ];
  if (opts.bos) metadata.push(['tokenizer.ggml.bos_token_id', u32(idOf(opts.bos))]);
  if (opts.eos) metadata.push(['tokenizer.ggml.eos_token_id', u32(idOf(opts.eos))]);
  if (opts.pad) metadata.push(['tokenizer.ggml.padding_token_id', u32(idOf(opts.pad))]);
  writeGGUF(out, { metadata, tensors: [] });
  return n;
}
