// framework/ops/softmax.cpp — softmax, log_softmax, masked_softmax, masked_fill.
//
// The kernels work on contiguous rows: for the last axis (the usual case) x's own dense buffer is
// outer rows of length n; for another axis x is first copied with that axis moved last, and the result
// moved back. A forward pass is (1) per row, subtract the max of the kept entries (masked entries become
// -inf), (2) exponentiate the whole buffer at once through xsimd, (3) per row, normalize. Row loops
// keep eight partial maxima / sums so that they vectorize (ops/row_kernels.hpp).
//
// A row with nothing to attend to — every entry masked, or every entry -inf — gives all-zero
// probabilities and zero gradient instead of NaN (heed's policy, docs/attention-spec.md section 0);
// log_softmax leaves such a row at -inf. A NaN among a row's kept entries makes the whole row NaN.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <utility>

#include "heed/ops.hpp"
#include "ops/common.hpp"
#include "ops/row_kernels.hpp"

namespace heed {
namespace {

using detail::check_float;
using detail::row_sum;

// x seen as [outer, n, inner] around the softmax axis; the kernels see outer * inner rows of length n.
struct Rows {
  int64_t outer = 1, n = 1, inner = 1;
  int64_t count() const { return outer * inner; }
};

Rows rows_along(const Tensor& x, int64_t axis, const char* op) {
  const Shape& s = x.shape();
  const int64_t nd = static_cast<int64_t>(s.size());
  const int64_t a = detail::normalize_axis(axis, nd, op);
  Rows rows;
  if (nd == 0) return rows;  // a 0-d tensor is one row of one entry
  for (int64_t d = 0; d < a; ++d) rows.outer *= s[d];
  rows.n = s[a];
  for (int64_t d = a + 1; d < nd; ++d) rows.inner *= s[d];
  return rows;
}

// t's elements as dense rows: t itself (dense) when the axis is last, else an [outer, inner, n] copy.
Tensor to_rows(const Tensor& t, const Rows& rows) {
  Tensor dense = t.detach().contiguous();
  if (rows.inner == 1) return dense;
  const Shape shape{rows.outer, rows.inner, rows.n};
  Tensor out = make_tensor(shape, t.dtype());
  detail::copy_to_dense(make_view(dense, shape, {rows.n * rows.inner, 1, rows.inner}, dense.offset()),
                        out.impl()->storage->data());
  return out;
}

// Dense rows back to a dense tensor of `shape` (the inverse of to_rows).
Tensor from_rows(Tensor r, const Rows& rows, const Shape& shape) {
  if (rows.inner == 1) return r;
  Tensor out = make_tensor(shape, r.dtype());
  detail::copy_to_dense(make_view(r, {rows.outer, rows.n, rows.inner}, {rows.n * rows.inner, 1, rows.n}, r.offset()),
                        out.impl()->storage->data());
  return out;
}

// `mask` (Bool, broadcastable to `shape`) as a dense Bool tensor of `shape`.
Tensor dense_mask(const Tensor& mask, const Shape& shape, const char* op, const char* arg) {
  HEED_CHECK(mask.defined(), "{}: {} is undefined", op, arg);
  HEED_CHECK(mask.dtype() == DType::Bool, "{}: {} must be Bool, got {} of shape {}", op, arg, dtype_name(mask.dtype()),
             shape_str(mask.shape()));
  HEED_CHECK(detail::broadcast_shapes(mask.shape(), shape, op) == shape,
             "{}: {} of shape {} does not broadcast to the input's shape {}", op, arg, shape_str(mask.shape()),
             shape_str(shape));
  if (mask.shape() == shape) return mask.contiguous();
  Tensor out = make_tensor(shape, DType::Bool);
  out.copy_(mask);
  return out;
}

// Pass 1 on one row: y = x - m, m = the max of the kept entries (all kept when !Masked); masked entries
// become -inf. A row with m = -inf becomes all -inf, or all NaN if a kept entry is NaN.
template <bool Masked, class T>
void shift_row(const T* x, const uint8_t* keep, T* y, int64_t n) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  auto kept = [&](int64_t j) { return !Masked || keep[j] != 0; };
  T part[8] = {neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf, neg_inf};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; ++k) {
      const T v = kept(j + k) ? x[j + k] : neg_inf;
      part[k] = v > part[k] ? v : part[k];  // skips NaN; a NaN still reaches y below
    }
  T m = neg_inf;
  for (; j < n; ++j) {
    const T v = kept(j) ? x[j] : neg_inf;
    m = v > m ? v : m;
  }
  for (int k = 0; k < 8; ++k) m = part[k] > m ? part[k] : m;
  if (m == neg_inf) {
    T fill = neg_inf;
    for (j = 0; j < n; ++j)
      if (kept(j) && x[j] != x[j]) fill = x[j];
    for (j = 0; j < n; ++j) y[j] = fill;
    return;
  }
  for (j = 0; j < n; ++j) y[j] = kept(j) ? x[j] - m : neg_inf;
}

