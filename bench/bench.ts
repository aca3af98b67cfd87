// `npm run bench [-- suite ...]`: prints tables; never asserts times. Suites run side by side in
// one process so ratios compare like with like on the same machine state.
//   npm run bench                 attention + complete (issue 4)
//   npm run bench -- kernels      matmul kernels vs scalar and vs memory bandwidth
//   npm run bench -- peers        Forkcast vs llama.cpp (node-llama-cpp) on the same GGUF files
//   npm run bench -- tokenizer    tokenizing 100 kB of code, Forkcast vs llama.cpp
type Suite = () => Promise<void> | void;

async function suites(): Promise<Record<string, Suite>> {
  const out: Record<string, Suite> = {};
  const add = async (name: string, load: () => Promise<Record<string, unknown>>, fn: string) => {
    try {
      const mod = await load();
      if (typeof mod[fn] === 'function') out[name] = mod[fn] as Suite;
    } catch (e) {
      out[name] = () => console.log(`(${name}: unavailable: ${(e as Error).message})`);
    }
  };
  await add('attention', () => import('./attention'), 'benchAttention');
  await add('complete', () => import('./complete'), 'benchComplete');
  await add('kernels', () => import('./kernels'), 'benchKernels');
  await add('peers', () => import('./peers'), 'benchPeers');
  await add('tokenizer', () => import('./tokenizer'), 'benchTokenizer');
  return out;
}

async function main() {
  const all = await suites();
  const asked = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const names = asked.length ? asked : ['attention', 'complete'];
  for (const name of names) {
    const run = all[name];
    if (!run) {
      console.error(`unknown bench suite "${name}" (have: ${Object.keys(all).join(', ')})`);
      process.exit(2);
    }
    console.log(`\n## ${name}\n`);
    await run();
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
