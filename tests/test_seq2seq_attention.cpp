// Encoder-decoder attention (docs/attention-spec.md M2 Bahdanau, M3 Luong global, M4 Luong local): equations
// against hand loops, fp64 gradient checks of every variant (masked rows, a fully masked row), local-p's
// gradient reaching W_p / v_p through the Gaussian, window clipping at the true length, precomputed keys,
// errors, and small learning tasks (copy / reversal) where the attention must land on the right source
// position.
#include <doctest/doctest.h>

#include <cmath>
#include <heed/heed.hpp>
#include <memory>
#include <vector>

#include "heed/nn/recurrent.hpp"
#include "heed/nn/seq2seq_attention.hpp"
#include "testing.hpp"

namespace {

using heed::DType;
using heed::Tensor;
namespace nn = heed::nn;
using nn::LuongAlign;
using nn::LuongScore;

Tensor lengths_mask(const std::vector<int64_t>& lengths, int64_t steps) {
  return nn::keep_mask_from_lengths(heed::index_tensor(lengths), steps);
}

// Draws every parameter of `m` from N(0, scale^2) in float64 (larger than the init: peaked softmaxes).
void randomize(nn::Module& m, double scale = 0.7) {
  m.to(DType::Float64);
  heed::NoGradGuard no_grad;
  for (Tensor& p : m.parameters()) p.copy_(heed::randn(p.shape(), DType::Float64) * scale);
}

std::vector<Tensor> with_parameters(std::vector<Tensor> inputs, const nn::Module& m) {
  for (const Tensor& p : m.parameters()) inputs.push_back(p);
  return inputs;
}

void check_luong_grads(nn::LuongAttention& attention, const Tensor& query, const Tensor& keys, const Tensor& keep,
                       int64_t step = -1) {
  heed::testing::check_grad(
      [&](const std::vector<Tensor>& in) {
        const nn::LuongOutput out = attention.forward(in[0], in[1], keep, step);
        return heed::concat({heed::flatten(out.context), heed::flatten(out.weights), heed::flatten(out.attentional)}, 0);
      },
      with_parameters({query, keys}, attention), attention.extra_repr());
}

// ---- hand computation -------------------------------------------------------------------------------

using Mat = std::vector<std::vector<double>>;
Mat as_mat(const Tensor& t) {  // a 2-D tensor as rows
  Mat m(static_cast<std::size_t>(t.size(0)));
  const auto v = t.to_vector<double>();
  for (int64_t i = 0; i < t.size(0); ++i) m[i].assign(v.begin() + i * t.size(1), v.begin() + (i + 1) * t.size(1));
  return m;
}
std::vector<double> matvec(const Mat& w, const std::vector<double>& x) {
  std::vector<double> y(w.size(), 0.0);
  for (std::size_t r = 0; r < w.size(); ++r)
    for (std::size_t c = 0; c < x.size(); ++c) y[r] += w[r][c] * x[c];
  return y;
}
double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Score of query q against key k, by the equation of each score function (no heed ops).
double hand_score(const nn::LuongAttention& a, const std::vector<double>& q, const std::vector<double>& k, int64_t s) {
  switch (a.options().score()) {
    case LuongScore::Dot: return dot(q, k);
    case LuongScore::General: return dot(q, matvec(as_mat(a.key_proj->weight), k));
    case LuongScore::Concat: {
      std::vector<double> qk = q;
      qk.insert(qk.end(), k.begin(), k.end());
      Mat wa = as_mat(a.query_proj->weight), wk = as_mat(a.key_proj->weight);  // W_a = [W_q | W_k]
      for (std::size_t r = 0; r < wa.size(); ++r) wa[r].insert(wa[r].end(), wk[r].begin(), wk[r].end());
      std::vector<double> h = matvec(wa, qk);
      for (double& x : h) x = std::tanh(x);
      return dot(as_mat(a.v->weight)[0], h);
    }
    case LuongScore::Location: return matvec(as_mat(a.location_proj->weight), q)[s];
  }
  return 0.0;
}

}  // namespace

