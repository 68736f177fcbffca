// framework/ops/reduce.cpp — sum, mean, max, min, argmax, argmin, logsumexp, var.
//
// Every reduction sees its input as a dense [outer, reduced, inner] block: outer = the product of the
// kept axes before the reduced ones, reduced = the product of the reduced axes, inner = the product of
// the kept axes after them. When the reduced axes are adjacent that is x's own row-major layout (no copy
// for a dense x); otherwise x is first copied with its kept axes moved to the front and the reduced ones
// to the back (inner = 1). Either way the result, in [outer, inner] order, lists the kept axes in their
// original order. Kernels are plain loops: with inner == 1 each output reduces one contiguous row; with
// inner > 1 a row of `inner` accumulators walks down the reduced rows (both vectorize). Backwards fill a
// block of the same layout and move it back to x's shape.
//
// Float32 sums accumulate in double. Sums of Int64 or Bool tensors give Int64 (count a mask with sum).
// An empty `axes` list reduces every axis, as in PyTorch.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>

#include "heed/ops.hpp"
#include "ops/common.hpp"

namespace heed {
namespace {

using detail::check_float;

struct ReducePlan {
  Shape in_shape;
  Shape out_shape;    // the result's shape: reduced axes dropped, or kept with size 1 (keepdim)
  Shape block_shape;  // in_shape in plan order (in_shape itself when perm is empty)
  int64_t outer = 1, reduced = 1, inner = 1;
  std::vector<int64_t> perm;  // kept axes then reduced axes; empty when the reduced axes are adjacent
};

ReducePlan plan_reduction(const Shape& shape, const std::vector<int64_t>& axes, bool keepdim, const char* op) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  ReducePlan p;
  p.in_shape = p.block_shape = shape;
  std::vector<bool> is_reduced(static_cast<std::size_t>(nd), axes.empty());
  for (int64_t axis : axes) {
    const int64_t a = detail::normalize_axis(axis, nd, op);
    if (nd == 0) continue;  // axis 0 / -1 of a 0-d tensor: nothing to reduce
    HEED_CHECK(!is_reduced[a], "{}: axis {} appears more than once in the axes {} (tensor of shape {})", op, a,
               shape_str(axes), shape_str(shape));
    is_reduced[a] = true;
  }
  int64_t first = -1, last = -1;
  for (int64_t d = 0; d < nd; ++d) {
    if (!is_reduced[d]) continue;
    if (first < 0) first = d;
    last = d;
  }
  bool adjacent = true;
  for (int64_t d = first; d >= 0 && d <= last; ++d) adjacent = adjacent && is_reduced[d];
  if (first < 0) {
    // nothing reduced (a 0-d tensor): one element in, one out
  } else if (adjacent) {
    for (int64_t d = 0; d < first; ++d) p.outer *= shape[d];
    for (int64_t d = first; d <= last; ++d) p.reduced *= shape[d];
    for (int64_t d = last + 1; d < nd; ++d) p.inner *= shape[d];
  } else {
    for (int64_t d = 0; d < nd; ++d)
      if (!is_reduced[d]) { p.perm.push_back(d); p.outer *= shape[d]; }
    for (int64_t d = 0; d < nd; ++d)
      if (is_reduced[d]) { p.perm.push_back(d); p.reduced *= shape[d]; }
    p.block_shape.clear();
    for (int64_t d : p.perm) p.block_shape.push_back(shape[d]);
  }
  for (int64_t d = 0; d < nd; ++d) {
    if (!is_reduced[d]) p.out_shape.push_back(shape[d]);
    else if (keepdim) p.out_shape.push_back(1);
  }
  return p;
}

// x's elements in plan order, dense (x's own buffer when it is dense and needs no permutation).
Tensor to_plan_order(const Tensor& x, const ReducePlan& p) {
  Tensor xd = x.detach();
  if (p.perm.empty()) return xd.contiguous();
  Shape strides;
  for (int64_t d : p.perm) strides.push_back(x.strides()[d]);
  Tensor out = make_tensor(p.block_shape, x.dtype());
  detail::copy_to_dense(make_view(xd, p.block_shape, strides, x.offset()), out.impl()->storage->data());
  return out;
}

// A dense block of block_shape (plan order) back to a dense tensor of in_shape.
Tensor from_plan_order(Tensor block, const ReducePlan& p) {
  if (p.perm.empty()) return block;
  Tensor out = make_tensor(p.in_shape, block.dtype());
  const Shape dense = contiguous_strides(p.in_shape);
  Shape strides;
  for (int64_t d : p.perm) strides.push_back(dense[d]);
  make_view(out, p.block_shape, strides, 0).copy_(block);
  return out;
}

void check_not_empty(const ReducePlan& p, const char* op) {
  HEED_CHECK(p.reduced > 0, "{}: cannot reduce over zero elements (input shape {})", op, shape_str(p.in_shape));
}

// ---- sum and mean ------------------------------------------------------------------------------------

// Sum of a contiguous row with eight partial accumulators (vectorizes; also more accurate).
template <class Acc, class T>
Acc row_sum(const T* p, int64_t n) {
  Acc part[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; ++k) part[k] += static_cast<Acc>(p[j + k]);
  Acc s = 0;
  for (; j < n; ++j) s += static_cast<Acc>(p[j]);
  for (int k = 0; k < 8; ++k) s += part[k];
  return s;
}

// y[o, i] = scale * sum_r x[o, r, i]
template <class Acc, class T, class Out>
void sum_kernel(const T* x, Out* y, const ReducePlan& p, Acc scale) {
  const int64_t n = p.reduced, inner = p.inner;
  if (inner == 1) {
    for (int64_t o = 0; o < p.outer; ++o) y[o] = static_cast<Out>(row_sum<Acc>(x + o * n, n) * scale);
    return;
  }
  std::vector<Acc> acc(static_cast<std::size_t>(inner));
  for (int64_t o = 0; o < p.outer; ++o) {
    std::fill(acc.begin(), acc.end(), Acc(0));
    const T* block = x + o * n * inner;
    for (int64_t r = 0; r < n; ++r) {
      const T* row = block + r * inner;
      for (int64_t i = 0; i < inner; ++i) acc[i] += static_cast<Acc>(row[i]);
    }
    for (int64_t i = 0; i < inner; ++i) y[o * inner + i] = static_cast<Out>(acc[i] * scale);
  }
}

// dx[o, r, i] = scale * gy[o, i], in x's shape (the backward of sum and mean).
Tensor spread_back(const Tensor& gy, const ReducePlan& p, double scale) {
  Tensor g = gy.contiguous();
  Tensor block = make_tensor(p.block_shape, g.dtype());
  HEED_DISPATCH_FLOAT(g.dtype(), "sum", [&] {
    const scalar_t* gp = g.data<scalar_t>();
    scalar_t* d = block.data<scalar_t>();
    const scalar_t s = static_cast<scalar_t>(scale);
    const int64_t n = p.reduced, inner = p.inner;
    for (int64_t o = 0; o < p.outer; ++o) {
      scalar_t* out = d + o * n * inner;
      if (inner == 1) {
        std::fill(out, out + n, gp[o] * s);
        continue;
      }
      const scalar_t* go = gp + o * inner;
      for (int64_t r = 0; r < n; ++r)
        for (int64_t i = 0; i < inner; ++i) out[r * inner + i] = go[i] * s;
    }
  });
  return from_plan_order(std::move(block), p);
}

// y = sum over the plan's axes (times 1/reduced for mean);  dx[o, r, i] = gy[o, i] (times 1/reduced)
Tensor sum_or_mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim, bool mean) {
  const char* op = mean ? "mean" : "sum";
  HEED_CHECK(x.defined(), "{}: the input is undefined", op);
  const ReducePlan p = plan_reduction(x.shape(), axes, keepdim, op);
  Tensor xb = to_plan_order(x, p);
  if (!is_floating(x.dtype())) {
    HEED_CHECK(!mean, "mean: expected a Float32 or Float64 tensor, got {} of shape {}", dtype_name(x.dtype()),
               shape_str(x.shape()));
    Tensor y = make_tensor(p.out_shape, DType::Int64);
    if (x.dtype() == DType::Bool) sum_kernel<int64_t>(xb.data<uint8_t>(), y.data<int64_t>(), p, int64_t(1));
    else sum_kernel<int64_t>(xb.data<int64_t>(), y.data<int64_t>(), p, int64_t(1));
    return y;
  }
  const double scale = mean ? 1.0 / static_cast<double>(p.reduced) : 1.0;  // mean of nothing: 0 * inf = NaN
  Tensor y = make_tensor(p.out_shape, x.dtype());
  HEED_DISPATCH_FLOAT(x.dtype(), op, [&] { sum_kernel<double>(xb.data<scalar_t>(), y.data<scalar_t>(), p, scale); });
  record(op, y, {x}, [x, p, scale](const Tensor& gy) { accumulate_grad(x, spread_back(gy, p, scale)); });
  return y;
}

