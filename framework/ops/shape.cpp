// framework/ops/shape.cpp — reshape, flatten, transpose, permute, squeeze, unsqueeze, expand, narrow,
// slice, select, concat, stack, split, chunk, unbind, repeat.
//
// View ops copy nothing: they compute a new shape, strides and offset into x's storage (make_view), so
// writing to x shows through the view and back. Their backwards put gy back where the view's elements came
// from: reshape-like views read gy in x's shape, transpose/permute permute it back, expand sums it over the
// broadcast axes, and narrow/slice/select add it into the same view of x's gradient. concat, stack and
// repeat make one dense copy; reshape copies only when no strides can express the new shape.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <optional>

#include "heed/ops.hpp"
#include "ops/common.hpp"
#include "ops/partial_grad.hpp"

namespace heed {
namespace {

void check_defined(const Tensor& x, const char* op) { HEED_CHECK(x.defined(), "{}: the input is undefined", op); }

// axis in [-dim, dim) -> [0, dim), else throws naming the op and x's shape.
int64_t axis_of(const Tensor& x, int64_t axis, const char* op) {
  const int64_t nd = x.dim();
  HEED_CHECK(axis >= -nd && axis < nd, "{}: axis {} is out of range for a tensor of shape {}", op, axis,
             shape_str(x.shape()));
  return axis < 0 ? axis + nd : axis;
}

char* bytes_of(const Tensor& t) {
  return static_cast<char*>(t.impl()->storage->data()) + t.offset() * static_cast<int64_t>(dtype_size(t.dtype()));
}

// t (any layout) in row-major order as `shape` (same numel): a view when t is dense, else a dense copy.
// Takes t by value so that the result can be the sole owner of its storage (accumulate_grad then adopts it).
Tensor as_shape(Tensor t, const Shape& shape) {
  if (!t.is_contiguous()) t = t.detach().contiguous();
  return make_view(t, shape, contiguous_strides(shape), t.offset());
}

// ---- geometry of axis views ----------------------------------------------------------------------------
struct Geometry {
  Shape shape;
  Shape strides;
  int64_t offset;
};

// The elements start, start+step, ... (len of them) along `axis` of a tensor laid out as g; drop_axis
// removes the axis (select).
Geometry slice_geometry(Geometry g, int64_t axis, int64_t start, int64_t len, int64_t step, bool drop_axis) {
  g.offset += start * g.strides[axis];
  if (drop_axis) {
    g.shape.erase(g.shape.begin() + axis);
    g.strides.erase(g.strides.begin() + axis);
  } else {
    g.shape[axis] = len;
    g.strides[axis] *= step;
  }
  return g;
}

// A recorded view along one axis (narrow, slice, select, split, unbind). Backward: gy is added into the
// same view of x's gradient.
Tensor axis_view(const char* op, const Tensor& x, int64_t axis, int64_t start, int64_t len, int64_t step,
                 bool drop_axis) {
  const Geometry g = slice_geometry({x.shape(), x.strides(), x.offset()}, axis, start, len, step, drop_axis);
  Tensor y = make_view(x, g.shape, g.strides, g.offset);
  record(op, y, {x}, [x, axis, start, len, step, drop_axis](const Tensor& gy) {
    const Geometry d = slice_geometry({x.shape(), contiguous_strides(x.shape()), 0}, axis, start, len, step, drop_axis);
    detail::add_to_grad(x, gy.dtype(), [&](const Tensor& gx) {
      detail::add_view_into(make_view(gx, d.shape, d.strides, gx.offset() + d.offset), gy);
    });
  });
  return y;
}

// Non-recorded view of a (backward) gradient along one axis, for concat and stack.
Tensor plain_axis_view(const Tensor& t, int64_t axis, int64_t start, int64_t len, bool drop_axis) {
  const Geometry g = slice_geometry({t.shape(), t.strides(), t.offset()}, axis, start, len, 1, drop_axis);
  return make_view(t, g.shape, g.strides, g.offset);
}

// A recorded view with x's elements in x's row-major order (reshape, flatten, squeeze, unsqueeze).
// Backward: gy read in x's shape.
Tensor same_order_view(const char* op, const Tensor& x, Shape shape, Shape strides) {
  Tensor y = make_view(x, std::move(shape), std::move(strides), x.offset());
  record(op, y, {x}, [x](const Tensor& gy) { accumulate_grad(x, as_shape(gy, x.shape())); });
  return y;
}

// Non-recorded permuted view: axis d of the result is axis perm[d] of t.
Tensor plain_permute(const Tensor& t, const std::vector<int64_t>& perm) {
  Shape shape(perm.size()), strides(perm.size());
  for (std::size_t d = 0; d < perm.size(); ++d) {
    shape[d] = t.shape()[perm[d]];
    strides[d] = t.strides()[perm[d]];
  }
  return make_view(t, std::move(shape), std::move(strides), t.offset());
}

// y = x with axes permuted (transpose, permute);  dx = gy permuted back (inverse permutation), dense
Tensor permuted(const char* op, const Tensor& x, const std::vector<int64_t>& perm) {
  Tensor y = plain_permute(x, perm);
  record(op, y, {x}, [x, perm](const Tensor& gy) {
    std::vector<int64_t> inverse(perm.size());
    for (std::size_t d = 0; d < perm.size(); ++d) inverse[perm[d]] = static_cast<int64_t>(d);
    accumulate_grad(x, plain_permute(gy, inverse).contiguous());
  });
  return y;
}

// ---- reshape -----------------------------------------------------------------------------------------

// Resolves one -1 in `shape` so that it holds x.numel() elements.
Shape infer_shape(const Tensor& x, const Shape& shape, const char* op) {
  Shape out = shape;
  int64_t infer_at = -1;
  for (std::size_t d = 0; d < out.size(); ++d) {
    if (out[d] == -1) {
      HEED_CHECK(infer_at < 0, "{}: only one -1 is allowed in the target shape {} (input shape {})", op,
                 shape_str(shape), shape_str(x.shape()));
      infer_at = static_cast<int64_t>(d);
    } else {
      HEED_CHECK(out[d] >= 0, "{}: invalid size {} in the target shape {} (input shape {})", op, out[d],
                 shape_str(shape), shape_str(x.shape()));
    }
  }
  Shape known_sizes = out;  // the -1 counted as 1; the product is checked for overflow
  if (infer_at >= 0) known_sizes[infer_at] = 1;
  int64_t known = detail::checked_numel(known_sizes, op);
  const int64_t numel = x.numel();
  if (infer_at >= 0) {
    HEED_CHECK(known > 0 && numel % known == 0,
               "{}: cannot reshape a tensor of shape {} ({} elements) into {}: the -1 cannot be inferred", op,
               shape_str(x.shape()), numel, shape_str(shape));
    out[infer_at] = numel / known;
    known = numel;
  }
  HEED_CHECK(known == numel, "{}: cannot reshape a tensor of shape {} ({} elements) into {} ({} elements)", op,
             shape_str(x.shape()), numel, shape_str(shape), known);
  return out;
}

// Strides that read a tensor of (shape, strides) as new_shape in row-major order without copying, or
// nullopt. PyTorch's rule: split the old axes into runs that are contiguous among themselves; every new
// axis must fall inside one run.
std::optional<Shape> view_strides(const Shape& shape, const Shape& strides, const Shape& new_shape) {
  const int64_t new_nd = static_cast<int64_t>(new_shape.size());
  if (shape.empty()) return Shape(new_shape.size(), 1);
  if (shape_numel(shape) == 0) return contiguous_strides(new_shape);
  Shape new_strides(new_shape.size(), 1);
  int64_t view_d = new_nd - 1;
  int64_t chunk_base_stride = strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t d = static_cast<int64_t>(shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= shape[d];
    // A run ends at axis 0 or where the next-outer axis does not continue it.
    if (d == 0 || (shape[d - 1] != 1 && strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || new_shape[view_d] == 1)) {
        new_strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= new_shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return new_strides;
}

// y = x read in row-major order as `target`;  dx = gy read as x's shape
Tensor reshape_to(const char* op, const Tensor& x, const Shape& target) {
  if (auto strides = view_strides(x.shape(), x.strides(), target)) return same_order_view(op, x, target, *strides);
  // No strides express it (e.g. merging the axes of a transposed tensor): one dense row-major copy.
  Tensor y = make_tensor(target, x.dtype());
  detail::copy_to_dense(x, y.impl()->storage->data());
  record(op, y, {x}, [x](const Tensor& gy) { accumulate_grad(x, as_shape(gy, x.shape())); });
  return y;
}

// Copies each part into its slot along `axis` of the dense `out` (shapes already checked).
void copy_parts(const std::vector<Tensor>& parts, int64_t axis, const Tensor& out) {
  if (out.numel() == 0) return;
  const Shape& os = out.shape();
  const int64_t es = static_cast<int64_t>(dtype_size(out.dtype()));
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d) outer *= os[d];
  for (std::size_t d = static_cast<std::size_t>(axis) + 1; d < os.size(); ++d) inner *= os[d];
  const int64_t out_row = os[axis] * inner;
  char* o = bytes_of(out);
  int64_t start = 0;
  for (const Tensor& p : parts) {
    const int64_t len = p.shape()[axis];
    const int64_t row = len * inner;
    if (row > 0) {
      if (p.is_contiguous()) {
        const char* src = bytes_of(p);
        for (int64_t i = 0; i < outer; ++i)
          std::memcpy(o + (i * out_row + start * inner) * es, src + i * row * es, static_cast<std::size_t>(row * es));
      } else {
        plain_axis_view(out, axis, start, len, false).copy_(p);
      }
    }
    start += len;
  }
}

// Checks that xs is non-empty and all defined with one dtype.
void check_parts(const std::vector<Tensor>& xs, const char* op) {
  HEED_CHECK(!xs.empty(), "{}: needs at least one tensor", op);
  for (std::size_t k = 0; k < xs.size(); ++k) {
    HEED_CHECK(xs[k].defined(), "{}: input {} is undefined", op, k);
    HEED_CHECK(xs[k].dtype() == xs[0].dtype(), "{}: input {} is {} {} but input 0 is {} {}", op, k,
               dtype_name(xs[k].dtype()), shape_str(xs[k].shape()), dtype_name(xs[0].dtype()),
               shape_str(xs[0].shape()));
  }
}

std::string shapes_str(const std::vector<Tensor>& xs) {
  std::string s;
  for (std::size_t k = 0; k < xs.size(); ++k) s += (k ? ", " : "") + shape_str(xs[k].shape());
  return s;
}

}  // namespace

// ---- reshape and friends -------------------------------------------------------------------------------

Tensor reshape(const Tensor& x, const Shape& shape) {
  check_defined(x, "reshape");
  return reshape_to("reshape", x, infer_shape(x, shape, "reshape"));
}

Tensor flatten(const Tensor& x, int64_t start, int64_t end) {
  check_defined(x, "flatten");
  if (x.dim() == 0) {
    HEED_CHECK((start == 0 || start == -1) && (end == 0 || end == -1),
               "flatten: axes {}..{} are out of range for a tensor of shape []", start, end);
    return reshape_to("flatten", x, {1});
  }
  const int64_t s = axis_of(x, start, "flatten"), e = axis_of(x, end, "flatten");
  HEED_CHECK(s <= e, "flatten: start axis {} comes after end axis {} (shape {})", start, end, shape_str(x.shape()));
  const Shape& xs = x.shape();
  Shape target(xs.begin(), xs.begin() + s);
  target.push_back(std::accumulate(xs.begin() + s, xs.begin() + e + 1, int64_t(1), std::multiplies<int64_t>()));
  target.insert(target.end(), xs.begin() + e + 1, xs.end());
  return reshape_to("flatten", x, target);
}

Tensor squeeze(const Tensor& x) {
  check_defined(x, "squeeze");
  Shape shape, strides;
  for (int64_t d = 0; d < x.dim(); ++d) {
    if (x.shape()[d] == 1) continue;
    shape.push_back(x.shape()[d]);
    strides.push_back(x.strides()[d]);
  }
  return same_order_view("squeeze", x, std::move(shape), std::move(strides));
}

Tensor squeeze(const Tensor& x, int64_t axis) {
  check_defined(x, "squeeze");
  Shape shape = x.shape(), strides = x.strides();
  if (x.dim() == 0) {
    HEED_CHECK(axis == 0 || axis == -1, "squeeze: axis {} is out of range for a tensor of shape []", axis);
  } else {
    const int64_t a = axis_of(x, axis, "squeeze");
    if (shape[a] == 1) {
      shape.erase(shape.begin() + a);
      strides.erase(strides.begin() + a);
    }
  }
  return same_order_view("squeeze", x, std::move(shape), std::move(strides));
}

Tensor unsqueeze(const Tensor& x, int64_t axis) {
  check_defined(x, "unsqueeze");
  const int64_t nd = x.dim();
  HEED_CHECK(axis >= -(nd + 1) && axis <= nd, "unsqueeze: axis {} is out of range for a tensor of shape {} (valid: {}..{})",
             axis, shape_str(x.shape()), -(nd + 1), nd);
  const int64_t a = axis < 0 ? axis + nd + 1 : axis;
  Shape shape = x.shape(), strides = x.strides();
  const int64_t stride = a < nd ? shape[a] * strides[a] : 1;  // any stride works for a size-1 axis
  shape.insert(shape.begin() + a, 1);
  strides.insert(strides.begin() + a, stride);
  return same_order_view("unsqueeze", x, std::move(shape), std::move(strides));
}

// ---- transpose, permute --------------------------------------------------------------------------------

Tensor transpose(const Tensor& x, int64_t a, int64_t b) {
  check_defined(x, "transpose");
  if (x.dim() == 0) {
    HEED_CHECK((a == 0 || a == -1) && (b == 0 || b == -1), "transpose: axes {} and {} are out of range for a tensor of shape []",
               a, b);
    return permuted("transpose", x, {});
  }
  std::vector<int64_t> perm(static_cast<std::size_t>(x.dim()));
  std::iota(perm.begin(), perm.end(), int64_t(0));
  std::swap(perm[axis_of(x, a, "transpose")], perm[axis_of(x, b, "transpose")]);
  return permuted("transpose", x, perm);
}

Tensor permute(const Tensor& x, const std::vector<int64_t>& dims) {
  check_defined(x, "permute");
  const int64_t nd = x.dim();
  HEED_CHECK(static_cast<int64_t>(dims.size()) == nd, "permute: dims {} do not match the {} axes of shape {}",
             shape_str(dims), nd, shape_str(x.shape()));
  std::vector<int64_t> perm(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (std::size_t d = 0; d < dims.size(); ++d) {
    perm[d] = axis_of(x, dims[d], "permute");
    HEED_CHECK(!seen[perm[d]], "permute: dims {} repeat axis {} (shape {})", shape_str(dims), perm[d],
               shape_str(x.shape()));
    seen[perm[d]] = true;
  }
  return permuted("permute", x, perm);
}

// ---- expand --------------------------------------------------------------------------------------------

namespace {
// y = x broadcast to `shape` by stride-0 axes (a view);  dx = gy summed over the broadcast axes
Tensor expand_as_view(const char* op, const Tensor& x, const Shape& shape) {
  check_defined(x, op);
  const int64_t nd = x.dim(), target_nd = static_cast<int64_t>(shape.size());
  HEED_CHECK(target_nd >= nd, "{}: the target shape {} has fewer axes than the input shape {}", op, shape_str(shape),
             shape_str(x.shape()));
  const int64_t lead = target_nd - nd;
  Shape out(shape.size()), strides(shape.size(), 0);
  for (int64_t d = 0; d < target_nd; ++d) {
    const int64_t want = shape[d];
    if (d < lead) {
      HEED_CHECK(want >= 0, "{}: size {} for new leading axis {} is invalid (input shape {}, target {})", op, want, d,
                 shape_str(x.shape()), shape_str(shape));
      out[d] = want;
      continue;
    }
    const int64_t have = x.shape()[d - lead];
    if (want == -1 || want == have) {
      out[d] = have;
      strides[d] = x.strides()[d - lead];
    } else {
      HEED_CHECK(have == 1 && want >= 0, "{}: cannot expand shape {} to {}: axis {} has size {}, not 1", op,
                 shape_str(x.shape()), shape_str(shape), d - lead, have);
      out[d] = want;
    }
  }
  detail::checked_numel(out, op);
  Tensor y = make_view(x, out, strides, x.offset());
  record(op, y, {x}, [x](const Tensor& gy) { accumulate_grad(x, sum_to(gy, x.shape())); });
  return y;
}
}  // namespace

Tensor expand(const Tensor& x, const Shape& shape) { return expand_as_view("expand", x, shape); }
Tensor broadcast_to(const Tensor& x, const Shape& shape) { return expand_as_view("broadcast_to", x, shape); }

// ---- narrow, slice, select -----------------------------------------------------------------------------

Tensor narrow(const Tensor& x, int64_t axis, int64_t start, int64_t length) {
  check_defined(x, "narrow");
  const int64_t a = axis_of(x, axis, "narrow");
  const int64_t n = x.shape()[a];
  HEED_CHECK(start >= -n && start <= n, "narrow: start {} is out of range for axis {} of size {} (shape {})", start, a, n,
             shape_str(x.shape()));
  if (start < 0) start += n;
  HEED_CHECK(length >= 0 && start + length <= n, "narrow: start {} + length {} exceeds size {} of axis {} (shape {})",
             start, length, n, a, shape_str(x.shape()));
  return axis_view("narrow", x, a, start, length, 1, false);
}

Tensor slice(const Tensor& x, int64_t axis, int64_t start, int64_t end, int64_t step) {
  check_defined(x, "slice");
  const int64_t a = axis_of(x, axis, "slice");
  HEED_CHECK(step > 0, "slice: step must be positive, got {} (shape {})", step, shape_str(x.shape()));
  const int64_t n = x.shape()[a];
  // Python slicing: negative bounds count from the end, then both are clamped to [0, n].
  auto clamp_bound = [n](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + n : v, 0, n); };
  start = clamp_bound(start);
  end = clamp_bound(end);
  const int64_t len = end > start ? (end - start + step - 1) / step : 0;
  return axis_view("slice", x, a, start, len, step, false);
}

Tensor select(const Tensor& x, int64_t axis, int64_t index) {
  check_defined(x, "select");
  const int64_t a = axis_of(x, axis, "select");
  const int64_t n = x.shape()[a];
  HEED_CHECK(index >= -n && index < n, "select: index {} is out of range for axis {} of size {} (input shape {})", index,
             a, n, shape_str(x.shape()));
  return axis_view("select", x, a, index < 0 ? index + n : index, 1, 1, true);
}

// ---- concat, stack -------------------------------------------------------------------------------------

// y = [x0, x1, ...] along axis;  dx_k = gy[..., start_k : start_k + n_k, ...]
Tensor concat(const std::vector<Tensor>& xs, int64_t axis) {
  check_parts(xs, "concat");
  HEED_CHECK(xs[0].dim() > 0, "concat: cannot concatenate 0-d tensors (shapes {})", shapes_str(xs));
  const int64_t a = axis_of(xs[0], axis, "concat");
  Shape shape = xs[0].shape();
  shape[a] = 0;
  for (std::size_t k = 0; k < xs.size(); ++k) {
    bool fits = xs[k].dim() == xs[0].dim();
    for (int64_t d = 0; fits && d < xs[0].dim(); ++d) fits = d == a || xs[k].shape()[d] == xs[0].shape()[d];
    HEED_CHECK(fits, "concat: input {} has shape {} but input 0 has shape {}; shapes may differ only along axis {} (shapes {})",
               k, shape_str(xs[k].shape()), shape_str(xs[0].shape()), a, shapes_str(xs));
    shape[a] += xs[k].shape()[a];
  }
  Tensor y = make_tensor(shape, xs[0].dtype());
  copy_parts(xs, a, y);
  record_many("concat", y, xs, [xs, a](const Tensor& gy) {
    int64_t start = 0;
    for (const Tensor& x : xs) {
      const int64_t len = x.shape()[a];
      if (x.requires_grad()) accumulate_grad(x, plain_axis_view(gy, a, start, len, false));
      start += len;
    }
  });
  return y;
}

// y[..., k, ...] = x_k along a new axis;  dx_k = gy[..., k, ...]
Tensor stack(const std::vector<Tensor>& xs, int64_t axis) {
  check_parts(xs, "stack");
  const int64_t nd = xs[0].dim();
  HEED_CHECK(axis >= -(nd + 1) && axis <= nd, "stack: axis {} is out of range for stacking tensors of shape {} (valid: {}..{})",
             axis, shape_str(xs[0].shape()), -(nd + 1), nd);
  const int64_t a = axis < 0 ? axis + nd + 1 : axis;
  std::vector<Tensor> parts;  // each input as a non-recorded view with a size-1 axis at a
  parts.reserve(xs.size());
  for (std::size_t k = 0; k < xs.size(); ++k) {
    HEED_CHECK(xs[k].shape() == xs[0].shape(), "stack: input {} has shape {} but input 0 has shape {} (shapes {})", k,
               shape_str(xs[k].shape()), shape_str(xs[0].shape()), shapes_str(xs));
    Shape s = xs[k].shape(), st = xs[k].strides();
    s.insert(s.begin() + a, 1);
    st.insert(st.begin() + a, 1);
    parts.push_back(make_view(xs[k], std::move(s), std::move(st), xs[k].offset()));
  }
  Shape shape = xs[0].shape();
  shape.insert(shape.begin() + a, static_cast<int64_t>(xs.size()));
  Tensor y = make_tensor(shape, xs[0].dtype());
  copy_parts(parts, a, y);
  record_many("stack", y, xs, [xs, a](const Tensor& gy) {
    for (std::size_t k = 0; k < xs.size(); ++k)
      if (xs[k].requires_grad()) accumulate_grad(xs[k], plain_axis_view(gy, a, static_cast<int64_t>(k), 1, true));
  });
  return y;
}

// ---- split, chunk, unbind (views) ----------------------------------------------------------------------

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t axis) {
  check_defined(x, "split");
  const int64_t a = axis_of(x, axis, "split");
  const int64_t n = x.shape()[a];
  HEED_CHECK(split_size > 0 || (split_size == 0 && n == 0),
             "split: split_size must be positive, got {} (axis {} of shape {})", split_size, a, shape_str(x.shape()));
  std::vector<Tensor> pieces;
  if (n == 0) {
    pieces.push_back(axis_view("split", x, a, 0, 0, 1, false));
    return pieces;
  }
  for (int64_t start = 0; start < n; start += split_size)
    pieces.push_back(axis_view("split", x, a, start, std::min(split_size, n - start), 1, false));
  return pieces;
}

std::vector<Tensor> split(const Tensor& x, const std::vector<int64_t>& sizes, int64_t axis) {
  check_defined(x, "split");
  const int64_t a = axis_of(x, axis, "split");
  const int64_t n = x.shape()[a];
  int64_t total = 0;
  for (int64_t s : sizes) {
    HEED_CHECK(s >= 0, "split: sizes {} contain a negative size (shape {})", shape_str(sizes), shape_str(x.shape()));
    total += s;
  }
  HEED_CHECK(total == n, "split: sizes {} sum to {}, but axis {} of shape {} has size {}", shape_str(sizes), total, a,
             shape_str(x.shape()), n);
  std::vector<Tensor> pieces;
  pieces.reserve(sizes.size());
  int64_t start = 0;
  for (int64_t s : sizes) {
    pieces.push_back(axis_view("split", x, a, start, s, 1, false));
    start += s;
  }
  return pieces;
}

// Like torch.chunk: pieces of ceil(n / chunks) elements, so there may be fewer than `chunks` of them.
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t axis) {
  check_defined(x, "chunk");
  HEED_CHECK(chunks > 0, "chunk: chunks must be positive, got {} (shape {})", chunks, shape_str(x.shape()));
  const int64_t n = x.shape()[axis_of(x, axis, "chunk")];
  return split(x, (n + chunks - 1) / chunks, axis);
}

