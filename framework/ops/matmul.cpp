// framework/ops/matmul.cpp — matmul (NumPy/PyTorch semantics) and linear, straight to OpenBLAS.
//
// Every product is one or more cblas_?gemm calls; nothing here multiplies matrices by hand. An operand
// reaches BLAS without a copy when each of its matrices is row-major with some row stride (NoTrans) or
// is the transpose of one (Trans, e.g. x.transpose(-1, -2)); anything else is first made dense. When b is
// a single matrix and a's leading axes collapse into its rows, the whole batch is one GEMM with
// M = prod(leading) * n. The backward reuses the forward's operands with their transpose flags flipped:
// dA = dC B^T, dB = A^T dC, accumulating (beta = 1) where a broadcast operand receives several products.
//
#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "heed/ops.hpp"
#include "ops/blas.hpp"
#include "ops/common.hpp"

namespace heed {
namespace {

using detail::check_float;
using detail::check_same_float;

// A batch of matrices as BLAS reads them: matrix i starts at base + offsets[i]; each is row-major with
// leading dimension ld, or (trans) the row-major storage of its transpose.
template <class T>
struct BlasMatrices {
  const T* base;
  const std::vector<int64_t>& offsets;
  bool trans;
  int64_t ld;
};

// C_i (M x N, dense, row stride N) = op(A_i) op(B_i) (+ C_i when accumulate), for every i. C may repeat
// an offset (a broadcast operand's gradient); then accumulate must be set and C zeroed beforehand.
template <class T>
void run_gemms(int64_t m, int64_t n, int64_t k, const BlasMatrices<T>& a, const BlasMatrices<T>& b, T* c,
               const std::vector<int64_t>& c_offsets, bool accumulate, const char* op) {
  if (m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: C = 0 (BLAS would not be called with k = 0 portably)
    if (!accumulate)
      for (int64_t off : c_offsets) std::memset(c + off, 0, static_cast<std::size_t>(m * n) * sizeof(T));
    return;
  }
  const T beta = accumulate ? T(1) : T(0);
  for (std::size_t i = 0; i < c_offsets.size(); ++i)
    detail::gemm(op, a.trans, b.trans, m, n, k, T(1), a.base + a.offsets[i], a.ld, b.base + b.offsets[i], b.ld,
                 beta, c + c_offsets[i], n);
}

// ---- layouts ---------------------------------------------------------------------------------------

// How BLAS can read a (rows x cols) matrix with the given element strides without copying it: row-major
// with leading dimension ld (trans = false), or as the row-major storage of its transpose (trans = true).
// Size-1 axes place no constraint on their stride. False when neither fits (broadcast, negative or
// interleaved strides): the caller copies.
bool blas_layout(int64_t rows, int64_t cols, int64_t row_stride, int64_t col_stride, bool& trans, int64_t& ld) {
  if ((cols <= 1 || col_stride == 1) && (rows <= 1 || row_stride >= std::max<int64_t>(cols, 1))) {
    trans = false;
    ld = rows <= 1 ? std::max<int64_t>(cols, 1) : row_stride;
    return true;
  }
  if ((rows <= 1 || row_stride == 1) && (cols <= 1 || col_stride >= std::max<int64_t>(rows, 1))) {
    trans = true;
    ld = cols <= 1 ? std::max<int64_t>(rows, 1) : col_stride;
    return true;
  }
  return false;
}

// When axes [0, end) of (shape, strides) step through memory as one axis (size-1 axes ignored), sets
// count = their product and stride = the step of that combined axis (0 when count <= 1) and returns true.
bool collapse_axes(const Shape& shape, const Shape& strides, std::size_t end, int64_t& count, int64_t& stride) {
  count = 1;
  stride = 0;
  int64_t expected = -1;  // the stride the next outer non-trivial axis must have
  for (std::size_t i = end; i-- > 0;) {
    if (shape[i] == 1) continue;
    if (expected < 0) {
      stride = strides[i];
    } else if (strides[i] != expected) {
      return false;
    }
    expected = strides[i] * shape[i];
    count *= shape[i];
  }
  return true;
}

// A float tensor read as a batch of matrices: its last two axes (after 1-D promotion) are the rows and
// columns, the axes before them the batch.
struct MatrixOperand {
  Tensor source;  // the input, or a dense copy of it when BLAS cannot read its layout
  Shape shape;    // promoted: batch..., rows, cols
  Shape strides;  // element strides of `shape` in source
  bool trans = false;
  int64_t ld = 1;

