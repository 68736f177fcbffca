// SpatialAttention (docs/attention-spec.md M6, Show, Attend and Tell): the soft equation against a hand loop,
// gradient checks of soft attention (mask, fully masked row, gate on/off, h = 0), of the doubly
// stochastic penalty, of hard attention with the sample fixed by the seed and of the REINFORCE
// surrogate; the sampler's frequencies; unbiasedness of the REINFORCE gradient on a tiny problem; errors;
// and two learning tasks: Task C (one hard glimpse, then classify) and a small Task B (soft attention
// must land on the cell being named).
#include <doctest/doctest.h>

#include <cmath>
#include <heed/heed.hpp>
#include <memory>
#include <vector>

#include "heed/nn/spatial_attention.hpp"
#include "testing.hpp"

namespace {

using heed::DType;
using heed::Tensor;
namespace nn = heed::nn;

std::shared_ptr<nn::SpatialAttention> make_attention(int64_t d, int64_t hd, int64_t a, bool gate, uint64_t seed) {
  heed::manual_seed(seed);
  auto att = std::make_shared<nn::SpatialAttention>(nn::SpatialAttentionOptions(d, hd, a).gate(gate));
  att->to(DType::Float64);
  heed::NoGradGuard no_grad;
  for (Tensor& p : att->parameters()) p.copy_(heed::randn(p.shape(), DType::Float64));  // peaked softmax
  return att;
}

std::vector<Tensor> with_parameters(std::vector<Tensor> inputs, const nn::Module& m) {
  for (const Tensor& p : m.parameters()) inputs.push_back(p);
  return inputs;
}

Tensor keep(const std::vector<bool>& values, int64_t n, int64_t l) { return heed::bool_tensor(values, {n, l}); }

}  // namespace

TEST_CASE("spatial attention: parameter names, shapes and repr") {
  nn::SpatialAttention att(nn::SpatialAttentionOptions(6, 5, 4));
  const auto params = att.named_parameters();
  REQUIRE(params.size() == 7);
  CHECK(params[0].first == "encoder_att.weight");
  CHECK(params[0].second.shape() == heed::Shape{4, 6});
  CHECK(params[1].first == "encoder_att.bias");
  CHECK(params[2].first == "decoder_att.weight");
  CHECK(params[2].second.shape() == heed::Shape{4, 5});
  CHECK(params[3].first == "full_att.weight");
  CHECK(params[3].second.shape() == heed::Shape{1, 4});
  CHECK(params[4].first == "full_att.bias");
  CHECK(params[5].first == "f_beta.weight");
  CHECK(params[5].second.shape() == heed::Shape{1, 5});
  CHECK(params[6].first == "f_beta.bias");
  CHECK(att.extra_repr() == "annotation_size=6, hidden_size=5, attention_size=4");
  nn::SpatialAttention plain(nn::SpatialAttentionOptions(6, 5, 4).gate(false).score_bias(false));
  CHECK(plain.parameters().size() == 4);
  CHECK(plain.extra_repr() == "annotation_size=6, hidden_size=5, attention_size=4, gate=False, score_bias=False");
}

TEST_CASE("spatial attention: soft forward equals the equation computed by hand") {
  const int64_t n = 2, l = 5, d = 3, hd = 4, a = 6;
  auto att = make_attention(d, hd, a, true, 11);
  Tensor ann = heed::randn({n, l, d}, DType::Float64), h = heed::randn({n, hd}, DType::Float64);
  auto out = att->forward(ann, att->project_annotations(ann), h);
  REQUIRE(out.context.shape() == heed::Shape{n, d});
  REQUIRE(out.weights.shape() == heed::Shape{n, l});
  REQUIRE(out.gate.shape() == heed::Shape{n, 1});
  const auto av = ann.to_vector<double>(), hv = h.to_vector<double>();
  const auto wc = att->encoder_att->weight.to_vector<double>(), bc = att->encoder_att->bias.to_vector<double>();
  const auto wd = att->decoder_att->weight.to_vector<double>(), u = att->full_att->weight.to_vector<double>();
  const double c = att->full_att->bias.item();
  const auto wb = att->f_beta->weight.to_vector<double>();
  const double bb = att->f_beta->bias.item();
  const auto got_w = out.weights.to_vector<double>(), got_z = out.context.to_vector<double>();
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> e(l);
    double total = 0.0, gate_in = bb;
    for (int64_t k = 0; k < hd; ++k) gate_in += wb[k] * hv[i * hd + k];
    const double beta = 1.0 / (1.0 + std::exp(-gate_in));
    for (int64_t j = 0; j < l; ++j) {
      double score = c;
      for (int64_t r = 0; r < a; ++r) {
        double pre = bc[r];
        for (int64_t k = 0; k < d; ++k) pre += wc[r * d + k] * av[(i * l + j) * d + k];
        for (int64_t k = 0; k < hd; ++k) pre += wd[r * hd + k] * hv[i * hd + k];
        score += u[r] * std::tanh(pre);
      }
      e[j] = std::exp(score);
      total += e[j];
    }
    for (int64_t j = 0; j < l; ++j) CHECK(got_w[i * l + j] == doctest::Approx(e[j] / total).epsilon(1e-12));
    for (int64_t k = 0; k < d; ++k) {
      double z = 0.0;
      for (int64_t j = 0; j < l; ++j) z += e[j] / total * av[(i * l + j) * d + k];
      CHECK(got_z[i * d + k] == doctest::Approx(beta * z).epsilon(1e-12));
    }
  }
}

