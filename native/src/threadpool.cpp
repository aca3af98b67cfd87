// Persistent worker threads. A job is published by bumping a generation counter; workers spin on it
// for a short while (a decode step issues hundreds of matmuls back to back, and a futex wake-up costs
// tens of microseconds) and then sleep on a condition variable, so an idle pool costs no CPU on a
// machine shared with the editor.
#include "threadpool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
#else
static inline void cpu_relax() {}
#endif

namespace {
// How long a worker spins for the next job before it sleeps. Long enough to span the gap between two
// decode steps (the JavaScript side samples and queues the next step: 0.1-0.3 ms), since waking a
// sleeping worker costs tens of microseconds per step: on the 31M bundled model that was 15% of a
// token. Idle after a request, a pool spins this long once, then costs nothing.
constexpr auto kSpin = std::chrono::microseconds(400);
// Spin iterations of the thread that waits for the others to finish a job (pause is ~10 ns here).
constexpr int kSpinIters = 1 << 11;
// Set while a thread executes a pool job: a nested run() then executes inline instead of deadlocking.
thread_local bool t_in_job = false;
}  // namespace

struct ThreadPool::Impl {
  int n = 1;
  std::vector<std::thread> workers;
  std::mutex mu;  // guards sleepers and the sleep/wake handshake
  std::condition_variable cv;
  int sleepers = 0;
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> gen{0};
  std::atomic<int> pending{0};
  const std::function<void(int, int)>* job = nullptr;
  std::mutex run_mu;  // one job at a time
  std::mutex err_mu;
  std::exception_ptr err;

  void record(std::exception_ptr e) {
    std::lock_guard<std::mutex> lk(err_mu);
    if (!err) err = e;
  }

  void worker(int ith) {
    uint64_t seen = 0;
    for (;;) {
      const auto until = std::chrono::steady_clock::now() + kSpin;
      for (int spins = 0; gen.load(std::memory_order_acquire) == seen; spins++) {
        cpu_relax();
        if ((spins & 255) == 255 && std::chrono::steady_clock::now() > until) break;
      }
      if (gen.load(std::memory_order_acquire) == seen) {
        std::unique_lock<std::mutex> lk(mu);
        sleepers++;
        cv.wait(lk, [&] { return stop || gen.load(std::memory_order_acquire) != seen; });
        sleepers--;
      }
      if (stop.load()) return;
      seen = gen.load(std::memory_order_acquire);
      t_in_job = true;
      try {
        (*job)(ith, n);
      } catch (...) {
        record(std::current_exception());
      }
      t_in_job = false;
      pending.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
};

ThreadPool::ThreadPool(int threads) : impl_(new Impl) {
  impl_->n = threads < 1 ? 1 : threads;
  for (int i = 1; i < impl_->n; i++) impl_->workers.emplace_back([this, i] { impl_->worker(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop = true;
    impl_->gen.fetch_add(1);
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->workers) t.join();
  delete impl_;
}

int ThreadPool::size() const { return impl_->n; }

void ThreadPool::run(const std::function<void(int ith, int nth)>& fn) {
  Impl& p = *impl_;
  if (p.n == 1 || t_in_job) {  // single thread, or nested inside a job: same result, run inline
    for (int i = 0; i < p.n; i++) fn(i, p.n);
    return;
  }
  std::lock_guard<std::mutex> run_lk(p.run_mu);
  p.err = nullptr;
  p.job = &fn;
  p.pending.store(p.n - 1, std::memory_order_release);
  bool wake;
  {
    std::lock_guard<std::mutex> lk(p.mu);
    p.gen.fetch_add(1, std::memory_order_acq_rel);
    wake = p.sleepers > 0;
  }
  if (wake) p.cv.notify_all();
  t_in_job = true;
  try {
    fn(0, p.n);
  } catch (...) {
    p.record(std::current_exception());
  }
  t_in_job = false;
  for (int spins = 0; p.pending.load(std::memory_order_acquire) != 0; spins++) {
    if (spins < kSpinIters) cpu_relax();
    else std::this_thread::yield();  // a worker was descheduled: give it the core
  }
  p.job = nullptr;
  if (p.err) std::rethrow_exception(p.err);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end)>& fn) {
  if (n <= 0) return;
  run([&](int ith, int nth) {
    const int64_t chunk = (n + nth - 1) / nth;
    const int64_t b = ith * chunk, e = b + chunk < n ? b + chunk : n;
    if (b < e) fn(b, e);
  });
}
