// Matrix products y = x W^T against (possibly quantized) weights.
//
// How a call runs:
//  1. For quantized weights the n activation rows are quantized once to int8 (ActQ8Row: a scale per
//     32 for Q8_0/Q4_0; ActQ8K: a scale per 256 with sums per 16 for the K-quants), the way integer
//     dot products need them (as ggml does for its vec_dot kernels). Float weights take the floats.
//  2. Output rows are handed out in chunks from an atomic counter (threads that get descheduled on a
//     shared machine do not hold everyone up). Within a chunk, activation rows are walked in
//     L2-sized tiles; every weight block is decoded once per group of activation rows and read from
//     memory once per call, so n samples cost about as much weight traffic as one.
//  3. Kernel families, chosen at run time from the CPU (FORKCAST_NO_SIMD=1 forces scalar,
//     FORKCAST_SIMD=avx2|avx512 caps the choice):
//       scalar   portable C++, the same integer sums as the SIMD kernels;
//       avx2     row kernels, one weight row x up to 4 activation rows (AVX2+FMA+F16C);
//       avx512   the same row kernels with VNNI (n = 1: GEMV), and for n >= 2 register tiles of
//                4 weight rows x 4 activation rows in zmm registers;
//       amx      avx512 plus Intel AMX tiles for quantized weights when n >= 4 (section below).
#include "matmul.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "activations.h"
#include "quants.h"
#include "simd_exp.h"
#include "simd_transpose.h"
#include "amx_tiles.h"

// The SIMD passes are target regions: `#pragma GCC target` under GCC, `#pragma clang attribute`
// under clang. MSVC builds (and non-x86 CPUs) get the portable scalar kernels.
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FC_X86 1
#include <cpuid.h>
#include <immintrin.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#else
#define FC_X86 0
#endif

