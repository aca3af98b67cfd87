// llama.cpp (node-llama-cpp) for the peers benchmark, in its own process. Both llama.cpp and Forkcast
// use AMX tiles on x86, and tile configuration is per OS thread; both run work on libuv's shared
// worker threads, so in one process one engine's tile release breaks the other (llama.cpp dies with
// SIGILL). A child process keeps each engine's threads its own.
// Protocol (process.send): {id, op: 'open', path, threads, fa, ppTokens, contextSize} | {id, op: 'pp'|'tg', tokens, n}
//   | {id, op: 'dispose'}  ->  {id, value} | {id, error}.
import { getLlama } from 'node-llama-cpp';

let llama, model, context, seq;

const ops = {
  async open({ path, threads, fa, ppTokens, contextSize }) {
    llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error', maxThreads: threads });
    model = await llama.loadModel({ modelPath: path, gpuLayers: 0 });
    context = await model.createContext({
      contextSize, batchSize: ppTokens, sequences: 1, threads: { ideal: threads, min: threads },
      flashAttention: fa === 'auto' ? 'auto' : fa === 'on', // 'auto' = llama.cpp decides, as the harness's AUTO
    });
    seq = context.getSequence();
    return 0;
  },
  async pp({ tokens, n }) {
    await seq.clearHistory();
    const t0 = performance.now();
    await seq.evaluateWithoutGeneratingNewTokens(tokens.slice(0, n));
    return performance.now() - t0;
  },
  async tg({ tokens, n }) {
    await seq.clearHistory();
    // evaluate() decodes the given ids, samples (greedy), yields; next(id) replaces the sample with our id.
    const it = seq.evaluate([tokens[0]], { temperature: 0, yieldEogToken: true });
    await it.next();
    const t0 = performance.now();
    for (let i = 1; i <= n; i++) await it.next(tokens[i]);
    const ms = performance.now() - t0;
    await it.return(undefined);
    return ms;
  },
  async dispose() {
    await context?.dispose();
    await model?.dispose();
    await llama?.dispose();
    setImmediate(() => process.exit(0));
    return 0;
  },
};

process.on('message', async (m) => {
  try {
    process.send({ id: m.id, value: await ops[m.op](m) });
  } catch (e) {
    process.send({ id: m.id, error: String(e?.stack ?? e) });
  }
});
