// framework/ops/row_kernels.hpp — loops over one contiguous row shared by softmax.cpp, loss.cpp and
// flash_attention.cpp (internal, not installed).
//
// row_sum and row_max keep eight partial results so that GCC vectorizes them without -ffast-math; the
// third row tool, exp_inplace, comes from ops/vec_exp.hpp.
#pragma once
#include <cstdint>
#include <limits>

#include "ops/vec_exp.hpp"

namespace heed::detail {

// sum_j p[j], accumulated in double.
template <class T>
double row_sum(const T* p, int64_t n) {
  double part[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; ++k) part[k] += p[j + k];
  double s = 0.0;
  for (; j < n; ++j) s += p[j];
  for (int k = 0; k < 8; ++k) s += part[k];
  return s;
}

// max_j p[j] over the entries that are not NaN (-inf for an empty or all-NaN row).
template <class T>
T row_max(const T* p, int64_t n) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  T part[8] = {neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; ++k) part[k] = p[j + k] > part[k] ? p[j + k] : part[k];
  T m = neg_inf;
  for (; j < n; ++j) m = p[j] > m ? p[j] : m;
  for (int k = 0; k < 8; ++k) m = part[k] > m ? part[k] : m;
  return m;
}

}  // namespace heed::detail
