// A GGUF model with every F16/BF16/quantized tensor replaced by F32 holding exactly its decoded values:
// the float reference a quantized model's computation is measured against (tests only).
import { GGMLType, openGGUF } from '../../engine/gguf';
import { writeGGUF } from '../../engine/ggufWriter';

// Decoders written here from the block layouts (ggml-common.h facts), independent of the addon's.
function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
function decodeToF32(type: number, b: Uint8Array, n: number): Float32Array {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength), y = new Float32Array(n);
  if (type === GGMLType.BF16) {
    const u = new Uint32Array(y.buffer);
    for (let i = 0; i < n; i++) u[i] = v.getUint16(2 * i, true) << 16;
  } else if (type === GGMLType.F16) {
    for (let i = 0; i < n; i++) y[i] = f16ToF32(v.getUint16(2 * i, true));
  } else if (type === GGMLType.Q8_0) {
    for (let blk = 0; blk < n / 32; blk++) {
      const d = f16ToF32(v.getUint16(blk * 34, true));
      for (let j = 0; j < 32; j++) y[blk * 32 + j] = d * v.getInt8(blk * 34 + 2 + j);
    }
  } else if (type === GGMLType.Q4_0) {
    for (let blk = 0; blk < n / 32; blk++) {
      const d = f16ToF32(v.getUint16(blk * 18, true));
      for (let j = 0; j < 16; j++) {
        const q = b[blk * 18 + 2 + j];
        y[blk * 32 + j] = d * ((q & 0xf) - 8);
        y[blk * 32 + j + 16] = d * ((q >> 4) - 8);
      }
    }
  } else if (type === GGMLType.Q4_K || type === GGMLType.Q5_K) {
    // d, dmin (fp16), 12 bytes of packed 6-bit scales/mins, [Q5_K: qh[32]], qs[128]; chunks of 64 elements.
    const five = type === GGMLType.Q5_K, bs = five ? 176 : 144;
    for (let blk = 0; blk < n / 256; blk++) {
      const o = blk * bs, d = f16ToF32(v.getUint16(o, true)), dmin = f16ToF32(v.getUint16(o + 2, true));
      const sc = b.subarray(o + 4, o + 16), qh = b.subarray(o + 16, o + 48), qs = b.subarray(o + (five ? 48 : 16), o + bs);
      const scaleMin = (j: number) => j < 4 ? [sc[j] & 63, sc[j + 4] & 63]
        : [(sc[j + 4] & 15) | ((sc[j - 4] >> 6) << 4), (sc[j + 4] >> 4) | ((sc[j] >> 6) << 4)];
      for (let c = 0; c < 4; c++) {
        const [s1, m1] = scaleMin(2 * c), [s2, m2] = scaleMin(2 * c + 1);
        for (let l = 0; l < 32; l++) {
          const lo = (qs[32 * c + l] & 15) + (five && (qh[l] >> (2 * c)) & 1 ? 16 : 0);
          const hi = (qs[32 * c + l] >> 4) + (five && (qh[l] >> (2 * c + 1)) & 1 ? 16 : 0);
          y[blk * 256 + 64 * c + l] = d * s1 * lo - dmin * m1;
          y[blk * 256 + 64 * c + 32 + l] = d * s2 * hi - dmin * m2;
        }
      }
    }
  } else if (type === GGMLType.Q6_K) {
    // ql[128], qh[64], int8 scales[16], d (fp16); x = d * scale[e / 16] * (q - 32).
    for (let blk = 0; blk < n / 256; blk++) {
      const o = blk * 210, d = f16ToF32(v.getUint16(o + 208, true));
      for (let h = 0; h < 2; h++) {
        for (let l = 0; l < 32; l++) {
          for (let k = 0; k < 4; k++) {
            const qlByte = b[o + 64 * h + l + (k & 1 ? 32 : 0)];
            const low = k & 2 ? qlByte >> 4 : qlByte & 15;
            const top = (b[o + 128 + 32 * h + l] >> (2 * k)) & 3;
            const e = 128 * h + 32 * k + l;
            y[blk * 256 + e] = d * v.getInt8(o + 192 + (e >> 4)) * ((low | (top << 4)) - 32);
          }
        }
      }
    }
  } else throw new Error(`no JS decoder for type ${type}`);
  return y;
}

/**
 * The same model with every non-F32 tensor (F16, BF16, Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) replaced by F32 holding
 * exactly its decoded values,
 * written a million values at a time (a 151k-token embedding is 544 MB in F32).
 */
export function writeDecodedF32(src: string, out: string) {
  const f = openGGUF(src).file;
  writeGGUF(out, {
    metadata: [...f.metadata].map(([k, v]) => (k === 'general.file_type' ? [k, { type: 4, value: 0 }] : [k, v])) as any,
    tensors: f.tensors.map((t) => {
      if (t.type === GGMLType.F32) return { name: t.name, dims: t.dims, type: t.type, data: f.tensorData(t) };
      const n = t.dims.reduce((a, b) => a * b, 1);
      const bytes = f.tensorData(t), perValue = t.size / n, chunk = 1 << 20; // chunk: a multiple of every block size
      return {
        name: t.name, dims: t.dims, type: GGMLType.F32,
        data: function* () {
          for (let i = 0; i < n; i += chunk) {
            const m = Math.min(chunk, n - i);
            yield new Uint8Array(decodeToF32(t.type, bytes.subarray(i * perValue, (i + m) * perValue), m).buffer);
          }
        },
      };
    }),
  });
}

