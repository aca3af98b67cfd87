// One transformer forward pass, top to bottom (in the spirit of llama2.c's run.c), for a batch of
// rows: prompt tokens at consecutive positions (prefill) or one token for each of several sample
// slots (decode). Every weight matrix is read once per step for all rows (matmul over the batch).
//
// Per layer:  x += Wo · attn(rope(Wq·norm(x)), rope(Wk·norm(x)), Wv·norm(x))
//             x += Wdown · act(Wgate·norm(x), Wup·norm(x))
// with the variants the spec's flags select (RMSNorm or LayerNorm, rope styles, biases, fused QKV,
// SwiGLU or GELU, learned positions).
#include "forward.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <stdexcept>

#include <sys/mman.h>

#include "activations.h"
#include "attention.h"
#include "matmul.h"
#include "quants.h"

namespace {

// Prompt tokens per batch: one weight read (and one bf16 decode of it) serves 512 rows. On a 2k-token
// prompt of the Qwen-0.5B shape 512 took ~3% less time than 256, 1024 ~15% more.
constexpr int kPromptChunk = 512;

const float* f32(const Tensor& t) { return reinterpret_cast<const float*>(t.data); }

// RMSNorm (Zhang & Sennrich 2019): o = x / sqrt(mean(x^2) + eps) * w.
void rmsnorm(float* o, const float* x, const float* w, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; i++) ss += (double)x[i] * x[i];
  const float r = (float)(1.0 / std::sqrt(ss / n + eps));
  for (int i = 0; i < n; i++) o[i] = x[i] * r * w[i];
}

// LayerNorm (Ba et al. 2016): o = (x - mean) / sqrt(var + eps) * w + b.
void layernorm(float* o, const float* x, const float* w, const float* b, int n, float eps) {
  double mean = 0, var = 0;
  for (int i = 0; i < n; i++) mean += x[i];
  mean /= n;
  for (int i = 0; i < n; i++) var += (x[i] - mean) * (x[i] - mean);
  var /= n;
  const double r = 1.0 / std::sqrt(var + eps);
  for (int i = 0; i < n; i++) o[i] = (float)((x[i] - mean) * r) * w[i] + (b ? b[i] : 0.f);
}

// Row-wise work on m rows: a prompt chunk's rows spread over the pool (norms, rope and residual adds
// took ~8% of a 2k-token prefill on one thread); a decode step's few rows stay on the calling thread,
// where they cost less than a hand-off.
template <class F>
void for_rows(ThreadPool& pool, int m, const F& f) {
  if (m >= 64) pfor(pool, m, f);
  else f(0, m);
}

void norm_rows(const ModelWeights& w, float* o, const float* x, int m, const Tensor& g, const Tensor& b, ThreadPool& pool) {
  for_rows(pool, m, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; i++) {
      const float* xi = x + (size_t)i * w.n_embd;
      float* oi = o + (size_t)i * w.n_embd;
      if (w.norm == NormKind::Rms) rmsnorm(oi, xi, f32(g), w.n_embd, w.norm_eps);
      else layernorm(oi, xi, f32(g), b ? f32(b) : nullptr, w.n_embd, w.norm_eps);
    }
  });
}

// x += y over m rows of n (the residual stream).
void add_rows(float* x, const float* y, int m, int n, ThreadPool& pool) {
  for_rows(pool, m, [&](int64_t i0, int64_t i1) {
    for (size_t i = (size_t)i0 * n; i < (size_t)i1 * n; i++) x[i] += y[i];
  });
}

void add_bias(float* y, int m, int n, int64_t stride, const Tensor& b) {
  if (!b) return;
  const float* bb = f32(b);
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) y[(size_t)i * stride + j] += bb[j];
}

