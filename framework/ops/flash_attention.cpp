// framework/ops/flash_attention.cpp — flash_attention: memory-efficient exact attention as one recorded op
// (heed/ops/attention.hpp; docs/attention-spec.md M11; FlashAttention-2's loop order, Dao 2023, on the CPU
// with BLAS on blocks).
//
// For each query block Q_i (kRowBlock rows) and key block K_j (kColBlock keys) of one batch entry:
//   forward   S = c·Q_i K_jᵀ + bias (masked entries -inf);  m' = max(m, rowmax S);  P̃ = e^(S - m')
//             l' = e^(m - m') l + rowsum P̃;  O' = e^(m - m') O + P̃ V_j
//             end of row block: O /= l; LSE = m + log l (+inf for a row with nothing to attend to)
//   backward  P = e^(S - LSE) recomputed per block;  D = rowsum(dO ∘ O)
//             dV_j += Pᵀ dO_i;  dP = dO_i V_jᵀ;  dS = P ∘ (dP - D);  dbias += dS
//             dQ_i += c·dS K_j;  dK_j += c·dS ᵀ Q_i
// Only O and LSE are saved between the passes; the extra memory is one kRowBlock x kColBlock score
// block (two in the backward) plus one value per query row. O accumulates in place in the output.
// Key blocks that the causal mask or the keep-mask hide completely are skipped in both passes (no GEMM),
// and the causal mask is applied from indices, never materialized. A row whose every key is masked has
// l = 0: its output is 0 and LSE = +inf makes its recomputed P, and so every gradient through it, 0.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "heed/autograd.hpp"
#include "heed/ops.hpp"
#include "ops/blas.hpp"
#include "ops/common.hpp"
#include "ops/row_kernels.hpp"

