// The Node-API surface of the engine (engine/native.ts types it): file mapping, the Model (weights
// inside a mapped GGUF), the Context (one request's KV caches; evalPrompt/decode run on libuv's
// worker pool and return Promises), and test/benchmark hooks for the kernels.
//
// Ownership: a file mapping is shared (shared_ptr) by its MappedFile handle (until close() or its
// finalizer) and every Model built on it (until disposed with no live context); the last one unmaps.
// A Context holds a reference to its Model; a running job holds a reference to its Context. So
// nothing a computation reads can be freed under it.
#include <napi.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "activations.h"
#include "attention.h"
#include "forward.h"
#include "matmul.h"
#include "quants.h"
#include "threadpool.h"

namespace {

struct AddonData {
  Napi::FunctionReference model_ctor;
  Napi::FunctionReference mapped_ctor;
  std::unique_ptr<ThreadPool> hook_pool;  // for the test hooks, rebuilt when the thread count changes
};

ThreadPool& hook_pool(Napi::Env env, int threads) {
  AddonData* d = env.GetInstanceData<AddonData>();
  threads = std::max(1, std::min(threads, 256));
  if (!d->hook_pool || d->hook_pool->size() != threads) d->hook_pool = std::make_unique<ThreadPool>(threads);
  return *d->hook_pool;
}

[[noreturn]] void fail(Napi::Env env, const std::string& msg) { throw Napi::Error::New(env, msg); }

// ---- argument helpers ------------------------------------------------------------------------

double get_number(Napi::Env env, const Napi::Object& o, const char* key, const std::string& where) {
  Napi::Value v = o.Get(key);
  if (!v.IsNumber()) fail(env, where + "." + key + " must be a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) fail(env, where + "." + key + " must be finite");
  return d;
}

int64_t get_int(Napi::Env env, const Napi::Object& o, const char* key, const std::string& where, int64_t lo,
                int64_t hi) {
  const double d = get_number(env, o, key, where);
  if (d != std::floor(d) || d < (double)lo || d > (double)hi)
    fail(env, where + "." + key + " = " + std::to_string(d) + " must be an integer in [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "]");
  return (int64_t)d;
}

int64_t arg_int(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t lo, int64_t hi) {
  if (info.Length() <= i || !info[i].IsNumber()) fail(info.Env(), std::string(name) + " must be a number");
  const double d = info[i].As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < (double)lo || d > (double)hi)
    fail(info.Env(), std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return (int64_t)d;
}

template <typename T>
T arg_typed(const Napi::CallbackInfo& info, size_t i, const char* name, napi_typedarray_type type) {
  if (info.Length() <= i || !info[i].IsTypedArray() || info[i].As<Napi::TypedArray>().TypedArrayType() != type)
    fail(info.Env(), std::string(name) + " has the wrong type (expected a typed array of the right kind)");
  return info[i].As<T>();
}

// ---- MappedFile ------------------------------------------------------------------------------

// A read-only memory map of a whole file. It is never handed to JavaScript as an ArrayBuffer: Node
// refuses Buffers over 4 GiB (a 7B Q4_K_M file is 4.1 GB) and Electron's V8 memory cage refuses
// external ArrayBuffers altogether. JavaScript gets the size and small copies of byte ranges (the
// GGUF header); the Model reads tensor data straight from the mapping.
struct Mapping {
  const uint8_t* data = nullptr;
  size_t size = 0;
  Mapping(const uint8_t* d, size_t n) : data(d), size(n) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { ::munmap(const_cast<uint8_t*>(data), size); }
};

// The JS handle of a Mapping. Owners share the Mapping (shared_ptr): the handle until close() or its
// finalizer, each Model until it is disposed and its last context is gone. Whoever lets go last unmaps,
// so close() while a model computes is safe, in any finalization order.
class MappedFileWrap : public Napi::ObjectWrap<MappedFileWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "MappedFile",
                       {InstanceAccessor("size", &MappedFileWrap::Size, nullptr),
                        InstanceMethod("read", &MappedFileWrap::Read), InstanceMethod("close", &MappedFileWrap::Close)});
  }

  MappedFileWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<MappedFileWrap>(info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) fail(env, "mapFile(path): path must be a string");
    const std::string path = info[0].As<Napi::String>();
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail(env, "cannot open " + path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      fail(env, path + " is not a readable regular file");
    }
    const size_t size = (size_t)st.st_size;
    if (size == 0) {
      ::close(fd);
      fail(env, path + " is empty (0 bytes)");
    }
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int map_errno = errno;
    ::close(fd);  // the mapping keeps the file referenced
    if (p == MAP_FAILED) fail(env, "cannot map " + path + ": " + std::strerror(map_errno));
    map_ = std::make_shared<Mapping>(static_cast<const uint8_t*>(p), size);
    size_ = size;
  }

  /** The mapping, or null once closed. */
  std::shared_ptr<Mapping> mapping() const { return map_; }

 private:
  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), (double)size_); }

  // read(offset, length) -> a fresh ArrayBuffer holding a copy of bytes [offset, offset + length).
  Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!map_) fail(env, "MappedFile.read: the file was closed");
    const int64_t kMax = (int64_t)1 << 53;
    const int64_t offset = arg_int(info, 0, "MappedFile.read: offset", 0, kMax);
    const int64_t length = arg_int(info, 1, "MappedFile.read: length", 0, kMax);
    if ((uint64_t)offset > size_ || (uint64_t)length > size_ - (uint64_t)offset)
      fail(env, "MappedFile.read: bytes [" + std::to_string(offset) + ", +" + std::to_string(length) +
                    ") lie outside the file (" + std::to_string(size_) + " bytes)");
    Napi::ArrayBuffer out = Napi::ArrayBuffer::New(env, (size_t)length);
    if (length > 0) std::memcpy(out.Data(), map_->data + offset, (size_t)length);
    return out;
  }

  void Close(const Napi::CallbackInfo&) { map_.reset(); }

  std::shared_ptr<Mapping> map_;
  size_t size_ = 0;  // kept after close() so `size` stays meaningful
};

Napi::Value MapFile(const Napi::CallbackInfo& info) {
  AddonData* d = info.Env().GetInstanceData<AddonData>();
  std::vector<napi_value> args;
  for (size_t i = 0; i < info.Length(); i++) args.push_back(info[i]);
  return d->mapped_ctor.New(args);
}

