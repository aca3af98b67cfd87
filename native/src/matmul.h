// Matrix products against weight tensors, the forward pass's main cost.
#pragma once
#include "tensor.h"
#include "threadpool.h"

// y[i][r] = sum_c x[i][c] * W[r][c]   for i < n (tokens or samples), r < W.ne1, c < W.ne0.
// x is n x W.ne0 row-major float, y is n x W.ne1 row-major float. Weights are read once for all
// n rows (GEMV for n = 1, GEMM otherwise). Multi-threaded over the pool.
void matmul(const Tensor& W, const float* x, int64_t n, float* y, ThreadPool& pool);

// ys[i] = x Ws[i]^T for several matrices of one input (Q, K and V; gate and up): the same as `count`
// matmul calls, with the activations prepared once when the matrices share type and row length.
void matmul_shared(const Tensor* const* Ws, float* const* ys, int count, const float* x, int64_t n, ThreadPool& pool);

// The kernel family matmul uses now: "amx" (AVX-512 plus AMX tiles for quantized GEMM),
// "avx512vnni", "avx2" or "scalar". FORKCAST_NO_SIMD=1 forces scalar, FORKCAST_SIMD=avx512|avx2|scalar
// caps the choice; both are read at every call so tests and benchmarks can compare families.
const char* matmul_isa();

// Row r of a (possibly quantized) matrix as floats: embedding lookup.
void get_row(const Tensor& W, int64_t r, float* out);