  int64_t rows() const { return shape[shape.size() - 2]; }
  int64_t cols() const { return shape[shape.size() - 1]; }
  std::size_t batch_dims() const { return shape.size() - 2; }
};

// 1-D promotion: a vector on the left is a (1, k) row, on the right a (k, 1) column.
MatrixOperand promote(const Tensor& t, bool left) {
  MatrixOperand m;
  m.source = t;
  if (t.dim() == 1) {
    const int64_t k = t.size(0), s = t.strides()[0];
    m.shape = left ? Shape{1, k} : Shape{k, 1};
    m.strides = left ? Shape{k * s, s} : Shape{s, 1};
  } else {
    m.shape = t.shape();
    m.strides = t.strides();
  }
  return m;
}

// Chooses the BLAS layout of each matrix of m; copies m's source to dense memory when none fits.
void make_blas_readable(MatrixOperand& m) {
  const std::size_t r = m.shape.size() - 2;
  if (blas_layout(m.rows(), m.cols(), m.strides[r], m.strides[r + 1], m.trans, m.ld)) return;
  m.source = m.source.detach().contiguous();
  m.strides = contiguous_strides(m.shape);
  blas_layout(m.rows(), m.cols(), m.strides[r], m.strides[r + 1], m.trans, m.ld);
}

// Reads the batch and row axes of m as one tall matrix (prod(batch) * rows, cols) when memory allows;
// on success m becomes that 2-D operand.
bool fold_rows(MatrixOperand& m) {
  const std::size_t r = m.shape.size() - 2;
  int64_t count = 0, row_stride = 0;
  if (!collapse_axes(m.shape, m.strides, r + 1, count, row_stride)) return false;
  bool trans = false;
  int64_t ld = 1;
  if (!blas_layout(count, m.cols(), row_stride, m.strides[r + 1], trans, ld)) return false;
  m.shape = {count, m.cols()};
  m.strides = {row_stride, m.strides[r + 1]};
  m.trans = trans;
  m.ld = ld;
  return true;
}

// Element offset of each matrix of a batch of shape `batch` (row-major order) in a tensor whose batch axes
// are `own` (right-aligned to batch; size-1 and missing axes broadcast) with strides `own_strides`.
std::vector<int64_t> batch_offsets(const Shape& batch, const Shape& own, const Shape& own_strides) {
  const std::size_t nd = batch.size(), lead = nd - own.size();
  Shape st(nd, 0);
  for (std::size_t i = 0; i < own.size(); ++i) st[lead + i] = own[i] == 1 ? 0 : own_strides[i];
  std::vector<int64_t> offsets(static_cast<std::size_t>(shape_numel(batch)));
  Shape idx(nd, 0);
  int64_t off = 0;
  for (std::size_t i = 0; i < offsets.size(); ++i) {
    offsets[i] = off;
    for (std::size_t d = nd; d-- > 0;) {  // odometer step
      off += st[d];
      if (++idx[d] < batch[d]) break;
      off -= st[d] * batch[d];
      idx[d] = 0;
    }
  }
  return offsets;
}

// Offsets of each matrix of `batch` in the dense gradient of an operand with batch axes `own` and
// matrices of `matrix_numel` elements.
std::vector<int64_t> grad_offsets(const Shape& batch, const Shape& own, int64_t matrix_numel) {
  Shape st = contiguous_strides(own);
  for (int64_t& s : st) s *= matrix_numel;
  return batch_offsets(batch, own, st);
}

Shape batch_of(const MatrixOperand& m) { return Shape(m.shape.begin(), m.shape.end() - 2); }

// Everything one matmul's forward and backward need: the operands as BLAS reads them, the GEMM sizes,
// and where each of the `count` products reads and writes.
struct MatmulPlan {
  MatrixOperand a, b;
  int64_t m = 0, n = 0, k = 0;  // each product: (m x k) (k x n)
  std::vector<int64_t> a_offsets, b_offsets, c_offsets;            // into a.source, b.source, C
  std::vector<int64_t> a_grad_offsets, b_grad_offsets;             // into dense dA, dB (promoted shapes)
  bool a_grad_shared = false, b_grad_shared = false;  // several products add into one gradient matrix
};

MatmulPlan plan_matmul(const Tensor& a, const Tensor& b, Shape& out_shape) {
  MatmulPlan p;
  p.a = promote(a, true);
  p.b = promote(b, false);
  HEED_CHECK(p.a.cols() == p.b.rows(), "matmul: inner dimensions differ: {} x {}", shape_str(a.shape()),
             shape_str(b.shape()));
  const Shape a_batch = batch_of(p.a), b_batch = batch_of(p.b);
  Shape batch(std::max(a_batch.size(), b_batch.size()));
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const int64_t da = i + a_batch.size() < batch.size() ? 1 : a_batch[i + a_batch.size() - batch.size()];
    const int64_t db = i + b_batch.size() < batch.size() ? 1 : b_batch[i + b_batch.size() - batch.size()];
    HEED_CHECK(da == db || da == 1 || db == 1, "matmul: batch dimensions do not broadcast: {} x {}",
               shape_str(a.shape()), shape_str(b.shape()));
    batch[i] = da == 1 ? db : da;
  }
  p.m = p.a.rows();
  p.k = p.a.cols();
  p.n = p.b.cols();

