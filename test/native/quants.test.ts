// The GGUF block codecs of the native addon (quantize/dequantize), checked two ways:
//  1. decoding: random hand-built blocks decoded by the addon vs a second, independent float64
//     decoder written here from the layout spec (ggml-common.h, restated in native/src/quants.h),
//     indexed per element rather than per block so the two implementations share no structure;
//  2. encoding: quantize -> dequantize round trips on fresh random data (varying scale per block,
//     offsets, outliers), whose relative RMS error must stay within what each format can reach.
// Seeds are printed so a failure can be replayed.
import { describe, expect, test } from 'vitest';
import { loadAddon } from '../../engine/native';
import { freshSeed, gaussian, xorshift } from '../random';

const addon = loadAddon();

const T = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 8, Q4_K: 12, Q5_K: 13, Q6_K: 14, BF16: 30 } as const;
type TypeName = keyof typeof T;
// [elements per block, bytes per block]
const BLOCK: Record<TypeName, [number, number]> = {
  F32: [1, 4], F16: [1, 2], BF16: [1, 2], Q8_0: [32, 34], Q4_0: [32, 18], Q4_K: [256, 144], Q5_K: [256, 176], Q6_K: [256, 210],
};

const SEED = freshSeed();
const uniform = xorshift(SEED);
const normal = gaussian(uniform);
console.log(`[quants.test] seed ${SEED}`);

// ---- independent reference decoders (float64) ----

// IEEE binary16 from its bit fields.
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 31) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}
function bf16ToNumber(h: number): number {
  const b = new DataView(new ArrayBuffer(4));
  b.setUint32(0, h << 16, true);
  return b.getFloat32(0, true);
}

// Value of element e (0-based within its block) of a block starting at byte offset o.
function refElement(type: TypeName, u8: Uint8Array, o: number, e: number): number {
  const dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
  const f16 = (at: number) => halfToNumber(dv.getUint16(at, true));
  switch (type) {
    case 'Q8_0': return f16(o) * dv.getInt8(o + 2 + e);
    case 'Q4_0': {
      const byte = u8[o + 2 + (e % 16)];
      return f16(o) * ((e < 16 ? byte & 15 : byte >> 4) - 8);
    }
    case 'Q4_K': case 'Q5_K': {
      // 6-bit scale and min of sub-block j (32 elements): j < 4 in the low 6 bits of bytes j and
      // j+4; j >= 4 split as 4 low bits in byte j+4 (scale: low nibble, min: high nibble) and
      // 2 high bits in the top bits of bytes j-4 (scale) and j (min).
      const s = o + 4, j = e >> 5;
      const sc = j < 4 ? u8[s + j] & 63 : (u8[s + j + 4] & 15) | ((u8[s + j - 4] >> 6) << 4);
      const mn = j < 4 ? u8[s + j + 4] & 63 : (u8[s + j + 4] >> 4) | ((u8[s + j] >> 6) << 4);
      const qsAt = type === 'Q4_K' ? o + 16 : o + 48;
      const byte = u8[qsAt + 32 * (e >> 6) + (e & 31)];
      let q = (e & 63) < 32 ? byte & 15 : byte >> 4;
      if (type === 'Q5_K') q += ((u8[o + 16 + (e & 31)] >> j) & 1) * 16;  // qh[l], bit = sub-block index
      return f16(o) * sc * q - f16(o + 2) * mn;
    }
    case 'Q6_K': {
      const h = e >> 7, k = (e >> 5) & 3, l = e & 31;
      const lowByte = u8[o + 64 * h + 32 * (k & 1) + l];
      const low = k < 2 ? lowByte & 15 : lowByte >> 4;
      const high = (u8[o + 128 + 32 * h + l] >> (2 * k)) & 3;
      const scale = dv.getInt8(o + 192 + (e >> 4));
      return f16(o + 208) * scale * ((low | (high << 4)) - 32);
    }
    default: throw new Error(type);
  }
}

// Random blocks: random bytes everywhere, with the fp16 scale fields set to finite values of mixed
// magnitude (NaN/inf scales would make the comparison meaningless).
function randomHalfBits(): number {
  for (;;) {
    const h = (uniform() * 65536) | 0;
    const e = (h >> 10) & 0x1f;
    if (e !== 31 && e > 4 && e < 24) return h;
  }
}
function randomBlocks(type: TypeName, nblocks: number): Uint8Array {
  const [, bytes] = BLOCK[type];
  const u8 = new Uint8Array(nblocks * bytes);
  for (let i = 0; i < u8.length; i++) u8[i] = (uniform() * 256) | 0;
  const dv = new DataView(u8.buffer);
  const halfFields = type === 'Q6_K' ? [208] : type === 'Q4_K' || type === 'Q5_K' ? [0, 2] : [0];
  for (let b = 0; b < nblocks; b++) for (const f of halfFields) dv.setUint16(b * bytes + f, randomHalfBits(), true);
  return u8;
}

