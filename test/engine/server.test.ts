// The real engine process (`node dist/cli.js serve`), spoken to over its stdio the way any client
// would, including clients that send garbage. Models are real GGUF files written by make-model.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGGUF } from '../../engine/gguf';
import { makeModel } from '../../engine/makeModel';
import { Tokenizer } from '../../engine/tokenizer';
import { HAVE_SHARED, fixture } from '../shared';
import { ROOT, builtCli } from './built';

const dir = mkdtempSync(join(tmpdir(), 'forkcast-server-'));
let small: string, big: string;

beforeAll(() => {
  builtCli();
  if (!HAVE_SHARED) return;
  const vocab = fixture('vocab', 'ggml-vocab-deepseek-coder.gguf');
  small = join(dir, 'small.gguf');
  makeModel({ arch: 'llama', layers: 2, embd: 128, heads: 4, kvHeads: 1, ff: 256, ctx: 1024, type: 'Q8_0', vocabFrom: vocab, seed: 1, out: small });
  // Wide enough that one decode step of 64 samples takes a while: cancellation must land mid-batch.
  big = join(dir, 'big.gguf');
  makeModel({ arch: 'llama', layers: 4, embd: 512, heads: 8, kvHeads: 2, ff: 1536, ctx: 2048, type: 'Q8_0', vocabFrom: vocab, seed: 2, out: big });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Msg { jsonrpc: string; id?: number | string | null; method?: string; params?: any; result?: any; error?: { code: number; message: string } }

/** A minimal JSON-RPC client over the child's stdio that also lets a test write raw bytes. */
class Engine {
  readonly proc: ChildProcessWithoutNullStreams;
  readonly received: Msg[] = [];
  stderr = '';
  stdoutJunk = '';
  private buf = Buffer.alloc(0);
  private waiters: Array<{ pred: (m: Msg) => boolean; resolve: (m: Msg) => void }> = [];
  private nextId = 1;
  readonly exited: Promise<number | null>;

  constructor() {
    this.proc = spawn(process.execPath, [builtCli(), 'serve', '--threads', '2'], { cwd: ROOT });
    this.proc.stderr.on('data', (d) => (this.stderr += d));
    this.proc.stdout.on('data', (d: Buffer) => { this.buf = Buffer.concat([this.buf, d]); this.parse(); });
    this.exited = new Promise((r) => this.proc.on('exit', (code) => r(code)));
  }

  private parse() {
    for (;;) {
      const end = this.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      const header = this.buf.subarray(0, end).toString();
      const m = /Content-Length: (\d+)/.exec(header);
      if (!m || !header.startsWith('Content-Length')) { this.stdoutJunk += header; this.buf = this.buf.subarray(end + 4); continue; }
      const len = Number(m[1]);
      if (this.buf.length < end + 4 + len) return;
      const msg = JSON.parse(this.buf.subarray(end + 4, end + 4 + len).toString()) as Msg;
      this.buf = this.buf.subarray(end + 4 + len);
      this.received.push(msg);
      for (const w of this.waiters.slice()) if (w.pred(msg)) { this.waiters.splice(this.waiters.indexOf(w), 1); w.resolve(msg); }
    }
  }

  raw(bytes: string | Buffer) { this.proc.stdin.write(bytes); }
  send(obj: unknown) { const s = Buffer.from(JSON.stringify(obj)); this.raw(Buffer.concat([Buffer.from(`Content-Length: ${s.length}\r\n\r\n`), s])); }

  wait(pred: (m: Msg) => boolean, what = 'message'): Promise<Msg> {
    const seen = this.received.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`timed out waiting for ${what}; stderr: ${this.stderr.slice(-500)}`)), 60_000);
      this.waiters.push({ pred, resolve: (m) => { clearTimeout(t); resolve(m); } });
    });
  }

  request(method: string, params?: unknown): { id: number; response: Promise<Msg> } {
    const id = this.nextId++;
    this.send({ jsonrpc: '2.0', id, method, ...(params === undefined ? {} : { params }) });
    return { id, response: this.wait((m) => m.id === id && !m.method, `response ${id} (${method})`) };
  }

  async call(method: string, params?: unknown): Promise<Msg> { return this.request(method, params).response; }
}