TEST_CASE("spatial attention: soft gradcheck (mask, fully masked row, gate on/off, h = 0, reused projection)") {
  const int64_t n = 3, l = 4, d = 3, hd = 2, a = 3;
  const Tensor holes = keep({true, false, true, true, false, false, false, false, true, true, false, true}, n, l);
  for (bool gate : {true, false}) {
    CAPTURE(gate);
    auto att = make_attention(d, hd, a, gate, 21);
    Tensor ann = heed::randn({n, l, d}, DType::Float64).requires_grad_();
    Tensor h = heed::randn({n, hd}, DType::Float64).requires_grad_();
    auto soft = [&](const Tensor& mask, bool use_h, bool reuse) {
      return [&, mask, use_h, reuse](const std::vector<Tensor>& in) {
        Tensor projected = reuse ? att->project_annotations(in[0]) : Tensor();
        auto out = att->forward(in[0], projected, use_h ? in[1] : Tensor(), mask);
        return heed::concat({heed::flatten(out.context), heed::flatten(out.weights)}, 0);
      };
    };
    heed::testing::check_grad(soft(Tensor(), true, true), with_parameters({ann, h}, *att), "no mask");
    heed::testing::check_grad(soft(holes, true, false), with_parameters({ann, h}, *att), "mask with a fully masked row");
    heed::testing::check_grad(soft(holes, false, true), with_parameters({ann, h}, *att), "h undefined");
  }
}

TEST_CASE("spatial attention: masked locations get zero weight and zero gradient; a fully masked row gives zeros") {
  const int64_t n = 2, l = 4, d = 3, hd = 2;
  auto att = make_attention(d, hd, 5, true, 31);
  Tensor ann = heed::randn({n, l, d}, DType::Float64).requires_grad_();
  Tensor h = heed::randn({n, hd}, DType::Float64);
  const Tensor mask = keep({true, false, true, false, false, false, false, false}, n, l);
  auto out = att->forward(ann, Tensor(), h, mask);
  const auto w = out.weights.to_vector<double>(), z = out.context.to_vector<double>();
  CHECK(w[1] == 0.0);
  CHECK(w[3] == 0.0);
  CHECK(w[0] + w[2] == doctest::Approx(1.0));
  for (int64_t j = 0; j < l; ++j) CHECK(w[l + j] == 0.0);
  for (int64_t k = 0; k < d; ++k) CHECK(z[d + k] == 0.0);
  heed::sum(heed::square(out.context)).backward();
  const auto g = ann.grad().to_vector<double>();
  for (int64_t k = 0; k < d; ++k) {
    CHECK(g[1 * d + k] == 0.0);
    CHECK(g[3 * d + k] == 0.0);
    for (int64_t j = 0; j < l; ++j) CHECK(g[(l + j) * d + k] == 0.0);
  }
  for (double v : att->encoder_att->weight.grad().to_vector<double>()) CHECK(std::isfinite(v));
}