describe('dequantize matches an independent decoder of the GGUF block layouts', () => {
  for (const type of ['Q8_0', 'Q4_0', 'Q4_K', 'Q5_K', 'Q6_K'] as TypeName[]) {
    test(type, () => {
      const [qk, bytes] = BLOCK[type];
      const nblocks = 64;
      const u8 = randomBlocks(type, nblocks);
      const got = addon.dequantize(T[type], u8, nblocks * qk);
      expect(got.length).toBe(nblocks * qk);
      let maxRel = 0;
      for (let b = 0; b < nblocks; b++) {
        // the native code works in float32: allow float32 rounding relative to the block's largest value
        let blockMax = 0;
        const ref: number[] = [];
        for (let e = 0; e < qk; e++) {
          ref.push(refElement(type, u8, b * bytes, e));
          blockMax = Math.max(blockMax, Math.abs(ref[e]));
        }
        for (let e = 0; e < qk; e++) {
          const rel = Math.abs(got[b * qk + e] - ref[e]) / (blockMax || 1);
          maxRel = Math.max(maxRel, rel);
        }
      }
      console.log(`[dequantize ${type}] max |native - ref| / block max = ${maxRel.toExponential(2)}`);
      expect(maxRel).toBeLessThan(1e-6);
    });
  }

  test('F16 and BF16: every one of the 65536 bit patterns', () => {
    const all = new Uint8Array(65536 * 2);
    const dv = new DataView(all.buffer);
    for (let h = 0; h < 65536; h++) dv.setUint16(2 * h, h, true);
    const f16 = addon.dequantize(T.F16, all, 65536);
    const bf16 = addon.dequantize(T.BF16, all, 65536);
    let bad = 0;
    for (let h = 0; h < 65536; h++) {
      const a = halfToNumber(h), b = bf16ToNumber(h);
      if (!(Object.is(f16[h], a) || (Number.isNaN(a) && Number.isNaN(f16[h])))) bad++;
      if (!(Object.is(bf16[h], b) || (Number.isNaN(b) && Number.isNaN(bf16[h])))) bad++;
    }
    expect(bad).toBe(0);
  });
});

describe('quantize rounds F16 and BF16 to nearest, ties to even', () => {
  // All finite halves in increasing order, to find the nearest one by search.
  const halves: Array<[number, number]> = [];
  for (let h = 0; h < 0x7c00; h++) halves.push([halfToNumber(h), h]);
  function nearestHalf(v: number): number {
    const a = Math.abs(v);
    if (a >= 65520) return (v < 0 ? 0x8000 : 0) | 0x7c00;  // beyond max + half an ulp: infinity
    let lo = 0, hi = halves.length - 1;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (halves[mid][0] <= a) lo = mid; else hi = mid;
    }
    const dl = a - halves[lo][0], dh = halves[hi][0] - a;
    const pick = dl < dh ? lo : dh < dl ? hi : (halves[lo][1] & 1 ? hi : lo);
    return (v < 0 ? 0x8000 : 0) | halves[pick][1];
  }
  test('F16', () => {
    const n = 20000;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = normal() * 2 ** Math.floor(uniform() * 44 - 28);
    x[0] = 65519; x[1] = 65520; x[2] = -(2 ** -25); x[3] = 2 ** -24 * 1.5;  // edges: overflow, subnormal ties
    const got = new DataView(addon.quantize(T.F16, x).buffer);
    let bad = 0;
    for (let i = 0; i < n; i++) if (got.getUint16(2 * i, true) !== nearestHalf(x[i])) bad++;
    expect(bad).toBe(0);
  });
  test('BF16', () => {
    const n = 20000;
    const x = new Float32Array(n);
    for (let i = 0; i < n; i++) x[i] = normal() * 2 ** Math.floor(uniform() * 40 - 20);
    const bits = new Uint32Array(x.buffer);
    const got = new DataView(addon.quantize(T.BF16, x).buffer);
    let bad = 0;
    for (let i = 0; i < n; i++) {
      const lo = bits[i] & 0xffff, up = bits[i] >>> 16;
      const want = lo > 0x8000 || (lo === 0x8000 && up & 1) ? up + 1 : up;
      if (got.getUint16(2 * i, true) !== want) bad++;
    }
    expect(bad).toBe(0);
  });
});

