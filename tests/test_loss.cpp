// tests/test_loss.cpp — dropout and the losses: values against hand computation and PyTorch 1.13
// (the Python one-liner that produced each constant is in the comment above it; run with /usr/bin/python3),
// gradients by gradcheck under every reduction, and errors for bad targets and shapes.
#include <doctest/doctest.h>

#include <heed/heed.hpp>

#include "testing.hpp"

#include <cmath>
#include <string>
#include <vector>

using heed::DType;
using heed::Reduction;
using heed::Shape;
using heed::Tensor;

namespace {

using heed::testing::error_of;
using heed::testing::check_values;

void check_gradients(const heed::GradcheckFn& f, const std::vector<Tensor>& inputs, const std::string& what) {
  auto r = heed::gradcheck(f, inputs);
  CHECK_MESSAGE(r.ok, what << "\n" << r.report);
}

const std::vector<Reduction> kReductions = {Reduction::None, Reduction::Mean, Reduction::Sum};

std::string name(Reduction r) { return r == Reduction::None ? "None" : r == Reduction::Mean ? "Mean" : "Sum"; }

// The 4 x 5 logits and targets of the PyTorch cross_entropy references below.
Tensor ce_logits() {
  return heed::tensor({1.0, 2.0, 0.5, -1.0, 0.0, 0.3, -0.2, 2.5, 1.0, -1.5, -0.5, 0.0, 0.5, 1.5, 3.0, 2.0, 1.0, 0.0, -1.0, -2.0},
                      {4, 5}, DType::Float64);
}
Tensor ce_targets() { return heed::index_tensor({1, -100, 4, 0}); }

}  // namespace

// ---- dropout -----------------------------------------------------------------------------------------

TEST_CASE("dropout: identity in evaluation and with p = 0") {
  Tensor x = heed::randn({4, 5});
  Tensor y = heed::dropout(x, 0.5, false);
  CHECK(y.impl() == x.impl());
  CHECK(heed::dropout(x, 0.0, true).impl() == x.impl());
}

TEST_CASE("dropout: training keeps about 1 - p, scaled by 1 / (1 - p); backward uses the same mask") {
  const double p = 0.3;
  heed::Generator gen(42);
  Tensor x = heed::ones({200, 500}, DType::Float64).requires_grad_();
  Tensor y = heed::dropout(x, p, true, &gen);
  const std::vector<double> yv = y.to_vector<double>();
  int64_t kept = 0, badly_scaled = 0;
  for (double v : yv) {
    if (v == 0.0) continue;
    ++kept;
    if (v != 1.0 / (1.0 - p)) ++badly_scaled;
  }
  CHECK(badly_scaled == 0);
  const double fraction = static_cast<double>(kept) / static_cast<double>(yv.size());
  CHECK(fraction == doctest::Approx(1.0 - p).epsilon(0.01));  // 100k draws: std of the fraction is 0.0015
  heed::sum(y).backward();
  // x is all ones, so y is exactly the mask times the scale: the gradient must equal y
  CHECK(heed::max_abs_diff(x.grad(), y.detach()) == 0.0);
  // reseeding reproduces the mask; p = 1 drops everything
  heed::Generator again(42);
  CHECK(heed::max_abs_diff(heed::dropout(x.detach(), p, true, &again), y.detach()) == 0.0);
  CHECK(heed::sum(heed::abs(heed::dropout(x.detach(), 1.0, true, &gen))).item() == 0.0);
}

TEST_CASE("dropout: gradcheck with a reseeded generator") {
  Tensor x = heed::randn({3, 7}, DType::Float64).requires_grad_();
  check_gradients(
      [](const std::vector<Tensor>& in) {
        heed::Generator gen(7);
        return heed::dropout(in[0], 0.4, true, &gen);
      },
      {x}, "dropout");
}

TEST_CASE("dropout: p outside [0, 1] throws") {
  std::string e = error_of([] { heed::dropout(heed::zeros({2, 2}), 1.5, true); });
  CHECK_MESSAGE(e.find("dropout") != std::string::npos, e);
  CHECK_MESSAGE(e.find("1.5") != std::string::npos, e);
}

