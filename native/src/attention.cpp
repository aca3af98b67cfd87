// Decode and prefill attention (see attention.h for the shapes and the math).
//
// Every variant is the same loop: a block of query rows Q [R][hd] (already scaled by 1/sqrt(hd))
// walks over a run of cached positions tile by tile, keeping per row the running maximum m, the
// running denominator l = sum exp(s - m) and the running numerator acc = sum exp(s - m) v.
// When a tile raises the maximum, the old sums are rescaled by exp(m_old - m_new). This is the
// split softmax of Athiwaratkun et al. 2024 (bifurcated attention) applied per tile: for two parts
// A and B with maxima m_A, m_B and m = max(m_A, m_B),
//   softmax([A, B]) V = (e^{m_A-m} N_A + e^{m_B-m} N_B) / (e^{m_A-m} L_A + e^{m_B-m} L_B),
// exact in real arithmetic, so the context part and each sample's decode part merge without error.
//
// Bifurcated: one work item = one KV head (its positions split over threads when there are fewer
// heads than threads); its R = n * (n_head/n_kv) query rows all take each context K/V tile while it
// sits in L1/L2 (the context is read once per step for all samples: the paper's "one GEMM"), then
// each sample's rows continue over that sample's own decode cache, then the rows are normalised.
// Replicated: one item = one sample x one KV head over that sample's private copy (context copied in)
// of length P + D.
#include "attention.h"
#include "simd_exp.h"
#include "simd_transpose.h"
#include "amx_tiles.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
// GCC 12's AVX-512 intrinsics start some results from _mm512_undefined_*(), which its own
// -Wuninitialized then reports at every use; the values are fully overwritten.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
#define FC_X86 1
#endif

namespace {

constexpr int kTile = 64;     // cached positions per tile: K+V tile = 2*64*hd*4 bytes (32 KiB at hd=64)
constexpr int kRowBlock = 6;  // query rows per register block: 6 x 4 accumulators + 4 K/V vectors fit 32 zmm

// ---- vector primitives: AVX2+FMA when the CPU has them, plain loops otherwise ----------------

float dot_scalar(const float* a, const float* b, int n) {
  float s = 0.f;
  for (int i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}
void axpy_scalar(float* y, float a, const float* x, int n) {
  for (int i = 0; i < n; i++) y[i] += a * x[i];
}
// y[i] = exp(x[i] - m) in place, returns the sum.
float expsub_scalar(float* x, int n, float m) {
  float s = 0.f;
  for (int i = 0; i < n; i++) { x[i] = std::exp(x[i] - m); s += x[i]; }
  return s;
}

#ifdef FC_X86
__attribute__((target("avx2,fma"))) inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}
__attribute__((target("avx2,fma"))) float dot_avx2(const float* a, const float* b, int n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
  }
  for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  float s = hsum256(_mm256_add_ps(s0, s1));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}
__attribute__((target("avx2,fma"))) void axpy_avx2(float* y, float a, const float* x, int n) {
  const __m256 va = _mm256_set1_ps(a);
  int i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * x[i];
}
__attribute__((target("avx2,fma"))) float expsub_avx2(float* x, int n, float m) {
  const __m256 vm = _mm256_set1_ps(m);
  __m256 s = _mm256_setzero_ps();
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm));
    _mm256_storeu_ps(x + i, e);
    s = _mm256_add_ps(s, e);
  }
  float t = hsum256(s);
  for (; i < n; i++) { x[i] = std::exp(x[i] - m); t += x[i]; }
  return t;
}
#endif

struct Kernels {
  float (*dot)(const float*, const float*, int);
  void (*axpy)(float*, float, const float*, int);
  float (*expsub)(float*, int, float);
};
const Kernels kScalar{dot_scalar, axpy_scalar, expsub_scalar};
#ifdef FC_X86
const Kernels kAvx2{dot_avx2, axpy_avx2, expsub_avx2};
#endif

// Amx = the AVX-512 kernels plus AMX BF16 tiles for blocks of >= 16 query rows (attend_amx).
enum class Isa : int { Scalar, Avx2, Avx512, Amx };


Isa cpu_isa() {
#ifdef FC_X86
#if FC_AMX_TILES
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && amx_bf16_available()) return Isa::Amx;
#endif
  if (__builtin_cpu_supports("avx512f")) return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
  return Isa::Scalar;
}
const Isa kCpuIsa = cpu_isa();

// The kernels' level for this call: the CPU's, capped by the same switches as the matmul kernels
// (FORKCAST_NO_SIMD=1 -> scalar, FORKCAST_SIMD=avx512|avx2|scalar) so tests can check every path here.
Isa active_isa() {
  const char* off = std::getenv("FORKCAST_NO_SIMD");
  if (off && off[0] && std::strcmp(off, "0") != 0) return Isa::Scalar;
  Isa isa = kCpuIsa;
  const char* cap = std::getenv("FORKCAST_SIMD");
  if (cap && std::strcmp(cap, "scalar") == 0) isa = Isa::Scalar;
  if (cap && std::strcmp(cap, "avx512") == 0 && isa == Isa::Amx) isa = Isa::Avx512;
  if (cap && std::strcmp(cap, "avx2") == 0 && isa >= Isa::Avx512) isa = Isa::Avx2;
  return isa;
}
// Set by each public entry point before its parallel loop; read by the workers.
std::atomic<int> g_isa{(int)Isa::Scalar};
inline Isa isa_now() { return (Isa)g_isa.load(std::memory_order_relaxed); }
inline const Kernels& kern() {
#ifdef FC_X86
  if (isa_now() != Isa::Scalar) return kAvx2;
#endif
  return kScalar;
}

// ---- the one loop -------------------------------------------------------------------------

// Per-thread scratch, grown on first use and then reused: no allocation per decode step.
struct Scratch {
  std::vector<float> q, s, m, l, acc, kt;
  void reserve(int R, int hd) {
    if ((int64_t)q.size() < (int64_t)R * hd) { q.resize((size_t)R * hd); acc.resize((size_t)R * hd); }
    if ((int64_t)s.size() < (int64_t)kRowBlock * kTile) s.resize((size_t)kRowBlock * kTile);
    if ((int)m.size() < R) { m.resize(R); l.resize(R); }
    if ((int64_t)kt.size() < (int64_t)hd * kTile) kt.resize((size_t)hd * kTile);
  }
  void start(int R, int hd) {
    std::fill(m.begin(), m.begin() + R, -std::numeric_limits<float>::infinity());
    std::fill(l.begin(), l.begin() + R, 0.f);
    std::fill(acc.begin(), acc.begin() + (size_t)R * hd, 0.f);
  }
};
thread_local Scratch tls;