// ---- cpuInfo ---------------------------------------------------------------------------------

int physical_cores() {
  std::set<std::pair<std::string, std::string>> cores;  // (package, core) pairs
  for (unsigned cpu = 0; cpu < 4096; cpu++) {
    const std::string base = "/sys/devices/system/cpu/cpu" + std::to_string(cpu) + "/topology/";
    std::ifstream core(base + "core_id"), pkg(base + "physical_package_id");
    if (!core) break;
    std::string c, p;
    core >> c;
    pkg >> p;
    cores.insert({p, c});
  }
  if (!cores.empty()) return (int)cores.size();
  return std::max(1u, std::thread::hardware_concurrency());
}

Napi::Value CpuInfo(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object o = Napi::Object::New(env);
  o.Set("physicalCores", physical_cores());
  o.Set("logicalCores", (double)std::max(1u, std::thread::hardware_concurrency()));
#if defined(__x86_64__) || defined(__i386__)
  o.Set("avx2", __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"));
  o.Set("avx512", (bool)__builtin_cpu_supports("avx512f"));
  o.Set("avx512vnni", (bool)__builtin_cpu_supports("avx512vnni"));
#else
  o.Set("avx2", false);
  o.Set("avx512", false);
  o.Set("avx512vnni", false);
#endif
  o.Set("kernels", matmul_isa());  // the matmul family chosen at run time: amx, avx512vnni, avx2, scalar
  o.Set("bf16Tiles", matmul_bf16_tiles());  // prompt-sized products on AMX BF16 tiles
  return o;
}

// ---- Model -----------------------------------------------------------------------------------

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Model", {InstanceMethod("dispose", &ModelWrap::Dispose)});
  }

  ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
    Napi::Env env = info.Env();
    AddonData* d = env.GetInstanceData<AddonData>();
    if (info.Length() < 2 || !info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(d->mapped_ctor.Value()) ||
        !info[1].IsObject())
      fail(env, "new Model(file: MappedFile, spec: ModelSpec): file must come from mapFile(path)");
    std::shared_ptr<Mapping> map = Napi::ObjectWrap<MappedFileWrap>::Unwrap(info[0].As<Napi::Object>())->mapping();
    if (!map) fail(env, "new Model: the mapped file was closed");
    base_ = map->data;
    size_ = map->size;
    Load(env, info[1].As<Napi::Object>());
    map_ = std::move(map);  // the mapping outlives the model
  }

  const ModelWeights& weights() const { return w_; }
  bool disposed() const { return disposed_; }
  void context_opened() { live_contexts_++; }
  void context_closed() {
    live_contexts_--;
    Release();
  }

 private:
  void Dispose(const Napi::CallbackInfo&) {
    disposed_ = true;
    Release();
  }
  // The model lets go of the mapping once it is disposed and no context still computes with it.
  void Release() {
    if (disposed_ && live_contexts_ == 0) map_.reset();
  }

  // A TensorRef from the spec, checked: supported type, whole rows, data inside the buffer, shape.
  // The JS side (engine/archTable.ts) checked all this already; this is the defence in depth that
  // keeps a bad spec from turning into an out-of-bounds read.
  Tensor TensorAt(Napi::Env env, const Napi::Object& parent, const char* key, const std::string& where,
                  bool required, int64_t ne0, int64_t ne1) {
    const std::string name = where + "." + key;
    Napi::Value v = parent.Get(key);
    if (v.IsUndefined() || v.IsNull()) {
      if (required) fail(env, "model spec: tensor " + name + " is missing");
      return Tensor{};
    }
    if (!v.IsObject()) fail(env, "model spec: tensor " + name + " must be an object");
    Napi::Object o = v.As<Napi::Object>();
    const int64_t kMax = (int64_t)1 << 53;
    Tensor t;
    t.type = (int32_t)get_int(env, o, "type", name, 0, 1 << 20);
    t.ne0 = get_int(env, o, "ne0", name, 1, kMax);
    t.ne1 = get_int(env, o, "ne1", name, 1, kMax);
    const int64_t offset = get_int(env, o, "offset", name, 0, kMax);
    const int64_t bs = ggml_block_size(t.type);
    if (bs <= 0) fail(env, "model spec: tensor " + name + " has unsupported type " + std::to_string(t.type));
    if (t.ne0 % bs != 0)
      fail(env, "model spec: tensor " + name + " row length " + std::to_string(t.ne0) + " is not a multiple of " +
                    std::to_string(bs));
    if ((ne0 >= 0 && t.ne0 != ne0) || (ne1 >= 0 && t.ne1 != ne1))
      fail(env, "model spec: tensor " + name + " has shape [" + std::to_string(t.ne0) + ", " + std::to_string(t.ne1) +
                    "], expected [" + std::to_string(ne0) + ", " + (ne1 >= 0 ? std::to_string(ne1) : "any") + "]");
    const unsigned __int128 bytes = (unsigned __int128)ggml_row_size(t.type, t.ne0) * (uint64_t)t.ne1;
    if ((unsigned __int128)offset + bytes > (unsigned __int128)size_)
      fail(env, "model spec: tensor " + name + " data [" + std::to_string(offset) + ", +" +
                    std::to_string((uint64_t)bytes) + ") lies outside the file (" + std::to_string(size_) + " bytes)");
    t.data = base_ + offset;
    return t;
  }

  // Small vectors (norm weights, biases) are converted to float once and owned by the model.
  Tensor VectorAt(Napi::Env env, const Napi::Object& parent, const char* key, const std::string& where, bool required,
                  int64_t n) {
    Tensor t = TensorAt(env, parent, key, where, required, n, 1);
    if (!t) return t;
    owned_.push_back(tensor_to_floats(t));
    t.data = reinterpret_cast<const uint8_t*>(owned_.back().data());
    t.type = GGML_F32;
    return t;
  }

  void Load(Napi::Env env, const Napi::Object& spec) {
    const std::string S = "spec";
    ModelWeights& w = w_;
    w.n_vocab = (int)get_int(env, spec, "n_vocab", S, 1, 1 << 24);
    w.n_embd = (int)get_int(env, spec, "n_embd", S, 1, 1 << 17);
    w.n_layer = (int)get_int(env, spec, "n_layer", S, 1, 4096);
    w.n_head = (int)get_int(env, spec, "n_head", S, 1, 4096);
    w.n_head_kv = (int)get_int(env, spec, "n_head_kv", S, 1, w.n_head);
    w.head_dim = (int)get_int(env, spec, "head_dim", S, 2, 4096);
    w.n_ff = (int)get_int(env, spec, "n_ff", S, 1, 1 << 20);
    w.n_ctx_train = (int)get_int(env, spec, "n_ctx_train", S, 0, 1 << 30);
    if (w.n_head % w.n_head_kv != 0)
      fail(env, "model spec: n_head " + std::to_string(w.n_head) + " is not a multiple of n_head_kv " +
                    std::to_string(w.n_head_kv));
    const std::string norm = spec.Get("norm").ToString();
    if (norm != "rms" && norm != "layer") fail(env, "model spec: norm must be 'rms' or 'layer'");
    w.norm = norm == "rms" ? NormKind::Rms : NormKind::Layer;
    w.norm_eps = (float)get_number(env, spec, "norm_eps", S);
    const std::string rope = spec.Get("rope").ToString();
    if (rope != "none" && rope != "norm" && rope != "neox") fail(env, "model spec: rope must be none|norm|neox");
    w.rope = rope == "none" ? RopeKind::None : rope == "norm" ? RopeKind::Norm : RopeKind::Neox;
    w.rope_base = (float)get_number(env, spec, "rope_base", S);
    w.rope_scale = (float)get_number(env, spec, "rope_scale", S);
    if (w.rope != RopeKind::None && (w.rope_base <= 0 || w.rope_scale <= 0))
      fail(env, "model spec: rope_base and rope_scale must be positive");
    w.rope_dim = w.head_dim;
    if (spec.Has("rope_dim") && !spec.Get("rope_dim").IsUndefined())
      w.rope_dim = (int)get_int(env, spec, "rope_dim", S, 2, w.head_dim);
    if (w.rope_dim % 2 != 0) fail(env, "model spec: rope_dim must be even");
    const std::string mlp = spec.Get("mlp").ToString();
    if (mlp != "swiglu" && mlp != "gelu") fail(env, "model spec: mlp must be 'swiglu' or 'gelu'");
    w.mlp = mlp == "swiglu" ? MlpKind::SwiGLU : MlpKind::Gelu;

    const int E = w.n_embd, F = w.n_ff, qd = w.n_head * w.head_dim, kvd = w.n_head_kv * w.head_dim;
    w.token_embd = TensorAt(env, spec, "token_embd", S, true, E, w.n_vocab);
    w.position_embd = TensorAt(env, spec, "position_embd", S, false, E, -1);
    w.output_norm = VectorAt(env, spec, "output_norm", S, true, E);
    w.output_norm_b = VectorAt(env, spec, "output_norm_b", S, false, E);
    w.output = TensorAt(env, spec, "output", S, true, E, w.n_vocab);

    Napi::Value lv = spec.Get("layers");
    if (!lv.IsArray()) fail(env, "model spec: layers must be an array");
    Napi::Array layers = lv.As<Napi::Array>();
    if ((int)layers.Length() != w.n_layer)
      fail(env, "model spec: " + std::to_string(layers.Length()) + " layers given, n_layer = " +
                    std::to_string(w.n_layer));
    const bool swiglu = w.mlp == MlpKind::SwiGLU;
    for (int l = 0; l < w.n_layer; l++) {
      const std::string where = "layers[" + std::to_string(l) + "]";
      Napi::Value v = layers.Get((uint32_t)l);
      if (!v.IsObject()) fail(env, "model spec: " + where + " must be an object");
      Napi::Object o = v.As<Napi::Object>();
      LayerWeights L;
      L.attn_norm = VectorAt(env, o, "attn_norm", where, true, E);
      L.attn_norm_b = VectorAt(env, o, "attn_norm_b", where, false, E);
      L.wqkv = TensorAt(env, o, "wqkv", where, false, E, qd + 2 * kvd);
      const bool split = !L.wqkv;
      L.wq = TensorAt(env, o, "wq", where, split, E, qd);
      L.wk = TensorAt(env, o, "wk", where, split, E, kvd);
      L.wv = TensorAt(env, o, "wv", where, split, E, kvd);
      L.bqkv = VectorAt(env, o, "bqkv", where, false, qd + 2 * kvd);
      L.bq = VectorAt(env, o, "bq", where, false, qd);
      L.bk = VectorAt(env, o, "bk", where, false, kvd);
      L.bv = VectorAt(env, o, "bv", where, false, kvd);
      L.wo = TensorAt(env, o, "wo", where, true, qd, E);
      L.bo = VectorAt(env, o, "bo", where, false, E);
      L.ffn_norm = VectorAt(env, o, "ffn_norm", where, true, E);
      L.ffn_norm_b = VectorAt(env, o, "ffn_norm_b", where, false, E);
      L.ffn_gate = TensorAt(env, o, "ffn_gate", where, swiglu, E, F);
      L.ffn_up = TensorAt(env, o, "ffn_up", where, true, E, F);
      L.ffn_up_b = VectorAt(env, o, "ffn_up_b", where, false, F);
      L.ffn_down = TensorAt(env, o, "ffn_down", where, true, F, E);
      L.ffn_down_b = VectorAt(env, o, "ffn_down_b", where, false, E);
      if (w.norm == NormKind::Layer && (!L.attn_norm_b) != (!L.ffn_norm_b))
        fail(env, "model spec: " + where + " has a bias on only one of its two norms");
      w.layers.push_back(L);
    }
  }

  ModelWeights w_;
  std::vector<std::vector<float>> owned_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  std::shared_ptr<Mapping> map_;
  int live_contexts_ = 0;
  bool disposed_ = false;
};