namespace {

constexpr int MAXNB = 4;  // activation rows per kernel call (accumulators stay in registers)

// Activations for Q8_0/Q4_0 weights, one row = K int8 levels followed by K/32 float scales:
// x[j] ~= d[j / 32] * qs[j]. Levels are contiguous so SIMD loads can span several blocks.
struct ActQ8Row {
  int8_t* qs;
  float* d;
  ActQ8Row(uint8_t* row, int64_t K) : qs(reinterpret_cast<int8_t*>(row)), d(reinterpret_cast<float*>(row + K)) {}
};
inline const int8_t* act_q8_qs(const uint8_t* row) { return reinterpret_cast<const int8_t*>(row); }
inline const float* act_q8_d(const uint8_t* row, int64_t K) { return reinterpret_cast<const float*>(row + K); }

// Activations for K-quant weights: x[j] ~= d * qs[j]; bsums[s] = sum of qs[16s .. 16s+15].
struct ActQ8K {
  float d;
  int16_t bsums[16];
  int8_t qs[QK_K];
};
static_assert(sizeof(ActQ8K) == 292, "ActQ8K layout");

enum class ActFormat { Float, Q8, Q8K };

ActFormat act_format(int32_t type) {
  switch (type) {
    case GGML_Q8_0: case GGML_Q4_0: return ActFormat::Q8;
    case GGML_Q4_K: case GGML_Q5_K: case GGML_Q6_K: return ActFormat::Q8K;
    default: return ActFormat::Float;
  }
}

int64_t act_row_bytes(ActFormat f, int64_t K) {
  switch (f) {
    case ActFormat::Q8: return K + K / 32 * (int64_t)sizeof(float);
    case ActFormat::Q8K: return K / QK_K * (int64_t)sizeof(ActQ8K);
    default: return K * (int64_t)sizeof(float);
  }
}

// out[i] = dot(weight row w, activation row i at x + i * xs) for i < nb.
using RowKernel = void (*)(const uint8_t* w, int64_t K, const uint8_t* x, int64_t xs, float* out);
// Four weight rows against one activation row (GEMV), where a type has one.
using Row4Kernel = void (*)(const uint8_t* const* w, int64_t K, const uint8_t* x, float* out);
// out[r * RX + i] = dot(weight row r at w + r * rs, activation row i at x + i * xs), r < RW, i < RX
// (RW, RX <= TILE fixed per kernel).
using TileKernel = void (*)(const uint8_t* w, int64_t rs, int64_t K, const uint8_t* x, int64_t xs, float* out);
constexpr int TILE = 4;

// ---- portable scalar path ----

inline int8_t round_i8(float v) { return (int8_t)std::nearbyint(v); }  // half to even, like cvtps2dq

// The scale of a 32-element activation block for Q8_0/Q4_0 weights, amax/127 held in fp16: ggml's
// block_q8_0 stores d as ggml_half (ggml-common.h), so llama.cpp's dot products use the rounded
// scale. Keeping the same rounding makes our logits agree with llama.cpp's bit for bit far more often.
inline float q8_scale(float amax) { return fp16_to_fp32(fp32_to_fp16(amax / 127.0f)); }

void quant_act_q8_scalar(const float* x, int64_t K, ActQ8Row y) {
  for (int64_t b = 0; b < K / 32; b++, x += 32) {
    float amax = 0;
    for (int j = 0; j < 32; j++) amax = std::fmax(amax, std::fabs(x[j]));
    const float id = amax ? 127.0f / amax : 0.0f;
    y.d[b] = q8_scale(amax);
    for (int j = 0; j < 32; j++) y.qs[32 * b + j] = round_i8(x[j] * id);
  }
}

void quant_act_q8K_scalar(const float* x, int64_t K, ActQ8K* y) {
  for (int64_t b = 0; b < K / QK_K; b++, x += QK_K) {
    float amax = 0;
    for (int j = 0; j < QK_K; j++) amax = std::fmax(amax, std::fabs(x[j]));
    const float d = amax / 127.0f, id = amax ? 127.0f / amax : 0.0f;
    y[b].d = d;
    for (int s = 0; s < 16; s++) {
      int sum = 0;
      for (int j = 16 * s; j < 16 * s + 16; j++) {
        y[b].qs[j] = round_i8(x[j] * id);
        sum += y[b].qs[j];
      }
      y[b].bsums[s] = (int16_t)sum;
    }
  }
}

inline int dot_i8(const int8_t* a, const int8_t* b, int n) {
  int s = 0;
  for (int j = 0; j < n; j++) s += a[j] * b[j];
  return s;
}

template <typename Block>
void rows_q8_or_q4_0_scalar(const uint8_t* w, int64_t K, const uint8_t* x, int64_t xs, int nb, float* out) {
  const Block* wb = reinterpret_cast<const Block*>(w);
  float acc[MAXNB] = {0};
  for (int64_t b = 0; b < K / 32; b++) {
    int8_t q[32];
    if constexpr (sizeof(Block) == sizeof(block_q8_0)) {
      std::memcpy(q, wb[b].qs, 32);
    } else {
      for (int j = 0; j < 16; j++) {
        q[j] = (int8_t)((wb[b].qs[j] & 0xF) - 8);
        q[j + 16] = (int8_t)((wb[b].qs[j] >> 4) - 8);
      }
    }
    const float dw = fp16_to_fp32(wb[b].d);
    for (int i = 0; i < nb; i++) {
      const uint8_t* row = x + i * xs;
      acc[i] += dw * act_q8_d(row, K)[b] * (float)dot_i8(q, act_q8_qs(row) + 32 * b, 32);
    }
  }
  for (int i = 0; i < nb; i++) out[i] = acc[i];
}

// Q4_K / Q5_K: levels L (0..15 or 0..31) decoded per block, x = d*sc_j*L - dmin*m_j.
template <bool FIVE>
void rows_q45_K_scalar(const uint8_t* w, int64_t K, const uint8_t* x, int64_t xs, int nb, float* out) {
  const int64_t bsz = FIVE ? sizeof(block_q5_K) : sizeof(block_q4_K);
  float acc[MAXNB] = {0};
  for (int64_t b = 0; b < K / QK_K; b++) {
    const uint8_t* blk = w + b * bsz;
    const block_q4_K* b4 = reinterpret_cast<const block_q4_K*>(blk);
    const block_q5_K* b5 = reinterpret_cast<const block_q5_K*>(blk);
    const uint8_t* qs = FIVE ? b5->qs : b4->qs;
    int8_t L[QK_K];  // 0..31 fits int8
    for (int c = 0; c < 4; c++)
      for (int l = 0; l < 32; l++) {
        int lo = qs[32 * c + l] & 0xF, hi = qs[32 * c + l] >> 4;
        if (FIVE) {
          lo |= ((b5->qh[l] >> (2 * c)) & 1) << 4;
          hi |= ((b5->qh[l] >> (2 * c + 1)) & 1) << 4;
        }
        L[64 * c + l] = (int8_t)lo;
        L[64 * c + 32 + l] = (int8_t)hi;
      }
    uint8_t sc[8], mn[8];
    for (int j = 0; j < 8; j++) kquant_scale_min(j, b4->scales, &sc[j], &mn[j]);
    const float d = fp16_to_fp32(b4->d), dmin = fp16_to_fp32(b4->dmin);
    for (int i = 0; i < nb; i++) {
      const ActQ8K& a = reinterpret_cast<const ActQ8K*>(x + i * xs)[b];
      int sumi = 0, summ = 0;
      for (int j = 0; j < 8; j++) {
        sumi += sc[j] * dot_i8(L + 32 * j, a.qs + 32 * j, 32);
        summ += mn[j] * (a.bsums[2 * j] + a.bsums[2 * j + 1]);
      }
      acc[i] += d * a.d * (float)sumi - dmin * a.d * (float)summ;
    }
  }
  for (int i = 0; i < nb; i++) out[i] = acc[i];
}

void rows_q6_K_scalar(const uint8_t* w, int64_t K, const uint8_t* x, int64_t xs, int nb, float* out) {
  const block_q6_K* wb = reinterpret_cast<const block_q6_K*>(w);
  float acc[MAXNB] = {0};
  for (int64_t b = 0; b < K / QK_K; b++) {
    int8_t L[QK_K];  // signed levels -32..31
    for (int h = 0; h < 2; h++) {
      const uint8_t* ql = wb[b].ql + 64 * h;
      const uint8_t* qh = wb[b].qh + 32 * h;
      for (int l = 0; l < 32; l++) {
        L[128 * h + l] = (int8_t)(((ql[l] & 0xF) | ((qh[l] >> 0) & 3) << 4) - 32);
        L[128 * h + l + 32] = (int8_t)(((ql[l + 32] & 0xF) | ((qh[l] >> 2) & 3) << 4) - 32);
        L[128 * h + l + 64] = (int8_t)(((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32);
        L[128 * h + l + 96] = (int8_t)(((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32);
      }
    }
    const float d = fp16_to_fp32(wb[b].d);
    for (int i = 0; i < nb; i++) {
      const ActQ8K& a = reinterpret_cast<const ActQ8K*>(x + i * xs)[b];
      int sumi = 0;
      for (int s = 0; s < 16; s++) sumi += wb[b].scales[s] * dot_i8(L + 16 * s, a.qs + 16 * s, 16);
      acc[i] += d * a.d * (float)sumi;
    }
  }
  for (int i = 0; i < nb; i++) out[i] = acc[i];
}

// Float weights: decode the row (a no-op view for F32), then dot it with each activation row.
void rows_float_scalar(int32_t type, const uint8_t* w, int64_t K, const uint8_t* x, int64_t xs, int nb, float* out) {
  thread_local std::vector<float> row;
  const float* wf = reinterpret_cast<const float*>(w);
  if (type != GGML_F32) {
    if ((int64_t)row.size() < K) row.resize(K);
    dequantize_row(type, w, row.data(), K);
    wf = row.data();
  }
  for (int i = 0; i < nb; i++) {
    const float* xf = reinterpret_cast<const float*>(x + i * xs);
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;  // four chains: less drift on long rows
    int64_t c = 0;
    for (; c + 4 <= K; c += 4) {
      s0 += wf[c] * xf[c];
      s1 += wf[c + 1] * xf[c + 1];
      s2 += wf[c + 2] * xf[c + 2];
      s3 += wf[c + 3] * xf[c + 3];
    }
    for (; c < K; c++) s0 += wf[c] * xf[c];
    out[i] = (s0 + s1) + (s2 + s3);
  }
}

void rows_scalar(int32_t type, const uint8_t* w, int64_t K, const uint8_t* x, int64_t xs, int nb, float* out) {
  switch (type) {
    case GGML_Q8_0: rows_q8_or_q4_0_scalar<block_q8_0>(w, K, x, xs, nb, out); return;
    case GGML_Q4_0: rows_q8_or_q4_0_scalar<block_q4_0>(w, K, x, xs, nb, out); return;
    case GGML_Q4_K: rows_q45_K_scalar<false>(w, K, x, xs, nb, out); return;
    case GGML_Q5_K: rows_q45_K_scalar<true>(w, K, x, xs, nb, out); return;
    case GGML_Q6_K: rows_q6_K_scalar(w, K, x, xs, nb, out); return;
    default: rows_float_scalar(type, w, K, x, xs, nb, out); return;
  }
}

}  // namespace

// ---- x86 SIMD passes (the same source compiled for two targets) ----
#if FC_X86
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c")
#endif
namespace fc_avx2 {
#define FC_VNNI 0
#include "matmul_x86.inc"
#undef FC_VNNI
}  // namespace fc_avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#endif
namespace fc_avx512 {
#define FC_VNNI 1
#include "matmul_x86.inc"
#undef FC_VNNI
}  // namespace fc_avx512
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif

// ---- AMX (Sapphire Rapids and later): GEMM for n >= AMX_MIN_N, every quantized type ----
// Tile roles (Intel SDM, TDPBSSD): A = 16 weight rows x SB bytes of one sub-block (SB = 32, or 16 for
// Q6_K whose scales are per 16), B = the same sub-block of 16 activation rows in B-tile order
// (B[t][row][k] = q[row][4t + k]), C = 16 x 16 int32 sub-block products. Q8_0 weights are the A tile
// in place (row stride of the mapped tensor); other types are decoded per group of 16 rows into
// int8 levels (K-quants: 0..31 with a separate min term, Q6_K and Q4_0: signed) once, then reused
// for every activation tile. The activation quantizer writes B-tile order directly, with the same
// per-32 (Q8_0/Q4_0) or per-256 (K-quants) scales as the row kernels, so both paths compute the
// same integer sums. Each sub-block's C is scaled in AVX-512 into float accumulators:
//   acc[r][i] += C[r][i] * da[i] * scale[r]  (- da[i] * sum(q_act[i]) * min[r] for Q4_K/Q5_K).
#if FC_X86 && defined(__linux__)
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,amx-tile,amx-int8"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,amx-tile,amx-int8")
#endif
namespace fc_amx {

constexpr int64_t AMX_MIN_N = 4;

bool supported(int32_t type) {
  return type == GGML_Q8_0 || type == GGML_Q4_0 || type == GGML_Q4_K || type == GGML_Q5_K || type == GGML_Q6_K;
}
int sub_block(int32_t type) { return type == GGML_Q6_K ? 16 : 32; }
bool has_min(int32_t type) { return type == GGML_Q4_K || type == GGML_Q5_K; }

struct TileConfig {
  uint8_t palette;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// Tiles 0-3: C for four consecutive sub-blocks; 4/5 and 6/7: A and B, alternating. Four products
// are issued before the first is scaled, so the tile unit works while AVX-512 scales.
void configure(int sb) {
  alignas(64) TileConfig cfg;
  std::memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int t = 0; t < 4; t++) cfg.rows[t] = 16, cfg.colsb[t] = 64;  // C: 16 weight rows x 16 int32
  for (int t = 4; t < 8; t += 2) {
    cfg.rows[t] = 16, cfg.colsb[t] = (uint16_t)sb;                // A: 16 weight rows x SB bytes
    cfg.rows[t + 1] = (uint8_t)(sb / 4), cfg.colsb[t + 1] = 64;   // B: SB/4 x (16 activation rows x 4 bytes)
  }
  // GCC's _tile_loadconfig tells the compiler it reads only a pointer's worth of bytes, so without
  // this barrier the stores to rows/colsb above are dropped as dead (seen at -O3: #UD on tilezero).
  __asm__ __volatile__("" : : "r"(&cfg) : "memory");
  _tile_loadconfig(&cfg);
}

// Activations in B-tile order: tile j (rows 16j..16j+15), sub-block s: levels at (j*nsb + s)*SB*16,
// 16 scales and 16 scaled sums (da * sum of the sub-block's levels) at (j*nsb + s)*16.
// Rows past n are zero (their results are not stored).
struct PackedActs {
  int8_t* q;
  float* d;
  float* ms;
  int64_t nsb, ntiles;
  int sb;
};

int64_t packed_bytes(int64_t n, int64_t K, int sb) {
  const int64_t ntiles = (n + 15) / 16, nsb = K / sb;
  return ntiles * (K * 16 + nsb * 32 * (int64_t)sizeof(float));
}

PackedActs pack_activations(int32_t type, const float* x, int64_t n, int64_t K, uint8_t* buf, ThreadPool& pool) {
  PackedActs pa;
  pa.sb = sub_block(type);
  pa.nsb = K / pa.sb;
  pa.ntiles = (n + 15) / 16;
  pa.q = reinterpret_cast<int8_t*>(buf);
  pa.d = reinterpret_cast<float*>(buf + pa.ntiles * K * 16);
  pa.ms = pa.d + pa.ntiles * pa.nsb * 16;
  const int sb = pa.sb;
  const int64_t nsb = pa.nsb, last = pa.ntiles - 1;
  std::memset(pa.q + last * K * 16, 0, K * 16);
  std::memset(pa.d + last * nsb * 16, 0, nsb * 16 * sizeof(float));
  std::memset(pa.ms + last * nsb * 16, 0, nsb * 16 * sizeof(float));
  const bool k256 = act_format(type) == ActFormat::Q8K;
  const int64_t row_bytes = act_row_bytes(act_format(type), K);
  auto rows = [&](int64_t i0, int64_t i1) {
    thread_local std::vector<uint8_t> tmp;
    if ((int64_t)tmp.size() < row_bytes) tmp.resize(row_bytes);
    for (int64_t i = i0; i < i1; i++) {
      const int8_t* q;
      const float* d32 = nullptr;
      const ActQ8K* qk = nullptr;
      if (k256) {
        fc_avx512::quant_act_q8K(x + i * K, K, reinterpret_cast<ActQ8K*>(tmp.data()));
        qk = reinterpret_cast<const ActQ8K*>(tmp.data());
        q = nullptr;
      } else {
        fc_avx512::quant_act_q8(x + i * K, K, ActQ8Row(tmp.data(), K));
        q = act_q8_qs(tmp.data());
        d32 = act_q8_d(tmp.data(), K);
      }
      const int64_t j = i / 16, rr = i % 16;
      int8_t* const qbase = pa.q + j * nsb * sb * 16 + rr * 4;
      float *const dbase = pa.d + j * nsb * 16 + rr, *const msbase = pa.ms + j * nsb * 16 + rr;
      for (int64_t s = 0; s < nsb; s++) {
        const int64_t e0 = s * sb;  // first element of the sub-block
        const int8_t* src = k256 ? qk[e0 / QK_K].qs + e0 % QK_K : q + e0;
        int8_t* dst = qbase + s * sb * 16;
        // dword t of the row's sub-block goes to B-tile row t (64 bytes apart); constant trip
        // counts so the copies unroll into plain moves
        if (sb == 32)
          for (int t = 0; t < 8; t++) std::memcpy(dst + 64 * t, src + 4 * t, 4);
        else
          for (int t = 0; t < 4; t++) std::memcpy(dst + 64 * t, src + 4 * t, 4);
        const int64_t at = s * 16;
        if (k256) {
          const ActQ8K& blk = qk[e0 / QK_K];
          const int g = (int)(e0 % QK_K) / 16;  // bsums are per 16
          const int sum = sb == 32 ? blk.bsums[g] + blk.bsums[g + 1] : blk.bsums[g];
          dbase[at] = blk.d;
          msbase[at] = blk.d * (float)sum;
        } else {
          dbase[at] = d32[s];
          msbase[at] = 0.0f;
        }
      }
    }
  };
  if (n * K >= (1 << 16)) pool.parallel_for(n, rows);
  else rows(0, n);
  return pa;
}

// Decodes weight row `row` into int8 levels lv[K] and per-sub-block scale/min (sc[nsb], mn[nsb]).
void decode_row(int32_t type, const uint8_t* row, int64_t K, int8_t* lv, float* sc, float* mn) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1), m2 = _mm256_set1_epi8(3);
  switch (type) {
    case GGML_Q8_0: {
      const block_q8_0* b = reinterpret_cast<const block_q8_0*>(row);
      for (int64_t i = 0; i < K / 32; i++) {
        std::memcpy(lv + 32 * i, b[i].qs, 32);
        sc[i] = _cvtsh_ss(b[i].d);
      }
      return;
    }
    case GGML_Q4_0: {
      const block_q4_0* b = reinterpret_cast<const block_q4_0*>(row);
      const __m128i m = _mm_set1_epi8(0x0F), eight = _mm_set1_epi8(8);
      for (int64_t i = 0; i < K / 32; i++) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b[i].qs));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(lv + 32 * i), _mm_sub_epi8(_mm_and_si128(bytes, m), eight));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(lv + 32 * i + 16), _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(bytes, 4), m), eight));
        sc[i] = _cvtsh_ss(b[i].d);
      }
      return;
    }
    case GGML_Q4_K:
    case GGML_Q5_K: {
      const bool five = type == GGML_Q5_K;
      const int64_t bsz = five ? sizeof(block_q5_K) : sizeof(block_q4_K);
      for (int64_t i = 0; i < K / QK_K; i++) {
        const uint8_t* blk = row + i * bsz;
        const block_q4_K* b4 = reinterpret_cast<const block_q4_K*>(blk);
        const uint8_t* qs = five ? reinterpret_cast<const block_q5_K*>(blk)->qs : b4->qs;
        __m256i qh = five ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(reinterpret_cast<const block_q5_K*>(blk)->qh))
                          : _mm256_setzero_si256();
        const float d = _cvtsh_ss(b4->d), dmin = _cvtsh_ss(b4->dmin);
        uint8_t s8[8], m8[8];
        fc_avx512::kquant_scales8(b4->scales, s8, m8);
        int8_t* out = lv + i * QK_K;
        for (int c = 0; c < 4; c++) {
          const __m256i bytes = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * c));
          __m256i lo = _mm256_and_si256(bytes, m4), hi = _mm256_and_si256(_mm256_srli_epi16(bytes, 4), m4);
          if (five) {
            lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(qh, one), 4));
            hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 1), one), 4));
            qh = _mm256_srli_epi16(qh, 2);
          }
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 64 * c), lo);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 64 * c + 32), hi);
        }
        for (int j = 0; j < 8; j++) {
          sc[8 * i + j] = d * s8[j];
          mn[8 * i + j] = dmin * m8[j];
        }
      }
      return;
    }
    case GGML_Q6_K: {
      const block_q6_K* b = reinterpret_cast<const block_q6_K*>(row);
      const __m256i off = _mm256_set1_epi8(32);
      for (int64_t i = 0; i < K / QK_K; i++) {
        int8_t* out = lv + i * QK_K;
        for (int h = 0; h < 2; h++) {
          const __m256i ql0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].ql + 64 * h));
          const __m256i ql1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].ql + 64 * h + 32));
          const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[i].qh + 32 * h));
          for (int k = 0; k < 4; k++) {
            const __m256i low = k & 2 ? _mm256_and_si256(_mm256_srli_epi16(k & 1 ? ql1 : ql0, 4), m4)
                                      : _mm256_and_si256(k & 1 ? ql1 : ql0, m4);
            const __m256i top = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), m2);
            const __m256i q = _mm256_sub_epi8(_mm256_or_si256(low, _mm256_slli_epi16(top, 4)), off);
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 128 * h + 32 * k), q);
          }
        }
        const float d = _cvtsh_ss(b[i].d);
        for (int j = 0; j < 16; j++) sc[16 * i + j] = d * b[i].scales[j];
      }
      return;
    }
    default: return;
  }
}

