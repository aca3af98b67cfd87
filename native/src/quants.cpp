// Scalar encoders and decoders of the GGUF tensor types. Block layouts and decoding formulas are
// ggml's (ggml/src/ggml-common.h and ggml/src/ggml-quants.c in ggml-org/llama.cpp), restated in
// quants.h; the quantizers are our own (search for the scale, then round), written for test and
// benchmark models: the decoder is what must match llama.cpp bit for bit.
#include "quants.h"

#include <cmath>
#include <cstring>

#include "threadpool.h"

// ---- half and bfloat16 ----

// IEEE 754 binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits.
float fp16_to_fp32(uint16_t h) {
#if defined(__aarch64__)
  __fp16 v;  // AArch64 converts in hardware (the portable kernels' F16 path on ARM Macs)
  std::memcpy(&v, &h, 2);
  return (float)v;
#endif
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: value = man * 2^-24; renormalize into a float
      int e = 0;
      while (!(man & 0x400)) {
        man <<= 1;
        e++;
      }
      man &= 0x3ff;
      bits = sign | (uint32_t)(127 - 15 + 1 - e) << 23 | man << 13;
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | man << 13;  // inf / nan
  } else {
    bits = sign | (exp + 127 - 15) << 23 | man << 13;
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, overflow to inf, subnormals kept.
uint16_t fp32_to_fp16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint16_t sign = (x >> 16) & 0x8000;
  const uint32_t absx = x & 0x7fffffff;
  if (absx >= 0x7f800000u) return sign | 0x7c00 | (absx > 0x7f800000u ? 0x200 : 0);  // inf/nan
  if (absx >= 0x477ff000u) return sign | 0x7c00;  // rounds above 65504: inf
  if (absx < 0x38800000u) {                       // below 2^-14: half subnormal (or zero)
    if (absx < 0x33000000u) return sign;          // below 2^-25 rounds to zero
    const int e = (int)(absx >> 23);              // biased float exponent, 102..112
    const uint32_t man = (absx & 0x7fffff) | 0x800000;
    const int shift = 126 - e;                    // man * 2^(e-150) = q * 2^-24  =>  q = man >> (126 - e)
    uint32_t q = man >> shift;
    const uint32_t rem = man & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return sign | (uint16_t)q;
  }
  uint32_t v = absx - ((uint32_t)(127 - 15) << 23);  // rebias the exponent
  const uint32_t rem = v & 0x1fff;
  v >>= 13;
  if (rem > 0x1000 || (rem == 0x1000 && (v & 1))) v++;  // may carry into the exponent: still right
  return sign | (uint16_t)v;
}

float bf16_to_fp32(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

uint16_t fp32_to_bf16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  if ((x & 0x7fffffff) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);  // quiet nan
  x += 0x7fff + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

// ---- type table ----

int64_t ggml_block_size(int32_t type) {
  switch (type) {
    case GGML_F32: case GGML_F16: case GGML_BF16: return 1;
    case GGML_Q8_0: return QK8_0;
    case GGML_Q4_0: return QK4_0;
    case GGML_Q4_K: case GGML_Q5_K: case GGML_Q6_K: return QK_K;
    default: return 0;
  }
}

int64_t ggml_type_size(int32_t type) {
  switch (type) {
    case GGML_F32: return 4;
    case GGML_F16: case GGML_BF16: return 2;
    case GGML_Q8_0: return sizeof(block_q8_0);
    case GGML_Q4_0: return sizeof(block_q4_0);
    case GGML_Q4_K: return sizeof(block_q4_K);
    case GGML_Q5_K: return sizeof(block_q5_K);
    case GGML_Q6_K: return sizeof(block_q6_K);
    default: return 0;
  }
}

const char* ggml_type_name(int32_t type) {
  switch (type) {
    case GGML_F32: return "F32";
    case GGML_F16: return "F16";
    case GGML_BF16: return "BF16";
    case GGML_Q8_0: return "Q8_0";
    case GGML_Q4_0: return "Q4_0";
    case GGML_Q4_K: return "Q4_K";
    case GGML_Q5_K: return "Q5_K";
    case GGML_Q6_K: return "Q6_K";
    default: return "unsupported";
  }
}

int64_t ggml_row_size(int32_t type, int64_t n) {
  const int64_t bs = ggml_block_size(type);
  return bs ? n / bs * ggml_type_size(type) : 0;
}

// ---- decoders (formulas in quants.h) ----

static void dequant_q8_0(const block_q8_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, y += QK8_0) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK8_0; j++) y[j] = d * b[i].qs[j];
  }
}