// ---- max, min, argmax, argmin ------------------------------------------------------------------------

// Whether v replaces the current best: larger (or smaller); a NaN beats any number, so NaN propagates.
template <bool Max, class T>
bool beats(T v, T best) {
  if constexpr (std::is_floating_point_v<T>) {
    if (v != v) return best == best;
  }
  return Max ? v > best : v < best;
}

// The largest (smallest) entry of a contiguous row and its first position (the first NaN if any). Two
// branch-free passes, eight partial extremes in the first, so both vectorize.
template <bool Max, class T>
void best_in_row(const T* x, int64_t n, T& best, int64_t& at) {
  auto pick = [](T a, T b) { return Max ? (b > a ? b : a) : (b < a ? b : a); };
  T part[8];
  for (int k = 0; k < 8; ++k) part[k] = x[0];
  int nan_seen = 0;
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int k = 0; k < 8; ++k) {
      part[k] = pick(part[k], x[j + k]);
      nan_seen |= x[j + k] != x[j + k];
    }
  T b = x[0];
  for (; j < n; ++j) {
    b = pick(b, x[j]);
    nan_seen |= x[j] != x[j];
  }
  for (int k = 0; k < 8; ++k) b = pick(b, part[k]);
  for (at = 0; at < n; ++at)
    if (nan_seen ? x[at] != x[at] : x[at] == b) break;
  best = x[at];
}

