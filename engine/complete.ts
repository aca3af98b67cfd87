// One completion request, start to end: prompt → prefill once (reusing the previous request's
// prompt KV where the new prompt starts the same way) → n samples decoded together, each with its
// own random stream, leaving the batch as they finish → rerank → CompleteResult.
//
// Also `generate`, the single-sequence path behind the CLI's `generate` command.
import { nativeRowStats, type AttentionMode, type ContextOptions, type NativeContext } from './native';
import type { CompleteParams, CompleteResult, ModelInfo } from './protocol';
import { ErrorCodes } from './protocol';
import { buildPrompt, chooseTemplate, type FimTemplate, type PromptTokenizer } from './prompt';
import { rerank, type Sample } from './rerank';
import { Rng, Sampler, type SamplerParams } from './sampler';

/** What this module needs of a loaded model (engine/model.ts's Model has it). */
export interface CompletionModel {
  readonly info: ModelInfo;
  readonly tokenizer: PromptTokenizer & { tokenBytes(id: number): Uint8Array };
  /** Default shared-prompt KV capacity (tokens). */
  readonly ctx?: number;
  /** Learned absolute positions (StarCoder/GPTBigCode) end at n_ctx_train: prompt + samples must fit. */
  readonly spec?: { position_embd?: unknown; n_ctx_train: number };
  createContext(opts: Partial<ContextOptions>): NativeContext;
}

/** vscode-jsonrpc's CancellationToken fits; a plain { isCancellationRequested } works too (polled). */
export interface CancelToken {
  readonly isCancellationRequested: boolean;
  onCancellationRequested?: (listener: () => void) => { dispose(): void };
}

export class CancelledError extends Error {
  override name = 'CancelledError';
  readonly code = ErrorCodes.Cancelled;
  constructor() { super('request cancelled'); }
}

/** Bad request parameters: the JSON-RPC layer answers with ErrorCodes.BadParams. */
export class ParamsError extends Error {
  override name = 'ParamsError';
  readonly code = ErrorCodes.BadParams;
}

export const MAX_CANDIDATES = 64;
export const MAX_TOKENS_LIMIT = 2048;

export interface ResolvedParams extends SamplerParams {
  prefix: string;
  suffix: string;
  n: number;
  maxTokens: number;
  seed: number;
  stop: string[];
  singleLine: boolean;
  stopAtBlockEnd: boolean;
  attention: AttentionMode;
  contextTokens: number | undefined;
}

/** Checks and fills defaults. Wrong types and out-of-range values are errors, named precisely. */
export function resolveParams(p: CompleteParams): ResolvedParams {
  if (p === null || typeof p !== 'object') throw new ParamsError('complete: params must be an object');
  const str = (v: unknown, name: string, dflt: string) => {
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'string') throw new ParamsError(`complete: "${name}" must be a string`);
    return v;
  };
  const num = (v: unknown, name: string, dflt: number, lo: number, hi: number, int = false) => {
    if (v === undefined || v === null) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || (int && !Number.isInteger(v)) || v < lo || v > hi) {
      throw new ParamsError(`complete: "${name}" must be ${int ? 'an integer' : 'a number'} in ${lo}..${hi} (got ${JSON.stringify(v)})`);
    }
    return v;
  };
  if (typeof p.prefix !== 'string') throw new ParamsError('complete: "prefix" must be a string');
  const stop = p.stop ?? [];
  if (!Array.isArray(stop) || !stop.every((s) => typeof s === 'string' && s.length > 0) || stop.length > 16) {
    throw new ParamsError('complete: "stop" must be an array of at most 16 non-empty strings');
  }
  const attention = p.attention ?? 'bifurcated';
  if (attention !== 'bifurcated' && attention !== 'replicated') throw new ParamsError('complete: "attention" must be "bifurcated" or "replicated"');
  if (p.singleLine !== undefined && typeof p.singleLine !== 'boolean') throw new ParamsError('complete: "singleLine" must be a boolean');
  if (p.stopAtBlockEnd !== undefined && typeof p.stopAtBlockEnd !== 'boolean') throw new ParamsError('complete: "stopAtBlockEnd" must be a boolean');
  return {
    prefix: p.prefix,
    suffix: str(p.suffix, 'suffix', ''),
    n: num(p.n, 'n', 1, 1, MAX_CANDIDATES, true),
    maxTokens: num(p.maxTokens, 'maxTokens', 64, 1, MAX_TOKENS_LIMIT, true),
    temperature: num(p.temperature, 'temperature', 0.8, 0, 10),
    topK: num(p.topK, 'topK', 40, 0, 1e9, true),
    topP: num(p.topP, 'topP', 0.95, 0, 1),
    minP: num(p.minP, 'minP', 0.05, 0, 1),
    seed: num(p.seed, 'seed', 0, 0, Number.MAX_SAFE_INTEGER, true),
    stop,
    singleLine: p.singleLine ?? false,
    stopAtBlockEnd: p.stopAtBlockEnd ?? true,
    attention,
    contextTokens: p.contextTokens === undefined ? undefined : num(p.contextTokens, 'contextTokens', 0, 16, 1 << 20, true),
  };
}

