// The command line over the engine's own code (bundled to dist/cli.js):
//   info | tokenize | make-model | generate | logits | complete | serve
// With --json, stdout holds exactly one JSON object. Bad input: a one-line error on stderr and a
// non-zero exit status (2 = usage, 1 = anything else).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { ModelSession, complete, generate, promptLogits } from './complete';
import { openGGUF, ggmlTypeName } from './gguf';
import { chooseTemplate } from './prompt';
import { makeModel, type MakeModelArch, type MakeModelType } from './makeModel';
import { loadModel } from './model';
import type { CompleteResult, ModelInfo, SpecialTokens } from './protocol';
import { startServer } from './server';
import { Tokenizer } from './tokenizer';

import { version as VERSION } from '../package.json';

class UsageError extends Error {}

const USAGE = `usage: node dist/cli.js <command> [options]
  info       --model F [--json]
  tokenize   --model F (--text-file T | --jsonl) [--json]
  make-model --arch llama|qwen2|starcoder2|starcoder --layers L --embd E --heads H --kv-heads K --ff F
             --ctx C --type Q8_0|... --vocab-from V.gguf --seed S --out F
  generate   --model F (--prompt TEXT | --prompt-ids "1 2 3") --max-tokens N [--temperature 0] [--seed S] [--ignore-eos] [--json]
  logits     --model F --prompt-ids "1 2 3" [--json]
  complete   --model F --prefix-file A [--suffix-file B] [--n 16] [--max-tokens 64] [--temperature 0.8] [--top-k K]
             [--top-p P] [--min-p P] [--seed S] [--single-line] [--no-block-end] [--attention bifurcated|replicated]
             [--context-tokens N] [--stop S]... [--json]
  serve      (JSON-RPC on stdio)
model commands also take --threads N and --ctx N; --model defaults to the bundled model.`;

const never = new Proxy({}, { get: (_t, k) => (k === 'isCancellationRequested' ? false : undefined) }) as { isCancellationRequested: boolean };

/** The bundled model: models/forkcast-default*.gguf beside the package (dist/..). */
export function bundledModel(): string | null {
  for (const dir of [join(__dirname, '..', 'models'), join(__dirname, 'models')]) {
    if (!existsSync(dir)) continue;
    const f = readdirSync(dir).filter((n) => /^forkcast-default.*\.gguf$/.test(n)).sort()[0];
    if (f) return join(dir, f);
  }
  return null;
}

function modelPath(v: string | undefined): string {
  if (v) return v;
  const b = bundledModel();
  if (!b) throw new UsageError('no --model given and no bundled model (models/forkcast-default*.gguf) is installed; pass --model FILE');
  return b;
}

function int(v: string | undefined, name: string, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!/^-?\d+$/.test(v.trim()) || !Number.isSafeInteger(x) || x < lo || x > hi) throw new UsageError(`--${name} must be an integer in ${lo}..${hi} (got "${v}")`);
  return x;
}

function float(v: string | undefined, name: string, lo: number, hi: number): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || x < lo || x > hi) throw new UsageError(`--${name} must be a number in ${lo}..${hi} (got "${v}")`);
  return x;
}

function ids(v: string, name: string): number[] {
  const parts = v.trim().split(/[\s,]+/).filter(Boolean);
  if (parts.length === 0) throw new UsageError(`--${name} is empty`);
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new UsageError(`--${name}: "${p}" is not a token id`);
    return Number(p);
  });
}

