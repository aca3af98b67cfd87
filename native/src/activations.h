// Elementwise functions of the forward pass and of the sampler that touch every element of a large
// array (the MLP's hidden layer, a row of logits over the vocabulary), so they get SIMD paths.
#pragma once
#include <cstdint>

// h[i] = silu(g[i]) * h[i] = g / (1 + exp(-g)) * h   (SwiGLU, Shazeer 2020)
void silu_mul(float* h, const float* g, int64_t n);
// h[i] = gelu(h[i]), tanh approximation (Hendrycks & Gimpel 2016), as GPT-2/StarCoder use.
void gelu_inplace(float* h, int64_t n);

// Row statistics a sampler needs before it filters: the largest value, its index (ties: lowest), and
// log(sum_i exp(x[i])) computed around the max. One pass for the max, one for the sum.
struct RowStats {
  float max;
  int32_t argmax;
  double lse;
};
RowStats row_stats(const float* x, int64_t n);
// The k largest values' indices (ties: the lower index wins), in no particular order: a min-heap of
// k entries, and a scan that compares 16 values at a time with the heap's minimum.
void row_top_k(const float* x, int64_t n, int k, int32_t* ids);