// ---- contexts -------------------------------------------------------------------------------

/**
 * Owns the native context of one model and sizes it to the requests: grown (re-created) when a
 * request needs more samples or decode tokens than it has, never shrunk. It remembers which token
 * ids sit in the shared prompt KV so the next request can keep their common prefix.
 */
export class ModelSession {
  private ctx: NativeContext | null = null;
  private samples = 0;
  private decode = 0;
  /** Ids in the shared KV (valid prefix only), for reuse by the next request. */
  promptIds: number[] = [];
  /** Where the last prompt's prefix was cut (see cutPrefixStable): keeps the cut still while typing. */
  prefixAnchor: string | null = null;
  readonly template: FimTemplate;
  /** Shared-prompt KV capacity in tokens. */
  readonly ctxTokens: number;

  /** threads 0/undefined = the model's default (physical cores). */
  constructor(readonly model: CompletionModel, ctxTokens?: number, readonly threads?: number) {
    this.template = chooseTemplate(model.tokenizer);
    this.ctxTokens = ctxTokens ?? model.ctx ?? 4096;
  }

  context(n: number, maxTokens: number): NativeContext {
    if (this.ctx && n <= this.samples && maxTokens <= this.decode) return this.ctx;
    this.ctx?.dispose();
    this.ctx = null;
    this.promptIds = [];
    // Round up so a series of slightly different requests does not re-create it each time.
    this.samples = Math.max(this.samples, pow2(n), 16);
    this.decode = Math.max(this.decode, Math.ceil(maxTokens / 64) * 64);
    const opts: Partial<ContextOptions> = { ctx: this.ctxTokens, maxSamples: this.samples, maxDecode: this.decode };
    if (this.threads) opts.threads = this.threads;
    this.ctx = this.model.createContext(opts);
    return this.ctx;
  }

  dispose() {
    this.ctx?.dispose();
    this.ctx = null;
    this.promptIds = [];
  }
}

const pow2 = (x: number) => 2 ** Math.ceil(Math.log2(Math.max(1, x)));

/** Calls ctx.cancel() as soon as the token fires, so a running native step stops between layers. */
function watchCancel(token: CancelToken, ctx: NativeContext): () => void {
  if (token.onCancellationRequested) {
    const d = token.onCancellationRequested(() => ctx.cancel());
    return () => d.dispose();
  }
  const t = setInterval(() => { if (token.isCancellationRequested) ctx.cancel(); }, 5);
  return () => clearInterval(t);
}

function check(token: CancelToken) {
  if (token.isCancellationRequested) throw new CancelledError();
}

/** A native step rejected: report cancellation as such, pass other errors on. */
function rethrow(e: unknown, token: CancelToken): never {
  if (token.isCancellationRequested || (e instanceof Error && e.message === 'cancelled')) throw new CancelledError();
  throw e;
}

/**
 * Steps shorter than this run on the engine's thread (decodeSync) instead of a libuv job: handing a
 * job to a worker and waking the event loop for its result cost ~0.1-0.2 ms per step here, up to 15%
 * of a step of the bundled model. Longer steps stay off the thread so JSON-RPC traffic (and a cancel
 * that aborts a step between layers) is handled while they run.
 */
const SYNC_STEP_MS = 20;

/**
 * One decode step, on this thread when the previous one was short (pace.ms); yields to the event loop
 * first either way. The logits land in `out` when given (one buffer per request, overwritten each step).
 */
