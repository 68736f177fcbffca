// Scaled dot-product and multi-head attention (docs/attention-spec.md M5): masks, SDPA against the reference
// formula (both kernels), gradchecks of SDPA and of MultiheadAttention for the inputs and every parameter
// (key padding, attention masks, additive biases, causal both ways, fully masked rows, L != S,
// kdim/vdim != E), dropout, PyTorch parity (tests/fixtures/make_attention_fixtures.py), the KV cache
// against the full forward, and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <heed/heed.hpp>
#include <heed/io/safetensors.hpp>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "heed/nn/attention.hpp"
#include "testing.hpp"

namespace {

using heed::DType;
using heed::Shape;
using heed::Tensor;
namespace nn = heed::nn;
using heed::testing::error_of;

// out[b, i] = sum_j softmax_j(scale q_i·k_j + bias_ij over kept j) v_j, in double, by hand. q (B, L, E),
// k (B, S, E), v (B, S, Ev), keep (B, L, S) as 0/1 (or empty), bias (L, S) (or empty). A row with
// nothing kept is 0.
std::vector<double> reference_sdpa(const Tensor& q, const Tensor& k, const Tensor& v, const std::vector<int>& keep,
                                   const std::vector<double>& bias, double scale) {
  const int64_t B = q.size(0), L = q.size(1), E = q.size(2), S = k.size(1), Ev = v.size(2);
  const auto Q = q.to_vector<double>(), K = k.to_vector<double>(), V = v.to_vector<double>();
  std::vector<double> out(static_cast<std::size_t>(B * L * Ev), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L; ++i) {
      std::vector<double> s(static_cast<std::size_t>(S), -INFINITY);
      double m = -INFINITY;
      for (int64_t j = 0; j < S; ++j) {
        if (!keep.empty() && !keep[static_cast<std::size_t>((b * L + i) * S + j)]) continue;
        double dot = 0.0;
        for (int64_t e = 0; e < E; ++e) dot += Q[static_cast<std::size_t>((b * L + i) * E + e)] * K[static_cast<std::size_t>((b * S + j) * E + e)];
        s[static_cast<std::size_t>(j)] = scale * dot + (bias.empty() ? 0.0 : bias[static_cast<std::size_t>(i * S + j)]);
        m = std::max(m, s[static_cast<std::size_t>(j)]);
      }
      if (m == -INFINITY) continue;
      double z = 0.0;
      for (double& x : s) z += (x = std::exp(x - m));
      for (int64_t j = 0; j < S; ++j)
        for (int64_t e = 0; e < Ev; ++e)
          out[static_cast<std::size_t>((b * L + i) * Ev + e)] += s[static_cast<std::size_t>(j)] / z * V[static_cast<std::size_t>((b * S + j) * Ev + e)];
    }
  return out;
}

void check_all_close(const Tensor& got, const std::vector<double>& want, double tol) {
  const std::vector<double> g = got.to_vector<double>();
  REQUIRE(g.size() == want.size());
  double err = 0.0;
  for (std::size_t i = 0; i < g.size(); ++i) err = std::max(err, std::abs(g[i] - want[i]));
  CHECK(err <= tol);
}

// gradcheck of MHA's output (and weights when requested) w.r.t. query/key/value and every parameter.
void check_mha_grads(nn::MultiheadAttention& mha, const Tensor& query, const Tensor& key, const Tensor& value,
                     const nn::MhaArgs& args, bool self_attention, const std::string& what) {
  std::vector<Tensor> inputs{query};
  if (!self_attention) inputs.push_back(key), inputs.push_back(value);
  for (const Tensor& p : mha.parameters()) inputs.push_back(p);
  const heed::GradcheckResult r = heed::gradcheck(
      [&](const std::vector<Tensor>& in) {
        const Tensor& k = self_attention ? in[0] : in[1];
        const Tensor& v = self_attention ? in[0] : in[2];
        nn::AttentionOutput o = mha.forward(in[0], k, v, args);
        return o.weights.defined() ? heed::concat({heed::flatten(o.output), heed::flatten(o.weights)}, 0) : o.output;
      },
      inputs);
  CHECK_MESSAGE(r.ok, what << "\n" << r.report);
  CHECK(r.elements_checked > 0);
}

std::string fixture(const std::string& name) {
  return std::string(HEED_FIXTURE_DIR) + "/attention_mha_" + name + ".safetensors";
}

using heed::testing::check_close;

}  // namespace

