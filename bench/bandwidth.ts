// Memory read bandwidth measured in the same run as the benchmarks that quote bounds from it.
//
// The addon has no bandwidth probe, so the native measurement is bench/llama-harness/bwprobe.c,
// compiled here with the system C compiler into .cache/bench-bin (AVX2 loads, one pthread per
// thread). A JavaScript read loop is the fallback when no compiler is present; it is compute-bound
// (about a third of the native figure on this machine), so bounds quoted from it are too low, and
// the tables say which method produced the figure.
import { Worker } from 'node:worker_threads';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

/** The repository root: dist/bench.js lives one level below it. */
export function repoRoot(): string {
  const up = join(__dirname, '..');
  return existsSync(join(up, 'package.json')) ? up : process.cwd();
}

/** Compiles `src` to `out` unless `out` is newer than the source; returns false (with a reason) on failure. */
export function compileIfStale(compiler: string, src: string, out: string, flags: string[], libs: string[] = []): { ok: boolean; why?: string } {
  try {
    if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return { ok: true };
    mkdirSync(join(out, '..'), { recursive: true });
    execFileSync(compiler, [...flags, src, '-o', out, ...libs], { stdio: ['ignore', 'ignore', 'pipe'] });
    return { ok: true };
  } catch (e) {
    const err = e as { stderr?: Buffer; message: string };
    return { ok: false, why: (err.stderr?.toString() || err.message).split('\n').slice(0, 5).join(' ') };
  }
}

/** Size of the last-level cache in bytes (Linux sysfs), or undefined. */
export function lastLevelCacheBytes(): number | undefined {
  try {
    const dir = '/sys/devices/system/cpu/cpu0/cache';
    let best: number | undefined;
    for (const idx of readdirSync(dir).filter((d) => d.startsWith('index'))) {
      const m = /^(\d+)([KMG]?)/.exec(readFileSync(join(dir, idx, 'size'), 'utf8').trim());
      if (!m) continue;
      const v = Number(m[1]) * ({ '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 } as Record<string, number>)[m[2]];
      if (best === undefined || v > best) best = v;
    }
    return best;
  } catch {
    return undefined;
  }
}

/** Native probe (bwprobe.c) when it compiles, else the JS read loop. The buffer (1 GiB) is larger than the LLC. */
export async function measureBandwidth(threads = 2, mib = 1024, trials = 3): Promise<Bandwidth> {
  const root = repoRoot();
  const src = join(root, 'bench', 'llama-harness', 'bwprobe.c');
  const exe = join(root, '.cache', 'bench-bin', 'bwprobe');
  const built = existsSync(src)
    ? compileIfStale('cc', src, exe, ['-O2', '-mavx2', '-pthread'])
    : { ok: false, why: 'bwprobe.c missing' };
  if (built.ok) {
    try {
      const out = JSON.parse(execFileSync(exe, [String(threads), String(mib), String(trials)]).toString());
      return { bytesPerSec: out.bytes_per_sec, threads, bufferBytes: out.buffer_bytes, method: `native read loop (bwprobe.c, AVX2, four streams per thread), ${threads} threads, ${mib} MiB` };
    } catch (e) {
      built.why = (e as Error).message;
    }
  }
  const js = await measureBandwidthJS(threads, mib, trials);
  js.method += ` (native probe unavailable: ${built.why})`;
  return js;
}

export interface Bandwidth {
  bytesPerSec: number;
  threads: number;
  bufferBytes: number;
  method: string;
}

// Runs inside each worker: waits for "go", sums its slice `reps` times, reports seconds and checksum.
const workerSource = `
const { parentPort, workerData } = require('node:worker_threads');
const { sab, start, end, reps } = workerData;
const a = new Float64Array(sab);
parentPort.on('message', () => {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  const t0 = process.hrtime.bigint();
  for (let r = 0; r < reps; r++) {
    for (let i = start; i < end; i += 4) { s0 += a[i]; s1 += a[i + 1]; s2 += a[i + 2]; s3 += a[i + 3]; }
  }
  const sec = Number(process.hrtime.bigint() - t0) / 1e9;
  parentPort.postMessage({ sec, sum: s0 + s1 + s2 + s3 });
});
parentPort.postMessage('ready');
`;

/** JS fallback: aggregate read bandwidth of `threads` workers over a `mib`-MiB buffer; best of `trials` runs. */
export async function measureBandwidthJS(threads = 2, mib = 512, trials = 3): Promise<Bandwidth> {
  const bufferBytes = mib * 1024 * 1024;
  const sab = new SharedArrayBuffer(bufferBytes);
  const a = new Float64Array(sab);
  // Touch every page with non-zero data so reads hit real, distinct memory.
  for (let i = 0; i < a.length; i++) a[i] = (i & 1023) * 0.5;
  const per = Math.floor(a.length / threads / 4) * 4;
  const reps = 2;
  const workers = Array.from({ length: threads }, (_, t) =>
    new Worker(workerSource, { eval: true, workerData: { sab, start: t * per, end: (t + 1) * per, reps } }));
  try {
    await Promise.all(workers.map((w) => new Promise<void>((res, rej) => {
      w.once('message', () => res());
      w.once('error', rej);
    })));
    let best = 0;
    for (let trial = 0; trial < trials; trial++) {
      const t0 = process.hrtime.bigint();
      const results = await Promise.all(workers.map((w) => new Promise<{ sec: number; sum: number }>((res, rej) => {
        w.once('message', res);
        w.once('error', rej);
        w.postMessage('go');
      })));
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      if (results.some((r) => !Number.isFinite(r.sum))) throw new Error('bandwidth: bad checksum');
      best = Math.max(best, (per * 8 * threads * reps) / wall);
    }
    return { bytesPerSec: best, threads, bufferBytes, method: `JS read loop, ${threads} worker threads, ${mib} MiB buffer` };
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}