export async function decodeStep(ctx: NativeContext, slots: Int32Array, tokens: Int32Array, pace: { ms: number }, token: CancelToken, out?: Float32Array): Promise<Float32Array> {
  const sync = pace.ms < SYNC_STEP_MS;
  if (sync) await new Promise<void>((r) => setImmediate(r)); // lets a $/cancelRequest in
  check(token);
  const t0 = performance.now();
  try {
    const logits = sync ? ctx.decodeSync(slots, tokens, out) : await ctx.decode(slots, tokens, out);
    pace.ms = performance.now() - t0;
    return logits;
  } catch (e) {
    rethrow(e, token);
  }
}

/**
 * Evaluates `ids` into the shared KV, keeping the longest common prefix with what is already
 * there (at least the last token is always evaluated: its logits are needed).
 */
async function prefill(session: ModelSession, ctx: NativeContext, ids: number[], token: CancelToken) {
  const prev = session.promptIds;
  let keep = 0;
  const limit = Math.min(prev.length, ids.length - 1, ctx.promptLength);
  while (keep < limit && prev[keep] === ids[keep]) keep++;
  session.promptIds = prev.slice(0, keep); // what stays valid if this step fails half-way
  const t0 = performance.now();
  let logits: Float32Array;
  try {
    logits = await ctx.evalPrompt(Int32Array.from(ids.slice(keep)), keep);
  } catch (e) {
    rethrow(e, token);
  }
  session.promptIds = ids.slice();
  return { logits, reused: keep, ms: performance.now() - t0 };
}

// ---- sampling loop --------------------------------------------------------------------------

interface SampleState {
  ids: number[];
  logprobs: number[];
  text: string;
  decoder: InstanceType<typeof TextDecoder>;
  finish: Sample['finish'] | null;
  next: number; // the token sampled and not yet fed
  /** Text offset up to which lines were checked for the end of the block. */
  checked: number;
}

/** Width in columns of a line's leading whitespace (tab = 4). */
export function indentColumns(line: string): number {
  let w = 0;
  for (const ch of line) {
    if (ch === ' ') w++;
    else if (ch === '\t') w += 4 - (w % 4);
    else break;
  }
  return w;
}

/** The indentation (columns) of the cursor's line: where the block being written lives. */
export function cursorIndent(prefix: string): number {
  return indentColumns(prefix.slice(prefix.lastIndexOf('\n') + 1));
}

/**
 * Where the block being written ends in `text`: the offset of the newline before the first later
 * line whose first non-blank character sits left of `indent`, or -1. Lines not yet showing a
 * non-blank character are undecided (checking starts at `from`, a line start or 0).
 */
export function blockEnd(text: string, indent: number, from = 0): { cut: number; checked: number } {
  let nl = text.indexOf('\n', from);
  let checked = from;
  while (nl >= 0) {
    const next = text.indexOf('\n', nl + 1);
    const line = text.slice(nl + 1, next < 0 ? text.length : next);
    if (line.trim() === '') {
      if (next < 0) break; // blank so far: undecided
      nl = next;
      continue;
    }
    if (indentColumns(line) < indent) return { cut: nl, checked: nl };
    checked = nl + 1;
    nl = next;
  }
  return { cut: -1, checked };
}

interface StopRules {
  stopIds: Set<number>;
  stop: string[];
  singleLine: boolean;
  /** Multi-line mode with stopAtBlockEnd: the cursor line's indentation; else -1. */
  blockIndent: number;
  maxTokens: number;
}

/** Appends a sampled token to a sample and decides whether the sample is finished. */
function accept(s: SampleState, id: number, logprob: number, tok: CompletionModel['tokenizer'], rules: StopRules) {
  const { stopIds, stop, singleLine, maxTokens } = rules;
  s.logprobs.push(logprob);
  if (stopIds.has(id)) { s.finish = 'eos'; s.text += s.decoder.decode(); return; }
  s.ids.push(id);
  const before = s.text.length;
  s.text += s.decoder.decode(tok.tokenBytes(id), { stream: true }); // tokens may split a UTF-8 character
  if (singleLine) {
    // The line ends here; a sample that starts with a newline ends empty (the reranker filters it).
    const nl = s.text.indexOf('\n', before);
    if (nl >= 0) { s.text = s.text.slice(0, nl); s.finish = 'newline'; return; }
  }
  for (const st of stop) {
    const at = s.text.indexOf(st, Math.max(0, before - st.length + 1));
    if (at >= 0) { s.text = s.text.slice(0, at); s.finish = 'stop'; return; }
  }
  if (rules.blockIndent > 0) {
    const b = blockEnd(s.text, rules.blockIndent, s.checked);
    s.checked = b.checked;
    // Cut before the outdented line, and drop the blank lines that separated it.
    if (b.cut >= 0) { s.text = s.text.slice(0, b.cut).replace(/(\n[ \t]*)+$/, ''); s.finish = 'stop'; return; }
  }
  if (s.ids.length >= maxTokens) { s.finish = 'length'; s.text += s.decoder.decode(); }
}