TEST_CASE("seq2seq attention: parameter names, shapes and repr") {
  nn::BahdanauAttention bahdanau(6, 8, 5);
  const auto names = bahdanau.named_parameters();
  REQUIRE(names.size() == 3);
  CHECK(names[0].first == "query_proj.weight");
  CHECK(names[0].second.shape() == heed::Shape{5, 6});
  CHECK(names[1].first == "key_proj.weight");
  CHECK(names[1].second.shape() == heed::Shape{5, 8});
  CHECK(names[2].first == "v.weight");
  CHECK(names[2].second.shape() == heed::Shape{1, 5});
  CHECK(bahdanau.extra_repr() == "query_size=6, key_size=8, units=5");
  CHECK(bahdanau.to_string().find("(query_proj): Linear(in_features=6, out_features=5, bias=False)") != std::string::npos);

  auto param_names = [](const nn::Module& m) {
    std::string s;
    for (const auto& [name, t] : m.named_parameters()) s += name + heed::shape_str(t.shape()) + " ";
    return s;
  };
  CHECK(param_names(nn::LuongAttention(nn::LuongAttentionOptions(4))) == "output_proj.weight[4, 8] ");
  CHECK(param_names(nn::LuongAttention(nn::LuongAttentionOptions(4).key_size(6).score(LuongScore::General))) ==
        "key_proj.weight[4, 6] output_proj.weight[4, 10] ");
  CHECK(param_names(nn::LuongAttention(nn::LuongAttentionOptions(4).score(LuongScore::Concat).units(3))) ==
        "query_proj.weight[3, 4] key_proj.weight[3, 4] v.weight[1, 3] output_proj.weight[4, 8] ");
  CHECK(param_names(nn::LuongAttention(
            nn::LuongAttentionOptions(4).score(LuongScore::Location).max_source_length(7).output_size(5))) ==
        "location_proj.weight[7, 4] output_proj.weight[5, 8] ");
  CHECK(param_names(nn::LuongAttention(
            nn::LuongAttentionOptions(4).align(LuongAlign::LocalPredictive).units(3).window(2))) ==
        "position_proj.weight[3, 4] position_v.weight[1, 3] output_proj.weight[4, 8] ");
  nn::LuongAttention local(nn::LuongAttentionOptions(4).score(LuongScore::General).align(LuongAlign::LocalPredictive).window(3));
  CHECK(local.extra_repr() == "query_size=4, key_size=4, score=general, align=local-p, window=3");
}

TEST_CASE("seq2seq attention: Bahdanau equals v^T tanh(W q + U k) computed by hand, masked") {
  heed::manual_seed(11);
  const int64_t n = 2, s = 4, dq = 3, dk = 5, units = 4;
  nn::BahdanauAttention attention(dq, dk, units);
  randomize(attention);
  Tensor query = heed::randn({n, dq}, DType::Float64), keys = heed::randn({n, s, dk}, DType::Float64);
  const std::vector<int64_t> lengths{4, 2};
  const nn::Seq2SeqAttentionOutput out = attention.forward(query, keys, lengths_mask(lengths, s));
  const Mat w = as_mat(attention.query_proj->weight), u = as_mat(attention.key_proj->weight);
  const auto v = as_mat(attention.v->weight)[0];
  const Mat q = as_mat(query), k = as_mat(reshape(keys, {n * s, dk}));
  const auto got_w = out.weights.to_vector<double>(), got_c = out.context.to_vector<double>();
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> e(s, 0.0);
    double total = 0.0;
    for (int64_t j = 0; j < lengths[i]; ++j) {
      const auto wq = matvec(w, q[i]), uk = matvec(u, k[i * s + j]);
      std::vector<double> h(units);
      for (int64_t r = 0; r < units; ++r) h[r] = std::tanh(wq[r] + uk[r]);
      e[j] = std::exp(dot(v, h));
      total += e[j];
    }
    for (int64_t j = 0; j < s; ++j) CHECK(got_w[i * s + j] == doctest::Approx(e[j] / total).epsilon(1e-12));
    for (int64_t d = 0; d < dk; ++d) {
      double c = 0.0;
      for (int64_t j = 0; j < s; ++j) c += e[j] / total * k[i * s + j][d];
      CHECK(got_c[i * dk + d] == doctest::Approx(c).epsilon(1e-12));
    }
  }
}