TEST_CASE("spatial attention: doubly stochastic penalty, value and gradcheck over real steps only") {
  heed::manual_seed(41);
  const int64_t n = 2, t = 3, l = 4;
  Tensor scores = heed::randn({n, t, l}, DType::Float64).requires_grad_();
  const Tensor steps = keep({true, true, false, true, false, false}, n, t);
  Tensor alphas = heed::softmax(scores, 2);
  const auto av = alphas.to_vector<double>();
  double expected = 0.0;
  const int64_t real[2] = {2, 1};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < l; ++j) {
      double total = 0.0;
      for (int64_t s = 0; s < real[i]; ++s) total += av[(i * t + s) * l + j];
      expected += (1.0 - total) * (1.0 - total);
    }
  CHECK(heed::nn::doubly_stochastic_penalty(alphas, steps, 0.7).item() == doctest::Approx(0.7 * expected / n));
  heed::testing::check_grad(
      [&](const std::vector<Tensor>& in) { return nn::doubly_stochastic_penalty(heed::softmax(in[0], 2), steps, 0.7); },
      {scores}, "with step mask");
  heed::testing::check_grad(
      [&](const std::vector<Tensor>& in) { return nn::doubly_stochastic_penalty(heed::softmax(in[0], 2)); }, {scores},
      "no step mask");
  // Padding steps have no influence.
  Tensor scores2 = scores.detach().clone();
  heed::select(heed::select(scores2, 0, 1), 0, 2).fill_(50.0);
  CHECK(nn::doubly_stochastic_penalty(heed::softmax(scores2, 2), steps, 0.7).item() ==
        doctest::Approx(0.7 * expected / n));
}

TEST_CASE("spatial attention: hard gradcheck with the sample fixed by the seed, and expectation mode") {
  const int64_t n = 3, l = 4, d = 3, hd = 2, a = 3;
  const Tensor mask = keep({true, true, false, true, false, false, false, false, true, true, true, true}, n, l);
  for (bool gate : {true, false}) {
    CAPTURE(gate);
    auto att = make_attention(d, hd, a, gate, 51);
    Tensor ann = heed::randn({n, l, d}, DType::Float64).requires_grad_();
    Tensor h = heed::randn({n, hd}, DType::Float64).requires_grad_();
    for (bool expectation : {false, true}) {
      CAPTURE(expectation);
      heed::testing::check_grad(
          [&](const std::vector<Tensor>& in) {
            heed::Generator gen(7);  // the same locations at every evaluation
            auto out = att->forward_hard(in[0], Tensor(), in[1], mask, gen, expectation);
            return heed::concat({heed::flatten(out.context), out.sample_log_prob, out.entropy}, 0);
          },
          with_parameters({ann, h}, *att), "hard");
    }
    heed::Generator gen(7);
    auto out = att->forward_hard(ann, Tensor(), h, mask, gen);
    const auto s = out.locations.to_vector<int64_t>();
    CHECK(s[1] == -1);  // fully masked row
    CHECK((s[0] >= 0 && s[0] != 2));
    CHECK(out.sample_log_prob.to_vector<double>()[1] == 0.0);
    CHECK(out.entropy.to_vector<double>()[1] == 0.0);
    // z = β a_s exactly.
    const auto av = ann.to_vector<double>(), z = out.context.to_vector<double>();
    const double beta0 = gate ? out.gate.to_vector<double>()[0] : 1.0;
    for (int64_t k = 0; k < d; ++k) CHECK(z[k] == doctest::Approx(beta0 * av[s[0] * d + k]));
  }
}

TEST_CASE("spatial attention: hard samples follow alpha and are reproducible") {
  const int64_t n = 4000, l = 3, d = 2;
  auto att = make_attention(d, 2, 3, false, 61);
  Tensor one = heed::randn({1, l, d}, DType::Float64);
  Tensor ann = heed::expand(one, {n, l, d}).contiguous();
  heed::NoGradGuard no_grad;
  heed::Generator gen(3), gen_again(3);
  auto out = att->forward_hard(ann, Tensor(), Tensor(), Tensor(), gen);
  auto again = att->forward_hard(ann, Tensor(), Tensor(), Tensor(), gen_again);
  CHECK(out.locations.to_vector<int64_t>() == again.locations.to_vector<int64_t>());
  const auto alpha = out.weights.to_vector<double>();
  std::vector<double> freq(l, 0.0);
  for (int64_t s : out.locations.to_vector<int64_t>()) freq[s] += 1.0 / n;
  for (int64_t j = 0; j < l; ++j) {
    const double sd = std::sqrt(alpha[j] * (1 - alpha[j]) / n);
    CHECK(std::abs(freq[j] - alpha[j]) < 4 * sd + 1e-12);
  }
}