TEST_CASE("attention masks: causal (both alignments), lengths, PyTorch conversions") {
  // L = 2, S = 4: bottom-right keeps j <= i + 2, top-left keeps j <= i
  CHECK(nn::causal_keep_mask(2, 4).to_vector<int>() == std::vector<int>{1, 1, 1, 0, 1, 1, 1, 1});
  CHECK(nn::causal_keep_mask(2, 4, false).to_vector<int>() == std::vector<int>{1, 0, 0, 0, 1, 1, 0, 0});
  CHECK(nn::causal_keep_mask(3, 3).to_vector<int>() == nn::causal_keep_mask(3, 3, false).to_vector<int>());
  // L > S bottom-right: the first row sees nothing
  CHECK(nn::causal_keep_mask(3, 2).to_vector<int>() == std::vector<int>{0, 0, 1, 0, 1, 1});
  CHECK(nn::lengths_keep_mask(heed::index_tensor({2, 0, 3}), 3).to_vector<int>() ==
        std::vector<int>{1, 1, 0, 0, 0, 0, 1, 1, 1});
  CHECK(nn::keep_mask_from_torch_blocked(heed::bool_tensor({true, false})).to_vector<int>() == std::vector<int>{0, 1});
  const nn::KeepMaskAndBias kb =
      nn::keep_mask_from_torch_additive(heed::tensor({0.5, -INFINITY, -2.0}, {3}, DType::Float32));
  CHECK(kb.keep_mask.to_vector<int>() == std::vector<int>{1, 0, 1});
  CHECK(kb.bias.to_vector<double>() == std::vector<double>{0.5, 0.0, -2.0});
  CHECK(!nn::combine_keep_masks(Tensor(), Tensor()).defined());
  CHECK(nn::combine_keep_masks(heed::bool_tensor({true, true}), heed::bool_tensor({false, true})).to_vector<int>() ==
        std::vector<int>{0, 1});
  CHECK(error_of([] { nn::lengths_keep_mask(heed::tensor({1.0, 2.0}), 3); }) ==
        "lengths_keep_mask: lengths must be Int64 of shape (N), got Float32 [2]");
  CHECK(error_of([] { nn::keep_mask_from_torch_blocked(heed::tensor({1.0})); }).find("expected a Bool mask") !=
        std::string::npos);
}