// Rows [r0, r0+R) of the scratch's Q attend positions [0, npos) of one head's K/V ([pos][hd]).
// limit (optional): row r may only see positions < limit[r] (causal prefill).
// Generic version: one row at a time, dot products against the tile's keys.
void attend_rows(Scratch& w, int r0, int R, int hd, const float* k, const float* v, int64_t npos, const int64_t* limit) {
  for (int64_t t0 = 0; t0 < npos; t0 += kTile) {
    const int T = (int)std::min<int64_t>(kTile, npos - t0);
    const float* kt = k + t0 * hd;
    const float* vt = v + t0 * hd;
    for (int r = r0; r < r0 + R; r++) {
      int c = T;  // positions of this tile row r may see
      if (limit) c = (int)std::max<int64_t>(0, std::min<int64_t>(T, limit[r - r0] - t0));
      if (c == 0) continue;
      const float* qr = w.q.data() + (size_t)r * hd;
      float* sr = w.s.data();  // one row of scores at a time keeps it in L1
      float tmax = -std::numeric_limits<float>::infinity();
      for (int t = 0; t < c; t++) { sr[t] = kern().dot(qr, kt + (size_t)t * hd, hd); tmax = std::max(tmax, sr[t]); }
      float* ar = w.acc.data() + (size_t)r * hd;
      if (tmax > w.m[r]) {  // new maximum: rescale what this row has summed so far
        const float c_old = std::exp(w.m[r] - tmax);  // exp(-inf) = 0 on the first tile
        if (w.l[r] != 0.f) { for (int i = 0; i < hd; i++) ar[i] *= c_old; }
        w.l[r] *= c_old;
        w.m[r] = tmax;
      }
      w.l[r] += kern().expsub(sr, c, w.m[r]);
      for (int t = 0; t < c; t++) kern().axpy(ar, sr[t], vt + (size_t)t * hd, hd);
    }
  }
}

#ifdef FC_X86
// ---- AVX-512 tile kernels: the two products as register-blocked GEMMs ----------------------
// Scores: up to 4 query rows x 64 keys at once against the tile's K transposed to [hd][64], so
// each K element loaded feeds 4 rows (no horizontal sums). Values: up to 4 rows' accumulators
// (64 dims each) stay in registers while the tile's V rows stream through.
#define FC_AVX512 __attribute__((target("avx512f,fma")))


// s[r][0..16 NJ) = q_r . kt[:, t] for RB rows (q rows hd apart, kt [hd][64]). NJ < 4 for a short
// tile (a sample's own cache in a decode step holds fewer than 64 positions).
template <int RB, int NJ>
FC_AVX512 void qk_block(const float* q, int hd, const float* kt, float* s) {
  __m512 a[RB][NJ];
  for (int r = 0; r < RB; r++)
    for (int j = 0; j < NJ; j++) a[r][j] = _mm512_setzero_ps();
  for (int x = 0; x < hd; x++) {
    const float* k = kt + (size_t)x * kTile;
    __m512 kv[NJ];
    for (int j = 0; j < NJ; j++) kv[j] = _mm512_loadu_ps(k + 16 * j);
    for (int r = 0; r < RB; r++) {
      const __m512 b = _mm512_set1_ps(q[(size_t)r * hd + x]);
      for (int j = 0; j < NJ; j++) a[r][j] = _mm512_fmadd_ps(b, kv[j], a[r][j]);
    }
  }
  for (int r = 0; r < RB; r++)
    for (int j = 0; j < NJ; j++) _mm512_storeu_ps(s + r * kTile + 16 * j, a[r][j]);
}

// acc[r][d0 .. d0+16*ND) += sum_{t<c} p[r][t] v[t][d0 ..] for RB rows.
template <int RB, int ND>
FC_AVX512 void pv_block(const float* p, int c, const float* v, int hd, int d0, float* acc) {
  __m512 a[RB][ND];
  for (int r = 0; r < RB; r++)
    for (int j = 0; j < ND; j++) a[r][j] = _mm512_loadu_ps(acc + (size_t)r * hd + d0 + 16 * j);
  for (int t = 0; t < c; t++) {
    const float* vt = v + (size_t)t * hd + d0;
    __m512 vv[ND];
    for (int j = 0; j < ND; j++) vv[j] = _mm512_loadu_ps(vt + 16 * j);
    for (int r = 0; r < RB; r++) {
      const __m512 b = _mm512_set1_ps(p[r * kTile + t]);
      for (int j = 0; j < ND; j++) a[r][j] = _mm512_fmadd_ps(b, vv[j], a[r][j]);
    }
  }
  for (int r = 0; r < RB; r++)
    for (int j = 0; j < ND; j++) _mm512_storeu_ps(acc + (size_t)r * hd + d0 + 16 * j, a[r][j]);
}

template <int RB>
FC_AVX512 void pv_rows(const float* p, int c, const float* v, int hd, float* acc) {
  for (int d0 = 0; d0 < hd; d0 += 64) {
    switch (std::min(4, (hd - d0) / 16)) {
      case 4: pv_block<RB, 4>(p, c, v, hd, d0, acc); break;
      case 3: pv_block<RB, 3>(p, c, v, hd, d0, acc); break;
      case 2: pv_block<RB, 2>(p, c, v, hd, d0, acc); break;
      default: pv_block<RB, 1>(p, c, v, hd, d0, acc); break;
    }
  }
}

// Row r of a score block (its first 16 nj scores computed): positions >= c are masked out; updates
// m, l, rescales acc, turns the scores into exp(s - m) (zero where masked).
FC_AVX512 void softmax_row(float* s, int c, int nj, float& m, float& l, float* acc, int hd) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __mmask16 mk[4];
  __m512 mx = ninf;
  for (int j = 0; j < nj; j++) {
    const int left = std::max(0, std::min(16, c - 16 * j));
    mk[j] = (__mmask16)((1u << left) - 1u);
    mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(ninf, mk[j], s + 16 * j));
  }
  const float tmax = _mm512_reduce_max_ps(mx);
  if (tmax > m) {
    const float c_old = std::exp(m - tmax);
    if (l != 0.f) {
      const __m512 cv = _mm512_set1_ps(c_old);
      for (int i = 0; i < hd; i += 16) _mm512_storeu_ps(acc + i, _mm512_mul_ps(cv, _mm512_loadu_ps(acc + i)));
    }
    l *= c_old;
    m = tmax;
  }
  const __m512 vm = _mm512_set1_ps(m);
  __m512 sum = _mm512_setzero_ps();
  for (int j = 0; j < nj; j++) {
    const __m512 e = _mm512_maskz_mov_ps(mk[j], exp512(_mm512_sub_ps(_mm512_loadu_ps(s + 16 * j), vm)));
    _mm512_storeu_ps(s + 16 * j, e);
    sum = _mm512_add_ps(sum, e);
  }
  l += _mm512_reduce_add_ps(sum);
}