// ---- mse, binary losses --------------------------------------------------------------------------

TEST_CASE("mse_loss: values and gradcheck under every reduction") {
  Tensor a = heed::tensor({1.0, 2.0, 3.0, 4.0}, {2, 2}, DType::Float64);
  Tensor b = heed::tensor({0.0, 2.5, 5.0, 1.0}, {2, 2}, DType::Float64);
  check_values(heed::mse_loss(a, b, Reduction::None), {2, 2}, {1, 0.25, 4, 9});
  check_values(heed::mse_loss(a, b), {}, {14.25 / 4});
  check_values(heed::mse_loss(a, b, Reduction::Sum), {}, {14.25});
  Tensor x = heed::randn({3, 4}, DType::Float64).requires_grad_();
  Tensor t = heed::randn({3, 4}, DType::Float64).requires_grad_();
  for (Reduction r : kReductions)
    check_gradients([r](const std::vector<Tensor>& in) { return heed::mse_loss(in[0], in[1], r); }, {x, t},
                    "mse_loss " + name(r));
}

TEST_CASE("binary_cross_entropy: PyTorch values including the -100 log clamp, gradcheck") {
  Tensor x = heed::tensor({0.2, 0.9, 0.0, 1.0}, {4}, DType::Float64);
  Tensor t = heed::tensor({0.0, 1.0, 1.0, 0.5}, {4}, DType::Float64);
  // python3 -c "import torch,torch.nn.functional as F; x=torch.tensor([0.2,0.9,0.0,1.0],dtype=torch.float64);
  //   t=torch.tensor([0.0,1.0,1.0,0.5],dtype=torch.float64);
  //   print(F.binary_cross_entropy(x,t,reduction='none').tolist(), F.binary_cross_entropy(x,t).item())"
  check_values(heed::binary_cross_entropy(x, t, Reduction::None), {4}, {0.2231435513142097, 0.10536051565782628, 100.0, 50.0});
  check_values(heed::binary_cross_entropy(x, t), {}, {37.582126016743004});
  Tensor p = heed::uniform({2, 5}, 0.05, 0.95, DType::Float64).requires_grad_();
  Tensor y = heed::rand({2, 5}, DType::Float64).requires_grad_();
  for (Reduction r : kReductions)
    check_gradients([r](const std::vector<Tensor>& in) { return heed::binary_cross_entropy(in[0], in[1], r); }, {p, y},
                    "binary_cross_entropy " + name(r));
  std::string e = error_of([] {
    heed::binary_cross_entropy(heed::tensor({0.5, 1.5}, {2}, DType::Float64), heed::zeros({2}, DType::Float64));
  });
  CHECK_MESSAGE(e.find("binary_cross_entropy") != std::string::npos, e);
  CHECK_MESSAGE(e.find("1.5") != std::string::npos, e);
}

TEST_CASE("binary_cross_entropy_with_logits: PyTorch values on large logits, gradcheck") {
  Tensor x = heed::tensor({-30.0, 0.5, 40.0, -2.0}, {4}, DType::Float64);
  Tensor t = heed::tensor({0.0, 1.0, 0.3, 1.0}, {4}, DType::Float64);
  // python3 -c "import torch,torch.nn.functional as F; x=torch.tensor([-30.0,0.5,40.0,-2.0],dtype=torch.float64);
  //   t=torch.tensor([0.0,1.0,0.3,1.0],dtype=torch.float64);
  //   print(F.binary_cross_entropy_with_logits(x,t,reduction='none').tolist(),
  //         F.binary_cross_entropy_with_logits(x,t,reduction='sum').item())"
  check_values(heed::binary_cross_entropy_with_logits(x, t, Reduction::None), {4},
               {9.348077867343381e-14, 0.4740769841801067, 28.0, 2.1269280110429727});
  check_values(heed::binary_cross_entropy_with_logits(x, t, Reduction::Sum), {}, {30.601004995223175});
  Tensor logits = heed::randn({3, 4}, DType::Float64).requires_grad_();
  Tensor y = heed::rand({3, 4}, DType::Float64).requires_grad_();
  for (Reduction r : kReductions)
    check_gradients(
        [r](const std::vector<Tensor>& in) { return heed::binary_cross_entropy_with_logits(in[0], in[1], r); },
        {logits, y}, "binary_cross_entropy_with_logits " + name(r));
}

