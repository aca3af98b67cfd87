// Pre-tokenizers for byte-level BPE vocabularies: how text is cut into words before BPE merges run.
//
// A GGUF names its pre-tokenizer in `tokenizer.ggml.pre`. Each name stands for the Hugging Face
// `pre_tokenizer` of the model's tokenizer.json: usually a Sequence of `Split(regex, Isolated)` steps
// followed by ByteLevel. Facts used here (the regexes are data from those tokenizer.json files, as
// listed per pre-type in llama.cpp's src/llama-vocab.cpp):
//  - A sequence of regexes is applied step by step; every step splits each piece of the previous step
//    into its matches and the gaps between them, keeping both ("Isolated" behaviour).
//  - GPT-2's ByteLevel regex ends with `\s+(?!\S)|\s+` (whitespace before a word is left for the word's
//    leading space).
//  - `(?i:'s|...)` is case-insensitive only over ASCII letters here, written out as `'[sS]` etc.
//  - Hugging Face runs these regexes with Oniguruma, whose `\s` is Unicode White_Space: it includes
//    U+0085 but not U+FEFF, unlike JavaScript's `\s`. We substitute an explicit class so the split
//    agrees with the reference exactly.

// Unicode White_Space (Oniguruma's `\s` in Unicode mode).
const WS = '\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/** Compiles a regex written in tokenizer.json syntax, translating `\s` / `\S` to Oniguruma's meaning. */
export function compilePattern(src: string): RegExp {
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i];
    if (c === '\\') {
      const n = src[i + 1];
      if (n === 's') out += inClass ? WS : `[${WS}]`;
      else if (n === 'S') {
        if (inClass) throw new Error(`pre-tokenizer regex: \\S inside a character class is not supported: ${src}`);
        out += `[^${WS}]`;
      } else out += c + n;
      i++;
      continue;
    }
    if (c === '[' && !inClass) inClass = true;
    else if (c === ']' && inClass) inClass = false;
    out += c;
  }
  return new RegExp(out, 'gu');
}

