// The engine process: JSON-RPC over stdio (vscode-jsonrpc), requests from engine/protocol.ts.
// stdout carries JSON-RPC and nothing else; logs go to stderr and to forkcast/log notifications.
//
// Robustness: messages are framed by our own reader (TolerantReader below) so that garbage,
// invalid JSON or non-message objects are answered with the JSON-RPC errors the spec names
// (-32700 parse error, -32600 invalid request) and the process keeps serving; vscode-jsonrpc
// itself answers unknown methods (-32601). Native work is asynchronous (AsyncWorker), so
// $/cancelRequest and other messages are handled while a completion computes.
import { existsSync, statSync } from 'node:fs';
import {
  AbstractMessageReader, CancellationToken, DataCallback, Disposable, Message, NotificationType, ResponseError,
  StreamMessageWriter, createMessageConnection, type MessageConnection,
} from 'vscode-jsonrpc/node';
import { CancelledError, ModelSession, ParamsError, complete, type CompletionModel } from './complete';
import {
  ErrorCodes, PROTOCOL_VERSION, completeRequest, exitNotification, initializeRequest, loadModelRequest,
  logNotification, progressNotification, shutdownRequest, tokenizeRequest,
  type InitializeResult, type LoadModelParams, type LogParams, type ModelInfo,
} from './protocol';
import { Scheduler } from './scheduler';
import { loadAddon } from './native';

/** A loaded model as the server uses it (engine/model.ts's Model). */
export interface ServerModel extends CompletionModel {
  dispose(): void;
}

export interface ServerOptions {
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
  /** Loads a model file (engine/model.ts loadModel); throws with a clear message on a bad file. */
  load: (path: string, opts: { ctx?: number; threads?: number }) => ServerModel;
  /** The bundled model's path, or null when there is none. */
  defaultModel: () => string | null;
  version: string;
  threads?: number;
  /** Called on `exit` (default: process.exit). */
  exit?: (code: number) => void;
}

/**
 * Reads Content-Length framed messages. Unlike the stock reader it never gives up on a stream:
 * a bad header is skipped up to the next "Content-Length:", a body that is not JSON or not a
 * JSON-RPC message is answered with an error through `reply` and dropped.
 */
export class TolerantReader extends AbstractMessageReader {
  private buf = Buffer.alloc(0);
  private callback: DataCallback | null = null;

  constructor(private readonly input: NodeJS.ReadableStream, private readonly reply: (m: Message) => void) {
    super();
  }

  listen(callback: DataCallback): Disposable {
    this.callback = callback;
    const onData = (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.drain(); };
    const onEnd = () => this.fireClose();
    const onError = (e: Error) => this.fireError(e);
    this.input.on('data', onData);
    this.input.on('end', onEnd);
    this.input.on('error', onError);
    return Disposable.create(() => {
      this.input.off('data', onData); this.input.off('end', onEnd); this.input.off('error', onError);
      this.callback = null;
    });
  }

  private drain() {
    for (;;) {
      const headerEnd = this.buf.indexOf('\r\n\r\n');
      if (headerEnd < 0) {
        // No header end yet: keep at most a few KB of junk while waiting.
        if (this.buf.length > 65536) this.resync(1);
        return;
      }
      const header = this.buf.subarray(0, headerEnd).toString('ascii');
      const m = /(?:^|\r\n)Content-Length:\s*(\d+)\s*(?:\r\n|$)/i.exec(header);
      if (!m) {
        // Junk before a header (e.g. the tail of a body whose Content-Length was too small):
        // skip to the next header start, which may lie inside what looked like this header.
        this.reply(errorResponse(null, -32700, 'Parse error: message header has no Content-Length'));
        this.resync(1);
        continue;
      }
      const length = Number(m[1]);
      if (length > 64 * 1024 * 1024) {
        this.reply(errorResponse(null, -32600, `Invalid Request: message of ${length} bytes is too large`));
        this.resync(headerEnd + 4);
        continue;
      }
      if (this.buf.length < headerEnd + 4 + length) return;
      const body = this.buf.subarray(headerEnd + 4, headerEnd + 4 + length).toString('utf8');
      this.buf = this.buf.subarray(headerEnd + 4 + length);
      this.deliver(body);
    }
  }

  /** Drops bytes up to the next header start at or after `from`. */
  private resync(from: number) {
    const next = this.buf.indexOf('Content-Length:', from);
    this.buf = next < 0 ? Buffer.alloc(0) : this.buf.subarray(next);
  }

