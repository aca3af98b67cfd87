// `npm run bench` (suite "complete", issue 4): the whole `complete` request, bifurcated vs replicated
// attention, side by side in one run, on a random-weight model of Qwen2.5-Coder-0.5B's shape in Q8_0
// (written by the project's make-model, see bench/models.ts) with a 2048-token prompt.
//
// What runs: engine/complete.ts `complete(session, params)` exactly as the JSON-RPC server calls it:
// FIM prompt built from real source text (this repository's engine/*.ts, cut by the prompt builder to a
// 2048-token budget), prefill once, n samples decoded together until each has max_tokens tokens, rerank.
// The prompt KV of the previous request is forgotten before each run (session.promptIds = []) so every
// run prefills the whole prompt; one untimed warm-up request per mode and n comes first. Temperature 0.8 with a fixed seed: both modes draw the same random
// streams, so they decode the same number of tokens unless a candidate hits EOS at a different step
// (the table shows generated tokens per mode, and whether the candidates came out the same).
// kv_bytes is the KV the request actually holds (the native caches commit memory as they are written):
// one prompt KV plus every sample's decoded tokens (replicated: plus n copies of the prompt KV). So the
// n=64 rows decode the full max_tokens too; --n64-tokens=N shortens them when time is short (their
// memory then reflects N tokens, and the table says so in "max tokens").
//
// Args (after `--`): --quick (n=1,16,64 only), --reps=N (best of N, modes interleaved), --threads=N
// (default 2), --max-tokens=N (default 64), --n64-tokens=N (default max-tokens), --ns=1,4,16,64, --file=PATH.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { loadModel, type Model } from '../engine/model';
import { complete, ModelSession } from '../engine/complete';
import { buildPrompt, chooseTemplate } from '../engine/prompt';
import type { AttentionMode } from '../engine/native';
import type { CompleteResult } from '../engine/protocol';
import { ensureBenchModels } from './models';
import { repoRoot } from './bandwidth';
import { printTable, ratio, bytes, type Row } from './table';

const PROMPT_TOKENS = 2048;
const SEED = 7;
const MODES: AttentionMode[] = ['bifurcated', 'replicated'];

interface Args { quick: boolean; reps: number; threads: number; maxTokens: number; n64Tokens: number; ns: number[]; file?: string }

function parseArgs(argv: string[]): Args {
  const get = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.slice(k.length + 3);
  const quick = argv.includes('--quick');
  const a: Args = {
    quick, reps: Number(get('reps') ?? 1), threads: Number(get('threads') ?? 2), maxTokens: Number(get('max-tokens') ?? 64),
    n64Tokens: Number(get('n64-tokens') ?? get('max-tokens') ?? 64),
    ns: (get('ns') ?? (quick ? '1,16,64' : '1,4,16,64')).split(',').map(Number), file: get('file'),
  };
  if (!(a.reps >= 1 && a.threads >= 1 && a.maxTokens >= 1 && a.maxTokens <= 2048 && a.n64Tokens >= 1) || !a.ns.every((n) => n >= 1 && n <= 64)) {
    throw new Error('complete bench: bad --reps/--threads/--max-tokens/--ns');
  }
  return a;
}

/**
 * Real code for the prompt: this repository's engine sources concatenated (far more than 2048 tokens),
 * the cursor at a line start two thirds of the way in, so the FIM prompt has both a prefix and a suffix.
 */
function promptText(): { prefix: string; suffix: string } {
  const dir = join(repoRoot(), 'engine');
  const files = readdirSync(dir).filter((f) => f.endsWith('.ts')).sort();
  const text = files.map((f) => `// ${f}\n${readFileSync(join(dir, f), 'utf8')}`).join('\n');
  const cut = text.indexOf('\n', Math.floor((text.length * 2) / 3)) + 1;
  return { prefix: text.slice(0, cut), suffix: text.slice(cut) };
}

/**
 * The `contextTokens` budget that makes the prompt builder's prompt as close to `target` tokens as
 * it gets without passing it (the builder keeps slack below the budget and whole lines only).
 */
function budgetFor(model: Model, text: { prefix: string; suffix: string }, target: number): { budget: number; tokens: number } {
  const template = chooseTemplate(model.tokenizer);
  const len = (b: number) => buildPrompt(model.tokenizer, template, text.prefix, text.suffix, b).ids.length;
  let lo = 16, hi = target * 2;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (len(mid) <= target) lo = mid;
    else hi = mid - 1;
  }
  return { budget: lo, tokens: len(lo) };
}

interface Run { res: CompleteResult; texts: string[] }