// softmax_row for 16 rows at once (the matrix-unit path's row tiles): s[16][64], row i sees its
// first c[i] positions (0: the row is padding or sees none of this tile; its state is kept). The
// per-row maxima and sums come out of 16 x 16 transposes (one vector op per row, instead of a
// horizontal reduction per row), and the 16 rescale factors out of one vector exp.
FC_AVX512 void softmax16(float* s, const int* c, float* m, float* l, float* acc, int hd) {
  const __m512 ninf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 t[16];
  __mmask16 live = 0;
  for (int i = 0; i < 16; i++) {
    __m512 mx = ninf;
    for (int j = 0; j < 4; j++) {
      const __mmask16 mk = (__mmask16)((1u << std::max(0, std::min(16, c[i] - 16 * j))) - 1u);
      mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(ninf, mk, s + i * kTile + 16 * j));
    }
    t[i] = mx;
    if (c[i] > 0) live |= (__mmask16)(1u << i);
  }
  transpose16(t);
  __m512 tmax = t[0];
  for (int j = 1; j < 16; j++) tmax = _mm512_max_ps(tmax, t[j]);
  const __m512 mold = _mm512_loadu_ps(m);
  const __mmask16 up = _mm512_mask_cmp_ps_mask(live, tmax, mold, _CMP_GT_OQ);  // rows whose max grows
  const __m512 mnew = _mm512_mask_mov_ps(mold, up, tmax);
  // exp(m_old - m_new): 1 where the max stays; exp512 clamps -inf (a row's first tile) to ~1e-38,
  // which multiplies a zero sum and zero accumulator.
  const __m512 cold = _mm512_mask_mov_ps(_mm512_set1_ps(1.f), up, exp512(_mm512_sub_ps(_mm512_maskz_mov_ps(up, mold), _mm512_maskz_mov_ps(up, mnew))));
  alignas(64) float cf[16], mv[16];
  _mm512_store_ps(cf, cold);
  _mm512_store_ps(mv, mnew);
  _mm512_storeu_ps(m, mnew);
  for (int i = 0; i < 16; i++) {
    if (up & (1u << i)) {
      const __m512 cv = _mm512_set1_ps(cf[i]);
      for (int x = 0; x < hd; x += 16) _mm512_storeu_ps(acc + (size_t)i * hd + x, _mm512_mul_ps(cv, _mm512_loadu_ps(acc + (size_t)i * hd + x)));
    }
    __m512 sum = _mm512_setzero_ps();
    if (c[i] > 0) {
      const __m512 vm = _mm512_set1_ps(mv[i]);
      for (int j = 0; j < 4; j++) {
        const __mmask16 mk = (__mmask16)((1u << std::max(0, std::min(16, c[i] - 16 * j))) - 1u);
        const __m512 e = _mm512_maskz_mov_ps(mk, exp512(_mm512_sub_ps(_mm512_loadu_ps(s + i * kTile + 16 * j), vm)));
        _mm512_storeu_ps(s + i * kTile + 16 * j, e);
        sum = _mm512_add_ps(sum, e);
      }
    } else {
      for (int j = 0; j < 4; j++) _mm512_storeu_ps(s + i * kTile + 16 * j, _mm512_setzero_ps());
    }
    t[i] = sum;
  }
  transpose16(t);
  __m512 tsum = t[0];
  for (int j = 1; j < 16; j++) tsum = _mm512_add_ps(tsum, t[j]);
  _mm512_storeu_ps(l, _mm512_fmadd_ps(_mm512_loadu_ps(l), cold, tsum));
}

template <int RB>
FC_AVX512 void tile_rows(Scratch& w, int r, int hd, const float* vt, int T, int64_t t0, const int64_t* limit) {
  float* sb = w.s.data();
  const int nj = (T + 15) / 16;
  const float* qr = w.q.data() + (size_t)r * hd;
  switch (nj) {
    case 4: qk_block<RB, 4>(qr, hd, w.kt.data(), sb); break;
    case 3: qk_block<RB, 3>(qr, hd, w.kt.data(), sb); break;
    case 2: qk_block<RB, 2>(qr, hd, w.kt.data(), sb); break;
    default: qk_block<RB, 1>(qr, hd, w.kt.data(), sb); break;
  }
  int cmax = 0;
  for (int i = 0; i < RB; i++) {
    int c = T;
    if (limit) c = (int)std::max<int64_t>(0, std::min<int64_t>(T, limit[i] - t0));
    cmax = std::max(cmax, c);
    if (c == 0) {
      std::memset(sb + i * kTile, 0, sizeof(float) * kTile);
      continue;
    }
    softmax_row(sb + i * kTile, c, nj, w.m[r + i], w.l[r + i], w.acc.data() + (size_t)(r + i) * hd, hd);
  }
  if (cmax > 0) pv_rows<RB>(sb, cmax, vt, hd, w.acc.data() + (size_t)r * hd);
}

// dst[c][r] = src[r][c] for an 8x8 block (rows src_stride / dst_stride floats apart): the usual
// unpack / shuffle / 128-bit-lane permute sequence.
__attribute__((target("avx2,fma"))) inline void transpose8x8(const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m256 r[8], t[8], u[8];
  for (int i = 0; i < 8; i++) r[i] = _mm256_loadu_ps(src + i * src_stride);
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 8; i += 4) {
    u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE);
    u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
  }
  for (int i = 0; i < 4; i++) {
    _mm256_storeu_ps(dst + i * dst_stride, _mm256_permute2f128_ps(u[i], u[i + 4], 0x20));
    _mm256_storeu_ps(dst + (i + 4) * dst_stride, _mm256_permute2f128_ps(u[i], u[i + 4], 0x31));
  }
}

// kt[x][t] = kb[t][x] for the T <= 64 positions of a K tile ([pos][hd], hd a multiple of 8), zero
// from T to pad: the layout every tile kernel's score product reads. Short tiles are the common case
// in a decode step (each sample's own cache), so they take the 8 x 8 blocks too, and the vector
// kernels, which read only the 16-wide columns that hold positions, zero only up to the next 16
// (a whole 64-wide tile was 16 KiB of stores per sample, KV head and step).
__attribute__((target("avx2,fma"))) void k_tile_transposed(const float* kb, int T, int hd, float* kt, int pad = kTile) {
  const int T8 = T & ~7;
  for (int t = 0; t < T8; t += 8)
    for (int x = 0; x < hd; x += 8) transpose8x8(kb + (size_t)t * hd + x, hd, kt + (size_t)x * kTile + t, kTile);
  for (int t = T8; t < T; t++)
    for (int x = 0; x < hd; x++) kt[(size_t)x * kTile + t] = kb[(size_t)t * hd + x];
  if (pad > T)
    for (int x = 0; x < hd; x++) std::memset(kt + (size_t)x * kTile + T, 0, sizeof(float) * (pad - T));
}