// Data like real weights, made harder: each block has its own magnitude (so super-block and
// sub-block scales matter), some rows have an offset (tests the K-quant mins), and rare outliers.
function weightLike(n: number): Float32Array {
  const x = new Float32Array(n);
  for (let b = 0; b < n; b += 32) {
    const scale = 0.02 * 2 ** (uniform() * 4 - 2);
    const offset = uniform() < 0.3 ? normal() * scale : 0;
    for (let i = b; i < Math.min(n, b + 32); i++) x[i] = offset + normal() * scale * (uniform() < 0.01 ? 8 : 1);
  }
  return x;
}

// Relative RMS error bounds on this data: about 1.2x what llama.cpp's own reference quantizers
// (quantize_row_*_ref of the libggml-base.so that node-llama-cpp ships, run on the same distribution
// outside this suite) reach at worst over 10 draws: Q8_0 0.0088, Q4_0 0.129, Q4_K 0.085, Q5_K 0.045,
// Q6_K 0.026. A wrong layout or a broken scale search gives errors near 1.
const RT_BOUND: Record<TypeName, number> = {
  F32: 0, F16: 5e-4, BF16: 4e-3, Q8_0: 0.0105, Q4_0: 0.155, Q4_K: 0.102, Q5_K: 0.054, Q6_K: 0.031,
};

describe('quantize -> dequantize round trip on fresh random data', () => {
  for (const type of Object.keys(T) as TypeName[]) {
    test(type, () => {
      const n = 256 * 96;
      const x = weightLike(n);
      const q = addon.quantize(T[type], x);
      expect(q.length).toBe((n / BLOCK[type][0]) * BLOCK[type][1]);
      const y = addon.dequantize(T[type], q, n);
      let e2 = 0, x2 = 0, maxRel = 0, maxAbs = 0;
      for (let i = 0; i < n; i++) maxAbs = Math.max(maxAbs, Math.abs(x[i]));
      for (let i = 0; i < n; i++) {
        const d = y[i] - x[i];
        e2 += d * d;
        x2 += x[i] * x[i];
        maxRel = Math.max(maxRel, Math.abs(d) / maxAbs);
      }
      const rms = Math.sqrt(e2 / x2);
      console.log(`[round trip ${type}] relative RMS error ${rms.toExponential(3)}, max |error| / max |x| ${maxRel.toExponential(3)}`);
      expect(rms).toBeLessThanOrEqual(RT_BOUND[type]);
      if (type === 'F32') expect(Array.from(y)).toEqual(Array.from(x));
    });
  }

  test('Q8_0 error per element is at most half a step of its block', () => {
    const n = 32 * 200;
    const x = weightLike(n);
    const q = addon.quantize(T.Q8_0, x);
    const y = addon.dequantize(T.Q8_0, q, n);
    const dv = new DataView(q.buffer, q.byteOffset);
    let worst = 0;
    for (let b = 0; b < n; b += 32) {
      let amax = 0;
      for (let i = b; i < b + 32; i++) amax = Math.max(amax, Math.abs(x[i]));
      // the stored scale is amax/127 rounded to fp16; levels are rounded against that stored scale,
      // so the error is half a step, or the clamp at +-127 when rounding made the scale smaller
      const d = halfToNumber(dv.getUint16((b / 32) * 34, true));
      const bound = Math.max(d / 2, amax - 127 * d) * (1 + 1e-6);
      for (let i = b; i < b + 32; i++) worst = Math.max(worst, Math.abs(y[i] - x[i]) / bound);
    }
    expect(worst).toBeLessThanOrEqual(1);
  });

  test('constant and all-zero blocks stay exact where the format can represent them', () => {
    for (const type of ['Q8_0', 'Q4_0', 'Q4_K', 'Q5_K', 'Q6_K'] as TypeName[]) {
      const z = new Float32Array(512);
      expect(Array.from(addon.dequantize(T[type], addon.quantize(T[type], z), 512)).every((v) => v === 0)).toBe(true);
    }
  });

  test('bad arguments are refused with a message naming the problem', () => {
    expect(() => addon.quantize(99, new Float32Array(32))).toThrow(/unsupported type/);
    expect(() => addon.quantize(T.Q4_K, new Float32Array(100))).toThrow(/multiple of 256/);
    expect(() => addon.dequantize(T.Q8_0, new Uint8Array(33), 32)).toThrow(/shorter/);
  });
});