/**
 * The completion request: see the file comment. Rejects with CancelledError within one decode
 * step of `token` firing, ParamsError for bad params.
 */
export async function complete(session: ModelSession, params: CompleteParams, token: CancelToken): Promise<CompleteResult> {
  const t0 = performance.now();
  const p = resolveParams(params);
  const tok = session.model.tokenizer;
  check(token);

  const ctx = session.context(p.n, p.maxTokens);
  let room = session.ctxTokens - 8; // the template's markers and BOS
  const spec = session.model.spec;
  if (spec?.position_embd) room = Math.min(room, spec.n_ctx_train - p.maxTokens - 8);
  if (room < 1) throw new ParamsError(`complete: maxTokens ${p.maxTokens} leaves no room for a prompt in this model's ${spec?.n_ctx_train}-position context`);
  const budget = Math.min(p.contextTokens ?? room, room);
  const prompt = buildPrompt(tok, session.template, p.prefix, p.suffix, budget, session.prefixAnchor);
  session.prefixAnchor = prompt.anchor;
  if (prompt.ids.length === 0) throw new ParamsError('complete: the prompt is empty (no prefix and the model has no BOS)');

  const stopWatch = watchCancel(token, ctx);
  try {
    const pre = await prefill(session, ctx, prompt.ids, token);
    check(token);

    const sampler = new Sampler(p, (x, V, k) => ctx.rowStats(x, V, k));
    const rules: StopRules = {
      stopIds: prompt.stopIds, stop: p.stop, singleLine: p.singleLine, maxTokens: p.maxTokens,
      blockIndent: !p.singleLine && p.stopAtBlockEnd ? cursorIndent(p.prefix) : -1,
    };
    const rngs = Array.from({ length: p.n }, (_, i) => new Rng(p.seed, i));
    const states: SampleState[] = rngs.map((rng) => {
      const s: SampleState = { ids: [], logprobs: [], text: '', decoder: new TextDecoder('utf-8'), finish: null, next: -1, checked: 0 };
      const first = sampler.sample(pre.logits, rng);
      accept(s, first.id, first.logprob, tok, rules);
      s.next = first.id;
      return s;
    });

    const tDecode = performance.now();
    ctx.beginSamples(p.n, p.attention);
    let kvBytes = ctx.kvBytes();
    let sampleMs = 0;
    const V = session.model.info.vocab_size;
    const pace = { ms: Infinity }; // the first step runs as a job and is timed
    const stepLogits = new Float32Array(p.n * pre.logits.length);
    for (;;) {
      const live = states.map((s, i) => (s.finish ? -1 : i)).filter((i) => i >= 0);
      if (live.length === 0) break;
      const logits = await decodeStep(ctx, Int32Array.from(live), Int32Array.from(live, (i) => states[i].next), pace, token, stepLogits);
      kvBytes = Math.max(kvBytes, ctx.kvBytes());
      const ts = performance.now();
      sampler.sampleRows(logits, V, live.map((i) => rngs[i])).forEach(({ id, logprob }, r) => {
        const s = states[live[r]];
        accept(s, id, logprob, tok, rules);
        s.next = id;
      });
      sampleMs += performance.now() - ts;
    }
    const decodeMs = performance.now() - tDecode;

    const ranked = rerank(states.map((s) => ({ text: s.text, ids: s.ids, logprobs: s.logprobs, finish: s.finish! })),
      { prefix: prompt.prefix, suffix: prompt.suffix, singleLine: p.singleLine });
    const best = ranked[0];
    return {
      text: best.text,
      tokens: best.ids,
      logprobs: best.logprobs.slice(0, best.ids.length), // one per token (the end token's is in the mean only)
      candidates: ranked.map((c) => ({
        text: c.text, score: c.score, logprob: c.logprob, count: c.count, tokens: c.tokens,
        reasons: c.reasons, finish: c.finish, filtered: c.filtered,
      })),
      timings: {
        prefill_ms: pre.ms,
        decode_ms: decodeMs,
        sample_ms: sampleMs,
        total_ms: performance.now() - t0,
        prompt_tokens: prompt.ids.length,
        reused_tokens: pre.reused,
        generated_tokens: states.reduce((a, s) => a + s.logprobs.length, 0),
      },
      memory: { kv_bytes: kvBytes },
    };
  } finally {
    stopWatch();
  }
}