// Same contract as attend_rows; needs hd % 16 == 0.
FC_AVX512 void attend_avx512(Scratch& w, int r0, int R, int hd, const float* k, const float* v, int64_t npos,
                             const int64_t* limit) {
  for (int64_t t0 = 0; t0 < npos; t0 += kTile) {
    const int T = (int)std::min<int64_t>(kTile, npos - t0);
    // Ask for the next tile's K and V now (into L2) so memory streams while this tile computes:
    // without it every tile waits for DRAM and cold-cache time is compute + transfer, not the max.
    // The next tile's K and V lines, requested a slice per row block so the requests spread over
    // this tile's compute instead of stalling it in one burst.
    const int64_t next_bytes = t0 + kTile < npos ? std::min<int64_t>(kTile, npos - t0 - kTile) * hd * 4 : 0;
    const char* kn = reinterpret_cast<const char*>(k + (t0 + kTile) * hd);
    const char* vn = reinterpret_cast<const char*>(v + (t0 + kTile) * hd);
    const int blocks = (R + kRowBlock - 1) / kRowBlock;
    int64_t issued = 0;
    // K tile transposed to [hd][64] (zero-padded past T): read once, used by all R rows.
    float* kt = w.kt.data();
    k_tile_transposed(k + t0 * hd, T, hd, kt, (T + 15) & ~15);
    const float* vt = v + t0 * hd;
    for (int r = r0, blk = 0, take; r < r0 + R; r += take, blk++) {
      // Blocks of at most kRowBlock rows, balanced: a lone row's block has too few independent
      // sums to keep the FMA units busy (7 rows, a Qwen2.5-0.5B sample's group, go as 4 + 3).
      const int left = r0 + R - r, nb = (left + kRowBlock - 1) / kRowBlock;  // blocks still to go
      take = (left + nb - 1) / nb;
      const int64_t upto = next_bytes * (blk + 1) / blocks;
      for (; issued < upto; issued += 64) {
        _mm_prefetch(kn + issued, _MM_HINT_T1);
        _mm_prefetch(vn + issued, _MM_HINT_T1);
      }
      const int64_t* lim = limit ? limit + (r - r0) : nullptr;
      switch (take) {
        case 6: tile_rows<6>(w, r, hd, vt, T, t0, lim); break;
        case 5: tile_rows<5>(w, r, hd, vt, T, t0, lim); break;
        case 4: tile_rows<4>(w, r, hd, vt, T, t0, lim); break;
        case 3: tile_rows<3>(w, r, hd, vt, T, t0, lim); break;
        case 2: tile_rows<2>(w, r, hd, vt, T, t0, lim); break;
        default: tile_rows<1>(w, r, hd, vt, T, t0, lim); break;
      }
    }
  }
}
// ---- AVX2 + FMA tile kernels (CPUs without AVX-512): the same scheme in 8-wide vectors ------
// 16 ymm registers: 2 query rows x 4 accumulators (32 keys or 32 dims) + 4 K/V vectors + 1 broadcast.
#define FC_AVX2 __attribute__((target("avx2,fma")))

template <int RB>
FC_AVX2 void qk_block2(const float* q, int hd, const float* kt, float* s) {
  for (int half = 0; half < kTile; half += 32) {
    __m256 a[RB][4];
    for (int r = 0; r < RB; r++)
      for (int j = 0; j < 4; j++) a[r][j] = _mm256_setzero_ps();
    for (int x = 0; x < hd; x++) {
      const float* k = kt + (size_t)x * kTile + half;
      const __m256 k0 = _mm256_loadu_ps(k), k1 = _mm256_loadu_ps(k + 8), k2 = _mm256_loadu_ps(k + 16),
                   k3 = _mm256_loadu_ps(k + 24);
      for (int r = 0; r < RB; r++) {
        const __m256 b = _mm256_broadcast_ss(q + (size_t)r * hd + x);
        a[r][0] = _mm256_fmadd_ps(b, k0, a[r][0]);
        a[r][1] = _mm256_fmadd_ps(b, k1, a[r][1]);
        a[r][2] = _mm256_fmadd_ps(b, k2, a[r][2]);
        a[r][3] = _mm256_fmadd_ps(b, k3, a[r][3]);
      }
    }
    for (int r = 0; r < RB; r++)
      for (int j = 0; j < 4; j++) _mm256_storeu_ps(s + r * kTile + half + 8 * j, a[r][j]);
  }
}

template <int RB>
FC_AVX2 void pv_rows2(const float* p, int c, const float* v, int hd, float* acc) {
  for (int d0 = 0; d0 < hd; d0 += 32) {
    const int nd = std::min(4, (hd - d0) / 8);
    __m256 a[RB][4];
    for (int r = 0; r < RB; r++)
      for (int j = 0; j < 4; j++) a[r][j] = j < nd ? _mm256_loadu_ps(acc + (size_t)r * hd + d0 + 8 * j) : _mm256_setzero_ps();
    for (int t = 0; t < c; t++) {
      const float* vt = v + (size_t)t * hd + d0;
      __m256 vv[4];
      for (int j = 0; j < 4; j++) vv[j] = j < nd ? _mm256_loadu_ps(vt + 8 * j) : _mm256_setzero_ps();
      for (int r = 0; r < RB; r++) {
        const __m256 b = _mm256_broadcast_ss(p + r * kTile + t);
        for (int j = 0; j < 4; j++) a[r][j] = _mm256_fmadd_ps(b, vv[j], a[r][j]);
      }
    }
    for (int r = 0; r < RB; r++)
      for (int j = 0; j < nd; j++) _mm256_storeu_ps(acc + (size_t)r * hd + d0 + 8 * j, a[r][j]);
  }
}

FC_AVX2 void softmax_row2(float* s, int c, float& m, float& l, float* acc, int hd) {
  float tmax = s[0];
  for (int t = 1; t < c; t++) tmax = std::max(tmax, s[t]);
  if (tmax > m) {
    const float c_old = std::exp(m - tmax);
    if (l != 0.f)
      for (int i = 0; i < hd; i++) acc[i] *= c_old;
    l *= c_old;
    m = tmax;
  }
  l += expsub_avx2(s, c, m);
  for (int t = c; t < kTile; t++) s[t] = 0.f;
}

template <int RB>
FC_AVX2 void tile_rows2(Scratch& w, int r, int hd, const float* vt, int T, int64_t t0, const int64_t* limit) {
  float* sb = w.s.data();
  qk_block2<RB>(w.q.data() + (size_t)r * hd, hd, w.kt.data(), sb);
  int cmax = 0;
  for (int i = 0; i < RB; i++) {
    int c = T;
    if (limit) c = (int)std::max<int64_t>(0, std::min<int64_t>(T, limit[i] - t0));
    cmax = std::max(cmax, c);
    if (c == 0) {
      std::memset(sb + i * kTile, 0, sizeof(float) * kTile);
      continue;
    }
    softmax_row2(sb + i * kTile, c, w.m[r + i], w.l[r + i], w.acc.data() + (size_t)(r + i) * hd, hd);
  }
  if (cmax > 0) pv_rows2<RB>(sb, cmax, vt, hd, w.acc.data() + (size_t)r * hd);
}