TEST_CASE("sdpa: both kernels equal the reference formula (masks, bias, causal top-left as PyTorch's is_causal)") {
  heed::manual_seed(11);
  const int64_t B = 2, L = 4, S = 6, E = 3, Ev = 2;
  const Tensor q = heed::randn({B, L, E}, DType::Float64), k = heed::randn({B, S, E}, DType::Float64),
               v = heed::randn({B, S, Ev}, DType::Float64), bias = heed::randn({L, S}, DType::Float64);
  std::vector<int> keep(static_cast<std::size_t>(B * L * S));
  for (std::size_t i = 0; i < keep.size(); ++i) keep[i] = (i * 5 + 1) % 4 != 0;
  for (int64_t j = 0; j < S; ++j) keep[static_cast<std::size_t>(S + j)] = 0;  // batch 0, row 1: fully masked
  std::vector<bool> keep_b(keep.begin(), keep.end());
  const Tensor keep_t = heed::bool_tensor(keep_b, {B, L, S});
  std::vector<int> causal_tl(static_cast<std::size_t>(B * L * S));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < L; ++i)
      for (int64_t j = 0; j < S; ++j) causal_tl[static_cast<std::size_t>((b * L + i) * S + j)] = j <= i;
  const std::vector<double> bias_v = bias.to_vector<double>();
  for (nn::AttentionKernel kernel : {nn::AttentionKernel::Naive, nn::AttentionKernel::Flash}) {
    CAPTURE(static_cast<int>(kernel));
    nn::SdpaOptions opt;
    opt.kernel(kernel);
    check_all_close(nn::scaled_dot_product_attention(q, k, v, Tensor(), Tensor(), opt).output,
                    reference_sdpa(q, k, v, {}, {}, 1.0 / std::sqrt(3.0)), 1e-12);
    check_all_close(nn::scaled_dot_product_attention(q, k, v, keep_t, bias, opt).output,
                    reference_sdpa(q, k, v, keep, bias_v, 1.0 / std::sqrt(3.0)), 1e-12);
    opt.scale(0.7).causal(true, false);
    check_all_close(nn::scaled_dot_product_attention(q, k, v, Tensor(), bias, opt).output,
                    reference_sdpa(q, k, v, causal_tl, bias_v, 0.7), 1e-12);
  }
  // weights: rows sum to 1, the fully masked row is all zeros
  const nn::AttentionOutput o =
      nn::scaled_dot_product_attention(q, k, v, keep_t, Tensor(), nn::SdpaOptions().need_weights(true));
  REQUIRE(o.weights.shape() == Shape{B, L, S});
  const Tensor row_sums = heed::sum(o.weights, {2});
  CHECK(row_sums.to_vector<double>()[1] == 0.0);
  CHECK(row_sums.to_vector<double>()[0] == doctest::Approx(1.0));
}

TEST_CASE("sdpa: gradcheck, both kernels (key padding, bias, causal both ways, L != S, fully masked row)") {
  heed::manual_seed(12);
  for (nn::AttentionKernel kernel : {nn::AttentionKernel::Naive, nn::AttentionKernel::Flash})
    for (int variant = 0; variant < 3; ++variant) {
      CAPTURE(static_cast<int>(kernel));
      CAPTURE(variant);
      const int64_t L = variant == 1 ? 5 : 3, S = variant == 1 ? 3 : 5;
      Tensor q = heed::randn({2, 2, L, 3}, DType::Float64).requires_grad_();
      Tensor k = heed::randn({2, 2, S, 3}, DType::Float64).requires_grad_();
      Tensor v = heed::randn({2, 2, S, 2}, DType::Float64).requires_grad_();
      Tensor bias = heed::randn({L, S}, DType::Float64).requires_grad_();
      // key padding (N, 1, 1, S): batch 1 keeps only its first 2 keys
      Tensor keep = nn::lengths_keep_mask(heed::index_tensor({S, 2}), S).reshape({2, 1, 1, S});
      nn::SdpaOptions opt;
      opt.kernel(kernel).causal(variant > 0, variant == 1);
      heed::testing::check_grad(
          [&](const std::vector<Tensor>& in) {
            return nn::scaled_dot_product_attention(in[0], in[1], in[2], keep, in[3], opt).output;
          },
          {q, k, v, bias}, "sdpa");
    }
}

TEST_CASE("sdpa: dropout on the weights (inverted scaling, weights returned post-dropout)") {
  heed::manual_seed(13);
  const Tensor q = heed::randn({2, 4, 3}, DType::Float64), k = heed::randn({2, 6, 3}, DType::Float64),
               v = heed::randn({2, 6, 2}, DType::Float64);
  const nn::AttentionOutput clean = nn::scaled_dot_product_attention(q, k, v, Tensor(), Tensor(),
                                                                     nn::SdpaOptions().need_weights(true));
  heed::Generator gen(5);
  const nn::AttentionOutput dropped = nn::scaled_dot_product_attention(
      q, k, v, Tensor(), Tensor(), nn::SdpaOptions().need_weights(true).dropout(0.5, true, &gen));
  const auto w0 = clean.weights.to_vector<double>(), w1 = dropped.weights.to_vector<double>();
  int zeros = 0;
  for (std::size_t i = 0; i < w0.size(); ++i) {
    CHECK((w1[i] == 0.0 || std::abs(w1[i] - 2.0 * w0[i]) < 1e-15));
    zeros += w1[i] == 0.0;
  }
  CHECK(zeros > 0);
  CHECK(zeros < static_cast<int>(w0.size()));
  CHECK(heed::allclose(dropped.output, heed::matmul(dropped.weights, v), 1e-12, 1e-12));
  // evaluation (training false) ignores dropout; Auto then uses Flash
  const Tensor eval_out = nn::scaled_dot_product_attention(q, k, v, Tensor(), Tensor(), nn::SdpaOptions().dropout(0.5, false)).output;
  CHECK(heed::allclose(eval_out, clean.output, 1e-12, 1e-12));
  CHECK(error_of([&] {
          nn::scaled_dot_product_attention(q, k, v, Tensor(), Tensor(),
                                           nn::SdpaOptions().need_weights(true).kernel(nn::AttentionKernel::Flash));
        }).find("the Flash kernel neither returns weights nor applies dropout") != std::string::npos);
}

