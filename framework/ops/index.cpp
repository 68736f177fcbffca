// framework/ops/index.cpp — index_select, gather, embedding, where, pad, flip.
//
// Indices are Int64 and checked once per op before (or while) they are used; an out-of-range index
// throws naming the op, the index, the axis and the shapes. The backwards of index_select, gather and
// embedding scatter-add gy into the input's gradient (repeated indices accumulate) through add_to_grad,
// which adds in place when the input already holds a gradient.
#include <algorithm>
#include <cstring>

#include "heed/ops.hpp"
#include "ops/common.hpp"
#include "ops/partial_grad.hpp"

namespace heed {
namespace {

void check_defined(const Tensor& x, const char* op, const char* arg) {
  HEED_CHECK(x.defined(), "{}: {} is undefined", op, arg);
}

void check_index_dtype(const Tensor& index, const char* op, const char* arg) {
  check_defined(index, op, arg);
  HEED_CHECK(index.dtype() == DType::Int64, "{}: {} must be Int64, got {} of shape {}", op, arg,
             dtype_name(index.dtype()), shape_str(index.shape()));
}

int64_t axis_of(const Tensor& x, int64_t axis, const char* op) {
  const int64_t nd = x.dim();
  HEED_CHECK(axis >= -nd && axis < nd, "{}: axis {} is out of range for a tensor of shape {}", op, axis,
             shape_str(x.shape()));
  return axis < 0 ? axis + nd : axis;
}

// x viewed as (outer, n, inner) around `axis`.
struct Rows {
  int64_t outer = 1, n = 1, inner = 1;
};
Rows rows_around(const Shape& shape, int64_t axis) {
  Rows r;
  for (int64_t d = 0; d < axis; ++d) r.outer *= shape[d];
  r.n = shape[axis];
  for (std::size_t d = static_cast<std::size_t>(axis) + 1; d < shape.size(); ++d) r.inner *= shape[d];
  return r;
}

// out[o, j, :] = x[o, idx[j], :] for x dense (outer, n, inner) and m indices (already range-checked).
template <class T>
void take_rows(const T* x, T* out, const int64_t* idx, int64_t m, const Rows& r) {
  for (int64_t o = 0; o < r.outer; ++o) {
    const T* src = x + o * r.n * r.inner;
    T* dst = out + o * m * r.inner;
    if (r.inner == 1) {
      for (int64_t j = 0; j < m; ++j) dst[j] = src[idx[j]];
    } else {
      for (int64_t j = 0; j < m; ++j) std::copy_n(src + idx[j] * r.inner, r.inner, dst + j * r.inner);
    }
  }
}

// gx[o, idx[j], :] += gy[o, j, :], skipping the rows whose index equals `skip`.
template <class T>
void add_rows(T* gx, const T* gy, const int64_t* idx, int64_t m, const Rows& r, int64_t skip) {
  for (int64_t o = 0; o < r.outer; ++o) {
    T* dst = gx + o * r.n * r.inner;
    const T* src = gy + o * m * r.inner;
    for (int64_t j = 0; j < m; ++j) {
      if (idx[j] == skip) continue;
      T* row = dst + idx[j] * r.inner;
      const T* g = src + j * r.inner;
      for (int64_t i = 0; i < r.inner; ++i) row[i] += g[i];
    }
  }
}

// Views of t and of a tensor laid out like it, for pad and flip.
struct Geometry {
  Shape shape;
  Shape strides;
  int64_t offset;
};
Tensor view_of(const Tensor& t, const Geometry& g) { return make_view(t, g.shape, g.strides, t.offset() + g.offset); }

// The layout that reads t with `axes` reversed (negative strides). Internal only: never returned to
// users, only copied from, so no kernel elsewhere has to handle negative strides.
Geometry flipped(const Shape& shape, Shape strides, const std::vector<int64_t>& axes) {
  int64_t offset = 0;
  for (int64_t a : axes) {
    if (shape[a] > 0) offset += (shape[a] - 1) * strides[a];
    strides[a] = -strides[a];
  }
  return {shape, std::move(strides), offset};
}

// A dense copy of t with `axes` reversed.
Tensor flip_copy(const Tensor& t, const std::vector<int64_t>& axes) {
  Tensor out = make_tensor(t.shape(), t.dtype());
  detail::copy_to_dense(view_of(t, flipped(t.shape(), t.strides(), axes)), out.impl()->storage->data());
  return out;
}

// out = where(cond, g, 0) (keep == true) or where(cond, 0, g) (keep == false), in g's shape.
Tensor masked_grad(const Tensor& cond, const Tensor& g, bool keep) {
  Tensor out = make_tensor(g.shape(), g.dtype());
  const Shape dense = contiguous_strides(g.shape());
  const Shape cs = detail::broadcast_strides(cond, g.shape());
  const Shape gs = g.strides();
  const uint8_t want = keep ? 1 : 0;
  HEED_DISPATCH_FLOAT(g.dtype(), "where", [&] {
    scalar_t* o = out.data<scalar_t>();
    const scalar_t* pg = g.data<scalar_t>();
    const uint8_t* pc = cond.data<uint8_t>();
    detail::strided_loop(g.shape(), {&dense, &cs, &gs}, [&](const int64_t* off, int64_t n, const int64_t* inner) {
      for (int64_t i = 0; i < n; ++i)
        o[off[0] + i] = (pc[off[1] + i * inner[1]] != 0) == (want != 0) ? pg[off[2] + i * inner[2]] : scalar_t(0);
    });
  });
  return out;
}

}  // namespace

// ---- index_select --------------------------------------------------------------------------------------

// y[o, j, i] = x[o, index[j], i] around axis;  dx[o, index[j], i] += gy[o, j, i]
Tensor index_select(const Tensor& x, int64_t axis, const Tensor& index) {
  check_defined(x, "index_select", "input");
  check_index_dtype(index, "index_select", "index");
  const int64_t a = axis_of(x, axis, "index_select");
  const Tensor idx = index.contiguous();
  const int64_t* ip = idx.data<int64_t>();
  const int64_t m = idx.numel();
  const Rows r = rows_around(x.shape(), a);
  for (int64_t j = 0; j < m; ++j)
    HEED_CHECK(ip[j] >= 0 && ip[j] < r.n, "index_select: index {} is out of range for axis {} of size {} (input shape {})",
               ip[j], a, r.n, shape_str(x.shape()));
  Shape shape(x.shape().begin(), x.shape().begin() + a);
  shape.insert(shape.end(), index.shape().begin(), index.shape().end());
  shape.insert(shape.end(), x.shape().begin() + a + 1, x.shape().end());
  Tensor y = make_tensor(shape, x.dtype());
  const Tensor xc = x.detach().contiguous();
  HEED_DISPATCH_ALL(x.dtype(), [&] { take_rows(xc.data<scalar_t>(), y.data<scalar_t>(), ip, m, r); });
  record("index_select", y, {x}, [x, idx, r](const Tensor& gy) {
    detail::add_to_grad(x, gy.dtype(), [&](const Tensor& gx) {
      HEED_DISPATCH_FLOAT(gy.dtype(), "index_select", [&] {
        add_rows(gx.data<scalar_t>(), gy.contiguous().data<scalar_t>(), idx.data<int64_t>(), idx.numel(), r, -1);
      });
    });
  });
  return y;
}

// ---- gather --------------------------------------------------------------------------------------------

// y[..., j, ...] = x[..., index[..., j, ...], ...] along axis (y has index's shape);
// dx[..., index[..., j, ...], ...] += gy[..., j, ...]
Tensor gather(const Tensor& x, int64_t axis, const Tensor& index) {
  check_defined(x, "gather", "input");
  check_index_dtype(index, "gather", "index");
  const int64_t a = axis_of(x, axis, "gather");
  HEED_CHECK(index.dim() == x.dim(), "gather: index has shape {} but input has shape {}; they need the same number of axes",
             shape_str(index.shape()), shape_str(x.shape()));
  for (int64_t d = 0; d < x.dim(); ++d)
    HEED_CHECK(d == a || index.shape()[d] <= x.shape()[d],
               "gather: index shape {} exceeds input shape {} along axis {} (only axis {} may be larger)",
               shape_str(index.shape()), shape_str(x.shape()), d, a);
  const int64_t n = x.shape()[a];
  Tensor y = make_tensor(index.shape(), x.dtype());
  // Loop over index's positions; x is read at the same position with axis a replaced by the index.
  const Shape dense = contiguous_strides(index.shape());
  const Shape is = index.strides();
  Shape xs = x.strides();
  const int64_t x_axis_stride = xs[a];
  xs[a] = 0;
  const int64_t* ip = index.data<int64_t>();
  HEED_DISPATCH_ALL(x.dtype(), [&] {
    const scalar_t* px = x.data<scalar_t>();
    scalar_t* o = y.data<scalar_t>();
    detail::strided_loop(index.shape(), {&dense, &is, &xs}, [&](const int64_t* off, int64_t len, const int64_t* inner) {
      for (int64_t i = 0; i < len; ++i) {
        const int64_t k = ip[off[1] + i * inner[1]];
        HEED_CHECK(k >= 0 && k < n, "gather: index {} is out of range for axis {} of size {} (input shape {}, index shape {})",
                   k, a, n, shape_str(x.shape()), shape_str(index.shape()));
        o[off[0] + i] = px[off[2] + i * inner[2] + k * x_axis_stride];
      }
    });
  });
  record("gather", y, {x}, [x, index, a](const Tensor& gy) {
    detail::add_to_grad(x, gy.dtype(), [&](const Tensor& gx) {
      const Shape gys = gy.strides(), is = index.strides();
      Shape gxs = contiguous_strides(x.shape());
      const int64_t gx_axis_stride = gxs[a];
      gxs[a] = 0;
      const int64_t* ip = index.data<int64_t>();
      HEED_DISPATCH_FLOAT(gy.dtype(), "gather", [&] {
        scalar_t* pgx = gx.data<scalar_t>();
        const scalar_t* pgy = gy.data<scalar_t>();
        detail::strided_loop(index.shape(), {&gys, &is, &gxs}, [&](const int64_t* off, int64_t len, const int64_t* inner) {
          for (int64_t i = 0; i < len; ++i)
            pgx[off[2] + i * inner[2] + ip[off[1] + i * inner[1]] * gx_axis_stride] += pgy[off[0] + i * inner[0]];
        });
      });
    });
  });
  return y;
}

// ---- embedding -----------------------------------------------------------------------------------------

// y[..., :] = weight[indices[...], :];  dweight[indices[...], :] += gy[..., :] except padding_idx rows
Tensor embedding(const Tensor& weight, const Tensor& indices, int64_t padding_idx) {
  check_defined(weight, "embedding", "weight");
  check_index_dtype(indices, "embedding", "indices");
  HEED_CHECK(weight.dim() == 2, "embedding: weight must be 2-D (num_embeddings, embedding_dim), got shape {}",
             shape_str(weight.shape()));
  const int64_t vocab = weight.shape()[0], width = weight.shape()[1];
  HEED_CHECK(padding_idx < vocab, "embedding: padding_idx {} is out of range for a weight of shape {}", padding_idx,
             shape_str(weight.shape()));
  const Tensor idx = indices.contiguous();
  const int64_t* ip = idx.data<int64_t>();
  const int64_t m = idx.numel();
  for (int64_t j = 0; j < m; ++j)
    HEED_CHECK(ip[j] >= 0 && ip[j] < vocab, "embedding: index {} is out of range for a weight of shape {} (indices shape {})",
               ip[j], shape_str(weight.shape()), shape_str(indices.shape()));
  Shape shape = indices.shape();
  shape.push_back(width);
  Tensor y = make_tensor(shape, weight.dtype());
  const Rows r{1, vocab, width};
  const Tensor wc = weight.detach().contiguous();
  HEED_DISPATCH_ALL(weight.dtype(), [&] { take_rows(wc.data<scalar_t>(), y.data<scalar_t>(), ip, m, r); });
  const int64_t skip = padding_idx >= 0 ? padding_idx : -1;
  record("embedding", y, {weight}, [weight, idx, r, skip](const Tensor& gy) {
    detail::add_to_grad(weight, gy.dtype(), [&](const Tensor& gw) {
      HEED_DISPATCH_FLOAT(gy.dtype(), "embedding", [&] {
        add_rows(gw.data<scalar_t>(), gy.contiguous().data<scalar_t>(), idx.data<int64_t>(), idx.numel(), r, skip);
      });
    });
  });
  return y;
}

// ---- where ---------------------------------------------------------------------------------------------

// y = cond ? a : b (all three broadcast);  da = sum_to(cond ? gy : 0), db = sum_to(cond ? 0 : gy)
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  check_defined(cond, "where", "cond");
  check_defined(a, "where", "a");
  check_defined(b, "where", "b");
  HEED_CHECK(cond.dtype() == DType::Bool, "where: cond must be Bool, got {} of shape {}", dtype_name(cond.dtype()),
             shape_str(cond.shape()));
  HEED_CHECK(a.dtype() == b.dtype(), "where: a and b differ in dtype: {} {} and {} {}", dtype_name(a.dtype()),
             shape_str(a.shape()), dtype_name(b.dtype()), shape_str(b.shape()));
  Shape shape;
  try {
    shape = detail::broadcast_shapes(detail::broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  } catch (const Error&) {
    throw Error(fmt::format("where: shapes {} (cond), {} (a) and {} (b) do not broadcast", shape_str(cond.shape()),
                            shape_str(a.shape()), shape_str(b.shape())));
  }
  Tensor y = make_tensor(shape, a.dtype());
  const uint8_t* pc = cond.data<uint8_t>();
  HEED_DISPATCH_ALL(a.dtype(), [&] {
    const scalar_t* pa = a.data<scalar_t>();
    const scalar_t* pb = b.data<scalar_t>();
    scalar_t* o = y.data<scalar_t>();
    const bool dense = cond.shape() == shape && a.shape() == shape && b.shape() == shape && cond.is_contiguous() &&
                       a.is_contiguous() && b.is_contiguous();
    if (dense) {
      const int64_t n = y.numel();
      for (int64_t i = 0; i < n; ++i) o[i] = pc[i] ? pa[i] : pb[i];
      return;
    }
    const Shape ds = contiguous_strides(shape);
    const Shape cs = detail::broadcast_strides(cond, shape), as = detail::broadcast_strides(a, shape),
                bs = detail::broadcast_strides(b, shape);
    detail::strided_loop(shape, {&ds, &cs, &as, &bs}, [&](const int64_t* off, int64_t n, const int64_t* inner) {
      for (int64_t i = 0; i < n; ++i)
        o[off[0] + i] = pc[off[1] + i * inner[1]] ? pa[off[2] + i * inner[2]] : pb[off[3] + i * inner[3]];
    });
  });
  record("where", y, {a, b}, [cond, a, b](const Tensor& gy) {
    if (a.requires_grad()) accumulate_grad(a, sum_to(masked_grad(cond, gy, true), a.shape()));
    if (b.requires_grad()) accumulate_grad(b, sum_to(masked_grad(cond, gy, false), b.shape()));
  });
  return y;
}

// ---- pad -----------------------------------------------------------------------------------------------

// y = x with value-filled borders (negative padding crops), F.pad order: {left, right} of the last axis,
// then {top, bottom} of the one before, ...;  dx = the part of gy where x's kept elements landed
Tensor pad(const Tensor& x, const std::vector<int64_t>& padding, double value) {
  check_defined(x, "pad", "input");
  const int64_t nd = x.dim();
  HEED_CHECK(padding.size() % 2 == 0, "pad: padding {} must have an even number of entries (input shape {})",
             shape_str(padding), shape_str(x.shape()));
  const int64_t pairs = static_cast<int64_t>(padding.size()) / 2;
  HEED_CHECK(pairs <= nd, "pad: padding {} covers {} axes but the input shape {} has {}", shape_str(padding), pairs,
             shape_str(x.shape()), nd);
  Shape shape = x.shape();
  // The kept block of x: in x (src, and src_dense for x's gradient) and in y (dst).
  Geometry src{x.shape(), x.strides(), 0}, src_dense{x.shape(), contiguous_strides(x.shape()), 0};
  bool empty_block = false;
  for (int64_t p = 0; p < pairs; ++p) {
    const int64_t d = nd - 1 - p, before = padding[2 * p], after = padding[2 * p + 1];
    shape[d] = x.shape()[d] + before + after;
    HEED_CHECK(shape[d] >= 0, "pad: padding ({}, {}) of axis {} leaves a negative size {} (input shape {}, padding {})",
               before, after, d, shape[d], shape_str(x.shape()), shape_str(padding));
    const int64_t crop_before = std::max<int64_t>(0, -before), crop_after = std::max<int64_t>(0, -after);
    const int64_t kept = x.shape()[d] - crop_before - crop_after;
    if (kept <= 0) empty_block = true;
    src.offset += crop_before * src.strides[d];
    src_dense.offset += crop_before * src_dense.strides[d];
    src.shape[d] = src_dense.shape[d] = std::max<int64_t>(kept, 0);
  }
  Geometry dst{src.shape, contiguous_strides(shape), 0};
  for (int64_t p = 0; p < pairs; ++p) {
    const int64_t d = nd - 1 - p;
    dst.offset += std::max<int64_t>(0, padding[2 * p]) * dst.strides[d];
  }
  Tensor y = full(shape, value, x.dtype());
  if (!empty_block) view_of(y, dst).copy_(view_of(x, src));
  record("pad", y, {x}, [x, src_dense, dst, empty_block](const Tensor& gy) {
    detail::add_to_grad(x, gy.dtype(), [&](const Tensor& gx) {
      if (!empty_block) detail::add_view_into(view_of(gx, src_dense), view_of(gy, dst));
    });
  });
  return y;
}

// ---- flip ----------------------------------------------------------------------------------------------

// y = x with the order along `axes` reversed (a copy);  dx = gy flipped the same way
Tensor flip(const Tensor& x, const std::vector<int64_t>& axes) {
  check_defined(x, "flip", "input");
  std::vector<int64_t> normalized;
  for (int64_t axis : axes) {
    const int64_t a = axis_of(x, axis, "flip");
    HEED_CHECK(std::find(normalized.begin(), normalized.end(), a) == normalized.end(),
               "flip: axes {} repeat axis {} (shape {})", shape_str(axes), a, shape_str(x.shape()));
    normalized.push_back(a);
  }
  Tensor y = flip_copy(x, normalized);
  record("flip", y, {x}, [x, normalized](const Tensor& gy) { accumulate_grad(x, flip_copy(gy, normalized)); });
  return y;
}

}  // namespace heed
