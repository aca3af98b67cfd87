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

// Decodes one row of n elements into y.
void dequantize_row(int32_t type, const void* x, float* y, int64_t n);
// Encodes n floats (n a multiple of the block size) into blocks of `type` (reference quantizer,
// used by the GGUF writer for test and benchmark models).
void quantize_row(int32_t type, const float* x, void* y, int64_t n);
