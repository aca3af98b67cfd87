// `npm run bench -- peers`: Forkcast against llama.cpp on the same GGUF files, same thread count,
// same prompt tokens, side by side in one run (issue 6).
//
// Rows, per model file:
//   pp   prompt processing: 512 tokens into an empty cache, one call (tokens/s = 512 / time).
//   tg   generation: 128 single-token steps after a 1-token warm-up, feeding the same fixed token ids
//        on both sides (tokens/s = 128 / time); each side reads the logits and takes their argmax.
//   n16  16 candidates of 64 tokens from one 1024-token prompt, sampled (T=0.8, top-k 40, min-p 0.05,
//        top-p 0.95, one seeded stream per candidate); "tok/s" = 16*64 / total request time.
// Each side:
//   Forkcast    engine/model.ts loadModel -> createContext; pp = evalPrompt(512 ids); tg = evalPrompt(1 id),
//               beginSamples(1) and 128 steps; n16 = evalPrompt(1024 ids), beginSamples(16, 'bifurcated')
//               and 63 steps of all 16 slots, engine/sampler.ts per candidate. Each step goes through
//               engine/complete.ts decodeStep as in the engine (short steps on the calling thread).
//   llama.cpp   pp/tg through node-llama-cpp (prebuilt CPU binaries, getLlama({gpu:false})):
//               sequence.evaluateWithoutGeneratingNewTokens(512 ids) and sequence.evaluate() driven token by
//               token with the same ids. The same rows through our C harness (bench/llama-harness/harness.cpp,
//               llama.cpp's C API on the same shipped libraries) are printed too, as a check that the harness
//               is not slower than node-llama-cpp. n16 through the harness only, given its best chance: unified
//               KV cache, the prompt decoded once and shared with llama_memory_seq_cp, all 16 sequences decoded
//               in one llama_batch per step, llama.cpp's own sampler chain with the same knobs per sequence.
// Time is the best of `reps` runs per side, the two sides interleaved, because this machine is shared:
// the best run is the one least disturbed by other processes.
//
// Args (after `--`): --quick (one model, one rep), --models=a,b (see bench/models.ts; substrings match),
// --reps=N (pp/tg, default 2), --par-reps=N (n16, default 1),
// --file=PATH (any GGUF instead), --rows=pp,tg,n16, --threads=N (default 2),
// --fa=auto|on|off (llama.cpp flash attention), --harness-check=first|all|none (the harness's pp/tg
// rows, which check it against node-llama-cpp: first model only by default).
import { execFileSync, fork, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { basename, join } from 'node:path';
import { openGGUF } from '../engine/gguf';
import { Rng, Sampler, argmax, DEFAULT_SAMPLER } from '../engine/sampler';
import { measureBandwidth, repoRoot, compileIfStale, lastLevelCacheBytes, type Bandwidth } from './bandwidth';
import { printTable, ratio, bytes, type Row } from './table';
import { ensureBenchModels, vocabSize, type BenchModel } from './models';

const PP_TOKENS = 512;
const TG_TOKENS = 128;
const PAR_PROMPT = 1024;
const PAR_N = 16;
const PAR_GEN = 64;
const SEED = 1234;

interface PeersArgs {
  quick: boolean;
  models: string[] | null;
  file: string | undefined;
  rows: Set<string>;
  reps: number;
  parReps: number;
  harnessCheck: 'first' | 'all' | 'none';
  threads: number;
  fa: 'auto' | 'on' | 'off';
}

function parseArgs(argv: string[]): PeersArgs {
  const get = (k: string) => argv.find((a) => a.startsWith(`--${k}=`))?.slice(k.length + 3);
  const quick = argv.includes('--quick');
  const fa = (get('fa') ?? 'auto') as PeersArgs['fa'];
  if (!['auto', 'on', 'off'].includes(fa)) throw new Error(`--fa=${fa}: expected auto, on or off`);
  const threads = Number(get('threads') ?? 2);
  const reps = Number(get('reps') ?? (quick ? 1 : 2));
  const parReps = Number(get('par-reps') ?? 1);
  const harnessCheck = (get('harness-check') ?? 'first') as PeersArgs['harnessCheck'];
  if (!['first', 'all', 'none'].includes(harnessCheck)) throw new Error(`--harness-check=${harnessCheck}: expected first, all or none`);
  if (!(threads >= 1 && threads <= 256) || !(reps >= 1 && reps <= 50) || !(parReps >= 1 && parReps <= 50)) throw new Error('--threads/--reps out of range');
  return {
    quick,
    models: get('models')?.split(',').filter(Boolean) ?? null,
    file: get('file'),
    rows: new Set((get('rows') ?? 'pp,tg,n16').split(',')),
    reps,
    parReps,
    harnessCheck,
    threads,
    fa,
  };
}

/** Deterministic prompt ids shared by both sides: ordinary (non-special) vocabulary entries. */
export function benchTokens(nVocab: number, count: number, seed = SEED): number[] {
  const lo = Math.min(1000, Math.floor(nVocab / 4));
  const hi = Math.min(nVocab, 30000);
  const rng = new Rng(seed, 7);
  return Array.from({ length: count }, () => lo + Math.floor(rng.next() * (hi - lo)));
}

/** Bytes of weights one decode step reads: every tensor but the embedding table (one row per token), unless it is also the output. */
export function weightBytesPerToken(path: string): { perToken: number; total: number } {
  const { file, map } = openGGUF(path);
  map.close(); // only the header is needed
  const tied = !file.tensors.some((t) => t.name === 'output.weight');
  let total = 0;
  let perToken = 0;
  for (const t of file.tensors) {
    total += t.size;
    if (t.name !== 'token_embd.weight' || tied) perToken += t.size;
  }
  return { perToken, total };
}

// ---------------------------------------------------------------------------------------------
// llama.cpp: node-llama-cpp, in a child process (bench/nodeLlamaWorker.mjs says why)

interface LlamaSide {
  pp(tokens: number[]): Promise<number>;
  tg(tokens: number[]): Promise<number>;
  dispose(): Promise<void>;
}

async function openNodeLlama(path: string, threads: number, fa: PeersArgs['fa']): Promise<LlamaSide> {
  const child = fork(join(repoRoot(), 'bench', 'nodeLlamaWorker.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, { resolve: (v: number) => void; reject: (e: Error) => void }>();
  let next = 0;
  child.on('message', (m: { id: number; value?: number; error?: string }) => {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error !== undefined) p?.reject(new Error(m.error));
    else p?.resolve(m.value ?? 0);
  });
  child.on('exit', (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`node-llama-cpp worker exited (${signal ?? code})`));
    pending.clear();
  });
  const call = (op: string, args: Record<string, unknown> = {}) =>
    new Promise<number>((resolve, reject) => {
      const id = next++;
      pending.set(id, { resolve, reject });
      child.send({ id, op, ...args });
    });
  await call('open', { path, threads, fa, ppTokens: PP_TOKENS, contextSize: PP_TOKENS + TG_TOKENS + 256 });
  return {
    pp: (tokens) => call('pp', { tokens: tokens.slice(0, PP_TOKENS), n: PP_TOKENS }),
    tg: (tokens) => call('tg', { tokens: tokens.slice(0, TG_TOKENS + 1), n: TG_TOKENS }),
    async dispose() {
      await call('dispose').catch(() => undefined);
      if (child.exitCode === null) child.kill();
    },
  };
}

