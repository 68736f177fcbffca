// framework/ops/partial_grad.hpp — helpers for backwards that reach only part of an input (not installed).
//
// The backward of narrow/select/split/unbind, index_select, gather, embedding and pad touches a slice of
// its input's gradient. Allocating a full zero gradient per call would make n such backwards on one input
// (unbind over T time steps, an embedding looked up at every step) cost O(n * numel). add_to_grad instead
// adds into the input's existing gradient buffer in place when it has one, and otherwise starts a new
// zero buffer that goes through accumulate_grad (and its checks) once.
#pragma once
#include <utility>

#include "ops/common.hpp"

namespace heed::detail {

// x's gradient buffer when a partial gradient may be added into it in place, else undefined. A non-leaf
// that retains its gradient goes through accumulate_grad instead, which checks that its tape is alive.
inline Tensor inplace_grad_buffer(const Tensor& x, DType dtype) {
  TensorImpl* impl = x.impl();
  if (!impl->requires_grad || !impl->grad) return Tensor();
  if (impl->tape_index >= 0 && impl->retains_grad) return Tensor();
  Tensor g(impl->grad);
  if (g.dtype() != dtype || g.shape() != impl->shape || !g.is_contiguous()) return Tensor();
  return g;
}

// Calls add(buffer) with a dense float buffer of x's shape (row-major; mind buffer.offset()) into which
// the backward adds its partial gradient of x. Does nothing when x does not require grad.
template <class F>
void add_to_grad(const Tensor& x, DType dtype, F&& add) {
  if (!x.defined() || !x.requires_grad()) return;
  Tensor buffer = inplace_grad_buffer(x, dtype);
  if (buffer.defined()) {
    add(buffer);
    return;
  }
  Tensor gx = zeros(x.shape(), dtype);
  add(gx);
  accumulate_grad(x, std::move(gx));
}

// dst += src elementwise over two views of one shape and float dtype (any strides).
inline void add_view_into(const Tensor& dst, const Tensor& src) {
  const Shape ds = dst.strides(), ss = src.strides();
  HEED_DISPATCH_FLOAT(dst.dtype(), "add_view_into", [&] {
    scalar_t* d = dst.data<scalar_t>();
    const scalar_t* s = src.data<scalar_t>();
    strided_loop(dst.shape(), {&ds, &ss}, [&](const int64_t* off, int64_t n, const int64_t* inner) {
      scalar_t* pd = d + off[0];
      const scalar_t* ps = s + off[1];
      if (inner[0] == 1 && inner[1] == 1) {
        for (int64_t i = 0; i < n; ++i) pd[i] += ps[i];
      } else {
        for (int64_t i = 0; i < n; ++i) pd[i * inner[0]] += ps[i * inner[1]];
      }
    });
  });
}

}  // namespace heed::detail