// Same contract as attend_rows; needs hd % 8 == 0.
FC_AVX2 void attend_avx2(Scratch& w, int r0, int R, int hd, const float* k, const float* v, int64_t npos,
                         const int64_t* limit) {
  for (int64_t t0 = 0; t0 < npos; t0 += kTile) {
    const int T = (int)std::min<int64_t>(kTile, npos - t0);
    if (t0 + kTile < npos) {
      const int Tn = (int)std::min<int64_t>(kTile, npos - t0 - kTile);
      const char* kn = reinterpret_cast<const char*>(k + (t0 + kTile) * hd);
      const char* vn = reinterpret_cast<const char*>(v + (t0 + kTile) * hd);
      for (int64_t b = 0; b < (int64_t)Tn * hd * 4; b += 64) {
        _mm_prefetch(kn + b, _MM_HINT_T1);
        _mm_prefetch(vn + b, _MM_HINT_T1);
      }
    }
    float* kt = w.kt.data();
    k_tile_transposed(k + t0 * hd, T, hd, kt);
    const float* vt = v + t0 * hd;
    for (int r = r0; r < r0 + R; r += 2) {
      const int64_t* lim = limit ? limit + (r - r0) : nullptr;
      if (r0 + R - r >= 2) tile_rows2<2>(w, r, hd, vt, T, t0, lim);
      else tile_rows2<1>(w, r, hd, vt, T, t0, lim);
    }
  }
}
#endif

#if FC_AMX_TILES
// ---- AMX BF16 tiles (Sapphire Rapids and later): both products on the matrix unit, fp32-exact ----
// A tile product takes bf16 inputs (8-bit significand) and sums in fp32. Every fp32 input x is split
// exactly into three bf16 parts, x = hi + mid + lo (truncation: hi = top 8 significant bits, mid =
// the next 8 of x - hi, lo = the rest, at most 8 bits), and a product a.b is formed from the six
// part products whose weight is above 2^-24 relative (dropping mid.lo, lo.mid, lo.lo): the bf16x3
// scheme of Henry, Tang and Heinecke 2019, "Leveraging the bfloat16 Artificial Intelligence Datatype
// For Higher-Precision Computations". Each part product is exact in fp32, so the result is as
// accurate as an fp32 dot product (tested against float64 like the other kernels), at six tile
// products per 16 x 16 x 32 block, which the tile unit still does ~2.7x faster than AVX-512 FMAs.
//
// Tile shapes (Intel SDM, TDPBF16PS: C[m][n] += sum_k A[m][2k] B[k][2n] + A[m][2k+1] B[k][2n+1]):
//   scores S = Q K^T:  A = 16 query rows x 32 dims of Q; B[kp][2t+e] = K[t][2kp+e] (16 positions);
//   output O += P V:   A = 16 query rows x 32 positions of P; B[tp][2d+e] = V[2tp+e][d] (16 dims).
// Tiles 0-3 accumulate (4 x 16 positions of scores, or 4 x 16 dims of O), 4-6 hold the A parts,
// 7 the B part being multiplied. Per K/V tile the work runs in phases so each converted tile is
// read from L1 by every row tile: K parts, all scores, the softmax (softmax16), V parts, all of O.
// Prompt chunks only (see attend()).
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16,fma,amx-tile,amx-bf16")
namespace amx {

// The three parts of 16 floats, each an fp32 whose low 16 bits are zero (so its bf16 is its top half).
struct Parts { __m512 p[3]; };
inline Parts split3(__m512 x) {
  const __m512i top = _mm512_set1_epi32((int)0xFFFF0000u);
  const __m512 hi = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), top));
  const __m512 r = _mm512_sub_ps(x, hi);  // exact: hi holds x's leading bits
  const __m512 mid = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(r), top));
  const __m512 lo = _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(_mm512_sub_ps(r, mid)), top));
  return {{hi, mid, lo}};
}
// 32 consecutive values (x0 then x1) as 32 bf16: exact, the parts are representable.
inline __m512i bf16_row(__m512 x0, __m512 x1) { return (__m512i)_mm512_cvtne2ps_pbh(x1, x0); }
// Pairs for a B tile: dword j = (bf16 of a[j], bf16 of b[j]), a in the low half.
inline __m512i bf16_pairs(__m512 a, __m512 b) {
  return _mm512_or_si512(_mm512_castps_si512(b), _mm512_srli_epi32(_mm512_castps_si512(a), 16));
}

// Grown, never shrunk, and 64-byte aligned (see align64).
template <class T>
struct AlignedBuf {
  std::vector<T> v;
  T* p = nullptr;
  size_t n = 0;
  void grow(size_t count) {
    if (count <= n) return;
    v.resize(count + 64 / sizeof(T));
    p = align64(v.data());
    n = count;
  }
  T* data() { return p; }
};

struct Scratch {
  AlignedBuf<uint16_t> q, kb, vb, pp;  // bf16 parts: Q rows, K and V tiles in B order, P rows
  AlignedBuf<float> acc, s, m, l;      // the rows' accumulators, one K tile's scores, running max and sum
  void reserve(int Rp, int hd) {
    m.grow(Rp);
    l.grow(Rp);
    q.grow((size_t)3 * Rp * hd);
    acc.grow((size_t)Rp * hd);
    s.grow((size_t)Rp * kTile);
    const size_t tile_parts = (size_t)3 * hd * kTile;  // three parts of a K (or V) tile
    kb.grow(tile_parts);
    vb.grow(tile_parts);
    pp.grow((size_t)3 * Rp * kTile);
  }
};
thread_local Scratch tls_amx;

// Same contract as attend_rows; needs hd % 64 == 0 and kTile == 64.
// C += the six part products of the A parts in tiles 4 (hi), 5 (mid), 6 (lo) and the B tile whose
// three parts start at b (planes plane_t apart), smallest first: (hi, lo), (hi, mid), (mid, mid),
// (hi, hi), (mid, hi), (lo, hi) with (A part, B part). GCC's tile intrinsics take literal tile numbers.
#define FC_SIX(C, b)                              \
  {                                               \
    const uint16_t* b_ = (b);                     \
    _tile_loadd(7, b_ + 2 * plane_t, 64);         \
    _tile_dpbf16ps(C, 4, 7);                      \
    _tile_loadd(7, b_ + plane_t, 64);             \
    _tile_dpbf16ps(C, 4, 7);                      \
    _tile_dpbf16ps(C, 5, 7);                      \
    _tile_loadd(7, b_, 64);                       \
    _tile_dpbf16ps(C, 4, 7);                      \
    _tile_dpbf16ps(C, 5, 7);                      \
    _tile_dpbf16ps(C, 6, 7);                      \
  }