TEST_CASE("seq2seq attention: Luong dot, general, concat, location and h~ equal the equations by hand") {
  heed::manual_seed(12);
  const int64_t n = 2, s = 5, d = 3;
  const std::vector<int64_t> lengths{5, 3};
  for (LuongScore score : {LuongScore::Dot, LuongScore::General, LuongScore::Concat, LuongScore::Location}) {
    CAPTURE(nn::luong_score_name(score));
    nn::LuongAttention attention(nn::LuongAttentionOptions(d).score(score).units(4).max_source_length(7));
    randomize(attention);
    Tensor query = heed::randn({n, d}, DType::Float64), keys = heed::randn({n, s, d}, DType::Float64);
    const nn::LuongOutput out = attention.forward(query, keys, lengths_mask(lengths, s));
    const Mat q = as_mat(query), k = as_mat(reshape(keys, {n * s, d})), wc = as_mat(attention.output_proj->weight);
    const auto got_w = out.weights.to_vector<double>(), got_h = out.attentional.to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> e(s, 0.0), c(d, 0.0);
      double total = 0.0;
      for (int64_t j = 0; j < lengths[i]; ++j) total += e[j] = std::exp(hand_score(attention, q[i], k[i * s + j], j));
      for (int64_t j = 0; j < s; ++j) {
        CHECK(got_w[i * s + j] == doctest::Approx(e[j] / total).epsilon(1e-12));
        for (int64_t f = 0; f < d; ++f) c[f] += e[j] / total * k[i * s + j][f];
      }
      std::vector<double> cq = c;  // [c; h]
      cq.insert(cq.end(), q[i].begin(), q[i].end());
      const auto h_tilde = matvec(wc, cq);
      for (int64_t f = 0; f < d; ++f) CHECK(got_h[i * d + f] == doctest::Approx(std::tanh(h_tilde[f])).epsilon(1e-12));
    }
  }
}

TEST_CASE("seq2seq attention: local-m and local-p windows, Gaussian and clipping equal the equations by hand") {
  heed::manual_seed(13);
  const int64_t n = 3, s = 9, d = 3, window = 2;
  const std::vector<int64_t> lengths{9, 5, 4};
  Tensor query = heed::randn({n, d}, DType::Float64), keys = heed::randn({n, s, d}, DType::Float64);
  const Mat q = as_mat(query), k = as_mat(reshape(keys, {n * s, d}));
  for (LuongAlign align : {LuongAlign::LocalMonotonic, LuongAlign::LocalPredictive}) {
    CAPTURE(nn::luong_align_name(align));
    nn::LuongAttention attention(nn::LuongAttentionOptions(d).score(LuongScore::General).align(align).window(window));
    randomize(attention, 1.5);
    const int64_t step = 6;  // local-m: the window [4, 8] is clipped by the lengths 5 and 4
    const nn::LuongOutput out = attention.forward(query, keys, lengths_mask(lengths, s), step);
    const auto got_w = out.weights.to_vector<double>(), got_p = out.position.to_vector<double>();
    for (int64_t i = 0; i < n; ++i) {
      double p = static_cast<double>(step);
      if (align == LuongAlign::LocalPredictive) {  // p_t = S_i sigmoid(v_p^T tanh(W_p h_t))
        auto hidden = matvec(as_mat(attention.position_proj->weight), q[i]);
        for (double& x : hidden) x = std::tanh(x);
        p = static_cast<double>(lengths[i]) / (1.0 + std::exp(-dot(as_mat(attention.position_v->weight)[0], hidden)));
      }
      CHECK(got_p[i] == doctest::Approx(p).epsilon(1e-12));
      const double centre = std::round(p);
      std::vector<double> e(s, 0.0);
      double total = 0.0;
      for (int64_t j = 0; j < s; ++j)
        if (std::abs(j - centre) <= window && j < lengths[i])
          total += e[j] = std::exp(hand_score(attention, q[i], k[i * s + j], j));
      for (int64_t j = 0; j < s; ++j) {
        double expected = total > 0 ? e[j] / total : 0.0;
        if (align == LuongAlign::LocalPredictive) expected *= std::exp(-(j - p) * (j - p) / (2.0 * 1.0));  // sigma = 1
        CHECK(got_w[i * s + j] == doctest::Approx(expected).epsilon(1e-12));
        if (j >= lengths[i] || std::abs(j - centre) > window) CHECK(got_w[i * s + j] == 0.0);
      }
    }
  }
}

