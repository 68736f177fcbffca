// framework/ops/sparse_attention.cpp — block_sparse_attention: attention over the kept tiles of a sparse
// pattern as one recorded op, and the BlockLayout it reads (heed/ops/attention.hpp; docs/attention-spec.md
// M10). The patterns themselves and the dense reference path are layers (layers/sparse_attention.cpp).
//
// For each (sample, head) and query block b, over the kept tiles (b, j) of the pattern, scale c:
//   forward   S_bj = c·Q_b K_jᵀ per tile (masked entries -inf inside a partly kept tile)
//             P_b = softmax of each row over its kept tiles (a row with nothing kept: zeros)
//             O_b = sum_j P_bj V_j
//   backward  D_i = rowsum(dO_i ∘ O_i);  dV_j += P_bjᵀ dO_b;  dP_bj = dO_b V_jᵀ
//             dS_bj = P_bj ∘ (dP_bj - D)  (0 where P is 0);  dQ_b += c·dS_bj K_j;  dK_j += c·dS_bjᵀ Q_b
// The forward saves the kept tiles' probabilities P (one buffer, TileRows gives each row of tiles its
// place), so memory and time grow with the number of kept tiles, never with L x S.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "heed/autograd.hpp"
#include "heed/ops.hpp"
#include "ops/blas.hpp"

namespace heed {
namespace {

constexpr const char* kOp = "block_sparse_attention";

struct SparseDims {
  int64_t batch, heads, L, S, d, m;
  double scale;
};

// Where the saved probabilities of (sample, head, query block) start, and the width of that row of tiles.
struct TileRows {
  std::vector<int64_t> offset;  // per (sample * heads + head) * query_blocks + block
  std::vector<int64_t> width;   // per (pattern * query_blocks + block): total columns of its kept tiles
  int64_t total = 0;
};

// Rows of query block b and columns of key block c (the last blocks may be smaller).
int64_t tile_rows(const BlockLayout& lay, int64_t b) {
  return std::min(lay.block_size, lay.query_length - b * lay.block_size);
}
int64_t tile_cols(const BlockLayout& lay, int64_t c) {
  return std::min(lay.block_size, lay.key_length - c * lay.block_size);
}

TileRows plan_tiles(const BlockLayout& lay, const SparseDims& s) {
  TileRows t;
  t.width.assign(lay.heads * lay.query_blocks, 0);
  for (int64_t r = 0; r < lay.heads * lay.query_blocks; ++r)
    for (int64_t u = lay.row_start[r]; u < lay.row_start[r + 1]; ++u) t.width[r] += tile_cols(lay, lay.key_block[u]);
  t.offset.resize(s.batch * s.heads * lay.query_blocks);
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t h = 0; h < s.heads; ++h)
      for (int64_t b = 0; b < lay.query_blocks; ++b) {
        const int64_t r = (lay.heads == 1 ? 0 : h) * lay.query_blocks + b;
        t.offset[(n * s.heads + h) * lay.query_blocks + b] = t.total;
        t.total += tile_rows(lay, b) * t.width[r];
      }
  return t;
}

// Forward: for every (sample, head, query block) the scores of its kept tiles side by side in P
// (rows x width), masked inside partly kept tiles, a softmax per row, then O = sum_tiles P_tile V_tile.
template <class T>
void sparse_forward(const BlockLayout& lay, const SparseDims& s, const TileRows& tiles, const T* Q, const T* K,
                    const T* V, T* P, T* O) {
  const uint8_t* keep = lay.keep_mask.data<uint8_t>();
  const int64_t bs = lay.block_size;
  const T scale = static_cast<T>(s.scale);  // c
  std::memset(O, 0, sizeof(T) * s.batch * s.heads * s.L * s.m);
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t nh = n * s.heads + h, pattern = lay.heads == 1 ? 0 : h;
      const T *q = Q + nh * s.L * s.d, *k = K + nh * s.S * s.d, *v = V + nh * s.S * s.m;
      T* o = O + nh * s.L * s.m;
      const uint8_t* keep_p = keep + pattern * s.L * s.S;
      for (int64_t b = 0; b < lay.query_blocks; ++b) {
        const int64_t r = pattern * lay.query_blocks + b, rows = tile_rows(lay, b), width = tiles.width[r];
        if (width == 0) continue;  // nothing kept: the rows stay zero
        T* p = P + tiles.offset[nh * lay.query_blocks + b];
        const int64_t i0 = b * bs;
        int64_t col = 0;
        for (int64_t u = lay.row_start[r]; u < lay.row_start[r + 1]; ++u) {
          const int64_t j0 = lay.key_block[u] * bs, cols = tile_cols(lay, lay.key_block[u]);
          // S_bj = c Q_b K_jᵀ
          detail::gemm(kOp, false, true, rows, cols, s.d, scale, q + i0 * s.d, s.d, k + j0 * s.d, s.d, T(0), p + col,
                       width);
          if (!lay.full[u])
            for (int64_t i = 0; i < rows; ++i)
              for (int64_t j = 0; j < cols; ++j)
                if (!keep_p[(i0 + i) * s.S + j0 + j]) p[i * width + col + j] = -std::numeric_limits<T>::infinity();
          col += cols;
        }
        for (int64_t i = 0; i < rows; ++i) {  // softmax over the row's kept entries; none kept -> zeros
          T* pr = p + i * width;
          T mx = -std::numeric_limits<T>::infinity();
          for (int64_t j = 0; j < width; ++j) mx = std::max(mx, pr[j]);
          if (mx == -std::numeric_limits<T>::infinity()) {
            std::fill(pr, pr + width, T(0));
            continue;
          }
          double total = 0.0;
          for (int64_t j = 0; j < width; ++j) {
            pr[j] = std::exp(pr[j] - mx);
            total += pr[j];
          }
          const T inv = static_cast<T>(1.0 / total);
          for (int64_t j = 0; j < width; ++j) pr[j] *= inv;
        }
        col = 0;
        for (int64_t u = lay.row_start[r]; u < lay.row_start[r + 1]; ++u) {
          const int64_t j0 = lay.key_block[u] * bs, cols = tile_cols(lay, lay.key_block[u]);
          // O_b += P_bj V_j
          detail::gemm(kOp, false, false, rows, s.m, cols, T(1), p + col, width, v + j0 * s.m, s.m, T(1),
                       o + i0 * s.m, s.m);
          col += cols;
        }
      }
    }
}