TEST_CASE("sdpa: errors name the op and the shapes") {
  Tensor q = heed::randn({2, 3, 4}), k = heed::randn({2, 5, 4}), v = heed::randn({2, 5, 6});
  CHECK(error_of([&] { nn::scaled_dot_product_attention(q, heed::randn({2, 5, 3}), v); }) ==
        "scaled_dot_product_attention: expected q (..., L, E), k (..., S, E), v (..., S, Ev), got q Float32 [2, 3, 4], "
        "k Float32 [2, 5, 3], v Float32 [2, 5, 6]");
  CHECK(error_of([&] { nn::scaled_dot_product_attention(q, k, v, heed::ones({2, 4, 5}, DType::Bool)); }) ==
        "scaled_dot_product_attention: keep_mask must be Bool and broadcast to the scores [2, 3, 5] (q [2, 3, 4], k "
        "[2, 5, 4]), got Bool [2, 4, 5]");
  CHECK(error_of([&] { nn::scaled_dot_product_attention(q, heed::randn({3, 5, 4}), heed::randn({3, 5, 6})); }) ==
        "scaled_dot_product_attention: the leading (batch) axes of q [2, 3, 4], k [3, 5, 4] and v [3, 5, 6] do not "
        "broadcast");
  CHECK(error_of([&] { nn::scaled_dot_product_attention(q, k, v, Tensor(), heed::ones({3, 5}, DType::Float64)); })
            .find("bias must be Float32") != std::string::npos);
}

TEST_CASE("multihead attention: PyTorch parameter names, shapes, init and repr") {
  nn::MultiheadAttention mha(8, 2);
  const auto params = mha.named_parameters();
  REQUIRE(params.size() == 4);
  CHECK(params[0].first == "in_proj_weight");
  CHECK(params[0].second.shape() == Shape{24, 8});
  CHECK(params[1].first == "in_proj_bias");
  CHECK(params[2].first == "out_proj.weight");
  CHECK(params[3].first == "out_proj.bias");
  CHECK(heed::max(heed::abs(mha.in_proj_bias)).item() == 0.0);
  CHECK(heed::max(heed::abs(mha.out_proj->bias)).item() == 0.0);
  const double bound = std::sqrt(6.0 / (24 + 8));  // xavier_uniform on (3E, E)
  CHECK(heed::max(heed::abs(mha.in_proj_weight)).item() <= bound);
  CHECK(heed::max(heed::abs(mha.in_proj_weight)).item() > 0.8 * bound);
  CHECK(mha.extra_repr() == "embed_dim=8, num_heads=2");

  nn::MultiheadAttention cross(nn::MultiheadAttentionOptions(8, 4).kdim(5).vdim(3).bias(false).dropout(0.1));
  std::vector<std::string> names;
  for (const auto& [name, p] : cross.named_parameters()) names.push_back(name + heed::shape_str(p.shape()));
  CHECK(names == std::vector<std::string>{"q_proj_weight[8, 8]", "k_proj_weight[8, 5]", "v_proj_weight[8, 3]",
                                          "out_proj.weight[8, 8]"});
  CHECK(cross.extra_repr() == "embed_dim=8, num_heads=4, dropout=0.1, bias=False, kdim=5, vdim=3");
}

