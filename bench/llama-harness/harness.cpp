// A small driver of llama.cpp's C API (include/llama.h), used only by `npm run bench -- peers` to
// give llama.cpp its best chance on the "many candidates from one prompt" row, which node-llama-cpp's
// JS API cannot express (it cannot share one evaluated prompt between sequences).
//
// It links against the llama.cpp shared libraries that node-llama-cpp's prebuilt package ships and
// is compiled at bench time against the headers of that same release (bench/peers.ts does both).
// Only our own code lives here: the calls below follow the documented C API in llama.h.
//
// Modes (one per run; every run prints one JSON line per repetition on stdout):
//   pp   evaluate the first n_prompt tokens as one batch into an empty cache (logits of the last one)
//   tg   decode n_gen tokens one at a time into an empty cache (first token untimed warm-up)
//   par  n_seq candidates of n_gen tokens from one n_prompt-token prompt: the prompt is decoded once
//        on sequence 0 of a unified KV cache, copied to sequences 1..n_seq-1 with llama_memory_seq_cp
//        (cells are shared, not duplicated, in a unified cache), then every step decodes one token of
//        every sequence in a single llama_batch and samples each sequence from its own logits.
//        Sampling (--sampler): "chain" = llama.cpp's own sampler chain per sequence with Forkcast's
//        defaults and order (temperature, top-k, min-p, top-p, then a draw seeded seed+s), or
//        "simple" = a plain draw from softmax(logits/T) over the whole vocabulary (seeded seed+s).
//
// usage: harness --model F --bins DIR --mode pp|tg|par --tokens FILE [--threads 2] [--n-prompt N]
//                [--n-gen N] [--n-seq N] [--reps N] [--temp T] [--seed S] [--fa auto|on|off]
//                [--sampler chain|simple] [--top-k K] [--top-p P] [--min-p P]
#include "llama.h"
#include "ggml-backend.h"

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

struct Args {
  std::string model, bins, mode, tokens;
  int threads = 2, n_prompt = 512, n_gen = 128, n_seq = 16, reps = 1;
  float temp = 0.0f, top_p = 0.95f, min_p = 0.05f;
  int top_k = 40;
  uint64_t seed = 1;
  std::string fa = "auto", sampler = "chain";
};

[[noreturn]] void die(const std::string &msg) {
  std::fprintf(stderr, "harness: %s\n", msg.c_str());
  std::exit(1);
}

Args parse_args(int argc, char **argv) {
  Args a;
  for (int i = 1; i < argc; i++) {
    std::string k = argv[i];
    if (i + 1 >= argc) die("missing value for " + k);
    std::string v = argv[++i];
    if (k == "--model") a.model = v;
    else if (k == "--bins") a.bins = v;
    else if (k == "--mode") a.mode = v;
    else if (k == "--tokens") a.tokens = v;
    else if (k == "--threads") a.threads = std::atoi(v.c_str());
    else if (k == "--n-prompt") a.n_prompt = std::atoi(v.c_str());
    else if (k == "--n-gen") a.n_gen = std::atoi(v.c_str());
    else if (k == "--n-seq") a.n_seq = std::atoi(v.c_str());
    else if (k == "--reps") a.reps = std::atoi(v.c_str());
    else if (k == "--temp") a.temp = std::strtof(v.c_str(), nullptr);
    else if (k == "--seed") a.seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--fa") a.fa = v;
    else if (k == "--sampler") a.sampler = v;
    else if (k == "--top-k") a.top_k = std::atoi(v.c_str());
    else if (k == "--top-p") a.top_p = std::strtof(v.c_str(), nullptr);
    else if (k == "--min-p") a.min_p = std::strtof(v.c_str(), nullptr);
    else die("unknown option " + k);
  }
  if (a.model.empty() || a.bins.empty() || a.mode.empty() || a.tokens.empty()) die("need --model --bins --mode --tokens");
  if (a.threads < 1 || a.n_prompt < 1 || a.n_gen < 1 || a.n_seq < 1 || a.n_seq > 256 || a.reps < 1) die("bad sizes");
  return a;
}

std::vector<llama_token> read_tokens(const std::string &path) {
  std::ifstream f(path);
  if (!f) die("cannot read " + path);
  std::vector<llama_token> out;
  long long t;
  while (f >> t) out.push_back((llama_token)t);
  return out;
}

double now_ms() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// Per-sequence random stream (splitmix64), so candidates are reproducible for a seed.
struct Rng {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  double uniform() { return (next() >> 11) * (1.0 / 9007199254740992.0); }
};

