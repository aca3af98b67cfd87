// exp(x) on 16 floats (AVX-512) or 8 (AVX2), for the softmax in attention.cpp and the activations in
// activations.cpp: one algorithm, two vector widths. And silu on it.
// Cody & Waite range reduction: exp(x) = 2^k * exp(r), k = round(x / ln 2), r = x - k ln 2 in
// [-ln2/2, ln2/2] with ln 2 split into a high part exact in float (0.693359375) and the rest; exp(r)
// by its degree-7 Taylor polynomial (truncation error < 4e-9 relative on that interval); 2^k applied
// with vscalefps (AVX-512) or through the exponent bits (AVX2). Inputs below -87 are clamped: e^x is
// under FLT_MIN there and treated as ~0. exp512 also clamps above at 88; exp256 serves softmax
// arguments only (x <= 0).
#pragma once
#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

namespace simd_exp {
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
// Taylor coefficients of e^r, highest degree first (Horner order)
constexpr float kPoly[8] = {1.f / 5040, 1.f / 720, 1.f / 120, 1.f / 24, 1.f / 6, 0.5f, 1.f, 1.f};
}  // namespace simd_exp

__attribute__((target("avx512f"))) inline __m512 exp512(__m512 x) {
  using namespace simd_exp;
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-87.f)), _mm512_set1_ps(88.f));
  const __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2Lo), _mm512_fnmadd_ps(k, _mm512_set1_ps(kLn2Hi), x));
  __m512 p = _mm512_set1_ps(kPoly[0]);
  for (int i = 1; i < 8; i++) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kPoly[i]));
  return _mm512_scalef_ps(p, k);
}

// silu(x) = x / (1 + e^-x) on 16 floats: SwiGLU's gate, one formula for activations.cpp and the tile
// kernels' fused gate (matmul.cpp).
__attribute__((target("avx512f"))) inline __m512 silu512(__m512 x) {
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.f), exp512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

__attribute__((target("avx2,fma"))) inline __m256 exp256(__m256 x) {
  using namespace simd_exp;
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.f));
  const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 r = _mm256_fnmadd_ps(k, _mm256_set1_ps(kLn2Lo), _mm256_fnmadd_ps(k, _mm256_set1_ps(kLn2Hi), x));
  __m256 p = _mm256_set1_ps(kPoly[0]);
  for (int i = 1; i < 8; i++) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kPoly[i]));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}
#endif