// One sub-block on tiles TC = TA . TB (GCC's tile intrinsics take literal tile numbers, hence a macro).
#define FC_AMX_BLOCK(TC, TA, TB, a, astride, bq, cbuf) \
  do {                                                  \
    _tile_zero(TC);                                     \
    _tile_loadd(TA, (a), (astride));                    \
    _tile_loadd(TB, (bq), 64);                          \
    _tile_dpbssd(TC, TA, TB);                           \
    FC_TILE_STORE_C(TC, (cbuf));                        \
  } while (0)

// _tile_stored with the memory it writes named exactly (one 16 x 64-byte C buffer) instead of GCC's
// "memory" clobber: with the clobber, the 16 float accumulators of the scaling step (an array GCC
// keeps in memory) were stored and reloaded around every tile store.
#define FC_TILE_STORE_C(TC, buf)                                                                   \
  __asm__ volatile("tilestored %%tmm" #TC ", (%1,%2,1)"                                          \
                   : "=m"(*reinterpret_cast<int32_t(*)[256]>(buf))                             \
                   : "r"(buf), "r"((long)64))

// Rows i < nv of a transposed 16 x 16 output block: out[i] holds columns 0..nr-1 of y row i (rows
// M floats apart). A group's outputs land 16 floats wide in every activation row, so a GEMM writes
// one cache line per row per block, all over an output of megabytes: ordinary stores first read
// each line (and its page translation) in, which cost a third of the kernel's time. Full aligned
// lines go out as streaming stores instead (the caller fences before the results are used).
inline void store_block(float* y, int64_t M, int nr, int64_t nv, const __m512* out) {
  if (nr == 16 && (reinterpret_cast<uintptr_t>(y) & 63) == 0 && (M & 15) == 0) {
    for (int64_t i = 0; i < nv; i++) _mm512_stream_ps(y + i * M, out[i]);
    return;
  }
  const __mmask16 keep = (__mmask16)((1u << nr) - 1);
  for (int64_t i = 0; i < nv; i++) _mm512_mask_storeu_ps(y + i * M, keep, out[i]);
}

// The 16 accumulators are named variables, not an array: GCC keeps an array of 16 vectors in memory
// (too big to split into registers), so every scaling step loaded and stored each of them.
#define FC_ROWS16(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15)

// acc_r += C[r] * da * sc[r] (- ms * mn[r]): one sub-block's int32 products C (16 x 16, row r = weight
// row r0 + r) scaled; sc16/mn16 are the 16 weight rows' scales (mins) of this sub-block, consecutive.
// FC_ACC(r) names accumulator r: a register in tile_column, a vector of acc memory (A_) in tile_quad.
#define FC_SCALE_ROW(r)                                                                            \
  FC_ACC(r) = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c_ + 16 * r)), da_), \
                              _mm512_set1_ps(sc16_[r]), FC_ACC(r));                                \
  if (MIN) FC_ACC(r) = _mm512_fnmadd_ps(ms_, _mm512_set1_ps(mn16_[r]), FC_ACC(r));
#define FC_SCALE_BLOCK(cb, da16, ms16, sc16, mn16, accp)                         \
  do {                                                                           \
    const int32_t* c_ = (cb);                                                    \
    float* A_ = (accp);                                                          \
    const __m512 da_ = _mm512_loadu_ps(da16);                                    \
    const __m512 ms_ = MIN ? _mm512_loadu_ps(ms16) : _mm512_setzero_ps();        \
    const float* sc16_ = (sc16);                                                 \
    const float* mn16_ = (mn16);                                                 \
    (void)A_, (void)ms_, (void)mn16_;                                            \
    FC_ROWS16(FC_SCALE_ROW)                                                      \
  } while (0)

