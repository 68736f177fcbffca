// heed/nn/sparse_attention.hpp — sparse attention patterns (Child et al. 2019, "Generating Long Sequences
// with Sparse Transformers"; docs/attention-spec.md M10) and a block-sparse attention kernel.
//
// Patterns. Each builder returns a Bool keep-mask (L, L), true = query i may attend to key j, always on
// top of causal (j <= i); l is the stride (about sqrt(L) in the paper), c the number of summary columns:
//   strided_local_mask(L, l)        (i - j) < l                       strided head 1 (the last l keys)
//   strided_stride_mask(L, l)       (i - j) mod l == 0                strided head 2 (every l-th key back)
//   fixed_block_mask(L, l)          floor(j / l) == floor(i / l)      fixed head 1 (own block)
//   fixed_summary_mask(L, l, c)     j mod l in {l-c, ..., l-1}        fixed head 2 (summary columns)
//   local_window_mask(L, w)         |i - j| <= w                      Longformer-style window (causal:
//                                                                     j in [i-w, i]; non-causal on request)
//   strided_mask / fixed_mask       the union of the two heads (the paper's "combined in one head")
//   mask_union(masks)               elementwise or
// The paper interleaves the two heads across layers or merges them in one head; here a kernel takes
// either one (L, S) pattern for every head or an (H, L, S) stack, one pattern per head.
//
// Attention with a pattern, q (N, H, L, d), k (N, H, S, d), v (N, H, S, m), scale c (default 1/sqrt(d)):
//   P = masked_softmax(c Q K^T, keep),  O = P V          (N, H, L, m)
// with heed's mask policy: masked entries get exactly zero weight and gradient; a query row with no kept
// key gives zeros (docs/attention-spec.md section 0).
//   sparse_attention_reference   the dense path: the full (N, H, L, S) score matrix, heed::masked_softmax
//                                and matmul; returns the weights too (for drawing).
//   block_sparse_attention       one heed op (heed/ops/attention.hpp, re-exported below; forward and
//                                backward side by side in framework/ops/sparse_attention.cpp) over a
//                                BlockLayout (make_block_layout, likewise): the (L, S) plane is cut into
//                                block_size x block_size tiles and only the tiles holding a kept entry are
//                                visited (one BLAS GEMM per tile for the scores, for P V, and for each of
//                                the four backward products); masked tiles are never touched. The softmax
//                                runs over each query row's kept tiles; it saves those tiles' probabilities
//                                (memory and time grow with the number of kept tiles, not L x S). Inside a
//                                partly kept tile the mask is applied entry by entry; fully kept tiles skip
//                                the lookups. Both paths agree to about 1e-15 in float64.
//                                The backward is the spec's: dV = P^T dO, dP = dO V^T,
//                                dS = P o (dP - rowsum(dO o O)), dQ = c dS K, dK = c dS^T Q.
// Key padding that differs per sample is not part of a pattern (a pattern is shared by the batch).
#pragma once
#include <cstdint>
#include <vector>

#include "heed/ops/attention.hpp"
#include "heed/tensor.hpp"

namespace heed::nn {

// ---- patterns: (L, L) Bool keep-masks, causal included -----------------------------------------------
Tensor causal_keep_mask(int64_t length);  ///< j <= i: plain causal attention, the dense baseline
Tensor strided_local_mask(int64_t length, int64_t stride);   ///< j <= i and i - j < stride (strided head 1)
Tensor strided_stride_mask(int64_t length, int64_t stride);  ///< j <= i and (i - j) mod stride == 0 (head 2)
Tensor strided_mask(int64_t length, int64_t stride);         ///< union of the two strided heads
Tensor fixed_block_mask(int64_t length, int64_t stride);     ///< j <= i in i's own block of `stride` (head 1)
/// j <= i and j mod stride in the last `summary` columns of its block (fixed head 2).
Tensor fixed_summary_mask(int64_t length, int64_t stride, int64_t summary);
Tensor fixed_mask(int64_t length, int64_t stride, int64_t summary);  ///< union of the two fixed heads
/// |i - j| <= window; with causal also j <= i.
Tensor local_window_mask(int64_t length, int64_t window, bool causal = true);
Tensor mask_union(const std::vector<Tensor>& masks);  ///< elementwise or of equal-shaped Bool masks

// ---- attention with a pattern ---------------------------------------------------------------------------
/// What sparse_attention_reference returns.
struct SparseAttentionOutput {
  Tensor output;   ///< (N, H, L, m)
  Tensor weights;  ///< (N, H, L, S), the reference path only
};
/// keep_mask Bool (L, S) or (H, L, S). scale <= 0 means 1/sqrt(d).
SparseAttentionOutput sparse_attention_reference(const Tensor& q, const Tensor& k, const Tensor& v,
                                                 const Tensor& keep_mask, double scale = 0.0);

// ---- the block-sparse kernel: ops (heed/ops/attention.hpp), also reachable through heed::nn ----------
using heed::BlockLayout;             // which tiles of the (L, S) plane a pattern keeps
using heed::make_block_layout;       // the BlockLayout of a keep-mask and a tile side
using heed::block_sparse_attention;  // attention over a layout's kept tiles, one recorded op

}  // namespace heed::nn