/**
 * node-llama-cpp in a child process (this bundle re-run with --nl-child): llama.cpp's prebuilt CPU
 * variant for this CPU (sapphirerapids) sometimes dies here with SIGILL, and a crash must cost one
 * measurement, not the whole benchmark. One retry per call.
 */
function nodeLlamaChild(path: string, a: PeersArgs, row: 'pp' | 'tg', tokFile: string): LlamaSide {
  const run = (): number => {
    const args = [process.argv[1], 'peers', `--nl-child=${path}`, `--nl-row=${row}`, `--nl-tokens=${tokFile}`, `--threads=${a.threads}`, `--fa=${a.fa}`];
    const out = execFileSync(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 20 }).toString();
    const line = out.trim().split('\n').pop()!;
    return (JSON.parse(line) as { ms: number }).ms;
  };
  const once = async () => {
    try {
      return run();
    } catch (e) {
      const sig = (e as { signal?: string }).signal;
      if (!sig) throw e;
      console.log(`  (node-llama-cpp child died with ${sig}; retrying once)`);
      return run();
    }
  };
  return { pp: once, tg: once, dispose: async () => {} };
}

/** The child's side of nodeLlamaChild: one measurement, printed as a JSON line. */
async function nodeLlamaChildMain(argv: string[]): Promise<void> {
  const get = (k: string) => argv.find((x) => x.startsWith(`--${k}=`))?.slice(k.length + 3);
  const tokens = readFileSync(get('nl-tokens')!, 'utf8').trim().split(/\s+/).map(Number);
  const side = await openNodeLlama(get('nl-child')!, Number(get('threads') ?? 2), (get('fa') ?? 'auto') as PeersArgs['fa']);
  const ms = await side[get('nl-row') as 'pp' | 'tg'](tokens);
  console.log(JSON.stringify({ ms }));
  await side.dispose();
}

