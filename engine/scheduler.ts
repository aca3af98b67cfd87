// Requests against the model run one at a time (one native context, one thread pool), newest
// wins: a new completion supersedes the completions still waiting in the queue (while typing, only
// the latest keystroke's request matters). Each job runs with its own cancellation token that
// fires when the caller's token fires ($/cancelRequest), when it is superseded, or on shutdown.
import { CancelledError, type CancelToken } from './complete';

/** A cancellation token we control, plus the caller's token folded in. */
export class CancelSource implements CancelToken {
  private cancelled = false;
  private listeners: Array<() => void> = [];
  private unlink: (() => void) | undefined;

  constructor(parent?: CancelToken) {
    if (!parent) return;
    if (parent.isCancellationRequested) this.cancelled = true;
    else if (parent.onCancellationRequested) {
      const d = parent.onCancellationRequested(() => this.cancel());
      this.unlink = () => d.dispose();
    } else {
      const t = setInterval(() => { if (parent.isCancellationRequested) this.cancel(); }, 5);
      this.unlink = () => clearInterval(t);
    }
  }

  get isCancellationRequested() { return this.cancelled; }

  onCancellationRequested = (listener: () => void) => {
    if (this.cancelled) { queueMicrotask(listener); return { dispose() {} }; }
    this.listeners.push(listener);
    return { dispose: () => { this.listeners = this.listeners.filter((l) => l !== listener); } };
  };

  cancel() {
    if (this.cancelled) return;
    this.cancelled = true;
    const ls = this.listeners;
    this.listeners = [];
    for (const l of ls) l();
    this.dispose();
  }

  dispose() {
    this.unlink?.();
    this.unlink = undefined;
  }
}

interface Job {
  kind: string;
  source: CancelSource;
  start: () => void;
  reject: (e: unknown) => void;
}

export class Scheduler {
  private queue: Job[] = [];
  private running: Job | null = null;
  private idleWaiters: Array<() => void> = [];

  /** Jobs waiting (not started). */
  get pending() { return this.queue.length; }
  get busy() { return this.running !== null; }

  /**
   * Runs `work` when the jobs before it are done. `supersede`: queued jobs of the same kind are
   * dropped (rejected with CancelledError) because this one replaces them.
   */
  run<T>(kind: string, token: CancelToken, work: (token: CancelToken) => Promise<T>, supersede = kind === 'complete'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (supersede) {
        for (const j of this.queue.filter((q) => q.kind === kind)) this.drop(j);
      }
      const source = new CancelSource(token);
      const job: Job = {
        kind, source, reject,
        start: () => {
          if (source.isCancellationRequested) { this.finish(job); reject(new CancelledError()); return; }
          work(source).then(resolve, reject).finally(() => this.finish(job));
        },
      };
      // A job cancelled while waiting leaves the queue at once.
      source.onCancellationRequested(() => { if (this.queue.includes(job)) this.drop(job); });
      this.queue.push(job);
      this.pump();
    });
  }

  /** Cancels the running job and everything queued (model switch, shutdown). */
  cancelAll() {
    for (const j of this.queue.slice()) this.drop(j);
    this.running?.source.cancel();
  }

  /** Resolves when nothing runs and nothing waits. */
  idle(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  private drop(job: Job) {
    this.queue = this.queue.filter((q) => q !== job);
    job.source.dispose();
    job.reject(new CancelledError());
    this.checkIdle();
  }

  private finish(job: Job) {
    job.source.dispose();
    if (this.running === job) this.running = null;
    this.pump();
  }

  private pump() {
    if (this.running) return;
    const next = this.queue.shift();
    if (!next) { this.checkIdle(); return; }
    this.running = next;
    next.start();
  }

  private checkIdle() {
    if (this.running || this.queue.length) return;
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }
}