static void dequant_q4_0(const block_q4_0* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, y += QK4_0) {
    const float d = fp16_to_fp32(b[i].d);
    for (int j = 0; j < QK4_0 / 2; j++) {
      y[j] = d * ((b[i].qs[j] & 0xF) - 8);
      y[j + 16] = d * ((b[i].qs[j] >> 4) - 8);
    }
  }
}

static void dequant_q4_K(const block_q4_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; i++) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    for (int c = 0; c < 4; c++, y += 64) {
      const uint8_t* q = b[i].qs + 32 * c;
      uint8_t sc0, m0, sc1, m1;
      kquant_scale_min(2 * c, b[i].scales, &sc0, &m0);
      kquant_scale_min(2 * c + 1, b[i].scales, &sc1, &m1);
      const float d0 = d * sc0, n0 = dmin * m0, d1 = d * sc1, n1 = dmin * m1;
      for (int l = 0; l < 32; l++) {
        y[l] = d0 * (q[l] & 0xF) - n0;
        y[l + 32] = d1 * (q[l] >> 4) - n1;
      }
    }
  }
}

static void dequant_q5_K(const block_q5_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; i++) {
    const float d = fp16_to_fp32(b[i].d), dmin = fp16_to_fp32(b[i].dmin);
    for (int c = 0; c < 4; c++, y += 64) {
      const uint8_t* q = b[i].qs + 32 * c;
      const uint8_t* qh = b[i].qh;
      uint8_t sc0, m0, sc1, m1;
      kquant_scale_min(2 * c, b[i].scales, &sc0, &m0);
      kquant_scale_min(2 * c + 1, b[i].scales, &sc1, &m1);
      const float d0 = d * sc0, n0 = dmin * m0, d1 = d * sc1, n1 = dmin * m1;
      for (int l = 0; l < 32; l++) {
        const int h0 = (qh[l] >> (2 * c)) & 1, h1 = (qh[l] >> (2 * c + 1)) & 1;
        y[l] = d0 * ((q[l] & 0xF) | h0 << 4) - n0;
        y[l + 32] = d1 * ((q[l] >> 4) | h1 << 4) - n1;
      }
    }
  }
}