// Backward over the same tiles: dV += P^T dO, dP = dO V^T, dS = P o (dP - D) with D_i = dO_i . O_i,
// dQ += c dS K, dK += c dS^T Q.
template <class T>
void sparse_backward(const BlockLayout& lay, const SparseDims& s, const TileRows& tiles, const T* Q, const T* K,
                     const T* V, const T* P, const T* O, const T* dO, T* dQ, T* dK, T* dV) {
  const int64_t bs = lay.block_size;
  const T scale = static_cast<T>(s.scale);  // c
  std::memset(dQ, 0, sizeof(T) * s.batch * s.heads * s.L * s.d);
  std::memset(dK, 0, sizeof(T) * s.batch * s.heads * s.S * s.d);
  std::memset(dV, 0, sizeof(T) * s.batch * s.heads * s.S * s.m);
  std::vector<T> ds, row_dot(bs);
  for (int64_t n = 0; n < s.batch; ++n)
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t nh = n * s.heads + h, pattern = lay.heads == 1 ? 0 : h;
      const T *q = Q + nh * s.L * s.d, *k = K + nh * s.S * s.d, *v = V + nh * s.S * s.m;
      const T *o = O + nh * s.L * s.m, *go = dO + nh * s.L * s.m;
      T *dq = dQ + nh * s.L * s.d, *dk = dK + nh * s.S * s.d, *dv = dV + nh * s.S * s.m;
      for (int64_t b = 0; b < lay.query_blocks; ++b) {
        const int64_t r = pattern * lay.query_blocks + b, rows = tile_rows(lay, b), width = tiles.width[r];
        if (width == 0) continue;
        const T* p = P + tiles.offset[nh * lay.query_blocks + b];
        const int64_t i0 = b * bs;
        for (int64_t i = 0; i < rows; ++i) {
          double dot = 0.0;
          for (int64_t c = 0; c < s.m; ++c) dot += static_cast<double>(go[(i0 + i) * s.m + c]) * o[(i0 + i) * s.m + c];
          row_dot[i] = static_cast<T>(dot);
        }
        ds.resize(rows * width);
        int64_t col = 0;
        for (int64_t u = lay.row_start[r]; u < lay.row_start[r + 1]; ++u) {
          const int64_t j0 = lay.key_block[u] * bs, cols = tile_cols(lay, lay.key_block[u]);
          // dV_j += P_bjᵀ dO_b;  dP_bj = dO_b V_jᵀ
          detail::gemm(kOp, true, false, cols, s.m, rows, T(1), p + col, width, go + i0 * s.m, s.m, T(1),
                       dv + j0 * s.m, s.m);
          detail::gemm(kOp, false, true, rows, cols, s.m, T(1), go + i0 * s.m, s.m, v + j0 * s.m, s.m, T(0),
                       ds.data() + col, width);
          col += cols;
        }
        for (int64_t i = 0; i < rows; ++i)
          for (int64_t j = 0; j < width; ++j) {
            const T pij = p[i * width + j];
            ds[i * width + j] = pij != 0 ? pij * (ds[i * width + j] - row_dot[i]) : T(0);
          }
        col = 0;
        for (int64_t u = lay.row_start[r]; u < lay.row_start[r + 1]; ++u) {
          const int64_t j0 = lay.key_block[u] * bs, cols = tile_cols(lay, lay.key_block[u]);
          // dQ_b += c dS_bj K_j;  dK_j += c dS_bjᵀ Q_b
          detail::gemm(kOp, false, false, rows, s.d, cols, scale, ds.data() + col, width, k + j0 * s.d, s.d, T(1),
                       dq + i0 * s.d, s.d);
          detail::gemm(kOp, true, false, cols, s.d, rows, scale, ds.data() + col, width, q + i0 * s.d, s.d, T(1),
                       dk + j0 * s.d, s.d);
          col += cols;
        }
      }
    }
}

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

