// layers/sparse_attention.cpp — sparse attention patterns and the dense reference path, composed from heed
// ops. Equations in heed/nn/sparse_attention.hpp; the block-sparse kernel is an op
// (framework/ops/sparse_attention.cpp).
#include "heed/nn/sparse_attention.hpp"

#include <cmath>
#include <cstdlib>
#include <string>

#include "heed/ops.hpp"

namespace heed::nn {
namespace {

// ---- patterns ---------------------------------------------------------------------------------------------

template <class Keep>
Tensor make_pattern(const char* op, int64_t length, Keep keep) {
  HEED_CHECK(length > 0, "{}: length must be positive, got {}", op, length);
  Tensor mask = make_tensor({length, length}, DType::Bool);
  uint8_t* m = mask.data<uint8_t>();
  for (int64_t i = 0; i < length; ++i)
    for (int64_t j = 0; j < length; ++j) m[i * length + j] = keep(i, j) ? 1 : 0;
  return mask;
}

void check_stride(const char* op, int64_t stride) {
  HEED_CHECK(stride > 0, "{}: stride must be positive, got {}", op, stride);
}

// ---- the reference path's checks ----------------------------------------------------------------------------

void check_qkv(const char* op, const Tensor& q, const Tensor& k, const Tensor& v) {
  auto str = [](const Tensor& t) { return t.defined() ? shape_str(t.shape()) : std::string("undefined"); };
  HEED_CHECK(q.defined() && k.defined() && v.defined() && q.dim() == 4 && k.dim() == 4 && v.dim() == 4 &&
                 q.size(0) == k.size(0) && q.size(0) == v.size(0) && q.size(1) == k.size(1) &&
                 q.size(1) == v.size(1) && q.size(3) == k.size(3) && k.size(2) == v.size(2),
             "{}: expected q (N, H, L, d), k (N, H, S, d), v (N, H, S, m); got q {}, k {}, v {}", op, str(q), str(k),
             str(v));
  HEED_CHECK(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(),
             "{}: q, k, v must be Float32 or Float64 of one dtype; got {}, {}, {}", op, dtype_name(q.dtype()),
             dtype_name(k.dtype()), dtype_name(v.dtype()));
}

// keep_mask (L, S) or (H, L, S) for queries of length L, keys of length S and H heads.
void check_pattern(const char* op, const Tensor& keep, int64_t heads, int64_t L, int64_t S) {
  HEED_CHECK(keep.defined() && keep.dtype() == DType::Bool &&
                 (keep.shape() == Shape({L, S}) || keep.shape() == Shape({heads, L, S})),
             "{}: keep_mask must be Bool of shape [{}, {}] or [{}, {}, {}], got {} of shape {}", op, L, S, heads, L, S,
             keep.defined() ? dtype_name(keep.dtype()) : "undefined",
             keep.defined() ? shape_str(keep.shape()) : "undefined");
}

double default_scale(double scale, int64_t d) { return scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(d)); }

}  // namespace

// ---- patterns -----------------------------------------------------------------------------------------------

Tensor causal_keep_mask(int64_t length) {
  return make_pattern("causal_keep_mask", length, [](int64_t i, int64_t j) { return j <= i; });
}
Tensor strided_local_mask(int64_t length, int64_t stride) {
  check_stride("strided_local_mask", stride);
  return make_pattern("strided_local_mask", length, [=](int64_t i, int64_t j) { return j <= i && i - j < stride; });
}
Tensor strided_stride_mask(int64_t length, int64_t stride) {
  check_stride("strided_stride_mask", stride);
  return make_pattern("strided_stride_mask", length,
                      [=](int64_t i, int64_t j) { return j <= i && (i - j) % stride == 0; });
}
Tensor strided_mask(int64_t length, int64_t stride) {
  return mask_union({strided_local_mask(length, stride), strided_stride_mask(length, stride)});
}
Tensor fixed_block_mask(int64_t length, int64_t stride) {
  check_stride("fixed_block_mask", stride);
  return make_pattern("fixed_block_mask", length, [=](int64_t i, int64_t j) { return j <= i && j / stride == i / stride; });
}
Tensor fixed_summary_mask(int64_t length, int64_t stride, int64_t summary) {
  check_stride("fixed_summary_mask", stride);
  HEED_CHECK(summary >= 1 && summary <= stride, "fixed_summary_mask: summary must be in [1, stride = {}], got {}",
             stride, summary);
  return make_pattern("fixed_summary_mask", length,
                      [=](int64_t i, int64_t j) { return j <= i && j % stride >= stride - summary; });
}
Tensor fixed_mask(int64_t length, int64_t stride, int64_t summary) {
  return mask_union({fixed_block_mask(length, stride), fixed_summary_mask(length, stride, summary)});
}
Tensor local_window_mask(int64_t length, int64_t window, bool causal) {
  HEED_CHECK(window >= 0, "local_window_mask: window must be >= 0, got {}", window);
  return make_pattern("local_window_mask", length, [=](int64_t i, int64_t j) {
    return (!causal || j <= i) && std::abs(i - j) <= window;
  });
}
Tensor mask_union(const std::vector<Tensor>& masks) {
  HEED_CHECK(!masks.empty(), "mask_union: no masks given");
  Tensor out = masks[0];
  for (std::size_t i = 0; i < masks.size(); ++i) {
    HEED_CHECK(masks[i].defined() && masks[i].dtype() == DType::Bool && masks[i].shape() == masks[0].shape(),
               "mask_union: every mask must be Bool of shape {}; mask {} is {} of shape {}", shape_str(masks[0].shape()),
               i, masks[i].defined() ? dtype_name(masks[i].dtype()) : "undefined",
               masks[i].defined() ? shape_str(masks[i].shape()) : "undefined");
    if (i > 0) out = logical_or(out, masks[i]);
  }
  return out;
}

// ---- the dense reference path -----------------------------------------------------------------------------------

SparseAttentionOutput sparse_attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                                 const Tensor& keep_mask, double scale) {
  check_qkv("sparse_attention_reference", q, k, v);
  check_pattern("sparse_attention_reference", keep_mask, q.size(1), q.size(2), k.size(2));
  Tensor scores = matmul(q, k.transpose(-1, -2)) * default_scale(scale, q.size(3));  // (N, H, L, S)
  Tensor keep = keep_mask.dim() == 3 ? keep_mask.unsqueeze(0) : keep_mask;
  Tensor weights = masked_softmax(scores, keep, -1);
  return {matmul(weights, v), weights};
}

}  // namespace heed::nn
