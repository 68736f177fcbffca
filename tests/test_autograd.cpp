// Tape semantics: accumulation, reuse, lifetime rules, no-grad mode and the errors of heed/autograd.hpp.
#include <doctest/doctest.h>

#include <heed/heed.hpp>
#include <string>

using heed::DType;
using heed::Tensor;

TEST_CASE("autograd: gradients of a tensor used several times add up") {
  Tensor x = heed::tensor({2.0, 3.0}, {2}, DType::Float64).requires_grad_();
  Tensor y = heed::sum(x * x + x * 3.0);  // dy/dx = 2x + 3
  y.backward();
  CHECK(heed::allclose(x.grad(), heed::tensor({7.0, 9.0}, {2}, DType::Float64)));
}

TEST_CASE("autograd: leaf gradients accumulate across backward calls until zero_grad") {
  Tensor w = heed::tensor({1.5}, {1}, DType::Float64).requires_grad_();
  heed::sum(w * 2.0).backward();
  heed::sum(w * 2.0).backward();
  CHECK(w.grad().item() == doctest::Approx(4.0));
  w.zero_grad();
  CHECK_FALSE(w.grad().defined());
  heed::sum(w * 5.0).backward();
  CHECK(w.grad().item() == doctest::Approx(5.0));
}

TEST_CASE("autograd: backward clears the tape; intermediate gradients are dropped unless retained") {
  heed::clear_tape();
  Tensor x = heed::tensor({1.0, -2.0}, {2}, DType::Float64).requires_grad_();
  Tensor h = heed::tanh(x);
  Tensor k = heed::exp(x);
  k.retain_grad();
  Tensor loss = heed::sum(h * k);
  CHECK(heed::tape_size() > 0);
  CHECK_FALSE(h.is_leaf());
  loss.backward();
  CHECK(heed::tape_size() == 0);
  CHECK_FALSE(h.grad().defined());
  REQUIRE(k.grad().defined());
  CHECK(heed::allclose(k.grad(), heed::tanh(x.detach())));
}

TEST_CASE("autograd: a second backward with retain_graph pushes only its own gradient through a retained non-leaf") {
  // w (2) -> c = 3 w (retain_grad) -> L = sum(c^2). One pass: dL/dc = 2c = [6, 12], dL/dw = [18, 36].
  // Two passes accumulate exactly twice that (PyTorch gives w.grad = [36, 72], c.grad = [12, 24]); pushing
  // c's accumulated gradient in the second pass would give w.grad = [54, 108].
  Tensor w = heed::tensor({1.0, 2.0}, {2}, DType::Float64).requires_grad_();
  Tensor c = w * 3.0;
  c.retain_grad();
  Tensor loss = heed::sum(c * c);
  loss.backward(Tensor(), /*retain_graph=*/true);
  loss.backward();
  CHECK(w.grad().to_vector<double>() == std::vector<double>{36.0, 72.0});
  CHECK(c.grad().to_vector<double>() == std::vector<double>{12.0, 24.0});
}

TEST_CASE("autograd: backward twice through a freed tape throws, retain_graph allows it") {
  Tensor x = heed::tensor({0.5}, {1}, DType::Float64).requires_grad_();
  Tensor y = heed::sum(heed::sigmoid(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  const double s = 1.0 / (1.0 + std::exp(-0.5));
  CHECK(x.grad().item() == doctest::Approx(2 * s * (1 - s)));
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("freed tape"), heed::Error);

  // A tensor from a freed graph used in a new graph: its gradient cannot flow, so backward says so.
  Tensor h = heed::tanh(x);
  heed::sum(h).backward();
  Tensor z = heed::sum(h * 2.0);
  CHECK_THROWS_WITH_AS(z.backward(), doctest::Contains("freed tape"), heed::Error);
  heed::clear_tape();
}

TEST_CASE("autograd: backward on a non-scalar needs a seed of its shape") {
  Tensor x = heed::randn({2, 3}, DType::Float64).requires_grad_();
  Tensor y = heed::tanh(x);
  CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("[2, 3]"), heed::Error);
  CHECK_THROWS_WITH_AS(y.backward(heed::ones({3, 2}, DType::Float64)), doctest::Contains("seed"), heed::Error);
  Tensor seed = heed::full({2, 3}, 2.0, DType::Float64);
  y.backward(seed);
  Tensor t = heed::tanh(x.detach());
  CHECK(heed::allclose(x.grad(), (1.0 - t * t) * 2.0));
}

TEST_CASE("autograd: backward on a tensor that does not require grad throws") {
  Tensor x = heed::ones({2});
  CHECK_THROWS_WITH_AS(heed::sum(x).backward(), doctest::Contains("does not require grad"), heed::Error);
}

TEST_CASE("autograd: NoGradGuard records nothing and results do not require grad") {
  heed::clear_tape();
  Tensor x = heed::randn({3}).requires_grad_();
  {
    heed::NoGradGuard no_grad;
    Tensor y = heed::exp(x) * 2.0;
    CHECK_FALSE(y.requires_grad());
    CHECK(heed::tape_size() == 0);
    {
      heed::EnableGradGuard grad_on;
      Tensor z = heed::exp(x);
      CHECK(z.requires_grad());
    }
    CHECK_FALSE(heed::is_grad_enabled());
  }
  CHECK(heed::is_grad_enabled());
  CHECK(heed::tape_size() == 1);
  heed::clear_tape();
}

TEST_CASE("autograd: detach cuts the history") {
  Tensor x = heed::tensor({3.0}, {1}, DType::Float64).requires_grad_();
  Tensor y = heed::sum(x * x.detach());  // gradient only through the first factor
  y.backward();
  CHECK(x.grad().item() == doctest::Approx(3.0));
}

TEST_CASE("autograd: requires_grad_ only on float leaves") {
  Tensor i = heed::index_tensor({1, 2});
  CHECK_THROWS_AS(i.requires_grad_(), heed::Error);
  Tensor x = heed::ones({2}).requires_grad_();
  Tensor y = heed::exp(x);
  CHECK_THROWS_WITH_AS(y.requires_grad_(false), doctest::Contains("leaf"), heed::Error);
  heed::clear_tape();
}

TEST_CASE("autograd: a gradient of the wrong shape from a custom backward names the op") {
  Tensor x = heed::randn({2, 2}, DType::Float64).requires_grad_();
  Tensor y = heed::exp(x.detach());
  heed::record("broken_op", y, {x}, [x](const Tensor&) { heed::accumulate_grad(x, heed::ones({3}, DType::Float64)); });
  CHECK_THROWS_WITH_AS(heed::sum(y).backward(), doctest::Contains("broken_op"), heed::Error);
  heed::clear_tape();
}

TEST_CASE("autograd: a deep chain runs without recursion limits") {
  Tensor x = heed::tensor({0.0}, {1}, DType::Float64).requires_grad_();
  Tensor y = x;
  for (int i = 0; i < 100000; ++i) y = y + 1.0;
  heed::sum(y).backward();
  CHECK(x.grad().item() == doctest::Approx(1.0));
}