// ---- cross_entropy and nll_loss ------------------------------------------------------------------

TEST_CASE("cross_entropy: ignore_index and label smoothing match PyTorch, values and gradient") {
  Tensor x = ce_logits().requires_grad_();
  Tensor t = ce_targets();
  heed::CrossEntropyOptions smooth;
  smooth.label_smoothing(0.1);
  // python3 -c "import torch,torch.nn.functional as F; x=torch.tensor([[1.0,2.0,0.5,-1.0,0.0],[0.3,-0.2,2.5,1.0,-1.5],
  //   [-0.5,0.0,0.5,1.5,3.0],[2.0,1.0,0.0,-1.0,-2.0]],dtype=torch.float64,requires_grad=True); t=torch.tensor([1,-100,4,0]);
  //   l=F.cross_entropy(x,t,label_smoothing=0.1); l.backward(); print(repr(l.item()),
  //   F.cross_entropy(x,t,label_smoothing=0.1,reduction='sum').item(), F.cross_entropy(x,t,label_smoothing=0.1,
  //   reduction='none').tolist(), F.cross_entropy(x,t).item(), x.grad.tolist())"
  Tensor loss = heed::cross_entropy(x, t, smooth);
  check_values(loss, {}, {0.6373988626565918});
  loss.backward();
  check_values(x.grad(), {4, 5},
               {0.06237464537581974, -0.11899292272860522, 0.0352090058738884, 0.0026770588536305906, 0.018732212625266406,
                0.0, 0.0, 0.0, 0.0, 0.0,
                0.0006000076792917328, 0.005314053894765888, 0.013086202161281568, 0.047027197728280144, -0.06602746146361939,
                -0.09453045114705642, 0.07137388575091219, 0.0220428481454229, 0.003894973598708087, -0.0027812563479867984});
  smooth.reduction(Reduction::Sum);
  check_values(heed::cross_entropy(ce_logits(), t, smooth), {}, {1.9121965879697753});
  smooth.reduction(Reduction::None);
  check_values(heed::cross_entropy(ce_logits(), t, smooth), {4},
               {0.7244379396277961, 0.0, 0.5358442524043859, 0.6519143959375934});
  check_values(heed::cross_entropy(ce_logits(), t), {}, {0.45073219598992514});
}

TEST_CASE("cross_entropy: classes on the last axis of 3-D logits, custom ignore_index") {
  Tensor x = heed::tensor({1.0, -0.5, 2.0, 0.0, 0.25, -1.0, 3.0, 1.0, -2.0, 0.5, 0.5, 0.5}, {2, 2, 3}, DType::Float64);
  Tensor t = heed::index_tensor({0, 2, 1, 2}, {2, 2});
  heed::CrossEntropyOptions o;
  o.ignore_index(2);
  o.label_smoothing(0.25);
  // PyTorch wants classes on axis 1, hence the permute:
  // python3 -c "import torch,torch.nn.functional as F; x=torch.tensor([[[1.0,-0.5,2.0],[0.0,0.25,-1.0]],[[3.0,1.0,-2.0],
  //   [0.5,0.5,0.5]]],dtype=torch.float64); t=torch.tensor([[0,2],[1,2]]); print(F.cross_entropy(x.permute(0,2,1), t,
  //   ignore_index=2, label_smoothing=0.25).item(), F.cross_entropy(x.permute(0,2,1), t, ignore_index=2,
  //   label_smoothing=0.25, reduction='none').tolist())"
  check_values(heed::cross_entropy(x, t, o), {}, {1.814692132790129});
  o.reduction(Reduction::None);
  check_values(heed::cross_entropy(x, t, o), {2, 2}, {1.4132056985193495, 0.0, 2.2161785670609087, 0.0});
  // every target ignored: Mean is 0 / 0 = NaN as in PyTorch, and no gradient
  o.reduction(Reduction::Mean);
  Tensor all_ignored = heed::index_tensor({2, 2, 2, 2}, {2, 2});
  Tensor xl = heed::tensor(x.to_vector<double>(), {2, 2, 3}, DType::Float64).requires_grad_();
  Tensor nan_loss = heed::cross_entropy(xl, all_ignored, o);
  CHECK(std::isnan(nan_loss.item()));
  nan_loss.backward();
  for (double g : xl.grad().to_vector<double>()) CHECK(g == 0.0);
}

