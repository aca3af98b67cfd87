// `npm run bench -- kernels`: the matmul kernels on real layer shapes, every weight type, side by
// side in one run: the default kernels (AMX tiles where present), AVX-512, AVX2 and the portable
// scalar path (FORKCAST_SIMD / FORKCAST_NO_SIMD, read by the addon at each call), against the
// memory read bandwidth measured in the same run.
//
// GEMV (n = 1) streams the weights once per call, so its ceiling is bandwidth: the "% of BW" column is
// weight bytes per second over the read bandwidth measured right before that row (shared machine). To measure that ceiling honestly the
// weights rotate through enough copies (>= 256 MiB) that they come from memory, not cache, as in a
// real decode step. n = 16 is a batch of candidates (one weight read for all 16); n = 128 a prompt tile.
import { loadAddon } from '../engine/native';
import { measureBandwidth } from './bandwidth';
import { printTable, ratio, type Row } from './table';

const T = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 } as const;
type TypeName = keyof typeof T;
const BLOCK: Record<TypeName, [number, number]> = {
  F32: [1, 4], F16: [1, 2], BF16: [1, 2], Q8_0: [32, 34], Q4_0: [32, 18], Q4_K: [256, 144], Q5_K: [256, 176], Q6_K: [256, 210],
};

// Qwen2.5-Coder-0.5B's ffn_down (ne0 = 4864 inputs, ne1 = 896 outputs; 4864 = 19 * 256 fits every
// block type) and DeepSeek-Coder-1.3B's ffn_up (2048 -> 5504).
const SHAPES = [
  { name: 'qwen0.5b ffn_down', K: 4864, M: 896 },
  { name: 'deepseek1.3b ffn_up', K: 2048, M: 5504 },
];
const ROTATE_BYTES = 256 * 1024 * 1024;

function now(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

type Family = 'best' | 'avx512' | 'avx2' | 'scalar';
// 'best' is what the CPU gets by default (on AMX machines: AMX tiles for quantized weights when
// n >= 4); the others cap the kernel family through the variables the addon reads at each call.
function setFamily(f: Family) {
  delete process.env.FORKCAST_NO_SIMD;
  delete process.env.FORKCAST_SIMD;
  if (f === 'scalar') process.env.FORKCAST_NO_SIMD = '1';
  if (f === 'avx2' || f === 'avx512') process.env.FORKCAST_SIMD = f;
}

/** Best seconds per call over `passes` passes, each pass calling once per weight copy. */
function timeCalls(call: (copy: number) => void, copies: number, passes: number, budgetSec: number): number {
  call(0); // warm-up: pool threads, scratch buffers
  let best = Infinity;
  const start = now();
  for (let p = 0; p < passes; p++) {
    const t0 = now();
    for (let c = 0; c < copies; c++) call(c);
    best = Math.min(best, (now() - t0) / copies);
    if (now() - start > budgetSec) break;
  }
  return best;
}

export async function benchKernels(): Promise<void> {
  const addon = loadAddon();
  const cpu = addon.cpuInfo();
  const threads = Math.max(1, Math.min(2, cpu.physicalCores));
  const simdName = cpu.avx512vnni ? 'avx512vnni' : cpu.avx2 ? 'avx2' : 'scalar';
  const bw = await measureBandwidth(threads);
  console.log(`CPU: ${cpu.physicalCores} physical cores; widest SIMD: ${simdName}; threads: ${threads}`);
  console.log(`Memory read bandwidth: ${(bw.bytesPerSec / 1e9).toFixed(1)} GB/s (${bw.method})\n`);

  const families: Family[] = cpu.avx512vnni ? ['best', 'avx512', 'avx2', 'scalar'] : cpu.avx2 ? ['best', 'scalar'] : ['scalar'];
  console.log("'best' = the default kernels (AMX tiles for quantized weights with n >= 4 where the CPU has AMX), " +
    "'avx512'/'avx2' = those families forced, 'scalar' = FORKCAST_NO_SIMD=1.\n");
  try {
    for (const shape of SHAPES) {
      const rows: Row[] = [];
      for (const type of Object.keys(T) as TypeName[]) {
        const [qk, bsz] = BLOCK[type];
        const rowBytes = (shape.K / qk) * bsz, wBytes = rowBytes * shape.M;
        // one quantized matrix, copied so GEMV reads come from memory
        const src = new Float32Array(shape.K * shape.M);
        for (let i = 0; i < src.length; i++) src[i] = (Math.random() - 0.5) * 0.1;
        const w0 = addon.quantize(T[type], src);
        const copies = Math.max(1, Math.min(64, Math.floor(ROTATE_BYTES / wBytes)));
        const ws = Array.from({ length: copies }, (_, c) => (c === 0 ? w0 : w0.slice()));
        for (const n of [1, 16, 128]) {
          const x = new Float32Array(n * shape.K);
          for (let i = 0; i < x.length; i++) x[i] = Math.random() * 2 - 1;
          const flop = 2 * n * shape.K * shape.M;
          const gflops: Partial<Record<Family, number>> = {};
          for (const f of families) {
            setFamily(f);
            // GEMV and the candidate batch rotate through the copies (weights from memory); the
            // prompt tile is compute-bound: a few calls on one copy. Scalar gets a short budget.
            const nCopies = n <= 16 ? copies : 1;
            const passes = f === 'scalar' ? 1 : 3;
            const sec = timeCalls((c) => addon.matmul(T[type], ws[c % ws.length], shape.K, shape.M, x, n, threads), nCopies, passes, f === 'scalar' ? 2 : 5);
            gflops[f] = flop / sec / 1e9;
          }
          // this machine is shared: re-measure the bandwidth next to each GEMV row so the ratio
          // compares like with like (the probe reads 256 MiB, best of 2)
          const bwNow = n === 1 ? (await measureBandwidth(threads, 256, 2)).bytesPerSec : undefined;
          const best = gflops[families[0]]!;
          const wGBs = (wBytes * best) / flop;  // weight bytes per second at the best family's speed
          rows.push({
            type,
            n,
            'ms/call': (flop / best / 1e9) * 1e3,
            'best GFLOP/s': best,
            'weights GB/s': wGBs,
            'BW now GB/s': bwNow !== undefined ? bwNow / 1e9 : undefined,
            '% of BW': bwNow !== undefined ? (100 * wGBs * 1e9) / bwNow : undefined,
            ...(families.includes('avx512') ? { 'avx512 GFLOP/s': gflops.avx512 } : {}),
            ...(families.includes('avx2') ? { 'avx2 GFLOP/s': gflops.avx2 } : {}),
            'scalar GFLOP/s': gflops.scalar,
            'best vs scalar': ratio(best, gflops.scalar),
          });
        }
      }
      printTable(rows, `matmul ${shape.name}: ${shape.K} -> ${shape.M}, ${threads} threads (weights rotate through >= 256 MiB for n = 1)`);
    }
  } finally {
    setFamily('best');
  }
}