// Forward of softmax and masked_softmax, in row layout: shift, exponentiate, divide by the row sum.
template <class T>
void softmax_rows(const T* x, const uint8_t* keep, T* y, const Rows& rows) {
  const int64_t n = rows.n;
  for (int64_t r = 0; r < rows.count(); ++r) {
    if (keep) shift_row<true>(x + r * n, keep + r * n, y + r * n, n);
    else shift_row<false>(x + r * n, keep, y + r * n, n);
  }
  detail::exp_inplace(y, rows.count() * n);
  for (int64_t r = 0; r < rows.count(); ++r) {
    T* yr = y + r * n;
    const double s = row_sum(yr, n);
    const T inv = s == 0 ? T(0) : static_cast<T>(1.0 / s);  // a row of zeros stays zero; NaN stays NaN
    for (int64_t j = 0; j < n; ++j) yr[j] *= inv;
  }
}

Tensor softmax_forward(const Tensor& x, const Tensor& keep, const Rows& rows) {
  Tensor xr = to_rows(x, rows);
  Tensor y = make_tensor(xr.shape(), x.dtype());
  Tensor keep_rows = keep.defined() ? to_rows(keep, rows) : Tensor();
  HEED_DISPATCH_FLOAT(x.dtype(), "softmax", [&] {
    softmax_rows(xr.data<scalar_t>(), keep.defined() ? keep_rows.data<uint8_t>() : nullptr, y.data<scalar_t>(), rows);
  });
  return y;  // in row layout
}

// dx = y (gy - sum_r gy y) along each row (y in row layout); entries with y == 0 (masked) get exactly 0.
Tensor softmax_backward(const Tensor& gy, const Tensor& y_rows, const Rows& rows) {
  Tensor g = to_rows(gy, rows);
  Tensor dx = make_tensor(y_rows.shape(), y_rows.dtype());
  HEED_DISPATCH_FLOAT(y_rows.dtype(), "softmax", [&] {
    const int64_t n = rows.n;
    for (int64_t r = 0; r < rows.count(); ++r) {
      const scalar_t *yr = y_rows.data<scalar_t>() + r * n, *gr = g.data<scalar_t>() + r * n;
      scalar_t* dr = dx.data<scalar_t>() + r * n;
      double part[8] = {}, dot = 0.0;
      int64_t j = 0;
      for (; j + 8 <= n; j += 8)
        for (int k = 0; k < 8; ++k) part[k] += yr[j + k] != 0 ? static_cast<double>(gr[j + k]) * yr[j + k] : 0.0;
      for (; j < n; ++j) dot += yr[j] != 0 ? static_cast<double>(gr[j]) * yr[j] : 0.0;
      for (int k = 0; k < 8; ++k) dot += part[k];
      const scalar_t d = static_cast<scalar_t>(dot);
      for (j = 0; j < n; ++j) dr[j] = yr[j] != 0 ? yr[j] * (gr[j] - d) : scalar_t(0);
    }
  });
  return dx;
}

}  // namespace

// y = e^(x - m) / sum_r e^(x - m), m = the row max;  dx = y (gy - sum_r gy y)
Tensor softmax(const Tensor& x, int64_t axis) {
  check_float(x, "softmax");
  const Rows rows = rows_along(x, axis, "softmax");
  Tensor y_rows = softmax_forward(x, Tensor(), rows);
  Tensor y = from_rows(y_rows, rows, x.shape());
  record("softmax", y, {x}, [x, y_rows, rows](const Tensor& gy) {
    accumulate_grad(x, from_rows(softmax_backward(gy, y_rows, rows), rows, x.shape()));
  });
  return y;
}