describe.skipIf(!HAVE_SHARED)('engine process over JSON-RPC', () => {
  let e: Engine;
  beforeAll(() => { e = new Engine(); });
  afterAll(() => { if (e.proc.exitCode === null) e.proc.kill(); });

  it('initializes and reports its capabilities', async () => {
    const r = await e.call('initialize', { clientName: 'test' });
    expect(r.result.name).toBe('forkcast-engine');
    expect(r.result.capabilities.attention).toEqual(['bifurcated', 'replicated']);
    expect(r.result.cpu.physicalCores).toBeGreaterThan(0);
  });

  it('complete before any model is an error naming the cause', async () => {
    const r = await e.call('complete', { prefix: 'x' });
    expect(r.error?.code).toBe(1001);
  });

  it('loads a model with progress notifications and completes', async () => {
    const r = await e.call('loadModel', { path: small, ctx: 512 });
    expect(r.result.architecture).toBe('llama');
    expect(r.result.fim_template).toBe('deepseek');
    expect(e.received.some((m) => m.method === 'forkcast/progress' && m.params.fraction === 1)).toBe(true);
    const c = await e.call('complete', { prefix: 'def f(x):\n    return', n: 4, maxTokens: 6, seed: 1 });
    expect(c.result.candidates.length).toBeGreaterThan(0);
    expect(c.result.candidates.reduce((a: number, x: { count: number }) => a + x.count, 0)).toBe(4);
    expect(c.result.timings.prompt_tokens).toBeGreaterThan(5);
    const t = await e.call('tokenize', { text: 'hello world' });
    expect(t.result.ids.length).toBeGreaterThan(0);
  });

  it('answers garbage, invalid JSON, non-messages, unknown methods and bad params with errors, and keeps serving', async () => {
    const before = e.received.length;
    e.raw('this is not a header\r\n\r\n');
    e.raw('Content-Length: 9\r\n\r\n{not json');
    e.send([1, 2, 3]);
    e.send({ jsonrpc: '2.0', id: 77 }); // no method
    e.send({ hello: 'world', id: 78 });
    e.raw('Content-Length: 5\r\n\r\n"str"');
    // A Content-Length too small: the body's tail is junk in front of the next header, which must still be found.
    const short = JSON.stringify({ jsonrpc: '2.0', id: 79, method: 'tokenize', params: { text: 'abc' } });
    e.raw(`Content-Length: ${short.length - 10}\r\n\r\n${short}`);
    const after = await e.call('tokenize', { text: 'after a short body' });
    expect(after.result.ids.length).toBeGreaterThan(0);
    const unknown = await e.call('noSuchMethod', {});
    expect(unknown.error?.code).toBe(-32601);
    const badParams = await e.call('complete', { prefix: 12, n: 'many' });
    expect(badParams.error?.code).toBe(1003);
    expect(badParams.error?.message).toMatch(/prefix/);
    const badN = await e.call('complete', { prefix: 'x', n: 1000 });
    expect(badN.error?.message).toMatch(/"n" must be an integer in 1..64/);
    const badScalar = await e.call('complete', 5);
    expect(badScalar.error?.code).toBe(-32602);

    const errors = e.received.slice(before).filter((m) => m.error).map((m) => [m.id ?? null, m.error!.code]);
    expect(errors).toContainEqual([null, -32700]); // header without Content-Length
    expect(errors.filter(([id, c]) => id === null && c === -32700).length).toBeGreaterThanOrEqual(2); // + invalid JSON
    expect(errors).toContainEqual([null, -32600]); // a batch array / a string
    expect(errors).toContainEqual([77, -32600]);
    expect(errors).toContainEqual([78, -32600]);
    // Still serving, and stdout never carried anything but JSON-RPC.
    const ok = await e.call('tokenize', { text: 'still alive' });
    expect(ok.result.ids.length).toBeGreaterThan(0);
    expect(e.stdoutJunk).toBe('');
    expect(e.proc.exitCode).toBeNull();
  });

  it('a bad model file gives an error naming the file and the problem; the previous model keeps working', async () => {
    const bad = join(dir, 'truncated.gguf');
    writeFileSync(bad, readFileSync(small).subarray(0, 3000));
    const r = await e.call('loadModel', { path: bad });
    expect(r.error?.code).toBe(1002);
    expect(r.error?.message).toContain(bad);
    const missing = await e.call('loadModel', { path: join(dir, 'nope.gguf') });
    expect(missing.error?.message).toMatch(/nope\.gguf: no such file/);
    const c = await e.call('complete', { prefix: 'x = ', n: 2, maxTokens: 3 });
    expect(c.result.candidates.length).toBeGreaterThan(0);
  });

  it('$/cancelRequest stops a running 64-sample completion within a decode step; other requests are answered meanwhile', async () => {
    expect((await e.call('loadModel', { path: big, ctx: 1024 })).result.parameters).toBeGreaterThan(1e7);
    const prefix = 'def handler(event):\n' + '    x = event.get("key")\n'.repeat(60);
    const run = e.request('complete', { prefix, n: 64, maxTokens: 400, temperature: 1, topK: 0, topP: 1, minP: 0 });
    // While it computes, the engine still answers.
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    const tok = await e.call('tokenize', { text: 'during' });
    const answeredIn = Date.now() - t0;
    expect(tok.result.ids.length).toBeGreaterThan(0);
    const t1 = Date.now();
    e.send({ jsonrpc: '2.0', method: '$/cancelRequest', params: { id: run.id } });
    const r = await run.response;
    console.log(`tokenize answered in ${answeredIn} ms during a completion; cancellation answered in ${Date.now() - t1} ms`);
    expect(r.error?.code).toBe(-32800);
    // The model serves the next request normally.
    const next = await e.call('complete', { prefix: 'x = ', n: 2, maxTokens: 3 });
    expect(next.result.candidates.length).toBeGreaterThan(0);
  });

  it('shutdown then exit ends the process with status 0', async () => {
    const r = await e.call('shutdown');
    expect(r.result).toBeNull();
    e.send({ jsonrpc: '2.0', method: 'exit' });
    expect(await e.exited).toBe(0);
    expect(e.stdoutJunk).toBe('');
  });
});

