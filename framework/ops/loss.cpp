// framework/ops/loss.cpp — dropout and the losses.
//
// Each loss is one fused op: a loop computes the per-element (or per-row) losses, the reduction sums
// them, and the backward loop writes d loss / d input directly (no chain of small recorded ops). Losses
// follow torch.nn.functional's definitions; the class losses take classes on the LAST axis.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "heed/ops.hpp"
#include "heed/random.hpp"
#include "ops/common.hpp"
#include "ops/row_kernels.hpp"

namespace heed {
namespace {

using detail::check_float;
using detail::check_same_float;

// The reduction of dense per-item losses: themselves (None), their sum, or their sum / count (Mean; a
// count of 0 gives NaN as in PyTorch).
Tensor reduce_losses(const Tensor& losses, Reduction reduction, int64_t count) {
  if (reduction == Reduction::None) return losses;
  Tensor out = make_tensor({}, losses.dtype());
  HEED_DISPATCH_FLOAT(losses.dtype(), "loss", [&] {
    const scalar_t* p = losses.data<scalar_t>();
    double s = 0.0;
    for (int64_t j = 0; j < losses.numel(); ++j) s += p[j];
    if (reduction == Reduction::Mean) s /= static_cast<double>(count);
    out.data<scalar_t>()[0] = static_cast<scalar_t>(s);
  });
  return out;
}

// The upstream gradient reaching item j: gy[j] (None), gy (Sum), gy / count (Mean).
template <class T>
struct Upstream {
  const T* g = nullptr;
  T shared = 0;
  bool per_item = false;
  Upstream(const Tensor& gy, Reduction reduction, int64_t count) : g(gy.data<T>()), per_item(reduction == Reduction::None) {
    if (!per_item) shared = reduction == Reduction::Mean ? static_cast<T>(g[0] / static_cast<double>(count)) : g[0];
  }
  T operator[](int64_t j) const { return per_item ? g[j] : shared; }
};

void check_same_shape(const Tensor& a, const Tensor& b, const char* op, const char* a_name, const char* b_name) {
  HEED_CHECK(a.shape() == b.shape(), "{}: {} of shape {} and {} of shape {} must have the same shape", op, a_name,
             shape_str(a.shape()), b_name, shape_str(b.shape()));
}

// Class losses: logits or log-probabilities (..., C) and Int64 targets (...), checked once.
struct ClassRows {
  int64_t rows = 0, classes = 0;
  Tensor scores;   // dense (rows, C) data
  Tensor targets;  // dense Int64
  int64_t counted = 0;  // rows whose target is not ignore_index
};

ClassRows check_class_inputs(const Tensor& scores, const Tensor& targets, int64_t ignore_index, const char* op,
                             const char* scores_name) {
  check_float(scores, op, scores_name);
  HEED_CHECK(targets.defined(), "{}: targets are undefined", op);
  HEED_CHECK(scores.dim() >= 1, "{}: {} must have a class axis (last), got shape {}", op, scores_name,
             shape_str(scores.shape()));
  HEED_CHECK(targets.dtype() == DType::Int64, "{}: targets must be Int64 class indices, got {} of shape {}", op,
             dtype_name(targets.dtype()), shape_str(targets.shape()));
  const Shape row_shape(scores.shape().begin(), scores.shape().end() - 1);
  HEED_CHECK(targets.shape() == row_shape,
             "{}: targets of shape {} must have the shape of {} without its last (class) axis: {} -> {}", op,
             shape_str(targets.shape()), scores_name, shape_str(scores.shape()), shape_str(row_shape));
  ClassRows c;
  c.classes = scores.shape().back();
  c.rows = shape_numel(row_shape);
  HEED_CHECK(c.classes > 0 || c.rows == 0, "{}: {} of shape {} has no classes", op, scores_name,
             shape_str(scores.shape()));
  c.scores = scores.detach().contiguous();
  c.targets = targets.contiguous();
  const int64_t* t = c.targets.data<int64_t>();
  for (int64_t r = 0; r < c.rows; ++r) {
    if (t[r] == ignore_index) continue;
    HEED_CHECK(t[r] >= 0 && t[r] < c.classes,
               "{}: target {} at position {} is out of range [0, {}) ({} {}, targets {}, ignore_index {})", op, t[r], r,
               c.classes, scores_name, shape_str(scores.shape()), shape_str(targets.shape()), ignore_index);
    ++c.counted;
  }
  return c;
}

}  // namespace

// ---- dropout -----------------------------------------------------------------------------------------

// y = x * keep / (1 - p), keep ~ Bernoulli(1 - p) per element;  dx = gy * keep / (1 - p)
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  check_float(x, "dropout");
  HEED_CHECK(p >= 0.0 && p <= 1.0, "dropout: p must be in [0, 1], got {} (input shape {})", p, shape_str(x.shape()));
  if (!training || p == 0.0) return x;
  Generator& g = gen ? *gen : default_generator();
  Tensor xd = x.detach().contiguous();
  Tensor scale = make_tensor(x.shape(), x.dtype());  // keep / (1 - p): 0 or 1/(1-p)
  Tensor y = make_tensor(x.shape(), x.dtype());
  HEED_DISPATCH_FLOAT(x.dtype(), "dropout", [&] {
    const scalar_t kept = p < 1.0 ? static_cast<scalar_t>(1.0 / (1.0 - p)) : scalar_t(0);
    const scalar_t* px = xd.data<scalar_t>();
    scalar_t* ps = scale.data<scalar_t>();
    scalar_t* py = y.data<scalar_t>();
    const int64_t n = y.numel();  // hoisted: g.uniform() may alias y's shape, so the compiler re-reads it
    for (int64_t j = 0; j < n; ++j) {
      ps[j] = g.uniform() < p ? scalar_t(0) : kept;
      py[j] = px[j] * ps[j];
    }
  });
  record("dropout", y, {x}, [x, scale](const Tensor& gy) {
    Tensor gc = gy.contiguous();
    Tensor dx = make_tensor(x.shape(), x.dtype());
    HEED_DISPATCH_FLOAT(x.dtype(), "dropout", [&] {
      const scalar_t *pg = gc.data<scalar_t>(), *ps = scale.data<scalar_t>();
      scalar_t* pd = dx.data<scalar_t>();
      const int64_t n = dx.numel();
      for (int64_t j = 0; j < n; ++j) pd[j] = pg[j] * ps[j];
    });
    accumulate_grad(x, std::move(dx));
  });
  return y;
}

