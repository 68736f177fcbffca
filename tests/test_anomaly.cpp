// Anomaly mode (heed/autograd.hpp): under heed::AnomalyModeGuard every op checks its output, and every
// backward the gradients it produces, for NaN/Inf, and throws heed::Error naming the op.
#include <doctest/doctest.h>

#include <cmath>
#include <heed/heed.hpp>
#include <heed/nn/transformer.hpp>
#include <thread>

#include "testing.hpp"

using heed::Tensor;
using heed::testing::error_of;

namespace {

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// Identity forward; its backward hands NaN to its input (a broken custom op).
Tensor nan_backward(const Tensor& x) {
  Tensor y = x.detach() * 1.0;
  heed::record("nan_backward", y, {x}, [x](const Tensor&) {
    heed::accumulate_grad(x, heed::full(x.shape(), std::nan(""), x.dtype()));
  });
  return y;
}

// Identity forward; its backward computes 0/0 with ops.
Tensor zero_over_zero_backward(const Tensor& x) {
  Tensor y = x.detach() * 1.0;
  heed::record("zero_over_zero", y, {x}, [x](const Tensor& g) {
    heed::accumulate_grad(x, g * 0.0 / heed::zeros_like(x));
  });
  return y;
}

}  // namespace

TEST_CASE("anomaly mode: off by default, so NaN flows without an error") {
  CHECK_FALSE(heed::is_anomaly_enabled());
  Tensor y = heed::log(heed::tensor({1.0, -1.0}));
  CHECK(std::isnan(y.to_vector<double>()[1]));
  Tensor x = heed::tensor({1.0, 2.0}).requires_grad_();
  heed::sum(nan_backward(x)).backward();
  CHECK(std::isnan(x.grad().to_vector<double>()[0]));
  bool other_thread = true;
  {
    heed::AnomalyModeGuard on;
    std::thread t([&] { other_thread = heed::is_anomaly_enabled(); });
    t.join();
  }
  CHECK_FALSE(other_thread);  // per thread
}

TEST_CASE("anomaly mode: the log of a negative number throws naming log") {
  heed::AnomalyModeGuard anomaly;
  CHECK(heed::is_anomaly_enabled());
  const Tensor x = heed::tensor({1.0, -2.0, 3.0});
  // Recorded or not: a plain tensor, one that requires grad, and under NoGradGuard.
  std::string err = error_of([&] { heed::log(x); });
  CHECK_MESSAGE(contains(err, "anomaly mode: log produced NaN in its output of shape [3] (element 1); inputs of "
                              "shape [3]: all finite"),
                err);
  const Tensor w = heed::tensor({1.0, -2.0, 3.0}).requires_grad_();
  err = error_of([&] { heed::log(w * 1.0); });
  CHECK_MESSAGE(contains(err, "log produced NaN"), err);
  {
    heed::NoGradGuard no_grad;
    CHECK(contains(error_of([&] { heed::log(w); }), "log produced NaN"));
  }
  heed::clear_tape();
  // +Inf from an overflow, and an op that receives a NaN says so.
  err = error_of([&] { heed::exp(heed::tensor({1.0, 100.0})); });
  CHECK_MESSAGE(contains(err, "exp produced +Inf in its output of shape [2] (element 1)"), err);
  {
    heed::AnomalyModeGuard off(false);
    const Tensor nan_in = heed::log(x);  // made while the mode is off
    heed::AnomalyModeGuard on;
    err = error_of([&] { (void)(nan_in + 1.0); });
    CHECK_MESSAGE(contains(err, "input 0 already holds NaN (element 1)"), err);
  }
  // Finite results pass.
  CHECK(heed::log(heed::abs(x)).numel() == 3);
}

TEST_CASE("anomaly mode: a custom op whose backward produces NaN throws naming that op and the shapes") {
  heed::AnomalyModeGuard anomaly;
  Tensor x = heed::ones({2, 3}).requires_grad_();
  std::string err = error_of([&] { heed::sum(heed::tanh(nan_backward(x))).backward(); });
  CHECK_MESSAGE(contains(err, "anomaly mode: the backward of nan_backward (output of shape [2, 3]) produced NaN in "
                              "the gradient for its input of shape [2, 3] (element 0)"),
                err);
  CHECK_FALSE(x.grad().defined());  // the NaN never reached x
  heed::clear_tape();

  // A backward that computes its NaN with ops: the op inside it is named, and the backward it runs in.
  err = error_of([&] { heed::sum(zero_over_zero_backward(x)).backward(); });
  CHECK_MESSAGE(contains(err, "div produced NaN"), err);
  CHECK_MESSAGE(contains(err, "while running the backward of zero_over_zero"), err);
  heed::clear_tape();

  // A built-in op: sqrt at 0 has a finite value and an infinite gradient.
  Tensor z = heed::zeros({4}).requires_grad_();
  err = error_of([&] { heed::sum(heed::sqrt(z)).backward(); });
  CHECK_MESSAGE(contains(err, "Inf"), err);
  CHECK_MESSAGE(contains(err, "backward of sqrt"), err);
  heed::clear_tape();

  // The seed gradient of backward() itself.
  Tensor v = heed::ones({2}).requires_grad_();
  Tensor u = v * 2.0;
  err = error_of([&] { u.backward(heed::full({2}, std::nan(""))); });
  CHECK_MESSAGE(contains(err, "the seed gradient given to backward() holds NaN"), err);
  heed::clear_tape();
}

TEST_CASE("anomaly mode: no false alarm on a Transformer training step with a causal mask") {
  heed::manual_seed(4);
  heed::nn::TransformerEncoderLayer layer(heed::nn::TransformerLayerOptions(16, 2).dim_feedforward(32));
  const Tensor src = heed::randn({2, 5, 16});
  heed::nn::AttentionMasks masks;
  masks.causal = true;
  auto step = [&] {
    for (Tensor p : layer.parameters()) p.zero_grad();
    heed::sum(heed::square(layer.forward(src, masks).output)).backward();
    std::vector<float> grads;
    for (const Tensor& p : layer.parameters()) {
      const std::vector<float> g = p.grad().to_vector<float>();
      grads.insert(grads.end(), g.begin(), g.end());
    }
    return grads;
  };
  heed::manual_seed(9);
  const std::vector<float> plain = step();
  heed::manual_seed(9);
  std::vector<float> checked;
  {
    heed::AnomalyModeGuard anomaly;
    const std::string err = error_of([&] { checked = step(); });
    REQUIRE_MESSAGE(err == "(no error)", err);
  }
  CHECK(checked == plain);  // the mode only looks
}

TEST_CASE("anomaly mode: the guard restores the previous setting, also when an error leaves its scope") {
  CHECK_FALSE(heed::is_anomaly_enabled());
  try {
    heed::AnomalyModeGuard anomaly;
    heed::log(heed::tensor({-1.0}));
  } catch (const heed::Error&) {
  }
  CHECK_FALSE(heed::is_anomaly_enabled());
  heed::set_anomaly_enabled(true);
  {
    heed::AnomalyModeGuard off(false);
    CHECK_FALSE(heed::is_anomaly_enabled());
  }
  CHECK(heed::is_anomaly_enabled());
  heed::set_anomaly_enabled(false);
}