// ---- the regexes (tokenizer.json data) ---------------------------------------------------------------
const GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const CONTRACTIONS_CI = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])";
const LLAMA3 = `${CONTRACTIONS_CI}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const QWEN2 = `${CONTRACTIONS_CI}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const GPT4O = `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+${CONTRACTIONS_CI}?` +
  `|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*${CONTRACTIONS_CI}?` +
  `|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const TEKKEN = `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+` +
  `|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*` +
  `|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`;
const BLOOM = ' ?[^(\\s|.,!?…。，、।۔،)]+';
// DeepSeek LLM's letter class (the cased letters of some Unicode version: Latin, Greek, Cyrillic, Armenian,
// Georgian, Cherokee, Glagolitic, Coptic, Deseret, Osage, Old Hungarian, Warang Citi, Adlam, ...), written
// as escapes: several of its characters (U+1F7D, U+1FBE, U+1FD3, U+1FDB, U+2126, U+212A) have canonical
// singleton decompositions and would silently become other characters if the source were NFC-normalized.
const DEEPSEEK_LETTERS = '\\u{41}-\\u{5A}\\u{61}-\\u{7A}\\u{B5}\\u{C0}-\\u{D6}\\u{D8}-\\u{F6}\\u{F8}-\\u{1BA}\\u{1BC}-\\u{1BF}\\u{1C4}-\\u{293}\\u{295}-\\u{2AF}\\u{370}-\\u{373}\\u{376}\\u{377}\\u{37B}-\\u{37D}\\u{37F}\\u{386}\\u{388}-\\u{38A}\\u{38C}\\u{38E}-\\u{3A1}\\u{3A3}-\\u{3F5}\\u{3F7}-\\u{481}\\u{48A}-\\u{52F}\\u{531}-\\u{556}\\u{10A0}-\\u{10C5}\\u{13A0}-\\u{13F5}\\u{13F8}-\\u{13FD}\\u{1C90}-\\u{1CBA}\\u{1CBD}-\\u{1CBF}\\u{1D00}-\\u{1D2B}\\u{1D6B}-\\u{1D77}\\u{1D79}-\\u{1D9A}\\u{1E00}-\\u{1F15}\\u{1F18}-\\u{1F1D}\\u{1F20}-\\u{1F45}\\u{1F48}-\\u{1F4D}\\u{1F50}-\\u{1F57}\\u{1F59}\\u{1F5B}\\u{1F5D}\\u{1F5F}-\\u{1F7D}\\u{1F80}-\\u{1FB4}\\u{1FB6}-\\u{1FBC}\\u{1FBE}\\u{1FC2}-\\u{1FC4}\\u{1FC6}-\\u{1FCC}\\u{1FD0}-\\u{1FD3}\\u{1FD6}-\\u{1FDB}\\u{1FE0}-\\u{1FEC}\\u{1FF2}-\\u{1FF4}\\u{1FF6}-\\u{1FFC}\\u{2102}\\u{2107}\\u{210A}-\\u{2113}\\u{2115}\\u{2119}-\\u{211D}\\u{2124}\\u{2126}\\u{2128}\\u{212A}-\\u{212D}\\u{212F}-\\u{2134}\\u{2139}\\u{213C}-\\u{213F}\\u{2145}-\\u{2149}\\u{214E}\\u{2183}\\u{2184}\\u{2C00}-\\u{2C7B}\\u{2C7E}-\\u{2CE4}\\u{2CEB}-\\u{2CEE}\\u{2CF2}\\u{2CF3}\\u{A640}-\\u{A66D}\\u{A680}-\\u{A69B}\\u{A722}-\\u{A76F}\\u{A771}-\\u{A787}\\u{A78B}-\\u{A78E}\\u{AB70}-\\u{ABBF}\\u{FB00}-\\u{FB06}\\u{FB13}-\\u{FB17}\\u{FF21}-\\u{FF3A}\\u{FF41}-\\u{FF5A}\\u{10400}-\\u{1044F}\\u{104B0}-\\u{104D3}\\u{104D8}-\\u{104FB}\\u{10C80}-\\u{10CB2}\\u{10CC0}-\\u{10CF2}\\u{118A0}-\\u{118DF}\\u{1E900}-\\u{1E943}';
const CJK_HANGUL = '[一-龥ࠀ-一가-퟿]+';

/** Regex sequences by pre-tokenizer family. */
const FAMILIES: Record<string, string[]> = {
  // llama.cpp's fallback for unknown / missing names.
  default: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2, '\\p{N}+', '[0-9][0-9][0-9]'],
  gpt2: [GPT2],
  llama3: [LLAMA3],
  qwen2: [QWEN2],
  // Digits split one by one, then GPT-2's regex.
  starcoder: ['\\p{N}', GPT2],
  falcon: ['[\\p{P}\\$\\+<=>\\^~\\|`]+', GPT2, '[0-9][0-9][0-9]'],
  'deepseek-llm': ['[\\r\\n]', `\\s?[${DEEPSEEK_LETTERS}]+`, '\\s?[!-/:-~！-／：-～‘-‟　-。]+', '\\s+$', CJK_HANGUL, '\\p{N}+'],
  'deepseek-coder': ['[\\r\\n]', '\\s?\\p{L}+', '\\s?\\p{P}+', CJK_HANGUL, '\\p{N}'],
  'deepseek-v3': ['\\p{N}{1,3}', '[一-龥぀-ゟ゠-ヿ]+',
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"],
  bloom: [BLOOM],
  viking: [BLOOM, '\\p{N}'],
  chameleon: ['<sentinel:[0-9]+>', '(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z', '([\\t\\n]|    |  )', '\\p{N}', '[\\p{P}!-/:-@\\[-`{-~]', GPT2],
  'gpt-4o': [GPT4O],
  tekken: [TEKKEN],
};