static void dequant_q6_K(const block_q6_K* b, float* y, int64_t nb) {
  for (int64_t i = 0; i < nb; i++) {
    const float d = fp16_to_fp32(b[i].d);
    for (int h = 0; h < 2; h++, y += 128) {
      const uint8_t* ql = b[i].ql + 64 * h;
      const uint8_t* qh = b[i].qh + 32 * h;
      const int8_t* sc = b[i].scales + 8 * h;
      for (int l = 0; l < 32; l++) {
        const int q0 = ((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32;
        const int q1 = ((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32;
        const int q2 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
        const int q3 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
        const int s = l / 16;
        y[l] = d * sc[s] * q0;
        y[l + 32] = d * sc[s + 2] * q1;
        y[l + 64] = d * sc[s + 4] * q2;
        y[l + 96] = d * sc[s + 6] * q3;
      }
    }
  }
}

void dequantize_row(int32_t type, const void* x, float* y, int64_t n) {
  const uint8_t* p = static_cast<const uint8_t*>(x);
  switch (type) {
    case GGML_F32: std::memcpy(y, p, n * sizeof(float)); return;
    case GGML_F16:
      for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        y[i] = fp16_to_fp32(h);
      }
      return;
    case GGML_BF16:
      for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        y[i] = bf16_to_fp32(h);
      }
      return;
    case GGML_Q8_0: dequant_q8_0(static_cast<const block_q8_0*>(x), y, n / QK8_0); return;
    case GGML_Q4_0: dequant_q4_0(static_cast<const block_q4_0*>(x), y, n / QK4_0); return;
    case GGML_Q4_K: dequant_q4_K(static_cast<const block_q4_K*>(x), y, n / QK_K); return;
    case GGML_Q5_K: dequant_q5_K(static_cast<const block_q5_K*>(x), y, n / QK_K); return;
    case GGML_Q6_K: dequant_q6_K(static_cast<const block_q6_K*>(x), y, n / QK_K); return;
    default: return;
  }
}

// ---- reference quantizers ----

// Round to nearest (lrintf: one cvtss2si instruction, ties to even) and clamp.
static inline int round_clamp(float v, int lo, int hi) {
  const int q = (int)std::lrintf(v);
  return q < lo ? lo : q > hi ? hi : q;
}

static void quant_q8_0(const float* x, block_q8_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += QK8_0) {
    float amax = 0;
    for (int j = 0; j < QK8_0; j++) amax = std::fmax(amax, std::fabs(x[j]));
    b[i].d = fp32_to_fp16(amax / 127.0f);
    const float d = fp16_to_fp32(b[i].d);  // round with the scale the decoder will use
    const float id = d ? 1.0f / d : 0.0f;
    for (int j = 0; j < QK8_0; j++) b[i].qs[j] = (int8_t)round_clamp(x[j] * id, -127, 127);
  }
}

// Q4_0 maps the element of largest magnitude to -8 (the end of [-8, 7] with room), so its sign
// decides the sign of d; the rest round to the nearest level.
static void quant_q4_0(const float* x, block_q4_0* b, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += QK4_0) {
    float vmax = 0;
    for (int j = 0; j < QK4_0; j++)
      if (std::fabs(x[j]) > std::fabs(vmax)) vmax = x[j];
    const float d = vmax / -8.0f;
    b[i].d = fp32_to_fp16(d);
    const float dq = fp16_to_fp32(b[i].d);
    const float id = dq ? 1.0f / dq : 0.0f;
    for (int j = 0; j < QK4_0 / 2; j++) {
      const int q0 = round_clamp(x[j] * id, -8, 7) + 8;
      const int q1 = round_clamp(x[j + 16] * id, -8, 7) + 8;
      b[i].qs[j] = (uint8_t)(q0 | q1 << 4);
    }
  }
}

// Fits x ~= s * q - m with q in [0, nmax], m >= 0 (asymmetric sub-block of a Q4_K/Q5_K block).
// Tries a range of candidate scales, rounds with each, then solves the 2x2 least-squares problem for
// (s, m) given those levels, keeping the fit with the least squared error.
static void fit_scale_min(const float* x, int n, int nmax, float* s_out, float* m_out) {
  float lo = x[0], hi = x[0];
  for (int i = 1; i < n; i++) {
    lo = std::fmin(lo, x[i]);
    hi = std::fmax(hi, x[i]);
  }
  if (lo > 0) lo = 0;  // the min term only shifts down (m >= 0), as ggml's format requires
  if (hi == lo) {
    *s_out = 0;
    *m_out = -lo;
    return;
  }
  float sx = 0;
  for (int i = 0; i < n; i++) sx += x[i];
  float best_s = (hi - lo) / nmax, best_m = -lo, best_err = INFINITY;
  for (int step = -6; step <= 12; step++) {
    const float iscale = (nmax + 0.1f * step) / (hi - lo);
    int L[QK_K];
    float sl = 0, sll = 0, sxl = 0;
    for (int i = 0; i < n; i++) {
      L[i] = round_clamp((x[i] - lo) * iscale, 0, nmax);
      sl += L[i];
      sll += (float)(L[i] * L[i]);
      sxl += x[i] * L[i];
    }
    const float det = n * sll - sl * sl;
    if (det <= 0) continue;
    float s = (n * sxl - sl * sx) / det;
    float m = (sl * sxl - sll * sx) / det;  // x ~= s*L - m  =>  m = (s*sum L - sum x)/n
    if (m < 0) {                            // min would go up: pin it at 0, refit s alone
      m = 0;
      s = sxl / sll;
    }
    float err = 0;
    for (int i = 0; i < n; i++) {
      const float e = s * L[i] - m - x[i];
      err += e * e;
    }
    if (err < best_err) {
      best_err = err;
      best_s = s;
      best_m = m;
    }
  }
  *s_out = best_s;
  *m_out = best_m;
}