// ---- Context ---------------------------------------------------------------------------------

class ContextWrap;
Napi::Value row_stats_js(const Napi::CallbackInfo& info, ThreadPool* pool);

// One evalPrompt/decode on a libuv worker thread; resolves with the logits array it fills.
class StepJob : public Napi::AsyncWorker {
 public:
  StepJob(Napi::Env env, ContextWrap* ctx, Napi::Object self, Napi::Float32Array out, std::function<void(float*)> fn)
      : Napi::AsyncWorker(env, "forkcast.step"),
        deferred_(Napi::Promise::Deferred::New(env)),
        ctx_(ctx),
        fn_(std::move(fn)),
        out_data_(out.Data()) {
    self_ = Napi::Persistent(self);
    out_ = Napi::Persistent(out);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    try {
      fn_(out_data_);
    } catch (const Cancelled&) {
      SetError("cancelled");
    } catch (const std::bad_alloc&) {
      SetError("out of memory");
    } catch (const std::exception& e) {
      SetError(e.what());
    }
  }
  void OnOK() override;
  void OnError(const Napi::Error& e) override;

 private:
  Napi::Promise::Deferred deferred_;
  ContextWrap* ctx_;
  std::function<void(float*)> fn_;
  float* out_data_;
  Napi::ObjectReference self_;
  Napi::Reference<Napi::Float32Array> out_;
};