TEST_CASE("multihead attention: gradcheck for inputs and every parameter (masks, causal, kdim/vdim, both kernels)") {
  heed::manual_seed(14);
  SUBCASE("self-attention, key padding + causal, weights per head (naive)") {
    nn::MultiheadAttention mha(6, 2);
    mha.to(DType::Float64);
    Tensor x = heed::randn({2, 4, 6}, DType::Float64).requires_grad_();
    nn::MhaArgs args;
    args.key_padding = nn::lengths_keep_mask(heed::index_tensor({4, 2}), 4);
    args.causal = true;
    args.average_weights = false;
    check_mha_grads(mha, x, x, x, args, true, "self naive");
  }
  SUBCASE("self-attention without weights (flash), Bool attn mask (N*H, L, S) with a fully masked row") {
    nn::MultiheadAttention mha(6, 2);
    mha.to(DType::Float64);
    Tensor x = heed::randn({2, 3, 6}, DType::Float64).requires_grad_();
    std::vector<bool> m(2 * 2 * 3 * 3, true);
    for (int j = 0; j < 3; ++j) m[static_cast<std::size_t>(3 + j)] = false;  // (n 0, h 0, row 1) fully masked
    m[20] = false;
    nn::MhaArgs args;
    args.attn_mask = heed::bool_tensor(m, {4, 3, 3});
    args.need_weights = false;
    check_mha_grads(mha, x, x, x, args, true, "self flash");
  }
  SUBCASE("cross-attention, kdim/vdim != E, additive bias, top-left causal with L != S, averaged weights") {
    nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(4, 2).kdim(3).vdim(5));
    mha.to(DType::Float64);
    Tensor q = heed::randn({2, 3, 4}, DType::Float64).requires_grad_();
    Tensor k = heed::randn({2, 5, 3}, DType::Float64).requires_grad_();
    Tensor v = heed::randn({2, 5, 5}, DType::Float64).requires_grad_();
    nn::MhaArgs args;
    args.attn_bias = heed::randn({3, 5}, DType::Float64);
    args.key_padding = nn::lengths_keep_mask(heed::index_tensor({5, 3}), 5);
    args.causal = true;
    args.bottom_right = false;
    check_mha_grads(mha, q, k, v, args, false, "cross naive");
    args.need_weights = false;
    check_mha_grads(mha, q, k, v, args, false, "cross flash");
  }
}

TEST_CASE("multihead attention: flash (need_weights false) equals naive, and the fully masked row policy") {
  heed::manual_seed(15);
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(8, 2).kdim(6).vdim(4));
  Tensor q = heed::randn({3, 5, 8}), k = heed::randn({3, 7, 6}), v = heed::randn({3, 7, 4});
  nn::MhaArgs args;
  args.key_padding = nn::lengths_keep_mask(heed::index_tensor({7, 0, 4}), 7);  // batch 1: nothing to attend to
  const nn::AttentionOutput naive = mha.forward(q, k, v, args);
  args.need_weights = false;
  const nn::AttentionOutput flash = mha.forward(q, k, v, args);
  CHECK(!flash.weights.defined());
  CHECK(heed::allclose(flash.output, naive.output, 1e-5, 1e-6));
  // batch 1's heads give zeros, so its output is out_proj's bias (zero at init) for every row
  CHECK(heed::max(heed::abs(heed::select(flash.output, 0, 1))).item() == 0.0);
  CHECK(heed::max(heed::abs(heed::select(naive.weights, 0, 1))).item() == 0.0);
}