TEST_CASE("seq2seq attention: gradcheck of every variant, with masked rows and a fully masked row") {
  heed::manual_seed(21);
  const int64_t n = 3, s = 5, d = 3;
  Tensor query = heed::randn({n, d}, DType::Float64).requires_grad_();
  Tensor keys = heed::randn({n, s, d}, DType::Float64).requires_grad_();
  const Tensor keep = lengths_mask({5, 2, 0}, s);
  SUBCASE("bahdanau") {
    nn::BahdanauAttention attention(d, d, 4);
    randomize(attention);
    for (const Tensor& mask : {Tensor(), keep})
      heed::testing::check_grad(
          [&](const std::vector<Tensor>& in) {
            const nn::Seq2SeqAttentionOutput out = attention.forward(in[0], in[1], mask);
            return heed::concat({heed::flatten(out.context), heed::flatten(out.weights)}, 0);
          },
          with_parameters({query, keys}, attention), "bahdanau");
  }
  for (LuongScore score : {LuongScore::Dot, LuongScore::General, LuongScore::Concat, LuongScore::Location}) {
    SUBCASE(nn::luong_score_name(score)) {
      nn::LuongAttention attention(nn::LuongAttentionOptions(d).score(score).units(4).max_source_length(6));
      randomize(attention);
      check_luong_grads(attention, query, keys, Tensor());
      check_luong_grads(attention, query, keys, keep);
    }
  }
  SUBCASE("local-m (general), a window clipped at the true lengths") {
    nn::LuongAttention attention(
        nn::LuongAttentionOptions(d).score(LuongScore::General).align(LuongAlign::LocalMonotonic).window(1));
    randomize(attention);
    for (int64_t step : {0, 1, 3}) check_luong_grads(attention, query, keys, keep, step);
  }
  SUBCASE("local-p (dot and concat)") {
    for (LuongScore score : {LuongScore::Dot, LuongScore::Concat}) {
      nn::LuongAttention attention(
          nn::LuongAttentionOptions(d).score(score).align(LuongAlign::LocalPredictive).units(4).window(2));
      randomize(attention);
      check_luong_grads(attention, query, keys, Tensor());
      check_luong_grads(attention, query, keys, keep);
    }
  }
}

TEST_CASE("seq2seq attention: local-p's gradient reaches W_p and v_p through the Gaussian only") {
  heed::manual_seed(22);
  const int64_t n = 2, s = 8, d = 4;
  nn::LuongAttention attention(
      nn::LuongAttentionOptions(d).score(LuongScore::Dot).align(LuongAlign::LocalPredictive).units(3).window(2));
  randomize(attention);
  Tensor query = heed::randn({n, d}, DType::Float64), keys = heed::randn({n, s, d}, DType::Float64);
  const Tensor keep = lengths_mask({8, 6}, s);
  // Only W_p, v_p are checked here, against the weights alone: the path p_t -> Gaussian -> a_t.
  heed::testing::check_grad(
      [&](const std::vector<Tensor>&) { return attention.forward(query, keys, keep).weights; },
      {attention.position_proj->weight, attention.position_v->weight}, "local-p W_p, v_p");
  attention.zero_grad();
  heed::sum(attention.forward(query, keys, keep).context).backward();
  CHECK(heed::max(heed::abs(attention.position_proj->weight.grad())).item() > 1e-6);
  CHECK(heed::max(heed::abs(attention.position_v->weight.grad())).item() > 1e-6);
}

