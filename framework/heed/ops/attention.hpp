// heed/ops/attention.hpp — the hand-written attention kernels, each one recorded op with its own
// backward (docs/attention-spec.md M9, M10, M11). Included by heed/ops.hpp.
//
// Each op's forward and backward sit side by side in one .cpp under framework/ops/:
//   flash_attention.cpp   flash_attention: exact softmax attention, blockwise (FlashAttention-2)
//   sparse_attention.cpp  BlockLayout, make_block_layout, block_sparse_attention: attention over the
//                         kept tiles of a Bool pattern
//   linear_attention.cpp  causal_linear_attention: linear attention's causal RNN form
// The modules and the compositions around them (scaled_dot_product_attention, MultiheadAttention, the
// sparse patterns, linear_attention, LinearAttention) are layers; their headers (heed/nn/attention.hpp,
// sparse_attention.hpp, linear_attention.hpp) re-export these names into heed::nn, so
// heed::nn::flash_attention(...) and heed::flash_attention(...) are the same function.
//
// Masks follow heed's policy (docs/attention-spec.md section 0): keep-masks are Bool, true = may attend;
// a masked entry gets exactly zero weight and zero gradient; a query row with nothing to attend to gives
// a zero output row and zero gradient (no NaN). Every op takes Float32 or Float64 inputs of one dtype.
//
// ---- flash_attention ---------------------------------------------------------------------------------
// q (..., L, E), k (..., S, E), v (..., S, Ev), scale c (default 1/sqrt(E)):
//   O = softmax_j(c q kᵀ + bias, over the keys kept by keep_mask and the causal mask) v      (..., L, Ev)
// computed blockwise with an online softmax: the forward keeps only O and one logsumexp per query row,
// the backward recomputes each block of probabilities. Extra memory O(L · block), not O(L · S); the causal
// mask is never materialized and blocks above the causal diagonal are skipped. Causal alignment: keep
// j <= i + (S - L) when bottom_right (decoding with a KV cache), j <= i when top-left (PyTorch's
// is_causal=True).
//
// ---- block_sparse_attention --------------------------------------------------------------------------
// q (N, H, L, d), k (N, H, S, d), v (N, H, S, m), a pattern keep (L, S) or (H, L, S), scale c (default
// 1/sqrt(d)):  P = masked_softmax(c Q Kᵀ, keep),  O = P V   (N, H, L, m).
// A BlockLayout cuts the (L, S) plane into block_size x block_size tiles; the kernel visits only the
// tiles holding a kept entry (one BLAS GEMM per tile for the scores, for P V, and for each of the four
// backward products) and saves those tiles' probabilities (memory and time grow with the number of kept
// tiles, not L x S). Inside a partly kept tile the mask is applied entry by entry.
// Backward: dV = Pᵀ dO, dP = dO Vᵀ, dS = P ∘ (dP - rowsum(dO ∘ O)), dQ = c dS K, dK = c dSᵀ Q.
//
// ---- causal_linear_attention -------------------------------------------------------------------------
// "Transformers are RNNs" (Katharopoulos et al. 2020), causal form, with phi(x) = elu(x) + 1 and no
// scaling; q (N, H, L, d), k (N, H, L, d), v (N, H, L, m), q_i = phi(Q_i), k_j = phi(K_j):
//   S_i = S_{i-1} + k_i V_iᵀ (d x m),  Z_i = Z_{i-1} + k_i (d),  O_i = S_iᵀ q_i / (q_i · Z_i + eps).
// Key padding (key_keep (N, L) Bool, true = a real key) sets k_j = 0 for padded j. The backward needs
// O(L) memory: it saves phi(Q), phi(K), V, O and the denominators, replays the prefix states for
// dq_i = S_i u_i - w_i Z_i (u_i = dO_i / den_i, w_i = dO_i · O_i / den_i), then runs the reverse sums
// R_j = sum_{i>=j} q_i u_iᵀ, r_j = sum_{i>=j} w_i q_i for dk_j = R_j V_j - r_j and dV_j = R_jᵀ k_j, and
// chains through phi'(x) = 1 (x > 0), e^x (x <= 0). States accumulate in double for Float32 too.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "heed/tensor.hpp"

namespace heed {

// ---- flash attention ---------------------------------------------------------------------------------

/// Exact softmax attention as one recorded op, blockwise (see the top of this file). Float32 or Float64;
/// the leading (batch) axes of q, k and v broadcast; keep_mask (Bool) and bias (q's dtype) broadcast to
/// (..., L, S) and are read in place (a key-padding mask (N, 1, 1, S) is never expanded). Strided q/k/v
/// views with unit column stride (a head split of (N, L, H, hd)) are read without copying. Gradients flow
/// to q, k, v and bias. scale nullopt: 1/sqrt(E).
Tensor flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keep_mask = Tensor(),
                       const Tensor& bias = Tensor(), std::optional<double> scale = std::nullopt,
                       bool causal = false, bool bottom_right = true);

// ---- block-sparse attention --------------------------------------------------------------------------

/// Which tiles of the (L, S) plane a pattern keeps, per head pattern, as a compressed row list.
struct BlockLayout {
  int64_t heads = 1;  ///< number of patterns: 1 (shared by every head) or H
  int64_t query_length = 0;  ///< L
  int64_t key_length = 0;    ///< S
  int64_t block_size = 0;    ///< tile side
  int64_t query_blocks = 0;  ///< ceil(L / block_size)
  int64_t key_blocks = 0;    ///< ceil(S / block_size)
  Tensor keep_mask;  ///< (heads, L, S) Bool, dense
  /// Kept tiles of pattern p, query block b: key_block[row_start[r] .. row_start[r + 1]) with
  /// r = p * query_blocks + b, in increasing order; full[t] is true when every entry of tile t is kept.
  std::vector<int64_t> row_start;
  std::vector<int64_t> key_block;  ///< key block of each kept tile (see row_start)
  std::vector<uint8_t> full;       ///< per kept tile: 1 when every entry is kept

  int64_t kept_blocks() const { return static_cast<int64_t>(key_block.size()); }  ///< kept tiles, all patterns
  double density() const {  ///< kept tiles / all tiles
    return static_cast<double>(kept_blocks()) / static_cast<double>(heads * query_blocks * key_blocks);
  }
};
/// The layout of a pattern: keep_mask Bool (L, S) or (H, L, S); block_size > 0 (the last tiles may be
/// smaller).
BlockLayout make_block_layout(const Tensor& keep_mask, int64_t block_size);

/// Attention over the kept tiles of a layout, one recorded op (see the top of this file): q (N, H, L, d),
/// k (N, H, S, d), v (N, H, S, m) -> (N, H, L, m). The layout's L and S must match q and k, and its
/// number of patterns must be 1 or H. scale <= 0 means 1/sqrt(d).
Tensor block_sparse_attention(const Tensor& q, const Tensor& k, const Tensor& v, const BlockLayout& layout,
                              double scale = 0.0);

// ---- causal linear attention -------------------------------------------------------------------------

constexpr double kLinearAttentionEps = 1e-6;  ///< default eps added to linear attention's normalizer

/// Linear attention's causal RNN form (L == S), one recorded op with its own O(L)-memory backward (see
/// the top of this file): q (N, H, L, d), k (N, H, L, d), v (N, H, L, m) -> (N, H, L, m); key_keep (N, L)
/// Bool (true = a real key) or undefined.
Tensor causal_linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& key_keep = Tensor(),
                               double eps = kLinearAttentionEps);

}  // namespace heed