// One 16 x 16 output block: weight rows r0..r0+15 (A tiles at abase, sub-block s at abase + s * astep)
// against activation tile j (B tiles at bq, scales da/ms), over all nsb sub-blocks, stored into y.
// Its own function with everything passed by value: values reachable through pointers (the
// PackedActs fields) were reloaded around every tile store, which clobbers memory.
#define FC_ACC(r) a##r
template <bool MIN>
__attribute__((noinline)) void tile_column(const int8_t* abase, int64_t astride, int64_t astep, const int8_t* bq,
                                           const float* da, const float* ms, const float* sc, const float* mn,
                                           int64_t nsb, int64_t bstep, float* y, int64_t M, int nr, int64_t nv,
                                           const uint8_t* pf, int64_t pf_stride) {
  alignas(64) int32_t cbuf[4][256];
  // pf (may be null): the next group's 16 rows, pf_stride bytes apart. Each step prefetches the part
  // of every row that the same step of that group will read: the rows are consumed side by side,
  // and fetching them in that order beat fetching them one after another (and two groups ahead).
  const int64_t pf_col = (pf_stride + nsb - 1) / nsb;
#define FC_ACC_DECL(r) __m512 a##r = _mm512_setzero_ps();
  FC_ROWS16(FC_ACC_DECL)
  int64_t s = 0;
  for (; s + 4 <= nsb; s += 4) {
    if (pf) {
      const int64_t o0 = s * pf_col, o1 = std::min(pf_stride, (s + 4) * pf_col);
      for (int r = 0; r < 16; r++)
        for (int64_t o = o0; o < o1; o += 64) _mm_prefetch(reinterpret_cast<const char*>(pf + r * pf_stride + o), _MM_HINT_T1);
    }
    FC_AMX_BLOCK(0, 4, 5, abase + s * astep, astride, bq + s * bstep, cbuf[0]);
    FC_AMX_BLOCK(1, 6, 7, abase + (s + 1) * astep, astride, bq + (s + 1) * bstep, cbuf[1]);
    FC_AMX_BLOCK(2, 4, 5, abase + (s + 2) * astep, astride, bq + (s + 2) * bstep, cbuf[2]);
    FC_AMX_BLOCK(3, 6, 7, abase + (s + 3) * astep, astride, bq + (s + 3) * bstep, cbuf[3]);
    FC_SCALE_BLOCK(cbuf[0], da + s * 16, ms + s * 16, sc + s * 16, mn + s * 16, nullptr);
    FC_SCALE_BLOCK(cbuf[1], da + (s + 1) * 16, ms + (s + 1) * 16, sc + (s + 1) * 16, mn + (s + 1) * 16, nullptr);
    FC_SCALE_BLOCK(cbuf[2], da + (s + 2) * 16, ms + (s + 2) * 16, sc + (s + 2) * 16, mn + (s + 2) * 16, nullptr);
    FC_SCALE_BLOCK(cbuf[3], da + (s + 3) * 16, ms + (s + 3) * 16, sc + (s + 3) * 16, mn + (s + 3) * 16, nullptr);
  }
  for (; s < nsb; s++) {
    FC_AMX_BLOCK(0, 4, 5, abase + s * astep, astride, bq + s * bstep, cbuf[0]);
    FC_SCALE_BLOCK(cbuf[0], da + s * 16, ms + s * 16, sc + s * 16, mn + s * 16, nullptr);
  }
  // a_r[i] is output row r0 + r of activation row 16j + i: transposed in registers so each
  // activation row's 16 outputs go out as one store, not 16 scattered ones.
#define FC_ACC_OUT(r) out[r] = a##r;
  __m512 out[16];
  FC_ROWS16(FC_ACC_OUT)
  transpose16(out);
  store_block(y, M, nr, nv, out);
}
// Two weight groups (A0, A1: rows r0..r0+31) against two activation tiles (B0, B1): four C tiles per
// sub-block from two A and two B loads instead of four of each. The 64 accumulator vectors do not fit
// in registers, so they live in acc (L1); measured alone, 13% less time per product than tile_column.
#undef FC_ACC
#define FC_ACC(r) (*reinterpret_cast<__m512*>(A_ + 16 * (r)))

struct GroupA {
  const int8_t* base;
  int64_t stride, step;
  const float* sc;  // [nsb][16]
  const float* mn;
};

template <bool MIN>
__attribute__((noinline)) void tile_quad(const GroupA& g0, const GroupA& g1, const int8_t* b0, const int8_t* b1,
                                         const float* da0, const float* da1, const float* ms0, const float* ms1,
                                         int64_t nsb, int64_t bstep, float* y0, float* y1, int64_t M, int64_t nv0,
                                         int64_t nv1, const uint8_t* pf, int64_t pf_bytes) {
  alignas(64) int32_t cbuf[4][256];
  alignas(64) float acc[4][256];  // [g0 b0, g0 b1, g1 b0, g1 b1][row][16 activations]
  std::memset(acc, 0, sizeof acc);
  const int64_t pf_step = pf ? ((pf_bytes + 63) / 64 + nsb - 1) / nsb * 64 : 0;
  const uint8_t* pf_end = pf ? pf + pf_bytes : nullptr;
  const int8_t *a0 = g0.base, *a1 = g1.base;
  const int64_t as0 = g0.stride, as1 = g1.stride, st0 = g0.step, st1 = g1.step;
  for (int64_t s = 0; s < nsb; s++) {
    if (pf)
      for (const uint8_t* p = pf + s * pf_step, *e = std::min(pf_end, p + pf_step); p < e; p += 64)
        _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T1);
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    _tile_loadd(4, a0 + s * st0, as0);
    _tile_loadd(5, b0 + s * bstep, 64);
    _tile_dpbssd(0, 4, 5);
    _tile_loadd(7, b1 + s * bstep, 64);
    _tile_dpbssd(1, 4, 7);
    _tile_loadd(6, a1 + s * st1, as1);
    _tile_dpbssd(2, 6, 5);
    _tile_dpbssd(3, 6, 7);
    FC_TILE_STORE_C(0, cbuf[0]);
    FC_TILE_STORE_C(1, cbuf[1]);
    FC_TILE_STORE_C(2, cbuf[2]);
    FC_TILE_STORE_C(3, cbuf[3]);
    FC_SCALE_BLOCK(cbuf[0], da0 + s * 16, ms0 + s * 16, g0.sc + s * 16, g0.mn + s * 16, acc[0]);
    FC_SCALE_BLOCK(cbuf[1], da1 + s * 16, ms1 + s * 16, g0.sc + s * 16, g0.mn + s * 16, acc[1]);
    FC_SCALE_BLOCK(cbuf[2], da0 + s * 16, ms0 + s * 16, g1.sc + s * 16, g1.mn + s * 16, acc[2]);
    FC_SCALE_BLOCK(cbuf[3], da1 + s * 16, ms1 + s * 16, g1.sc + s * 16, g1.mn + s * 16, acc[3]);
  }
  float* ys[4] = {y0, y1, y0 + 16, y1 + 16};  // y1 = activation tile 1; +16 = weight group 1
  const int64_t nvs[4] = {nv0, nv1, nv0, nv1};
  for (int q = 0; q < 4; q++) {
    __m512 out[16];
    for (int r = 0; r < 16; r++) out[r] = _mm512_load_ps(acc[q] + 16 * r);
    transpose16(out);
    store_block(ys[q], M, 16, nvs[q], out);
  }
}
#undef FC_ACC
#undef FC_ACC_DECL
#undef FC_ACC_OUT
#undef FC_SCALE_BLOCK
#undef FC_SCALE_ROW
#undef FC_ROWS16