TEST_CASE("spatial attention: REINFORCE surrogate gradcheck and the baseline's moving average") {
  heed::manual_seed(71);
  Tensor ll = heed::randn({4}, DType::Float64).requires_grad_();
  Tensor slp = heed::randn({4}, DType::Float64).requires_grad_();
  Tensor ent = heed::randn({4}, DType::Float64).requires_grad_();
  // The analytic gradient treats (log p - b) as a constant: d/dll = -(1)/N, not -(1 + λ_r slp)/N. So the
  // finite difference of the full expression disagrees; check the surrogate against its definition.
  Tensor loss = nn::reinforce_surrogate_loss(ll, slp, ent, 0.3, 0.5, 0.01);
  loss.backward();
  const auto llv = ll.to_vector<double>(), slpv = slp.to_vector<double>(), entv = ent.to_vector<double>();
  double expected = 0.0;
  for (int i = 0; i < 4; ++i) expected -= (llv[i] + 0.5 * (llv[i] - 0.3) * slpv[i] + 0.01 * entv[i]) / 4;
  CHECK(loss.item() == doctest::Approx(expected));
  for (int i = 0; i < 4; ++i) {
    CHECK(ll.grad().to_vector<double>()[i] == doctest::Approx(-0.25));
    CHECK(slp.grad().to_vector<double>()[i] == doctest::Approx(-0.25 * 0.5 * (llv[i] - 0.3)));
    CHECK(ent.grad().to_vector<double>()[i] == doctest::Approx(-0.25 * 0.01));
  }
  // With log_likelihood held fixed (not an input) the surrogate is an ordinary function: gradcheck it.
  const Tensor ll_fixed = ll.detach();
  heed::testing::check_grad(
      [&](const std::vector<Tensor>& in) { return nn::reinforce_surrogate_loss(ll_fixed, in[0], in[1], 0.3, 0.5, 0.01); },
      {slp, ent}, "surrogate w.r.t. sample log-prob and entropy");

  nn::HardAttentionTrainer trainer;
  CHECK(trainer.baseline() == 0.0);
  trainer.surrogate(heed::tensor({-2.0, -4.0}, {2}, DType::Float64), heed::zeros({2}, DType::Float64), Tensor());
  CHECK(trainer.baseline() == doctest::Approx(0.1 * -3.0));
  trainer.surrogate(heed::tensor({-1.0, -1.0}, {2}, DType::Float64), heed::zeros({2}, DType::Float64), Tensor());
  CHECK(trainer.baseline() == doctest::Approx(0.9 * -0.3 + 0.1 * -1.0));

  heed::Generator gen(5);
  nn::HardAttentionTrainer half(nn::HardAttentionTrainerOptions().semi_sampling_p(0.5));
  int expectations = 0;
  for (int i = 0; i < 2000; ++i) expectations += half.use_expectation(gen);
  CHECK(std::abs(expectations - 1000) < 120);
  nn::HardAttentionTrainer never(nn::HardAttentionTrainerOptions().semi_sampling_p(0.0));
  for (int i = 0; i < 100; ++i) CHECK_FALSE(never.use_expectation(gen));
}