// temperature 0: argmax; otherwise one draw from softmax(logits / temp) over the whole vocabulary.
llama_token sample(const float *logits, int n_vocab, float temp, Rng &rng) {
  int best = 0;
  for (int i = 1; i < n_vocab; i++)
    if (logits[i] > logits[best]) best = i;
  if (temp <= 0.0f) return best;
  const float mx = logits[best], inv_t = 1.0f / temp;
  double sum = 0.0;
  for (int i = 0; i < n_vocab; i++) sum += std::exp((logits[i] - mx) * inv_t);
  double r = rng.uniform() * sum;
  for (int i = 0; i < n_vocab; i++) {
    r -= std::exp((logits[i] - mx) * inv_t);
    if (r <= 0.0) return i;
  }
  return best;
}

// llama.cpp's sampler chain for one sequence, in the order Forkcast's sampler applies the same knobs.
llama_sampler *make_chain(const Args &a, uint32_t seed) {
  llama_sampler *c = llama_sampler_chain_init(llama_sampler_chain_default_params());
  if (a.temp <= 0.0f) {
    llama_sampler_chain_add(c, llama_sampler_init_greedy());
    return c;
  }
  llama_sampler_chain_add(c, llama_sampler_init_temp(a.temp));
  if (a.top_k > 0) llama_sampler_chain_add(c, llama_sampler_init_top_k(a.top_k));
  if (a.min_p > 0.0f) llama_sampler_chain_add(c, llama_sampler_init_min_p(a.min_p, 1));
  if (a.top_p < 1.0f) llama_sampler_chain_add(c, llama_sampler_init_top_p(a.top_p, 1));
  llama_sampler_chain_add(c, llama_sampler_init_dist(seed));
  return c;
}

void batch_add(llama_batch &b, llama_token tok, llama_pos pos, llama_seq_id seq, bool logits) {
  const int i = b.n_tokens++;
  b.token[i] = tok;
  b.pos[i] = pos;
  b.n_seq_id[i] = 1;
  b.seq_id[i][0] = seq;
  b.logits[i] = logits ? 1 : 0;
}

void quiet_log(enum ggml_log_level level, const char *text, void *) {
  if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr);
}

}  // namespace

