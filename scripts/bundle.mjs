// Bundles the TypeScript entry points into dist/ with esbuild. The native addon is not bundled:
// it is loaded at run time from native/build/Release (or dist/native in a packaged .vsix).
import { build } from 'esbuild';
import { existsSync, mkdirSync, copyFileSync } from 'node:fs';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  logLevel: 'warning',
};

const entries = [
  { in: 'engine/cli.ts', out: 'dist/cli.js' },
  { in: 'extension/extension.ts', out: 'dist/extension.js', external: ['vscode'] },
  { in: 'bench/bench.ts', out: 'dist/bench.js', external: ['node-llama-cpp'] },
];

mkdirSync('dist', { recursive: true });
for (const e of entries) {
  if (!existsSync(e.in)) continue;
  await build({ ...common, entryPoints: [e.in], outfile: e.out, external: e.external ?? [] });
}
// Ship the addon beside the bundles so a packaged extension finds it without native/build.
const addon = 'native/build/Release/forkcast.node';
if (existsSync(addon)) {
  mkdirSync('dist/native', { recursive: true });
  copyFileSync(addon, 'dist/native/forkcast.node');
}