class ContextWrap : public Napi::ObjectWrap<ContextWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Context",
                       {InstanceMethod("evalPrompt", &ContextWrap::EvalPrompt),
                        InstanceAccessor("promptLength", &ContextWrap::PromptLength, nullptr),
                        InstanceMethod("beginSamples", &ContextWrap::BeginSamples),
                        InstanceMethod("decode", &ContextWrap::Decode), InstanceMethod("decodeSync", &ContextWrap::DecodeSync),
                        InstanceMethod("cancel", &ContextWrap::Cancel),
                        InstanceMethod("kvBytes", &ContextWrap::KvBytes), InstanceMethod("rowStats", &ContextWrap::RowStats),
                        InstanceMethod("dispose", &ContextWrap::Dispose)});
  }

  ContextWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ContextWrap>(info) {
    Napi::Env env = info.Env();
    AddonData* d = env.GetInstanceData<AddonData>();
    if (info.Length() < 2 || !info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(d->model_ctor.Value()) ||
        !info[1].IsObject())
      fail(env, "new Context(model: Model, opts: ContextOptions)");
    ModelWrap* model = Napi::ObjectWrap<ModelWrap>::Unwrap(info[0].As<Napi::Object>());
    if (model->disposed()) fail(env, "new Context: the model was disposed");
    Napi::Object o = info[1].As<Napi::Object>();
    SessionOptions so;
    so.ctx = (int)get_int(env, o, "ctx", "opts", 1, 1 << 24);
    so.max_samples = (int)get_int(env, o, "maxSamples", "opts", 1, 1024);
    so.max_decode = (int)get_int(env, o, "maxDecode", "opts", 1, 1 << 20);
    so.threads = (int)get_int(env, o, "threads", "opts", 1, 256);
    try {
      session_ = std::make_unique<Session>(model->weights(), so);
    } catch (const std::bad_alloc&) {
      fail(env, "new Context: not enough memory for a KV cache of " + std::to_string(so.ctx) + " tokens");
    }
    model_ = model;
    model_ref_ = Napi::Persistent(info[0].As<Napi::Object>());
    model->context_opened();
  }
  ~ContextWrap() override { Free(); }

  // Called by StepJob on the JS thread when a job ends.
  void JobDone() {
    busy_ = false;
    if (disposed_) Free();
  }

 private:
  // Starts fn on the worker pool unless the context cannot take a job now.
  Napi::Value Start(Napi::Env env, Napi::Float32Array out, std::function<void(float*)> fn) {
    auto* job = new StepJob(env, this, Value(), out, std::move(fn));
    abort_.store(false);
    busy_ = true;
    Napi::Promise p = job->Promise();
    job->Queue();
    return p;
  }
  Napi::Value Reject(Napi::Env env, const std::string& msg) {
    auto d = Napi::Promise::Deferred::New(env);
    d.Reject(Napi::Error::New(env, msg).Value());
    return d.Promise();
  }
  // Why a new job cannot start now, or "" when it can.
  std::string Unavailable(const char* what) const {
    if (disposed_) return std::string(what) + ": the context was disposed";
    if (busy_) return std::string(what) + ": another evalPrompt/decode is still running on this context";
    return "";
  }

  Napi::Value EvalPrompt(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string why = Unavailable("evalPrompt");
    if (!why.empty()) return Reject(env, why);
    std::vector<int32_t> tokens;
    int keep;
    try {
      Napi::Int32Array t = arg_typed<Napi::Int32Array>(info, 0, "evalPrompt: tokens", napi_int32_array);
      keep = (int)arg_int(info, 1, "evalPrompt: keep", 0, 1 << 30);
      tokens.assign(t.Data(), t.Data() + t.ElementLength());
      session_->check_prompt(tokens.data(), (int)tokens.size(), keep);
    } catch (const std::exception& e) {
      return Reject(env, e.what());
    }
    Session* s = session_.get();
    std::atomic<bool>* abort = &abort_;
    return Start(env, Napi::Float32Array::New(env, (size_t)model_->weights().n_vocab),
                 [s, abort, tokens = std::move(tokens), keep](float* out) {
                   s->eval_prompt(tokens.data(), (int)tokens.size(), keep, out, *abort);
                 });
  }

  // decode(slots, tokens, out?) arguments, checked against the session; throws std::invalid_argument.
  void DecodeArgs(const Napi::CallbackInfo& info, std::vector<int32_t>& slots, std::vector<int32_t>& tokens) {
    Napi::Int32Array sl = arg_typed<Napi::Int32Array>(info, 0, "decode: slots", napi_int32_array);
    Napi::Int32Array tk = arg_typed<Napi::Int32Array>(info, 1, "decode: tokens", napi_int32_array);
    if (sl.ElementLength() != tk.ElementLength()) throw std::invalid_argument("decode: slots and tokens differ in length");
    slots.assign(sl.Data(), sl.Data() + sl.ElementLength());
    tokens.assign(tk.Data(), tk.Data() + tk.ElementLength());
    session_->check_decode(slots.data(), tokens.data(), (int)slots.size());
  }

  // Where a step's logits go: the caller's `out` (info[2]) when given, as a view of its first
  // slots x vocab floats, else a new array. A 16-sample step of a 152k vocabulary is 9.7 MB: a new
  // array per step was a fresh zeroed allocation, and its garbage set V8's collector threads
  // competing with the step's own threads (~5% of a request's CPU time in perf).
  Napi::Float32Array DecodeOut(const Napi::CallbackInfo& info, size_t m) {
    const size_t len = m * (size_t)model_->weights().n_vocab;
    if (info.Length() < 3 || info[2].IsUndefined()) return Napi::Float32Array::New(info.Env(), len);
    Napi::Float32Array out = arg_typed<Napi::Float32Array>(info, 2, "decode: out", napi_float32_array);
    if (out.ElementLength() < len)
      throw std::invalid_argument("decode: out holds " + std::to_string(out.ElementLength()) + " floats, the step needs " +
                                  std::to_string(len));
    return Napi::Float32Array::New(info.Env(), len, out.ArrayBuffer(), out.ByteOffset());
  }

  Napi::Value Decode(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string why = Unavailable("decode");
    if (!why.empty()) return Reject(env, why);
    std::vector<int32_t> slots, tokens;
    Napi::Float32Array out;
    try {
      DecodeArgs(info, slots, tokens);
      out = DecodeOut(info, slots.size());
    } catch (const std::exception& e) {
      return Reject(env, e.what());
    }
    Session* s = session_.get();
    std::atomic<bool>* abort = &abort_;
    return Start(env, out,
                 [s, abort, slots = std::move(slots), tokens = std::move(tokens)](float* out) {
                   s->decode(slots.data(), tokens.data(), (int)slots.size(), out, *abort);
                 });
  }

  // The same step on the calling thread. A short step (a small model, few samples) spends less
  // time computing than a libuv job spends handing over: waking a worker thread and then the event
  // loop cost ~0.2 ms per token here, 15-20% of a step of the bundled model. The caller yields to
  // its event loop between steps, so cancellation still lands within one step.
  Napi::Value DecodeSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string why = Unavailable("decodeSync");
    if (!why.empty()) fail(env, why);
    std::vector<int32_t> slots, tokens;
    Napi::Float32Array out;
    try {
      DecodeArgs(info, slots, tokens);
      out = DecodeOut(info, slots.size());
    } catch (const std::exception& e) {
      fail(env, e.what());
    }
    abort_.store(false);
    try {
      session_->decode(slots.data(), tokens.data(), (int)slots.size(), out.Data(), abort_);
    } catch (const std::bad_alloc&) {
      fail(env, "out of memory");
    } catch (const std::exception& e) {
      fail(env, e.what());
    }
    return out;
  }

  Napi::Value PromptLength(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), session_ ? session_->prompt_length() : 0);
  }

  void BeginSamples(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string why = Unavailable("beginSamples");
    if (!why.empty()) fail(env, why);
    const int n = (int)arg_int(info, 0, "beginSamples: n", 1, 1024);
    if (info.Length() < 2 || !info[1].IsString()) fail(env, "beginSamples: mode must be 'bifurcated' or 'replicated'");
    const std::string mode = info[1].As<Napi::String>();
    if (mode != "bifurcated" && mode != "replicated")
      fail(env, "beginSamples: mode must be 'bifurcated' or 'replicated', got '" + mode + "'");
    try {
      session_->begin_samples(n, mode == "replicated");
    } catch (const std::bad_alloc&) {
      fail(env, "beginSamples: not enough memory for " + std::to_string(n) + " samples' KV caches");
    }
  }

  void Cancel(const Napi::CallbackInfo&) { abort_.store(true); }

  Napi::Value KvBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), session_ ? (double)session_->kv_bytes() : 0.0);
  }

  // rowStats on this context's threads; on the calling thread while a step holds them (or after dispose).
  Napi::Value RowStats(const Napi::CallbackInfo& info) {
    return row_stats_js(info, session_ && !busy_ ? &session_->pool() : nullptr);
  }

  // Frees the caches now, or as soon as the running job stops (it is told to stop).
  void Dispose(const Napi::CallbackInfo&) {
    disposed_ = true;
    abort_.store(true);
    if (!busy_) Free();
  }

  void Free() {
    session_.reset();
    if (model_) {
      model_->context_closed();
      model_ = nullptr;
      if (!model_ref_.IsEmpty()) model_ref_.Reset();
    }
  }

  std::unique_ptr<Session> session_;
  ModelWrap* model_ = nullptr;
  Napi::ObjectReference model_ref_;
  std::atomic<bool> abort_{false};
  bool busy_ = false;
  bool disposed_ = false;
};