void attend_amx(::Scratch& w, int r0, int R, int hd, const float* k, const float* v, int64_t npos, const int64_t* limit) {
  static_assert(kTile == 64, "tile layout assumes 64 positions per tile");
  Scratch& a = tls_amx;
  const int RT = (R + 15) / 16, Rp = 16 * RT;
  a.reserve(Rp, hd);
  w.reserve(R, hd);  // kt
  const size_t plane_q = (size_t)Rp * hd, plane_t = (size_t)hd * kTile, plane_p = (size_t)Rp * kTile;
  // Q rows in parts (rows past R zero), and the accumulators copied into whole tiles.
  for (int r = 0; r < Rp; r++) {
    const float* src = w.q.data() + (size_t)(r0 + r) * hd;
    for (int x = 0; x < hd; x += 32) {
      const __m512 zero = _mm512_setzero_ps();
      const Parts p0 = split3(r < R ? _mm512_loadu_ps(src + x) : zero);
      const Parts p1 = split3(r < R ? _mm512_loadu_ps(src + x + 16) : zero);
      for (int j = 0; j < 3; j++)
        _mm512_store_si512(a.q.data() + j * plane_q + (size_t)r * hd + x, bf16_row(p0.p[j], p1.p[j]));
    }
    float* acc = a.acc.data() + (size_t)r * hd;
    if (r < R) std::memcpy(acc, w.acc.data() + (size_t)(r0 + r) * hd, sizeof(float) * hd);
    else std::memset(acc, 0, sizeof(float) * hd);
    a.m.data()[r] = r < R ? w.m[r0 + r] : -std::numeric_limits<float>::infinity();
    a.l.data()[r] = r < R ? w.l[r0 + r] : 0.f;
  }
  amx_bf16_configure();
  const int64_t qstride = 2 * hd, accstride = 4 * hd;
  for (int64_t t0 = 0; t0 < npos; t0 += kTile) {
    const int T = (int)std::min<int64_t>(kTile, npos - t0);
    // the next tile's K and V into L2 while this one computes
    if (t0 + kTile < npos) {
      const int64_t bytes = std::min<int64_t>(kTile, npos - t0 - kTile) * hd * 4;
      const char* kn = reinterpret_cast<const char*>(k + (t0 + kTile) * hd);
      const char* vn = reinterpret_cast<const char*>(v + (t0 + kTile) * hd);
      for (int64_t b = 0; b < bytes; b += 64) _mm_prefetch(kn + b, _MM_HINT_T1), _mm_prefetch(vn + b, _MM_HINT_T1);
    }
    // K tile transposed to [hd][64] (zero past T), then rows 2kp and 2kp+1 paired into B order:
    // kb[part][kp / 16][ct][kp % 16][16 positions x 2].
    float* kt = w.kt.data();
    k_tile_transposed(k + t0 * hd, T, hd, kt);
    for (int kp = 0; kp < hd / 2; kp++)
      for (int ct = 0; ct < 4; ct++) {
        const Parts lo = split3(_mm512_loadu_ps(kt + (size_t)(2 * kp) * kTile + 16 * ct));
        const Parts hi = split3(_mm512_loadu_ps(kt + (size_t)(2 * kp + 1) * kTile + 16 * ct));
        const size_t at = ((size_t)(kp / 16) * 4 + ct) * 512 + (size_t)(kp % 16) * 32;
        for (int j = 0; j < 3; j++) _mm512_store_si512(a.kb.data() + j * plane_t + at, bf16_pairs(lo.p[j], hi.p[j]));
      }
    // Scores of every row tile against this K tile (the K parts stay in L1 for all of them).
    for (int rt = 0; rt < RT; rt++) {
      const uint16_t* qrow = a.q.data() + (size_t)(16 * rt) * hd;
      float* srt = a.s.data() + (size_t)(16 * rt) * kTile;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (int h = 0; h < hd / 32; h++) {
        _tile_loadd(4, qrow + 32 * h, qstride);
        _tile_loadd(5, qrow + plane_q + 32 * h, qstride);
        _tile_loadd(6, qrow + 2 * plane_q + 32 * h, qstride);
        FC_SIX(0, a.kb.data() + ((size_t)h * 4 + 0) * 512) FC_SIX(1, a.kb.data() + ((size_t)h * 4 + 1) * 512)
        FC_SIX(2, a.kb.data() + ((size_t)h * 4 + 2) * 512) FC_SIX(3, a.kb.data() + ((size_t)h * 4 + 3) * 512)
      }
      _tile_stored(0, srt, 4 * kTile);
      _tile_stored(1, srt + 16, 4 * kTile);
      _tile_stored(2, srt + 32, 4 * kTile);
      _tile_stored(3, srt + 48, 4 * kTile);
    }
    // Online softmax per row tile (rescales the rows' accumulators), then P in parts.
    for (int rt = 0; rt < RT; rt++) {
      int c[16];
      for (int i = 0; i < 16; i++) {
        const int r = 16 * rt + i;
        c[i] = r < R ? T : 0;
        if (limit && r < R) c[i] = (int)std::max<int64_t>(0, std::min<int64_t>(T, limit[r] - t0));
      }
      softmax16(a.s.data() + (size_t)(16 * rt) * kTile, c, a.m.data() + 16 * rt, a.l.data() + 16 * rt,
                a.acc.data() + (size_t)(16 * rt) * hd, hd);
    }
    for (int r = 0; r < Rp; r++) {
      const float* srow = a.s.data() + (size_t)r * kTile;
      for (int hf = 0; hf < 2; hf++) {
        const Parts p0 = split3(_mm512_loadu_ps(srow + 32 * hf)), p1 = split3(_mm512_loadu_ps(srow + 32 * hf + 16));
        for (int j = 0; j < 3; j++) _mm512_store_si512(a.pp.data() + j * plane_p + (size_t)r * kTile + 32 * hf, bf16_row(p0.p[j], p1.p[j]));
      }
    }
    // V rows 2tp and 2tp+1 of each half paired: vb[part][half][dt][tp][16 dims x 2] (zero past T).
    const float* vblk = v + t0 * hd;
    for (int hf = 0; hf < 2; hf++)
      for (int tp = 0; tp < 16; tp++) {
        const int t = 32 * hf + 2 * tp;
        for (int dt = 0; dt < hd / 16; dt++) {
          const __m512 zero = _mm512_setzero_ps();
          const Parts lo = split3(t < T ? _mm512_loadu_ps(vblk + (size_t)t * hd + 16 * dt) : zero);
          const Parts hi = split3(t + 1 < T ? _mm512_loadu_ps(vblk + (size_t)(t + 1) * hd + 16 * dt) : zero);
          const size_t at = ((size_t)hf * (hd / 16) + dt) * 512 + (size_t)tp * 32;
          for (int j = 0; j < 3; j++) _mm512_store_si512(a.vb.data() + j * plane_t + at, bf16_pairs(lo.p[j], hi.p[j]));
        }
      }
    // O += P V for every row tile, 64 dims at a time (the V parts stay in L1), accumulators loaded
    // from and stored back to the padded rows.
    for (int rt = 0; rt < RT; rt++)
      for (int d0 = 0; d0 < hd; d0 += 64) {
        float* acc = a.acc.data() + (size_t)(16 * rt) * hd + d0;
        const uint16_t* prow = a.pp.data() + (size_t)(16 * rt) * kTile;
        _tile_loadd(0, acc, accstride);
        _tile_loadd(1, acc + 16, accstride);
        _tile_loadd(2, acc + 32, accstride);
        _tile_loadd(3, acc + 48, accstride);
        for (int hf = 0; hf < 2; hf++) {
          _tile_loadd(4, prow + 32 * hf, 2 * kTile);
          _tile_loadd(5, prow + plane_p + 32 * hf, 2 * kTile);
          _tile_loadd(6, prow + 2 * plane_p + 32 * hf, 2 * kTile);
          const uint16_t* vb = a.vb.data() + ((size_t)hf * (hd / 16) + d0 / 16) * 512;
          FC_SIX(0, vb) FC_SIX(1, vb + 512) FC_SIX(2, vb + 1024) FC_SIX(3, vb + 1536)
        }
        _tile_stored(0, acc, accstride);
        _tile_stored(1, acc + 16, accstride);
        _tile_stored(2, acc + 32, accstride);
        _tile_stored(3, acc + 48, accstride);
      }
  }
  _tile_release();
  for (int r = 0; r < R; r++) {
    std::memcpy(w.acc.data() + (size_t)(r0 + r) * hd, a.acc.data() + (size_t)r * hd, sizeof(float) * hd);
    w.m[r0 + r] = a.m.data()[r];
    w.l[r0 + r] = a.l.data()[r];
  }
}

