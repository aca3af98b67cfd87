// The engine process from the extension's side: spawn it with the editor's own runtime, talk
// JSON-RPC over its stdio, restart it with backoff when it dies, fail pending requests cleanly,
// and free it on dispose. No 'vscode' import: the owner passes callbacks for the log and the UI,
// so this class also runs under vitest against the real engine.
import { ChildProcess, spawn } from 'node:child_process';
import {
  CancellationToken,
  CancellationTokenSource,
  createMessageConnection,
  MessageConnection,
  ResponseError,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node';
import {
  CompleteParams,
  CompleteResult,
  completeRequest,
  ErrorCodes,
  exitNotification,
  initializeRequest,
  InitializeResult,
  loadModelRequest,
  logNotification,
  ModelInfo,
  progressNotification,
  ProgressParams,
  shutdownRequest,
} from '../engine/protocol';

export type EngineState = 'starting' | 'loading' | 'ready' | 'busy' | 'error' | 'stopped';

export interface EngineClientOptions {
  /** dist/cli.js of this extension. */
  cliPath: string;
  /** The runtime to run it with: VS Code's own (process.execPath) with ELECTRON_RUN_AS_NODE=1. */
  runtime?: string;
  threads?: number;
  log: (level: 'info' | 'warn' | 'error', msg: string) => void;
  onState?: (state: EngineState, detail?: string) => void;
  /** Called when the engine died unexpectedly; `first` is true only the first time (tell the user once). */
  onCrash?: (info: { code: number | null; signal: string | null; reason: string; first: boolean; restartInMs: number }) => void;
  onProgress?: (p: ProgressParams) => void;
  onModel?: (info: ModelInfo) => void;
}

/** Errors the caller can tell apart: the request was cancelled, or the engine is not there. */
export class EngineError extends Error {
  constructor(message: string, readonly code: number | 'dead' | 'cancelled' | 'timeout') {
    super(message);
  }
}

const BACKOFF_MS = [250, 1000, 3000, 10000, 30000];
const STABLE_MS = 60_000; // up this long → the next crash starts the backoff from the beginning

export class EngineClient {
  private proc?: ChildProcess;
  private conn?: MessageConnection;
  private state: EngineState = 'stopped';
  private disposed = false;
  private crashes = 0;
  private toldUser = false;
  private startedAt = 0;
  private restartTimer?: NodeJS.Timeout;
  private inflight = 0;
  private readyWaiters: Array<(err?: EngineError) => void> = [];
  /** The model the user asked for (undefined = bundled default) and the one that last loaded. */
  private wantedModel: string | undefined;
  private goodModel: string | undefined;
  private hasGoodModel = false;
  private modelInfo?: ModelInfo;
  private initResult?: InitializeResult;
  private loading?: Promise<ModelInfo>;

  /** Worker threads for the next model load (0 = the engine's default). */
  threads: number;

  constructor(private readonly opts: EngineClientOptions) {
    this.threads = opts.threads ?? 0;
  }

  get pid(): number | undefined { return this.proc?.pid; }
  get model(): ModelInfo | undefined { return this.modelInfo; }
  get engineInfo(): InitializeResult | undefined { return this.initResult; }
  get currentState(): EngineState { return this.state; }

  /** Starts the process and loads `model` (undefined = bundled default). Resolves when ready or
   *  rejects with the load error (the process stays up; a later setModel can fix it). */
  async start(model: string | undefined): Promise<ModelInfo> {
    this.wantedModel = model;
    this.spawnProcess();
    return this.loadWanted();
  }

  /** Loads another model. On failure the previous model keeps working and the error names the file. */
  async setModel(model: string | undefined): Promise<ModelInfo> {
    this.wantedModel = model;
    // Chosen while the engine restarts: wait for it (it comes back with the last good model).
    if (!this.conn) await this.whenReady(30_000);
    return this.loadWanted(model);
  }

  private async loadWanted(path = this.wantedModel): Promise<ModelInfo> {
    const prev = this.loading;
    if (prev) await prev.catch(() => undefined); // one load at a time, in order
    const conn = this.conn;
    if (!conn) throw new EngineError('The Forkcast engine is not running.', 'dead');
    const job = (async () => {
      this.setState('loading', path ?? 'bundled model');
      const t0 = Date.now();
      try {
        const info = await conn.sendRequest(loadModelRequest, { path, threads: this.threads || undefined });
        this.modelInfo = info;
        this.goodModel = path;
        this.hasGoodModel = true;
        this.opts.log('info', `model loaded: ${info.name} (${info.architecture}, ${info.parameters} params, FIM ${info.fim_template}) from ${info.path} in ${Date.now() - t0} ms`);
        this.opts.onModel?.(info);
        this.setState('ready');
        return info;
      } catch (e) {
        // The engine names the file itself (sometimes twice): say it once, in front.
        let msg = describe(e);
        if (path) while (msg.startsWith(`${path}: `)) msg = msg.slice(path.length + 2);
        this.opts.log('error', `loading ${path ?? 'the bundled model'} failed: ${msg}`);
        if (conn !== this.conn) throw new EngineError(`The engine stopped while loading ${path ?? 'the bundled model'}.`, 'dead');
        // The engine swaps models only after the new one loaded (engine/server.ts), so the
        // previous model is still there and serving.
        if (this.hasGoodModel && this.modelInfo && path !== this.goodModel) {
          this.setState('ready');
        } else {
          this.setState('error', msg);
        }
        throw new EngineError(`Could not load ${path ?? 'the bundled model'}: ${msg}`, e instanceof ResponseError ? e.code : ErrorCodes.Internal);
      }
    })();
    this.loading = job;
    try {
      return await job;
    } finally {
      if (this.loading === job) this.loading = undefined;
    }
  }

  /** One completion. Waits (up to waitMs) for a restarting engine; the token cancels the engine's
   *  work through $/cancelRequest. */
  async complete(params: CompleteParams, token?: CancellationToken, waitMs = 30_000): Promise<CompleteResult> {
    await this.whenReady(waitMs, token);
    if (token?.isCancellationRequested) throw new EngineError('cancelled', 'cancelled');
    const conn = this.conn;
    if (!conn) throw new EngineError('The Forkcast engine is not running.', 'dead');
    this.inflight++;
    this.setState('busy');
    try {
      return await conn.sendRequest(completeRequest, params, token ?? CancellationToken.None);
    } catch (e) {
      if (token?.isCancellationRequested || (e instanceof ResponseError && e.code === ErrorCodes.Cancelled)) throw new EngineError('cancelled', 'cancelled');
      if (conn !== this.conn || this.state === 'error' || this.state === 'starting') throw new EngineError(`The Forkcast engine stopped during the request (${describe(e)}).`, 'dead');
      throw new EngineError(describe(e), e instanceof ResponseError ? e.code : ErrorCodes.Internal);
    } finally {
      this.inflight--;
      if (this.state === 'busy' && this.inflight === 0) this.setState('ready');
    }
  }

  /** Resolves when a model is loaded and the process is up. */
  whenReady(waitMs: number, token?: CancellationToken): Promise<void> {
    if ((this.state === 'ready' || this.state === 'busy') && this.conn) return Promise.resolve();
    if (this.disposed) return Promise.reject(new EngineError('Forkcast is shut down.', 'dead'));
    return new Promise((resolve, reject) => {
      let done = false;
      const finish = (err?: EngineError) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        sub?.dispose();
        this.readyWaiters = this.readyWaiters.filter((w) => w !== onReady);
        err ? reject(err) : resolve();
      };
      const onReady = (err?: EngineError) => finish(err);
      const timer = setTimeout(() => finish(new EngineError(`The Forkcast engine was not ready within ${waitMs} ms (${this.state}).`, 'timeout')), waitMs);
      const sub = token?.onCancellationRequested(() => finish(new EngineError('cancelled', 'cancelled')));
      this.readyWaiters.push(onReady);
    });
  }

  private setState(s: EngineState, detail?: string) {
    if (s === 'ready' && this.inflight > 0) s = 'busy';
    this.state = s;
    this.opts.onState?.(s, detail);
    if (s === 'ready' || s === 'busy') {
      const w = this.readyWaiters;
      this.readyWaiters = [];
      for (const f of w) f();
    }
  }

  private spawnProcess() {
    if (this.disposed) return;
    const runtime = this.opts.runtime ?? process.execPath;
    this.setState('starting');
    this.startedAt = Date.now();
    const child = spawn(runtime, [this.opts.cliPath, 'serve'], {
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    this.proc = child;
    this.conn = undefined;
    if (child.pid === undefined) {
      // Spawn failed outright (runtime missing, no permission): no stdio to talk over, and Node
      // reports it through 'error' without an 'exit'.
      child.on('error', (err) => this.onExit(child, undefined, null, null, `could not start ${runtime}: ${err.message}`));
      return;
    }
    const conn = createMessageConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    this.conn = conn;
    conn.onNotification(logNotification, (p) => this.opts.log(p.level, `engine: ${p.message}`));
    conn.onNotification(progressNotification, (p) => this.opts.onProgress?.(p));
    conn.onError(([err]) => this.opts.log('warn', `engine connection: ${err.message}`));
    conn.listen();
    let stderrTail = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      stderrTail = (stderrTail + d).slice(-2000);
      // The engine's own log lines also arrive as forkcast/log notifications: only log the rest
      // (a crash trace, a runtime warning) here; the tail goes into the exit message too.
      for (const line of d.split('\n')) if (line.trim() && !line.startsWith('[forkcast-engine]')) this.opts.log('warn', `engine stderr: ${line}`);
    });
    child.stdin!.on('error', () => undefined); // EPIPE when it dies mid-write: the exit handler reports
    child.on('error', (err) => this.opts.log('error', `engine process: ${err.message}`));
    child.on('exit', (code, signal) => this.onExit(child, conn, code, signal, stderrTail));
    this.opts.log('info', `engine started: pid ${child.pid}: ${runtime} ${this.opts.cliPath} serve`);
    conn
      .sendRequest(initializeRequest, { clientName: 'forkcast-vscode', threads: this.threads || undefined })
      .then((r) => {
        this.initResult = r;
        this.opts.log('info', `engine ${r.version} (protocol ${r.protocolVersion}); attention ${r.capabilities.attention.join('/')}; ${r.cpu.physicalCores} cores, avx2 ${r.cpu.avx2}, avx512 ${r.cpu.avx512}`);
      })
      .catch((e) => this.opts.log('error', `engine initialize failed: ${describe(e)}`));
  }

  private onExit(child: ChildProcess, conn: MessageConnection | undefined, code: number | null, signal: string | null, stderrTail: string) {
    conn?.dispose(); // rejects every pending request at once: nothing waits for a dead process
    if (child !== this.proc) return;
    this.proc = undefined;
    this.conn = undefined;
    if (this.disposed) return;
    const upMs = Date.now() - this.startedAt;
    if (upMs > STABLE_MS) this.crashes = 0;
    const delay = BACKOFF_MS[Math.min(this.crashes, BACKOFF_MS.length - 1)];
    this.crashes++;
    this.opts.log('error', `engine exited (code ${code}, signal ${signal}) after ${upMs} ms; restarting in ${delay} ms${stderrTail ? `; last stderr: ${stderrTail.trim().slice(-300)}` : ''}`);
    this.setState('error', `engine exited (code ${code}, signal ${signal})`);
    const reason = signal ?? (code !== null ? `exit code ${code}` : stderrTail.trim().split('\n').pop() ?? 'unknown reason');
    this.opts.onCrash?.({ code, signal, reason, first: !this.toldUser, restartInMs: delay });
    this.toldUser = true;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.disposed) return;
      // Reload the model that worked last (not a file that just failed to load).
      this.wantedModel = this.hasGoodModel ? this.goodModel : this.wantedModel;
      this.spawnProcess();
      this.loadWanted().catch(() => undefined); // logged and shown through state
    }, delay);
  }

  /** Stops the engine: polite shutdown/exit, then kill if it does not go within a second. */
  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    clearTimeout(this.restartTimer);
    for (const w of this.readyWaiters) w(new EngineError('Forkcast is shut down.', 'dead'));
    this.readyWaiters = [];
    const proc = this.proc;
    const conn = this.conn;
    this.setState('stopped');
    if (!proc || !conn) return;
    const gone = new Promise<void>((r) => proc.once('exit', () => r()));
    const killTimer = setTimeout(() => proc.kill('SIGKILL'), 1000);
    try {
      await Promise.race([conn.sendRequest(shutdownRequest), new Promise((r) => setTimeout(r, 500))]);
      await conn.sendNotification(exitNotification);
    } catch {
      /* already gone */
    }
    await Promise.race([gone, new Promise((r) => setTimeout(r, 1500))]);
    clearTimeout(killTimer);
    conn.dispose();
  }
}

export function describe(e: unknown): string {
  if (e instanceof ResponseError) return `${e.message} (code ${e.code})`;
  if (e instanceof Error) return e.message;
  return String(e);
}

export { CancellationTokenSource };