void StepJob::OnOK() {
  ctx_->JobDone();
  deferred_.Resolve(out_.Value());
}
void StepJob::OnError(const Napi::Error& e) {
  ctx_->JobDone();
  deferred_.Reject(e.Value());
}

// ---- test and benchmark hooks ----------------------------------------------------------------

Napi::Value Quantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int32_t type = (int32_t)arg_int(info, 0, "quantize: type", 0, 1 << 20);
  Napi::Float32Array x = arg_typed<Napi::Float32Array>(info, 1, "quantize: data", napi_float32_array);
  const int64_t bs = ggml_block_size(type), n = (int64_t)x.ElementLength();
  if (bs <= 0) fail(env, "quantize: unsupported type " + std::to_string(type));
  if (n % bs != 0) fail(env, "quantize: " + std::to_string(n) + " elements is not a multiple of " + std::to_string(bs));
  // K-quant scale searches run ~10M elements/s per thread: real-shape models need every core.
  const int threads = info.Length() > 2 && !info[2].IsUndefined()
                          ? (int)arg_int(info, 2, "quantize: threads", 1, 256) : physical_cores();
  Napi::Uint8Array y = Napi::Uint8Array::New(env, (size_t)ggml_row_size(type, n));
  quantize_row_parallel(type, x.Data(), y.Data(), n, hook_pool(env, threads));
  return y;
}