std::vector<Tensor> unbind(const Tensor& x, int64_t axis) {
  check_defined(x, "unbind");
  const int64_t a = axis_of(x, axis, "unbind");
  std::vector<Tensor> pieces;
  pieces.reserve(static_cast<std::size_t>(x.shape()[a]));
  for (int64_t i = 0; i < x.shape()[a]; ++i) pieces.push_back(axis_view("unbind", x, a, i, 1, 1, true));
  return pieces;
}

// ---- repeat --------------------------------------------------------------------------------------------

// y = x tiled repeats[d] times along each axis (x gets leading size-1 axes up to repeats.size()).
// The row-major layout of y is that of the array (r0, s0, r1, s1, ...) that reads x through stride-0 r
// axes, so the forward is one strided copy;  dx = gy read as (r0, s0, r1, s1, ...) summed over the r axes.
Tensor repeat(const Tensor& x, const std::vector<int64_t>& repeats) {
  check_defined(x, "repeat");
  const int64_t nd = x.dim(), nr = static_cast<int64_t>(repeats.size());
  HEED_CHECK(nr >= nd, "repeat: {} repeats {} given for a tensor of shape {}; needs at least {}", nr,
             shape_str(repeats), shape_str(x.shape()), nd);
  Shape interleaved(2 * nr), strides(2 * nr, 0), reduced(2 * nr, 1), shape(nr);
  for (int64_t i = 0; i < nr; ++i) {
    HEED_CHECK(repeats[i] >= 0, "repeat: repeats {} contain a negative count (shape {})", shape_str(repeats),
               shape_str(x.shape()));
    const int64_t d = i - (nr - nd);  // the axis of x, or negative for a new leading axis
    const int64_t size = d >= 0 ? x.shape()[d] : 1;
    interleaved[2 * i] = repeats[i];
    interleaved[2 * i + 1] = size;
    strides[2 * i + 1] = d >= 0 ? x.strides()[d] : 0;
    reduced[2 * i + 1] = size;
    shape[i] = repeats[i] * size;
  }
  // Size-1 axes do not change the order; dropping them gives the copy loop long inner runs.
  Shape src_shape, src_strides;
  for (std::size_t k = 0; k < interleaved.size(); ++k) {
    if (interleaved[k] == 1) continue;
    src_shape.push_back(interleaved[k]);
    src_strides.push_back(strides[k]);
  }
  Tensor y = make_tensor(shape, x.dtype());
  detail::copy_to_dense(make_view(x, src_shape, src_strides, x.offset()), y.impl()->storage->data());
  record("repeat", y, {x}, [x, interleaved, reduced](const Tensor& gy) {
    accumulate_grad(x, as_shape(sum_to(as_shape(gy, interleaved), reduced), x.shape()));
  });
  return y;
}

}  // namespace heed