// y = x W^T; output rows in groups of 16 handed out from an atomic counter.
void matmul_amx(const Tensor& W, const PackedActs& pa, int64_t n, float* y, ThreadPool& pool) {
  const int64_t K = W.ne0, M = W.ne1, nsb = pa.nsb;
  const int64_t rs = ggml_row_size(W.type, K);
  const bool in_place = W.type == GGML_Q8_0, with_min = has_min(W.type);
  const int64_t ngroups = (M + 15) / 16;
  // Groups handed out in chunks of consecutive ones (about 8 chunks per thread, for balance on a
  // busy machine), so a thread knows which rows come next and can prefetch them.
  // Even chunks: a chunk of odd length leaves one group without a partner for the 2 x 2 path (with
  // 56 groups, 1 in 3 went through the slower single-group kernel).
  const int64_t chunk = std::max<int64_t>(2, ngroups / (8 * pool.size())) & ~int64_t(1);
  const int64_t nchunks = (ngroups + chunk - 1) / chunk;
  std::atomic<int64_t> next{0};
  pool.run([&](int, int) {
    configure(pa.sb);
    // Per group slot (two, for the paired path): decoded levels of 16 rows (stride K), and the scales
    // and mins as [16][nsb] and again as [nsb][16] (per sub-block the 16 rows' values side by side:
    // one base pointer for all 16 broadcasts of a scaling step).
    thread_local std::vector<int8_t> lv;
    thread_local std::vector<float> scm;
    if ((int64_t)lv.size() < 32 * K) lv.resize(32 * K);
    if ((int64_t)scm.size() < 128 * nsb) scm.resize(128 * nsb);
    auto prepare = [&](int64_t g, int slot) -> GroupA {
      const int64_t r0 = 16 * g;
      const int nr = (int)std::min<int64_t>(16, M - r0);
      const uint8_t* wrows = W.data + r0 * rs;
      float* sc = scm.data() + slot * 64 * nsb;
      float* mn = sc + 16 * nsb;
      float* scT = sc + 32 * nsb;
      float* mnT = sc + 48 * nsb;
      int8_t* lvs = lv.data() + slot * 16 * K;
      GroupA a;
      if (in_place && nr == 16) {  // Q8_0 levels are read in place: offset 2 of each 34-byte block
        // Block b's scales of the 16 rows in one gather (rows rs bytes apart; the fp16 is the low half
        // of each gathered dword), straight into the [nsb][16] layout the scaling step reads.
        const __m512i offs = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                                _mm512_set1_epi32((int)rs));
        for (int64_t b = 0; b < nsb; b++) {
          const __m512i h = _mm512_i32gather_epi32(offs, wrows + b * sizeof(block_q8_0), 1);
          _mm512_storeu_ps(scT + b * 16, _mm512_cvtph_ps(_mm512_cvtepi32_epi16(h)));
        }
        a.base = reinterpret_cast<const int8_t*>(wrows) + 2;
        a.stride = rs;
        a.step = sizeof(block_q8_0);
        a.sc = scT;
        a.mn = mnT;
        return a;
      } else {
        for (int r = 0; r < 16; r++) {
          if (r < nr) {
            decode_row(W.type, wrows + r * rs, K, lvs + r * K, sc + r * nsb, mn + r * nsb);
          } else {  // padding rows: zero levels and scales, results not stored
            std::memset(lvs + r * K, 0, K);
            std::fill(sc + r * nsb, sc + (r + 1) * nsb, 0.0f);
            std::fill(mn + r * nsb, mn + (r + 1) * nsb, 0.0f);
          }
        }
        a.base = lvs;
        a.stride = K;
        a.step = pa.sb;
      }
      for (int r = 0; r < 16; r++)
        for (int64_t b = 0; b < nsb; b++) {
          scT[b * 16 + r] = sc[r * nsb + b];
          if (with_min) mnT[b * 16 + r] = mn[r * nsb + b];
        }
      a.sc = scT;
      a.mn = mnT;
      return a;
    };
    const int64_t bstep = pa.sb * 16;
    auto single = [&](const GroupA& a, int64_t g, int64_t j, const uint8_t* pf) {
      const int64_t r0 = 16 * g;
      const int nr = (int)std::min<int64_t>(16, M - r0);
      const int64_t nv = std::min<int64_t>(16, n - 16 * j);
      const int8_t* bq = pa.q + j * nsb * bstep;
      const float* da = pa.d + j * nsb * 16;
      const float* ms = pa.ms + j * nsb * 16;
      float* yj = y + 16 * j * M + r0;
      if (with_min) tile_column<true>(a.base, a.stride, a.step, bq, da, ms, a.sc, a.mn, nsb, bstep, yj, M, nr, nv, pf, rs);
      else tile_column<false>(a.base, a.stride, a.step, bq, da, ms, a.sc, a.mn, nsb, bstep, yj, M, nr, nv, pf, rs);
    };
    // The next chunk is claimed while this one runs, so its first rows can be prefetched too (without
    // that, a chunk's last group had nothing to prefetch: with 2-group chunks, half the groups of a
    // 896-row matrix started cold).
    int64_t c = next.fetch_add(1, std::memory_order_relaxed);
    while (c < nchunks) {
      const int64_t cn = next.fetch_add(1, std::memory_order_relaxed);
      const int64_t after = cn < nchunks ? std::min(ngroups, (cn + 1) * chunk) - cn * chunk : 0;  // its groups
      for (int64_t g = c * chunk, gend = std::min(ngroups, g + chunk); g < gend;) {
        // Two full groups and at least two activation tiles: the 2 x 2 path. The rows that come
        // next in this chunk are prefetched while these compute: tile loads do not start the
        // hardware prefetcher early enough, and at n = 16 they waited on memory most of the time.
        const bool pair = g + 1 < gend && 16 * (g + 2) <= M && pa.ntiles >= 2;
        const int64_t take = pair ? 2 : 1;
        // next rows: the rest of this chunk, then the head of the claimed one
        const int64_t left = gend - g - take;
        const int64_t pg = left > 0 ? g + take : after > 0 ? cn * chunk : -1;  // group read next
        const uint8_t* pf = pg >= 0 ? W.data + 16 * pg * rs : nullptr;
        const int64_t pf_bytes = 16 * rs * std::min<int64_t>(2, left > 0 ? left : after);
        const GroupA a0 = prepare(g, 0);
        if (!pair) {
          // the column-wise prefetch reads 16 rows: only for a full group
          const uint8_t* pf16 = pf && 16 * (pg + 1) <= M ? pf : nullptr;
          for (int64_t j = 0; j < pa.ntiles; j++) single(a0, g, j, j == 0 ? pf16 : nullptr);
          g += 1;
          continue;
        }
        const GroupA a1 = prepare(g + 1, 1);
        int64_t j = 0;
        for (; j + 2 <= pa.ntiles; j += 2) {
          const int8_t* b0 = pa.q + j * nsb * bstep;
          const float* d0 = pa.d + j * nsb * 16;
          const float* m0 = pa.ms + j * nsb * 16;
          float* y0 = y + 16 * j * M + 16 * g;
          const int64_t nv0 = std::min<int64_t>(16, n - 16 * j), nv1 = std::min<int64_t>(16, n - 16 * (j + 1));
          const uint8_t* pfj = j == 0 ? pf : nullptr;
          if (with_min)
            tile_quad<true>(a0, a1, b0, b0 + nsb * bstep, d0, d0 + nsb * 16, m0, m0 + nsb * 16, nsb, bstep, y0,
                            y0 + 16 * M, M, nv0, nv1, pfj, pf_bytes);
          else
            tile_quad<false>(a0, a1, b0, b0 + nsb * bstep, d0, d0 + nsb * 16, m0, m0 + nsb * 16, nsb, bstep, y0,
                             y0 + 16 * M, M, nv0, nv1, pfj, pf_bytes);
        }
        if (j < pa.ntiles) {  // an odd last activation tile
          single(a0, g, j, nullptr);
          single(a1, g + 1, j, nullptr);
        }
        g += 2;
      }
      c = cn;
    }
    _tile_release();
    _mm_sfence();  // the streaming stores of store_block are visible before this thread reports done
  });
}

// CPUID leaf 7: EDX bit 24 AMX-TILE, bit 25 AMX-INT8; then Linux must grant the tile data state
// (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA = 18) before the first tile instruction.
bool available() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if (!((d >> 24) & 1) || !((d >> 25) & 1)) return false;
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

#undef FC_AMX_BLOCK
}  // namespace fc_amx
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,amx-tile,amx-int8,amx-bf16"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni,avx512bf16,amx-tile,amx-int8,amx-bf16")
#endif
// ---- AMX BF16: prompt-sized GEMM (n >= fc_amx_bf16::MIN_N), every quantized type ----
// Why a second tile kernel: int8 tiles must be stored and rescaled every 32 weights (the quantized
// formats scale per block), and that rescale, not the tile unit, sets the int8 kernel's pace (~35 ns
// per 16x16x32 product, README). TDPBF16PS accumulates fp32 in the tile across the whole row, so a
// product costs the tile unit's 16 cycles and the C tile is written once per 512 columns.
// The price is rounding: weights are decoded to bf16 (8 significant bits, relative error <= 2^-9)
// and the activations rounded to bf16 instead of quantized to int8 per block; both are the size of
// the int8 activation rounding the other paths already make (test/native/matmul.test.ts measures
// both against float64). Used for prompt chunks only: decode steps (n <= 64) keep the int8 paths, so
// n samples and one sample compute the same integer sums.
// Tile roles (Intel SDM, TDPBF16PS: C[m][n] += sum_k A[m][2k..2k+1] . B[k][2n..2n+1]): A = 16
// activation rows x 32 bf16 (from pack_x's tile-ordered bf16 copy of x), B = the same 32 columns of
// 16 weight rows, pairs of columns interleaved, C = 16 activation rows x 16 outputs, laid out as
// rows of y already (no transpose on the way out).
bool amx_bf16_available() {
  static const bool ok = [] {
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 22) & 1)) return false;
    if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !((a >> 5) & 1)) return false;
    return fc_amx::available();  // AMX-TILE, and the tile state granted
  }();
  return ok;
}

void amx_bf16_configure() {
  alignas(64) fc_amx::TileConfig cfg;
  std::memset(&cfg, 0, sizeof cfg);
  cfg.palette = 1;
  for (int t = 0; t < 8; t++) cfg.rows[t] = 16, cfg.colsb[t] = 64;
  __asm__ __volatile__("" : : "r"(&cfg) : "memory");  // see fc_amx::configure
  _tile_loadconfig(&cfg);
}

namespace fc_amx_bf16 {

constexpr int64_t MIN_N = 128;
constexpr int64_t KSTEPS = 16;  // k-steps of 32 per pass: a group pair's 2 x 16 KiB of B stays in L1

// 32 floats -> 32 bf16 (round to nearest even), element order kept.
inline __m512i bf16x32(const float* p) {
  return (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(p + 16), _mm512_loadu_ps(p));
}

// A-tile order of activations (npad x K bf16, 64-byte aligned): the tiles of rows 32j..32j+15 and
// 32j+16..32j+31 for columns 32s..32s+31 are the 2 KiB at 1024 (j nks + s), so a pass reads its A
// tiles as one sequential stream. Where row i's 32 columns of k-step s start (nks = K / 32):
inline int64_t tile_at(int64_t i, int64_t s, int64_t nks) {
  return 1024 * ((i / 32) * nks + s) + 512 * (i % 32 / 16) + 32 * (i % 16);
}

// x (n x K floats) -> xb in A-tile order; rows past n are zero.
void pack_x(const float* x, int64_t n, int64_t npad, int64_t K, uint16_t* xb, ThreadPool& pool) {
  const int64_t nks = K / 32;
  pool.parallel_for(npad, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      for (int64_t s = 0; s < nks; s++)
        _mm512_store_si512(xb + tile_at(i, s, nks), i < n ? bf16x32(x + i * K + 32 * s) : _mm512_setzero_si512());
    }
  });
}