// The estimator must be unbiased: the mean over many samples of ∂(surrogate) equals -∂E_s[log p(y|s,a)],
// where the expectation Σ_s α_s log p(y|s,a) is computed exactly by enumerating s. The tiny problem: one
// image (L = 3), a linear classifier on z = a_s, the gate on, all parameters differentiated. Many samples
// = one batch of K copies of the image (the surrogate averages over the batch).
TEST_CASE("spatial attention: the REINFORCE gradient is unbiased (and biased without the score-function term)") {
  const int64_t l = 3, d = 2, hd = 2, classes = 3, k = 20000;
  auto att = make_attention(d, hd, 3, true, 81);
  heed::manual_seed(82);
  Tensor classifier = heed::randn({classes, d}, DType::Float64).requires_grad_();
  Tensor ann = heed::randn({1, l, d}, DType::Float64), h = heed::randn({1, hd}, DType::Float64);
  const int64_t label = 1;
  std::vector<Tensor> params = att->parameters();
  params.push_back(classifier);
  auto grads = [&] {
    std::vector<double> g;
    for (Tensor& p : params) {
      for (double v : p.grad().to_vector<double>()) g.push_back(v);
      p.zero_grad();
    }
    return g;
  };
  auto log_likelihood = [&](const Tensor& z, int64_t count) {
    return heed::neg(heed::cross_entropy(heed::linear(z, classifier),
                                         heed::index_tensor(std::vector<int64_t>(count, label), {count}),
                                         heed::CrossEntropyOptions().reduction(heed::Reduction::None)));
  };
  // Exact: -∂ Σ_s α_s log p(y | a_s).
  {
    auto soft = att->forward(ann, Tensor(), h);
    Tensor expected = heed::zeros({1}, DType::Float64);
    for (int64_t s = 0; s < l; ++s) {
      Tensor z = heed::select(ann, 1, s) * soft.gate;
      expected = expected + heed::select(soft.weights, 1, s) * log_likelihood(z, 1);
    }
    heed::neg(heed::sum(expected)).backward();
  }
  const std::vector<double> exact = grads();
  auto estimate = [&](double reward_scale, double baseline) {
    Tensor many = heed::expand(ann, {k, l, d}).contiguous(), hs = heed::expand(h, {k, hd}).contiguous();
    heed::Generator gen(83);
    auto out = att->forward_hard(many, Tensor(), hs, Tensor(), gen);
    nn::reinforce_surrogate_loss(log_likelihood(out.context, k), out.sample_log_prob, Tensor(), baseline,
                                 reward_scale, 0.0)
        .backward();
    return grads();
  };
  auto rel_error = [&](const std::vector<double>& g) {
    double diff = 0.0, norm = 0.0;
    for (std::size_t i = 0; i < g.size(); ++i) {
      diff += (g[i] - exact[i]) * (g[i] - exact[i]);
      norm += exact[i] * exact[i];
    }
    return std::sqrt(diff / norm);
  };
  const double unbiased = rel_error(estimate(1.0, 0.0)), with_baseline = rel_error(estimate(1.0, -1.5));
  const double without_term = rel_error(estimate(0.0, 0.0));
  MESSAGE("relative error of the mean REINFORCE gradient over " << k << " samples: " << unbiased
                                                                << " (baseline -1.5: " << with_baseline
                                                                << "; without the score-function term: "
                                                                << without_term << ")");
  CHECK(unbiased < 0.03);
  CHECK(with_baseline < 0.03);
  CHECK(without_term > 0.2);
}

TEST_CASE("spatial attention: errors name the layer and the shapes") {
  nn::SpatialAttention att(nn::SpatialAttentionOptions(4, 3, 5));
  heed::Generator gen(1);
  CHECK_THROWS_WITH_AS(att.forward(heed::zeros({2, 6, 5})), doctest::Contains("annotation_size=4"), heed::Error);
  CHECK_THROWS_WITH_AS(att.forward(heed::zeros({2, 4})), doctest::Contains("[2, 4]"), heed::Error);
  CHECK_THROWS_WITH_AS(att.forward(heed::zeros({2, 6, 4}), Tensor(), heed::zeros({2, 4})),
                       doctest::Contains("h has shape [2, 4], expected [2, 3]"), heed::Error);
  CHECK_THROWS_WITH_AS(att.forward(heed::zeros({2, 6, 4}), heed::zeros({2, 6, 4}), heed::zeros({2, 3})),
                       doctest::Contains("projected annotations must be Float32 of shape [2, 6, 5]"), heed::Error);
  CHECK_THROWS_WITH_AS(
      att.forward_hard(heed::zeros({2, 6, 4}), Tensor(), Tensor(), heed::bool_tensor(std::vector<bool>(6, true), {1, 6}),
                       gen),
      doctest::Contains("forward_hard: keep_mask must be Bool of shape [2, 6]"), heed::Error);
  CHECK_THROWS_WITH_AS(nn::doubly_stochastic_penalty(heed::zeros({2, 3})), doctest::Contains("doubly_stochastic_penalty"),
                       heed::Error);
  CHECK_THROWS_WITH_AS(nn::reinforce_surrogate_loss(heed::zeros({3}), heed::zeros({2}), Tensor(), 0.0),
                       doctest::Contains("reinforce_surrogate_loss"), heed::Error);
  CHECK_THROWS_AS(nn::SpatialAttention(nn::SpatialAttentionOptions(0, 3, 5)), heed::Error);
  CHECK_THROWS_AS(nn::HardAttentionTrainer(nn::HardAttentionTrainerOptions().semi_sampling_p(1.5)), heed::Error);
}