int main(int argc, char **argv) {
  const Args a = parse_args(argc, argv);
  const std::vector<llama_token> toks = read_tokens(a.tokens);

  llama_log_set(quiet_log, nullptr);
  // The CPU backend ships as several libggml-cpu-<isa>.so variants; loading from the bins directory
  // lets ggml pick the best one for this CPU, as node-llama-cpp does.
  ggml_backend_load_all_from_path(a.bins.c_str());
  llama_backend_init();

  llama_model_params mp = llama_model_default_params();
  mp.n_gpu_layers = 0;
  llama_model *model = llama_model_load_from_file(a.model.c_str(), mp);
  if (!model) die("cannot load model " + a.model);
  const llama_vocab *vocab = llama_model_get_vocab(model);
  const int n_vocab = llama_vocab_n_tokens(vocab);

  const bool par = a.mode == "par";
  const int need_prompt = a.mode == "tg" ? a.n_gen + 1 : a.n_prompt;
  if ((int)toks.size() < need_prompt) die("token file too short");

  llama_context_params cp = llama_context_default_params();
  const int n_ctx = par ? a.n_prompt + a.n_seq * a.n_gen + 256 : need_prompt + 256;
  cp.n_ctx = (uint32_t)n_ctx;
  cp.n_batch = (uint32_t)std::max(a.n_prompt, 512);
  cp.n_ubatch = 512;
  cp.n_seq_max = par ? (uint32_t)a.n_seq : 1;
  cp.kv_unified = true;  // one buffer for all sequences: the copied prompt cells are shared
  cp.n_threads = a.threads;
  cp.n_threads_batch = a.threads;
  cp.no_perf = true;
  cp.flash_attn_type = a.fa == "on" ? LLAMA_FLASH_ATTN_TYPE_ENABLED
                       : a.fa == "off" ? LLAMA_FLASH_ATTN_TYPE_DISABLED
                                       : LLAMA_FLASH_ATTN_TYPE_AUTO;
  llama_context *ctx = llama_init_from_model(model, cp);
  if (!ctx) die("cannot create context");
  llama_memory_t mem = llama_get_memory(ctx);

  llama_batch batch = llama_batch_init(std::max(a.n_prompt, a.n_seq), 0, 1);
  auto decode = [&](const char *what) {
    if (llama_decode(ctx, batch) != 0) die(std::string("llama_decode failed in ") + what);
  };

  for (int rep = 0; rep < a.reps; rep++) {
    llama_memory_clear(mem, true);
    if (a.mode == "pp") {
      batch.n_tokens = 0;
      for (int i = 0; i < a.n_prompt; i++) batch_add(batch, toks[i], i, 0, i == a.n_prompt - 1);
      const double t0 = now_ms();
      decode("pp");
      llama_synchronize(ctx);
      const double ms = now_ms() - t0;
      std::printf("{\"mode\":\"pp\",\"rep\":%d,\"tokens\":%d,\"ms\":%.3f}\n", rep, a.n_prompt, ms);
    } else if (a.mode == "tg") {
      // Positions 0..n_gen: token 0 warms up, tokens 1..n_gen are timed, one decode each.
      Rng rng{a.seed};
      batch.n_tokens = 0;
      batch_add(batch, toks[0], 0, 0, true);
      decode("tg warm-up");
      const double t0 = now_ms();
      for (int i = 1; i <= a.n_gen; i++) {
        batch.n_tokens = 0;
        batch_add(batch, toks[i], i, 0, true);
        decode("tg");
        (void)sample(llama_get_logits_ith(ctx, 0), n_vocab, 0.0f, rng);  // read the logits, as a generator must
      }
      const double ms = now_ms() - t0;
      std::printf("{\"mode\":\"tg\",\"rep\":%d,\"tokens\":%d,\"ms\":%.3f}\n", rep, a.n_gen, ms);
    } else if (par) {
      const bool chain = a.sampler == "chain";
      std::vector<Rng> rngs;
      std::vector<llama_sampler *> chains;
      for (int s = 0; s < a.n_seq; s++) {
        rngs.push_back(Rng{a.seed + (uint64_t)s});
        if (chain) chains.push_back(make_chain(a, (uint32_t)(a.seed + s)));
      }
      // idx = the batch row whose logits sequence s samples from.
      auto pick = [&](int s, int idx) -> llama_token {
        if (chain) return llama_sampler_sample(chains[s], ctx, idx);
        return sample(llama_get_logits_ith(ctx, idx), n_vocab, a.temp, rngs[s]);
      };
      const double t0 = now_ms();
      batch.n_tokens = 0;
      for (int i = 0; i < a.n_prompt; i++) batch_add(batch, toks[i], i, 0, i == a.n_prompt - 1);
      decode("par prompt");
      for (int s = 1; s < a.n_seq; s++) llama_memory_seq_cp(mem, 0, s, -1, -1);
      // Every candidate draws its first token from the same last-position logits.
      std::vector<llama_token> next(a.n_seq);
      for (int s = 0; s < a.n_seq; s++) next[s] = pick(s, a.n_prompt - 1);
      const double t1 = now_ms();
      long long first_differs = 0;
      for (int s = 0; s < a.n_seq; s++) first_differs += next[s] != next[0];
      // n_gen tokens per candidate: the first came from the prompt's logits, n_gen-1 batched decode
      // steps give the rest (the last sampled token is not decoded: nothing would read its logits).
      for (int step = 1; step < a.n_gen; step++) {
        batch.n_tokens = 0;
        for (int s = 0; s < a.n_seq; s++) batch_add(batch, next[s], a.n_prompt + step - 1, s, true);
        decode("par step");
        for (int s = 0; s < a.n_seq; s++) next[s] = pick(s, s);
      }
      const double t2 = now_ms();
      for (llama_sampler *c : chains) llama_sampler_free(c);
      std::printf("{\"mode\":\"par\",\"rep\":%d,\"n_seq\":%d,\"n_prompt\":%d,\"n_gen\":%d,\"prefill_ms\":%.3f,"
                  "\"decode_ms\":%.3f,\"total_ms\":%.3f,\"decode_steps\":%d,\"first_differs\":%lld,\"sampler\":\"%s\"}\n",
                  rep, a.n_seq, a.n_prompt, a.n_gen, t1 - t0, t2 - t1, t2 - t0, a.n_gen - 1, first_differs, a.sampler.c_str());
    } else {
      die("unknown mode " + a.mode);
    }
    std::fflush(stdout);
  }

  llama_batch_free(batch);
  llama_free(ctx);
  llama_model_free(model);
  llama_backend_free();
  return 0;
}