// best[o, i] = the largest (smallest) of x[o, :, i]; at[o, i] = its first position along the reduced axis.
template <bool Max, class T>
void best_kernel(const T* x, T* best, int64_t* at, const ReducePlan& p) {
  const int64_t n = p.reduced, inner = p.inner;
  if (inner == 1) {
    for (int64_t o = 0; o < p.outer; ++o) best_in_row<Max>(x + o * n, n, best[o], at[o]);
    return;
  }
  for (int64_t o = 0; o < p.outer; ++o) {
    const T* block = x + o * n * inner;
    T* b = best + o * inner;
    int64_t* k = at + o * inner;
    for (int64_t i = 0; i < inner; ++i) { b[i] = block[i]; k[i] = 0; }
    for (int64_t r = 1; r < n; ++r) {
      const T* row = block + r * inner;
      for (int64_t i = 0; i < inner; ++i) {
        if (beats<Max>(row[i], b[i])) { b[i] = row[i]; k[i] = r; }
      }
    }
  }
}

struct BestResult {
  Tensor values;   // x's dtype, plan.out_shape
  Tensor indices;  // Int64, plan.out_shape
  ReducePlan plan;
};

BestResult best_along(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim, bool take_max, const char* op) {
  HEED_CHECK(x.defined(), "{}: the input is undefined", op);
  HEED_CHECK(x.dtype() != DType::Bool, "{}: expected a Float32, Float64 or Int64 tensor, got Bool of shape {}", op,
             shape_str(x.shape()));
  BestResult r;
  r.plan = plan_reduction(x.shape(), axes, keepdim, op);
  check_not_empty(r.plan, op);
  Tensor xb = to_plan_order(x, r.plan);
  r.values = make_tensor(r.plan.out_shape, x.dtype());
  r.indices = make_tensor(r.plan.out_shape, DType::Int64);
  HEED_DISPATCH_ALL(x.dtype(), [&] {
    if constexpr (!std::is_same_v<scalar_t, uint8_t>) {
      if (take_max) best_kernel<true>(xb.data<scalar_t>(), r.values.data<scalar_t>(), r.indices.data<int64_t>(), r.plan);
      else best_kernel<false>(xb.data<scalar_t>(), r.values.data<scalar_t>(), r.indices.data<int64_t>(), r.plan);
    }
  });
  return r;
}

// y = max over all of x;  dx = gy / k at each of the k elements equal to y (ties share), 0 elsewhere
Tensor best_of_all(const Tensor& x, bool take_max, const char* op) {
  BestResult r = best_along(x, {}, false, take_max, op);
  Tensor y = r.values;
  record(op, y, {x}, [x, y](const Tensor& gy) {
    Tensor xd = x.detach().contiguous();
    Tensor dx = make_tensor(x.shape(), x.dtype());
    HEED_DISPATCH_FLOAT(x.dtype(), "max", [&] {
      const scalar_t* px = xd.data<scalar_t>();
      scalar_t* d = dx.data<scalar_t>();
      const scalar_t best = y.data<scalar_t>()[0];
      const int64_t n = xd.numel();
      auto is_best = [best](scalar_t v) { return v == best || (v != v && best != best); };
      int64_t ties = 0;
      for (int64_t j = 0; j < n; ++j) ties += is_best(px[j]) ? 1 : 0;
      const scalar_t share = gy.contiguous().data<scalar_t>()[0] / static_cast<scalar_t>(ties);
      for (int64_t j = 0; j < n; ++j) d[j] = is_best(px[j]) ? share : scalar_t(0);
    });
    accumulate_grad(x, std::move(dx));
  });
  return y;
}