// ---- regression and binary losses ----------------------------------------------------------------

// l = (x - t)^2;  dx = 2 (x - t) g, dt = -2 (x - t) g
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_same_float(input, target, "mse_loss");
  check_same_shape(input, target, "mse_loss", "input", "target");
  Tensor xd = input.detach().contiguous(), td = target.detach().contiguous();
  Tensor losses = make_tensor(input.shape(), input.dtype());
  HEED_DISPATCH_FLOAT(input.dtype(), "mse_loss", [&] {
    const scalar_t *px = xd.data<scalar_t>(), *pt = td.data<scalar_t>();
    scalar_t* pl = losses.data<scalar_t>();
    for (int64_t j = 0; j < losses.numel(); ++j) pl[j] = (px[j] - pt[j]) * (px[j] - pt[j]);
  });
  const int64_t count = input.numel();
  Tensor y = reduce_losses(losses, reduction, count);
  record("mse_loss", y, {input, target}, [input, target, xd, td, reduction, count](const Tensor& gy) {
    Tensor gc = gy.contiguous();
    Tensor dx = make_tensor(input.shape(), input.dtype());
    HEED_DISPATCH_FLOAT(input.dtype(), "mse_loss", [&] {
      const Upstream<scalar_t> g(gc, reduction, count);
      const scalar_t *px = xd.data<scalar_t>(), *pt = td.data<scalar_t>();
      scalar_t* pd = dx.data<scalar_t>();
      for (int64_t j = 0; j < dx.numel(); ++j) pd[j] = 2 * (px[j] - pt[j]) * g[j];
    });
    if (target.requires_grad()) accumulate_grad(target, neg(dx));
    accumulate_grad(input, std::move(dx));
  });
  return y;
}