// y = x - m - log sum_r e^(x - m), m = the row max;  dx = gy - e^y sum_r gy
Tensor log_softmax(const Tensor& x, int64_t axis) {
  check_float(x, "log_softmax");
  const Rows rows = rows_along(x, axis, "log_softmax");
  Tensor xr = to_rows(x, rows);
  Tensor y_rows = make_tensor(xr.shape(), x.dtype());
  HEED_DISPATCH_FLOAT(x.dtype(), "log_softmax", [&] {
    scalar_t* py = y_rows.data<scalar_t>();
    const int64_t n = rows.n, count = rows.count();
    for (int64_t r = 0; r < count; ++r)
      shift_row<false>(xr.data<scalar_t>() + r * n, static_cast<const uint8_t*>(nullptr), py + r * n, n);
    // e^(x - m) per block of whole rows (detail::kExpBlock) into a scratch buffer that stays in cache.
    const int64_t block = detail::rows_per_exp_block(n);
    std::vector<scalar_t> e(static_cast<std::size_t>(std::min(block, count) * n));
    for (int64_t r0 = 0; r0 < count; r0 += block) {
      const int64_t block_rows = std::min(block, count - r0);
      std::copy(py + r0 * n, py + (r0 + block_rows) * n, e.begin());
      detail::exp_inplace(e.data(), block_rows * n);
      for (int64_t r = 0; r < block_rows; ++r) {
        const double s = row_sum(e.data() + r * n, n);
        if (s == 0) continue;  // an all -inf row stays -inf
        const scalar_t log_s = static_cast<scalar_t>(std::log(s));
        scalar_t* row = py + (r0 + r) * n;
        for (int64_t j = 0; j < n; ++j) row[j] -= log_s;
      }
    }
  });
  Tensor y = from_rows(y_rows, rows, x.shape());
  record("log_softmax", y, {x}, [x, y_rows, rows](const Tensor& gy) {
    Tensor g = to_rows(gy, rows);
    Tensor dx = make_tensor(y_rows.shape(), y_rows.dtype());
    HEED_DISPATCH_FLOAT(y_rows.dtype(), "log_softmax", [&] {
      scalar_t* pd = dx.data<scalar_t>();
      const scalar_t* pg = g.data<scalar_t>();
      const int64_t n = rows.n, total = rows.count() * n;
      std::memcpy(pd, y_rows.data<scalar_t>(), sizeof(scalar_t) * static_cast<std::size_t>(total));
      detail::exp_inplace(pd, total);  // pd = softmax
      for (int64_t r = 0; r < rows.count(); ++r) {
        const scalar_t gs = static_cast<scalar_t>(row_sum(pg + r * n, n));
        for (int64_t j = 0; j < n; ++j) pd[r * n + j] = pg[r * n + j] - pd[r * n + j] * gs;
      }
    });
    accumulate_grad(x, from_rows(std::move(dx), rows, x.shape()));
  });
  return y;
}

// y = softmax over the kept entries of each row, 0 at masked entries (and for rows with none kept);
// dx = y (gy - sum_r gy y), exactly 0 at masked entries
Tensor masked_softmax(const Tensor& x, const Tensor& keep_mask, int64_t axis) {
  check_float(x, "masked_softmax");
  const Rows rows = rows_along(x, axis, "masked_softmax");
  Tensor keep = dense_mask(keep_mask, x.shape(), "masked_softmax", "keep_mask");
  Tensor y_rows = softmax_forward(x, keep, rows);
  Tensor y = from_rows(y_rows, rows, x.shape());
  record("masked_softmax", y, {x}, [x, y_rows, rows](const Tensor& gy) {
    accumulate_grad(x, from_rows(softmax_backward(gy, y_rows, rows), rows, x.shape()));
  });
  return y;
}

// y = value where mask, else x;  dx = gy where !mask, else 0
Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  HEED_CHECK(x.defined(), "masked_fill: the input is undefined");
  HEED_CHECK(is_floating(x.dtype()) || std::isfinite(value),
             "masked_fill: cannot fill a {} tensor of shape {} with {}", dtype_name(x.dtype()), shape_str(x.shape()),
             value);
  Tensor fill_here = dense_mask(mask, x.shape(), "masked_fill", "mask");
  Tensor y = make_tensor(x.shape(), x.dtype());
  detail::copy_to_dense(x, y.impl()->storage->data());
  HEED_DISPATCH_ALL(x.dtype(), [&] {
    scalar_t v;
    if constexpr (std::is_same_v<scalar_t, uint8_t>) v = value != 0.0;
    else v = static_cast<scalar_t>(value);
    scalar_t* py = y.data<scalar_t>();
    const uint8_t* m = fill_here.data<uint8_t>();
    const int64_t n = y.numel();
    for (int64_t j = 0; j < n; ++j)
      if (m[j]) py[j] = v;
  });
  if (is_floating(x.dtype())) {
    record("masked_fill", y, {x}, [x, fill_here](const Tensor& gy) {
      Tensor g = gy.contiguous();
      Tensor dx = make_tensor(g.shape(), g.dtype());
      HEED_DISPATCH_FLOAT(g.dtype(), "masked_fill", [&] {
        const scalar_t* pg = g.data<scalar_t>();
        const uint8_t* m = fill_here.data<uint8_t>();
        scalar_t* pd = dx.data<scalar_t>();
        for (int64_t j = 0; j < dx.numel(); ++j) pd[j] = m[j] ? scalar_t(0) : pg[j];
      });
      accumulate_grad(x, std::move(dx));
    });
  }
  return y;
}

}  // namespace heed
