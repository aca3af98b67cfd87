// A weight tensor as the forward pass sees it: a pointer into the memory-mapped GGUF file.
// GGUF/ggml convention: ne0 is the row length (input features), ne1 the number of rows (outputs).
#pragma once
#include <cstddef>
#include <cstdint>

// ggml type ids, as stored in GGUF tensor infos (ggml.h `enum ggml_type`).
enum GgmlType : int32_t {
  GGML_F32 = 0,
  GGML_F16 = 1,
  GGML_Q4_0 = 2,
  GGML_Q8_0 = 8,
  GGML_Q4_K = 12,
  GGML_Q5_K = 13,
  GGML_Q6_K = 14,
  GGML_BF16 = 30,
};

struct Tensor {
  const uint8_t* data = nullptr;  // nullptr = absent (optional bias, tied output, ...)
  int32_t type = GGML_F32;
  int64_t ne0 = 0;  // row length
  int64_t ne1 = 1;  // rows
  explicit operator bool() const { return data != nullptr; }
};