// Rotary position embedding (Su et al. 2021, RoFormer) on one head vector: pairs of dims rotate by
// angle pos * base^(-2i/rot). 'norm' pairs adjacent dims (2i, 2i+1): llama.cpp's layout for llama,
// whose converter permuted the Q/K rows to match; 'neox' pairs dim i with i + rot/2 (HF rotate_half).
void rope_head(float* v, const float* cs, int rot, RopeKind kind) {
  const int half = rot / 2;
  for (int i = 0; i < half; i++) {
    const float c = cs[2 * i], s = cs[2 * i + 1];
    const int a = kind == RopeKind::Norm ? 2 * i : i;
    const int b = kind == RopeKind::Norm ? 2 * i + 1 : i + half;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
  }
}


}  // namespace

// FORKCAST_PROFILE=1: where a step's time goes, per kind of operation, printed to stderr when the
// session ends (prefill and decode apart). For finding the next thing to make faster; off by default
// because the clock reads between operations are not free.
struct Session::Profile {
  enum Op { Embed, Norm, Qkv, Rope, Attn, Wo, Mlp, Act, Output, Count };
  static constexpr const char* names[Count] = {"embed", "norm", "qkv", "rope+kv", "attention", "wo", "ffn matmuls", "act", "output"};
  double ms[2][Count] = {};
  int64_t calls[2] = {}, rows[2] = {};
  bool phase = false;  // 0 prefill, 1 decode
  std::chrono::steady_clock::time_point t;
  void start(bool decode, int m) { phase = decode; calls[decode]++; rows[decode] += m; t = std::chrono::steady_clock::now(); }
  void lap(Op op) {
    const auto now = std::chrono::steady_clock::now();
    ms[phase][op] += std::chrono::duration<double, std::milli>(now - t).count();
    t = now;
  }
  ~Profile() {
    for (int ph = 0; ph < 2; ph++) {
      if (!calls[ph]) continue;
      double total = 0;
      for (double v : ms[ph]) total += v;
      std::fprintf(stderr, "forkcast profile %s: %lld calls, %lld rows, %.1f ms\n", ph ? "decode" : "prefill",
                   (long long)calls[ph], (long long)rows[ph], total);
      for (int i = 0; i < Count; i++)
        std::fprintf(stderr, "  %-12s %9.1f ms %5.1f%%\n", names[i], ms[ph][i], 100 * ms[ph][i] / std::max(total, 1e-9));
    }
  }
};