// ---------------------------------------------------------------------------------------------
// llama.cpp: our C harness over the shared libraries node-llama-cpp ships

interface Harness {
  exe: string;
  bins: string;
  libs: string;
}

/** Where node-llama-cpp's prebuilt CPU binaries for this platform live. */
function llamaBinsDir(root: string): string {
  const plat = `${process.platform}-${process.arch}`;
  return join(root, 'node_modules', '@node-llama-cpp', plat, 'bins', plat);
}

/**
 * Compiles bench/llama-harness/harness.cpp against llama.h from node-llama-cpp's own llama.cpp release
 * (the git bundle it ships, cloned once into .cache/llamasrc) and links it to the shipped libraries.
 */
export function buildHarness(): Harness | { error: string } {
  const root = repoRoot();
  const bins = llamaBinsDir(root);
  if (!existsSync(bins)) return { error: `no prebuilt llama.cpp binaries at ${bins}` };
  const files = readdirSync(bins);
  const llamaLib = files.find((f) => /^libllama(\.v[\d.]+)?\.so$/.test(f));
  const ggmlLib = files.find((f) => /^libggml(\.v[\d.]+)?\.so$/.test(f));
  const baseLib = files.find((f) => f === 'libggml-base.so');
  if (!llamaLib || !ggmlLib || !baseLib) return { error: `libllama/libggml not found in ${bins}` };
  const src = join(root, '.cache', 'llamasrc');
  if (!existsSync(join(src, 'include', 'llama.h'))) {
    const bundle = join(root, 'node_modules', 'node-llama-cpp', 'llama', 'gitRelease.bundle');
    if (!existsSync(bundle)) return { error: `no llama.cpp source bundle at ${bundle}` };
    const r = spawnSync('git', ['clone', '-q', bundle, src], { stdio: ['ignore', 'ignore', 'pipe'] });
    if (r.status !== 0) return { error: `git clone of the llama.cpp bundle failed: ${r.stderr}` };
  }
  const exe = join(root, '.cache', 'bench-bin', 'llama-harness');
  const built = compileIfStale('g++', join(root, 'bench', 'llama-harness', 'harness.cpp'), exe, [
    '-O2', '-std=c++17', `-I${join(src, 'include')}`, `-I${join(src, 'ggml', 'include')}`,
    `-L${bins}`, `-Wl,-rpath,${bins}`,
  ], [llamaLib, ggmlLib, baseLib].map((l) => `-l:${l}`));
  if (!built.ok) return { error: `harness compile failed: ${built.why}` };
  return { exe, bins, libs: [llamaLib, ggmlLib, baseLib].join(' ') };
}

interface HarnessPp { mode: 'pp' | 'tg'; ms: number }
interface HarnessPar { mode: 'par'; prefill_ms: number; decode_ms: number; total_ms: number; first_differs: number }

function runHarness<T>(h: Harness, model: string, tokFile: string, args: Record<string, string | number>): T[] {
  const argv = ['--model', model, '--bins', h.bins, '--tokens', tokFile];
  for (const [k, v] of Object.entries(args)) argv.push(`--${k}`, String(v));
  const exec = () => execFileSync(h.exe, argv, { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 1 << 20 }).toString();
  let out: string;
  try {
    out = exec();
  } catch (e) {
    const sig = (e as { signal?: string }).signal;
    if (!sig) throw e;
    console.log(`  (llama.cpp harness died with ${sig}; retrying once)`);
    out = exec();
  }
  return out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as T);
}

// ---------------------------------------------------------------------------------------------
// Forkcast

interface ParResult { prefill_ms: number; decode_ms: number; total_ms: number; kv_prompt_bytes: number }

