// GatedAttentionPooling (Ilse et al. 2018): parameter names and shapes, the equation against a hand loop
// (gated and plain), double-precision gradient checks of the whole layer (unmasked, masked with holes, a
// fully masked row, without biases), exact zeros at masked instances, errors, and a small
// multiple-instance task where the weights must find the one instance that decides the bag's label.
#include <doctest/doctest.h>

#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include <heed/heed.hpp>

#include "testing.hpp"

namespace {

using heed::DType;
using heed::Tensor;
using heed::testing::check_grad;
namespace nn = heed::nn;

// A Float64 layer whose parameters (biases included) are all drawn from N(0, 1), so that every term of
// the equation matters and the softmax is peaked.
std::shared_ptr<nn::GatedAttentionPooling> random_layer(const nn::GatedAttentionPoolingOptions& options) {
  auto pool = std::make_shared<nn::GatedAttentionPooling>(options);
  pool->to(DType::Float64);
  heed::NoGradGuard no_grad;
  for (Tensor& p : pool->parameters()) p.copy_(heed::randn(p.shape(), DType::Float64));
  return pool;
}

// gradcheck of the context and the weights w.r.t. x and every parameter of `pool`.
void check_pooling_grads(nn::GatedAttentionPooling& pool, const Tensor& x, const Tensor& keep_mask,
                         const std::string& what) {
  std::vector<Tensor> inputs{x};
  for (const Tensor& p : pool.parameters()) inputs.push_back(p);
  check_grad(
      [&](const std::vector<Tensor>& in) {
        auto [context, weights] = pool.forward(in[0], keep_mask);
        return heed::concat({heed::flatten(context), heed::flatten(weights)}, 0);
      },
      inputs, what);
}

Tensor mask_from_lengths(const std::vector<int64_t>& lengths, int64_t steps) {
  std::vector<bool> keep;
  for (int64_t len : lengths)
    for (int64_t t = 0; t < steps; ++t) keep.push_back(t < len);
  return heed::bool_tensor(keep, {static_cast<int64_t>(lengths.size()), steps});
}

}  // namespace

TEST_CASE("gated attention pooling: parameter names, shapes, init and repr") {
  nn::GatedAttentionPooling pool(nn::GatedAttentionPoolingOptions(6, 4));
  std::vector<std::string> names;
  std::vector<heed::Shape> shapes;
  for (const auto& [name, p] : pool.named_parameters()) {
    names.push_back(name);
    shapes.push_back(p.shape());
  }
  CHECK(names == std::vector<std::string>{"attention_V.weight", "attention_V.bias", "attention_U.weight",
                                          "attention_U.bias", "attention_w.weight", "attention_w.bias"});
  CHECK(shapes == std::vector<heed::Shape>{{4, 6}, {4}, {4, 6}, {4}, {1, 4}, {1}});
  for (double v : pool.attention_V->weight.to_vector<double>()) CHECK(std::fabs(v) <= 1.0 / std::sqrt(6.0));
  CHECK(pool.extra_repr() == "in_features=6, attention_size=4");

  nn::GatedAttentionPooling plain(nn::GatedAttentionPoolingOptions(6, 4).gated(false).bias(false));
  CHECK(plain.attention_U == nullptr);
  CHECK(plain.num_parameters() == 4 * 6 + 4);
  CHECK(plain.extra_repr() == "in_features=6, attention_size=4, gated=False, bias=False");
}

TEST_CASE("gated attention pooling: equals a_t = softmax_t(w^T (tanh(V h_t) * sigmoid(U h_t))) by hand") {
  heed::manual_seed(3);
  const int64_t n = 2, t = 5, f = 3, l = 4;
  for (bool gated : {true, false}) {
    CAPTURE(gated);
    auto pool = random_layer(nn::GatedAttentionPoolingOptions(f, l).gated(gated));
    Tensor x = heed::randn({n, t, f}, DType::Float64);
    auto [context, weights] = pool->forward(x, Tensor());
    REQUIRE(context.shape() == heed::Shape{n, f});
    REQUIRE(weights.shape() == heed::Shape{n, t});

    const auto xs = x.to_vector<double>();
    const auto v = pool->attention_V->weight.to_vector<double>(), bv = pool->attention_V->bias.to_vector<double>();
    const auto w = pool->attention_w->weight.to_vector<double>(), bw = pool->attention_w->bias.to_vector<double>();
    std::vector<double> u, bu;
    if (gated) {
      u = pool->attention_U->weight.to_vector<double>();
      bu = pool->attention_U->bias.to_vector<double>();
    }
    const auto got_a = weights.to_vector<double>(), got_c = context.to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> e(t);
      double total = 0.0;
      for (int64_t s = 0; s < t; ++s) {
        const double* h = &xs[(i * t + s) * f];
        double score = bw[0];
        for (int64_t j = 0; j < l; ++j) {
          double vh = bv[j], uh = gated ? bu[j] : 0.0;
          for (int64_t k = 0; k < f; ++k) {
            vh += v[j * f + k] * h[k];
            if (gated) uh += u[j * f + k] * h[k];
          }
          const double gate = gated ? 1.0 / (1.0 + std::exp(-uh)) : 1.0;
          score += w[j] * std::tanh(vh) * gate;
        }
        e[s] = std::exp(score);
        total += e[s];
      }
      for (int64_t s = 0; s < t; ++s) CHECK(got_a[i * t + s] == doctest::Approx(e[s] / total).epsilon(1e-12));
      for (int64_t k = 0; k < f; ++k) {
        double c = 0.0;
        for (int64_t s = 0; s < t; ++s) c += e[s] / total * xs[(i * t + s) * f + k];
        CHECK(got_c[i * f + k] == doctest::Approx(c).epsilon(1e-12));
      }
    }
  }
}