// Fits x ~= s * q with q in [-nneg, npos] (symmetric sub-block of Q6_K): candidate scales around
// mapping the element of largest magnitude to -nneg, each refit by least squares.
static float fit_scale_sym(const float* x, int n, int nneg, int npos) {
  float vmax = 0;
  for (int i = 0; i < n; i++)
    if (std::fabs(x[i]) > std::fabs(vmax)) vmax = x[i];
  if (vmax == 0) return 0;
  float best_s = vmax / -nneg, best_err = INFINITY;
  for (int step = -6; step <= 12; step++) {
    const float iscale = -(nneg + 0.1f * step) / vmax;
    float sxl = 0, sll = 0;
    int L[QK_K];
    for (int i = 0; i < n; i++) {
      L[i] = round_clamp(x[i] * iscale, -nneg, npos);
      sxl += x[i] * L[i];
      sll += (float)(L[i] * L[i]);
    }
    if (sll == 0) continue;
    const float s = sxl / sll;
    float err = 0;
    for (int i = 0; i < n; i++) {
      const float e = s * L[i] - x[i];
      err += e * e;
    }
    if (err < best_err) {
      best_err = err;
      best_s = s;
    }
  }
  return best_s;
}

// Shared by Q4_K (nmax 15) and Q5_K (nmax 31): per-sub-block scale/min, then 6-bit quantization of
// those against the super-block's d and dmin, then the levels re-rounded with the stored values.
static void quant_kquant_levels(const float* x, int nmax, uint16_t* d_out, uint16_t* dmin_out,
                                uint8_t scales[K_SCALE_SIZE], uint8_t L[QK_K]) {
  float s[8], m[8], smax = 0, mmax = 0;
  for (int j = 0; j < 8; j++) {
    fit_scale_min(x + 32 * j, 32, nmax, &s[j], &m[j]);
    if (s[j] < 0) s[j] = 0;
    smax = std::fmax(smax, s[j]);
    mmax = std::fmax(mmax, m[j]);
  }
  *d_out = fp32_to_fp16(smax / 63.0f);
  *dmin_out = fp32_to_fp16(mmax / 63.0f);
  const float d = fp16_to_fp32(*d_out), dmin = fp16_to_fp32(*dmin_out);
  uint8_t sc[8], mn[8];
  for (int j = 0; j < 8; j++) {
    sc[j] = (uint8_t)(d ? round_clamp(s[j] / d, 0, 63) : 0);
    mn[j] = (uint8_t)(dmin ? round_clamp(m[j] / dmin, 0, 63) : 0);
  }
  std::memset(scales, 0, K_SCALE_SIZE);
  for (int j = 0; j < 8; j++) {  // inverse of kquant_scale_min
    if (j < 4) {
      scales[j] |= sc[j];
      scales[j + 4] |= mn[j];
    } else {
      scales[j + 4] = (uint8_t)((sc[j] & 0xF) | (mn[j] & 0xF) << 4);
      scales[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
      scales[j] |= (uint8_t)((mn[j] >> 4) << 6);
    }
  }
  for (int j = 0; j < 8; j++) {
    const float ds = d * sc[j], dm = dmin * mn[j];
    for (int l = 0; l < 32; l++)
      L[32 * j + l] = (uint8_t)(ds ? round_clamp((x[32 * j + l] + dm) / ds, 0, nmax) : 0);
  }
}

static void quant_q4_K(const float* x, block_q4_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += QK_K) {
    uint8_t L[QK_K];
    quant_kquant_levels(x, 15, &b[i].d, &b[i].dmin, b[i].scales, L);
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 32; l++) b[i].qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
  }
}