#undef FC_SIX
}  // namespace amx
#pragma GCC pop_options
#endif

// Few rows (MHA replicated: one row per item) gain nothing from the transposed tile; many rows do.
// The matrix unit's tiles take prompt chunks (causal: `limit` set), whose items have 16 tokens x the
// query heads of a KV head as rows: 15% less time per layer than the AVX-512 kernel on a 2k-token
// prompt. Not decode steps: with 16 samples (112 rows of Qwen's GQA) it measured 0.61 ms per layer
// against AVX-512's 0.53: every tile phase waits for the AVX-512 phase before it (scores -> softmax
// -> P -> products), and the conversions of each K/V tile are shared by fewer rows.
void attend(Scratch& w, int r0, int R, int hd, const float* k, const float* v, int64_t npos, const int64_t* limit) {
#ifdef FC_X86
  const Isa isa = isa_now();
#if FC_AMX_TILES
  if (isa == Isa::Amx && limit && hd % 64 == 0 && R >= 16) return amx::attend_amx(w, r0, R, hd, k, v, npos, limit);
#endif
  if (isa >= Isa::Avx512 && hd % 16 == 0 && R >= 4) return attend_avx512(w, r0, R, hd, k, v, npos, limit);
  if (isa != Isa::Scalar && hd % 8 == 0 && R >= 2) return attend_avx2(w, r0, R, hd, k, v, npos, limit);
#endif
  attend_rows(w, r0, R, hd, k, v, npos, limit);
}

// out row = acc / l.
void finish(const Scratch& w, int r, int hd, float* out) {
  const float inv = 1.f / w.l[r];
  const float* ar = w.acc.data() + (size_t)r * hd;
  for (int i = 0; i < hd; i++) out[i] = ar[i] * inv;
}

// Runs a decode attention call as `items` independent jobs (rows(item) query rows over npos(item)
// cached positions). When there are fewer jobs than threads (one sample of a GQA/MQA model, say),
// each job's positions are split into parts computed on different threads and merged exactly:
// part i leaves (m_i, l_i, acc_i) and out = sum e^{m_i-m} acc_i / sum e^{m_i-m} l_i, m = max m_i
// (the bifurcated-attention merge again). job(w, item, p0, p1, last) fills w's running sums for
// positions [p0, p1) of the item (plus whatever only the last part adds); out_row(item, r) is where
// row r of the item goes.
template <class Rows, class Npos, class Job, class OutRow>
void run_jobs(ThreadPool& pool, int items, int hd, Rows rows, Npos npos, Job job, OutRow out_row) {
  const int nth = pool.size();
  int splits = 1;
  if (items < nth) {
    int64_t shortest = INT64_MAX;
    for (int it = 0; it < items; it++) shortest = std::min(shortest, npos(it));
    splits = (int)std::min<int64_t>((nth + items - 1) / items, std::max<int64_t>(1, shortest / (2 * kTile)));
  }
  if (splits <= 1) {
    pfor(pool, items, [&](int64_t b, int64_t e) {
      Scratch& w = tls;
      for (int64_t it = b; it < e; it++) {
        job(w, (int)it, 0, npos((int)it), true);
        for (int r = 0; r < rows((int)it); r++) finish(w, r, hd, out_row((int)it, r));
      }
    });
    return;
  }
  int Rmax = 0;
  for (int it = 0; it < items; it++) Rmax = std::max(Rmax, rows(it));
  const size_t per = (size_t)Rmax * (hd + 2);  // m[R], l[R], acc[R][hd]
  thread_local std::vector<float> partial;     // the calling thread's; grown, never shrunk
  if (partial.size() < per * items * splits) partial.resize(per * items * splits);
  float* parts = partial.data();
  pfor(pool, (int64_t)items * splits, [&](int64_t b, int64_t e) {
    Scratch& w = tls;
    for (int64_t x = b; x < e; x++) {
      const int it = (int)(x / splits), sp = (int)(x % splits), R = rows(it);
      const int64_t tiles = (npos(it) + kTile - 1) / kTile;
      const int64_t p0 = std::min(npos(it), tiles * sp / splits * kTile);
      const int64_t p1 = std::min(npos(it), tiles * (sp + 1) / splits * kTile);
      job(w, it, p0, p1, sp == splits - 1);
      float* dst = parts + per * (size_t)x;
      std::memcpy(dst, w.m.data(), sizeof(float) * R);
      std::memcpy(dst + R, w.l.data(), sizeof(float) * R);
      std::memcpy(dst + 2 * R, w.acc.data(), sizeof(float) * R * hd);
    }
  });
  pfor(pool, items, [&](int64_t b, int64_t e) {
    for (int64_t it = b; it < e; it++) {
      const int R = rows((int)it);
      for (int r = 0; r < R; r++) {
        float m = -std::numeric_limits<float>::infinity();
        for (int sp = 0; sp < splits; sp++) m = std::max(m, parts[per * (it * splits + sp) + r]);
        float* o = out_row((int)it, r);
        std::fill(o, o + hd, 0.f);
        float l = 0.f;
        for (int sp = 0; sp < splits; sp++) {
          const float* src = parts + per * (it * splits + sp);
          if (src[R + r] == 0.f) continue;  // this part saw no positions
          const float c = std::exp(src[r] - m);
          l += c * src[R + r];
          const float* acc = src + 2 * R + (size_t)r * hd;
          for (int i = 0; i < hd; i++) o[i] += c * acc[i];
        }
        const float inv = 1.f / l;
        for (int i = 0; i < hd; i++) o[i] *= inv;
      }
    }
  });
}

// Scaled query rows of sample i's heads h*g .. h*g+g-1 into scratch rows [r0, r0+g).
inline void gather_q(Scratch& w, const float* q, int i, int h, int g, int n_head, int hd, float scale, int r0) {
  for (int j = 0; j < g; j++) {
    const float* src = q + ((int64_t)i * n_head + (int64_t)h * g + j) * hd;
    float* dst = w.q.data() + (size_t)(r0 + j) * hd;
    for (int t = 0; t < hd; t++) dst[t] = src[t] * scale;
  }
}

}  // namespace

