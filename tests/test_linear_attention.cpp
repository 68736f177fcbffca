// Linear attention (docs/attention-spec.md M9): the non-causal form against a hand loop, gradient checks of the
// non-causal and causal forms (with key padding), the causal RNN op against the masked parallel form
// (forward and gradients, fp32 and fp64), padding and errors, the LinearAttention module, and a small
// version of the spec's Task G (sequence duplication) learned with causal linear attention.
#include <doctest/doctest.h>

#include <cmath>
#include <heed/heed.hpp>
#include <memory>
#include <vector>

#include "heed/nn/linear_attention.hpp"
#include "testing.hpp"

namespace {

using heed::DType;
using heed::Shape;
using heed::Tensor;
namespace nn = heed::nn;
using heed::testing::check_grad;
using heed::testing::error_of;

Tensor keep_from_lengths(const std::vector<int64_t>& lengths, int64_t steps) {
  std::vector<bool> keep;
  for (int64_t len : lengths)
    for (int64_t t = 0; t < steps; ++t) keep.push_back(t < len);
  return heed::bool_tensor(keep, {static_cast<int64_t>(lengths.size()), steps});
}

// (L, L) Bool, true where j <= i.
Tensor causal_keep(int64_t length) {
  return heed::le(heed::arange(static_cast<double>(length)).unsqueeze(0),
                  heed::arange(static_cast<double>(length)).unsqueeze(1));
}

double phi(double x) { return x > 0 ? x + 1 : std::exp(x); }

// O_i = sum_{j kept} (phi(q_i).phi(k_j)) v_j / (sum_{j kept} phi(q_i).phi(k_j) + 1e-6), by hand.
std::vector<double> hand_linear_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                          const std::vector<int64_t>& lengths) {
  const int64_t n = q.size(0), h = q.size(1), l = q.size(2), s = k.size(2), d = q.size(3), m = v.size(3);
  const auto Q = q.to_vector<double>(), K = k.to_vector<double>(), V = v.to_vector<double>();
  std::vector<double> out;
  for (int64_t b = 0; b < n * h; ++b)
    for (int64_t i = 0; i < l; ++i) {
      std::vector<double> num(m, 0.0);
      double den = 1e-6;
      for (int64_t j = 0; j < s; ++j) {
        if ((causal && j > i) || j >= lengths[b / h]) continue;
        double a = 0;
        for (int64_t c = 0; c < d; ++c) a += phi(Q[(b * l + i) * d + c]) * phi(K[(b * s + j) * d + c]);
        for (int64_t c = 0; c < m; ++c) num[c] += a * V[(b * s + j) * m + c];
        den += a;
      }
      for (int64_t c = 0; c < m; ++c) out.push_back(num[c] / den);
    }
  return out;
}

}  // namespace

TEST_CASE("linear attention: non-causal, causal and parallel forms equal a hand loop (with key padding)") {
  heed::manual_seed(3);
  Tensor q = heed::randn({2, 2, 4, 3}, DType::Float64), k = heed::randn({2, 2, 5, 3}, DType::Float64);
  Tensor v = heed::randn({2, 2, 5, 2}, DType::Float64);
  const std::vector<int64_t> lengths{5, 3};
  Tensor keep = keep_from_lengths(lengths, 5);
  heed::testing::check_values(nn::linear_attention(q, k, v, keep), {2, 2, 4, 2},
                              hand_linear_attention(q, k, v, false, lengths), 1e-12);
  heed::testing::check_values(nn::linear_attention_parallel(q, k, v, Tensor(), keep).output, {2, 2, 4, 2},
                              hand_linear_attention(q, k, v, false, lengths), 1e-12);

  Tensor kc = heed::narrow(k, 2, 0, 4), vc = heed::narrow(v, 2, 0, 4);
  const std::vector<int64_t> causal_lengths{4, 2};
  heed::testing::check_values(nn::causal_linear_attention(q, kc, vc, keep_from_lengths(causal_lengths, 4)),
                              {2, 2, 4, 2}, hand_linear_attention(q, kc, vc, true, causal_lengths), 1e-12);
}

