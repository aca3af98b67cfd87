// Memory read bandwidth probe for the benchmarks' generation bounds (bench/bandwidth.ts compiles it
// at bench time). `threads` pthreads each stream their own slice of one buffer much larger than the
// last-level cache, with several independent accumulators so the loop is bound by loads, not adds;
// prints the best aggregate bytes/s of `trials` runs as one JSON line.
// usage: bwprobe THREADS MIB TRIALS
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __AVX2__
#include <immintrin.h>
#endif

static unsigned char *buf;
static size_t per_thread;
static volatile uint64_t sink;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

// Each thread reads its slice as four quarters side by side, one cache line of each in turn: four
// page streams per thread get more reads in flight than one (here 2 threads: one stream each
// 25.6 GB/s, four each 30+), the pattern the GEMV kernels use, so the bound is one they can reach.
static void *stream(void *arg) {
  const unsigned char *p = buf + (size_t)(uintptr_t)arg * per_thread;
#ifdef __AVX2__
  const __m256i *a = (const __m256i *)p;
  const size_t q = per_thread / 4 / 32;  /* a quarter, in 32-byte vectors (per_thread is a multiple of 128) */
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  for (size_t i = 0; i + 2 <= q; i += 2) {
    s0 = _mm256_add_epi64(s0, _mm256_add_epi64(_mm256_load_si256(a + i), _mm256_load_si256(a + i + 1)));
    s1 = _mm256_add_epi64(s1, _mm256_add_epi64(_mm256_load_si256(a + q + i), _mm256_load_si256(a + q + i + 1)));
    s2 = _mm256_add_epi64(s2, _mm256_add_epi64(_mm256_load_si256(a + 2 * q + i), _mm256_load_si256(a + 2 * q + i + 1)));
    s3 = _mm256_add_epi64(s3, _mm256_add_epi64(_mm256_load_si256(a + 3 * q + i), _mm256_load_si256(a + 3 * q + i + 1)));
  }
  s0 = _mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3));
  sink += (uint64_t)_mm256_extract_epi64(s0, 0);
#else
  const uint64_t *a = (const uint64_t *)p;
  uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  for (size_t i = 0; i + 4 <= per_thread / 8; i += 4) {
    s0 += a[i]; s1 += a[i + 1]; s2 += a[i + 2]; s3 += a[i + 3];
  }
  sink += s0 + s1 + s2 + s3;
#endif
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: bwprobe THREADS MIB TRIALS\n");
    return 2;
  }
  const int threads = atoi(argv[1]), mib = atoi(argv[2]), trials = atoi(argv[3]);
  if (threads < 1 || threads > 256 || mib < 1 || trials < 1) return 2;
  const size_t total = (size_t)mib << 20;
  per_thread = (total / threads) & ~(size_t)127;
  buf = aligned_alloc(64, total);
  if (!buf) return 1;
  for (size_t i = 0; i < total; i++) buf[i] = (unsigned char)(i * 31u);  // real, distinct pages
  pthread_t th[256];
  double best = 0;
  for (int t = 0; t < trials; t++) {
    const double t0 = now_s();
    for (int i = 0; i < threads; i++) pthread_create(&th[i], NULL, stream, (void *)(uintptr_t)i);
    for (int i = 0; i < threads; i++) pthread_join(th[i], NULL);
    const double bw = (double)per_thread * threads / (now_s() - t0);
    if (bw > best) best = bw;
  }
  printf("{\"bytes_per_sec\":%.0f,\"threads\":%d,\"buffer_bytes\":%zu}\n", best, threads, total);
  free(buf);
  return 0;
}