function readText(path: string, flag: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new UsageError(`--${flag} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

const print = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

/** Model facts straight from the GGUF (works on vocab-only files and without the addon). */
function describe(path: string): Omit<ModelInfo, 'load_ms'> {
  const { file } = openGGUF(path);
  const arch = file.getString('general.architecture', 'unknown');
  let parameters = 0;
  const types: Record<string, number> = {};
  for (const t of file.tensors) {
    parameters += t.dims.reduce((a, b) => a * b, 1);
    const name = ggmlTypeName(t.type);
    types[name] = (types[name] ?? 0) + 1;
  }
  let special: SpecialTokens = { bos: null, eos: null, eot: null, fim_prefix: null, fim_suffix: null, fim_middle: null, fim_pad: null, fim_rep: null, fim_sep: null };
  let vocab = file.has('tokenizer.ggml.tokens') ? file.getArray('tokenizer.ggml.tokens').length : 0;
  let fim = 'none';
  if (file.has('tokenizer.ggml.model')) {
    const tok = Tokenizer.fromGGUF(file, { warn: (m) => process.stderr.write(`warning: ${m}\n`) });
    special = tok.special;
    vocab = tok.vocabSize;
    fim = chooseTemplate(tok).name;
  }
  return {
    path, name: file.getString('general.name', path.split(/[\\/]/).pop()!), architecture: arch, parameters,
    tensor_types: types, context_length: file.getNumber(`${arch}.context_length`, 0), vocab_size: vocab, special_tokens: special,
    fim_template: fim,
  };
}

function openSession(v: Record<string, string | boolean | undefined | string[]>): ModelSession {
  const path = modelPath(v.model as string | undefined);
  const ctx = int(v.ctx as string | undefined, 'ctx', 16, 1 << 20);
  const threads = int(v.threads as string | undefined, 'threads', 0, 1024);
  const model = loadModel(path, { ctx, threads, warn: (m) => process.stderr.write(`warning: ${m}\n`) });
  return new ModelSession(model, model.ctx, threads);
}

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (!command || command === '--help' || command === '-h' || command === 'help') {
    process.stdout.write(USAGE + '\n');
    return command ? 0 : 2;
  }
  const modelOpts = { model: { type: 'string' }, threads: { type: 'string' }, ctx: { type: 'string' }, json: { type: 'boolean' } } as const;
  const spec: Record<string, Record<string, { type: 'string' | 'boolean'; multiple?: boolean }>> = {
    // info and tokenize run no model; they accept --threads/--ctx (ignored) so scripts can pass them everywhere.
    info: { ...modelOpts },
    tokenize: { ...modelOpts, 'text-file': { type: 'string' }, jsonl: { type: 'boolean' } },
    'make-model': {
      arch: { type: 'string' }, layers: { type: 'string' }, embd: { type: 'string' }, heads: { type: 'string' }, 'kv-heads': { type: 'string' },
      ff: { type: 'string' }, ctx: { type: 'string' }, type: { type: 'string' }, 'vocab-from': { type: 'string' }, seed: { type: 'string' },
      out: { type: 'string' }, json: { type: 'boolean' },
    },
    generate: {
      ...modelOpts, prompt: { type: 'string' }, 'prompt-ids': { type: 'string' }, 'max-tokens': { type: 'string' }, temperature: { type: 'string' },
      seed: { type: 'string' }, 'ignore-eos': { type: 'boolean' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' }, 'min-p': { type: 'string' },
    },
    logits: { ...modelOpts, 'prompt-ids': { type: 'string' } },
    complete: {
      ...modelOpts, 'prefix-file': { type: 'string' }, 'suffix-file': { type: 'string' }, n: { type: 'string' }, 'max-tokens': { type: 'string' },
      temperature: { type: 'string' }, 'top-k': { type: 'string' }, 'top-p': { type: 'string' }, 'min-p': { type: 'string' }, seed: { type: 'string' },
      'single-line': { type: 'boolean' }, 'no-block-end': { type: 'boolean' }, attention: { type: 'string' }, 'context-tokens': { type: 'string' }, stop: { type: 'string', multiple: true },
    },
    serve: { threads: { type: 'string' }, ctx: { type: 'string' } },
  };
  if (!spec[command]) throw new UsageError(`unknown command "${command}" (commands: ${Object.keys(spec).join(', ')})`);
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: argv.slice(1), options: spec[command], strict: true, allowPositionals: false }));
  } catch (e) {
    throw new UsageError(`${command}: ${(e as Error).message.split('\n')[0]}`);
  }
  const v = values as Record<string, string | undefined> & { json?: boolean };
  const need = (k: string) => { if (v[k] === undefined) throw new UsageError(`${command}: --${k} is required`); return v[k] as string; };

  switch (command) {
    case 'info': {
      const info = describe(modelPath(v.model));
      if (v.json) print(info);
      else {
        process.stdout.write(`${info.name}: ${info.architecture}, ${info.parameters.toLocaleString('en')} parameters, context ${info.context_length}, vocab ${info.vocab_size}\n`);
        process.stdout.write(`tensor types: ${Object.entries(info.tensor_types).map(([k, n]) => `${k} x${n}`).join(', ') || 'none'}\n`);
        process.stdout.write(`special tokens: ${Object.entries(info.special_tokens).map(([k, id]) => `${k}=${id}`).join(' ')}\n`);
        process.stdout.write(`fill-in-the-middle template: ${info.fim_template}\n`);
      }
      return 0;
    }
    case 'tokenize': {
      const { file } = openGGUF(modelPath(v.model));
      const tok = Tokenizer.fromGGUF(file, { warn: (m) => process.stderr.write(`warning: ${m}\n`) });
      if (values.jsonl) {
        const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
        let line = 0;
        for await (const l of rl) {
          line++;
          if (l.trim() === '') continue;
          let text: unknown;
          try { text = JSON.parse(l); } catch { throw new UsageError(`tokenize --jsonl: line ${line} is not JSON`); }
          if (typeof text !== 'string') throw new UsageError(`tokenize --jsonl: line ${line} is not a JSON string`);
          process.stdout.write(JSON.stringify({ ids: tok.encode(text) }) + '\n');
        }
        return 0;
      }
      const r = tok.encode(readText(need('text-file'), 'text-file'));
      if (v.json) print({ ids: r });
      else process.stdout.write(r.join(' ') + '\n');
      return 0;
    }
    case 'make-model': {
      const r = makeModel({
        arch: need('arch') as MakeModelArch,
        layers: int(need('layers'), 'layers', 1, 1024)!, embd: int(need('embd'), 'embd', 1, 1 << 16)!,
        heads: int(need('heads'), 'heads', 1, 1024)!, kvHeads: int(need('kv-heads'), 'kv-heads', 1, 1024)!,
        ff: int(need('ff'), 'ff', 1, 1 << 18)!, ctx: int(need('ctx'), 'ctx', 1, 1 << 20)!, type: need('type') as MakeModelType,
        vocabFrom: need('vocab-from'), seed: int(v.seed ?? '0', 'seed', 0, 2 ** 32 - 1)!, out: need('out'),
        onWarning: (l) => process.stderr.write(`warning: ${l}\n`),
      });
      if (v.json) print(r);
      else process.stdout.write(`wrote ${r.path}: ${r.parameters.toLocaleString('en')} parameters, ${(r.bytes / 1048576).toFixed(1)} MiB, ${Object.entries(r.tensorTypes).map(([k, n]) => `${k} x${n}`).join(', ')}\n`);
      return 0;
    }
    case 'generate': {
      if ((v.prompt === undefined) === (v['prompt-ids'] === undefined)) throw new UsageError('generate: give exactly one of --prompt and --prompt-ids');
      const maxTokens = int(need('max-tokens'), 'max-tokens', 1, 2048)!;
      const temperature = float(v.temperature, 'temperature', 0, 10) ?? 0;
      const seed = int(v.seed, 'seed', 0, Number.MAX_SAFE_INTEGER);
      const topK = int(v['top-k'], 'top-k', 0, 1e9), topP = float(v['top-p'], 'top-p', 0, 1), minP = float(v['min-p'], 'min-p', 0, 1);
      const promptIdsArg = v['prompt-ids'] !== undefined ? ids(v['prompt-ids'], 'prompt-ids') : null;
      const session = openSession(v);
      try {
        const tok = session.model.tokenizer;
        let prompt = promptIdsArg;
        if (!prompt) {
          prompt = tok.encode(v.prompt!);
          if (tok.addBos && tok.special.bos !== null) prompt.unshift(tok.special.bos);
        }
        const r = await generate(session, prompt, { maxTokens, temperature, seed, ignoreEos: !!values['ignore-eos'], topK, topP, minP }, never);
        if (v.json) print({ ids: r.ids, text: r.text, timings: r.timings });
        else {
          process.stdout.write(r.text + '\n');
          const t = r.timings;
          process.stderr.write(`prompt ${t.prompt_tokens} tokens in ${t.prefill_ms.toFixed(1)} ms (${(t.prompt_tokens / t.prefill_ms * 1000).toFixed(1)} tok/s), ` +
            `generated ${t.generated_tokens} in ${t.decode_ms.toFixed(1)} ms (${(t.generated_tokens / Math.max(t.decode_ms, 1e-9) * 1000).toFixed(1)} tok/s)\n`);
        }
      } finally {
        session.dispose();
      }
      return 0;
    }
    case 'logits': {
      const prompt = ids(need('prompt-ids'), 'prompt-ids');
      const session = openSession(v);
      try {
        const logits = await promptLogits(session, prompt, never);
        if (v.json) print({ logits: Array.from(logits) });
        else {
          const top = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]).slice(0, 10);
          for (const id of top) process.stdout.write(`${id}\t${logits[id].toFixed(4)}\t${JSON.stringify(session.model.tokenizer.tokenText(id))}\n`);
        }
      } finally {
        session.dispose();
      }
      return 0;
    }
    case 'complete': {
      const prefix = readText(need('prefix-file'), 'prefix-file');
      const suffix = v['suffix-file'] !== undefined ? readText(v['suffix-file'], 'suffix-file') : '';
      const attention = v.attention ?? 'bifurcated';
      if (attention !== 'bifurcated' && attention !== 'replicated') throw new UsageError('--attention must be bifurcated or replicated');
      const params = {
        prefix, suffix,
        n: int(v.n, 'n', 1, 64) ?? 16,
        maxTokens: int(v['max-tokens'], 'max-tokens', 1, 2048) ?? 64,
        temperature: float(v.temperature, 'temperature', 0, 10) ?? 0.8,
        topK: int(v['top-k'], 'top-k', 0, 1e9), topP: float(v['top-p'], 'top-p', 0, 1), minP: float(v['min-p'], 'min-p', 0, 1),
        seed: int(v.seed, 'seed', 0, Number.MAX_SAFE_INTEGER),
        singleLine: !!values['single-line'],
        stopAtBlockEnd: !values['no-block-end'],
        attention: attention as 'bifurcated' | 'replicated',
        contextTokens: int(v['context-tokens'], 'context-tokens', 16, 1 << 20),
        stop: values.stop as string[] | undefined,
      };
      const session = openSession(v);
      try {
        const r = await complete(session, params, never);
        if (v.json) print(r);
        else printCandidates(r, session);
      } finally {
        session.dispose();
      }
      return 0;
    }
    case 'serve': {
      const ctx = int(v.ctx, 'ctx', 16, 1 << 20);
      startServer({
        load: (path, o) => loadModel(path, { ...o, ctx: o.ctx ?? ctx }),
        defaultModel: bundledModel,
        version: VERSION,
        threads: int(v.threads, 'threads', 0, 1024),
      });
      return -1; // keeps running
    }
  }
  return 2;
}

function printCandidates(r: CompleteResult, session: ModelSession) {
  const out = process.stdout;
  out.write(`FIM template: ${session.template.name}\n`);
  r.candidates.forEach((c, i) => {
    out.write(`#${i + 1}  score ${c.score.toFixed(3)}  logprob ${c.logprob.toFixed(3)}  x${c.count}  ${c.tokens} tokens  (${c.finish})${c.filtered ? '  [filtered]' : ''}\n`);
    out.write(`    ${c.reasons.join('; ')}\n`);
    out.write(c.text.split('\n').map((l) => `  | ${l}`).join('\n') + '\n');
  });
  const t = r.timings;
  out.write(`prompt ${t.prompt_tokens} tokens (${t.reused_tokens} reused) in ${t.prefill_ms.toFixed(1)} ms; ` +
    `${t.generated_tokens} sample tokens in ${t.decode_ms.toFixed(1)} ms (${(t.generated_tokens / Math.max(t.decode_ms, 1e-9) * 1000).toFixed(1)} tok/s); ` +
    `total ${t.total_ms.toFixed(1)} ms; KV ${(r.memory.kv_bytes / 1048576).toFixed(2)} MiB\n`);
}

main(process.argv.slice(2)).then(
  (code) => { if (code >= 0) process.exitCode = code; },
  (e: unknown) => {
    const msg = (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' ');
    process.stderr.write(`forkcast: ${msg}${e instanceof UsageError ? ' (see node dist/cli.js --help)' : ''}\n`);
    process.exitCode = e instanceof UsageError ? 2 : 1;
  },
);