TEST_CASE("cross_entropy: gradcheck under every reduction, with ignore_index and label smoothing") {
  Tensor x = heed::randn({2, 3, 5}, DType::Float64).requires_grad_();
  Tensor t = heed::index_tensor({4, -100, 0, 2, 1, -100}, {2, 3});
  for (Reduction r : kReductions)
    for (double eps : {0.0, 0.3}) {
      heed::CrossEntropyOptions o;
      o.reduction(r);
      o.label_smoothing(eps);
      check_gradients([&](const std::vector<Tensor>& in) { return heed::cross_entropy(in[0], t, o); }, {x},
                      "cross_entropy " + name(r) + " eps " + std::to_string(eps));
    }
  // 1-D logits with a 0-d target
  Tensor v = heed::randn({4}, DType::Float64).requires_grad_();
  Tensor t0 = heed::index_tensor({3}, {});
  check_gradients([&](const std::vector<Tensor>& in) { return heed::cross_entropy(in[0], t0); }, {v}, "cross_entropy 1-D");
  CHECK(heed::cross_entropy(v, t0).item() ==
        doctest::Approx(-heed::log_softmax(v.detach()).to_vector<double>()[3]));
}

TEST_CASE("cross_entropy: bad targets throw with the op, the value and the shapes") {
  Tensor x = heed::zeros({4, 5});
  std::string e = error_of([&] { heed::cross_entropy(x, heed::index_tensor({1, 7, 0, 2})); });
  CHECK_MESSAGE(e.find("cross_entropy") != std::string::npos, e);
  CHECK_MESSAGE(e.find("target 7") != std::string::npos, e);
  CHECK_MESSAGE(e.find("[0, 5)") != std::string::npos, e);
  CHECK_MESSAGE(e.find("[4, 5]") != std::string::npos, e);
  CHECK_MESSAGE(e.find("[4]") != std::string::npos, e);
  e = error_of([&] { heed::cross_entropy(x, heed::index_tensor({1, -1, 0, 2})); });
  CHECK_MESSAGE(e.find("target -1") != std::string::npos, e);
  heed::CrossEntropyOptions o;
  o.ignore_index(-1);  // now -1 is fine, -100 is not
  CHECK_NOTHROW(heed::cross_entropy(x, heed::index_tensor({1, -1, 0, 2}), o));
  e = error_of([&] { heed::cross_entropy(x, heed::index_tensor({1, -100, 0, 2}), o); });
  CHECK_MESSAGE(e.find("target -100") != std::string::npos, e);
  e = error_of([&] { heed::cross_entropy(x, heed::index_tensor({1, 2, 3})); });
  CHECK_MESSAGE(e.find("cross_entropy") != std::string::npos, e);
  CHECK_MESSAGE(e.find("[3]") != std::string::npos, e);
  e = error_of([&] { heed::cross_entropy(x, heed::zeros({4})); });
  CHECK_MESSAGE(e.find("Int64") != std::string::npos, e);
  o.label_smoothing(1.5);
  e = error_of([&] { heed::cross_entropy(x, heed::index_tensor({0, 0, 0, 0}), o); });
  CHECK_MESSAGE(e.find("label_smoothing") != std::string::npos, e);
}

