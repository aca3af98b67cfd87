// The extension's engine client against the REAL engine process (dist/cli.js serve) and a real
// model: load, complete, cancel through $/cancelRequest, kill mid-request (the pending request
// fails at once, the client restarts the engine with backoff and the model comes back, the user is
// told once), a bad model file refused while the previous model keeps working, dispose ends the
// process. Needs `npm run build` (dist/cli.js + addon) and ../shared; skips with the reason otherwise.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CancellationTokenSource } from 'vscode-jsonrpc/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineClient, EngineError, EngineState } from '../../extension/engineClient';
import { fixture, HAVE_SHARED } from '../shared';

const CLI = resolve(__dirname, '..', '..', 'dist', 'cli.js');
const ready = existsSync(CLI) && HAVE_SHARED;
if (!ready) console.warn(`[engineClient.test] skipped: ${existsSync(CLI) ? '../shared missing' : 'dist/cli.js missing (npm run build)'}`);
const TINY = fixture('models', 'tinystories-656k-q8_0.gguf');
const LLAMA = fixture('arch', 'llama-tiny.gguf');

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };
async function until(cond: () => boolean, ms: number, what: string) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(!ready)('engine client with the real engine process', () => {
  const logs: string[] = [];
  const states: EngineState[] = [];
  const crashes: Array<{ first: boolean; restartInMs: number }> = [];
  let client: EngineClient;

  beforeAll(async () => {
    client = new EngineClient({
      cliPath: CLI,
      log: (level, msg) => logs.push(`${level} ${msg}`),
      onState: (s) => states.push(s),
      onCrash: (c) => crashes.push(c),
    });
    const info = await client.start(TINY);
    expect(info.path).toBe(TINY);
  });
  afterAll(() => client?.dispose());

  it('completes with ranked candidates and reports timings', async () => {
    const r = await client.complete({ prefix: 'Once upon a time', n: 4, maxTokens: 12, temperature: 0.9, seed: 1 });
    expect(r.candidates.length).toBeGreaterThan(0);
    expect(r.timings.prompt_tokens).toBeGreaterThan(0);
    expect(states).toContain('busy');
    expect(client.currentState).toBe('ready');
  });

  it('a cancelled token rejects as cancelled and the engine serves the next request', async () => {
    const cts = new CancellationTokenSource();
    const p = client.complete({ prefix: 'The cat', n: 64, maxTokens: 2000, temperature: 1 }, cts.token);
    setTimeout(() => cts.cancel(), 5);
    await expect(p).rejects.toMatchObject({ code: 'cancelled' });
    const r = await client.complete({ prefix: 'The dog', n: 1, maxTokens: 4, temperature: 0 });
    expect(r.candidates.length).toBe(1);
  });

  it('a bad model file is refused with its name and the problem; the previous model keeps working', async () => {
    const bad = join(mkdtempSync(join(tmpdir(), 'forkcast-engine-client-')), 'broken.gguf');
    writeFileSync(bad, Buffer.from('GGUF\x03\x00\x00\x00 this is not a model', 'latin1'));
    const err = await client.setModel(bad).then(() => null, (e: EngineError) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err!.message).toContain('broken.gguf');
    console.log(`bad model error: ${err!.message}`);
    expect(client.model?.path).toBe(TINY);
    expect(client.currentState).toBe('ready');
    const r = await client.complete({ prefix: 'Lily', n: 2, maxTokens: 4 });
    expect(r.candidates.length).toBeGreaterThan(0);
  });

  it('switches models', async () => {
    const info = await client.setModel(LLAMA);
    expect(info.path).toBe(LLAMA);
    expect((await client.complete({ prefix: 'def ', n: 2, maxTokens: 4 })).candidates.length).toBeGreaterThan(0);
    await client.setModel(TINY);
  });

  it('killing the engine mid-request fails the request at once; it restarts with the model and the next request works', async () => {
    const pid = client.pid!;
    const t0 = Date.now();
    const p = client.complete({ prefix: 'Once upon a time', n: 64, maxTokens: 2000, temperature: 1 });
    await until(() => client.currentState === 'busy', 2000, 'busy');
    process.kill(pid, 'SIGKILL');
    await expect(p).rejects.toMatchObject({ code: 'dead' });
    const failMs = Date.now() - t0;
    expect(failMs).toBeLessThan(3000);
    expect(crashes).toEqual([{ code: null, signal: 'SIGKILL', reason: 'SIGKILL', first: true, restartInMs: 250 }]);
    // A request made while it restarts waits for it instead of failing.
    const r = await client.complete({ prefix: 'Once upon a time', n: 2, maxTokens: 6 });
    expect(r.candidates.length).toBeGreaterThan(0);
    expect(client.pid).not.toBe(pid);
    expect(client.model?.path).toBe(TINY);
    console.log(`killed mid-request: failed after ${failMs} ms; next answer ${Date.now() - t0} ms after the kill`);

    // A second crash: the user is not told again, and the backoff grows.
    const pid2 = client.pid!;
    process.kill(pid2, 'SIGKILL');
    await until(() => crashes.length === 2, 2000, 'second crash');
    expect(crashes[1]).toMatchObject({ first: false, restartInMs: 1000 });
    await client.whenReady(10_000);
    expect(client.pid).not.toBe(pid2);

    // A model chosen while the engine is down is loaded once it is back.
    const pid3 = client.pid!;
    process.kill(pid3, 'SIGKILL');
    await until(() => client.currentState === 'error', 2000, 'the crash to be seen');
    const info = await client.setModel(LLAMA);
    expect(info.path).toBe(LLAMA);
    expect(client.pid).not.toBe(pid3);
    expect(crashes[2]).toMatchObject({ first: false, restartInMs: 3000 });
  });

  it('dispose ends the engine process and fails later requests cleanly', async () => {
    const pid = client.pid!;
    expect(alive(pid)).toBe(true);
    await client.dispose();
    await until(() => !alive(pid), 3000, 'engine exit');
    await expect(client.complete({ prefix: 'x' })).rejects.toMatchObject({ code: 'dead' });
  });
});

describe('engine client when the engine cannot start', () => {
  it('reports the crash once, keeps retrying with backoff, and fails requests with a timeout instead of hanging', async () => {
    const crashes: Array<{ first: boolean; restartInMs: number }> = [];
    const logs: string[] = [];
    // A runtime that does not exist: what a broken install looks like from the extension.
    const client = new EngineClient({ cliPath: CLI, runtime: '/nonexistent/forkcast-runtime', log: (l, m) => logs.push(`${l} ${m}`), onCrash: (c) => crashes.push(c) });
    const started = client.start(undefined).then(() => 'loaded', (e: EngineError) => e.code);
    expect(await started).toBe('dead');
    await until(() => crashes.length >= 2, 3000, 'a retry');
    expect(crashes.map((c) => c.first)).toEqual([true, false]);
    expect(crashes[1].restartInMs).toBeGreaterThan(crashes[0].restartInMs);
    await expect(client.complete({ prefix: 'x' }, undefined, 300)).rejects.toMatchObject({ code: 'timeout' });
    expect(logs.join('\n')).toMatch(/ENOENT/);
    expect(crashes[0]).toMatchObject({ reason: expect.stringMatching(/could not start \/nonexistent\/forkcast-runtime: .*ENOENT/) });
    await client.dispose();
  });
});