namespace heed {
namespace {

constexpr int64_t kRowBlock = 64;   // query rows per block
constexpr int64_t kColBlock = 128;  // keys per block
constexpr const char* kOp = "flash_attention";

// Strides that read a tensor of shape `own` with strides `own_strides` as shape `full` (0 on broadcast axes).
Shape strides_in(const Shape& own, const Shape& own_strides, const Shape& full) {
  Shape out(full.size(), 0);
  const std::size_t lead = full.size() - own.size();
  for (std::size_t i = 0; i < own.size(); ++i) out[lead + i] = own[i] == 1 ? 0 : own_strides[i];
  return out;
}

// Element offsets, one per batch entry (row-major over `batch`), for the batch-axis strides in `strides`.
std::vector<int64_t> batch_offsets(const Shape& batch, const Shape& strides) {
  const std::size_t nd = batch.size();
  std::vector<int64_t> offsets(static_cast<std::size_t>(shape_numel(batch)));
  Shape idx(nd, 0);
  int64_t off = 0;
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    offsets[i] = off;
    for (std::size_t d = nd; d-- > 0;) {  // odometer step
      off += strides[d];
      if (++idx[d] < batch[d]) break;
      off -= strides[d] * batch[d];
      idx[d] = 0;
    }
  }
  return offsets;
}

Shape with_matrix(Shape batch, int64_t rows, int64_t cols) {
  batch.push_back(rows);
  batch.push_back(cols);
  return batch;
}

// q, k or v as the kernel reads it: matrices with unit column stride and row stride ld, one per batch
// entry (a broadcast batch axis repeats an offset). Strided views such as a head split are read in
// place; other layouts are copied once.
struct MatrixInput {
  Tensor data;                        // detached
  std::vector<int64_t> offsets;       // per batch entry, from data.data<T>()
  int64_t ld = 1;
  std::vector<int64_t> grad_offsets;  // of the same matrices in a dense gradient of the input's shape
};

MatrixInput matrix_input(const Tensor& x, const Shape& batch) {
  MatrixInput m;
  m.data = x.detach();
  const int64_t nd = x.dim(), rows = x.size(-2), cols = x.size(-1);
  const Shape& st = m.data.strides();
  const bool readable = (cols <= 1 || st[nd - 1] == 1) && (rows <= 1 || st[nd - 2] >= std::max<int64_t>(cols, 1));
  if (!readable) m.data = m.data.contiguous();
  m.ld = rows <= 1 ? std::max<int64_t>(cols, 1) : m.data.strides()[nd - 2];
  const Shape full = with_matrix(batch, rows, cols);
  m.offsets = batch_offsets(batch, strides_in(x.shape(), m.data.strides(), full));
  m.grad_offsets = batch_offsets(batch, strides_in(x.shape(), contiguous_strides(x.shape()), full));
  return m;
}

// A keep-mask or bias broadcast to (batch..., L, S), read in place through strides.
struct ScoreInput {
  Tensor data;  // detached, or undefined
  std::vector<int64_t> offsets;
  int64_t row_stride = 0, col_stride = 0;
  std::vector<int64_t> grad_offsets;  // bias only: into a dense gradient of its shape
  int64_t grad_row_stride = 0, grad_col_stride = 0;
};

ScoreInput score_input(const Tensor& t, const Shape& batch, int64_t L, int64_t S) {
  ScoreInput in;
  if (!t.defined()) return in;
  in.data = t.detach();
  const Shape full = with_matrix(batch, L, S);
  const Shape st = strides_in(t.shape(), in.data.strides(), full);
  in.offsets = batch_offsets(batch, st);
  in.row_stride = st[full.size() - 2];
  in.col_stride = st[full.size() - 1];
  const Shape gst = strides_in(t.shape(), contiguous_strides(t.shape()), full);
  in.grad_offsets = batch_offsets(batch, gst);
  in.grad_row_stride = gst[full.size() - 2];
  in.grad_col_stride = gst[full.size() - 1];
  return in;
}

// Everything both passes share.
struct FlashPlan {
  Shape batch;
  int64_t L = 0, S = 0, E = 0, Ev = 0;
  double scale = 1.0;
  bool causal = false;
  int64_t diagonal = 0;  // causal: keep j <= i + diagonal
  MatrixInput q, k, v;
  ScoreInput keep, bias;
  int64_t batches() const { return shape_numel(batch); }
  // Keys [0, end) can matter to query rows [i0, i0 + rows).
  int64_t key_end(int64_t i0, int64_t rows) const {
    return causal ? std::clamp<int64_t>(i0 + rows + diagonal, 0, S) : S;
  }
};

// Scores of one block: s (rows x cols, row stride cols) = scale · Q_i K_jᵀ + bias, -inf where masked.
// Returns false (s untouched) when every entry of the block is masked, so the caller can skip it.
template <class T>
bool block_scores(const FlashPlan& p, int64_t b, int64_t i0, int64_t rows, int64_t j0, int64_t cols, T* s) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  const uint8_t* keep = nullptr;
  if (p.keep.data.defined()) {
    keep = p.keep.data.data<uint8_t>() + p.keep.offsets[b] + i0 * p.keep.row_stride + j0 * p.keep.col_stride;
    bool any = false;
    for (int64_t r = 0; r < rows && !any; ++r) {
      const uint8_t* kr = keep + r * p.keep.row_stride;
      const int64_t last = p.causal ? std::min<int64_t>(cols, i0 + r + p.diagonal - j0 + 1) : cols;
      for (int64_t c = 0; c < last; ++c) any |= kr[c * p.keep.col_stride] != 0;
    }
    if (!any) return false;
  }
  const T* q = p.q.data.data<T>() + p.q.offsets[b] + i0 * p.q.ld;
  const T* k = p.k.data.data<T>() + p.k.offsets[b] + j0 * p.k.ld;
  detail::gemm(kOp, false, true, rows, cols, p.E, static_cast<T>(p.scale), q, p.q.ld, k, p.k.ld, T(0), s, cols);
  if (p.bias.data.defined()) {
    const T* bias = p.bias.data.data<T>() + p.bias.offsets[b] + i0 * p.bias.row_stride + j0 * p.bias.col_stride;
    const int64_t cs = p.bias.col_stride;
    for (int64_t r = 0; r < rows; ++r) {
      const T* br = bias + r * p.bias.row_stride;
      T* sr = s + r * cols;
      if (cs == 1)
        for (int64_t c = 0; c < cols; ++c) sr[c] += br[c];
      else
        for (int64_t c = 0; c < cols; ++c) sr[c] += br[c * cs];
    }
  }
  if (keep) {
    const int64_t cs = p.keep.col_stride;
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* kr = keep + r * p.keep.row_stride;
      T* sr = s + r * cols;
      for (int64_t c = 0; c < cols; ++c) sr[c] = kr[c * cs] ? sr[c] : neg_inf;
    }
  }
  if (p.causal && j0 + cols - 1 > i0 + p.diagonal) {  // part of the block lies above the diagonal
    for (int64_t r = 0; r < rows; ++r) {
      T* sr = s + r * cols;
      for (int64_t c = std::max<int64_t>(0, i0 + r + p.diagonal - j0 + 1); c < cols; ++c) sr[c] = neg_inf;
    }
  }
  return true;
}

