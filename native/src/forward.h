// The transformer forward pass: weights (pointers into the mapped GGUF) and a Session holding one
// request's KV caches and scratch. Driven by flags (norm, rope, MLP, biases), not per-architecture code.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor.h"
#include "threadpool.h"

// A float array for KV caches whose pages the OS commits only when first written (anonymous
// mmap, zero-filled on demand): a cache sized for the capacity costs physical memory only for the
// positions a request actually fills, so n samples' decode caches weigh what they generated.
class KvBuffer {
 public:
  KvBuffer() = default;
  ~KvBuffer() { release(); }
  KvBuffer(const KvBuffer&) = delete;
  KvBuffer& operator=(const KvBuffer&) = delete;
  void reset(size_t floats);  // fresh zero pages (throws std::bad_alloc)
  void release();
  float* data() { return p_; }
  size_t size() const { return n_; }
  float& operator[](size_t i) { return p_[i]; }

 private:
  float* p_ = nullptr;
  size_t n_ = 0;
};

// Allocator for scratch arrays whose rows must start on cache-line boundaries.
template <class T>
struct Aligned64 {
  using value_type = T;
  Aligned64() = default;
  template <class U>
  Aligned64(const Aligned64<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t(64))); }
  void deallocate(T* p, size_t) { ::operator delete(p, std::align_val_t(64)); }
  template <class U>
  bool operator==(const Aligned64<U>&) const { return true; }
  template <class U>
  bool operator!=(const Aligned64<U>&) const { return false; }
};

enum class NormKind { Rms, Layer };
enum class RopeKind { None, Norm, Neox };  // Norm: adjacent pairs (2i, 2i+1); Neox: (i, i + rot/2)
enum class MlpKind { SwiGLU, Gelu };

struct LayerWeights {
  Tensor attn_norm, attn_norm_b;
  Tensor wq, wk, wv, wqkv;
  Tensor bq, bk, bv, bqkv;
  Tensor wo, bo;
  Tensor ffn_norm, ffn_norm_b;
  Tensor ffn_gate, ffn_up, ffn_up_b, ffn_down, ffn_down_b;
};

struct ModelWeights {
  int n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_ctx_train = 0;
  int rope_dim = 0;  // leading dims of each head that rotate (= head_dim for every supported arch)
  NormKind norm = NormKind::Rms;
  float norm_eps = 1e-5f;
  RopeKind rope = RopeKind::Norm;
  float rope_base = 10000.f, rope_scale = 1.f;
  MlpKind mlp = MlpKind::SwiGLU;
  Tensor token_embd, position_embd, output_norm, output_norm_b, output;
  std::vector<LayerWeights> layers;
};

// Thrown from inside a step when the abort flag was seen between layers.
struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("cancelled") {}
};

struct SessionOptions {
  int ctx = 0;          // shared prompt KV capacity, tokens
  int max_samples = 1;  // decode slots
  int max_decode = 0;   // decode KV capacity per slot, tokens
  int threads = 1;
};

class Session {
 public:
  Session(const ModelWeights& w, const SessionOptions& o);
  ~Session();

  // Keeps positions [0, keep) of the shared KV, appends tokens, writes last-position logits [n_vocab].
  void eval_prompt(const int32_t* tokens, int n, int keep, float* logits, const std::atomic<bool>& abort);
  // Starts n samples after the prompt (clears their decode KV; replicated copies the prompt KV).
  void begin_samples(int n, bool replicated);
  // One step: token i goes to slot slots[i]. Writes logits [m][n_vocab].
  void decode(const int32_t* slots, const int32_t* tokens, int m, float* logits, const std::atomic<bool>& abort);

  int prompt_length() const { return P_; }
  int samples() const { return n_samples_; }
  int decode_length(int slot) const { return d_[slot]; }
  bool replicated() const { return replicated_; }
  int64_t kv_bytes() const;
  // The session's worker threads, for work between steps (the sampler's passes over the logits).
  ThreadPool& pool() { return *pool_; }
  const SessionOptions& options() const { return o_; }

  // Throws std::invalid_argument with a clear message when a call's arguments cannot be served.
  void check_prompt(const int32_t* tokens, int n, int keep) const;
  void check_decode(const int32_t* slots, const int32_t* tokens, int m) const;

 private:
  void forward(int m, const int32_t* tokens, const int* pos, bool prefill, const int32_t* slots, int last_rows,
               float* logits, const std::atomic<bool>& abort);
  void store_kv(int l, int m, const int* pos, bool prefill, const int32_t* slots);
  float* ctx_k(int l) { return ctx_k_.data() + (size_t)l * layer_ctx_; }
  float* ctx_v(int l) { return ctx_v_.data() + (size_t)l * layer_ctx_; }

  const ModelWeights& w_;
  SessionOptions o_;
  std::unique_ptr<ThreadPool> pool_;
  int kvdim_ = 0, qdim_ = 0, batch_ = 0;
  size_t layer_ctx_ = 0;  // floats of one layer's context K (= V) cache: n_kv * ctx * hd
  KvBuffer ctx_k_, ctx_v_;
  // Bifurcated decode caches, per layer [n_samples][n_kv][max_decode][hd]; replicated per-sample full
  // caches, per layer [n_samples][n_kv][rep_stride][hd]. Only one of the two is allocated at a time,
  // afresh for each request, so pages from earlier requests do not linger.
  KvBuffer dec_k_, dec_v_, rep_k_, rep_v_;
  int64_t rep_stride_ = 0;
  int P_ = 0, n_samples_ = 0;
  bool replicated_ = false;
  std::vector<int> d_;  // decode positions used per slot
  // Scratch sized once for the largest batch (prompt chunk or all slots).
  // 64-byte aligned: matmul outputs go out as whole-cache-line streaming stores when aligned.
  std::vector<float, Aligned64<float>> x_, xb_, qkv_, q_, k_, v_, att_, hb_, hb2_, row_, cs_;
  std::vector<int> pos_, slot_d_;
  std::vector<double> inv_freq_;
  struct Profile;
  std::unique_ptr<Profile> prof_;  // FORKCAST_PROFILE=1 only
};

// Reads a small 1-D tensor (norm weight, bias) as floats.
std::vector<float> tensor_to_floats(const Tensor& t);
