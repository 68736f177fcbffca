// heed/gradcheck.hpp — finite-difference gradient checking for ops and layers, yours included.
//
//   auto x = heed::randn({3, 4}, heed::DType::Float64).requires_grad_();
//   auto r = heed::gradcheck([](const std::vector<heed::Tensor>& in) { return heed::tanh(in[0]); }, {x});
//   CHECK(r.ok);   // r.report says which input and element disagree, and by how much
//
// The function may return a tensor of any shape. gradcheck reduces it to L = sum(f(inputs) * R) with a
// fixed random R, computes dL/dinput by backward, and compares every element with the central
// difference (L(x+h) - L(x-h)) / 2h, in float64. An element passes when
// |analytic - numeric| <= atol + rtol * |numeric|. Only inputs with requires_grad are checked; they
// must be Float64 (the check is meaningless in float32). f must be deterministic: reseed inside f for
// stochastic layers.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "heed/options.hpp"
#include "heed/tensor.hpp"

namespace heed {

/// Tolerances of heed::gradcheck: an element passes when |analytic - numeric| <= atol + rtol * |numeric|.
/// Setters chain; the same names without arguments read.
struct GradcheckOptions {
  HEED_ARG(double, eps) = 1e-6;  ///< h of the central difference (L(x+h) - L(x-h)) / 2h
  HEED_ARG(double, atol) = 1e-6;  ///< absolute tolerance
  HEED_ARG(double, rtol) = 1e-5;  ///< tolerance relative to |numeric|
  HEED_ARG(uint64_t, seed) = 1234;  ///< for the projection R
};

/// What heed::gradcheck found, over every checked element of every input that requires grad.
struct GradcheckResult {
  bool ok = true;                ///< every element within tolerance
  double max_abs_error = 0.0;    ///< largest |analytic - numeric|
  double max_rel_error = 0.0;    ///< largest |analytic - numeric| / |numeric|
  int64_t elements_checked = 0;  ///< input elements perturbed (two evaluations of f each)
  std::string report;  ///< empty when ok; else the first mismatches
};

/// The checked function: the inputs in, one float tensor of any shape out.
using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;
/// Compares backward's gradient of sum(f(inputs) * R) with central differences, element by element.
/// Throws heed::Error when no input requires grad, an input is not a Float64 leaf, or f's output is not Float64.
GradcheckResult gradcheck(const GradcheckFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace heed