// y[o, i] = max_r x[o, r, i];  dx[o, r, i] = gy[o, i] at the first maximum r, 0 elsewhere
Tensor best_on_axis(const Tensor& x, int64_t axis, bool keepdim, bool take_max, const char* op) {
  BestResult r = best_along(x, {axis}, keepdim, take_max, op);
  Tensor y = r.values;
  record(op, y, {x}, [x, at = r.indices, p = r.plan](const Tensor& gy) {
    Tensor g = gy.contiguous();
    Tensor block = zeros(p.block_shape, g.dtype());
    HEED_DISPATCH_FLOAT(g.dtype(), "max", [&] {
      const scalar_t* gp = g.data<scalar_t>();
      const int64_t* k = at.data<int64_t>();
      scalar_t* d = block.data<scalar_t>();
      for (int64_t o = 0; o < p.outer; ++o)
        for (int64_t i = 0; i < p.inner; ++i) {
          const int64_t j = o * p.inner + i;
          d[(o * p.reduced + k[j]) * p.inner + i] = gp[j];
        }
    });
    accumulate_grad(x, from_plan_order(std::move(block), p));
  });
  return y;
}

// ---- logsumexp ---------------------------------------------------------------------------------------

// y[o, i] = m + log sum_r e^(x[o, r, i] - m), m = max_r x[o, r, i]; y = m when m is +-inf (or NaN).
template <class T>
void logsumexp_kernel(const T* x, T* y, const ReducePlan& p) {
  const int64_t n = p.reduced, inner = p.inner;
  std::vector<T> m(static_cast<std::size_t>(inner));
  std::vector<double> s(static_cast<std::size_t>(inner));
  for (int64_t o = 0; o < p.outer; ++o) {
    const T* block = x + o * n * inner;
    std::fill(m.begin(), m.end(), -std::numeric_limits<T>::infinity());
    std::fill(s.begin(), s.end(), 0.0);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < inner; ++i)
        if (beats<true>(block[r * inner + i], m[i])) m[i] = block[r * inner + i];
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < inner; ++i)
        if (std::isfinite(m[i])) s[i] += std::exp(static_cast<double>(block[r * inner + i] - m[i]));
    for (int64_t i = 0; i < inner; ++i)
      y[o * inner + i] = std::isfinite(m[i]) ? static_cast<T>(m[i] + std::log(s[i])) : m[i];
  }
}

// ---- var ---------------------------------------------------------------------------------------------

// mean[o, i] = sum_r x[o, r, i] / N;  y[o, i] = sum_r (x[o, r, i] - mean[o, i])^2 / max(N - correction, 0)
template <class T>
void var_kernel(const T* x, T* y, T* mean, const ReducePlan& p, double divisor) {
  sum_kernel<double>(x, mean, p, 1.0 / static_cast<double>(p.reduced));
  const int64_t n = p.reduced, inner = p.inner;
  std::vector<double> acc(static_cast<std::size_t>(inner));
  for (int64_t o = 0; o < p.outer; ++o) {
    const T* block = x + o * n * inner;
    const T* mu = mean + o * inner;
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t r = 0; r < n; ++r)
      for (int64_t i = 0; i < inner; ++i) {
        const double dev = static_cast<double>(block[r * inner + i]) - static_cast<double>(mu[i]);
        acc[i] += dev * dev;
      }
    for (int64_t i = 0; i < inner; ++i) y[o * inner + i] = static_cast<T>(acc[i] / divisor);
  }
}

}  // namespace

Tensor sum(const Tensor& x) { return sum_or_mean(x, {}, false, false); }
Tensor sum(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) { return sum_or_mean(x, axes, keepdim, false); }
Tensor mean(const Tensor& x) { return sum_or_mean(x, {}, false, true); }
Tensor mean(const Tensor& x, const std::vector<int64_t>& axes, bool keepdim) { return sum_or_mean(x, axes, keepdim, true); }