TEST_CASE("linear attention: gradient checks of the non-causal and causal forms, with key padding") {
  heed::manual_seed(4);
  Tensor q = heed::randn({2, 2, 4, 3}, DType::Float64).requires_grad_();
  Tensor k = heed::randn({2, 2, 5, 3}, DType::Float64).requires_grad_();
  Tensor v = heed::randn({2, 2, 5, 2}, DType::Float64).requires_grad_();
  Tensor keep = keep_from_lengths({5, 3}, 5);
  check_grad([&](const std::vector<Tensor>& in) { return nn::linear_attention(in[0], in[1], in[2], keep); },
             {q, k, v}, "non-causal, padded");
  check_grad([&](const std::vector<Tensor>& in) { return nn::linear_attention(in[0], in[1], in[2]); }, {q, k, v},
             "non-causal");

  Tensor qc = heed::randn({2, 2, 6, 3}, DType::Float64).requires_grad_();
  Tensor kc = heed::randn({2, 2, 6, 3}, DType::Float64).requires_grad_();
  Tensor vc = heed::randn({2, 2, 6, 4}, DType::Float64).requires_grad_();
  Tensor keep_c = keep_from_lengths({6, 4}, 6);
  check_grad([&](const std::vector<Tensor>& in) { return nn::causal_linear_attention(in[0], in[1], in[2], keep_c); },
             {qc, kc, vc}, "causal, padded");
  check_grad([&](const std::vector<Tensor>& in) { return nn::causal_linear_attention(in[0], in[1], in[2]); },
             {qc, kc, vc}, "causal");
  // Padding in the middle of the sequence (a keep-mask, not only lengths) and non-contiguous inputs.
  Tensor holes = heed::bool_tensor({true, false, true, true, false, true, true, true, true, true, true, false}, {2, 6});
  check_grad(
      [&](const std::vector<Tensor>& in) {
        return nn::causal_linear_attention(in[0].transpose(2, 3).transpose(2, 3), in[1], in[2], holes);
      },
      {qc, kc, vc}, "causal, holes");
}

TEST_CASE("linear attention: the causal RNN op equals the causally masked parallel form, forward and gradients") {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    CAPTURE(heed::dtype_name(dtype));
    heed::manual_seed(5);
    const int64_t length = 64;
    Tensor q = heed::randn({2, 3, length, 8}, dtype).requires_grad_();
    Tensor k = heed::randn({2, 3, length, 8}, dtype).requires_grad_();
    Tensor v = heed::randn({2, 3, length, 6}, dtype).requires_grad_();
    Tensor keep = keep_from_lengths({length, 41}, length);
    Tensor g = heed::randn({2, 3, length, 6}, dtype);
    const double tol = dtype == DType::Float32 ? 1e-5 : 1e-12;

    Tensor rnn = nn::causal_linear_attention(q, k, v, keep);
    rnn.backward(g);
    const std::vector<Tensor> rnn_grads{q.grad(), k.grad(), v.grad()};
    q.zero_grad();
    k.zero_grad();
    v.zero_grad();
    Tensor parallel = nn::linear_attention_parallel(q, k, v, causal_keep(length), keep).output;
    parallel.backward(g);
    const std::vector<Tensor> parallel_grads{q.grad(), k.grad(), v.grad()};

    const double out_diff = heed::max_abs_diff(rnn, parallel);
    MESSAGE(std::string(heed::dtype_name(dtype)) << ": max |RNN - parallel| output " << out_diff << ", grads "
                                    << heed::max_abs_diff(rnn_grads[0], parallel_grads[0]) << " "
                                    << heed::max_abs_diff(rnn_grads[1], parallel_grads[1]) << " "
                                    << heed::max_abs_diff(rnn_grads[2], parallel_grads[2]));
    CHECK(out_diff <= tol);
    for (int i = 0; i < 3; ++i) {
      CAPTURE(i);
      const double scale = std::max(1.0, heed::max(heed::abs(parallel_grads[i])).item());
      CHECK(heed::max_abs_diff(rnn_grads[i], parallel_grads[i]) <= tol * scale);
    }
  }
}

TEST_CASE("linear attention: padded keys change nothing and get zero gradient; all-padded rows give zeros") {
  heed::manual_seed(6);
  Tensor q = heed::randn({1, 1, 5, 3}, DType::Float64).requires_grad_();
  Tensor k = heed::randn({1, 1, 5, 3}, DType::Float64).requires_grad_();
  Tensor v = heed::randn({1, 1, 5, 2}, DType::Float64).requires_grad_();
  Tensor keep = keep_from_lengths({3}, 5);
  for (bool causal : {false, true}) {
    CAPTURE(causal);
    auto attend = [&](const Tensor& kk, const Tensor& vv) {
      return causal ? nn::causal_linear_attention(q, kk, vv, keep) : nn::linear_attention(q, kk, vv, keep);
    };
    Tensor out = attend(k, v);
    // Changing the padded keys and values leaves the output alone.
    Tensor k2 = heed::concat({heed::narrow(k, 2, 0, 3), heed::full({1, 1, 2, 3}, 7.0, DType::Float64)}, 2);
    Tensor v2 = heed::concat({heed::narrow(v, 2, 0, 3), heed::full({1, 1, 2, 2}, -9.0, DType::Float64)}, 2);
    {
      heed::NoGradGuard no_grad;
      CHECK(heed::max_abs_diff(out, attend(k2, v2)) == 0.0);
    }
    heed::sum(out * out).backward();
    const auto gk = k.grad().to_vector<double>(), gv = v.grad().to_vector<double>();
    for (int j = 3; j < 5; ++j) {
      for (int c = 0; c < 3; ++c) CHECK(gk[j * 3 + c] == 0.0);
      for (int c = 0; c < 2; ++c) CHECK(gv[j * 2 + c] == 0.0);
    }
    k.zero_grad();
    v.zero_grad();
    q.zero_grad();
    // No real key at all: the output is exactly zero (numerator 0, denominator eps), gradients finite.
    Tensor none = heed::bool_tensor({false, false, false, false, false}, {1, 5});
    Tensor empty_out = causal ? nn::causal_linear_attention(q, k, v, none) : nn::linear_attention(q, k, v, none);
    CHECK(heed::max(heed::abs(empty_out)).item() == 0.0);
    heed::sum(empty_out).backward();
    for (double g : q.grad().to_vector<double>()) CHECK(std::isfinite(g));
    q.zero_grad();
  }
}