Napi::Value Dequantize(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int32_t type = (int32_t)arg_int(info, 0, "dequantize: type", 0, 1 << 20);
  Napi::Uint8Array x = arg_typed<Napi::Uint8Array>(info, 1, "dequantize: data", napi_uint8_array);
  const int64_t n = arg_int(info, 2, "dequantize: n", 0, (int64_t)1 << 40);
  const int64_t bs = ggml_block_size(type);
  if (bs <= 0) fail(env, "dequantize: unsupported type " + std::to_string(type));
  if (n % bs != 0) fail(env, "dequantize: n is not a multiple of " + std::to_string(bs));
  if ((int64_t)x.ByteLength() < ggml_row_size(type, n)) fail(env, "dequantize: data is shorter than n elements");
  Napi::Float32Array y = Napi::Float32Array::New(env, (size_t)n);
  dequantize_row(type, x.Data(), y.Data(), n);
  return y;
}

// rowStats(logits, V, k = 0): for each row of V values [max, argmax, log-sum-exp, then the ids of
// the k largest (ties: lower id), unordered] as a Float64Array of 3 + k numbers per row. The
// sampler's passes over the whole vocabulary, in SIMD (tens of us per row): on the calling thread,
// or, as Context.rowStats, rows spread over that context's threads.
Napi::Value row_stats_js(const Napi::CallbackInfo& info, ThreadPool* pool) {
  Napi::Env env = info.Env();
  Napi::Float32Array x = arg_typed<Napi::Float32Array>(info, 0, "rowStats: logits", napi_float32_array);
  const int64_t V = arg_int(info, 1, "rowStats: V", 1, (int64_t)1 << 31);
  const int64_t k = info.Length() > 2 && !info[2].IsUndefined() ? arg_int(info, 2, "rowStats: k", 0, V) : 0;
  const int64_t n = (int64_t)x.ElementLength();
  if (n % V != 0) fail(env, "rowStats: " + std::to_string(n) + " values is not a whole number of rows of " + std::to_string(V));
  const int64_t rows = n / V, per = 3 + k;
  Napi::Float64Array out = Napi::Float64Array::New(env, (size_t)(per * rows));
  double* o = out.Data();
  const float* logits = x.Data();
  auto some = [&](int64_t r0, int64_t r1) {
    std::vector<int32_t> ids((size_t)k);
    for (int64_t r = r0; r < r1; r++) {
      const float* row = logits + r * V;
      const RowStats st = row_stats(row, V);
      o[per * r] = st.max;
      o[per * r + 1] = st.argmax;
      o[per * r + 2] = st.lse;
      if (k > 0) {
        row_top_k(row, V, (int)k, ids.data());
        for (int64_t j = 0; j < k; j++) o[per * r + 3 + j] = ids[j];
      }
    }
  };
  if (pool && rows > 1) pool->parallel_for(rows, some);
  else some(0, rows);
  return out;
}

Napi::Value RowStatsFn(const Napi::CallbackInfo& info) { return row_stats_js(info, nullptr); }

// activation("silu_mul", h, g) -> silu(g) * h, activation("gelu", h) -> gelu(h): the forward pass's
// elementwise kernels on explicit inputs (tests).
Napi::Value ActivationFn(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsString()) fail(env, "activation: (kind, h[, g])");
  const std::string kind = info[0].As<Napi::String>().Utf8Value();
  Napi::Float32Array h = arg_typed<Napi::Float32Array>(info, 1, "activation: h", napi_float32_array);
  Napi::Float32Array y = Napi::Float32Array::New(env, h.ElementLength());
  std::memcpy(y.Data(), h.Data(), sizeof(float) * h.ElementLength());
  if (kind == "silu_mul") {
    Napi::Float32Array g = arg_typed<Napi::Float32Array>(info, 2, "activation: g", napi_float32_array);
    if (g.ElementLength() != h.ElementLength()) fail(env, "activation: h and g differ in length");
    silu_mul(y.Data(), g.Data(), (int64_t)y.ElementLength());
  } else if (kind == "gelu") {
    gelu_inplace(y.Data(), (int64_t)y.ElementLength());
  } else {
    fail(env, "activation: unknown kind " + kind);
  }
  return y;
}

Napi::Value Matmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Tensor W;
  W.type = (int32_t)arg_int(info, 0, "matmul: type", 0, 1 << 20);
  Napi::Uint8Array w = arg_typed<Napi::Uint8Array>(info, 1, "matmul: w", napi_uint8_array);
  W.ne0 = arg_int(info, 2, "matmul: ne0", 1, 1 << 24);
  W.ne1 = arg_int(info, 3, "matmul: ne1", 1, 1 << 24);
  Napi::Float32Array x = arg_typed<Napi::Float32Array>(info, 4, "matmul: x", napi_float32_array);
  const int64_t n = arg_int(info, 5, "matmul: n", 1, 1 << 20);
  const int threads = (int)arg_int(info, 6, "matmul: threads", 1, 256);
  const int64_t bs = ggml_block_size(W.type);
  if (bs <= 0) fail(env, "matmul: unsupported type " + std::to_string(W.type));
  if (W.ne0 % bs != 0) fail(env, "matmul: ne0 is not a multiple of the block size");
  if ((int64_t)w.ByteLength() < ggml_row_size(W.type, W.ne0) * W.ne1) fail(env, "matmul: w is too short");
  if ((int64_t)x.ElementLength() < n * W.ne0) fail(env, "matmul: x is too short");
  W.data = w.Data();
  // gate (same type and shape as w): (x W^T) * silu(x gate^T); down too (ne0 = W.ne1, ne1 = W.ne0):
  // that times down^T, n x W.ne0
  const bool gated = info.Length() > 7 && !info[7].IsUndefined();
  const bool ffn = gated && info.Length() > 8 && !info[8].IsUndefined();
  Tensor G = W, D = W;
  if (gated) {
    Napi::Uint8Array g = arg_typed<Napi::Uint8Array>(info, 7, "matmul: gate", napi_uint8_array);
    if (g.ByteLength() < w.ByteLength()) fail(env, "matmul: gate is too short");
    G.data = g.Data();
  }
  if (ffn) {
    Napi::Uint8Array d = arg_typed<Napi::Uint8Array>(info, 8, "matmul: down", napi_uint8_array);
    D.ne0 = W.ne1, D.ne1 = W.ne0, D.data = d.Data();
    if (D.ne0 % bs != 0) fail(env, "matmul: down's row length is not a multiple of the block size");
    if ((int64_t)d.ByteLength() < ggml_row_size(D.type, D.ne0) * D.ne1) fail(env, "matmul: down is too short");
  }
  // Computed into cache-line aligned buffers like the forward pass's, so the tests and benchmarks
  // take the same store path (streaming stores need 64-byte alignment).
  using Buf = std::vector<float, Aligned64<float>>;
  Buf out((size_t)(n * (ffn ? W.ne0 : W.ne1)));
  ThreadPool& pool = hook_pool(env, threads);
  if (ffn) {
    Buf h((size_t)(n * W.ne1)), g2((size_t)(n * W.ne1));
    ffn_swiglu(W, G, D, x.Data(), n, out.data(), h.data(), g2.data(), pool);
  } else if (gated) {
    Buf scratch((size_t)(n * W.ne1));
    matmul_swiglu(W, G, x.Data(), n, out.data(), scratch.data(), pool);
  } else {
    matmul(W, x.Data(), n, out.data(), pool);
  }
  Napi::Float32Array y = Napi::Float32Array::New(env, out.size());
  std::memcpy(y.Data(), out.data(), sizeof(float) * out.size());
  return y;
}