TEST_CASE("gated attention pooling: gradcheck in float64 (no mask, holes, a fully masked row, plain, no bias)") {
  heed::manual_seed(5);
  const int64_t n = 3, t = 5, f = 4, l = 3;
  Tensor x = heed::randn({n, t, f}, DType::Float64).requires_grad_();
  auto gated = random_layer(nn::GatedAttentionPoolingOptions(f, l));
  check_pooling_grads(*gated, x, Tensor(), "gated, no mask");
  check_pooling_grads(*gated, x,
                      heed::bool_tensor({true, false, true, false, true,    //
                                         false, false, false, false, true,  //
                                         false, true, true, true, false},
                                        {n, t}),
                      "gated, a mask with holes");
  check_pooling_grads(*gated, x, mask_from_lengths({5, 2, 0}, t), "gated, lengths 5, 2 and 0");
  auto plain = random_layer(nn::GatedAttentionPoolingOptions(f, l).gated(false));
  check_pooling_grads(*plain, x, mask_from_lengths({4, 5, 1}, t), "plain (no gate), masked");
  auto no_bias = random_layer(nn::GatedAttentionPoolingOptions(f, l).bias(false));
  check_pooling_grads(*no_bias, x, Tensor(), "gated, no biases");
}

TEST_CASE("gated attention pooling: masked instances get exactly zero weight and gradient, a fully masked row gives zeros") {
  heed::manual_seed(8);
  const int64_t n = 3, t = 6, f = 4;
  nn::GatedAttentionPooling pool(nn::GatedAttentionPoolingOptions(f, 5));
  Tensor x = heed::randn({n, t, f}).requires_grad_();
  const std::vector<int64_t> lengths{6, 3, 0};
  const Tensor keep = mask_from_lengths(lengths, t);
  auto [context, weights] = pool.forward(x, keep);
  const auto a = weights.to_vector<float>();
  const auto c = context.to_vector<float>();
  for (int64_t i = 0; i < n; ++i) {
    double row_sum = 0.0;
    for (int64_t s = 0; s < t; ++s) {
      if (s >= lengths[i])
        CHECK(a[i * t + s] == 0.0f);
      else
        CHECK(a[i * t + s] > 0.0f);
      row_sum += a[i * t + s];
    }
    CHECK(row_sum == doctest::Approx(lengths[i] > 0 ? 1.0 : 0.0).epsilon(1e-6));
  }
  for (int64_t k = 0; k < f; ++k) CHECK(c[2 * f + k] == 0.0f);  // the fully masked row
  for (float v : c) CHECK(std::isfinite(v));

  (heed::sum(context) + heed::sum(heed::square(weights))).backward();
  const auto gx = x.grad().to_vector<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t s = lengths[i]; s < t; ++s)
      for (int64_t k = 0; k < f; ++k) CHECK(gx[(i * t + s) * f + k] == 0.0f);
  for (const Tensor& p : pool.parameters())
    for (float g : p.grad().to_vector<float>()) CHECK(std::isfinite(g));

  // What sits in the padding cannot change the result.
  heed::NoGradGuard no_grad;
  Tensor x2 = x.detach().clone();
  heed::narrow(heed::select(x2, 0, 1), 0, 3, 3).fill_(100.0);
  heed::select(x2, 0, 2).fill_(-7.0);
  auto [context2, weights2] = pool.forward(x2, keep);
  CHECK(heed::max_abs_diff(context2, context.detach()) == 0.0);
  CHECK(heed::max_abs_diff(weights2, weights.detach()) == 0.0);
}