interface ForkcastSide {
  pp(tokens: number[]): Promise<number>;
  tg(tokens: number[]): Promise<number>;
  par(tokens: number[]): Promise<ParResult>;
  dispose(): void;
}

const NEVER = { isCancellationRequested: false };

async function openForkcast(path: string, threads: number): Promise<ForkcastSide> {
  const { loadModel } = await import('../engine/model');
  const { nativeRowStats } = await import('../engine/native');
  const { decodeStep } = await import('../engine/complete');
  const model = loadModel(path, { threads, ctx: PAR_PROMPT + 64 });
  const ctx = model.createContext({ ctx: PAR_PROMPT + 64, maxSamples: PAR_N, maxDecode: TG_TOKENS + 8, threads });
  const sampler = new Sampler({ ...DEFAULT_SAMPLER }, nativeRowStats());
  return {
    async pp(tokens) {
      const t0 = performance.now();
      await ctx.evalPrompt(Int32Array.from(tokens.slice(0, PP_TOKENS)), 0);
      return performance.now() - t0;
    },
    async tg(tokens) {
      await ctx.evalPrompt(Int32Array.of(tokens[0]), 0);
      ctx.beginSamples(1, 'bifurcated');
      const slot = Int32Array.of(0);
      const t0 = performance.now();
      const pace = { ms: Infinity }, out = new Float32Array(model.spec.n_vocab); // as engine/complete.ts steps
      for (let i = 1; i <= TG_TOKENS; i++) argmax(await decodeStep(ctx, slot, Int32Array.of(tokens[i]), pace, NEVER, out));
      return performance.now() - t0;
    },
    async par(tokens) {
      const V = model.spec.n_vocab;
      const rngs = Array.from({ length: PAR_N }, (_, s) => new Rng(SEED, s));
      const t0 = performance.now();
      const last = await ctx.evalPrompt(Int32Array.from(tokens.slice(0, PAR_PROMPT)), 0);
      const kvPrompt = ctx.kvBytes();
      ctx.beginSamples(PAR_N, 'bifurcated');
      const slots = Int32Array.from({ length: PAR_N }, (_, s) => s);
      const next = Int32Array.from(rngs, (r) => sampler.sample(last, r).id);
      const t1 = performance.now();
      const pace = { ms: Infinity }, out = new Float32Array(PAR_N * V);
      for (let step = 1; step < PAR_GEN; step++) {
        const logits = await decodeStep(ctx, slots, next, pace, NEVER, out);
        sampler.sampleRows(logits, V, rngs).forEach((d, s) => { next[s] = d.id; });
      }
      const t2 = performance.now();
      return { prefill_ms: t1 - t0, decode_ms: t2 - t1, total_ms: t2 - t0, kv_prompt_bytes: kvPrompt };
    },
    dispose() {
      ctx.dispose();
      model.dispose();
    },
  };
}

// ---------------------------------------------------------------------------------------------

const best = (xs: number[]) => Math.min(...xs);
const tps = (n: number, ms: number | undefined) => (ms === undefined ? undefined : (n * 1000) / ms);

async function tryOr<T>(what: string, errors: string[], fn: () => Promise<T> | T): Promise<T | undefined> {
  try {
    return await fn();
  } catch (e) {
    errors.push(`${what}: ${(e as Error).message.split('\n')[0]}`);
    return undefined;
  }
}