// Forward of one batch entry: out (L x Ev, dense) and lse (L).
template <class T>
void flash_forward(const FlashPlan& p, int64_t b, T* out, T* lse, std::vector<T>& s_buf) {
  const T neg_inf = -std::numeric_limits<T>::infinity();
  T m[kRowBlock], l[kRowBlock], alpha[kRowBlock];
  const T* v = p.v.data.data<T>() + p.v.offsets[b];
  std::memset(out, 0, static_cast<std::size_t>(p.L * p.Ev) * sizeof(T));
  for (int64_t i0 = 0; i0 < p.L; i0 += kRowBlock) {
    const int64_t rows = std::min(kRowBlock, p.L - i0), key_end = p.key_end(i0, rows);
    T* o = out + i0 * p.Ev;
    std::fill(m, m + rows, neg_inf);
    std::fill(l, l + rows, T(0));
    for (int64_t j0 = 0; j0 < key_end; j0 += kColBlock) {
      const int64_t cols = std::min(kColBlock, key_end - j0);
      T* s = s_buf.data();
      if (!block_scores(p, b, i0, rows, j0, cols, s)) continue;
      for (int64_t r = 0; r < rows; ++r) {  // m' = max(m, rowmax S); S -= m'
        T* sr = s + r * cols;
        const T m_new = std::max(m[r], detail::row_max(sr, cols));
        const T shift = m_new == neg_inf ? T(0) : m_new;  // nothing kept yet: e^-inf = 0 stays 0
        alpha[r] = m[r] == neg_inf ? T(0) : std::exp(m[r] - m_new);
        m[r] = m_new;
        for (int64_t c = 0; c < cols; ++c) sr[c] -= shift;
      }
      detail::exp_inplace(s, rows * cols);  // P̃
      for (int64_t r = 0; r < rows; ++r) {  // l' = alpha l + rowsum P̃;  O *= alpha
        l[r] = alpha[r] * l[r] + static_cast<T>(detail::row_sum(s + r * cols, cols));
        if (alpha[r] != T(1)) {
          T* orow = o + r * p.Ev;
          for (int64_t e = 0; e < p.Ev; ++e) orow[e] *= alpha[r];
        }
      }
      // O += P̃ V_j
      detail::gemm(kOp, false, false, rows, p.Ev, cols, T(1), s, cols, v + j0 * p.v.ld, p.v.ld, T(1), o, p.Ev);
    }
    for (int64_t r = 0; r < rows; ++r) {  // O /= l;  LSE = m + log l
      T* orow = o + r * p.Ev;
      const T inv = l[r] > T(0) ? T(1) / l[r] : T(0);
      for (int64_t e = 0; e < p.Ev; ++e) orow[e] *= inv;
      lse[i0 + r] = l[r] > T(0) ? m[r] + std::log(l[r]) : std::numeric_limits<T>::infinity();
    }
  }
}