// pack_x into the calling thread's buffer (grown, never shrunk), which the result points into.
const uint16_t* pack(const float* x, int64_t n, int64_t npad, int64_t K, ThreadPool& pool) {
  thread_local std::vector<uint16_t> buf;
  if ((int64_t)buf.size() < npad * K + 32) buf.resize(npad * K + 32);
  uint16_t* const xb = align64(buf.data());
  pack_x(x, n, npad, K, xb, pool);
  return xb;
}

// Weight rows r0..r0+15, k-steps [s0, s0 + ns), as B tiles: tile s (1 KiB at wb + 512 s) row p holds,
// for each of the 16 weight rows, the pair of columns 32(s0+s) + 2p, +1 (dword p of the row's 32
// bf16 -> row p): a 16 x 16 dword transpose per k-step. Rows past M are zero. lv (16 x 32 ns levels),
// sc and mn (16 x 2 ns each): decode_row's output for the 16 rows. s0 is a multiple of 8, so the
// slice starts on a block boundary of every type (blocks are 32 or 256 weights).
void decode_group(const Tensor& W, int64_t r0, int64_t s0, int64_t ns, uint16_t* wb, int8_t* lv, float* sc, float* mn) {
  const int64_t K = 32 * ns, M = W.ne1, rs = ggml_row_size(W.type, W.ne0), off = ggml_row_size(W.type, 32 * s0);
  const int sb = fc_amx::sub_block(W.type);
  const int64_t nsb = K / sb;
  const bool with_min = fc_amx::has_min(W.type);
  if (W.type == GGML_Q8_0 && r0 + 16 <= M) {  // the levels and scale straight from the blocks
    for (int64_t s = 0; s < ns; s++) {
      __m512 t[16];
      for (int r = 0; r < 16; r++) {
        const block_q8_0* b = reinterpret_cast<const block_q8_0*>(W.data + (r0 + r) * rs + off) + s;
        const __m512 d = _mm512_set1_ps(_cvtsh_ss(b->d));
        const __m512 l0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs))));
        const __m512 l1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b->qs + 16))));
        t[r] = (__m512)_mm512_cvtne2ps_pbh(_mm512_mul_ps(l1, d), _mm512_mul_ps(l0, d));
      }
      transpose16(t);
      for (int p = 0; p < 16; p++) _mm512_store_ps(reinterpret_cast<float*>(wb + 512 * s + 32 * p), t[p]);
    }
    return;
  }
  for (int r = 0; r < 16; r++) {
    if (r0 + r < M) {
      fc_amx::decode_row(W.type, W.data + (r0 + r) * rs + off, K, lv + r * K, sc + r * nsb, mn + r * nsb);
    } else {
      std::memset(lv + r * K, 0, K);
      std::fill(sc + r * nsb, sc + (r + 1) * nsb, 0.0f);
    }
    if (!with_min || r0 + r >= M) std::fill(mn + r * nsb, mn + (r + 1) * nsb, 0.0f);
  }
  for (int64_t s = 0; s < ns; s++) {
    // w = scale * level - min per sub-block (Q6_K: two sub-blocks of 16 per k-step)
    const int64_t u0 = 32 * s / sb, u1 = (32 * s + 16) / sb;
    __m512 t[16];
    for (int r = 0; r < 16; r++) {
      const int8_t* l = lv + r * K + 32 * s;
      const float* scr = sc + r * nsb;
      const float* mnr = mn + r * nsb;
      const __m512 l0 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(l))));
      const __m512 l1 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(l + 16))));
      const __m512 w0 = _mm512_fmsub_ps(l0, _mm512_set1_ps(scr[u0]), _mm512_set1_ps(mnr[u0]));
      const __m512 w1 = _mm512_fmsub_ps(l1, _mm512_set1_ps(scr[u1]), _mm512_set1_ps(mnr[u1]));
      t[r] = (__m512)_mm512_cvtne2ps_pbh(w1, w0);
    }
    transpose16(t);
    for (int p = 0; p < 16; p++) _mm512_store_ps(reinterpret_cast<float*>(wb + 512 * s + 32 * p), t[p]);
  }
}

// C tiles (16 activation rows x 16 outputs) for the activation tile pair at a (its k-steps 2 KiB
// apart) and the weight groups b0, b1 (1 KiB apart), over ns k-steps, accumulated in c (the unit's
// 32 outputs of 32 activation rows: c + 0 and c + 16 for row tile 0, c + 512 and c + 528 for row
// tile 1, rows 128 bytes apart); `first` starts from zero.
__attribute__((noinline)) void block_pair(const uint16_t* a, const uint16_t* b0, const uint16_t* b1, int64_t ns,
                                          bool first, float* c) {
  if (first) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
  } else {
    _tile_loadd(0, c, 128);
    _tile_loadd(1, c + 16, 128);
    _tile_loadd(2, c + 512, 128);
    _tile_loadd(3, c + 528, 128);
  }
  for (int64_t s = 0; s < ns; s++) {
    _tile_loadd(4, a + 1024 * s, 64);
    _tile_loadd(6, b0 + 512 * s, 64);
    _tile_dpbf16ps(0, 4, 6);
    _tile_loadd(7, b1 + 512 * s, 64);
    _tile_dpbf16ps(1, 4, 7);
    _tile_loadd(5, a + 1024 * s + 512, 64);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, c, 128);
  _tile_stored(1, c + 16, 128);
  _tile_stored(2, c + 512, 128);
  _tile_stored(3, c + 528, 128);
}

// y = x W^T (gate null), or y = (x W^T) * silu(x gate^T) (SwiGLU's first half, W = up), for the n
// rows of xb from pack_x (npad of them, a multiple of 32); y rows ldy floats apart. The work comes in
// units of 32 outputs: two 16-row groups of W, or 16 rows of W and the same 16 of gate. A unit's
// weights are decoded once and swept over every activation tile pair KSTEPS k-steps at a time,
// into a per-unit accumulator (npad x 32 floats), then written to y once, as streaming stores where
// rows are whole aligned lines (y is megabytes, read back only by the next operation). Fusing the
// gate saves writing and re-reading its output. With yb (gate set, M a multiple of 32), the gated
// outputs go to yb instead, as bf16 in pack_x's layout: the next product's A tiles.
// Two loop orders. Units outer (units handed out from an atomic counter, one accumulator per
// thread) while xb fits in L2 with room to spare; passes outer when it does not (the FFN's down
// projection: 256 rows x 4864 columns = 2.4 MiB): then every unit re-read all of xb from L3 and a
// tile product took ~24 ns instead of ~10. Passes outer, each thread keeps its own units' accumulators
// and decodes one pass of a unit at a time, so a pass's A tiles are read from L3 once per thread.
void matmul_bf16(const Tensor& W, const Tensor* gate, const uint16_t* xb, int64_t n, int64_t npad, float* y,
                 int64_t ldy, ThreadPool& pool, uint16_t* yb) {
  const int64_t K = W.ne0, M = W.ne1, nks = K / 32, width = gate ? 16 : 32, units = (M + width - 1) / width;
  const bool stream = (reinterpret_cast<uintptr_t>(y) & 63) == 0 && ldy % 16 == 0;
  const bool passes_outer = npad * K * (int64_t)sizeof(uint16_t) > (1 << 20);
  std::atomic<int64_t> next{0};
  pool.run([&](int ith, int nth) {
    amx_bf16_configure();
    const int64_t ns_max = passes_outer ? KSTEPS : nks;  // k-steps decoded at a time
    thread_local std::vector<uint16_t> wb;
    thread_local std::vector<int8_t> lv;
    thread_local std::vector<float> scm;
    thread_local std::vector<float> accv;
    if ((int64_t)wb.size() < 1024 * ns_max + 32) wb.resize(1024 * ns_max + 32);
    if ((int64_t)lv.size() < 512 * ns_max) lv.resize(512 * ns_max);
    if ((int64_t)scm.size() < 64 * ns_max) scm.resize(64 * ns_max);  // 16 rows x 2 ns scales, then mins
    uint16_t *const b0 = align64(wb.data()), *const b1 = b0 + 512 * ns_max;
    auto decode = [&](int64_t u, int64_t s0, int64_t ns) {
      const int64_t c0 = width * u;
      decode_group(W, c0, s0, ns, b0, lv.data(), scm.data(), scm.data() + 32 * ns_max);
      decode_group(gate ? *gate : W, gate ? c0 : c0 + 16, s0, ns, b1, lv.data(), scm.data(), scm.data() + 32 * ns_max);
    };
    // every activation tile pair over k-steps [s0, s0 + ns), whose B tiles start `at` tiles into b0/b1
    auto sweep = [&](int64_t s0, int64_t ns, int64_t at, float* acc) {
      for (int64_t j = 0; j < npad; j += 32)
        block_pair(xb + j * K + 1024 * s0, b0 + 512 * at, b1 + 512 * at, ns, s0 == 0, acc + 32 * j);
    };
    auto write = [&](int64_t u, const float* acc) {
      const int64_t c0 = width * u, cols = std::min(width, M - c0);
      if (yb) {  // gated, M a multiple of 32: row i's 16 outputs are half of one A-tile row of yb
        const int64_t nks_out = M / 32;
        for (int64_t i = 0; i < n; i++) {
          const float* const a = acc + 32 * i;
          const __m512 v = _mm512_mul_ps(_mm512_load_ps(a), silu512(_mm512_load_ps(a + 16)));
          uint16_t* dst = yb + tile_at(i, c0 / 32, nks_out) + c0 % 32;
          _mm256_store_si256(reinterpret_cast<__m256i*>(dst), (__m256i)_mm512_cvtneps_pbh(v));
        }
        return;
      }
      for (int64_t i = 0; i < n; i++) {
        float* const out = y + i * ldy + c0;
        const float* const a = acc + 32 * i;
        for (int64_t h = 0; h < cols; h += 16) {
          __m512 v = _mm512_load_ps(a + h);
          if (gate) v = _mm512_mul_ps(v, silu512(_mm512_load_ps(a + 16)));  // up * silu(gate)
          if (stream && cols - h >= 16) _mm512_stream_ps(out + h, v);
          else _mm512_mask_storeu_ps(out + h, (__mmask16)((1u << std::min<int64_t>(16, cols - h)) - 1), v);
        }
      }
    };
    if (!passes_outer) {
      if ((int64_t)accv.size() < 32 * npad + 16) accv.resize(32 * npad + 16);
      float* const acc = align64(accv.data());
      for (int64_t u; (u = next.fetch_add(1, std::memory_order_relaxed)) < units;) {
        decode(u, 0, nks);
        for (int64_t s0 = 0; s0 < nks; s0 += KSTEPS) sweep(s0, std::min(KSTEPS, nks - s0), s0, acc);
        write(u, acc);
      }
    } else {
      const int64_t u0 = units * ith / nth, u1 = units * (ith + 1) / nth;
      if ((int64_t)accv.size() < 32 * npad * (u1 - u0) + 16) accv.resize(32 * npad * (u1 - u0) + 16);
      float* const acc = align64(accv.data());
      for (int64_t s0 = 0; s0 < nks; s0 += KSTEPS)
        for (int64_t u = u0; u < u1; u++) {
          decode(u, s0, std::min(KSTEPS, nks - s0));
          sweep(s0, std::min(KSTEPS, nks - s0), 0, acc + 32 * npad * (u - u0));
        }
      for (int64_t u = u0; u < u1; u++) write(u, acc + 32 * npad * (u - u0));
    }
    _tile_release();
    _mm_sfence();
  });
}

}  // namespace fc_amx_bf16
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#define FC_AMX 1
#else
#define FC_AMX 0
#endif