TEST_CASE("seq2seq attention: local windows are clipped to [0, S_i - 1] of the TRUE length") {
  heed::manual_seed(23);
  const int64_t n = 2, s = 10, d = 4, window = 2;
  Tensor query = heed::randn({n, d}), keys = heed::randn({n, s, d});
  const Tensor keep = lengths_mask({10, 4}, s);
  nn::LuongAttention attention(
      nn::LuongAttentionOptions(d).score(LuongScore::Dot).align(LuongAlign::LocalPredictive).units(3).window(window));
  {  // sigma(v_p^T tanh(W_p h)) -> 1: p_t = S_i, the window's right half falls beyond the true length.
    heed::NoGradGuard no_grad;
    attention.position_proj->weight.fill_(0.0);
    heed::narrow(attention.position_proj->weight, 1, 0, 1).fill_(100.0);
    attention.position_v->weight.fill_(100.0);
    query = heed::abs(query) + 0.1;
  }
  const nn::LuongOutput out = attention.forward(query, keys, keep);
  const auto p = out.position.to_vector<float>();
  CHECK(p[0] == doctest::Approx(10.0));
  CHECK(p[1] == doctest::Approx(4.0));
  const auto w = out.weights.to_vector<float>();
  for (int64_t j = 0; j < s; ++j) {
    CHECK((w[j] > 0.0f) == (j >= 8));       // [8, 12] clipped to [8, 9]
    CHECK((w[s + j] > 0.0f) == (j >= 2 && j <= 3));  // [2, 6] clipped to [2, 3] by the true length 4
  }
  // local-m far beyond the end of the short example: an empty window gives zeros, no NaN.
  nn::LuongAttention local_m(nn::LuongAttentionOptions(d).align(LuongAlign::LocalMonotonic).window(window));
  const nn::LuongOutput late = local_m.forward(query, keys, keep, 7);
  const auto wl = late.weights.to_vector<float>();
  for (int64_t j = 0; j < s; ++j) CHECK((wl[j] > 0.0f) == (j >= 5 && j <= 9));
  for (int64_t j = 0; j < s; ++j) CHECK(wl[s + j] == 0.0f);
  for (float c : late.context.to_vector<float>()) CHECK(std::isfinite(c));
}

TEST_CASE("seq2seq attention: precomputed keys are reused at every step; a fully masked row gives zeros") {
  heed::manual_seed(24);
  const int64_t n = 3, s = 6, d = 4;
  Tensor keys = heed::randn({n, s, d}).requires_grad_();
  const Tensor keep = lengths_mask({6, 3, 0}, s);
  nn::BahdanauAttention bahdanau(d, d, 5);
  nn::LuongAttention general(nn::LuongAttentionOptions(d).score(LuongScore::General));
  const nn::AttentionMemory b_memory = bahdanau.precompute(keys, keep);
  const nn::AttentionMemory g_memory = general.precompute(keys, keep);
  CHECK(b_memory.projected_keys.shape() == heed::Shape{n, s, 5});
  std::vector<Tensor> b_context, g_context;
  Tensor q1 = heed::randn({n, d}), q2 = heed::randn({n, d});
  for (const Tensor& q : {q1, q2}) {
    b_context.push_back(bahdanau.forward(q, b_memory).context);
    g_context.push_back(general.forward(q, g_memory).context);
  }
  // The same numbers as projecting the keys again at each step...
  CHECK(heed::max_abs_diff(b_context[1], bahdanau.forward(q2, keys, keep).context) == 0.0);
  CHECK(heed::max_abs_diff(g_context[1], general.forward(q2, keys, keep).context) == 0.0);
  // ...and the steps really read the stored projection: changing U afterwards does not change them.
  {
    heed::NoGradGuard no_grad;
    bahdanau.key_proj->weight.fill_(0.0);
    general.key_proj->weight.fill_(0.0);
  }
  CHECK(heed::max_abs_diff(bahdanau.forward(q1, b_memory).context, b_context[0]) == 0.0);
  CHECK(heed::max_abs_diff(general.forward(q1, g_memory).context, g_context[0]) == 0.0);
  // Gradients of both steps flow into the keys through the one projection; the fully masked row is zero.
  (heed::sum(b_context[0]) + heed::sum(b_context[1]) + heed::sum(g_context[1])).backward();
  const auto gk = keys.grad().to_vector<float>();
  for (int64_t j = 0; j < s * d; ++j) CHECK(gk[2 * s * d + j] == 0.0f);
  for (int64_t j = 3 * d; j < s * d; ++j) CHECK(gk[s * d + j] == 0.0f);
  for (float g : gk) CHECK(std::isfinite(g));
  const auto c = b_context[0].to_vector<float>();
  for (int64_t j = 0; j < d; ++j) CHECK(c[2 * d + j] == 0.0f);
}