// Backward of one batch entry. dq/dk/dv/dbias point at this entry's matrices in the dense gradients
// (null when not wanted); accumulates (+=), so broadcast inputs sum over the batch entries they serve.
template <class T>
void flash_backward(const FlashPlan& p, int64_t b, const T* out, const T* lse, const T* dout, T* dq, T* dk, T* dv,
                    T* dbias, std::vector<T>& s_buf, std::vector<T>& ds_buf, std::vector<T>& d_buf) {
  const T* q = p.q.data.data<T>() + p.q.offsets[b];
  const T* k = p.k.data.data<T>() + p.k.offsets[b];
  const T* v = p.v.data.data<T>() + p.v.offsets[b];
  const T c = static_cast<T>(p.scale);
  T* d = d_buf.data();
  for (int64_t i = 0; i < p.L; ++i) {  // D_i = rowsum(dO_i ∘ O_i)
    const T *o = out + i * p.Ev, *g = dout + i * p.Ev;
    double acc = 0.0;
    for (int64_t e = 0; e < p.Ev; ++e) acc += static_cast<double>(o[e]) * g[e];
    d[i] = static_cast<T>(acc);
  }
  for (int64_t i0 = 0; i0 < p.L; i0 += kRowBlock) {
    const int64_t rows = std::min(kRowBlock, p.L - i0), key_end = p.key_end(i0, rows);
    const T* dout_i = dout + i0 * p.Ev;
    for (int64_t j0 = 0; j0 < key_end; j0 += kColBlock) {
      const int64_t cols = std::min(kColBlock, key_end - j0);
      T *s = s_buf.data(), *ds = ds_buf.data();
      if (!block_scores(p, b, i0, rows, j0, cols, s)) continue;
      for (int64_t r = 0; r < rows; ++r) {  // P = e^(S - LSE); a fully masked row has LSE = +inf -> 0
        T* sr = s + r * cols;
        const T shift = lse[i0 + r];
        for (int64_t col = 0; col < cols; ++col) sr[col] -= shift;
      }
      detail::exp_inplace(s, rows * cols);
      if (dv)  // dV_j += Pᵀ dO_i
        detail::gemm(kOp, true, false, cols, p.Ev, rows, T(1), s, cols, dout_i, p.Ev, T(1), dv + j0 * p.Ev, p.Ev);
      // dP = dO_i V_jᵀ
      detail::gemm(kOp, false, true, rows, cols, p.Ev, T(1), dout_i, p.Ev, v + j0 * p.v.ld, p.v.ld, T(0), ds, cols);
      for (int64_t r = 0; r < rows; ++r) {  // dS = P ∘ (dP - D)
        const T* pr = s + r * cols;
        T* dsr = ds + r * cols;
        const T dr = d[i0 + r];
        for (int64_t col = 0; col < cols; ++col) dsr[col] = pr[col] * (dsr[col] - dr);
      }
      if (dbias) {
        T* db = dbias + i0 * p.bias.grad_row_stride + j0 * p.bias.grad_col_stride;
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t col = 0; col < cols; ++col)
            db[r * p.bias.grad_row_stride + col * p.bias.grad_col_stride] += ds[r * cols + col];
      }
      if (dq)  // dQ_i += c·dS K_j
        detail::gemm(kOp, false, false, rows, p.E, cols, c, ds, cols, k + j0 * p.k.ld, p.k.ld, T(1), dq + i0 * p.E,
                     p.E);
      if (dk)  // dK_j += c·dSᵀ Q_i
        detail::gemm(kOp, true, false, cols, p.E, rows, c, ds, cols, q + i0 * p.q.ld, p.q.ld, T(1), dk + j0 * p.E,
                     p.E);
    }
  }
}

std::string describe(const Tensor& t) { return t.defined() ? shape_str(t.shape()) : std::string("undefined"); }

}  // namespace