// ---- generate -------------------------------------------------------------------------------

export interface GenerateOptions {
  maxTokens: number;
  temperature?: number;
  seed?: number;
  ignoreEos?: boolean;
  topK?: number;
  topP?: number;
  minP?: number;
}

export interface GenerateResult {
  ids: number[];
  text: string;
  logprobs: number[];
  timings: { prefill_ms: number; decode_ms: number; prompt_tokens: number; generated_tokens: number };
}

/** One sequence from explicit prompt ids: greedy at temperature 0, else sampled (stream 0 of seed). */
export async function generate(session: ModelSession, promptIds: number[], opts: GenerateOptions, token: CancelToken): Promise<GenerateResult> {
  if (promptIds.length === 0) throw new ParamsError('generate: the prompt has no tokens');
  const V = session.model.info.vocab_size;
  for (const id of promptIds) {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new ParamsError(`generate: prompt token id ${id} is outside the vocabulary (0..${V - 1})`);
  }
  if (promptIds.length > session.ctxTokens) {
    throw new ParamsError(`generate: the prompt has ${promptIds.length} tokens, more than the context (${session.ctxTokens}); pass a larger --ctx`);
  }
  const maxTokens = opts.maxTokens;
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > MAX_TOKENS_LIMIT) throw new ParamsError(`generate: max tokens must be in 1..${MAX_TOKENS_LIMIT}`);
  const sp = session.model.tokenizer.special;
  const eos = new Set([sp.eos, sp.eot].filter((x): x is number => x !== null));
  const sampler = new Sampler({ temperature: opts.temperature ?? 0, topK: opts.topK ?? 0, topP: opts.topP ?? 1, minP: opts.minP ?? 0 }, nativeRowStats());
  const rng = new Rng(opts.seed ?? 0, 0);

  const ctx = session.context(1, maxTokens);
  const stopWatch = watchCancel(token, ctx);
  try {
    const pre = await prefill(session, ctx, promptIds, token);
    const ids: number[] = [], logprobs: number[] = [];
    const tok = session.model.tokenizer;
    const decoder = new TextDecoder('utf-8');
    let text = '';
    let next = sampler.sample(pre.logits, rng);
    const t1 = performance.now();
    ctx.beginSamples(1, 'bifurcated');
    const slot = Int32Array.of(0);
    const pace = { ms: Infinity };
    const stepLogits = new Float32Array(pre.logits.length);
    for (;;) {
      if (!opts.ignoreEos && eos.has(next.id)) break;
      ids.push(next.id);
      logprobs.push(next.logprob);
      text += decoder.decode(tok.tokenBytes(next.id), { stream: true });
      if (ids.length >= maxTokens) break;
      const logits = await decodeStep(ctx, slot, Int32Array.of(next.id), pace, token, stepLogits);
      next = sampler.sample(logits, rng);
    }
    text += decoder.decode();
    return {
      ids, text, logprobs,
      timings: { prefill_ms: pre.ms, decode_ms: performance.now() - t1, prompt_tokens: promptIds.length, generated_tokens: ids.length },
    };
  } finally {
    stopWatch();
  }
}

/** Last-position logits of `promptIds` (the CLI's `logits`). */
export async function promptLogits(session: ModelSession, promptIds: number[], token: CancelToken): Promise<Float32Array> {
  const V = session.model.info.vocab_size;
  if (promptIds.length === 0) throw new ParamsError('logits: the prompt has no tokens');
  for (const id of promptIds) {
    if (!Number.isInteger(id) || id < 0 || id >= V) throw new ParamsError(`logits: prompt token id ${id} is outside the vocabulary (0..${V - 1})`);
  }
  if (promptIds.length > session.ctxTokens) throw new ParamsError(`logits: the prompt has ${promptIds.length} tokens, more than the context (${session.ctxTokens})`);
  const ctx = session.context(1, 1);
  const stopWatch = watchCancel(token, ctx);
  try {
    return (await prefill(session, ctx, promptIds, token)).logits;
  } finally {
    stopWatch();
  }
}