namespace {

enum class Isa { Scalar, Avx2, Avx512, Amx };  // Amx = Avx512 kernels plus AMX tiles for quantized GEMM

#if FC_X86
// CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports does not know "f16c"); AVX state being
// enabled by the OS is already implied by the avx2 check next to it.
bool has_f16c() {
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1);
}
#endif

Isa cpu_isa() {
#if FC_X86
  static const Isa detected = [] {
    __builtin_cpu_init();
    const bool f16c = has_f16c();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512vnni") && f16c && __builtin_cpu_supports("fma")) {
#if FC_AMX
      if (fc_amx::available()) return Isa::Amx;
#endif
      return Isa::Avx512;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c) return Isa::Avx2;
    return Isa::Scalar;
  }();
  return detected;
#else
  return Isa::Scalar;
#endif
}

// Read per call (cheap next to a matmul) so tests and benchmarks can compare paths in one process.
// FORKCAST_NO_SIMD=1 forces scalar; FORKCAST_SIMD=avx512|avx2|scalar caps the choice (so the
// AVX-512 and AVX2 kernels are tested on AMX machines too).
Isa active_isa() {
  const char* e = std::getenv("FORKCAST_NO_SIMD");
  if (e && e[0] && std::strcmp(e, "0") != 0) return Isa::Scalar;
  Isa isa = cpu_isa();
  const char* cap = std::getenv("FORKCAST_SIMD");
  if (!cap) return isa;
  if (std::strcmp(cap, "scalar") == 0) isa = Isa::Scalar;
  if (std::strcmp(cap, "avx512") == 0 && isa == Isa::Amx) isa = Isa::Avx512;
  if (std::strcmp(cap, "avx2") == 0 && (isa == Isa::Avx512 || isa == Isa::Amx)) isa = Isa::Avx2;
  return isa;
}

void quantize_activations(Isa isa, ActFormat f, const float* x, int64_t K, uint8_t* out) {
#if FC_X86
  if (isa == Isa::Avx512 || isa == Isa::Amx) {
    if (f == ActFormat::Q8) fc_avx512::quant_act_q8(x, K, ActQ8Row(out, K));
    else fc_avx512::quant_act_q8K(x, K, reinterpret_cast<ActQ8K*>(out));
    return;
  }
  if (isa == Isa::Avx2) {
    if (f == ActFormat::Q8) fc_avx2::quant_act_q8(x, K, ActQ8Row(out, K));
    else fc_avx2::quant_act_q8K(x, K, reinterpret_cast<ActQ8K*>(out));
    return;
  }
#endif
  (void)isa;
  if (f == ActFormat::Q8) quant_act_q8_scalar(x, K, ActQ8Row(out, K));
  else quant_act_q8K_scalar(x, K, reinterpret_cast<ActQ8K*>(out));
}

}  // namespace

bool matmul_bf16_tiles() {
#if FC_AMX
  return cpu_isa() == Isa::Amx && amx_bf16_available();
#else
  return false;
#endif
}

const char* matmul_isa() {
  switch (active_isa()) {
    case Isa::Amx: return "amx";
    case Isa::Avx512: return "avx512vnni";
    case Isa::Avx2: return "avx2";
    default: return "scalar";
  }
}

namespace {
void check_shape(const Tensor& W) {
  const int64_t K = W.ne0, M = W.ne1;
  const int64_t bs = ggml_block_size(W.type);
  if (bs == 0) throw std::invalid_argument(std::string("matmul: unsupported weight type ") + std::to_string(W.type));
  if (K <= 0 || M <= 0 || K % bs != 0)
    throw std::invalid_argument(std::string("matmul: ") + ggml_type_name(W.type) + " row length " + std::to_string(K) +
                                " is not a positive multiple of " + std::to_string(bs));
}
}  // namespace

namespace {
// One matrix of a row-kernel matmul: its kernels and how its output rows are cut into chunks.
struct RowPlan {
  const Tensor* W;
  float* y;
  int64_t rs, chunk, nchunks;
  const RowKernel* table;
  const TileKernel* tiles;  // register-tiled GEMM kernels, used for n >= 2 where they exist
  Row4Kernel rows4;
};

RowPlan plan_rows(const Tensor& W, float* y, int64_t n, Isa isa, int nth) {
  RowPlan p{&W, y, ggml_row_size(W.type, W.ne0), 0, 0, nullptr, nullptr, nullptr};
#if FC_X86
  if (isa == Isa::Avx512 || isa == Isa::Amx) {
    p.table = fc_avx512::rows_table(W.type);
    if (n >= 2) p.tiles = fc_avx512::tile_table(W.type);
    p.rows4 = fc_avx512::rows4_kernel(W.type);
  } else if (isa == Isa::Avx2) {
    p.table = fc_avx2::rows_table(W.type);
    p.rows4 = fc_avx2::rows4_kernel(W.type);
  }
#else
  (void)isa;
#endif
  // output rows in chunks (a multiple of the tile height), about 4 per thread for GEMV
  const int64_t M = W.ne1;
  p.chunk = std::max<int64_t>(TILE, (n == 1 ? M / (4 * nth) : std::min<int64_t>(16, M / (4 * nth))) / TILE * TILE);
  p.nchunks = (M + p.chunk - 1) / p.chunk;
  return p;
}

// The row-kernel path for up to 4 matrices of one input (same activation format and row length):
// activations quantized once, then every matrix's chunks handed out from one counter in one pool
// job. Q, K and V of a decode step are small (K and V of a GQA model: 128 rows): as separate calls
// each paid its own quantization and thread hand-off, ~7 us per GEMV on the bundled model.
void matmul_rows(const Tensor* const* Ws, float* const* ys, int count, const float* x, int64_t n, ThreadPool& pool) {
  const Isa isa = active_isa();
  const int64_t K = Ws[0]->ne0;
  const ActFormat af = act_format(Ws[0]->type);

  // 1. activations, quantized once for all output rows; the buffer belongs to the calling thread and
  //    only grows, so the decode loop does not allocate after its first step.
  const uint8_t* xa = reinterpret_cast<const uint8_t*>(x);
  const int64_t xs = act_row_bytes(af, K);
  if (af != ActFormat::Float) {
    thread_local std::vector<uint8_t> scratch;
    if ((int64_t)scratch.size() < n * xs) scratch.resize(n * xs);
    uint8_t* q = scratch.data();
    auto quant_rows = [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; i++) quantize_activations(isa, af, x + i * K, K, q + i * xs);
    };
    if (n * K >= (1 << 16)) pool.parallel_for(n, quant_rows);
    else quant_rows(0, n);
    xa = q;
  }