void attention_bifurcated_slots(const AttnShape& s, const int* slot_of, const int* d_of, const float* q,
                                const float* kc, const float* vc, const float* kd, const float* vd, float* out,
                                ThreadPool& pool) {
  g_isa.store((int)active_isa(), std::memory_order_relaxed);
  const int g = s.n_head / s.n_kv, hd = s.hd, R = s.n * g;
  // One job per KV head holding every sample's rows: each context tile is then read once per step
  // and feeds all n * g rows (the paper's single GEMM). With fewer KV heads than threads, run_jobs
  // splits the positions across threads and merges the parts exactly. (Jobs of fewer samples, two
  // per thread for balance, read the context once per job: ~18% more attention time at n = 16.)
  run_jobs(
      pool, s.n_kv, hd, [&](int) { return R; }, [&](int) { return (int64_t)s.P; },
      [&](Scratch& w, int h, int64_t p0, int64_t p1, bool with_decode) {
        w.reserve(R, hd);
        w.start(R, hd);
        for (int i = 0; i < s.n; i++) gather_q(w, q, i, h, g, s.n_head, hd, s.scale, i * g);
        // Context part: all R rows of the group against the shared cache, read once for all of them.
        const int64_t c = ((int64_t)h * s.ctx_stride + p0) * hd;
        attend(w, 0, R, hd, kc + c, vc + c, p1 - p0, nullptr);
        if (!with_decode) return;
        // Decode part: each sample's rows against its own cache.
        for (int i = 0; i < s.n; i++) {
          const int64_t base = (int64_t)(slot_of ? slot_of[i] : i) * s.dec_sample_stride + (int64_t)h * s.dec_stride * hd;
          attend(w, i * g, g, hd, kd + base, vd + base, d_of ? d_of[i] : s.D, nullptr);
        }
      },
      [&](int h, int r) { return out + ((int64_t)(r / g) * s.n_head + (int64_t)h * g + r % g) * hd; });
}

void attention_bifurcated(const AttnShape& s, const float* q, const float* kc, const float* vc, const float* kd,
                          const float* vd, float* out, ThreadPool& pool) {
  attention_bifurcated_slots(s, nullptr, nullptr, q, kc, vc, kd, vd, out, pool);
}

void attention_replicated_slots(const AttnShape& s, const int* slot_of, const int* d_of, int64_t rep_stride,
                                int64_t rep_sample_stride, const float* q, const float* k, const float* v, float* out,
                                ThreadPool& pool) {
  g_isa.store((int)active_isa(), std::memory_order_relaxed);
  const int g = s.n_head / s.n_kv, hd = s.hd;
  run_jobs(
      pool, s.n * s.n_kv, hd, [&](int) { return g; },
      [&](int it) { return (int64_t)s.P + (d_of ? d_of[it / s.n_kv] : s.D); },
      [&](Scratch& w, int it, int64_t p0, int64_t p1, bool) {
        const int i = it / s.n_kv, h = it % s.n_kv;
        w.reserve(g, hd);
        w.start(g, hd);
        gather_q(w, q, i, h, g, s.n_head, hd, s.scale, 0);
        const int64_t base = (int64_t)(slot_of ? slot_of[i] : i) * rep_sample_stride + ((int64_t)h * rep_stride + p0) * hd;
        attend(w, 0, g, hd, k + base, v + base, p1 - p0, nullptr);
      },
      [&](int it, int r) { return out + ((int64_t)(it / s.n_kv) * s.n_head + (int64_t)(it % s.n_kv) * g + r) * hd; });
}

void attention_replicated(const AttnShape& s, int64_t rep_stride, int64_t rep_sample_stride, const float* q,
                          const float* k, const float* v, float* out, ThreadPool& pool) {
  attention_replicated_slots(s, nullptr, nullptr, rep_stride, rep_sample_stride, q, k, v, out, pool);
}

void attention_prefill(int T, int p0, int n_head, int n_kv, int hd, int64_t stride, float scale, const float* q,
                       const float* k, const float* v, float* out, ThreadPool& pool) {
  g_isa.store((int)active_isa(), std::memory_order_relaxed);
  const int g = n_head / n_kv;
  // Query tokens per item: their rows (tokens x the g query heads of a KV head) share each K/V tile
  // and its conversion, so more rows are cheaper per row, up to ~512 (Qwen-0.5B shape, 2k-token
  // prefill: 16 -> 64 tokens = 112 -> 448 rows, 0.72 -> 0.60 s of attention; DeepSeek-1.3B, MHA:
  // 64 -> 128 tokens, 1.01 -> 0.79 s for 1.3k tokens), as long as there are items enough to keep
  // every thread busy (4 per thread; an MQA model has one KV head to split).
  constexpr int kMaxTokens = 128;
  const int per_thread = (int)((int64_t)T * n_kv / (4 * pool.size()));
  const int kTokens = std::max(16, std::min({kMaxTokens, 512 / g / 16 * 16, per_thread / 16 * 16}));
  const int n_chunks = (T + kTokens - 1) / kTokens;
  // Causal: a later chunk of tokens sees more positions, so an even split of the items gave one
  // thread three times the other's work. Items are handed out one at a time, latest (heaviest) first.
  const int64_t n_items = (int64_t)n_kv * n_chunks;
  std::atomic<int64_t> next{0};
  pool.run([&](int, int) {
    Scratch& w = tls;
    int64_t limit[kMaxTokens * 64];
    for (int64_t taken; (taken = next.fetch_add(1, std::memory_order_relaxed)) < n_items;) {
      const int64_t item = n_items - 1 - taken;
      const int h = (int)(item % n_kv);
      const int t0 = (int)(item / n_kv) * kTokens, t1 = std::min(T, t0 + kTokens);
      // Rows in groups of at most 64 heads so the limit array stays on the stack.
      for (int j0 = 0; j0 < g; j0 += 64) {
        const int gj = std::min(64, g - j0);
        const int R = (t1 - t0) * gj;
        w.reserve(R, hd);
        w.start(R, hd);
        for (int t = t0; t < t1; t++)
          for (int j = 0; j < gj; j++) {
            const float* src = q + ((int64_t)t * n_head + (int64_t)h * g + j0 + j) * hd;
            const int r = (t - t0) * gj + j;
            for (int x = 0; x < hd; x++) w.q[(size_t)r * hd + x] = src[x] * scale;
            limit[r] = (int64_t)p0 + t + 1;  // causal: token t sees positions 0..p0+t
          }
        attend(w, 0, R, hd, k + (int64_t)h * stride * hd, v + (int64_t)h * stride * hd, (int64_t)p0 + t1, limit);
        for (int t = t0; t < t1; t++)
          for (int j = 0; j < gj; j++)
            finish(w, (t - t0) * gj + j, hd, out + ((int64_t)t * n_head + (int64_t)h * g + j0 + j) * hd);
      }
    }
  });
}
