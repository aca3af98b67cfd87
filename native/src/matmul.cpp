// Matrix products y = x W^T against (possibly quantized) weights, split over output rows.
// Each weight row is decoded once and dotted with all n activation rows, so the weights are read
// once per call whatever n is.
#include "matmul.h"

#include <vector>

#include "quants.h"

static float dot_f32(const float* a, const float* b, int64_t k) {
  // Four partial sums: shorter dependency chains, and less rounding drift on long rows.
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  int64_t c = 0;
  for (; c + 4 <= k; c += 4) {
    s0 += a[c] * b[c];
    s1 += a[c + 1] * b[c + 1];
    s2 += a[c + 2] * b[c + 2];
    s3 += a[c + 3] * b[c + 3];
  }
  for (; c < k; c++) s0 += a[c] * b[c];
  return (s0 + s1) + (s2 + s3);
}

void matmul(const Tensor& W, const float* x, int64_t n, float* y, ThreadPool& pool) {
  const int64_t K = W.ne0, M = W.ne1;
  const int64_t rs = ggml_row_size(W.type, K);
  pool.parallel_for(M, [&](int64_t r0, int64_t r1) {
    thread_local std::vector<float> row;
    if (W.type != GGML_F32 && (int64_t)row.size() < K) row.resize(K);
    for (int64_t r = r0; r < r1; r++) {
      const float* w;
      if (W.type == GGML_F32) {
        w = reinterpret_cast<const float*>(W.data + r * rs);
      } else {
        dequantize_row(W.type, W.data + r * rs, row.data(), K);
        w = row.data();
      }
      for (int64_t i = 0; i < n; i++) y[i * M + r] = dot_f32(w, x + i * K, K);
    }
  });
}

void get_row(const Tensor& W, int64_t r, float* out) {
  dequantize_row(W.type, W.data + r * ggml_row_size(W.type, W.ne0), out, W.ne0);
}