async function benchModel(m: BenchModel, a: PeersArgs, bw: Bandwidth, h: Harness | undefined, harnessPpTg: boolean, rows: Row[], errors: string[]) {
  const nVocab = m.vocab;
  const tokens = benchTokens(nVocab, PAR_PROMPT + TG_TOKENS + 8);
  const tokFile = join(repoRoot(), '.cache', 'bench-bin', `tokens-${nVocab}.txt`);
  writeFileSync(tokFile, tokens.join(' ') + '\n');
  const { perToken } = weightBytesPerToken(m.path);
  // Weights that fit in the last-level cache can be read faster than DRAM streams: the bound is then no bound.
  const llc = lastLevelCacheBytes();
  const fitsLLC = llc !== undefined && perToken <= llc ? ` (weights ${bytes(perToken)} fit in the ${bytes(llc)} LLC)` : '';

  const fc = await tryOr(`${m.name} Forkcast load`, errors, () => openForkcast(m.path, a.threads));
  const nlPp = nodeLlamaChild(m.path, a, 'pp', tokFile);
  const nlTg = nodeLlamaChild(m.path, a, 'tg', tokFile);
  const nl = { pp: nlPp.pp, tg: nlTg.tg, dispose: async () => {} };
  const harnessArgs = { threads: a.threads, fa: a.fa };
  try {
    for (const row of ['pp', 'tg'] as const) {
      if (!a.rows.has(row)) continue;
      const n = row === 'pp' ? PP_TOKENS : TG_TOKENS;
      const fcMs: number[] = [], nlMs: number[] = [], hMs: number[] = [];
      // One harness process per rep, interleaved with the other sides: on these VMs a llama.cpp
      // process now and then runs a whole generation ~15x slower (~16 ms per token of the 31M model:
      // perf stat shows its two spinning threads sharing ~1 CPU while the guest is otherwise idle),
      // so reps inside one process would all share one bad draw. A small model's runs take a
      // fraction of a second, so there every side gets three draws per rep (the best counts).
      const draws = perToken < 256 * 2 ** 20 ? 3 : 1;
      for (let r = 0; r < a.reps * draws; r++) {
        if (fc) { const v = await tryOr(`${m.name} Forkcast ${row}`, errors, () => fc[row](tokens)); if (v !== undefined) fcMs.push(v); }
        if (nl) { const v = await tryOr(`${m.name} node-llama-cpp ${row}`, errors, () => nl[row](tokens)); if (v !== undefined) nlMs.push(v); }
        if (h && harnessPpTg) {
          const out = await tryOr(`${m.name} harness ${row}`, errors, () =>
            runHarness<HarnessPp>(h, m.path, tokFile, { ...harnessArgs, mode: row, reps: 1, 'n-prompt': PP_TOKENS, 'n-gen': TG_TOKENS }));
          if (out) hMs.push(...out.map((o) => o.ms));
        }
      }
      const f = tps(n, fcMs.length ? best(fcMs) : undefined);
      const l = tps(n, nlMs.length ? best(nlMs) : undefined);
      const hh = tps(n, hMs.length ? best(hMs) : undefined);
      const bound = row === 'tg' ? bw.bytesPerSec / perToken : undefined;
      rows.push({
        model: m.name, test: row === 'pp' ? `pp${PP_TOKENS}` : `tg${TG_TOKENS}`,
        'Forkcast tok/s': f, 'llama.cpp tok/s': l, 'llama.cpp harness tok/s': hh,
        // Against llama.cpp's better figure of the two ways of running it.
        'Forkcast / llama.cpp': ratio(f, l === undefined ? hh : hh === undefined ? l : Math.max(l, hh)),
        'bw bound tok/s': bound, 'Forkcast % of bound': bound && f ? `${((100 * f) / bound).toFixed(0)}%${fitsLLC}` : undefined,
      });
    }
    if (a.rows.has('n16')) {
      const fcRuns: number[] = [], hRuns: HarnessPar[] = [];
      let fcLast: ParResult | undefined;
      for (let r = 0; r < a.parReps; r++) {
        if (fc) {
          const v = await tryOr(`${m.name} Forkcast n16`, errors, () => fc.par(tokens));
          if (v && (!fcLast || v.total_ms < best(fcRuns))) fcLast = v;
          if (v) fcRuns.push(v.total_ms);
        }
        if (h) {
          const out = await tryOr(`${m.name} harness n16`, errors, () =>
            runHarness<HarnessPar>(h, m.path, tokFile, {
              ...harnessArgs, mode: 'par', reps: 1, 'n-prompt': PAR_PROMPT, 'n-gen': PAR_GEN, 'n-seq': PAR_N,
              temp: DEFAULT_SAMPLER.temperature, 'top-k': DEFAULT_SAMPLER.topK, 'top-p': DEFAULT_SAMPLER.topP,
              'min-p': DEFAULT_SAMPLER.minP, seed: SEED, sampler: 'chain',
            }));
          if (out) hRuns.push(...out);
        }
      }
      const hBest = hRuns.length ? hRuns.reduce((x, y) => (y.total_ms < x.total_ms ? y : x)) : undefined;
      const f = tps(PAR_N * PAR_GEN, fcRuns.length ? best(fcRuns) : undefined);
      const hh = tps(PAR_N * PAR_GEN, hBest?.total_ms);
      // Bound for the decode steps: each step reads the weights once for all 16 rows and the shared
      // prompt KV once (Forkcast's fp32 cache); compared with Forkcast's decode-only rate.
      const bound = (PAR_N * bw.bytesPerSec) / (perToken + (fcLast?.kv_prompt_bytes ?? 0));
      const fcDecodeRate = fcLast ? (PAR_N * (PAR_GEN - 1) * 1000) / fcLast.decode_ms : undefined;
      rows.push({
        model: m.name, test: `n${PAR_N}x${PAR_GEN} @${PAR_PROMPT}`,
        'Forkcast tok/s': f, 'llama.cpp tok/s': undefined, 'llama.cpp harness tok/s': hh,
        'Forkcast / llama.cpp': ratio(f, hh),
        'bw bound tok/s': bound,
        'Forkcast % of bound': fcDecodeRate ? `${((100 * fcDecodeRate) / bound).toFixed(0)}% (decode)${fitsLLC}` : undefined,
      });
      rows.push({
        model: m.name, test: `  n${PAR_N} prefill / decode ms`,
        'Forkcast tok/s': fcLast ? `${fcLast.prefill_ms.toFixed(0)} / ${fcLast.decode_ms.toFixed(0)}` : undefined,
        'llama.cpp tok/s': undefined,
        'llama.cpp harness tok/s': hBest ? `${hBest.prefill_ms.toFixed(0)} / ${hBest.decode_ms.toFixed(0)}` : undefined,
        'Forkcast / llama.cpp': fcLast && hBest ? `${ratio(hBest.prefill_ms, fcLast.prefill_ms)} / ${ratio(hBest.decode_ms, fcLast.decode_ms)}` : undefined,
      });
    }
  } finally {
    fc?.dispose();
    await nl?.dispose();
  }
}