TEST_CASE("multihead attention: matches torch.nn.MultiheadAttention (outputs, weights, gradients)") {
  for (const std::string name : {"self_padding", "self_causal", "cross_float_mask", "cross_kvdim", "self_nobias"}) {
    CAPTURE(name);
    const heed::io::SafetensorsFile f = heed::io::load_safetensors(fixture(name));
    const int64_t E = std::stoll(f.metadata.at("embed_dim")), H = std::stoll(f.metadata.at("num_heads"));
    const bool self = f.metadata.at("self") == "1";
    nn::NamedTensors state;
    for (const auto& [key, t] : f.tensors)
      if (key.rfind("state.", 0) == 0) state.emplace_back(key.substr(6), t);
    const Tensor key = f.get("key"), value = f.get("value");
    nn::MultiheadAttentionOptions opt(E, H);
    opt.kdim(key.size(2)).vdim(value.size(2));
    bool has_bias = false;
    for (const auto& kv : state) has_bias |= kv.first == "in_proj_bias";
    opt.bias(has_bias);
    nn::MultiheadAttention mha(opt);
    mha.load_state_dict(state);  // strict: every name and shape must match PyTorch's

    nn::MhaArgs args;
    for (const auto& kv : f.tensors) {
      if (kv.first == "key_padding_mask") args.key_padding = nn::keep_mask_from_torch_blocked(kv.second);
      if (kv.first == "attn_mask" && kv.second.dtype() == DType::Bool)
        args.attn_mask = nn::keep_mask_from_torch_blocked(kv.second);
      if (kv.first == "attn_mask" && kv.second.dtype() != DType::Bool) {
        const nn::KeepMaskAndBias kb = nn::keep_mask_from_torch_additive(kv.second);
        args.attn_mask = kb.keep_mask;
        args.attn_bias = kb.bias;
      }
    }
    Tensor q = f.get("query").clone().requires_grad_();
    Tensor k = self ? q : key.clone().requires_grad_();
    Tensor v = self ? q : value.clone().requires_grad_();
    nn::AttentionOutput o = mha.forward(q, k, v, args);
    check_close(o.output, f.get("output"), "output");
    check_close(o.weights, f.get("weights_avg"), "weights_avg");
    heed::sum(o.output * f.get("probe")).backward();
    check_close(q.grad(), f.get("grad.query"), "grad.query");
    if (!self) {
      check_close(k.grad(), f.get("grad.key"), "grad.key");
      check_close(v.grad(), f.get("grad.value"), "grad.value");
    }
    for (const auto& [pname, p] : mha.named_parameters()) check_close(p.grad(), f.get("grad." + pname), "grad." + pname);

    heed::NoGradGuard no_grad;
    args.average_weights = false;
    check_close(mha.forward(q, k, v, args).weights, f.get("weights_heads"), "weights_heads");
    args.need_weights = false;  // the flash kernel
    check_close(mha.forward(q, k, v, args).output, f.get("output"), "output (flash)");
  }
}

TEST_CASE("multihead attention: KV cache decoding equals the full forward (self and cross)") {
  heed::manual_seed(16);
  nn::MultiheadAttention self_attn(8, 2);
  nn::MultiheadAttention cross_attn(nn::MultiheadAttentionOptions(8, 2).kdim(5).vdim(5));
  const int64_t N = 2, T = 6, S = 4;
  const Tensor x = heed::randn({N, T, 8}), memory = heed::randn({N, S, 5});
  const Tensor memory_keep = nn::lengths_keep_mask(heed::index_tensor({4, 3}), S);
  heed::NoGradGuard no_grad;
  for (bool need_weights : {true, false}) {
    CAPTURE(need_weights);
    nn::MhaArgs full_args;
    full_args.causal = true;
    full_args.need_weights = need_weights;
    const Tensor full_self = self_attn.forward(x, x, x, full_args).output;
    nn::MhaArgs cross_args;
    cross_args.key_padding = memory_keep;
    cross_args.need_weights = need_weights;
    const Tensor full_cross = cross_attn.forward(x, memory, memory, cross_args).output;

    nn::KVCache self_cache, cross_cache;
    // prompt of 2 tokens, then one token at a time
    const Tensor prompt = heed::narrow(x, 1, 0, 2);
    Tensor got = self_attn.forward_cached(prompt, prompt, prompt, self_cache, full_args).output;
    CHECK(heed::allclose(got, heed::narrow(full_self, 1, 0, 2), 1e-5, 1e-6));
    Tensor got_cross = cross_attn.forward_cached(prompt, memory, memory, cross_cache, cross_args).output;
    CHECK(heed::allclose(got_cross, heed::narrow(full_cross, 1, 0, 2), 1e-5, 1e-6));
    for (int64_t t = 2; t < T; ++t) {
      const Tensor token = heed::narrow(x, 1, t, 1);
      got = self_attn.forward_cached(token, token, token, self_cache, full_args).output;
      CHECK(self_cache.length() == t + 1);
      CHECK(heed::allclose(got, heed::narrow(full_self, 1, t, 1), 1e-5, 1e-6));
      got_cross = cross_attn.forward_cached(token, Tensor(), Tensor(), cross_cache, cross_args).output;
      CHECK(cross_cache.length() == S);
      CHECK(heed::allclose(got_cross, heed::narrow(full_cross, 1, t, 1), 1e-5, 1e-6));
    }
  }
  nn::KVCache empty;
  CHECK(error_of([&] { cross_attn.forward_cached(x, Tensor(), Tensor(), empty); })
            .find("the cache is empty and no key/value was given") != std::string::npos);
}