// l = -(t max(log x, -100) + (1 - t) max(log(1 - x), -100))
// dx = g (x - t) / max(x (1 - x), 1e-12),  dt = g (max(log(1 - x), -100) - max(log x, -100))   (PyTorch's)
Tensor binary_cross_entropy(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_same_float(input, target, "binary_cross_entropy");
  check_same_shape(input, target, "binary_cross_entropy", "input", "target");
  Tensor xd = input.detach().contiguous(), td = target.detach().contiguous();
  Tensor losses = make_tensor(input.shape(), input.dtype());
  HEED_DISPATCH_FLOAT(input.dtype(), "binary_cross_entropy", [&] {
    const scalar_t *px = xd.data<scalar_t>(), *pt = td.data<scalar_t>();
    scalar_t* pl = losses.data<scalar_t>();
    for (int64_t j = 0; j < losses.numel(); ++j) {
      HEED_CHECK(px[j] >= 0 && px[j] <= 1,
                 "binary_cross_entropy: input must hold probabilities in [0, 1], got {} at position {} (input {}); "
                 "use binary_cross_entropy_with_logits for logits",
                 px[j], j, shape_str(input.shape()));
      const scalar_t log_x = std::max(std::log(px[j]), scalar_t(-100));
      const scalar_t log_1mx = std::max(std::log1p(-px[j]), scalar_t(-100));
      pl[j] = -(pt[j] * log_x + (1 - pt[j]) * log_1mx);
    }
  });
  const int64_t count = input.numel();
  Tensor y = reduce_losses(losses, reduction, count);
  record("binary_cross_entropy", y, {input, target}, [input, target, xd, td, reduction, count](const Tensor& gy) {
    Tensor gc = gy.contiguous();
    Tensor dx = make_tensor(input.shape(), input.dtype());
    Tensor dt = make_tensor(input.shape(), input.dtype());
    HEED_DISPATCH_FLOAT(input.dtype(), "binary_cross_entropy", [&] {
      const Upstream<scalar_t> g(gc, reduction, count);
      const scalar_t *px = xd.data<scalar_t>(), *pt = td.data<scalar_t>();
      scalar_t *pdx = dx.data<scalar_t>(), *pdt = dt.data<scalar_t>();
      for (int64_t j = 0; j < dx.numel(); ++j) {
        pdx[j] = g[j] * (px[j] - pt[j]) / std::max(px[j] * (1 - px[j]), scalar_t(1e-12));
        const scalar_t log_x = std::max(std::log(px[j]), scalar_t(-100));
        const scalar_t log_1mx = std::max(std::log1p(-px[j]), scalar_t(-100));
        pdt[j] = g[j] * (log_1mx - log_x);
      }
    });
    accumulate_grad(input, std::move(dx));
    accumulate_grad(target, std::move(dt));
  });
  return y;
}

