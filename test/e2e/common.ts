// Shared plumbing of the two editor end-to-end runners (host.ts, ui.ts): where code-server and
// Node 24 were installed (scripts/e2e-setup.sh), which models to use, processes in their own
// process group, headless Chromium through playwright-core. Recipe: shared/notes/vscode-e2e.md.
import { ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const ROOT = resolve(__dirname, '..', '..'); // bundles live in out/test/
export const E2E_DIR = process.env.E2E_DIR ?? join(ROOT, '.e2e');

export function installed(): { node24: string; codeServer: string } {
  const envFile = join(E2E_DIR, 'env');
  if (!existsSync(envFile)) throw new Error(`${envFile} missing: run scripts/e2e-setup.sh first`);
  const env = Object.fromEntries(readFileSync(envFile, 'utf8').trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
  return { node24: join(env.N24, 'bin', 'node'), codeServer: env.CODE_SERVER };
}

/** The models the editor tests use: the bundled default when the build has one, else the shared
 *  TinyStories fixture (a real trained model, plain prefix completion); a second model to switch to;
 *  and a file that is not a model. FORKCAST_E2E_MODEL / FORKCAST_E2E_MODEL2 override. */
export function e2eModels(scratch: string): { primary: string; secondary: string; bad: string } {
  const bundledDir = join(ROOT, 'models');
  const bundled = existsSync(bundledDir) ? readdirSync(bundledDir).filter((f) => f.endsWith('.gguf')).sort().map((f) => join(bundledDir, f)) : [];
  const shared = resolve(ROOT, '..', 'shared', 'fixtures');
  const tiny = join(shared, 'models', 'tinystories-656k-q8_0.gguf');
  const primary = process.env.FORKCAST_E2E_MODEL ?? bundled.find((f) => /default/i.test(f)) ?? bundled[0] ?? tiny;
  const secondary = process.env.FORKCAST_E2E_MODEL2 ?? (primary === tiny ? join(shared, 'arch', 'llama-tiny.gguf') : tiny);
  for (const m of [primary, secondary]) if (!existsSync(m)) throw new Error(`e2e model ${m} not found (set FORKCAST_E2E_MODEL)`);
  const bad = join(scratch, 'not-a-model.gguf');
  // Starts like a GGUF, then lies about its tensor count: the reader must refuse it with a reason.
  const b = Buffer.alloc(64);
  b.write('GGUF', 0, 'latin1');
  b.writeUInt32LE(3, 4);
  b.writeBigUInt64LE(0xffffffffffn, 8);
  writeFileSync(bad, b);
  return { primary, secondary, bad };
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => res(p));
    });
    s.on('error', rej);
  });
}

/** Starts a process in its own process group (killGroup ends it with all its children). */
export function startGroup(cmd: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn(cmd, args, { env, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return child;
}

export function killGroup(child: ChildProcess | undefined) {
  if (!child?.pid) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    /* gone already */
  }
}

export async function waitHttp(url: string, ms: number) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    try {
      const r = await fetch(url);
      if (r.status < 500) return;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${url} did not answer within ${ms} ms`);
}

export async function launchChromium(profile: string): Promise<BrowserContext> {
  mkdirSync(profile, { recursive: true });
  return chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    viewport: { width: 1280, height: 800 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