// ---- learning tasks ---------------------------------------------------------------------------------
namespace {

// Rows [start, start + count) of a permutation of the dataset, for every tensor.
std::vector<Tensor> minibatch(const std::vector<Tensor>& data, const std::vector<int64_t>& order, int64_t start,
                              int64_t count) {
  const std::vector<int64_t> rows(order.begin() + start, order.begin() + start + count);
  std::vector<Tensor> out;
  for (const Tensor& t : data) out.push_back(heed::index_select(t, 0, heed::index_tensor(rows)));
  return out;
}

std::vector<int64_t> shuffled(int64_t n, heed::Generator& gen) {
  std::vector<int64_t> order(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[i] = i;
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[gen.randint(0, i + 1)]);
  return order;
}

// Task C: L = 16 slots of D = 11 features: a one-hot class (10) and a flag. The informative slot holds the
// label's one-hot and flag 1; every other slot holds a random distractor class and flag 0; all features
// get N(0, 0.1^2) noise. A glimpse at a random slot is right with probability 1/16 + (15/16)(1/10) = 0.16.
struct TaskC {
  Tensor slots, labels;
};

TaskC make_task_c(int64_t n, heed::Generator& gen) {
  const int64_t l = 16, d = 11;
  std::vector<float> slots(static_cast<std::size_t>(n * l * d));
  std::vector<int64_t> labels(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t informative = gen.randint(0, l);
    labels[i] = gen.randint(0, 10);
    for (int64_t j = 0; j < l; ++j) {
      float* slot = &slots[(i * l + j) * d];
      for (int64_t k = 0; k < d; ++k) slot[k] = static_cast<float>(0.1 * gen.normal());
      slot[j == informative ? labels[i] : gen.randint(0, 10)] += 1.0f;
      if (j == informative) slot[10] += 1.0f;
    }
  }
  return {heed::tensor(slots, {n, l, d}), heed::index_tensor(labels, {n})};
}

}  // namespace

TEST_CASE("[learning] spatial attention: Task C, one hard glimpse then classify: accuracy >= 0.95 (random glimpse 0.16)") {
  heed::manual_seed(1);
  heed::Generator data_gen(2), sample_gen(3), shuffle_gen(4);
  const TaskC train = make_task_c(3000, data_gen), test = make_task_c(1000, data_gen);
  nn::SpatialAttention att(nn::SpatialAttentionOptions(11, 1, 16).gate(false));
  nn::Linear classifier(11, 10);
  std::vector<Tensor> params = att.parameters();
  for (const Tensor& p : classifier.parameters()) params.push_back(p);
  heed::optim::Adam opt(params, heed::optim::AdamOptions(1e-2));
  // Pure REINFORCE (no expectation minibatches): the attention learns only from the score-function term.
  nn::HardAttentionTrainer trainer(nn::HardAttentionTrainerOptions().reward_scale(1.0).entropy_weight(0.002).semi_sampling_p(0.0));
  const int64_t batch = 50;
  for (int epoch = 0; epoch < 4; ++epoch) {
    const auto order = shuffled(3000, shuffle_gen);
    for (int64_t start = 0; start < 3000; start += batch) {
      const auto b = minibatch({train.slots, train.labels}, order, start, batch);
      auto glimpse = att.forward_hard(b[0], Tensor(), Tensor(), Tensor(), sample_gen, trainer.use_expectation(sample_gen));
      Tensor log_likelihood = heed::neg(heed::cross_entropy(
          classifier(glimpse.context), b[1], heed::CrossEntropyOptions().reduction(heed::Reduction::None)));
      opt.zero_grad();
      trainer.surrogate(log_likelihood, glimpse.sample_log_prob, glimpse.entropy).backward();
      opt.step();
    }
  }
  heed::NoGradGuard no_grad;
  auto glimpse = att.forward_hard(test.slots, Tensor(), Tensor(), Tensor(), sample_gen);
  const double accuracy = heed::count_class_correct(classifier(glimpse.context), test.labels) / 1000.0;
  // The same classifier with a uniformly random glimpse.
  heed::Generator random_gen(9);
  int64_t random_correct = 0;
  {
    std::vector<float> one_hot(1000 * 16, 0.0f);
    for (int64_t i = 0; i < 1000; ++i) one_hot[i * 16 + random_gen.randint(0, 16)] = 1.0f;
    Tensor z = heed::squeeze(heed::matmul(heed::unsqueeze(heed::tensor(one_hot, {1000, 16}), 1), test.slots), 1);
    random_correct = heed::count_class_correct(classifier(z), test.labels);
  }
  MESSAGE("Task C: hard-glimpse test accuracy " << accuracy << ", random glimpse " << random_correct / 1000.0
                                                 << ", baseline " << trainer.baseline());
  CHECK(accuracy >= 0.95);
  CHECK(random_correct < 250);
}