export async function benchPeers(): Promise<void> {
  if (process.argv.some((x) => x.startsWith('--nl-child='))) return nodeLlamaChildMain(process.argv.slice(2));
  const a = parseArgs(process.argv.slice(2));
  const errors: string[] = [];
  const models = a.file
    ? [{ name: basename(a.file), path: a.file, vocab: vocabSize(a.file) }]
    : await ensureBenchModels(a.quick && !a.models ? ['qwen2.5-coder-0.5b-shape Q8_0'] : a.models, (l) => console.log(l));
  const bw = await measureBandwidth(a.threads);
  const h = buildHarness();
  if ('error' in h) errors.push(`llama.cpp harness: ${h.error}`);
  const harness = 'error' in h ? undefined : h;
  console.log(`threads: ${a.threads}, reps: pp/tg ${a.reps}, n16 ${a.parReps} (best of, sides interleaved), llama.cpp flash attention: ${a.fa}`);
  const llc = lastLevelCacheBytes();
  console.log(`memory bandwidth: ${(bw.bytesPerSec / 1e9).toFixed(1)} GB/s (${bw.method}); last-level cache ${llc ? bytes(llc) : 'unknown'} (shared with the host's other tenants)`);
  const rows: Row[] = [];
  // The machine is shared: the load average beside each model tells how disturbed its figures may be.
  const load = () => { try { return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '); } catch { return '?'; } };
  for (const m of models) {
    console.log(`${m.name}: ${m.path} (${bytes(statSync(m.path).size)}, vocab ${m.vocab}${m.note ? `, ${m.note}` : ''})`);
    const t0 = performance.now();
    const l0 = load();
    const mine: Row[] = [];
    // The harness's pp/tg rows only check it against node-llama-cpp: once is enough unless asked.
    await benchModel(m, a, bw, harness, a.harnessCheck === 'all' || (a.harnessCheck === 'first' && m === models[0]), mine, errors);
    rows.push(...mine);
    printTable(mine); // as it goes: a long run that is stopped still leaves its figures
    console.log(`  done in ${((performance.now() - t0) / 1000).toFixed(0)} s; load average before ${l0}, after ${load()}`);
  }
  console.log('');
  printTable(rows, `Forkcast vs llama.cpp, ${a.threads} threads (tokens/s, higher is better)`);
  if (errors.length) console.log(`errors:\n${errors.map((e) => `  ${e}`).join('\n')}`);
}
