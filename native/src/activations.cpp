// SIMD paths for the elementwise functions in activations.h, on exp512 (simd_exp.h). The scalar
// twin uses std::exp; both are checked against float64 in test/native/activations.test.ts.
#include "activations.h"

#include "simd_exp.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>

#if defined(__x86_64__) || defined(_M_X64)
#define FC_X86 1
#include <immintrin.h>
#else
#define FC_X86 0
#endif

namespace {

inline float silu(float x) { return x / (1.f + std::exp(-x)); }
inline float gelu(float x) { return 0.5f * x * (1.f + std::tanh(0.7978845608028654f * (x + 0.044715f * x * x * x))); }

#if FC_X86

__attribute__((target("avx512f"))) void silu_mul_512(float* h, const float* g, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(h + i, _mm512_mul_ps(silu512(_mm512_loadu_ps(g + i)), _mm512_loadu_ps(h + i)));
  for (; i < n; i++) h[i] = silu(g[i]) * h[i];
}

// tanh(u) = 1 - 2 / (exp(2u) + 1), so gelu(x) = x - x / (exp(2u) + 1).
__attribute__((target("avx512f"))) void gelu_512(float* h, int64_t n) {
  int64_t i = 0;
  const __m512 one = _mm512_set1_ps(1.f);
  for (; i + 16 <= n; i += 16) {
    const __m512 x = _mm512_loadu_ps(h + i);
    const __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    const __m512 u2 = _mm512_mul_ps(_mm512_set1_ps(2 * 0.7978845608028654f), _mm512_fmadd_ps(x3, _mm512_set1_ps(0.044715f), x));
    _mm512_storeu_ps(h + i, _mm512_sub_ps(x, _mm512_div_ps(x, _mm512_add_ps(exp512(u2), one))));
  }
  for (; i < n; i++) h[i] = gelu(h[i]);
}

__attribute__((target("avx512f"))) RowStats row_stats_512(const float* x, int64_t n) {
  __m512 m = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(x + i));
  float mx = _mm512_reduce_max_ps(m);
  for (; i < n; i++) mx = x[i] > mx ? x[i] : mx;
  RowStats st{mx, 0, 0};
  for (int64_t j = 0; j < n; j++)
    if (x[j] == mx) { st.argmax = (int32_t)j; break; }
  // Sum in float per lane over chunks of 4096, then in double: a 150k vocabulary keeps ~1e-7.
  const __m512 vm = _mm512_set1_ps(mx);
  double total = 0;
  for (int64_t c = 0; c < n; c += 4096) {
    const int64_t e = c + 4096 < n ? c + 4096 : n;
    __m512 s = _mm512_setzero_ps();
    int64_t j = c;
    for (; j + 16 <= e; j += 16) s = _mm512_add_ps(s, exp512(_mm512_sub_ps(_mm512_loadu_ps(x + j), vm)));
    double part = _mm512_reduce_add_ps(s);
    for (; j < e; j++) part += std::exp((double)x[j] - mx);
    total += part;
  }
  st.lse = mx + std::log(total);
  return st;
}

// FORKCAST_NO_SIMD=1 or FORKCAST_SIMD=avx2|scalar select the scalar twin, as for the matmuls.
bool has_avx512() {
  static const bool cpu = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  const char* off = std::getenv("FORKCAST_NO_SIMD");
  if (off && off[0] && std::strcmp(off, "0") != 0) return false;
  const char* cap = std::getenv("FORKCAST_SIMD");
  if (cap && (std::strcmp(cap, "avx2") == 0 || std::strcmp(cap, "scalar") == 0)) return false;
  return cpu;
}
#else
bool has_avx512() { return false; }
#endif


// Heap order: a is worse than b (belongs nearer the top of the min-heap).
struct Worse {
  const float* x;
  bool operator()(int32_t a, int32_t b) const { return x[a] < x[b] || (x[a] == x[b] && a > b); }
};

void sift_down(int32_t* h, int k, const Worse& worse) {
  for (int i = 0;;) {
    const int l = 2 * i + 1, r = l + 1;
    int m = i;
    if (l < k && worse(h[l], h[m])) m = l;
    if (r < k && worse(h[r], h[m])) m = r;
    if (m == i) return;
    std::swap(h[i], h[m]);
    i = m;
  }
}

// Index i enters the k-entry min-heap when x[i] beats its minimum. Later indices lose ties, so only a
// strictly larger value enters.
inline void offer(const float* x, int32_t* ids, int k, int64_t i) {
  if (!(x[i] > x[ids[0]])) return;
  ids[0] = (int32_t)i;
  sift_down(ids, k, Worse{x});
}

#if FC_X86
// offer() for every i in [from, n) in index order, 16 values compared with the heap's minimum at
// once (most blocks hold none). Returns where the scalar tail starts.
__attribute__((target("avx512f"))) int64_t top_k_scan_512(const float* x, int64_t n, int64_t from, int32_t* ids, int k) {
  int64_t i = from;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    for (__mmask16 m = _mm512_cmp_ps_mask(v, _mm512_set1_ps(x[ids[0]]), _CMP_GT_OQ); m;) {
      offer(x, ids, k, i + __builtin_ctz(m));
      m &= (__mmask16)(m - 1);
      m &= _mm512_cmp_ps_mask(v, _mm512_set1_ps(x[ids[0]]), _CMP_GT_OQ);  // the minimum rose
    }
  }
  return i;
}
#endif

}  // namespace

void silu_mul(float* h, const float* g, int64_t n) {
#if FC_X86
  if (has_avx512()) return silu_mul_512(h, g, n);
#endif
  for (int64_t i = 0; i < n; i++) h[i] = silu(g[i]) * h[i];
}

void gelu_inplace(float* h, int64_t n) {
#if FC_X86
  if (has_avx512()) return gelu_512(h, n);
#endif
  for (int64_t i = 0; i < n; i++) h[i] = gelu(h[i]);
}

RowStats row_stats(const float* x, int64_t n) {
#if FC_X86
  if (has_avx512()) return row_stats_512(x, n);
#endif
  RowStats st{x[0], 0, 0};
  for (int64_t i = 1; i < n; i++)
    if (x[i] > st.max) { st.max = x[i]; st.argmax = (int32_t)i; }
  double s = 0;
  for (int64_t i = 0; i < n; i++) s += std::exp((double)x[i] - st.max);
  st.lse = st.max + std::log(s);
  return st;
}

void row_top_k(const float* x, int64_t n, int k, int32_t* ids) {
  const Worse worse{x};
  for (int i = 0; i < k; i++) {  // heapify the first k by sifting each up
    ids[i] = i;
    for (int j = i; j > 0;) {
      const int p = (j - 1) / 2;
      if (!worse(ids[j], ids[p])) break;
      std::swap(ids[j], ids[p]);
      j = p;
    }
  }
  int64_t i = k;
#if FC_X86
  if (has_avx512()) i = top_k_scan_512(x, n, k, ids, k);
#endif
  for (; i < n; i++) offer(x, ids, k, i);
}