TEST_CASE("gated attention pooling: errors name the layer and the shapes") {
  nn::GatedAttentionPooling pool(nn::GatedAttentionPoolingOptions(4, 3));
  CHECK_THROWS_WITH_AS(pool.forward(heed::zeros({2, 3, 5})),
                       doctest::Contains("GatedAttentionPooling(in_features=4): input has shape [2, 3, 5]"), heed::Error);
  CHECK_THROWS_WITH_AS(pool.forward(heed::zeros({3, 4})), doctest::Contains("expected (N, T, 4)"), heed::Error);
  CHECK_THROWS_WITH_AS(pool.forward(heed::zeros({2, 3, 4}), heed::zeros({2, 3})),
                       doctest::Contains("keep_mask must be Bool of shape [2, 3]"), heed::Error);
  CHECK_THROWS_WITH_AS(pool.forward(heed::zeros({2, 3, 4}), heed::bool_tensor({true, true}, {2, 1})),
                       doctest::Contains("got Bool of shape [2, 1]"), heed::Error);
  CHECK_THROWS_WITH_AS(nn::GatedAttentionPooling(nn::GatedAttentionPoolingOptions(4, 0)),
                       doctest::Contains("in_features (4) and attention_size (0) must be positive"), heed::Error);
}

// Multiple-instance learning in miniature: a bag holds 4 to 10 instances of F = 6 features, N(0, 1); a
// bag is positive when one of its instances is a "key" (features 0, 1 and 2 raised by 3), which happens
// for half the bags (a rule thresholding the best instance would get about 98.5%). Gated pooling -> Linear -> logistic must classify the bags and put its largest
// weight on the key instance. Bags are padded to 10 and masked.
TEST_CASE("[learning] gated attention pooling: finds the key instance of a bag (multiple-instance learning)") {
  heed::manual_seed(11);
  heed::Generator gen(12);
  const int64_t max_len = 10, f = 6;
  struct Bags {
    Tensor x, keep, labels;
    std::vector<int64_t> key;  // index of the key instance, -1 in a negative bag
  };
  auto make_bags = [&](int64_t count) {
    std::vector<float> x(static_cast<std::size_t>(count * max_len * f));
    std::vector<bool> keep;
    std::vector<float> labels;
    Bags b;
    for (int64_t i = 0; i < count; ++i) {
      const int64_t len = gen.randint(4, max_len + 1);
      for (int64_t s = 0; s < max_len; ++s) {
        keep.push_back(s < len);
        for (int64_t k = 0; k < f; ++k) x[(i * max_len + s) * f + k] = s < len ? static_cast<float>(gen.normal()) : 0.0f;
      }
      const bool positive = gen.uniform() < 0.5;
      const int64_t key = positive ? gen.randint(0, len) : -1;
      if (positive)
        for (int64_t k = 0; k < 3; ++k) x[(i * max_len + key) * f + k] += 3.0f;
      labels.push_back(positive ? 1.0f : 0.0f);
      b.key.push_back(key);
    }
    b.x = heed::tensor(x, {count, max_len, f});
    b.keep = heed::bool_tensor(keep, {count, max_len});
    b.labels = heed::tensor(labels, {count, 1});
    return b;
  };
  const Bags train = make_bags(2000), test = make_bags(500);

  auto pool = std::make_shared<nn::GatedAttentionPooling>(nn::GatedAttentionPoolingOptions(f, 16));
  auto head = std::make_shared<nn::Linear>(f, 1);
  std::vector<Tensor> params = pool->parameters();
  for (const Tensor& p : head->parameters()) params.push_back(p);
  heed::optim::Adam opt(params, heed::optim::AdamOptions(1e-2));
  const int64_t batch = 50;
  for (int epoch = 0; epoch < 6; ++epoch)
    for (int64_t start = 0; start < 2000; start += batch) {
      opt.zero_grad();
      auto rows = [&](const Tensor& t) { return heed::narrow(t, 0, start, batch); };
      Tensor logits = (*head)(pool->forward(rows(train.x), rows(train.keep)).context);
      heed::binary_cross_entropy_with_logits(logits, rows(train.labels)).backward();
      opt.step();
    }

  heed::NoGradGuard no_grad;
  auto [context, weights] = pool->forward(test.x, test.keep);
  const double accuracy =
      static_cast<double>(heed::count_binary_correct((*head)(context), test.labels)) / static_cast<double>(test.key.size());
  const auto focus = heed::argmax(weights, 1).to_vector<int64_t>();
  int64_t positives = 0, found = 0;
  for (std::size_t i = 0; i < test.key.size(); ++i)
    if (test.key[i] >= 0) {
      ++positives;
      found += focus[i] == test.key[i];
    }
  const double hit_rate = static_cast<double>(found) / static_cast<double>(positives);
  MESSAGE("multiple-instance bags: test accuracy " << accuracy << ", largest weight on the key instance "
                                                   << hit_rate << " of positive bags");
  CHECK(accuracy >= 0.95);
  CHECK(hit_rate >= 0.9);
}