TEST_CASE("linear attention: bad inputs throw naming the op and the shapes") {
  Tensor q = heed::zeros({1, 2, 4, 3}), k = heed::zeros({1, 2, 5, 3}), v = heed::zeros({1, 2, 5, 2});
  CHECK(error_of([&] { nn::linear_attention(q, k, heed::zeros({1, 2, 4, 2})); }).find("linear_attention: shapes") !=
        std::string::npos);
  CHECK(error_of([&] { nn::causal_linear_attention(q, k, v); }).find("L == S") != std::string::npos);
  CHECK(error_of([&] { nn::linear_attention(q.reshape({2, 4, 3}), k, v); }).find("[2, 4, 3]") != std::string::npos);
  CHECK(error_of([&] { nn::linear_attention(q, k, v, heed::ones({1, 5})); }).find("key_keep must be Bool") !=
        std::string::npos);
  CHECK(error_of([&] { nn::linear_attention(q.to(DType::Float64), k, v); }).find("one dtype") != std::string::npos);
  CHECK(error_of([] { nn::LinearAttention(10, 3); }).find("divisible") != std::string::npos);
  nn::LinearAttention attn(6, 2);
  CHECK(error_of([&] { attn.forward(heed::zeros({2, 3, 5})); }).find("LinearAttention(embed_dim=6)") !=
        std::string::npos);
}

TEST_CASE("linear attention module: PyTorch MultiheadAttention names, gradient checks, weights from the parallel form") {
  heed::manual_seed(7);
  nn::LinearAttention attn(nn::LinearAttentionOptions(6, 2).causal(true));
  const auto params = attn.named_parameters();
  REQUIRE(params.size() == 4);
  CHECK(params[0].first == "in_proj_weight");
  CHECK(params[0].second.shape() == Shape{18, 6});
  CHECK(params[1].first == "in_proj_bias");
  CHECK(params[2].first == "out_proj.weight");
  CHECK(params[3].first == "out_proj.bias");
  CHECK(attn.extra_repr() == "embed_dim=6, num_heads=2, causal=True");
  CHECK(attn.to_string().find("(out_proj): Linear(") != std::string::npos);
  attn.to(DType::Float64);
  // Non-zero biases so that their gradients are exercised.
  {
    heed::NoGradGuard no_grad;
    attn.in_proj_bias.copy_(heed::randn({18}, DType::Float64));
    attn.out_proj->bias.copy_(heed::randn({6}, DType::Float64));
  }

  Tensor x = heed::randn({2, 4, 6}, DType::Float64).requires_grad_();
  Tensor keep = keep_from_lengths({4, 2}, 4);
  std::vector<Tensor> inputs{x};
  for (const Tensor& p : attn.parameters()) inputs.push_back(p);
  check_grad([&](const std::vector<Tensor>& in) { return attn.forward(in[0], in[0], in[0], keep).output; }, inputs,
             "causal module");

  auto [out, weights] = attn.forward(x, x, x, keep, true);
  REQUIRE(weights.shape() == Shape{2, 2, 4, 4});
  CHECK(heed::max_abs_diff(out, attn.forward(x, x, x, keep).output) <= 1e-12);
  const auto w = weights.to_vector<double>();
  for (int b = 0; b < 4; ++b)
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 4; ++j)
        if (j > i || (b >= 2 && j >= 2)) CHECK(w[(b * 4 + i) * 4 + j] == 0.0);  // future and padded keys

  nn::LinearAttention cross(6, 3);
  cross.to(DType::Float64);
  Tensor memory = heed::randn({2, 5, 6}, DType::Float64).requires_grad_();
  Tensor memory_keep = keep_from_lengths({5, 3}, 5);
  std::vector<Tensor> cross_inputs{x, memory};
  for (const Tensor& p : cross.parameters()) cross_inputs.push_back(p);
  check_grad([&](const std::vector<Tensor>& in) { return cross.forward(in[0], in[1], in[1], memory_keep).output; },
             cross_inputs, "non-causal cross-attention module");
}

