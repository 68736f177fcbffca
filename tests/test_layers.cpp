// layer_norm and the basic layers: gradient checks and PyTorch parity. (The Module machinery around them
// is tested in test_module.cpp.)
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include <heed/heed.hpp>

#include "layer_fixtures.hpp"
#include "testing.hpp"

namespace {

using heed::DType;
using heed::Tensor;
namespace nn = heed::nn;

using heed::testing::randn64;

// layer_norm spelled out with generic ops, as the reference for the fused kernel.
Tensor layer_norm_reference(const Tensor& x, int64_t k, const Tensor& w, const Tensor& b, double eps) {
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < k; ++i) axes.push_back(-1 - i);
  Tensor centered = x - heed::mean(x, axes, true);
  Tensor y = centered / heed::sqrt(heed::mean(centered * centered, axes, true) + eps);
  if (w.defined()) y = y * w;
  if (b.defined()) y = y + b;
  return y;
}

}  // namespace

// ---- layer_norm op -------------------------------------------------------------------------------------

TEST_CASE("layer_norm: matches the composite definition and passes gradcheck") {
  heed::manual_seed(21);
  struct Case {
    const char* name;
    heed::Shape input, normalized;
    bool weight, bias;
  };
  const std::vector<Case> cases = {
      {"last axis, affine", {3, 5}, {5}, true, true},
      {"last two axes, affine", {2, 3, 4}, {3, 4}, true, true},
      {"no affine", {4, 6}, {6}, false, false},
      {"weight only", {2, 2, 3}, {3}, true, false},
      {"whole tensor", {2, 3}, {2, 3}, true, true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Tensor x = randn64(c.input) * 2.0 + 1.0;
    x = x.detach().requires_grad_();
    Tensor w = c.weight ? randn64(c.normalized) : Tensor();
    Tensor b = c.bias ? randn64(c.normalized) : Tensor();
    Tensor y = heed::layer_norm(x, c.normalized, w, b, 1e-5);
    Tensor want = layer_norm_reference(x, static_cast<int64_t>(c.normalized.size()), w, b, 1e-5);
    CHECK(heed::max_abs_diff(y, want) < 1e-10);
    auto r = heed::gradcheck(
        [&](const std::vector<Tensor>& in) { return heed::layer_norm(in[0], c.normalized, in[1], in[2], 1e-5); },
        {x, w, b});
    CHECK_MESSAGE(r.ok, r.report);
  }
  // A strided (transposed) input.
  Tensor base = randn64({5, 3});
  auto r = heed::gradcheck(
      [](const std::vector<Tensor>& in) { return heed::layer_norm(in[0].transpose(0, 1), {5}, in[1], Tensor()); },
      {base, randn64({5})});
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("layer_norm: float32 rows of large values keep their accuracy; errors name shapes") {
  Tensor x = heed::tensor({1000.0f, 1001.0f, 1002.0f, 1003.0f}, {1, 4});
  Tensor y = heed::layer_norm(x, {4});
  const double s = std::sqrt(1.25 + 1e-5);
  CHECK(heed::allclose(y, heed::tensor({-1.5f / float(s), -0.5f / float(s), 0.5f / float(s), 1.5f / float(s)}, {1, 4}),
                       1e-5, 1e-5));
  CHECK_THROWS_WITH_AS(heed::layer_norm(heed::randn({2, 3}), {4}),
                       doctest::Contains("layer_norm: input shape [2, 3] does not end with normalized_shape [4]"),
                       heed::Error);
  CHECK_THROWS_WITH_AS(heed::layer_norm(heed::randn({2, 3}), {3}, heed::ones({2})),
                       doctest::Contains("layer_norm: weight has shape [2], expected normalized_shape [3]"),
                       heed::Error);
}

// ---- layers ----------------------------------------------------------------------------------------------

TEST_CASE("layers: Linear shapes, init bounds, printing, gradcheck") {
  heed::manual_seed(22);
  nn::Linear lin(5, 3);
  CHECK(lin.weight.shape() == heed::Shape{3, 5});
  CHECK(lin.bias.shape() == heed::Shape{3});
  CHECK(lin.to_string() == "Linear(in_features=5, out_features=3, bias=True)");
  const double bound = 1.0 / std::sqrt(5.0);
  double largest = 0.0;
  for (double v : lin.weight.to_vector<double>()) largest = std::max(largest, std::fabs(v));
  CHECK(largest <= bound);
  CHECK(largest > 0.5 * bound);  // really drawn from U(-bound, bound), not zeros
  for (double v : lin.bias.to_vector<double>()) CHECK(std::fabs(v) <= bound);

  lin.to(DType::Float64);
  Tensor x = randn64({2, 4, 5});
  auto r = heed::gradcheck([&](const std::vector<Tensor>& in) { return lin(in[0]); }, {x, lin.weight, lin.bias});
  CHECK_MESSAGE(r.ok, r.report);

  nn::Linear nobias(4, 2, false);
  CHECK_FALSE(nobias.bias.defined());
  CHECK(nobias.named_parameters().size() == 1);
  CHECK(nobias.to_string() == "Linear(in_features=4, out_features=2, bias=False)");
  CHECK_THROWS_WITH_AS(nobias(heed::randn({3, 5})), doctest::Contains("[3, 5]"), heed::Error);
}

TEST_CASE("layers: Embedding lookup, zero padding row without gradient, gradcheck") {
  heed::manual_seed(23);
  nn::Embedding emb(10, 4, 0);
  CHECK(emb.to_string() == "Embedding(10, 4, padding_idx=0)");
  for (double v : heed::select(emb.weight, 0, 0).to_vector<double>()) CHECK(v == 0.0);
  Tensor idx = heed::index_tensor({0, 3, 9, 3, 0, 1}, {2, 3});
  Tensor y = emb(idx);
  CHECK(y.shape() == heed::Shape{2, 3, 4});
  CHECK(heed::allclose(heed::select(heed::select(y, 0, 1), 0, 0), heed::select(emb.weight, 0, 3)));
  heed::sum(y * 3.0).backward();
  const std::vector<double> g = emb.weight.grad().to_vector<double>();
  for (int j = 0; j < 4; ++j) {
    CHECK(g[0 * 4 + j] == 0.0);  // padding row
    CHECK(g[3 * 4 + j] == 6.0);  // index 3 used twice
    CHECK(g[5 * 4 + j] == 0.0);  // unused
  }
  emb.to(DType::Float64);
  // The padding row is excluded from the finite differences' reach: it receives no gradient by design.
  Tensor used = heed::index_tensor({1, 3, 9, 3, 2}, {5});
  auto r = heed::gradcheck([&](const std::vector<Tensor>& in) { return emb(used) * in[1]; },
                           {emb.weight, randn64({5, 4})});
  CHECK_MESSAGE(r.ok, r.report);
  CHECK(nn::Embedding(3, 2).to_string() == "Embedding(3, 2)");
  CHECK_THROWS_WITH_AS(nn::Embedding(3, 2, 3), doctest::Contains("padding_idx 3"), heed::Error);
}

TEST_CASE("layers: Dropout follows train()/eval() and gradchecks with a fixed seed") {
  nn::Dropout drop(0.25);
  CHECK(drop.to_string() == "Dropout(p=0.25)");
  Tensor x = heed::ones({1000});
  heed::manual_seed(24);
  Tensor y = drop(x);
  const std::vector<float> v = y.to_vector<float>();
  int zeros = 0;
  for (float e : v) {
    CHECK((e == 0.0f || std::fabs(e - 1.0f / 0.75f) < 1e-6f));
    zeros += e == 0.0f;
  }
  CHECK(zeros > 180);
  CHECK(zeros < 320);
  drop.eval();
  CHECK(heed::allclose(drop(x), x));
  drop.train();
  Tensor x64 = randn64({3, 7});
  auto r = heed::gradcheck(
      [&](const std::vector<Tensor>& in) {
        heed::manual_seed(5);
        return drop(in[0]);
      },
      {x64});
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("layers: LayerNorm module parameters, printing, gradcheck") {
  heed::manual_seed(25);
  nn::LayerNorm ln({3, 4});
  CHECK(ln.to_string() == "LayerNorm((3, 4), eps=1e-05, elementwise_affine=True)");
  CHECK(nn::LayerNorm({6}).to_string() == "LayerNorm((6,), eps=1e-05, elementwise_affine=True)");
  CHECK(heed::allclose(ln.weight, heed::ones({3, 4})));
  CHECK(heed::allclose(ln.bias, heed::zeros({3, 4})));
  ln.to(DType::Float64);
  {
    heed::NoGradGuard no_grad;  // non-trivial affine parameters
    ln.weight.copy_(heed::randn({3, 4}, DType::Float64));
    ln.bias.copy_(heed::randn({3, 4}, DType::Float64));
  }
  Tensor x = randn64({2, 3, 4});
  auto r = heed::gradcheck([&](const std::vector<Tensor>& in) { return ln(in[0]); }, {x, ln.weight, ln.bias});
  CHECK_MESSAGE(r.ok, r.report);

  nn::LayerNorm plain({4}, 1e-3, false);
  CHECK(plain.named_parameters().empty());
  CHECK(plain.to_string() == "LayerNorm((4,), eps=0.001, elementwise_affine=False)");
  Tensor y = plain(heed::randn({5, 4}));
  CHECK(std::fabs(heed::mean(y).item()) < 1e-5);
}

TEST_CASE("layers: Flatten and the activation modules equal their ops and pass gradcheck") {
  heed::manual_seed(26);
  nn::Flatten flat;
  CHECK(flat.to_string() == "Flatten(start_dim=1, end_dim=-1)");
  CHECK(flat(heed::randn({2, 3, 4, 5})).shape() == heed::Shape{2, 60});
  CHECK(nn::Flatten(0, 1)(heed::randn({2, 3, 4})).shape() == heed::Shape{6, 4});

  struct Act {
    std::shared_ptr<nn::Module> module;
    std::function<Tensor(const Tensor&)> op;
    std::string repr;
  };
  const std::vector<Act> acts = {
      {std::make_shared<nn::ReLU>(), [](const Tensor& x) { return heed::relu(x); }, "ReLU()"},
      {std::make_shared<nn::LeakyReLU>(0.2), [](const Tensor& x) { return heed::leaky_relu(x, 0.2); },
       "LeakyReLU(negative_slope=0.2)"},
      {std::make_shared<nn::Tanh>(), [](const Tensor& x) { return heed::tanh(x); }, "Tanh()"},
      {std::make_shared<nn::Sigmoid>(), [](const Tensor& x) { return heed::sigmoid(x); }, "Sigmoid()"},
      {std::make_shared<nn::GELU>(), [](const Tensor& x) { return heed::gelu(x); }, "GELU(approximate='none')"},
      {std::make_shared<nn::GELU>(true), [](const Tensor& x) { return heed::gelu(x, true); },
       "GELU(approximate='tanh')"},
      {std::make_shared<nn::ELU>(), [](const Tensor& x) { return heed::elu(x, 1.0); }, "ELU(alpha=1.0)"},
      {std::make_shared<nn::Softplus>(2.0, 10.0), [](const Tensor& x) { return heed::softplus(x, 2.0, 10.0); },
       "Softplus(beta=2.0, threshold=10.0)"},
      {std::make_shared<nn::Softmax>(0), [](const Tensor& x) { return heed::softmax(x, 0); }, "Softmax(dim=0)"},
  };
  for (const Act& a : acts) {
    CAPTURE(a.repr);
    CHECK(a.module->to_string() == a.repr);
    // Values away from the kinks of relu / leaky_relu, where central differences are exact.
    Tensor x = heed::randn({3, 4}, DType::Float64);
    x = (x + heed::where(heed::gt(x, 0.0), heed::full({}, 0.1, DType::Float64), heed::full({}, -0.1, DType::Float64)))
            .detach()
            .requires_grad_();
    CHECK(heed::allclose((*a.module)(x), a.op(x)));
    auto r = heed::gradcheck([&](const std::vector<Tensor>& in) { return (*a.module)(in[0]); }, {x});
    CHECK_MESSAGE(r.ok, r.report);
  }
}

TEST_CASE("layers match PyTorch on the same weights") {
  SUBCASE("Linear") {
    nn::Linear m(5, 3);
    layer_fixtures::check_against_pytorch(m, "linear");
  }
  SUBCASE("Linear without bias on a 3-D input") {
    nn::Linear m(6, 2, false);
    layer_fixtures::check_against_pytorch(m, "linear_nobias");
  }
  SUBCASE("Embedding with padding_idx") {
    nn::Embedding m(10, 4, 0);
    layer_fixtures::check_against_pytorch(m, "embedding");
  }
  SUBCASE("LayerNorm over two axes") {
    nn::LayerNorm m({3, 4});
    layer_fixtures::check_against_pytorch(m, "layernorm");
  }
}