  // Output: batch + [m, n], without the axes added by promotion.
  out_shape = batch;
  if (a.dim() > 1) out_shape.push_back(p.m);
  if (b.dim() > 1) out_shape.push_back(p.n);

  make_blas_readable(p.b);
  // b is one matrix and a's batch and rows read as one tall matrix: a single GEMM. When a does not fold
  // but BLAS can read each of its matrices in place (e.g. a transposed batch), one GEMM per matrix beats a
  // copy; only an unreadable a is copied, after which it folds.
  if (b_batch.empty() && (fold_rows(p.a) || (make_blas_readable(p.a), fold_rows(p.a)))) {
    p.m = p.a.rows();
    p.a_offsets = p.b_offsets = p.c_offsets = p.a_grad_offsets = p.b_grad_offsets = {0};
    return p;
  }
  make_blas_readable(p.a);
  p.a_offsets = batch_offsets(batch, a_batch, Shape(p.a.strides.begin(), p.a.strides.end() - 2));
  p.b_offsets = batch_offsets(batch, b_batch, Shape(p.b.strides.begin(), p.b.strides.end() - 2));
  p.c_offsets = grad_offsets(batch, batch, p.m * p.n);
  p.a_grad_offsets = grad_offsets(batch, a_batch, p.m * p.k);
  p.b_grad_offsets = grad_offsets(batch, b_batch, p.k * p.n);
  p.a_grad_shared = shape_numel(a_batch) < shape_numel(batch);
  p.b_grad_shared = shape_numel(b_batch) < shape_numel(batch);
  return p;
}

}  // namespace

// C = A B, batched and broadcast over the leading axes (1-D operands promoted, the added axis removed);
// dA = dC B^T, dB = A^T dC, each summed over the batch axes its operand was broadcast along.
Tensor matmul(const Tensor& a, const Tensor& b) {
  check_same_float(a, b, "matmul");
  HEED_CHECK(a.dim() >= 1 && b.dim() >= 1,
             "matmul: both arguments need at least 1 dimension, got shapes {} and {} (use mul for a 0-D scalar)",
             shape_str(a.shape()), shape_str(b.shape()));
  Shape out_shape;
  MatmulPlan p = plan_matmul(a, b, out_shape);
  Tensor y = make_tensor(out_shape, a.dtype());
  HEED_DISPATCH_FLOAT(a.dtype(), "matmul", [&] {
    run_gemms<scalar_t>(p.m, p.n, p.k, {p.a.source.data<scalar_t>(), p.a_offsets, p.a.trans, p.a.ld},
                        {p.b.source.data<scalar_t>(), p.b_offsets, p.b.trans, p.b.ld}, y.data<scalar_t>(),
                        p.c_offsets, false, "matmul");
  });
  if (!should_record({a, b})) return y;
  // The backward reads B only for dA and A only for dB.
  if (!a.requires_grad()) p.b.source = Tensor();
  if (!b.requires_grad()) p.a.source = Tensor();
  record("matmul", y, {a, b}, [a, b, p = std::move(p)](const Tensor& gy) {
    const Tensor gc = gy.contiguous();
    HEED_DISPATCH_FLOAT(gc.dtype(), "matmul", [&] {
      const BlasMatrices<scalar_t> dc{gc.data<scalar_t>(), p.c_offsets, false, p.n};
      if (a.requires_grad()) {  // dA (m x k) = dC (m x n) B^T
        Tensor da = p.a_grad_shared ? zeros(a.shape(), a.dtype()) : make_tensor(a.shape(), a.dtype());
        run_gemms<scalar_t>(p.m, p.k, p.n, dc, {p.b.source.data<scalar_t>(), p.b_offsets, !p.b.trans, p.b.ld},
                            da.data<scalar_t>(), p.a_grad_offsets, p.a_grad_shared, "matmul backward");
        accumulate_grad(a, std::move(da));
      }
      if (b.requires_grad()) {  // dB (k x n) = A^T dC (m x n)
        Tensor db = p.b_grad_shared ? zeros(b.shape(), b.dtype()) : make_tensor(b.shape(), b.dtype());
        run_gemms<scalar_t>(p.k, p.n, p.m, {p.a.source.data<scalar_t>(), p.a_offsets, !p.a.trans, p.a.ld}, dc,
                            db.data<scalar_t>(), p.b_grad_offsets, p.b_grad_shared, "matmul backward");
        accumulate_grad(b, std::move(db));
      }
    });
  });
  return y;
}