// l = max(x, 0) - x t + log(1 + e^-|x|);  dx = g (sigmoid(x) - t), dt = -g x
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, Reduction reduction) {
  check_same_float(logits, target, "binary_cross_entropy_with_logits");
  check_same_shape(logits, target, "binary_cross_entropy_with_logits", "logits", "target");
  Tensor xd = logits.detach().contiguous(), td = target.detach().contiguous();
  Tensor losses = make_tensor(logits.shape(), logits.dtype());
  HEED_DISPATCH_FLOAT(logits.dtype(), "binary_cross_entropy_with_logits", [&] {
    const scalar_t *px = xd.data<scalar_t>(), *pt = td.data<scalar_t>();
    scalar_t* pl = losses.data<scalar_t>();
    for (int64_t j = 0; j < losses.numel(); ++j)
      pl[j] = std::max(px[j], scalar_t(0)) - px[j] * pt[j] + std::log1p(std::exp(-std::abs(px[j])));
  });
  const int64_t count = logits.numel();
  Tensor y = reduce_losses(losses, reduction, count);
  record("binary_cross_entropy_with_logits", y, {logits, target},
         [logits, target, xd, td, reduction, count](const Tensor& gy) {
           Tensor gc = gy.contiguous();
           Tensor dx = make_tensor(logits.shape(), logits.dtype());
           Tensor dt = make_tensor(logits.shape(), logits.dtype());
           HEED_DISPATCH_FLOAT(logits.dtype(), "binary_cross_entropy_with_logits", [&] {
             const Upstream<scalar_t> g(gc, reduction, count);
             const scalar_t *px = xd.data<scalar_t>(), *pt = td.data<scalar_t>();
             scalar_t *pdx = dx.data<scalar_t>(), *pdt = dt.data<scalar_t>();
             for (int64_t j = 0; j < dx.numel(); ++j) {
               const scalar_t sig = 1 / (1 + std::exp(-px[j]));
               pdx[j] = g[j] * (sig - pt[j]);
               pdt[j] = -g[j] * px[j];
             }
           });
           accumulate_grad(logits, std::move(dx));
           accumulate_grad(target, std::move(dt));
         });
  return y;
}

// ---- class losses --------------------------------------------------------------------------------

namespace {

// cross_entropy's row kernels, on one row of C logits x with target t. Forward and backward each run
// two passes around an exponential of a block of rows (detail::kExpBlock elements): pass 1 writes
// e = x - shift for every row of the block, detail::exp_inplace turns the whole block into e^(x - shift)
// at once, pass 2 finishes each row.

// Pass 1: e_c = x_c - shift  (shift = max_c x_c forward, lse backward).
template <class T>
void cross_entropy_row_shift(const T* x, T shift, int64_t C, T* e) {
  for (int64_t k = 0; k < C; ++k) e[k] = x[k] - shift;
}

// Forward, pass 2, with e_c = e^(x_c - m) and m = max_c x_c:  lse = m + log sum_c e_c,
//   l = (1 - eps) (lse - x_t) + eps (lse - sum_c x_c / C)
// Returns l and stores lse for the backward.
template <class T>
T cross_entropy_row_forward(const T* x, const T* e, int64_t C, int64_t t, T m, double eps, T& lse) {
  const double log_sum = static_cast<double>(m) + std::log(detail::row_sum(e, C));
  const double x_sum = eps == 0 ? 0.0 : detail::row_sum(x, C);
  lse = static_cast<T>(log_sum);
  return static_cast<T>((1 - eps) * (log_sum - x[t]) + eps * (log_sum - x_sum / C));
}

// Backward, pass 2, with d_c = e^(x_c - lse) = softmax_c on entry and g = dL/dl for this row:
//   d_c = g (softmax_c - eps / C) - g (1 - eps) [c == t]
template <class T>
void cross_entropy_row_backward(T* d, int64_t C, int64_t t, T g, double eps) {
  const T smooth = static_cast<T>(eps / static_cast<double>(C));
  const T on_target = static_cast<T>(1 - eps);
  for (int64_t k = 0; k < C; ++k) d[k] = g * (d[k] - smooth);
  d[t] -= g * on_target;
}

}  // namespace