TEST_CASE("multihead attention: dropout in training (weights post-dropout), none in eval") {
  heed::manual_seed(17);
  nn::MultiheadAttention mha(nn::MultiheadAttentionOptions(8, 2).dropout(0.5));
  const Tensor x = heed::randn({2, 5, 8});
  nn::MhaArgs args;
  args.average_weights = false;
  heed::NoGradGuard no_grad;
  mha.eval();
  const nn::AttentionOutput clean = mha.forward(x, x, x, args);
  CHECK(heed::allclose(heed::sum(clean.weights, {3}), heed::ones({2, 2, 5}), 1e-5, 1e-6));
  mha.train();
  const nn::AttentionOutput dropped = mha.forward(x, x, x, args);
  const auto w0 = clean.weights.to_vector<double>(), w1 = dropped.weights.to_vector<double>();
  int zeros = 0;
  for (std::size_t i = 0; i < w0.size(); ++i) {
    CHECK((w1[i] == 0.0 || std::abs(w1[i] - 2.0 * w0[i]) < 1e-6));
    zeros += w1[i] == 0.0;
  }
  CHECK(zeros > 0);
}

TEST_CASE("multihead attention: errors name the layer and the shapes") {
  nn::MultiheadAttention mha(8, 2);
  const Tensor x = heed::randn({2, 5, 8});
  CHECK(error_of([] { nn::MultiheadAttention(8, 3); }) ==
        "MultiheadAttention: embed_dim must be a positive multiple of num_heads, got embed_dim=8 num_heads=3");
  CHECK(error_of([&] { mha.forward(x, heed::randn({2, 5, 7}), heed::randn({2, 5, 7})); }) ==
        "MultiheadAttention(embed_dim=8, num_heads=2): key must have shape (N, T, 8), got Float32 [2, 5, 7]");
  CHECK(error_of([&] { mha.forward(x, x, heed::randn({2, 4, 8})); }) ==
        "MultiheadAttention(embed_dim=8, num_heads=2): expected query (N, L, 8), key (N, S, 8), value (N, S, 8), got "
        "query Float32 [2, 5, 8], key Float32 [2, 5, 8], value Float32 [2, 4, 8]");
  nn::MhaArgs args;
  args.key_padding = heed::ones({2, 4}, DType::Bool);
  CHECK(error_of([&] { mha.forward(x, x, x, args); }) ==
        "MultiheadAttention(embed_dim=8, num_heads=2): key_padding must be a Bool keep-mask of shape [2, 5] (N, S), got "
        "Bool [2, 4]");
  args = {};
  args.attn_mask = heed::ones({5, 4}, DType::Bool);
  CHECK(error_of([&] { mha.forward(x, x, x, args); }) ==
        "MultiheadAttention(embed_dim=8, num_heads=2): attn_mask must have shape [5, 5], [4, 5, 5] or [2, 2, 5, 5], got "
        "Bool [5, 4]");
}