// Y = X W^T + b over all leading axes of x at once (X: rows = prod(leading), in; W: out, in);
// dX = dY W, dW = dY^T X (one GEMM over every row), db = column sums of dY.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_same_float(x, weight, "linear");
  HEED_CHECK(x.dim() >= 1, "linear: the input needs at least 1 dimension, got shape {}", shape_str(x.shape()));
  HEED_CHECK(weight.dim() == 2, "linear: the weight must be 2-D (out_features, in_features), got shape {}",
             shape_str(weight.shape()));
  const int64_t in = weight.size(1), out = weight.size(0);
  HEED_CHECK(x.size(-1) == in, "linear: input features differ: input {} x weight {} (expects in_features = {})",
             shape_str(x.shape()), shape_str(weight.shape()), in);
  if (bias.defined()) {
    check_same_float(x, bias, "linear");
    HEED_CHECK(bias.dim() == 1 && bias.size(0) == out, "linear: the bias must have shape [{}], got {}", out,
               shape_str(bias.shape()));
  }

  // X as one (rows x in) matrix: x itself when its leading axes collapse into rows, else a dense copy.
  MatrixOperand xm = promote(x, true);
  if (!fold_rows(xm)) {
    xm = promote(x.detach().contiguous(), true);
    fold_rows(xm);
  }
  MatrixOperand wm = promote(weight, false);
  make_blas_readable(wm);
  const int64_t rows = xm.rows();
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);
  out_shape.push_back(out);
  Tensor y = make_tensor(out_shape, x.dtype());
  const std::vector<int64_t> at0{0};
  HEED_DISPATCH_FLOAT(x.dtype(), "linear", [&] {
    scalar_t* py = y.data<scalar_t>();
    if (bias.defined()) {  // Y starts as b in every row; the GEMM adds X W^T (beta = 1)
      const Tensor bc = bias.contiguous();
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(py + r * out, bc.data<scalar_t>(), static_cast<std::size_t>(out) * sizeof(scalar_t));
    }
    run_gemms<scalar_t>(rows, out, in, {xm.source.data<scalar_t>(), at0, xm.trans, xm.ld},
                        {wm.source.data<scalar_t>(), at0, !wm.trans, wm.ld}, py, at0, bias.defined(), "linear");
  });
  if (!should_record({x, weight, bias})) return y;
  if (!x.requires_grad()) wm.source = Tensor();       // W is read only for dX
  if (!weight.requires_grad()) xm.source = Tensor();  // X only for dW
  record("linear", y, {x, weight, bias}, [x, weight, bias, xm = std::move(xm), wm = std::move(wm), rows, in,
                                          out](const Tensor& gy) {
    const Tensor g = gy.contiguous();
    const std::vector<int64_t> at0{0};
    HEED_DISPATCH_FLOAT(g.dtype(), "linear", [&] {
      const scalar_t* pg = g.data<scalar_t>();
      if (x.requires_grad()) {  // dX (rows x in) = dY (rows x out) W (out x in)
        Tensor dx = make_tensor(x.shape(), x.dtype());
        run_gemms<scalar_t>(rows, in, out, {pg, at0, false, out}, {wm.source.data<scalar_t>(), at0, wm.trans, wm.ld},
                            dx.data<scalar_t>(), at0, false, "linear backward");
        accumulate_grad(x, std::move(dx));
      }
      if (weight.requires_grad()) {  // dW (out x in) = dY^T (out x rows) X (rows x in)
        Tensor dw = make_tensor(weight.shape(), weight.dtype());
        run_gemms<scalar_t>(out, in, rows, {pg, at0, true, out}, {xm.source.data<scalar_t>(), at0, xm.trans, xm.ld},
                            dw.data<scalar_t>(), at0, false, "linear backward");
        accumulate_grad(weight, std::move(dw));
      }
      if (bias.defined() && bias.requires_grad()) {  // db = sum of dY's rows
        Tensor db = zeros({out}, bias.dtype());
        scalar_t* pb = db.data<scalar_t>();
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t j = 0; j < out; ++j) pb[j] += pg[r * out + j];
        accumulate_grad(bias, std::move(db));
      }
    });
  });
  return y;
}

}  // namespace heed