TEST_CASE("seq2seq attention: errors name the layer and the shapes") {
  nn::BahdanauAttention bahdanau(4, 6, 5);
  const Tensor keys = heed::zeros({2, 3, 6});
  CHECK_THROWS_WITH_AS(bahdanau.forward(heed::zeros({2, 5}), keys, Tensor()),
                       doctest::Contains("BahdanauAttention(query_size=4): query has shape [2, 5]"), heed::Error);
  CHECK_THROWS_WITH_AS(bahdanau.precompute(heed::zeros({2, 3, 4})),
                       doctest::Contains("BahdanauAttention: keys have shape [2, 3, 4], expected float (N, S, 6)"),
                       heed::Error);
  CHECK_THROWS_WITH_AS(bahdanau.precompute(keys, heed::ones({2, 3})), doctest::Contains("keep_mask must be Bool"),
                       heed::Error);
  nn::LuongAttention dot(nn::LuongAttentionOptions(6));
  CHECK_THROWS_WITH_AS(dot.forward(heed::zeros({2, 6}), bahdanau.precompute(keys)),
                       doctest::Contains("not made by this layer's precompute"), heed::Error);
  CHECK_THROWS_WITH_AS(nn::LuongAttention(nn::LuongAttentionOptions(4).key_size(6)),
                       doctest::Contains("LuongAttention(dot, global): the dot score needs query_size == key_size"),
                       heed::Error);
  nn::LuongAttention location(nn::LuongAttentionOptions(6).score(LuongScore::Location).max_source_length(2));
  CHECK_THROWS_WITH_AS(location.precompute(keys), doctest::Contains("longer than max_source_length 2"), heed::Error);
  CHECK_THROWS_AS(nn::LuongAttention(nn::LuongAttentionOptions(6).score(LuongScore::Location)), heed::Error);
  nn::LuongAttention local_m(nn::LuongAttentionOptions(6).align(LuongAlign::LocalMonotonic));
  CHECK_THROWS_WITH_AS(local_m.forward(heed::zeros({2, 6}), keys, Tensor()),
                       doctest::Contains("local-m attention needs the decoder step"), heed::Error);
  CHECK_THROWS_WITH_AS(local_m.forward(heed::zeros({3, 6}), keys, Tensor(), 0),
                       doctest::Contains("query has shape [3, 6], expected (2, 6) for keys [2, 3, 6]"), heed::Error);
  CHECK_THROWS_AS(nn::keep_mask_from_lengths(heed::index_tensor({4}), 3), heed::Error);
}