namespace {

// Task G, small: n random symbols from 10, a separator, then the same symbols again; a decoder-only model
// predicts every next token; accuracy is measured on the copy half.
constexpr int64_t kSymbols = 10, kSeparator = 10, kVocab = 11;

struct CopyBatch {
  Tensor inputs, targets;  // (B, 2n), Int64; targets -100 outside the copy half
};

CopyBatch make_copy_batch(int64_t batch, int64_t n, heed::Generator& gen) {
  std::vector<int64_t> in, tg;
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<int64_t> s(n);
    for (auto& x : s) x = gen.randint(0, kSymbols);
    std::vector<int64_t> seq = s;
    seq.push_back(kSeparator);
    seq.insert(seq.end(), s.begin(), s.end());  // length 2n + 1
    for (int64_t t = 0; t < 2 * n; ++t) {
      in.push_back(seq[t]);
      tg.push_back(t >= n ? seq[t + 1] : -100);  // from the separator on, predict the copy
    }
  }
  return {heed::index_tensor(in, {batch, 2 * n}), heed::index_tensor(tg, {batch, 2 * n})};
}

// One decoder block: token + position embedding, causal linear attention, a ReLU MLP, post-norm residuals.
struct CopyModel : nn::Module {
  CopyModel(int64_t length, int64_t dim, int64_t heads) : Module("CopyModel") {
    tokens = register_module("tokens", std::make_shared<nn::Embedding>(kVocab, dim));
    positions = register_module("positions", std::make_shared<nn::Embedding>(length, dim));
    attn = register_module("attn", std::make_shared<nn::LinearAttention>(nn::LinearAttentionOptions(dim, heads).causal(true)));
    norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(Shape{dim}));
    ff1 = register_module("ff1", std::make_shared<nn::Linear>(dim, 2 * dim));
    ff2 = register_module("ff2", std::make_shared<nn::Linear>(2 * dim, dim));
    norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(Shape{dim}));
    head = register_module("head", std::make_shared<nn::Linear>(dim, kVocab));
  }
  Tensor forward(const Tensor& ids) override {
    const int64_t length = ids.size(1);
    Tensor x = tokens->forward(ids) + positions->forward(heed::arange(0, static_cast<double>(length), 1, DType::Int64));
    x = norm1->forward(x + attn->forward(x));
    x = norm2->forward(x + ff2->forward(heed::relu(ff1->forward(x))));
    return head->forward(x);
  }
  std::shared_ptr<nn::Embedding> tokens, positions;
  std::shared_ptr<nn::LinearAttention> attn;
  std::shared_ptr<nn::LayerNorm> norm1, norm2;
  std::shared_ptr<nn::Linear> ff1, ff2, head;
};

double copy_accuracy(const Tensor& logits, const Tensor& targets) {
  const auto pred = heed::argmax(logits, -1).to_vector<int64_t>(), tg = targets.to_vector<int64_t>();
  int64_t right = 0, total = 0;
  for (std::size_t i = 0; i < tg.size(); ++i)
    if (tg[i] >= 0) {
      ++total;
      right += pred[i] == tg[i];
    }
  return static_cast<double>(right) / static_cast<double>(total);
}

}  // namespace

TEST_CASE("[learning] linear attention: small Task G (sequence duplication), copy-half token accuracy >= 0.98") {
  heed::manual_seed(11);
  heed::Generator gen(12);
  const int64_t n = 12, dim = 32, steps = 300;
  CopyModel model(2 * n, dim, 1);
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(3e-3));
  for (int64_t step = 0; step < steps; ++step) {
    CopyBatch batch = make_copy_batch(32, n, gen);
    opt.zero_grad();
    Tensor loss = heed::cross_entropy(model(batch.inputs), batch.targets);
    loss.backward();
    opt.step();
  }
  heed::NoGradGuard no_grad;
  model.eval();
  CopyBatch test = make_copy_batch(500, n, gen);
  const double accuracy = copy_accuracy(model(test.inputs), test.targets);
  MESSAGE("small Task G (n = " << n << ", d = " << dim << ", 1 layer, 1 head, " << steps
                               << " steps): copy-half token accuracy " << accuracy);
  CHECK(accuracy >= 0.98);
}

TEST_CASE("linear attention: heed::nn::causal_linear_attention is the op of heed/ops/attention.hpp") {
  CHECK((&nn::causal_linear_attention == &heed::causal_linear_attention));
  CHECK((&nn::kLinearAttentionEps == &heed::kLinearAttentionEps));
}