Tensor flash_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& keep_mask, const Tensor& bias,
                       std::optional<double> scale, bool causal, bool bottom_right) {
  HEED_CHECK(q.defined() && k.defined() && v.defined(), "flash_attention: q, k and v must be defined, got {}, {}, {}",
             describe(q), describe(k), describe(v));
  HEED_CHECK(is_floating(q.dtype()) && q.dtype() == k.dtype() && q.dtype() == v.dtype(),
             "flash_attention: q, k and v must share one float dtype, got {} {}, {} {}, {} {}", dtype_name(q.dtype()),
             shape_str(q.shape()), dtype_name(k.dtype()), shape_str(k.shape()), dtype_name(v.dtype()),
             shape_str(v.shape()));
  HEED_CHECK(q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2 && q.size(-1) == k.size(-1) && k.size(-2) == v.size(-2),
             "flash_attention: expected q (..., L, E), k (..., S, E), v (..., S, Ev), got q {}, k {}, v {}",
             shape_str(q.shape()), shape_str(k.shape()), shape_str(v.shape()));
  HEED_CHECK(q.size(-1) > 0 && v.size(-1) > 0, "flash_attention: empty feature axis: q {}, v {}",
             shape_str(q.shape()), shape_str(v.shape()));
  FlashPlan p;
  p.L = q.size(-2), p.S = k.size(-2), p.E = q.size(-1), p.Ev = v.size(-1);
  const auto lead = [](const Tensor& t) { return Shape(t.shape().begin(), t.shape().end() - 2); };
  p.batch = detail::broadcast_shapes(detail::broadcast_shapes(lead(q), lead(k), kOp), lead(v), kOp);
  const Shape scores_shape = with_matrix(p.batch, p.L, p.S);
  const auto check_scores_input = [&](const Tensor& t, const char* what) {
    if (!t.defined()) return;
    bool ok = t.dim() <= static_cast<int64_t>(scores_shape.size());
    for (int64_t i = 1; ok && i <= t.dim(); ++i) {
      const int64_t a = t.size(-i), want = scores_shape[scores_shape.size() - i];
      ok = a == 1 || a == want;
    }
    HEED_CHECK(ok, "flash_attention: {} of shape {} does not broadcast to the scores {} (q {}, k {})", what,
               shape_str(t.shape()), shape_str(scores_shape), shape_str(q.shape()), shape_str(k.shape()));
  };
  check_scores_input(keep_mask, "keep_mask");
  check_scores_input(bias, "bias");
  if (keep_mask.defined())
    HEED_CHECK(keep_mask.dtype() == DType::Bool, "flash_attention: keep_mask must be Bool, got {} of shape {}",
               dtype_name(keep_mask.dtype()), shape_str(keep_mask.shape()));
  if (bias.defined())
    HEED_CHECK(bias.dtype() == q.dtype(), "flash_attention: bias must have q's dtype {}, got {} of shape {}",
               dtype_name(q.dtype()), dtype_name(bias.dtype()), shape_str(bias.shape()));
  p.scale = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(p.E));
  p.causal = causal;
  p.diagonal = bottom_right ? p.S - p.L : 0;
  p.q = matrix_input(q, p.batch);
  p.k = matrix_input(k, p.batch);
  p.v = matrix_input(v, p.batch);
  p.keep = score_input(keep_mask, p.batch, p.L, p.S);
  p.bias = score_input(bias, p.batch, p.L, p.S);

  Tensor out = make_tensor(with_matrix(p.batch, p.L, p.Ev), q.dtype());
  Tensor lse = make_tensor(with_matrix(p.batch, p.L, 1), q.dtype());
  HEED_DISPATCH_FLOAT(q.dtype(), kOp, [&] {
    std::vector<scalar_t> s_buf(static_cast<std::size_t>(kRowBlock * kColBlock));
    for (int64_t b = 0; b < p.batches(); ++b)
      flash_forward<scalar_t>(p, b, out.data<scalar_t>() + b * p.L * p.Ev, lse.data<scalar_t>() + b * p.L, s_buf);
  });

  const Tensor bias_in = bias.defined() && is_floating(bias.dtype()) ? bias : Tensor();
  record(kOp, out, {q, k, v, bias_in}, [p, q, k, v, bias_in, out, lse](const Tensor& grad_out) {
    const Tensor dout = grad_out.contiguous();
    const bool want_q = q.requires_grad(), want_k = k.requires_grad(), want_v = v.requires_grad();
    const bool want_bias = bias_in.defined() && bias_in.requires_grad();
    Tensor dq = want_q ? zeros(q.shape(), q.dtype()) : Tensor();
    Tensor dk = want_k ? zeros(k.shape(), k.dtype()) : Tensor();
    Tensor dv = want_v ? zeros(v.shape(), v.dtype()) : Tensor();
    Tensor dbias = want_bias ? zeros(bias_in.shape(), bias_in.dtype()) : Tensor();
    HEED_DISPATCH_FLOAT(q.dtype(), kOp, [&] {
      using T = scalar_t;
      std::vector<T> s_buf(static_cast<std::size_t>(kRowBlock * kColBlock)), ds_buf(s_buf.size()),
          d_buf(static_cast<std::size_t>(p.L));
      for (int64_t b = 0; b < p.batches(); ++b) {
        const std::size_t ub = static_cast<std::size_t>(b);
        flash_backward<T>(p, b, out.data<T>() + b * p.L * p.Ev, lse.data<T>() + b * p.L, dout.data<T>() + b * p.L * p.Ev,
                          want_q ? dq.data<T>() + p.q.grad_offsets[ub] : nullptr,
                          want_k ? dk.data<T>() + p.k.grad_offsets[ub] : nullptr,
                          want_v ? dv.data<T>() + p.v.grad_offsets[ub] : nullptr,
                          want_bias ? dbias.data<T>() + p.bias.grad_offsets[ub] : nullptr, s_buf, ds_buf, d_buf);
      }
    });
    if (want_q) accumulate_grad(q, dq);
    if (want_k) accumulate_grad(k, dk);
    if (want_v) accumulate_grad(v, dv);
    if (want_bias) accumulate_grad(bias_in, dbias);
  });
  return out;
}

}  // namespace heed