// ---- learning: tiny copy / reversal tasks -----------------------------------------------------------------
//
// Symbols 2..9 (0 = padding, 1 = BOS), source lengths 4..7 (fixed 6 for the location and local
// variants), target = the source reversed (or copied, for local-m, whose p_t = t suits a monotone
// alignment). Encoder: Embedding 16 -> BiGRU 16 (keys 32). Decoder: GRUCell 32, s_0 = tanh(W h<-_1).
//   Bahdanau: c_t = attn(s_{t-1}); s_t = GRU([E y_{t-1}; c_t], s_{t-1}); logits = W_o [s_t; c_t].
//   Luong:    h_t = GRU([E y_{t-1}; h~_{t-1}], h_{t-1}); h~_t = attn(h_t).attentional; logits = W_s h~_t.
// Pass: token accuracy >= 95% on 256 held-out sequences, and the argmax of a_t within one position of
// the source position the task dictates for >= 95% of the real target steps (chance: about 50%).
// Within one, not exactly on it: the BiGRU keys also carry their neighbours' symbols, and e.g. Bahdanau
// (query s_{t-1}) often reads the second reversed symbol from the last key again; exact hits measured
// 0.60-0.77 for Bahdanau and 0.89-1.0 for the Luong variants, printed by each test. The learned runs
// differ in the last bits with the process' allocation history (summation order), so the thresholds
// keep a margin; the exact rates vary by a few points between a lone run and a full-suite run.
namespace {

constexpr int64_t kVocab = 10, kBos = 1, kEmb = 16, kEnc = 16, kDec = 32;

struct Kind {
  const char* name;
  bool bahdanau;
  LuongScore score;
  LuongAlign align;
  bool reverse, fixed_length;
};

class TinySeq2seq : public nn::Module {
 public:
  explicit TinySeq2seq(const Kind& kind) : Module("TinySeq2seq"), kind_(kind) {
    embedding = register_module("embedding", std::make_shared<nn::Embedding>(kVocab, kEmb, 0));
    encoder = register_module(
        "encoder", std::make_shared<nn::GRU>(nn::GRUOptions(kEmb, kEnc).bidirectional(true).batch_first(true)));
    bridge = register_module("bridge", std::make_shared<nn::Linear>(kEnc, kDec));
    if (kind.bahdanau) {
      bahdanau = register_module("attention", std::make_shared<nn::BahdanauAttention>(kDec, 2 * kEnc, kDec));
      out = register_module("out", std::make_shared<nn::Linear>(kDec + 2 * kEnc, kVocab));
    } else {
      luong = register_module("attention", std::make_shared<nn::LuongAttention>(nn::LuongAttentionOptions(kDec)
                                                                                   .key_size(2 * kEnc)
                                                                                   .score(kind.score)
                                                                                   .align(kind.align)
                                                                                   .window(2)
                                                                                   .max_source_length(8)));
      out = register_module("out", std::make_shared<nn::Linear>(kDec, kVocab));
    }
    cell = register_module("cell", std::make_shared<nn::GRUCell>(kEmb + (kind.bahdanau ? 2 * kEnc : kDec), kDec));
  }
  // Teacher-forced logits (N, T, V) and weights (N, T, S).
  std::pair<Tensor, Tensor> run(const Tensor& src, const Tensor& lengths, const Tensor& decoder_in) {
    auto enc = encoder->forward((*embedding)(src), Tensor(), lengths);
    const Tensor keep = nn::keep_mask_from_lengths(lengths, src.size(1));
    Tensor state = heed::tanh((*bridge)(heed::select(enc.h_n, 0, 1)));
    nn::AttentionMemory memory = kind_.bahdanau ? bahdanau->precompute(enc.output, keep) : luong->precompute(enc.output, keep);
    Tensor feed = heed::zeros({src.size(0), kDec});
    std::vector<Tensor> logits, weights;
    for (int64_t t = 0; t < decoder_in.size(1); ++t) {
      Tensor emb = (*embedding)(heed::select(decoder_in, 1, t));
      if (kind_.bahdanau) {
        auto [context, w] = bahdanau->forward(state, memory);
        state = cell->forward(heed::concat({emb, context}, 1), state);
        logits.push_back((*out)(heed::concat({state, context}, 1)));
        weights.push_back(w);
      } else {
        state = cell->forward(heed::concat({emb, feed}, 1), state);
        nn::LuongOutput o = luong->forward(state, memory, t);
        feed = o.attentional;
        logits.push_back((*out)(feed));
        weights.push_back(o.weights);
      }
    }
    return {heed::stack(logits, 1), heed::stack(weights, 1)};
  }
  Kind kind_;
  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::GRU> encoder;
  std::shared_ptr<nn::Linear> bridge, out;
  std::shared_ptr<nn::BahdanauAttention> bahdanau;
  std::shared_ptr<nn::LuongAttention> luong;
  std::shared_ptr<nn::GRUCell> cell;
};

struct Batch {
  Tensor src, lengths, decoder_in, target;
  std::vector<int64_t> len;
};

Batch make_batch(const Kind& kind, int64_t n, heed::Generator& gen) {
  const int64_t s_max = kind.fixed_length ? 6 : 7;
  std::vector<int64_t> src(n * s_max, 0), din(n * s_max, 0), tgt(n * s_max, -100), len(n);
  for (int64_t i = 0; i < n; ++i) {
    len[i] = kind.fixed_length ? 6 : gen.randint(4, 8);
    for (int64_t t = 0; t < len[i]; ++t) src[i * s_max + t] = gen.randint(2, kVocab);
    for (int64_t t = 0; t < len[i]; ++t) {
      tgt[i * s_max + t] = src[i * s_max + (kind.reverse ? len[i] - 1 - t : t)];
      din[i * s_max + t] = t == 0 ? kBos : tgt[i * s_max + t - 1];
    }
  }
  return {heed::index_tensor(src, {n, s_max}), heed::index_tensor(len), heed::index_tensor(din, {n, s_max}),
          heed::index_tensor(tgt, {n, s_max}), len};
}

void learn(const Kind& kind, int steps) {
  heed::manual_seed(7);
  heed::Generator gen(8);
  TinySeq2seq model(kind);
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(1e-2));
  for (int step = 0; step < steps; ++step) {
    const Batch b = make_batch(kind, 32, gen);
    Tensor logits = model.run(b.src, b.lengths, b.decoder_in).first;
    opt.zero_grad();
    heed::cross_entropy(logits, b.target).backward();
    heed::optim::clip_grad_norm_(model.parameters(), 5.0);
    opt.step();
  }
  heed::NoGradGuard no_grad;
  const Batch test = make_batch(kind, 256, gen);
  auto [logits, weights] = model.run(test.src, test.lengths, test.decoder_in);
  const auto pred = heed::argmax(logits, 2).to_vector<int64_t>();
  const auto focus = heed::argmax(weights, 2).to_vector<int64_t>();
  const auto target = test.target.to_vector<int64_t>();
  const int64_t s_max = test.src.size(1);
  int64_t real = 0, correct = 0, aligned = 0, near = 0;
  for (int64_t i = 0; i < 256; ++i)
    for (int64_t t = 0; t < test.len[i]; ++t) {
      ++real;
      correct += pred[i * s_max + t] == target[i * s_max + t];
      const int64_t expected = kind.reverse ? test.len[i] - 1 - t : t;
      aligned += focus[i * s_max + t] == expected;
      near += std::abs(focus[i * s_max + t] - expected) <= 1;
    }
  const double accuracy = static_cast<double>(correct) / real, alignment = static_cast<double>(aligned) / real,
               within_one = static_cast<double>(near) / real;
  MESSAGE(std::string(kind.name) << ": token accuracy " << accuracy << "; argmax a_t on the source position "
                                 << alignment << ", within one position " << within_one);
  CHECK(accuracy >= 0.95);
  CHECK(within_one >= 0.95);
}

}  // namespace

TEST_CASE("[learning] bahdanau: reversal of variable-length sequences, attention on the mirrored position") {
  learn({"bahdanau", true, LuongScore::Dot, LuongAlign::Global, true, false}, 600);
}

TEST_CASE("[learning] luong global (dot, general, concat, location): reversal, attention on the mirrored position") {
  learn({"luong dot", false, LuongScore::Dot, LuongAlign::Global, true, false}, 300);
  learn({"luong general", false, LuongScore::General, LuongAlign::Global, true, false}, 300);
  learn({"luong concat", false, LuongScore::Concat, LuongAlign::Global, true, false}, 600);
  learn({"luong location", false, LuongScore::Location, LuongAlign::Global, true, true}, 300);
}

TEST_CASE("[learning] luong local: local-m copies, local-p reverses, attention inside the window on the right position") {
  learn({"local-m", false, LuongScore::General, LuongAlign::LocalMonotonic, false, false}, 300);
  learn({"local-p", false, LuongScore::General, LuongAlign::LocalPredictive, true, true}, 300);
}

