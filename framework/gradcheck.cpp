// framework/gradcheck.cpp — central-difference gradient checking (see heed/gradcheck.hpp).
#include "heed/gradcheck.hpp"

#include <algorithm>
#include <cmath>

#include "heed/autograd.hpp"
#include "heed/random.hpp"

namespace heed {

namespace {
// <f(inputs), R> in double.
double projected(const GradcheckFn& f, const std::vector<Tensor>& inputs, const std::vector<double>& r) {
  NoGradGuard no_grad;
  Tensor y = f(inputs);
  HEED_CHECK(y.defined() && is_floating(y.dtype()), "gradcheck: the function must return a float tensor");
  std::vector<double> v = y.to_vector<double>();
  HEED_CHECK(v.size() == r.size(), "gradcheck: the function's output changed size between calls ({} vs {})", v.size(),
             r.size());
  double acc = 0.0;
  for (std::size_t i = 0; i < v.size(); ++i) acc += v[i] * r[i];
  return acc;
}

// Pointer to element `flat` (row-major position) of a Float64 tensor view.
double* element(const Tensor& t, int64_t flat) {
  const Shape& s = t.shape();
  const Shape& st = t.strides();
  int64_t off = 0;
  for (int64_t d = static_cast<int64_t>(s.size()) - 1; d >= 0; --d) {
    off += (flat % s[d]) * st[d];
    flat /= s[d];
  }
  return t.data<double>() + off;
}
}  // namespace

GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& options) {
  GradcheckResult result;
  bool any = false;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    any = true;
    HEED_CHECK(x.dtype() == DType::Float64,
               "gradcheck: input {} of shape {} is {}; gradient checks need Float64 inputs", i, shape_str(x.shape()),
               dtype_name(x.dtype()));
    HEED_CHECK(x.is_leaf(), "gradcheck: input {} of shape {} must be a leaf tensor", i, shape_str(x.shape()));
  }
  HEED_CHECK(any, "gradcheck: no input requires grad, so there is nothing to check");

  // Analytic: backward with seed R gives dL/dx for L = <f(x), R>.
  clear_tape();
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) const_cast<Tensor&>(x).zero_grad();
  Tensor y = f(inputs);
  HEED_CHECK(y.defined() && y.dtype() == DType::Float64, "gradcheck: the function must return a Float64 tensor");
  Generator gen(options.seed());
  Tensor r = randn(y.shape(), DType::Float64, &gen);
  const std::vector<double> rv = r.to_vector<double>();
  if (y.requires_grad()) y.backward(r);
  clear_tape();

  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    std::vector<double> analytic =
        x.grad().defined() ? x.grad().to_vector<double>() : std::vector<double>(static_cast<std::size_t>(x.numel()), 0.0);
    for (int64_t j = 0; j < x.numel(); ++j) {
      double* p = element(x, j);
      const double saved = *p;
      *p = saved + options.eps();
      const double plus = projected(f, inputs, rv);
      *p = saved - options.eps();
      const double minus = projected(f, inputs, rv);
      *p = saved;
      const double numeric = (plus - minus) / (2.0 * options.eps());
      const double a = analytic[static_cast<std::size_t>(j)];
      const double abs_err = std::fabs(a - numeric);
      const double rel_err = abs_err / std::max(std::fabs(numeric), 1e-12);
      ++result.elements_checked;
      result.max_abs_error = std::max(result.max_abs_error, abs_err);
      if (abs_err > options.atol()) result.max_rel_error = std::max(result.max_rel_error, rel_err);
      if (!(abs_err <= options.atol() + options.rtol() * std::fabs(numeric))) {
        if (result.ok || result.report.size() < 2000)
          result.report += fmt::format("input {} {} element {}: analytic {:.10g} vs numeric {:.10g} (|diff| {:.3g})\n",
                                       i, shape_str(x.shape()), j, a, numeric, abs_err);
        result.ok = false;
      }
    }
  }
  for (const Tensor& x : inputs)
    if (x.defined() && x.requires_grad()) const_cast<Tensor&>(x).zero_grad();
  return result;
}

}  // namespace heed
