// The JSON-RPC contract between the extension and the engine process: one module, imported by both
// sides (extension/engineClient.ts and engine/server.ts). Field names here are a public contract.
import { NotificationType, RequestType, RequestType0 } from 'vscode-jsonrpc';

export const PROTOCOL_VERSION = 1;

// ---- initialize -----------------------------------------------------------------------------
export interface InitializeParams {
  clientName?: string;
  /** Default worker threads for models loaded later (0 or absent = physical cores). */
  threads?: number;
}
export interface InitializeResult {
  name: 'forkcast-engine';
  version: string;
  protocolVersion: number;
  capabilities: {
    attention: Array<'bifurcated' | 'replicated'>;
    maxCandidates: number;
    cancellation: true;
    fillInTheMiddle: true;
  };
  cpu: { physicalCores: number; avx2: boolean; avx512: boolean };
}
export const initializeRequest = new RequestType<InitializeParams, InitializeResult, void>('initialize');

// ---- loadModel ------------------------------------------------------------------------------
export interface LoadModelParams {
  /** Absolute path of a GGUF file; absent = the bundled default model. */
  path?: string;
  /** KV capacity for the shared prompt, tokens (absent = min(model's, 4096)). */
  ctx?: number;
  threads?: number;
}
export interface SpecialTokens {
  bos: number | null;
  eos: number | null;
  eot: number | null;
  fim_prefix: number | null;
  fim_suffix: number | null;
  fim_middle: number | null;
  fim_pad: number | null;
  fim_rep: number | null;
  fim_sep: number | null;
}
export interface ModelInfo {
  path: string;
  name: string;
  architecture: string;
  parameters: number;
  tensor_types: Record<string, number>;
  context_length: number;
  vocab_size: number;
  special_tokens: SpecialTokens;
  /** Which fill-in-the-middle template the engine will use ('none' = plain prefix completion). */
  fim_template: string;
  load_ms: number;
}
export const loadModelRequest = new RequestType<LoadModelParams, ModelInfo, void>('loadModel');

// ---- complete -------------------------------------------------------------------------------
export interface CompleteParams {
  prefix: string;
  suffix?: string;
  /** Number of candidates sampled from the one shared prompt (1..64). */
  n?: number;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: number;
  stop?: string[];
  singleLine?: boolean;
  /**
   * Multi-line mode: a sample ends before its first line indented less than the cursor's line
   * (the block being written is over; what follows is other code). Default true.
   */
  stopAtBlockEnd?: boolean;
  attention?: 'bifurcated' | 'replicated';
  /** Token budget for prefix + suffix in the prompt (nearest whole lines kept). */
  contextTokens?: number;
}
export interface Candidate {
  text: string;
  score: number;
  /** Mean token log-probability (length-normalised). */
  logprob: number;
  /** How many of the n samples produced this text (after whitespace normalisation). */
  count: number;
  tokens: number;
  /** Why the reranker scored it so: one short phrase per rule that fired. */
  reasons: string[];
  finish: 'eos' | 'stop' | 'length' | 'newline';
  /** True when a filter rule fired (empty, copies the text after the cursor): ranked last, not worth showing. */
  filtered?: boolean;
}
export interface Timings {
  prefill_ms: number;
  decode_ms: number;
  /** Part of decode_ms spent choosing tokens from the logits (sampler), the rest is the model. */
  sample_ms: number;
  total_ms: number;
  prompt_tokens: number;
  /** Prompt tokens reused from the previous request's KV (not evaluated again). */
  reused_tokens: number;
  generated_tokens: number;
}
export interface CompleteResult {
  /** Best candidate's text, ids and per-token logprobs (the single-answer view). */
  text: string;
  tokens: number[];
  logprobs: number[];
  candidates: Candidate[];
  timings: Timings;
  memory: { kv_bytes: number };
}
export const completeRequest = new RequestType<CompleteParams, CompleteResult, void>('complete');

// ---- tokenize -------------------------------------------------------------------------------
export interface TokenizeParams { text: string }
export interface TokenizeResult { ids: number[] }
export const tokenizeRequest = new RequestType<TokenizeParams, TokenizeResult, void>('tokenize');

// ---- lifecycle ------------------------------------------------------------------------------
export const shutdownRequest = new RequestType0<null, void>('shutdown');
export const exitNotification = new NotificationType<void>('exit');

/** Long work (model loading) reports progress: 0..1 with a message. */
export interface ProgressParams { message: string; fraction: number }
export const progressNotification = new NotificationType<ProgressParams>('forkcast/progress');
/** Log lines for the extension's output channel. */
export interface LogParams { level: 'info' | 'warn' | 'error'; message: string }
export const logNotification = new NotificationType<LogParams>('forkcast/log');

/** Application error codes (JSON-RPC reserves -32768..-32000 for itself). */
export const ErrorCodes = {
  NoModel: 1001,
  BadModel: 1002,
  BadParams: 1003,
  Cancelled: -32800, // LSP's RequestCancelled, what vscode-jsonrpc clients expect
  Internal: 1099,
} as const;