// Inputs of the attention hook, checked, with the replicated baseline's per-sample caches built
// (the context copied in front of each sample's decode part) when that mode is asked for.
struct AttnCall {
  bool replicated = false, prefill = false;
  AttnShape s{};
  const float *q = nullptr, *kc = nullptr, *vc = nullptr, *kd = nullptr, *vd = nullptr;
  std::vector<float> rk, rv;
  int threads = 1;
};

AttnCall attn_args(Napi::Env env, const Napi::Value& v) {
  if (!v.IsObject()) fail(env, "attention(args): args must be an object");
  Napi::Object o = v.As<Napi::Object>();
  AttnCall c;
  const std::string mode = o.Get("mode").ToString();
  if (mode != "bifurcated" && mode != "replicated" && mode != "prefill")
    fail(env, "attention: mode must be bifurcated|replicated|prefill");
  c.replicated = mode == "replicated";
  c.prefill = mode == "prefill";
  AttnShape& s = c.s;
  s.n = (int)get_int(env, o, "n", "args", 1, 4096);
  s.n_head = (int)get_int(env, o, "n_head", "args", 1, 1024);
  s.n_kv = (int)get_int(env, o, "n_kv", "args", 1, s.n_head);
  s.hd = (int)get_int(env, o, "hd", "args", 1, 4096);
  s.P = (int)get_int(env, o, "P", "args", 0, 1 << 24);
  s.D = (int)get_int(env, o, "D", "args", 0, 1 << 20);
  c.threads = (int)get_int(env, o, "threads", "args", 1, 256);
  if (s.n_head % s.n_kv != 0) fail(env, "attention: n_head must be a multiple of n_kv");
  if (s.P + s.D < 1 && !c.prefill) fail(env, "attention: no positions to attend (P + D = 0)");
  s.ctx_stride = s.P;
  s.dec_stride = s.D;
  s.dec_sample_stride = (int64_t)s.n_kv * s.D * s.hd;
  s.scale = 1.f / std::sqrt((float)s.hd);
  auto arr = [&](const char* key, int64_t len) -> const float* {
    Napi::Value a = o.Get(key);
    if (!a.IsTypedArray() || a.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      fail(env, std::string("attention: ") + key + " must be a Float32Array");
    Napi::Float32Array f = a.As<Napi::Float32Array>();
    if ((int64_t)f.ElementLength() != len)
      fail(env, std::string("attention: ") + key + " has " + std::to_string(f.ElementLength()) + " floats, expected " +
                    std::to_string(len));
    return f.Data();
  };
  const int64_t hd = s.hd;
  c.q = arr("q", (int64_t)s.n * s.n_head * hd);
  if (c.prefill) {  // n new tokens after P cached positions; kc/vc hold all P + n, D must be 0
    if (s.D != 0) fail(env, "attention: prefill takes D = 0");
    c.kc = arr("kc", (int64_t)s.n_kv * (s.P + s.n) * hd);
    c.vc = arr("vc", (int64_t)s.n_kv * (s.P + s.n) * hd);
    return c;
  }
  c.kc = arr("kc", (int64_t)s.n_kv * s.P * hd);
  c.vc = arr("vc", (int64_t)s.n_kv * s.P * hd);
  c.kd = arr("kd", (int64_t)s.n * s.n_kv * s.D * hd);
  c.vd = arr("vd", (int64_t)s.n * s.n_kv * s.D * hd);
  if (c.replicated) {
    const int64_t stride = (int64_t)s.P + s.D, per = (int64_t)s.n_kv * stride * hd;
    c.rk.resize((size_t)(per * s.n));
    c.rv.resize((size_t)(per * s.n));
    for (int i = 0; i < s.n; i++)
      for (int h = 0; h < s.n_kv; h++) {
        const size_t dst = (size_t)(i * per + h * stride * hd);
        const size_t ctx = (size_t)(h * s.P * hd), dec = (size_t)(i * s.dec_sample_stride + h * s.D * hd);
        std::memcpy(&c.rk[dst], c.kc + ctx, sizeof(float) * s.P * hd);
        std::memcpy(&c.rv[dst], c.vc + ctx, sizeof(float) * s.P * hd);
        std::memcpy(&c.rk[dst + s.P * hd], c.kd + dec, sizeof(float) * s.D * hd);
        std::memcpy(&c.rv[dst + s.P * hd], c.vd + dec, sizeof(float) * s.D * hd);
      }
  }
  return c;
}

void attn_run(const AttnCall& c, float* out, ThreadPool& pool) {
  if (c.prefill) {
    attention_prefill(c.s.n, c.s.P, c.s.n_head, c.s.n_kv, c.s.hd, c.s.P + c.s.n, c.s.scale, c.q, c.kc, c.vc, out, pool);
  } else if (c.replicated) {
    const int64_t stride = (int64_t)c.s.P + c.s.D;
    attention_replicated(c.s, stride, (int64_t)c.s.n_kv * stride * c.s.hd, c.q, c.rk.data(), c.rv.data(), out, pool);
  } else {
    attention_bifurcated(c.s, c.q, c.kc, c.vc, c.kd, c.vd, out, pool);
  }
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AttnCall c = attn_args(env, info[0]);
  Napi::Float32Array out = Napi::Float32Array::New(env, (size_t)c.s.n * c.s.n_head * c.s.hd);
  attn_run(c, out.Data(), hook_pool(env, c.threads));
  return out;
}

// Sum of n floats (n a multiple of 64) with wide loads, so the loop is bound by memory, not by adds.
#if defined(__x86_64__)
__attribute__((target("avx2"))) float sum_floats_avx2(const float* a, int64_t n) {
  __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  for (int64_t i = 0; i < n; i += 32) {
    s0 = _mm256_add_ps(s0, _mm256_loadu_ps(a + i));
    s1 = _mm256_add_ps(s1, _mm256_loadu_ps(a + i + 8));
    s2 = _mm256_add_ps(s2, _mm256_loadu_ps(a + i + 16));
    s3 = _mm256_add_ps(s3, _mm256_loadu_ps(a + i + 24));
  }
  float t[8];
  _mm256_storeu_ps(t, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#endif
float sum_floats(const float* a, int64_t n) {
#if defined(__x86_64__)
  if (__builtin_cpu_supports("avx2")) return sum_floats_avx2(a, n);
#endif
  float s[16] = {0};
  for (int64_t i = 0; i < n; i += 16)
    for (int j = 0; j < 16; j++) s[j] += a[i + j];
  float t = 0;
  for (int j = 0; j < 16; j++) t += s[j];
  return t;
}

// attentionBench(args, iters, cold) -> seconds per call of the kernel alone (inputs prepared
// beforehand, best of `iters` runs after one warm-up). cold: the inputs are flushed from the caches
// before each timed call, as in a real step where the other layers' weights and KV pass through the
// caches between two visits to this layer.
Napi::Value AttentionBench(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  AttnCall c = attn_args(env, info[0]);
  const int iters = (int)arg_int(info, 1, "attentionBench: iters", 1, 100000);
  const bool cold = info.Length() > 2 && info[2].ToBoolean();
  std::vector<float> out((size_t)c.s.n * c.s.n_head * c.s.hd);
  ThreadPool& pool = hook_pool(env, c.threads);
  // Cold: every cache line of the step's inputs is flushed (clflush) before each timed call, so the
  // KV really comes from memory. (Reading a big array in between is not enough: the last-level
  // cache keeps lines that are reused across such a streaming scan.)
  const auto flush = [](const float* p, size_t n) {
#if defined(__x86_64__)
    const char* b = reinterpret_cast<const char*>(p);
    for (size_t i = 0; i < n * sizeof(float); i += 64) _mm_clflush(b + i);
#else
    (void)p;
    (void)n;
#endif
  };
  const AttnShape& S = c.s;
  const size_t nq = (size_t)S.n * S.n_head * S.hd, nc = (size_t)S.n_kv * S.P * S.hd, nd = (size_t)S.n * S.n_kv * S.D * S.hd;
  attn_run(c, out.data(), pool);
  double best = 1e30;
  for (int i = 0; i < iters; i++) {
    if (cold) {
      flush(c.q, nq);
      flush(out.data(), nq);
      if (c.replicated) {
        flush(c.rk.data(), c.rk.size());
        flush(c.rv.data(), c.rv.size());
      } else {
        flush(c.kc, nc);
        flush(c.vc, nc);
        flush(c.kd, nd);
        flush(c.vd, nd);
      }
#if defined(__x86_64__)
      _mm_mfence();
#endif
    }
    const auto t0 = std::chrono::steady_clock::now();
    attn_run(c, out.data(), pool);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return Napi::Number::New(env, best);
}

// readBandwidth(bytes, threads, iters) -> bytes/second for reading a large array with all threads
// (best of iters): the memory-bandwidth bound that benchmarks compare against.
Napi::Value ReadBandwidth(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const int64_t bytes = arg_int(info, 0, "readBandwidth: bytes", 1 << 20, (int64_t)1 << 34);
  const int threads = (int)arg_int(info, 1, "readBandwidth: threads", 1, 256);
  const int iters = (int)arg_int(info, 2, "readBandwidth: iters", 1, 1000);
  const int64_t n = bytes / (int64_t)sizeof(float);
  std::vector<float> a((size_t)n, 1.f);
  ThreadPool& pool = hook_pool(env, threads);
  std::vector<float> sums((size_t)pool.size() * 16, 0.f);
  double best = 1e30;
  for (int it = 0; it < iters; it++) {
    const auto t0 = std::chrono::steady_clock::now();
    pool.run([&](int ith, int nth) {
      const int64_t b = (n * ith / nth) & ~(int64_t)63, e = (n * (ith + 1) / nth) & ~(int64_t)63;
      sums[(size_t)ith * 16] += sum_floats(a.data() + b, e - b);
    });
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  volatile float sink = sums[0];
  (void)sink;
  return Napi::Number::New(env, (double)n * sizeof(float) / best);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);
  Napi::Function model = ModelWrap::Define(env);
  data->model_ctor = Napi::Persistent(model);
  data->mapped_ctor = Napi::Persistent(MappedFileWrap::Define(env));
  exports.Set("mapFile", Napi::Function::New(env, MapFile, "mapFile"));
  exports.Set("cpuInfo", Napi::Function::New(env, CpuInfo, "cpuInfo"));
  exports.Set("Model", model);
  exports.Set("Context", ContextWrap::Define(env));
  exports.Set("quantize", Napi::Function::New(env, Quantize, "quantize"));
  exports.Set("dequantize", Napi::Function::New(env, Dequantize, "dequantize"));
  exports.Set("matmul", Napi::Function::New(env, Matmul, "matmul"));
  exports.Set("rowStats", Napi::Function::New(env, RowStatsFn, "rowStats"));
  exports.Set("activation", Napi::Function::New(env, ActivationFn, "activation"));
  exports.Set("attention", Napi::Function::New(env, Attention, "attention"));
  exports.Set("attentionBench", Napi::Function::New(env, AttentionBench, "attentionBench"));
  exports.Set("readBandwidth", Napi::Function::New(env, ReadBandwidth, "readBandwidth"));
  return exports;
}

}  // namespace

NODE_API_MODULE(forkcast, Init)