static void quant_q5_K(const float* x, block_q5_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += QK_K) {
    uint8_t L[QK_K];
    quant_kquant_levels(x, 31, &b[i].d, &b[i].dmin, b[i].scales, L);
    std::memset(b[i].qh, 0, sizeof b[i].qh);
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 32; l++) {
        const int lo = L[64 * c + l], hi = L[64 * c + 32 + l];
        b[i].qs[32 * c + l] = (uint8_t)((lo & 0xF) | (hi & 0xF) << 4);
        b[i].qh[l] |= (uint8_t)((lo >> 4) << (2 * c) | (hi >> 4) << (2 * c + 1));
      }
  }
}

static void quant_q6_K(const float* x, block_q6_K* b, int64_t nb) {
  for (int64_t i = 0; i < nb; i++, x += QK_K) {
    float s[16], smax = 0;
    for (int j = 0; j < 16; j++) {
      s[j] = fit_scale_sym(x + 16 * j, 16, 32, 31);
      if (std::fabs(s[j]) > std::fabs(smax)) smax = s[j];
    }
    b[i].d = fp32_to_fp16(std::fabs(smax) / 127.0f);
    const float d = fp16_to_fp32(b[i].d);
    int L[QK_K];
    for (int j = 0; j < 16; j++) {
      b[i].scales[j] = (int8_t)(d ? round_clamp(s[j] / d, -127, 127) : 0);
      const float ds = d * b[i].scales[j];
      for (int l = 0; l < 16; l++) L[16 * j + l] = (ds ? round_clamp(x[16 * j + l] / ds, -32, 31) : 0) + 32;
    }
    for (int h = 0; h < 2; h++) {
      const int* q = L + 128 * h;
      for (int l = 0; l < 32; l++) {
        b[i].ql[64 * h + l] = (uint8_t)((q[l] & 0xF) | (q[l + 64] & 0xF) << 4);
        b[i].ql[64 * h + 32 + l] = (uint8_t)((q[l + 32] & 0xF) | (q[l + 96] & 0xF) << 4);
        b[i].qh[32 * h + l] = (uint8_t)((q[l] >> 4) | (q[l + 32] >> 4) << 2 | (q[l + 64] >> 4) << 4 | (q[l + 96] >> 4) << 6);
      }
    }
  }
}

void quantize_row(int32_t type, const float* x, void* y, int64_t n) {
  uint8_t* p = static_cast<uint8_t*>(y);
  switch (type) {
    case GGML_F32: std::memcpy(p, x, n * sizeof(float)); return;
    case GGML_F16:
      for (int64_t i = 0; i < n; i++) {
        const uint16_t h = fp32_to_fp16(x[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    case GGML_BF16:
      for (int64_t i = 0; i < n; i++) {
        const uint16_t h = fp32_to_bf16(x[i]);
        std::memcpy(p + 2 * i, &h, 2);
      }
      return;
    case GGML_Q8_0: quant_q8_0(x, static_cast<block_q8_0*>(y), n / QK8_0); return;
    case GGML_Q4_0: quant_q4_0(x, static_cast<block_q4_0*>(y), n / QK4_0); return;
    case GGML_Q4_K: quant_q4_K(x, static_cast<block_q4_K*>(y), n / QK_K); return;
    case GGML_Q5_K: quant_q5_K(x, static_cast<block_q5_K*>(y), n / QK_K); return;
    case GGML_Q6_K: quant_q6_K(x, static_cast<block_q6_K*>(y), n / QK_K); return;
    default: return;
  }
}

void quantize_row_parallel(int32_t type, const float* x, void* y, int64_t n, ThreadPool& pool) {
  const int64_t bs = ggml_block_size(type), ts = ggml_type_size(type);
  if (bs == 0 || n % bs != 0) return quantize_row(type, x, y, n);  // let the serial path decide
  uint8_t* out = static_cast<uint8_t*>(y);
  pool.parallel_for(n / bs, [&](int64_t b0, int64_t b1) {
    quantize_row(type, x + b0 * bs, out + b0 * ts, (b1 - b0) * bs);
  });
}