// Per row with target t (rows with t == ignore_index give 0 and no gradient), lse = log sum_c e^x_c:
//   l = (1 - eps) (lse - x_t) + eps (lse - mean_c x_c)      = (1-eps) nll + eps mean_c(-log p_c)
//   dl/dx_c = softmax_c - ((1 - eps) [c == t] + eps / C)
// Mean divides the sum by the number of rows not ignored (PyTorch's, label smoothing included).
Tensor cross_entropy(const Tensor& logits, const Tensor& targets, const CrossEntropyOptions& options) {
  const double eps = options.label_smoothing;
  HEED_CHECK(eps >= 0.0 && eps <= 1.0, "cross_entropy: label_smoothing must be in [0, 1], got {}", eps);
  ClassRows c = check_class_inputs(logits, targets, options.ignore_index, "cross_entropy", "logits");
  const Reduction reduction = options.reduction;
  const int64_t ignore = options.ignore_index;
  Tensor losses = make_tensor(targets.shape(), logits.dtype());
  Tensor lse = make_tensor({c.rows}, logits.dtype());
  HEED_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
    const scalar_t* px = c.scores.data<scalar_t>();
    const int64_t* t = c.targets.data<int64_t>();
    scalar_t *pl = losses.data<scalar_t>(), *plse = lse.data<scalar_t>();
    const int64_t C = c.classes, block = detail::rows_per_exp_block(C);
    // Per block of rows: shift each row by its max, exponentiate the block in one pass, finish each row.
    std::vector<scalar_t> e(static_cast<std::size_t>(std::min(block, c.rows) * C));
    scalar_t maxima[detail::kExpBlock];
    for (int64_t r0 = 0; r0 < c.rows; r0 += block) {
      const int64_t rows = std::min(block, c.rows - r0);
      for (int64_t i = 0; i < rows; ++i) {
        scalar_t* er = e.data() + i * C;
        const scalar_t* xr = px + (r0 + i) * C;
        if (t[r0 + i] == ignore) { std::fill(er, er + C, scalar_t(0)); continue; }
        maxima[i] = detail::row_max(xr, C);
        cross_entropy_row_shift(xr, maxima[i], C, er);
      }
      detail::exp_inplace(e.data(), rows * C);
      for (int64_t i = 0; i < rows; ++i) {
        const int64_t r = r0 + i;
        if (t[r] == ignore) { pl[r] = 0; plse[r] = 0; continue; }
        pl[r] = cross_entropy_row_forward(px + r * C, e.data() + i * C, C, t[r], maxima[i], eps, plse[r]);
      }
    }
  });
  Tensor y = reduce_losses(losses, reduction, c.counted);
  record("cross_entropy", y, {logits}, [logits, c, lse, eps, ignore, reduction](const Tensor& gy) {
    Tensor gc = gy.contiguous();
    Tensor dx = make_tensor(logits.shape(), logits.dtype());
    HEED_DISPATCH_FLOAT(logits.dtype(), "cross_entropy", [&] {
      const Upstream<scalar_t> g(gc, reduction, c.counted);
      const scalar_t *px = c.scores.data<scalar_t>(), *plse = lse.data<scalar_t>();
      const int64_t* t = c.targets.data<int64_t>();
      scalar_t* pd = dx.data<scalar_t>();
      const int64_t C = c.classes, block = detail::rows_per_exp_block(C);
      for (int64_t r0 = 0; r0 < c.rows; r0 += block) {
        const int64_t rows = std::min(block, c.rows - r0);
        for (int64_t r = r0; r < r0 + rows; ++r) {
          scalar_t* dr = pd + r * C;
          if (t[r] == ignore) { std::fill(dr, dr + C, scalar_t(0)); continue; }
          cross_entropy_row_shift(px + r * C, plse[r], C, dr);
        }
        detail::exp_inplace(pd + r0 * C, rows * C);  // the softmax of each row
        for (int64_t r = r0; r < r0 + rows; ++r) {
          scalar_t* dr = pd + r * C;
          if (t[r] == ignore) { std::fill(dr, dr + C, scalar_t(0)); continue; }
          cross_entropy_row_backward(dr, C, t[r], g[r], eps);
        }
      }
    });
    accumulate_grad(logits, std::move(dx));
  });
  return y;
}