namespace {

// Key-value retrieval: memory holds up to 6 (key, value) slots (key one of 16, value one of 4, both
// one-hot; padded slots masked), each query is a key one-hot; the answer is the value stored under it.
// Solvable only by attending to the matching slot.
struct Retrieval {
  Tensor query, memory, keep, target;
};

Retrieval make_retrieval(int64_t n, heed::Generator& gen) {
  const int64_t S = 6, L = 2, K = 16, V = 4;
  std::vector<float> q(static_cast<std::size_t>(n * L * K), 0.f), m(static_cast<std::size_t>(n * S * (K + V)), 0.f);
  std::vector<bool> keep(static_cast<std::size_t>(n * S));
  std::vector<int64_t> target(static_cast<std::size_t>(n * L));
  for (int64_t b = 0; b < n; ++b) {
    std::vector<int64_t> keys(static_cast<std::size_t>(K));
    for (int64_t i = 0; i < K; ++i) keys[static_cast<std::size_t>(i)] = i;
    for (int64_t i = 0; i < S; ++i) std::swap(keys[static_cast<std::size_t>(i)], keys[static_cast<std::size_t>(gen.randint(i, K))]);
    const int64_t len = gen.randint(3, S + 1);
    std::vector<int64_t> values(static_cast<std::size_t>(S));
    for (int64_t s = 0; s < S; ++s) {
      values[static_cast<std::size_t>(s)] = gen.randint(0, V);
      keep[static_cast<std::size_t>(b * S + s)] = s < len;
      float* row = m.data() + (b * S + s) * (K + V);
      row[keys[static_cast<std::size_t>(s)]] = 1.f;
      row[K + values[static_cast<std::size_t>(s)]] = 1.f;
    }
    for (int64_t l = 0; l < L; ++l) {
      const int64_t slot = gen.randint(0, len);
      q[static_cast<std::size_t>((b * L + l) * K + keys[static_cast<std::size_t>(slot)])] = 1.f;
      target[static_cast<std::size_t>(b * L + l)] = values[static_cast<std::size_t>(slot)];
    }
  }
  return {heed::tensor(q, {n, L, K}), heed::tensor(m, {n, S, K + V}), heed::bool_tensor(keep, {n, S}),
          heed::index_tensor(target, {n, L})};
}

}  // namespace

TEST_CASE("[learning] multihead attention: cross-attention learns key-value retrieval under key padding") {
  heed::manual_seed(18);
  heed::Generator gen(19);
  auto mha = std::make_shared<nn::MultiheadAttention>(nn::MultiheadAttentionOptions(16, 2).kdim(20).vdim(20));
  auto head = std::make_shared<nn::Linear>(16, 4);
  std::vector<Tensor> params = mha->parameters();
  for (const Tensor& p : head->parameters()) params.push_back(p);
  heed::optim::Adam opt(params, heed::optim::AdamOptions(1e-2));
  const auto logits_of = [&](const Retrieval& d, bool need_weights) {
    nn::MhaArgs args;
    args.key_padding = d.keep;
    args.need_weights = need_weights;
    return head->forward(mha->forward(d.query, d.memory, d.memory, args).output);
  };
  for (int step = 0; step < 400; ++step) {
    const Retrieval batch = make_retrieval(64, gen);
    opt.zero_grad();
    heed::cross_entropy(logits_of(batch, step % 2 == 0), batch.target).backward();  // both kernels train
    opt.step();
  }
  heed::NoGradGuard no_grad;
  const Retrieval test = make_retrieval(500, gen);
  const Tensor correct = heed::eq(heed::argmax(logits_of(test, false), -1), test.target);
  const double accuracy = heed::mean(correct.to(DType::Float32)).item();
  MESSAGE("retrieval accuracy " << accuracy << " (chance 0.25)");
  CHECK(accuracy > 0.95);
}
