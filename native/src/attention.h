// Decode-time attention for n samples that share one prompt (context) KV cache.
//
// Shapes (all float32, row-major):
//   q        [n][n_head][hd]          this step's queries, one token per sample
//   kc, vc   [n_kv][ctx_stride][hd]   shared context KV, positions 0..P-1 valid
//   kd, vd   per sample s: kd + s*dec_sample_stride, laid out [n_kv][dec_stride][hd], positions 0..D-1 valid
//   out      [n][n_head][hd]
// Query head h uses KV head h / (n_head / n_kv) (GQA; MQA when n_kv = 1; MHA when n_kv = n_head).
//
// Bifurcated (Athiwaratkun et al. 2024, "Bifurcated Attention", eq. for the split softmax):
//   for each KV head, all samples' queries of its group form one matrix Q_g [n*g][hd];
//   S_c = Q_g Kc^T (one GEMM, context KV read once per step), S_d[s] = q_s Kd_s^T per sample;
//   m = max(max S_c, max S_d), out = (exp(S_c - m) Vc + exp(S_d - m) Vd) / (sum exp(S_c - m) + sum exp(S_d - m)),
//   which is exactly softmax over the concatenation [context, decode].
// attention.cpp applies the same merge per tile of positions (a running max), and across threads
// when a step has fewer (KV head, sample-chunk) jobs than threads (positions split, parts merged).
#pragma once
#include <cstdint>
#include "threadpool.h"

// pool.parallel_for without a heap allocation per call: the std::function it takes then holds one
// reference (fits its small-object buffer) instead of a lambda with many captures.
template <class F>
inline void pfor(ThreadPool& pool, int64_t n, const F& f) {
  pool.parallel_for(n, [&f](int64_t b, int64_t e) { f(b, e); });
}

struct AttnShape {
  int n;          // samples
  int n_head;     // query heads
  int n_kv;       // KV heads
  int hd;         // head dim
  int P;          // valid context positions
  int D;          // valid decode positions per sample (same for all live samples)
  int64_t ctx_stride;         // positions allocated per KV head in the context cache
  int64_t dec_stride;         // positions allocated per KV head in a sample's decode cache
  int64_t dec_sample_stride;  // floats between consecutive samples' decode caches (per layer)
  float scale;                // usually 1/sqrt(hd)
};

void attention_bifurcated(const AttnShape& s, const float* q, const float* kc, const float* vc,
                          const float* kd, const float* vd, float* out, ThreadPool& pool);

// Baseline: each sample has its own full KV (the context copied in), laid out per sample as
// [n_kv][rep_stride][hd] with positions 0..P+D-1 valid, samples rep_sample_stride floats apart.
void attention_replicated(const AttnShape& s, int64_t rep_stride, int64_t rep_sample_stride,
                          const float* q, const float* k, const float* v, float* out, ThreadPool& pool);

// Causal self-attention for prefill of T new tokens at positions p0..p0+T-1 over one cache
// [n_kv][stride][hd] whose positions 0..p0+T-1 are valid. q/out: [T][n_head][hd].
void attention_prefill(int T, int p0, int n_head, int n_kv, int hd, int64_t stride, float scale,
                       const float* q, const float* k, const float* v, float* out, ThreadPool& pool);

// The same kernels for a decode step over an arbitrary subset of slots: sample i of this step
// lives in slot slot_of[i] (its decode / replicated cache is at slot_of[i] * sample stride) and
// has d_of[i] valid decode positions (overriding s.D). nullptr = identity / s.D.
void attention_bifurcated_slots(const AttnShape& s, const int* slot_of, const int* d_of, const float* q,
                                const float* kc, const float* vc, const float* kd, const float* vd, float* out,
                                ThreadPool& pool);
void attention_replicated_slots(const AttnShape& s, const int* slot_of, const int* d_of, int64_t rep_stride,
                                int64_t rep_sample_stride, const float* q, const float* k, const float* v, float* out,
                                ThreadPool& pool);
