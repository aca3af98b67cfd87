// llama.cpp (node-llama-cpp) in its own process for the parity tests. Both llama.cpp and Forkcast use
// AMX tiles on x86; tile configuration is per OS thread and both libraries run work on libuv's shared
// worker threads, so hosting both in one process lets one engine's tile release/reconfiguration break
// the other's (llama.cpp then dies with SIGILL). A child process keeps the reference untouched.
// Protocol (process.send): {id, path, ids, nVocab} -> {id, logits: number[]} | {id, error}.
import { getLlama } from 'node-llama-cpp';

const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });

async function lastLogits(path, ids, nVocab) {
  const model = await llama.loadModel({ modelPath: path });
  const ctx = await model.createContext({
    contextSize: 256, threads: 2, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32',
  });
  try {
    const out = await ctx.getSequence().controlledEvaluate([...ids.slice(0, -1), [ids[ids.length - 1], { generateNext: { logits: true } }]]);
    const logits = out[ids.length - 1].next.logits;
    if (logits.size !== nVocab) throw new Error(`llama.cpp returned ${logits.size} logits, expected ${nVocab}`);
    const x = new Array(nVocab).fill(0);
    for (const [t, v] of logits) x[t] = v;
    return x;
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

process.on('message', async (m) => {
  if (m === 'exit') {
    await llama.dispose();
    process.exit(0);
  }
  try {
    process.send({ id: m.id, logits: await lastLogits(m.path, m.ids, m.nVocab) });
  } catch (e) {
    process.send({ id: m.id, error: String(e?.stack ?? e) });
  }
});
process.send({ ready: true });