/** `tokenizer.ggml.pre` name → family, plus the per-name flags llama.cpp applies (llama-vocab.cpp). */
const NAMES: Record<string, { family: string; ignoreMerges?: boolean; addBos?: boolean }> = {
  default: { family: 'default' },
  'gpt-2': { family: 'gpt2' }, 'phi-2': { family: 'gpt2' }, mpt: { family: 'gpt2' }, olmo: { family: 'gpt2' },
  jais: { family: 'gpt2' }, 'gpt-neox': { family: 'gpt2' }, 'roberta-bpe': { family: 'gpt2' },
  'jina-v1-en': { family: 'gpt2' }, 'jina-v2-code': { family: 'gpt2' }, 'jina-es': { family: 'gpt2' },
  'jina-de': { family: 'gpt2' }, 'jina-v2-es': { family: 'gpt2' }, 'jina-v2-de': { family: 'gpt2' },
  gigachat: { family: 'gpt2' }, mellum: { family: 'gpt2' }, exaone4: { family: 'gpt2' }, trillion: { family: 'gpt2' },
  'granite-docling': { family: 'gpt2' }, 'modern-bert': { family: 'gpt2' }, 'a.x-4.0': { family: 'gpt2' },
  llama3: { family: 'llama3', ignoreMerges: true, addBos: true },
  'llama-v3': { family: 'llama3', ignoreMerges: true, addBos: true },
  'llama-bpe': { family: 'llama3', ignoreMerges: true, addBos: true },
  falcon3: { family: 'llama3', ignoreMerges: true, addBos: true },
  'falcon-h1': { family: 'llama3', ignoreMerges: true, addBos: true },
  pixtral: { family: 'llama3', ignoreMerges: true, addBos: true },
  dbrx: { family: 'llama3' }, 'smaug-bpe': { family: 'llama3' }, 'chatglm-bpe': { family: 'llama3' }, glm4: { family: 'llama3' },
  qwen2: { family: 'qwen2' }, 'deepseek-r1-qwen': { family: 'qwen2' }, stablelm2: { family: 'qwen2' }, megrez: { family: 'qwen2' },
  starcoder: { family: 'starcoder' }, refact: { family: 'starcoder' }, 'command-r': { family: 'starcoder' },
  smollm: { family: 'starcoder' }, codeshell: { family: 'starcoder' }, exaone: { family: 'starcoder' },
  'minerva-7b': { family: 'starcoder' },
  falcon: { family: 'falcon' },
  'deepseek-llm': { family: 'deepseek-llm' },
  'deepseek-coder': { family: 'deepseek-coder' },
  'deepseek-v3': { family: 'deepseek-v3' },
  bloom: { family: 'bloom' }, 'poro-chat': { family: 'bloom' }, 'gpt3-finnish': { family: 'bloom' },
  viking: { family: 'viking' },
  chameleon: { family: 'chameleon', addBos: true },
  'gpt-4o': { family: 'gpt-4o' }, llama4: { family: 'gpt-4o' },
  tekken: { family: 'tekken', ignoreMerges: true, addBos: true },
};

export interface PreTokenizer {
  /** The name the file gave (or 'default'). */
  name: string;
  /** True when the name was not known and the default behaviour is used instead. */
  unknown: boolean;
  /** Whole words found in the vocabulary are emitted as one token without merging (Llama 3 family). */
  ignoreMerges: boolean;
  /** The family's own add-BOS default (the file's `add_bos_token` overrides it). */
  addBos: boolean;
  split(text: string): string[];
}

const compiled = new Map<string, RegExp[]>();
function familyRegexes(family: string): RegExp[] {
  let r = compiled.get(family);
  if (!r) {
    r = FAMILIES[family].map(compilePattern);
    compiled.set(family, r);
  }
  return r;
}

// llama.cpp matches each regex against a copy of the text in which every non-ASCII whitespace
// character reads as U+000B (src/unicode.cpp, unicode_regex_split: std::regex's \s knows only ASCII
// whitespace). Our \s classes hold U+000B and all of WS alike, so only explicit non-ASCII ranges see the
// difference: DeepSeek's CJK class U+0800-U+4E00 takes U+2005 or U+3000 under Hugging Face's regex
// engine but not under llama.cpp's. We cut as llama.cpp does: the GGUF files are its format.
const NON_ASCII_WS = /[\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/g;

/** Splits `pieces` by one regex, keeping matches and the gaps between them as separate pieces. */
function splitIsolated(pieces: string[], re: RegExp): string[] {
  const out: string[] = [];
  for (const piece of pieces) {
    let last = 0;
    re.lastIndex = 0;
    for (let m = re.exec(piece); m !== null; m = re.exec(piece)) {
      const start = m.index, end = start + m[0].length;
      if (end === start) { // an empty match carries no split; step over it
        re.lastIndex = start + 1;
        continue;
      }
      if (start > last) out.push(piece.slice(last, start));
      out.push(m[0]);
      last = end;
    }
    if (last < piece.length) out.push(piece.slice(last));
  }
  return out;
}

export function makePreTokenizer(name: string | undefined): PreTokenizer {
  const known = name !== undefined ? NAMES[name] : undefined;
  const spec = known ?? NAMES.default;
  const regexes = familyRegexes(spec.family);
  return {
    name: name ?? 'default',
    unknown: name !== undefined && known === undefined,
    ignoreMerges: spec.ignoreMerges ?? false,
    addBos: spec.addBos ?? false,
    split(text: string): string[] {
      const seen = text.replace(NON_ASCII_WS, '\v');
      let pieces = [seen];
      for (const re of regexes) pieces = splitIsolated(pieces, re);
      if (seen === text) return pieces;
      // Each replaced character is one UTF-16 unit, so the pieces' lengths cut `text` at the same places.
      let at = 0;
      return pieces.map((p) => text.slice(at, (at += p.length)));
    },
  };
}

/** Names this module understands (for messages and tests). */
export const knownPreTokenizers = (): string[] => Object.keys(NAMES);
