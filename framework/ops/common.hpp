// framework/ops/common.hpp — internal helpers shared by the op implementations (not installed).
#pragma once
#include <cstdint>
#include <vector>

#include "heed/autograd.hpp"
#include "heed/error.hpp"
#include "heed/tensor.hpp"

namespace heed::detail {

// Calls body.template operator()<T>() with T = float or double for a float dtype; throws otherwise.
#define HEED_DISPATCH_FLOAT(dtype, op, ...)                                                         \
  [&]() {                                                                                         \
    switch (dtype) {                                                                              \
      case ::heed::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }               \
      case ::heed::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }              \
      default:                                                                                    \
        throw ::heed::Error(::fmt::format("{}: expected a Float32 or Float64 tensor, got {}", op,  \
                                          ::heed::dtype_name(dtype)));                            \
    }                                                                                             \
  }()

// Same, for every dtype (Bool as uint8_t).
#define HEED_DISPATCH_ALL(dtype, ...)                                                     \
  [&]() {                                                                               \
    switch (dtype) {                                                                    \
      case ::heed::DType::Float32: { using scalar_t = float; return __VA_ARGS__(); }     \
      case ::heed::DType::Float64: { using scalar_t = double; return __VA_ARGS__(); }    \
      case ::heed::DType::Int64: { using scalar_t = int64_t; return __VA_ARGS__(); }     \
      default: { using scalar_t = uint8_t; return __VA_ARGS__(); }                       \
    }                                                                                   \
  }()

// The most elements a tensor or view may have: 2^48 (of at most 8 bytes each, beyond any address space),
// so that element counts, byte counts, strides and offsets computed from a shape never overflow.
constexpr int64_t kMaxNumel = int64_t{1} << 48;
// The element count of `shape`, checked: throws heed::Error "<op>: ..." for a negative size or when the
// non-zero sizes multiply to more than kMaxNumel (defined in framework/tensor.cpp; every constructor,
// view and file reader goes through it).
int64_t checked_numel(const Shape& shape, const char* op);

// Axis in [-ndim, ndim) -> [0, ndim); throws naming the op otherwise.
int64_t normalize_axis(int64_t axis, int64_t ndim, const char* op);
// The broadcast shape of a and b; throws naming the op and both shapes when they do not broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);
// Strides that read `t` as if it had `shape` (0 on broadcast axes). t.shape must broadcast to shape.
Shape broadcast_strides(const Tensor& t, const Shape& shape);

// Throws unless t is defined and of a float dtype.
void check_float(const Tensor& t, const char* op, const char* arg = "input");
// Throws unless a and b are both float and of the same dtype.
void check_same_float(const Tensor& a, const Tensor& b, const char* op);

// Visits every element position of `shape` in row-major order; for each innermost run calls
// fn(offset_a, offset_b, ..., n, inner_strides...) — see strided_loop2 below. Kept minimal: the
// kernels are plain loops over the innermost axis.
template <class F>
void strided_loop(const Shape& shape, const std::vector<const Shape*>& strides, F&& fn) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  const std::size_t k = strides.size();
  std::vector<int64_t> offs(k, 0);
  if (nd == 0) {
    fn(offs.data(), int64_t(1), offs.data());
    return;
  }
  for (int64_t d = 0; d < nd; ++d)
    if (shape[d] == 0) return;
  std::vector<int64_t> inner(k);
  for (std::size_t j = 0; j < k; ++j) inner[j] = (*strides[j])[nd - 1];
  const int64_t n = shape[nd - 1];
  std::vector<int64_t> idx(nd, 0);
  while (true) {
    fn(offs.data(), n, inner.data());
    int64_t d = nd - 2;
    for (; d >= 0; --d) {
      ++idx[d];
      for (std::size_t j = 0; j < k; ++j) offs[j] += (*strides[j])[d];
      if (idx[d] < shape[d]) break;
      for (std::size_t j = 0; j < k; ++j) offs[j] -= (*strides[j])[d] * shape[d];
      idx[d] = 0;
    }
    if (d < 0) return;
  }
}

// Dense copy of any view into dst (row-major), for every dtype.
void copy_to_dense(const Tensor& src, void* dst);

}  // namespace heed::detail