double default_scale(double scale, int64_t d) { return scale > 0 ? scale : 1.0 / std::sqrt(static_cast<double>(d)); }

}  // namespace

// ---- the block layout ---------------------------------------------------------------------------------

BlockLayout make_block_layout(const Tensor& keep_mask, int64_t block_size) {
  HEED_CHECK(keep_mask.defined() && keep_mask.dtype() == DType::Bool && (keep_mask.dim() == 2 || keep_mask.dim() == 3),
             "make_block_layout: keep_mask must be Bool (L, S) or (H, L, S), got {} of shape {}",
             keep_mask.defined() ? dtype_name(keep_mask.dtype()) : "undefined",
             keep_mask.defined() ? shape_str(keep_mask.shape()) : "undefined");
  HEED_CHECK(block_size > 0, "make_block_layout: block_size must be positive, got {}", block_size);
  BlockLayout lay;
  lay.keep_mask = (keep_mask.dim() == 2 ? keep_mask.unsqueeze(0) : keep_mask).contiguous();
  lay.heads = lay.keep_mask.size(0);
  lay.query_length = lay.keep_mask.size(1);
  lay.key_length = lay.keep_mask.size(2);
  lay.block_size = block_size;
  lay.query_blocks = (lay.query_length + block_size - 1) / block_size;
  lay.key_blocks = (lay.key_length + block_size - 1) / block_size;
  const uint8_t* keep = lay.keep_mask.data<uint8_t>();
  const int64_t L = lay.query_length, S = lay.key_length;
  lay.row_start.push_back(0);
  for (int64_t p = 0; p < lay.heads; ++p)
    for (int64_t b = 0; b < lay.query_blocks; ++b) {
      const int64_t i0 = b * block_size, i1 = std::min(L, i0 + block_size);
      for (int64_t c = 0; c < lay.key_blocks; ++c) {
        const int64_t j0 = c * block_size, j1 = std::min(S, j0 + block_size);
        int64_t kept = 0;
        for (int64_t i = i0; i < i1; ++i)
          for (int64_t j = j0; j < j1; ++j) kept += keep[(p * L + i) * S + j];
        if (kept == 0) continue;
        lay.key_block.push_back(c);
        lay.full.push_back(kept == (i1 - i0) * (j1 - j0));
      }
      lay.row_start.push_back(static_cast<int64_t>(lay.key_block.size()));
    }
  return lay;
}

// ---- the block-sparse op ------------------------------------------------------------------------------

Tensor block_sparse_attention(const Tensor& q, const Tensor& k, const Tensor& v, const BlockLayout& layout,
                              double scale) {
  check_qkv(kOp, q, k, v);
  HEED_CHECK(layout.block_size > 0 && layout.query_length == q.size(2) && layout.key_length == k.size(2) &&
                 (layout.heads == 1 || layout.heads == q.size(1)),
             "block_sparse_attention: the layout is for L = {}, S = {} with {} pattern(s), but q is {} and k is {}",
             layout.query_length, layout.key_length, layout.heads, shape_str(q.shape()), shape_str(k.shape()));
  const SparseDims dims{q.size(0), q.size(1), q.size(2), k.size(2),
                        q.size(3), v.size(3), default_scale(scale, q.size(3))};
  const TileRows tiles = plan_tiles(layout, dims);
  Tensor Q = q.detach().contiguous(), K = k.detach().contiguous(), V = v.detach().contiguous();
  Tensor P = make_tensor({tiles.total}, q.dtype());  // probabilities of the kept tiles only
  Tensor O = make_tensor({dims.batch, dims.heads, dims.L, dims.m}, q.dtype());
  if (q.dtype() == DType::Float64)
    sparse_forward<double>(layout, dims, tiles, Q.data<double>(), K.data<double>(), V.data<double>(), P.data<double>(),
                           O.data<double>());
  else
    sparse_forward<float>(layout, dims, tiles, Q.data<float>(), K.data<float>(), V.data<float>(), P.data<float>(),
                          O.data<float>());

  record(kOp, O, {q, k, v}, [q, k, v, Q, K, V, P, O, layout, dims, tiles](const Tensor& g) {
    Tensor gO = g.contiguous();
    Tensor dQ = make_tensor(Q.shape(), Q.dtype()), dK = make_tensor(K.shape(), K.dtype()),
           dV = make_tensor(V.shape(), V.dtype());
    if (Q.dtype() == DType::Float64)
      sparse_backward<double>(layout, dims, tiles, Q.data<double>(), K.data<double>(), V.data<double>(),
                              P.data<double>(), O.data<double>(), gO.data<double>(), dQ.data<double>(),
                              dK.data<double>(), dV.data<double>());
    else
      sparse_backward<float>(layout, dims, tiles, Q.data<float>(), K.data<float>(), V.data<float>(), P.data<float>(),
                             O.data<float>(), gO.data<float>(), dQ.data<float>(), dK.data<float>(), dV.data<float>());
    accumulate_grad(q, dQ);
    accumulate_grad(k, dK);
    accumulate_grad(v, dV);
  });
  return O;
}

}  // namespace heed
