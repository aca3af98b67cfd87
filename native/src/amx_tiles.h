// AMX BF16 tiles, shared by the tile kernels of matmul.cpp (prompt-sized products) and attention.cpp
// (prompt attention): whether they may run, the tile shape they all use, and buffer alignment.
#pragma once
#include <cstdint>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && defined(__linux__)
#define FC_AMX_TILES 1
// CPUID leaf 7: EDX bits 24, 25, 22 (AMX-TILE, AMX-INT8, AMX-BF16); leaf 7 subleaf 1: EAX bit 5
// (AVX512_BF16, the conversions); and Linux granted the tile data state. Checked once.
bool amx_bf16_available();
// This thread's tiles: all eight 16 rows x 64 bytes (C, A and B of every BF16 kernel here).
void amx_bf16_configure();
#else
#define FC_AMX_TILES 0
#endif

// Tile rows are 64 bytes: on a 64-byte boundary each is one cache line, off it two (a vector's
// 16-byte-aligned buffer made every tile load twice as slow).
template <class T>
T* align64(T* p) {
  return reinterpret_cast<T*>((reinterpret_cast<uintptr_t>(p) + 63) & ~uintptr_t(63));
}