async function runOnce(session: ModelSession, text: { prefix: string; suffix: string }, budget: number, n: number,
  mode: AttentionMode, maxTokens: number): Promise<Run> {
  session.promptIds = []; // forget the previous request's prompt KV: prefill all of it
  session.prefixAnchor = null; // and its prefix cut, so every run builds the same prompt
  const res = await complete(session, {
    prefix: text.prefix, suffix: text.suffix, n, maxTokens, temperature: 0.8, seed: SEED, attention: mode, contextTokens: budget,
  }, { isCancellationRequested: false });
  // Every sample's text, merged candidates expanded by their count, sorted: compares the two modes.
  const texts = res.candidates.flatMap((c) => Array<string>(c.count).fill(c.text)).sort();
  return { res, texts };
}

function sameCandidates(a: Run, b: Run): string {
  let diff = 0;
  const bs = new Map<string, number>();
  for (const t of b.texts) bs.set(t, (bs.get(t) ?? 0) + 1);
  for (const t of a.texts) {
    const k = bs.get(t) ?? 0;
    if (k > 0) bs.set(t, k - 1);
    else diff++;
  }
  return diff === 0 ? 'same' : `${diff} of ${a.texts.length} differ`;
}

export async function benchComplete(): Promise<void> {
  const a = parseArgs(process.argv.slice(2));
  const [m] = a.file ? [{ path: a.file, note: 'given with --file' }]
    : await ensureBenchModels(['qwen2.5-coder-0.5b-shape Q8_0'], (l) => console.log(l));
  const model: Model = loadModel(m.path, { threads: a.threads, ctx: PROMPT_TOKENS * 2 });
  const text = promptText();
  const { budget, tokens } = budgetFor(model, text, PROMPT_TOKENS);
  console.log(`model: ${m.path} (${m.note}), threads ${a.threads}, FIM prompt of ${tokens} tokens from engine/*.ts, ` +
    `max_tokens ${a.maxTokens}, temperature 0.8, seed ${SEED}, best of ${a.reps} (modes interleaved)`);
  const rows: Row[] = [];
  const ratios: Row[] = [];
  try {
    for (const n of a.ns) {
      const maxTokens = n === 64 ? Math.min(a.n64Tokens, a.maxTokens) : a.maxTokens;
      // One session (one native context) per n, created before timing; both modes share it.
      const session = new ModelSession(model, PROMPT_TOKENS * 2, a.threads);
      session.context(n, a.maxTokens);
      const best: Partial<Record<AttentionMode, Run>> = {};
      try {
        // Untimed warm-up of both modes (first touches of the new context's caches and of the weights),
        // then the timed runs with the order of the modes alternating, so neither always goes first.
        for (const mode of MODES) await runOnce(session, text, budget, n, mode, 1);
        for (let r = 0; r < a.reps; r++) {
          for (const mode of r % 2 === 0 ? MODES : [...MODES].reverse()) {
            const run = await runOnce(session, text, budget, n, mode, maxTokens);
            const prev = best[mode];
            if (!prev || run.res.timings.total_ms < prev.res.timings.total_ms) best[mode] = run;
          }
        }
      } finally {
        session.dispose();
      }
      const before = rows.length;
      for (const mode of MODES) {
        const t = best[mode]!.res.timings;
        rows.push({
          n, attention: mode, 'max tokens': maxTokens, 'prompt tokens': t.prompt_tokens, 'generated': t.generated_tokens,
          prefill_ms: t.prefill_ms, decode_ms: t.decode_ms, total_ms: t.total_ms,
          'sample tok/s (decode)': (t.generated_tokens * 1000) / t.decode_ms,
          'sample tok/s (total)': (t.generated_tokens * 1000) / t.total_ms,
          kv_bytes: bytes(best[mode]!.res.memory.kv_bytes),
        });
      }
      printTable(rows.slice(before)); // as it goes: a long run that is stopped still leaves its figures
      const bi = best.bifurcated!.res, re = best.replicated!.res;
      ratios.push({
        n,
        'total speedup (repl/bif)': ratio(re.timings.total_ms, bi.timings.total_ms),
        'decode speedup (repl/bif)': ratio(re.timings.decode_ms, bi.timings.decode_ms),
        'KV repl/bif': ratio(re.memory.kv_bytes, bi.memory.kv_bytes),
        'generated equal': bi.timings.generated_tokens === re.timings.generated_tokens ? 'yes' : `no (${bi.timings.generated_tokens} vs ${re.timings.generated_tokens})`,
        candidates: sameCandidates(best.bifurcated!, best.replicated!),
        _kv: bi.memory.kv_bytes,
      });
    }
  } finally {
    model.dispose();
  }
  printTable(rows, `complete: bifurcated vs replicated (${a.file ? basename(a.file) : 'Qwen2.5-Coder-0.5B shape, Q8_0, random weights'})`);
  const kv1 = ratios.find((r) => r.n === 1)?._kv as number | undefined;
  printTable(ratios.map(({ _kv, ...r }) => ({ ...r, 'bifurcated KV vs n=1': ratio(_kv as number, kv1) })),
    'complete: ratios (goals: n=16 total >= 1.5x; bifurcated KV at n=64 within 1.5x of n=1)');
}