void KvBuffer::reset(size_t floats) {
  release();
  if (floats == 0) return;
  void* p = ::mmap(nullptr, floats * sizeof(float), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  p_ = static_cast<float*>(p);
  n_ = floats;
}

void KvBuffer::release() {
  if (p_) ::munmap(p_, n_ * sizeof(float));
  p_ = nullptr;
  n_ = 0;
}

std::vector<float> tensor_to_floats(const Tensor& t) {
  std::vector<float> out((size_t)(t.ne0 * t.ne1));
  const int64_t row = ggml_row_size(t.type, t.ne0);
  for (int64_t r = 0; r < t.ne1; r++) dequantize_row(t.type, t.data + r * row, out.data() + r * t.ne0, t.ne0);
  return out;
}

Session::Session(const ModelWeights& w, const SessionOptions& o) : w_(w), o_(o) {
  pool_ = std::make_unique<ThreadPool>(std::max(1, o.threads));
  kvdim_ = w.n_head_kv * w.head_dim;
  qdim_ = w.n_head * w.head_dim;
  batch_ = std::max(std::min(kPromptChunk, o.ctx), o.max_samples);
  layer_ctx_ = (size_t)w.n_head_kv * o.ctx * w.head_dim;
  ctx_k_.reset(layer_ctx_ * w.n_layer);
  ctx_v_.reset(layer_ctx_ * w.n_layer);
  const size_t B = batch_;
  x_.resize(B * w.n_embd);
  xb_.resize(B * std::max(w.n_embd, qdim_));
  qkv_.resize(B * (qdim_ + 2 * kvdim_));
  q_.resize(B * qdim_);
  k_.resize(B * kvdim_);
  v_.resize(B * kvdim_);
  att_.resize(B * qdim_);
  hb_.resize(B * w.n_ff);
  hb2_.resize(B * w.n_ff);
  pos_.resize(B);
  row_.resize(w.n_embd);
  cs_.resize(B * std::max(w.rope_dim, 1));
  slot_d_.resize(B);
  d_.assign(o.max_samples, 0);
  const int rot = w.rope_dim;
  for (int i = 0; i < rot / 2; i++) inv_freq_.push_back(std::pow((double)w.rope_base, -2.0 * i / rot));
  const char* prof = std::getenv("FORKCAST_PROFILE");
  if (prof && *prof && std::strcmp(prof, "0") != 0) prof_ = std::make_unique<Profile>();
}

Session::~Session() = default;

// Bytes of KV entries the current request holds: the prompt's P positions once, plus each sample's
// decode positions; replicated adds every sample's private copy of the prompt (the shared one stays,
// it is what the next request reuses). Caches are committed page by page as they are written, so
// this is what the request costs in physical memory (up to page rounding), not the capacity.
int64_t Session::kv_bytes() const {
  const int64_t per_pos = (int64_t)w_.n_layer * 2 * kvdim_ * sizeof(float);  // K and V, all layers
  int64_t positions = P_ + (replicated_ && n_samples_ > 0 ? (int64_t)n_samples_ * P_ : 0);
  for (int s = 0; s < n_samples_; s++) positions += d_[s];
  return per_pos * positions;
}

void Session::check_prompt(const int32_t* tokens, int n, int keep) const {
  if (n < 1) throw std::invalid_argument("evalPrompt: needs at least one new token");
  if (keep < 0 || keep > P_)
    throw std::invalid_argument("evalPrompt: keep=" + std::to_string(keep) + " but only " + std::to_string(P_) +
                                " positions are cached");
  if ((int64_t)keep + n > o_.ctx)
    throw std::invalid_argument("evalPrompt: " + std::to_string(keep + (int64_t)n) + " tokens exceed the context of " +
                                std::to_string(o_.ctx));
  if (w_.position_embd && (int64_t)keep + n > w_.position_embd.ne1)
    throw std::invalid_argument("evalPrompt: the model has learned positions only up to " +
                                std::to_string(w_.position_embd.ne1));
  for (int i = 0; i < n; i++)
    if (tokens[i] < 0 || tokens[i] >= w_.n_vocab)
      throw std::invalid_argument("evalPrompt: token id " + std::to_string(tokens[i]) + " out of range [0, " +
                                  std::to_string(w_.n_vocab) + ")");
}

void Session::check_decode(const int32_t* slots, const int32_t* tokens, int m) const {
  if (n_samples_ == 0) throw std::invalid_argument("decode: no samples (call beginSamples after evalPrompt)");
  if (m < 1) throw std::invalid_argument("decode: no slots given");
  for (int i = 0; i < m; i++) {
    if (slots[i] < 0 || slots[i] >= n_samples_)
      throw std::invalid_argument("decode: slot " + std::to_string(slots[i]) + " out of range [0, " +
                                  std::to_string(n_samples_) + ")");
    if (i > 0 && slots[i] <= slots[i - 1]) throw std::invalid_argument("decode: slots must be strictly increasing");
    if (tokens[i] < 0 || tokens[i] >= w_.n_vocab)
      throw std::invalid_argument("decode: token id " + std::to_string(tokens[i]) + " out of range");
    if (d_[slots[i]] >= o_.max_decode)
      throw std::invalid_argument("decode: slot " + std::to_string(slots[i]) + " is full (maxDecode " +
                                  std::to_string(o_.max_decode) + ")");
    if (w_.position_embd && (int64_t)P_ + d_[slots[i]] >= w_.position_embd.ne1)
      throw std::invalid_argument("decode: the model has learned positions only up to " +
                                  std::to_string(w_.position_embd.ne1));
  }
}

void Session::eval_prompt(const int32_t* tokens, int n, int keep, float* logits, const std::atomic<bool>& abort) {
  check_prompt(tokens, n, keep);
  P_ = keep;
  n_samples_ = 0;  // the samples' caches belonged to the old prompt: give their memory back now
  dec_k_.release();
  dec_v_.release();
  rep_k_.release();
  rep_v_.release();
  for (int done = 0; done < n;) {
    const int m = std::min(batch_, n - done);
    for (int i = 0; i < m; i++) pos_[i] = P_ + i;
    const bool last = done + m == n;
    forward(m, tokens + done, pos_.data(), true, nullptr, last ? 1 : 0, logits, abort);
    P_ += m;  // a cancelled chunk leaves P_ at the last complete one
    done += m;
  }
}

void Session::begin_samples(int n, bool replicated) {
  if (n < 1 || n > o_.max_samples)
    throw std::invalid_argument("beginSamples: n=" + std::to_string(n) + " outside [1, " +
                                std::to_string(o_.max_samples) + "]");
  if (P_ == 0) throw std::invalid_argument("beginSamples: evaluate a prompt first");
  const int hd = w_.head_dim, nkv = w_.n_head_kv;
  replicated_ = replicated;
  n_samples_ = n;
  std::fill(d_.begin(), d_.end(), 0);
  if (!replicated) {
    rep_k_.release();
    rep_v_.release();
    const size_t need = (size_t)w_.n_layer * n * nkv * o_.max_decode * hd;
    dec_k_.reset(need);
    dec_v_.reset(need);
    return;
  }
  // Baseline: each sample gets a private copy of the prompt KV followed by room for its decode.
  dec_k_.release();
  dec_v_.release();
  rep_stride_ = (int64_t)P_ + o_.max_decode;
  const size_t sample = (size_t)nkv * rep_stride_ * hd, layer = sample * n;
  rep_k_.reset(layer * w_.n_layer);
  rep_v_.reset(layer * w_.n_layer);
  // The copy is part of the baseline's cost; done on all threads so it is not slower than it must be.
  pfor(*pool_, (int64_t)w_.n_layer * n * nkv, [&](int64_t b, int64_t e) {
    for (int64_t x = b; x < e; x++) {
      const int l = (int)(x / ((int64_t)n * nkv)), s = (int)(x / nkv % n), h = (int)(x % nkv);
      const size_t src = (size_t)h * o_.ctx * hd, dst = l * layer + s * sample + (size_t)h * rep_stride_ * hd;
      std::memcpy(&rep_k_[dst], ctx_k(l) + src, sizeof(float) * P_ * hd);
      std::memcpy(&rep_v_[dst], ctx_v(l) + src, sizeof(float) * P_ * hd);
    }
  });
}

void Session::decode(const int32_t* slots, const int32_t* tokens, int m, float* logits, const std::atomic<bool>& abort) {
  check_decode(slots, tokens, m);
  for (int i = 0; i < m; i++) pos_[i] = P_ + d_[slots[i]];
  forward(m, tokens, pos_.data(), false, slots, m, logits, abort);
  for (int i = 0; i < m; i++) d_[slots[i]]++;  // only after the whole step: a cancelled one leaves no trace
}

// K/V rows of this step go into the caches: the shared context cache (prefill), the slot's own
// decode cache (bifurcated) or the slot's private full cache (replicated).
void Session::store_kv(int l, int m, const int* pos, bool prefill, const int32_t* slots) {
  const int hd = w_.head_dim, nkv = w_.n_head_kv;
  for (int i = 0; i < m; i++)
    for (int h = 0; h < nkv; h++) {
      float *dk, *dv;
      if (prefill) {
        const size_t at = ((size_t)h * o_.ctx + pos[i]) * hd;
        dk = ctx_k(l) + at;
        dv = ctx_v(l) + at;
      } else if (!replicated_) {
        const size_t layer = (size_t)n_samples_ * nkv * o_.max_decode * hd;
        const size_t at = l * layer + ((size_t)slots[i] * nkv + h) * o_.max_decode * hd + (size_t)d_[slots[i]] * hd;
        dk = &dec_k_[at];
        dv = &dec_v_[at];
      } else {
        const size_t layer = (size_t)n_samples_ * nkv * rep_stride_ * hd;
        const size_t at = l * layer + ((size_t)slots[i] * nkv + h) * rep_stride_ * hd + (size_t)pos[i] * hd;
        dk = &rep_k_[at];
        dv = &rep_v_[at];
      }
      std::memcpy(dk, &k_[(size_t)i * kvdim_ + h * hd], sizeof(float) * hd);
      std::memcpy(dv, &v_[(size_t)i * kvdim_ + h * hd], sizeof(float) * hd);
    }
}

void Session::forward(int m, const int32_t* tokens, const int* pos, bool prefill, const int32_t* slots, int last_rows,
                      float* logits, const std::atomic<bool>& abort) {
  const ModelWeights& w = w_;
  const int E = w.n_embd, hd = w.head_dim, nh = w.n_head, nkv = w.n_head_kv, F = w.n_ff;
  ThreadPool& pool = *pool_;
  float *x = x_.data(), *xb = xb_.data(), *q = q_.data(), *k = k_.data(), *v = v_.data();
  float *att = att_.data(), *hb = hb_.data(), *hb2 = hb2_.data();
  Profile* pr = prof_.get();
  auto lap = [pr](Profile::Op op) { if (pr) pr->lap(op); };
  if (pr) pr->start(!prefill, m);

  // Token embedding (+ learned absolute position embedding).
  for (int i = 0; i < m; i++) {
    get_row(w.token_embd, tokens[i], x + (size_t)i * E);
    if (w.position_embd) {
      get_row(w.position_embd, pos[i], row_.data());
      for (int j = 0; j < E; j++) x[(size_t)i * E + j] += row_[j];
    }
  }

  // cos/sin per row, shared by all heads of that row and by every layer.
  const int rot = w.rope_dim;
  if (w.rope != RopeKind::None)
    for (int i = 0; i < m; i++)
      for (int j = 0; j < rot / 2; j++) {
        const double a = (double)pos[i] / w.rope_scale * inv_freq_[j];  // linear scaling: pos / factor
        cs_[(size_t)i * rot + 2 * j] = (float)std::cos(a);
        cs_[(size_t)i * rot + 2 * j + 1] = (float)std::sin(a);
      }
  lap(Profile::Embed);

  for (int l = 0; l < w.n_layer; l++) {
    if (abort.load(std::memory_order_relaxed)) throw Cancelled();
    const LayerWeights& L = w.layers[l];

    // ---- attention ----
    norm_rows(w, xb, x, m, L.attn_norm, L.attn_norm_b, pool);
    lap(Profile::Norm);
    if (L.wqkv) {  // fused: rows Q (nh*hd), then K (nkv*hd), then V (nkv*hd)
      const int tot = qdim_ + 2 * kvdim_;
      matmul(L.wqkv, xb, m, qkv_.data(), pool);
      add_bias(qkv_.data(), m, tot, tot, L.bqkv);
      for (int i = 0; i < m; i++) {
        const float* r = qkv_.data() + (size_t)i * tot;
        std::memcpy(q + (size_t)i * qdim_, r, sizeof(float) * qdim_);
        std::memcpy(k + (size_t)i * kvdim_, r + qdim_, sizeof(float) * kvdim_);
        std::memcpy(v + (size_t)i * kvdim_, r + qdim_ + kvdim_, sizeof(float) * kvdim_);
      }
    } else {
      const Tensor* W3[3] = {&L.wq, &L.wk, &L.wv};
      float* y3[3] = {q, k, v};
      matmul_shared(W3, y3, 3, xb, m, pool);
      add_bias(q, m, qdim_, qdim_, L.bq);
      add_bias(k, m, kvdim_, kvdim_, L.bk);
      add_bias(v, m, kvdim_, kvdim_, L.bv);
    }
    lap(Profile::Qkv);
    if (w.rope != RopeKind::None)
      for_rows(pool, m, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; i++) {
          const float* c = cs_.data() + (size_t)i * rot;
          for (int h = 0; h < nh; h++) rope_head(q + (size_t)i * qdim_ + h * hd, c, rot, w.rope);
          for (int h = 0; h < nkv; h++) rope_head(k + (size_t)i * kvdim_ + h * hd, c, rot, w.rope);
        }
      });
    store_kv(l, m, pos, prefill, slots);
    lap(Profile::Rope);

    const float scale = 1.f / std::sqrt((float)hd);
    if (prefill) {
      attention_prefill(m, pos[0], nh, nkv, hd, o_.ctx, scale, q, ctx_k(l), ctx_v(l), att, pool);
    } else {
      for (int i = 0; i < m; i++) slot_d_[i] = d_[slots[i]] + 1;  // this step's K/V included
      AttnShape s{m, nh, nkv, hd, P_, 0, o_.ctx, o_.max_decode, (int64_t)nkv * o_.max_decode * hd, scale};
      if (!replicated_) {
        const size_t layer = (size_t)n_samples_ * nkv * o_.max_decode * hd;
        attention_bifurcated_slots(s, slots, slot_d_.data(), q, ctx_k(l), ctx_v(l), dec_k_.data() + l * layer,
                                   dec_v_.data() + l * layer, att, pool);
      } else {
        const size_t layer = (size_t)n_samples_ * nkv * rep_stride_ * hd;
        attention_replicated_slots(s, slots, slot_d_.data(), rep_stride_, (int64_t)nkv * rep_stride_ * hd, q,
                                   rep_k_.data() + l * layer, rep_v_.data() + l * layer, att, pool);
      }
    }
    lap(Profile::Attn);
    matmul(L.wo, att, m, xb, pool);
    add_bias(xb, m, E, E, L.bo);
    add_rows(x, xb, m, E, pool);
    lap(Profile::Wo);

    // ---- MLP ----
    norm_rows(w, xb, x, m, L.ffn_norm, L.ffn_norm_b, pool);
    lap(Profile::Norm);
    if (w.mlp == MlpKind::SwiGLU && !L.ffn_up_b) {  // Shazeer 2020: (silu(gate) * up) down
      ffn_swiglu(L.ffn_up, L.ffn_gate, L.ffn_down, xb, m, xb, hb, hb2, pool);
    } else {
      if (w.mlp == MlpKind::SwiGLU) {
        const Tensor* W2[2] = {&L.ffn_up, &L.ffn_gate};
        float* y2[2] = {hb, hb2};
        matmul_shared(W2, y2, 2, xb, m, pool);
        add_bias(hb, m, F, F, L.ffn_up_b);
        lap(Profile::Mlp);
        pfor(pool, (int64_t)m * F, [&](int64_t b, int64_t e) { silu_mul(hb + b, hb2 + b, e - b); });
      } else {
        matmul(L.ffn_up, xb, m, hb, pool);
        add_bias(hb, m, F, F, L.ffn_up_b);
        lap(Profile::Mlp);
        pfor(pool, (int64_t)m * F, [&](int64_t b, int64_t e) { gelu_inplace(hb + b, e - b); });
      }
      lap(Profile::Act);
      matmul(L.ffn_down, hb, m, xb, pool);
    }
    add_bias(xb, m, E, E, L.ffn_down_b);
    add_rows(x, xb, m, E, pool);
    lap(Profile::Mlp);
  }
  if (last_rows == 0) return;
  if (abort.load(std::memory_order_relaxed)) throw Cancelled();

  // Final norm and logits for the last `last_rows` rows only.
  const int first = m - last_rows;
  norm_rows(w, xb, x + (size_t)first * E, last_rows, w.output_norm, w.output_norm_b, pool);
  matmul(w.output, xb, last_rows, logits, pool);
  lap(Profile::Output);
}