Tensor max(const Tensor& x) { return best_of_all(x, true, "max"); }
Tensor min(const Tensor& x) { return best_of_all(x, false, "min"); }
Tensor max(const Tensor& x, int64_t axis, bool keepdim) { return best_on_axis(x, axis, keepdim, true, "max"); }
Tensor min(const Tensor& x, int64_t axis, bool keepdim) { return best_on_axis(x, axis, keepdim, false, "min"); }
Tensor argmax(const Tensor& x, int64_t axis, bool keepdim) { return best_along(x, {axis}, keepdim, true, "argmax").indices; }
Tensor argmin(const Tensor& x, int64_t axis, bool keepdim) { return best_along(x, {axis}, keepdim, false, "argmin").indices; }

// y = log sum_r e^x (stable, see logsumexp_kernel);  dx[o, r, i] = gy[o, i] e^(x[o, r, i] - y[o, i])
Tensor logsumexp(const Tensor& x, int64_t axis, bool keepdim) {
  check_float(x, "logsumexp");
  const ReducePlan p = plan_reduction(x.shape(), {axis}, keepdim, "logsumexp");
  Tensor xb = to_plan_order(x, p);
  Tensor y = make_tensor(p.out_shape, x.dtype());
  HEED_DISPATCH_FLOAT(x.dtype(), "logsumexp", [&] { logsumexp_kernel(xb.data<scalar_t>(), y.data<scalar_t>(), p); });
  record("logsumexp", y, {x}, [x, xb, y, p](const Tensor& gy) {
    Tensor g = gy.contiguous();
    Tensor block = make_tensor(p.block_shape, g.dtype());
    HEED_DISPATCH_FLOAT(g.dtype(), "logsumexp", [&] {
      const scalar_t *px = xb.data<scalar_t>(), *py = y.data<scalar_t>(), *gp = g.data<scalar_t>();
      scalar_t* d = block.data<scalar_t>();
      const int64_t n = p.reduced, inner = p.inner;
      for (int64_t o = 0; o < p.outer; ++o)
        for (int64_t r = 0; r < n; ++r)
          for (int64_t i = 0; i < inner; ++i) {
            const int64_t j = o * inner + i, e = (o * n + r) * inner + i;
            // a row of only -inf has y = -inf and no gradient (instead of e^(-inf + inf) = NaN)
            d[e] = py[j] == -std::numeric_limits<scalar_t>::infinity() ? scalar_t(0) : gp[j] * std::exp(px[e] - py[j]);
          }
    });
    accumulate_grad(x, from_plan_order(std::move(block), p));
  });
  return y;
}

// y = sum_r (x - mean)^2 / max(N - correction, 0);  dx[o, r, i] = gy[o, i] 2 (x[o, r, i] - mean[o, i]) / max(N - correction, 0)
Tensor var(const Tensor& x, const std::vector<int64_t>& axes, int64_t correction, bool keepdim) {
  check_float(x, "var");
  const ReducePlan p = plan_reduction(x.shape(), axes, keepdim, "var");
  // PyTorch's divisor; N <= correction gives inf or NaN, as there.
  const double divisor = static_cast<double>(std::max<int64_t>(p.reduced - correction, 0));
  Tensor xb = to_plan_order(x, p);
  Tensor y = make_tensor(p.out_shape, x.dtype());
  Tensor mu = make_tensor({p.outer, p.inner}, x.dtype());
  HEED_DISPATCH_FLOAT(x.dtype(), "var", [&] {
    var_kernel(xb.data<scalar_t>(), y.data<scalar_t>(), mu.data<scalar_t>(), p, divisor);
  });
  record("var", y, {x}, [x, xb, mu, p, divisor](const Tensor& gy) {
    Tensor g = gy.contiguous();
    Tensor block = make_tensor(p.block_shape, g.dtype());
    HEED_DISPATCH_FLOAT(g.dtype(), "var", [&] {
      const scalar_t *px = xb.data<scalar_t>(), *pm = mu.data<scalar_t>(), *gp = g.data<scalar_t>();
      scalar_t* d = block.data<scalar_t>();
      const scalar_t two_over = static_cast<scalar_t>(2.0 / divisor);
      const int64_t n = p.reduced, inner = p.inner;
      for (int64_t o = 0; o < p.outer; ++o)
        for (int64_t r = 0; r < n; ++r)
          for (int64_t i = 0; i < inner; ++i) {
            const int64_t j = o * inner + i, e = (o * n + r) * inner + i;
            d[e] = gp[j] * two_over * (px[e] - pm[j]);
          }
    });
    accumulate_grad(x, from_plan_order(std::move(block), p));
  });
  return y;
}

}  // namespace heed