// A small Task B (docs/attention-spec.md M6): a grid, each cell empty or holding one of 8 symbols; 2 or more filled
// cells; the target is their symbols in raster order, then EOS. Decoder as in the paper: h_0, c_0 =
// tanh(FF(mean a)), LSTM input [E y_{t-1}; z_t], deep output L_o tanh(L_h h + E y_{t-1} + L_z z).
// Deviations from the spec, measured (Release, 6 epochs of 3000 examples, about 3-5 s):
//   - A 3x3 grid with 2-3 filled cells and LSTM 32 (the spec: 4x4, 2-4 cells, LSTM 64, 20k examples). The
//     4x4 version learns too, but slowly: 0.88 token accuracy / 0.85 attention hits after 8 epochs of
//     6000 examples (10 s), still climbing.
//   - Each annotation carries its cell's position (one-hot and the raster index / (L-1)): "raster
//     order" cannot be read from content alone (a CNN's annotations carry position through padding and
//     receptive fields).
//   - Symbols are one-hot with N(0, 0.2^2) noise plus an occupancy feature (1 + N(0, 0.1^2); empty cells
//     0 + noise). With the spec's N(0, 0.3^2) on a plain one-hot, the best possible reader of a symbol is
//     wrong about 5% of the time (a noise coordinate beats the true one), which leaves no room for a 95%
//     pass mark, and "filled" is not linearly separable from "empty" (runs plateaued at 0.52 and 0.70).
//   - No doubly stochastic penalty here (tested above): with L = 9 locations and at most 4 steps it pulls
//     the weights towards uniform.
namespace {

constexpr int64_t kCells = 9, kMaxFilled = 3, kSymbols = 8, kEos = 8, kBos = 9, kVocab = 10, kSteps = kMaxFilled + 1, kFeatures = kSymbols + 1 + kCells + 1;

struct TaskB {
  Tensor annotations, inputs, targets;
  std::vector<std::vector<int64_t>> filled;  // cells in raster order
};

TaskB make_task_b(int64_t n, heed::Generator& gen) {
  std::vector<float> ann(static_cast<std::size_t>(n * kCells * kFeatures));
  std::vector<int64_t> inputs(static_cast<std::size_t>(n * kSteps), kEos), targets(static_cast<std::size_t>(n * kSteps), -100);
  TaskB task;
  for (int64_t i = 0; i < n; ++i) {
    const int64_t count = gen.randint(2, kMaxFilled + 1);
    std::vector<bool> used(kCells, false);
    for (int64_t c = 0; c < count;) {
      const int64_t cell = gen.randint(0, kCells);
      if (!used[cell]) used[cell] = true, ++c;
    }
    std::vector<int64_t> cells;
    for (int64_t cell = 0; cell < kCells; ++cell) {
      float* a = &ann[(i * kCells + cell) * kFeatures];
      for (int64_t k = 0; k <= kSymbols; ++k) a[k] = static_cast<float>((k < kSymbols ? 0.2 : 0.1) * gen.normal());
      a[kSymbols + 1 + cell] = 1.0f;
      a[kSymbols + 1 + kCells] = static_cast<float>(cell) / (kCells - 1);
      if (!used[cell]) continue;
      const int64_t symbol = gen.randint(0, kSymbols);
      a[symbol] += 1.0f;
      a[kSymbols] += 1.0f;
      inputs[i * kSteps + 1 + static_cast<int64_t>(cells.size())] = symbol;
      targets[i * kSteps + static_cast<int64_t>(cells.size())] = symbol;
      cells.push_back(cell);
    }
    inputs[i * kSteps] = kBos;
    targets[i * kSteps + count] = kEos;
    task.filled.push_back(cells);
  }
  task.annotations = heed::tensor(ann, {n, kCells, kFeatures});
  task.inputs = heed::index_tensor(inputs, {n, kSteps});
  task.targets = heed::index_tensor(targets, {n, kSteps});
  return task;
}

class TaskBDecoder : public nn::Module {
 public:
  static constexpr int64_t kHidden = 32, kEmbed = 16;
  TaskBDecoder() : Module("TaskBDecoder") {
    embedding = register_module("embedding", std::make_shared<nn::Embedding>(kVocab, kEmbed));
    attention = register_module("attention", std::make_shared<nn::SpatialAttention>(
                                                 nn::SpatialAttentionOptions(kFeatures, kHidden, 32)));
    lstm = register_module("lstm", std::make_shared<nn::LSTMCell>(kEmbed + kFeatures, kHidden));
    init_h = register_module("init_h", std::make_shared<nn::Linear>(kFeatures, kHidden));
    init_c = register_module("init_c", std::make_shared<nn::Linear>(kFeatures, kHidden));
    out_h = register_module("out_h", std::make_shared<nn::Linear>(kHidden, kEmbed));
    out_z = register_module("out_z", std::make_shared<nn::Linear>(kFeatures, kEmbed));
    out = register_module("out", std::make_shared<nn::Linear>(kEmbed, kVocab));
  }
  // Teacher forcing: logits (N, T, V) and α (N, T, L).
  std::pair<Tensor, Tensor> run(const Tensor& ann, const Tensor& inputs) {
    const Tensor projected = attention->project_annotations(ann);
    const Tensor mean_ann = heed::mean(ann, {1});
    nn::LSTMState state{heed::tanh((*init_h)(mean_ann)), heed::tanh((*init_c)(mean_ann))};
    const Tensor embedded = (*embedding)(inputs);
    std::vector<Tensor> logits, alphas;
    for (int64_t t = 0; t < inputs.size(1); ++t) {
      const Tensor y_prev = heed::select(embedded, 1, t);
      auto att = attention->forward(ann, projected, state.h);
      state = lstm->forward(heed::concat({y_prev, att.context}, 1), state);
      logits.push_back((*out)(heed::tanh((*out_h)(state.h) + y_prev + (*out_z)(att.context))));
      alphas.push_back(att.weights);
    }
    return {heed::stack(logits, 1), heed::stack(alphas, 1)};
  }
  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::SpatialAttention> attention;
  std::shared_ptr<nn::LSTMCell> lstm;
  std::shared_ptr<nn::Linear> init_h, init_c, out_h, out_z, out;
};

}  // namespace