// l = -log_probs[t] per row (0 for ignore_index);  d log_probs[t] = -g
Tensor nll_loss(const Tensor& log_probs, const Tensor& targets, int64_t ignore_index, Reduction reduction) {
  ClassRows c = check_class_inputs(log_probs, targets, ignore_index, "nll_loss", "log_probs");
  Tensor losses = make_tensor(targets.shape(), log_probs.dtype());
  HEED_DISPATCH_FLOAT(log_probs.dtype(), "nll_loss", [&] {
    const scalar_t* px = c.scores.data<scalar_t>();
    const int64_t* t = c.targets.data<int64_t>();
    scalar_t* pl = losses.data<scalar_t>();
    for (int64_t r = 0; r < c.rows; ++r) pl[r] = t[r] == ignore_index ? scalar_t(0) : -px[r * c.classes + t[r]];
  });
  Tensor y = reduce_losses(losses, reduction, c.counted);
  record("nll_loss", y, {log_probs}, [log_probs, c, ignore_index, reduction](const Tensor& gy) {
    Tensor gc = gy.contiguous();
    Tensor dx = zeros(log_probs.shape(), log_probs.dtype());
    HEED_DISPATCH_FLOAT(log_probs.dtype(), "nll_loss", [&] {
      const Upstream<scalar_t> g(gc, reduction, c.counted);
      const int64_t* t = c.targets.data<int64_t>();
      scalar_t* pd = dx.data<scalar_t>();
      for (int64_t r = 0; r < c.rows; ++r)
        if (t[r] != ignore_index) pd[r * c.classes + t[r]] = -g[r];
    });
    accumulate_grad(log_probs, std::move(dx));
  });
  return y;
}

// ---- VAE latent loss -----------------------------------------------------------------------------

// l = 0.5 sum_k (mu_k^2 + e^lv_k - lv_k - 1) per row (last axis);  dmu = g mu, dlv = g (e^lv - 1) / 2
Tensor gaussian_kl(const Tensor& mu, const Tensor& logvar, Reduction reduction) {
  check_same_float(mu, logvar, "gaussian_kl");
  check_same_shape(mu, logvar, "gaussian_kl", "mu", "logvar");
  HEED_CHECK(mu.dim() >= 1, "gaussian_kl: mu and logvar need a latent (last) axis, got shape {}", shape_str(mu.shape()));
  const Shape row_shape(mu.shape().begin(), mu.shape().end() - 1);
  const int64_t rows = shape_numel(row_shape), width = mu.shape().back();
  Tensor md = mu.detach().contiguous(), vd = logvar.detach().contiguous();
  Tensor losses = make_tensor(row_shape, mu.dtype());
  HEED_DISPATCH_FLOAT(mu.dtype(), "gaussian_kl", [&] {
    const scalar_t *pm = md.data<scalar_t>(), *pv = vd.data<scalar_t>();
    scalar_t* pl = losses.data<scalar_t>();
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0.0;
      for (int64_t k = 0; k < width; ++k) {
        const scalar_t m = pm[r * width + k], v = pv[r * width + k];
        s += m * m + std::exp(v) - v - 1;
      }
      pl[r] = static_cast<scalar_t>(0.5 * s);
    }
  });
  Tensor y = reduce_losses(losses, reduction, rows);
  record("gaussian_kl", y, {mu, logvar}, [mu, logvar, md, vd, rows, width, reduction](const Tensor& gy) {
    Tensor gc = gy.contiguous();
    Tensor dmu = make_tensor(mu.shape(), mu.dtype());
    Tensor dlv = make_tensor(mu.shape(), mu.dtype());
    HEED_DISPATCH_FLOAT(mu.dtype(), "gaussian_kl", [&] {
      const Upstream<scalar_t> g(gc, reduction, rows);
      const scalar_t *pm = md.data<scalar_t>(), *pv = vd.data<scalar_t>();
      scalar_t *pdm = dmu.data<scalar_t>(), *pdv = dlv.data<scalar_t>();
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t k = 0; k < width; ++k) {
          const int64_t e = r * width + k;
          pdm[e] = g[r] * pm[e];
          pdv[e] = g[r] * scalar_t(0.5) * (std::exp(pv[e]) - 1);
        }
    });
    accumulate_grad(mu, std::move(dmu));
    accumulate_grad(logvar, std::move(dlv));
  });
  return y;
}

}  // namespace heed
