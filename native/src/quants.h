// Block formats of the quantized ggml types: one struct per type, its size asserted, the decoding
// formula above it. Layouts follow ggml's `ggml-common.h` (the GGUF on-disk format).
#pragma once
#include <cstddef>
#include <cstdint>
#include "tensor.h"

// Elements per block and bytes per block for a type; 0 when the type is unsupported.
int64_t ggml_block_size(int32_t type);
int64_t ggml_type_size(int32_t type);
const char* ggml_type_name(int32_t type);
// Bytes of one row of n elements (n must be a multiple of the block size).
int64_t ggml_row_size(int32_t type, int64_t n);

float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);  // round to nearest even, NaN kept quiet

// ---- Block layouts (ggml/src/ggml-common.h, ggml-org/llama.cpp; the GGUF on-disk format) ----
// Multi-byte fields are little-endian, as GGUF stores them on every platform we target.
constexpr int QK8_0 = 32;
constexpr int QK4_0 = 32;
constexpr int QK_K = 256;  // K-quant super-block
constexpr int K_SCALE_SIZE = 12;

// Q8_0: x[i] = d * qs[i].
struct block_q8_0 {
  uint16_t d;  // fp16
  int8_t qs[QK8_0];
};
static_assert(sizeof(block_q8_0) == 34, "block_q8_0 is 34 bytes");

// Q4_0: element j < 16 is the low nibble of qs[j], element j + 16 the high nibble of qs[j];
// x = (q - 8) * d.
struct block_q4_0 {
  uint16_t d;
  uint8_t qs[QK4_0 / 2];
};
static_assert(sizeof(block_q4_0) == 18, "block_q4_0 is 18 bytes");

// Q4_K: 8 sub-blocks of 32 with a 6-bit scale sc_j and 6-bit min m_j packed into scales[12]
// (j < 4: sc = scales[j] & 63, m = scales[j+4] & 63; j >= 4: sc = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4,
//  m = (scales[j+4] >> 4) | (scales[j] >> 6) << 4). Elements come in chunks of 64: chunk c uses
// qs[32c .. 32c+31], its first 32 elements are the low nibbles (sub-block 2c), the next 32 the high
// nibbles (sub-block 2c+1). x = d * sc_j * q - dmin * m_j.
struct block_q4_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q4_K) == 144, "block_q4_K is 144 bytes");

// Q5_K: as Q4_K plus a fifth bit: element 64c + l (l < 32) adds 16 if qh[l] bit 2c is set,
// element 64c + 32 + l if qh[l] bit 2c+1 is set.
struct block_q5_K {
  uint16_t d;
  uint16_t dmin;
  uint8_t scales[K_SCALE_SIZE];
  uint8_t qh[QK_K / 8];
  uint8_t qs[QK_K / 2];
};
static_assert(sizeof(block_q5_K) == 176, "block_q5_K is 176 bytes");

// Q6_K: 16 sub-blocks of 16 with int8 scales; x = d * scales[e / 16] * (q - 32), q 6 bits.
// Halves of 128: for half h and l < 32, the four elements 128h + l + 32k (k = 0..3) take their low
// 4 bits from ql[64h + l] (k=0 low nibble, k=2 high nibble) and ql[64h + 32 + l] (k=1 low, k=3 high),
// and their top 2 bits from qh[32h + l] bits 2k..2k+1.
struct block_q6_K {
  uint8_t ql[QK_K / 2];
  uint8_t qh[QK_K / 4];
  int8_t scales[QK_K / 16];
  uint16_t d;
};
static_assert(sizeof(block_q6_K) == 210, "block_q6_K is 210 bytes");

// Decodes the 6-bit scale and min of sub-block j (0..7) of a Q4_K/Q5_K block.
inline void kquant_scale_min(int j, const uint8_t* s, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = s[j] & 63;
    *m = s[j + 4] & 63;
  } else {
    *sc = (s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4);
    *m = (s[j + 4] >> 4) | ((s[j] >> 6) << 4);
  }
}

// Decodes one row of n elements into y.
void dequantize_row(int32_t type, const void* x, float* y, int64_t n);
// Encodes n floats (n a multiple of the block size) into blocks of `type` (reference quantizer,
// used by the GGUF writer for test and benchmark models).
void quantize_row(int32_t type, const float* x, void* y, int64_t n);
// The same, split over the pool's threads by whole blocks (identical bytes): for building large
// benchmark models, where the K-quant scale search costs about 0.1 us per element per thread.
class ThreadPool;
void quantize_row_parallel(int32_t type, const float* x, void* y, int64_t n, ThreadPool& pool);