TEST_CASE("[learning] spatial attention: small Task B, soft attention names the grid's symbols in raster order") {
  heed::manual_seed(1);
  heed::Generator data_gen(2), shuffle_gen(3);
  const int64_t n_train = 3000, n_test = 500, batch = 32;
  const int epochs = 6;
  const double lr = 1e-2;
  const TaskB train = make_task_b(n_train, data_gen), test = make_task_b(n_test, data_gen);
  TaskBDecoder model;
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(lr));
  for (int epoch = 0; epoch < epochs; ++epoch) {
    const auto order = shuffled(n_train, shuffle_gen);
    for (int64_t start = 0; start + batch <= n_train; start += batch) {
      const auto b = minibatch({train.annotations, train.inputs, train.targets}, order, start, batch);
      auto [logits, alphas] = model.run(b[0], b[1]);
      Tensor loss = heed::cross_entropy(logits, b[2]);
      opt.zero_grad();
      loss.backward();
      opt.step();
    }
  }
  heed::NoGradGuard no_grad;
  auto [logits, alphas] = model.run(test.annotations, test.inputs);
  const auto predicted = heed::argmax(logits, 2).to_vector<int64_t>(), targets = test.targets.to_vector<int64_t>();
  const auto focus = heed::argmax(alphas, 2).to_vector<int64_t>();
  int64_t tokens = 0, correct = 0, symbols = 0, on_cell = 0;
  for (int64_t i = 0; i < n_test; ++i) {
    for (int64_t t = 0; t < kSteps; ++t) {
      if (targets[i * kSteps + t] < 0) continue;
      ++tokens;
      correct += predicted[i * kSteps + t] == targets[i * kSteps + t];
    }
    for (std::size_t t = 0; t < test.filled[i].size(); ++t, ++symbols)
      on_cell += focus[i * kSteps + static_cast<int64_t>(t)] == test.filled[i][t];
  }
  const double token_accuracy = static_cast<double>(correct) / tokens, hit = static_cast<double>(on_cell) / symbols;
  MESSAGE("Task B (small): token accuracy " << token_accuracy << ", argmax alpha_t on the t-th filled cell " << hit);
  CHECK(token_accuracy >= 0.95);
  CHECK(hit >= 0.9);
}
