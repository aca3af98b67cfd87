// Bundles the TypeScript entry points into dist/ with esbuild. The native addon is not bundled:
// it is loaded at run time from native/build/Release (or dist/native in a packaged .vsix).
import { build } from 'esbuild';
import { existsSync, mkdirSync, copyFileSync, renameSync } from 'node:fs';

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: true,
  logLevel: 'warning',
};

// Benchmark suites land one by one; a suite whose file is missing becomes a module that says so
// instead of failing the whole build.
const optionalBenchSuites = {
  name: 'optional-bench-suites',
  setup(b) {
    b.onResolve({ filter: /^\.\/[a-z]+$/ }, (args) => {
      if (!args.importer.endsWith('bench/bench.ts')) return undefined;
      const file = `bench/${args.path.slice(2)}.ts`;
      return existsSync(file) ? undefined : { path: file, namespace: 'missing-suite' };
    });
    b.onLoad({ filter: /.*/, namespace: 'missing-suite' }, (args) => ({
      contents: `throw new Error(${JSON.stringify(args.path + ' is not written yet')});`,
      loader: 'js',
    }));
  },
};

const entries = [
  { in: 'engine/cli.ts', out: 'dist/cli.js' },
  { in: 'extension/extension.ts', out: 'dist/extension.js', external: ['vscode'] },
  { in: 'bench/bench.ts', out: 'dist/bench.js', external: ['node-llama-cpp'] },
];

mkdirSync('dist', { recursive: true });
for (const e of entries) {
  if (!existsSync(e.in)) continue;
  await build({ ...common, entryPoints: [e.in], outfile: e.out, external: e.external ?? [], plugins: [optionalBenchSuites] });
}
// Ship the addon beside the bundles so a packaged extension finds it without native/build.
const addon = 'native/build/Release/forkcast.node';
if (existsSync(addon)) {
  mkdirSync('dist/native', { recursive: true });
  // Copy then rename: an engine running from dist/ keeps its mapped copy instead of crashing on a
  // file rewritten in place.
  copyFileSync(addon, 'dist/native/forkcast.node.tmp');
  renameSync('dist/native/forkcast.node.tmp', 'dist/native/forkcast.node');
}