  private deliver(body: string) {
    let msg: unknown;
    try {
      msg = JSON.parse(body);
    } catch (e) {
      this.reply(errorResponse(null, -32700, `Parse error: ${(e as Error).message}`));
      return;
    }
    const o = msg as Record<string, unknown>;
    const id = o && typeof o === 'object' && (typeof o.id === 'number' || typeof o.id === 'string') ? o.id : null;
    const isRequestOrNotification = o && typeof o === 'object' && !Array.isArray(o) && o.jsonrpc === '2.0' && typeof o.method === 'string';
    const isResponse = o && typeof o === 'object' && !Array.isArray(o) && o.jsonrpc === '2.0' && 'id' in o && ('result' in o || 'error' in o);
    if (!isRequestOrNotification && !isResponse) {
      this.reply(errorResponse(id, -32600, Array.isArray(o) ? 'Invalid Request: batches are not supported' : 'Invalid Request: not a JSON-RPC 2.0 message'));
      return;
    }
    if (isRequestOrNotification && 'params' in o && o.params !== null && typeof o.params !== 'object') {
      if ('id' in o) this.reply(errorResponse(id, -32602, 'Invalid params: params must be an object or array'));
      return;
    }
    this.callback?.(msg as Message);
  }
}

function errorResponse(id: number | string | null, code: number, message: string): Message {
  return { jsonrpc: '2.0', id, error: { code, message } } as unknown as Message;
}

/** Turns an internal error into the JSON-RPC error the client sees. */
function toResponseError(e: unknown): ResponseError<void> {
  if (e instanceof ResponseError) return e;
  if (e instanceof CancelledError) return new ResponseError(ErrorCodes.Cancelled, 'request cancelled');
  if (e instanceof ParamsError) return new ResponseError(ErrorCodes.BadParams, e.message);
  return new ResponseError(ErrorCodes.Internal, e instanceof Error ? e.message : String(e));
}

/**
 * A StreamMessageWriter that counts writes still on their way: a response is written a few ticks
 * after its handler returns (vscode-jsonrpc queues writes), so an exit that only waited for the
 * handlers could cut the last answer off.
 */
class TrackedWriter extends StreamMessageWriter {
  pending = 0;
  override async write(msg: Message): Promise<void> {
    this.pending++;
    try {
      await super.write(msg);
    } finally {
      this.pending--;
    }
  }
}

