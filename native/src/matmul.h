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

// y = (x up^T) * silu(x gate^T) elementwise (SwiGLU's hidden layer, Shazeer 2020); gate_out (n x
// up.ne1 floats) is scratch. Prompt-sized n on AMX runs both products and the activation as one
// kernel (the gate's output never reaches memory); otherwise two matmuls and a pass.
void matmul_swiglu(const Tensor& up, const Tensor& gate, const float* x, int64_t n, float* y, float* gate_out,
                   ThreadPool& pool);

// The whole SwiGLU feed-forward, y = ((x up^T) * silu(x gate^T)) down^T; y may be x. h and g (n x
// up.ne1 floats each) are scratch. Prompt-sized n on AMX keeps the hidden layer in the bf16 tile
// layout the down projection reads (half the bytes, no packing pass); otherwise matmul_swiglu, then
// matmul.
void ffn_swiglu(const Tensor& up, const Tensor& gate, const Tensor& down, const float* x, int64_t n, float* y,
                float* h, float* g, ThreadPool& pool);

// The kernel family matmul uses now: "amx" (AVX-512 plus AMX tiles for quantized GEMM),
// "avx512vnni", "avx2" or "scalar". FORKCAST_NO_SIMD=1 forces scalar, FORKCAST_SIMD=avx512|avx2|scalar
// caps the choice; both are read at every call so tests and benchmarks can compare families.
const char* matmul_isa();

// Whether this CPU runs prompt-sized products (n >= 128, quantized weights) on AMX BF16 tiles:
// weights and activations rounded to bf16, float32 sums (FORKCAST_NO_BF16=1 turns it off per call).
bool matmul_bf16_tiles();

// Row r of a (possibly quantized) matrix as floats: embedding lookup.
void get_row(const Tensor& W, int64_t r, float* out);
