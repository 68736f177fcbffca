// framework/ops/vec_exp.hpp — e^x over a dense buffer, in place, through xsimd (internal).
//
// About 6x faster than std::exp per element with AVX2 (docs/toolchain.md 3c), which is why the
// softmax-family kernels first write x - max for a whole tensor and then exponentiate it in one pass.
// exp(-inf) is exactly 0 and NaN stays NaN.
//
// Every element goes through the same SIMD exp (a buffer shorter than one register through a zero-padded
// copy; the last partial register of a longer one as an overlapping full register), so an element's
// result depends on its value only, not on its address or its position in the buffer. (The
// earlier xt::noalias(xt::adapt(p)) = xt::exp(...) ran std::exp on the elements before the first aligned
// address and after the last full register: std::exp and xsimd::exp differ in the last bit, so results
// depended on where malloc had put a scratch std::vector, and training the same model twice in one
// process did not give the same parameters; tests/test_determinism.cpp.)
#pragma once
#include <algorithm>
#include <cstdint>

#include <xsimd/xsimd.hpp>

namespace heed::detail {

// p[j] = e^p[j] for j < n.
template <class T>
void exp_inplace(T* p, int64_t n) {
  using batch = xsimd::batch<T>;
  constexpr int64_t width = static_cast<int64_t>(batch::size);
  if (n < width) {
    if (n <= 0) return;
    T padded[width] = {};
    std::copy(p, p + n, padded);
    xsimd::exp(batch::load_unaligned(padded)).store_unaligned(padded);
    std::copy(padded, padded + n, p);
    return;
  }
  // The last register's inputs, read before the loop overwrites them; it then rewrites the elements it
  // shares with the loop's last register with the same values.
  const int64_t full = n - n % width;
  const batch last = batch::load_unaligned(p + n - width);
  for (int64_t j = 0; j < full; j += width) xsimd::exp(batch::load_unaligned(p + j)).store_unaligned(p + j);
  if (full < n) xsimd::exp(last).store_unaligned(p + n - width);
}

// Row kernels exponentiate blocks of whole rows of about this many elements in one exp_inplace pass: row
// by row, short rows would each wait out the SIMD exp's latency; the whole tensor at once would need a
// tensor-sized scratch buffer and leave the cache.
constexpr int64_t kExpBlock = 1024;
// Rows of `n` elements per block (at least one).
inline int64_t rows_per_exp_block(int64_t n) { return std::max<int64_t>(1, kExpBlock / std::max<int64_t>(n, 1)); }

}  // namespace heed::detail