export function startServer(opts: ServerOptions): MessageConnection {
  const input = opts.input ?? process.stdin;
  const output = opts.output ?? process.stdout;
  const writer = new TrackedWriter(output);
  const reader = new TolerantReader(input, (m) => { void writer.write(m); });
  const conn = createMessageConnection(reader, writer);
  const scheduler = new Scheduler();
  let session: ModelSession | null = null;
  let model: ServerModel | null = null;
  let info: ModelInfo | null = null;
  let threads = opts.threads ?? 0;
  let shuttingDown = false;

  // Notifications are best effort: after end of input the connection refuses them (synchronously).
  const notify = <P>(type: NotificationType<P>, params: P) => {
    try { void conn.sendNotification(type, params).catch(() => {}); } catch { /* connection closed */ }
  };
  const log = (level: LogParams['level'], message: string) => {
    process.stderr.write(`[forkcast-engine] ${level}: ${message}\n`);
    notify(logNotification, { level, message });
  };

  // Requests being handled: on end of input the process answers them before it exits.
  let inflight = 0;
  const onRequest: typeof conn.onRequest = ((type: unknown, handler: (...a: unknown[]) => unknown) =>
    conn.onRequest(type as never, (async (...a: unknown[]) => {
      inflight++;
      try { return await handler(...a); } finally { inflight--; }
    }) as never)) as typeof conn.onRequest;

  onRequest(initializeRequest, (params): InitializeResult => {
    if (params && typeof params.threads === 'number' && Number.isInteger(params.threads) && params.threads >= 0 && params.threads <= 1024) {
      threads = params.threads;
    }
    let cpu = { physicalCores: 1, avx2: false, avx512: false };
    try {
      const c = loadAddon().cpuInfo();
      cpu = { physicalCores: c.physicalCores, avx2: c.avx2, avx512: c.avx512 };
    } catch (e) {
      log('warn', `native addon unavailable: ${(e as Error).message}`);
    }
    return {
      name: 'forkcast-engine', version: opts.version, protocolVersion: PROTOCOL_VERSION,
      capabilities: { attention: ['bifurcated', 'replicated'], maxCandidates: 64, cancellation: true, fillInTheMiddle: true },
      cpu,
    };
  });

  // Loads run one after another, so overlapping loadModel requests end with the last one active.
  let loads: Promise<unknown> = Promise.resolve();
  onRequest(loadModelRequest, (params) => {
    const run = loads.then(() => loadOne(params));
    loads = run.catch(() => {});
    return run;
  });

  const loadOne = async (params: LoadModelParams | undefined): Promise<ModelInfo> => {
    if (shuttingDown) throw new ResponseError(ErrorCodes.Internal, 'the engine is shutting down');
    const p = params ?? {};
    if (p.path !== undefined && (typeof p.path !== 'string' || p.path === '')) throw new ResponseError(ErrorCodes.BadParams, 'loadModel: "path" must be a non-empty string');
    for (const k of ['ctx', 'threads'] as const) {
      const v = p[k];
      if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < (k === 'ctx' ? 16 : 0) || v > (k === 'ctx' ? 1 << 20 : 1024))) {
        throw new ResponseError(ErrorCodes.BadParams, `loadModel: "${k}" must be an integer in ${k === 'ctx' ? '16..1048576' : '0..1024'}`);
      }
    }
    const path = p.path ?? opts.defaultModel();
    if (!path) throw new ResponseError(ErrorCodes.NoModel, 'loadModel: no path given and no bundled model is installed');
    if (!existsSync(path) || !statSync(path).isFile()) throw new ResponseError(ErrorCodes.BadModel, `${path}: no such file`);
    notify(progressNotification, { message: `loading ${path}`, fraction: 0 });
    const t0 = performance.now();
    let loaded: ServerModel;
    try {
      // The previous model keeps serving until the new one has loaded.
      loaded = opts.load(path, { ctx: p.ctx, threads: p.threads ?? threads });
    } catch (e) {
      // The reader's errors already name the file; others get it in front.
      const m = (e as Error).message;
      const msg = m.includes(path) ? m : `${path}: ${m}`;
      log('error', `loadModel failed: ${msg}`);
      notify(progressNotification, { message: `failed: ${msg}`, fraction: 1 });
      throw new ResponseError(ErrorCodes.BadModel, msg);
    }
    // Swap: stop what runs on the old model, wait for it, then free it.
    scheduler.cancelAll();
    await scheduler.idle();
    session?.dispose();
    model?.dispose();
    model = loaded;
    session = new ModelSession(loaded, undefined, p.threads ?? threads);
    info = { ...loaded.info, fim_template: session.template.name, load_ms: performance.now() - t0 };
    notify(progressNotification, { message: `loaded ${info.name}`, fraction: 1 });
    log('info', `loaded ${path} (${info.architecture}, ${info.parameters} parameters, FIM ${info.fim_template}) in ${info.load_ms.toFixed(0)} ms`);
    return info;
  };

  onRequest(completeRequest, async (params, token: CancellationToken) => {
    if (!session) throw new ResponseError(ErrorCodes.NoModel, 'complete: no model loaded (send loadModel first)');
    const s = session;
    try {
      const r = await scheduler.run('complete', token, (t) => complete(s, params, t));
      log('info', `complete: ${r.candidates.length} candidates, prompt ${r.timings.prompt_tokens} (${r.timings.reused_tokens} reused), ${r.timings.total_ms.toFixed(0)} ms`);
      return r;
    } catch (e) {
      if (!(e instanceof CancelledError)) log('warn', `complete failed: ${(e as Error).message}`);
      throw toResponseError(e);
    }
  });

  onRequest(tokenizeRequest, (params) => {
    if (!model) throw new ResponseError(ErrorCodes.NoModel, 'tokenize: no model loaded');
    if (!params || typeof params.text !== 'string') throw new ResponseError(ErrorCodes.BadParams, 'tokenize: "text" must be a string');
    return { ids: model.tokenizer.encode(params.text) };
  });

  onRequest(shutdownRequest, async () => {
    shuttingDown = true;
    scheduler.cancelAll();
    await scheduler.idle();
    session?.dispose();
    model?.dispose();
    session = null; model = null;
    return null;
  });

  conn.onNotification(exitNotification, () => {
    (opts.exit ?? ((c) => process.exit(c)))(shuttingDown ? 0 : 1);
  });

  // End of input (the editor went away, or a piped script ended): answer what was already asked,
  // free the model, flush stdout, exit.
  conn.onClose(async () => {
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r)); // let queued messages dispatch
    while (inflight > 0) await new Promise((r) => setTimeout(r, 5));
    await scheduler.idle();
    while (writer.pending > 0) await new Promise((r) => setTimeout(r, 5)); // the answers are on their way out
    session?.dispose();
    model?.dispose();
    session = null; model = null;
    output.write('', () => (opts.exit ?? ((c) => process.exit(c)))(0));
  });
  conn.onError(([e]) => log('error', `transport: ${e.message}`));
  conn.listen();
  return conn;
}
