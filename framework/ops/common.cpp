// framework/ops/common.cpp — shape helpers shared by the ops.
#include "ops/common.hpp"

#include <algorithm>
#include <cstring>

namespace heed::detail {

int64_t normalize_axis(int64_t axis, int64_t ndim, const char* op) {
  const int64_t lo = -std::max<int64_t>(ndim, 1), hi = std::max<int64_t>(ndim, 1) - 1;
  HEED_CHECK(axis >= lo && axis <= hi, "{}: axis {} is out of range for a tensor with {} axes", op, axis, ndim);
  return axis < 0 ? axis + std::max<int64_t>(ndim, 1) : axis;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const std::size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    HEED_CHECK(da == db || da == 1 || db == 1, "{}: shapes {} and {} do not broadcast", op, shape_str(a),
               shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcast_strides(const Tensor& t, const Shape& shape) {
  const Shape& s = t.shape();
  const Shape& st = t.strides();
  Shape out(shape.size(), 0);
  const std::size_t lead = shape.size() - s.size();
  for (std::size_t i = 0; i < s.size(); ++i) out[lead + i] = s[i] == 1 ? 0 : st[i];
  return out;
}

void check_float(const Tensor& t, const char* op, const char* arg) {
  HEED_CHECK(t.defined(), "{}: {} is undefined", op, arg);
  HEED_CHECK(is_floating(t.dtype()), "{}: {} must be Float32 or Float64, got {} of shape {}", op, arg,
             dtype_name(t.dtype()), shape_str(t.shape()));
}

void check_same_float(const Tensor& a, const Tensor& b, const char* op) {
  check_float(a, op, "the first input");
  check_float(b, op, "the second input");
  HEED_CHECK(a.dtype() == b.dtype(), "{}: inputs differ in dtype: {} {} and {} {}", op, dtype_name(a.dtype()),
             shape_str(a.shape()), dtype_name(b.dtype()), shape_str(b.shape()));
}

void copy_to_dense(const Tensor& src, void* dst) {
  const std::size_t esize = dtype_size(src.dtype());
  const char* base = static_cast<const char*>(src.impl()->storage->data()) + src.offset() * esize;
  if (src.is_contiguous()) {
    std::memcpy(dst, base, static_cast<std::size_t>(src.numel()) * esize);
    return;
  }
  Shape dense = contiguous_strides(src.shape());
  Shape st = src.strides();
  HEED_DISPATCH_ALL(src.dtype(), [&] {
    const scalar_t* s = reinterpret_cast<const scalar_t*>(base);
    scalar_t* d = static_cast<scalar_t*>(dst);
    strided_loop(src.shape(), {&dense, &st}, [&](const int64_t* off, int64_t n, const int64_t* inner) {
      scalar_t* dp = d + off[0];
      const scalar_t* sp = s + off[1];
      if (inner[1] == 1) {
        for (int64_t i = 0; i < n; ++i) dp[i] = sp[i];
      } else {
        for (int64_t i = 0; i < n; ++i) dp[i] = sp[i * inner[1]];
      }
    });
  });
}

}  // namespace heed::detail
