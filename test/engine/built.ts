// The CLI bundle the process tests run (dist/cli.js). CI builds it first (npm run build); during
// development it is rebuilt here when an engine source is newer. The bundle is written to a temp
// file and renamed, so test files running in parallel never spawn a half-written bundle.
import { buildSync } from 'esbuild';
import { existsSync, readdirSync, renameSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');

function newestSource(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) t = Math.max(t, newestSource(p));
    else if (e.name.endsWith('.ts')) t = Math.max(t, statSync(p).mtimeMs);
  }
  return t;
}

export function builtCli(): string {
  const out = join(ROOT, 'dist', 'cli.js');
  if (!existsSync(out) || statSync(out).mtimeMs < newestSource(join(ROOT, 'engine'))) {
    const tmp = `${out}.${process.pid}.tmp`;
    buildSync({
      entryPoints: [join(ROOT, 'engine', 'cli.ts')], outfile: tmp, bundle: true, platform: 'node', target: 'node20',
      format: 'cjs', sourcemap: false, logLevel: 'warning',
    });
    renameSync(tmp, out);
  }
  return out;
}