describe.skipIf(!HAVE_SHARED)('engine process lifecycle', () => {
  it('exits when its stdin closes (the editor went away)', async () => {
    const e = new Engine();
    await e.call('initialize', {});
    e.proc.stdin.end();
    expect(await e.exited).toBe(0);
  });

  it('requests piped in before end of input are all answered before it exits', async () => {
    const e = new Engine();
    const a = e.request('initialize', {});
    const b = e.request('loadModel', { path: small, ctx: 256 });
    const c = e.request('complete', { prefix: 'x = ', n: 2, maxTokens: 3 });
    e.proc.stdin.end();
    const [ra, rb, rc] = await Promise.all([a.response, b.response, c.response]);
    expect(ra.result.name).toBe('forkcast-engine');
    expect(rb.error).toBeUndefined();
    expect(rb.result.architecture).toBe("llama");
    expect(rc.result.candidates.length).toBeGreaterThan(0);
    expect(await e.exited).toBe(0);
  });

  it('overlapping loadModel requests end with the last one active', async () => {
    const e = new Engine();
    const star = join(dir, 'star.gguf');
    makeModel({ arch: 'llama', layers: 1, embd: 64, heads: 4, kvHeads: 1, ff: 64, ctx: 256, type: 'F32',
      vocabFrom: fixture('vocab', 'ggml-vocab-starcoder.gguf'), seed: 3, out: star });
    const starIds = Tokenizer.fromGGUF(openGGUF(star).file).encode('hello world');
    const a = e.request('loadModel', { path: small });
    const b = e.request('loadModel', { path: star });
    const [ra, rb] = await Promise.all([a.response, b.response]);
    expect(ra.result.vocab_size).toBe(32256);
    expect(rb.result.vocab_size).toBe(49152);
    const t = await e.call('tokenize', { text: 'hello world' });
    expect(t.result.ids).toEqual(starIds);
    e.proc.kill();
  });

  it('a newer completion supersedes a queued older one', async () => {
    const e = new Engine();
    await e.call('loadModel', { path: small, ctx: 512 });
    const a = e.request('complete', { prefix: 'a = ', n: 16, maxTokens: 60 });
    const b = e.request('complete', { prefix: 'b = ', n: 16, maxTokens: 4 });
    const c = e.request('complete', { prefix: 'c = ', n: 16, maxTokens: 4 });
    const [ra, rb, rc] = await Promise.all([a.response, b.response, c.response]);
    expect(ra.result).toBeDefined();
    expect(rb.error?.code).toBe(-32800);
    expect(rc.result).toBeDefined();
    e.proc.kill();
  });
});
