// Scheduler: one job at a time, newest completion supersedes queued ones, tokens cancel. The jobs
// here are fake work functions (named as such): the scheduler's contract is about ordering.
import { describe, expect, it } from 'vitest';
import { CancelledError } from '../../engine/complete';
import { CancelSource, Scheduler } from '../../engine/scheduler';

/** Fake work: resolves when released (or rejects when its token fires), recording what ran. */
function fakeWork(log: string[], name: string) {
  let release!: () => void;
  const done = new Promise<void>((r) => (release = r));
  const work = async (token: { isCancellationRequested: boolean; onCancellationRequested?: (l: () => void) => unknown }) => {
    log.push(`start ${name}`);
    await new Promise<void>((resolve, reject) => {
      done.then(resolve);
      token.onCancellationRequested?.(() => reject(new CancelledError()));
    });
    log.push(`end ${name}`);
    return name;
  };
  return { work, release };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('Scheduler', () => {
  it('runs one job at a time, in order', async () => {
    const s = new Scheduler();
    const log: string[] = [];
    const a = fakeWork(log, 'a'), b = fakeWork(log, 'b');
    const pa = s.run('tokenize', new CancelSource(), a.work);
    const pb = s.run('tokenize', new CancelSource(), b.work);
    await tick();
    expect(log).toEqual(['start a']);
    a.release();
    await expect(pa).resolves.toBe('a');
    await tick();
    expect(log).toEqual(['start a', 'end a', 'start b']);
    b.release();
    await expect(pb).resolves.toBe('b');
  });

  it('a new completion supersedes the queued ones (newest wins), not the running one', async () => {
    const s = new Scheduler();
    const log: string[] = [];
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((n) => fakeWork(log, n));
    const pa = s.run('complete', new CancelSource(), a.work);
    const pb = s.run('complete', new CancelSource(), b.work);
    const pc = s.run('complete', new CancelSource(), c.work);
    await expect(pb).rejects.toBeInstanceOf(CancelledError);
    const pd = s.run('complete', new CancelSource(), d.work);
    await expect(pc).rejects.toBeInstanceOf(CancelledError);
    expect(s.pending).toBe(1);
    a.release(); d.release();
    await expect(pa).resolves.toBe('a');
    await expect(pd).resolves.toBe('d');
    expect(log).toEqual(['start a', 'end a', 'start d', 'end d']);
  });

  it("the caller's token cancels the running job and a queued one leaves the queue at once", async () => {
    const s = new Scheduler();
    const log: string[] = [];
    const a = fakeWork(log, 'a'), b = fakeWork(log, 'b'), c = fakeWork(log, 'c');
    const ta = new CancelSource(), tb = new CancelSource();
    const pa = s.run('x', ta, a.work, false);
    const pb = s.run('x', tb, b.work, false);
    const pc = s.run('x', new CancelSource(), c.work, false);
    tb.cancel();
    await expect(pb).rejects.toBeInstanceOf(CancelledError);
    expect(s.pending).toBe(1);
    ta.cancel();
    await expect(pa).rejects.toBeInstanceOf(CancelledError);
    await tick();
    expect(log).toEqual(['start a', 'start c']);
    c.release();
    await expect(pc).resolves.toBe('c');
    expect(s.busy).toBe(false);
  });

  it('cancelAll stops everything and idle() resolves after', async () => {
    const s = new Scheduler();
    const log: string[] = [];
    const a = fakeWork(log, 'a'), b = fakeWork(log, 'b');
    const pa = s.run('complete', new CancelSource(), a.work);
    const pb = s.run('other', new CancelSource(), b.work);
    s.cancelAll();
    await expect(pa).rejects.toBeInstanceOf(CancelledError);
    await expect(pb).rejects.toBeInstanceOf(CancelledError);
    await s.idle();
    expect(s.busy).toBe(false);
    expect(log).toEqual(['start a']);
  });

  it('a token already cancelled never starts its job; a polled token (no event) still cancels', async () => {
    const s = new Scheduler();
    const log: string[] = [];
    const dead = new CancelSource(); dead.cancel();
    await expect(s.run('x', dead, fakeWork(log, 'a').work, false)).rejects.toBeInstanceOf(CancelledError);
    const polled = { isCancellationRequested: false };
    const p = s.run('x', polled, fakeWork(log, 'b').work, false);
    await tick();
    polled.isCancellationRequested = true;
    await expect(p).rejects.toBeInstanceOf(CancelledError);
    expect(log).toEqual(['start b']);
  });
});