TEST_CASE("nll_loss: PyTorch value, gradcheck, bad targets") {
  Tensor x = heed::tensor({1.0, -0.5, 2.0, 0.0, 0.25, -1.0, 3.0, 1.0, -2.0, 0.5, 0.5, 0.5}, {2, 2, 3}, DType::Float64);
  Tensor t = heed::index_tensor({0, 1, 2, -100}, {2, 2});
  // python3 -c "import torch,torch.nn.functional as F; x=torch.tensor([[[1.0,-0.5,2.0],[0.0,0.25,-1.0]],[[3.0,1.0,-2.0],
  //   [0.5,0.5,0.5]]],dtype=torch.float64); t=torch.tensor([[0,1],[2,-100]]);
  //   print(F.nll_loss(F.log_softmax(x,-1).permute(0,2,1), t).item())"
  check_values(heed::nll_loss(heed::log_softmax(x, -1), t), {}, {2.4098874872138736});
  // nll_loss(log_softmax) is cross_entropy
  CHECK(heed::nll_loss(heed::log_softmax(x, -1), t, -100, Reduction::Sum).item() ==
        doctest::Approx(heed::cross_entropy(x, t, heed::CrossEntropyOptions().reduction(Reduction::Sum)).item()));
  check_values(heed::nll_loss(x, t, -100, Reduction::None), {2, 2}, {-1.0, -0.25, 2.0, 0.0});
  Tensor lp = heed::randn({2, 2, 3}, DType::Float64).requires_grad_();
  for (Reduction r : kReductions)
    check_gradients([&](const std::vector<Tensor>& in) { return heed::nll_loss(in[0], t, -100, r); }, {lp},
                    "nll_loss " + name(r));
  std::string e = error_of([&] { heed::nll_loss(x, heed::index_tensor({0, 3, 0, 0}, {2, 2})); });
  CHECK_MESSAGE(e.find("nll_loss") != std::string::npos, e);
  CHECK_MESSAGE(e.find("target 3") != std::string::npos, e);
  CHECK_MESSAGE(e.find("[2, 2, 3]") != std::string::npos, e);
}

// ---- gaussian_kl -----------------------------------------------------------------------------------

TEST_CASE("gaussian_kl: values by hand, gradcheck under every reduction") {
  Tensor mu = heed::tensor({0.0, 0.0, 1.0, -2.0}, {2, 2}, DType::Float64);
  Tensor logvar = heed::tensor({0.0, 0.0, std::log(2.0), 0.0}, {2, 2}, DType::Float64);
  // row 0 is N(0, 1): 0. row 1: 0.5 (1 + 2 - log 2 - 1) + 0.5 (4 + 1 - 0 - 1)
  const double row1 = 0.5 * (2 - std::log(2.0)) + 2.0;
  check_values(heed::gaussian_kl(mu, logvar, Reduction::None), {2}, {0.0, row1});
  check_values(heed::gaussian_kl(mu, logvar), {}, {row1 / 2});
  check_values(heed::gaussian_kl(mu, logvar, Reduction::Sum), {}, {row1});
  Tensor m = heed::randn({3, 4}, DType::Float64).requires_grad_();
  Tensor v = heed::randn({3, 4}, DType::Float64).requires_grad_();
  for (Reduction r : kReductions)
    check_gradients([r](const std::vector<Tensor>& in) { return heed::gaussian_kl(in[0], in[1], r); }, {m, v},
                    "gaussian_kl " + name(r));
  std::string e = error_of([] { heed::gaussian_kl(heed::zeros({2, 3}), heed::zeros({2, 4})); });
  CHECK_MESSAGE(e.find("gaussian_kl") != std::string::npos, e);
  CHECK_MESSAGE(e.find("[2, 4]") != std::string::npos, e);
}

TEST_CASE("losses: mismatched shapes and dtypes throw") {
  std::string e = error_of([] { heed::mse_loss(heed::zeros({4, 1}), heed::zeros({4})); });
  CHECK_MESSAGE(e.find("mse_loss") != std::string::npos, e);
  CHECK_MESSAGE(e.find("[4, 1]") != std::string::npos, e);
  e = error_of([] { heed::binary_cross_entropy_with_logits(heed::zeros({2}), heed::zeros({2}, DType::Float64)); });
  CHECK_MESSAGE(e.find("binary_cross_entropy_with_logits") != std::string::npos, e);
}