  // 2. every matrix's output rows in chunks; activation rows in tiles of about 256 KiB (L2) per chunk.
  RowPlan plans[4];
  int64_t total = 0;
  for (int i = 0; i < count; i++) {
    plans[i] = plan_rows(*Ws[i], ys[i], n, isa, pool.size());
    total += plans[i].nchunks;
  }
  const int64_t tile = std::max<int64_t>(MAXNB, (256 * 1024 / std::max<int64_t>(1, xs)) / MAXNB * MAXNB);
  std::atomic<int64_t> next{0};
  pool.run([&](int, int) {
    float out[TILE * TILE];
    for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < total;) {
      int m = 0;
      while (c >= plans[m].nchunks) c -= plans[m++].nchunks;
      const Tensor& W = *plans[m].W;
      float* const y = plans[m].y;
      const int64_t M = W.ne1, rs = plans[m].rs;
      const RowKernel* table = plans[m].table;
      const TileKernel* tiles = plans[m].tiles;
      const Row4Kernel rows4 = plans[m].rows4;
      const int64_t r0 = c * plans[m].chunk, r1 = std::min(M, r0 + plans[m].chunk);
      for (int64_t t0 = 0; t0 < n; t0 += tile) {
        const int64_t t1 = std::min(n, t0 + tile);
        if (tiles) {
          for (int64_t r = r0; r < r1; r += TILE) {
            const int rw = (int)std::min<int64_t>(TILE, r1 - r);
            for (int64_t i = t0; i < t1; i += TILE) {
              const int rx = (int)std::min<int64_t>(TILE, t1 - i);
              tiles[(rw - 1) * TILE + (rx - 1)](W.data + r * rs, rs, K, xa + i * xs, xs, out);
              for (int a = 0; a < rw; a++)
                for (int j = 0; j < rx; j++) y[(i + j) * M + r + a] = out[a * rx + j];
            }
          }
          continue;
        }
        // GEMV of a matrix that streams from memory: each thread reads its chunk as several
        // sequences side by side, so the hardware prefetcher runs ahead on several page streams and
        // more reads are in flight (a plain read loop on this machine, 2 threads: one stream per
        // thread 29 GB/s, four 33). Q8_0 and the K-quants have kernels that take four rows, one from
        // each quarter of the chunk, block by block; other types alternate rows between two halves.
        // In-model generation, 2 threads, alternating builds, one sequence -> this: DeepSeek-1.3B
        // shape Q8_0 17.1 -> 21.3 tok/s, Qwen-0.5B shape Q8_0 39 -> 52, Q4_K_M (two halves) 44.5 ->
        // 51. Matrices that fit in L2 keep the plain order.
        const bool streams = n == 1 && M * rs >= (2 << 20);
        const int64_t span = r1 - r0;
        if (streams && rows4 && span >= 4) {
          const int64_t quarter = (span + 3) / 4;
          for (int64_t q = 0; q < quarter; q++) {
            const int64_t rr[4] = {r0 + q, r0 + quarter + q, r0 + 2 * quarter + q, r0 + 3 * quarter + q};
            if (rr[3] < r1) {
              const uint8_t* ws[4] = {W.data + rr[0] * rs, W.data + rr[1] * rs, W.data + rr[2] * rs, W.data + rr[3] * rs};
              rows4(ws, K, xa, out);
              for (int k = 0; k < 4; k++) y[rr[k]] = out[k];
              continue;
            }
            for (int k = 0; k < 4 && rr[k] < r1; k++) {  // the last quarter is shorter
              table[0](W.data + rr[k] * rs, K, xa, xs, out);
              y[rr[k]] = out[0];
            }
          }
          continue;
        }
        const int64_t half = streams ? (span + 1) / 2 : span;
        for (int64_t q = 0; q < span; q++) {
          const int64_t r = half == span ? r0 + q : r0 + (q & 1) * half + q / 2;
          const uint8_t* w = W.data + r * rs;
          for (int64_t i = t0; i < t1; i += MAXNB) {
            const int nb = (int)std::min<int64_t>(MAXNB, t1 - i);
            if (table) table[nb - 1](w, K, xa + i * xs, xs, out);
            else rows_scalar(W.type, w, K, xa + i * xs, xs, nb, out);
            for (int j = 0; j < nb; j++) y[(i + j) * M + r] = out[j];
          }
        }
      }
    }
  });
}
}  // namespace

#if FC_AMX
// FORKCAST_NO_BF16=1 keeps prompt chunks on the int8 tiles (read per call, for tests and benchmarks).
static bool bf16_enabled() {
  if (!amx_bf16_available()) return false;
  const char* e = std::getenv("FORKCAST_NO_BF16");
  return !(e && e[0] && std::strcmp(e, "0") != 0);
}
// Whether n rows of x against these matrices go to the bf16 tiles: a prompt-sized product on AMX,
// every matrix quantized (a type the tile decoders know) with the same row length, a multiple of 32.
static bool prompt_tiles(const Tensor* const* Ws, int count, int64_t n) {
  if (active_isa() != Isa::Amx || n < fc_amx_bf16::MIN_N || !bf16_enabled()) return false;
  for (int i = 0; i < count; i++)
    if (!fc_amx::supported(Ws[i]->type) || Ws[i]->ne0 != Ws[0]->ne0 || Ws[i]->ne0 % 32 != 0) return false;
  return true;
}
static int64_t pad32(int64_t n) { return (n + 31) / 32 * 32; }
#endif

void matmul_shared(const Tensor* const* Ws, float* const* ys, int count, const float* x, int64_t n, ThreadPool& pool) {
  for (int i = 0; i < count; i++) check_shape(*Ws[i]);
  if (n <= 0 || count <= 0) return;
  const Tensor& W0 = *Ws[0];
  bool same = count <= 4, same_act = count <= 4;  // same type / same activation format, same row length
  for (int i = 1; i < count; i++) {
    same_act = same_act && Ws[i]->ne0 == W0.ne0 && act_format(Ws[i]->type) == act_format(W0.type);
    same = same && same_act && Ws[i]->type == W0.type;
  }
  bool amx = false;
#if FC_AMX
  // On AMX the activations are quantized and packed into tile order once for all the matrices.
  amx = active_isa() == Isa::Amx && n >= fc_amx::AMX_MIN_N;
  if (prompt_tiles(Ws, count, n)) {
    const int64_t npad = pad32(n);
    const uint16_t* xb = fc_amx_bf16::pack(x, n, npad, W0.ne0, pool);
    for (int i = 0; i < count; i++) fc_amx_bf16::matmul_bf16(*Ws[i], nullptr, xb, n, npad, ys[i], Ws[i]->ne1, pool, nullptr);
    return;
  }
  if (amx && same && fc_amx::supported(W0.type)) {
    thread_local std::vector<uint8_t> packed;
    const int64_t need = fc_amx::packed_bytes(n, W0.ne0, fc_amx::sub_block(W0.type));
    if ((int64_t)packed.size() < need) packed.resize(need);
    const fc_amx::PackedActs pa = fc_amx::pack_activations(W0.type, x, n, W0.ne0, packed.data(), pool);
    for (int i = 0; i < count; i++) fc_amx::matmul_amx(*Ws[i], pa, n, ys[i], pool);
    return;
  }
#endif
  if (same_act && !(amx && !same)) {
    matmul_rows(Ws, ys, count, x, n, pool);
    return;
  }
  // mixed inputs (or an AMX matrix beside another type, e.g. a Q4_K_M mix's Q6_K V): one at a time
  for (int i = 0; i < count; i++) matmul_shared(Ws + i, ys + i, 1, x, n, pool);
}

void matmul_swiglu(const Tensor& up, const Tensor& gate, const float* x, int64_t n, float* y, float* gate_out,
                   ThreadPool& pool) {
  check_shape(up);
  check_shape(gate);
  const Tensor* Ws[2] = {&up, &gate};
#if FC_AMX
  if (prompt_tiles(Ws, 2, n) && up.ne1 == gate.ne1) {
    const int64_t npad = pad32(n);
    fc_amx_bf16::matmul_bf16(up, &gate, fc_amx_bf16::pack(x, n, npad, up.ne0, pool), n, npad, y, up.ne1, pool, nullptr);
    return;
  }
#endif
  float* ys[2] = {y, gate_out};
  matmul_shared(Ws, ys, 2, x, n, pool);
  const int64_t F = up.ne1;
  pool.parallel_for(n * F, [&](int64_t b, int64_t e) { silu_mul(y + b, gate_out + b, e - b); });
}

void ffn_swiglu(const Tensor& up, const Tensor& gate, const Tensor& down, const float* x, int64_t n, float* y,
                float* h, float* g, ThreadPool& pool) {
  check_shape(up);
  check_shape(gate);
  check_shape(down);
#if FC_AMX
  const Tensor* Ws[2] = {&up, &gate};
  const int64_t F = up.ne1;
  if (prompt_tiles(Ws, 2, n) && gate.ne1 == F && F % 32 == 0 && down.ne0 == F && fc_amx::supported(down.type)) {
    const int64_t npad = pad32(n);
    thread_local std::vector<uint16_t> hidden;  // the calling thread's; grown, never shrunk
    if ((int64_t)hidden.size() < npad * F + 32) hidden.resize(npad * F + 32);
    uint16_t* const hb = align64(hidden.data());
    // rows n..npad of the last tile pair are A rows of the down product: zero, not stale
    for (int64_t i = n; i < npad; i++)
      for (int64_t s = 0; s < F / 32; s++)
        std::memset(hb + fc_amx_bf16::tile_at(i, s, F / 32), 0, 64);
    fc_amx_bf16::matmul_bf16(up, &gate, fc_amx_bf16::pack(x, n, npad, up.ne0, pool), n, npad, nullptr, 0, pool, hb);
    fc_amx_bf16::matmul_bf16(down, nullptr, hb, n, npad, y, down.ne1, pool, nullptr);
    return;
  }
#endif
  matmul_swiglu(up, gate, x, n, h, g, pool);
  matmul(down, h, n, y, pool);
}

void matmul(const Tensor& W, const float* x, int64_t n, float* y, ThreadPool& pool) {
  const Tensor* Ws[1] = {&W};
  float* ys[1] = {y};
  matmul_shared(Ws, ys, 1, x, n, pool);
}

void get_row(const Tensor& W, int64_t r, float* out) {
  dequantize_row(W.type, W.data + r * ggml_row_size(W.type, W.ne0), out, W.ne0);
}
