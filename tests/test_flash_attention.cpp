// flash_attention (docs/attention-spec.md M11): the blockwise kernel against the naive one, forward and every
// gradient (q, k, v, bias), on random shapes that cross block boundaries, with keep-masks, additive
// biases, L != S (both ways), both causal alignments and fully masked rows; float64 to 1e-12 and
// float32 to 1e-5 (normwise relative error); gradchecks of the op itself; errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <heed/heed.hpp>
#include <vector>

#include "heed/nn/attention.hpp"
#include "testing.hpp"

namespace {

using heed::DType;
using heed::Shape;
using heed::Tensor;
namespace nn = heed::nn;

// max |a - b| / max(max |b|, 1e-30): normwise relative error.
double rel_error(const Tensor& a, const Tensor& b) {
  REQUIRE(a.defined());
  REQUIRE(b.defined());
  REQUIRE(a.shape() == b.shape());
  const std::vector<double> x = a.to_vector<double>(), y = b.to_vector<double>();
  double diff = 0.0, scale = 1e-30;
  for (std::size_t i = 0; i < x.size(); ++i) {
    REQUIRE_MESSAGE(std::isfinite(x[i]), "non-finite value at " << i);
    diff = std::max(diff, std::abs(x[i] - y[i]));
    scale = std::max(scale, std::abs(y[i]));
  }
  return diff / scale;
}

struct Case {
  Shape batch;
  int64_t L, S, E, Ev;
  bool causal = false, bottom_right = true;
  bool mask = false, bias = false, mask_per_row = true;
};

// Runs both kernels on the same inputs with the same upstream gradient and compares everything.
void compare_kernels(const Case& c, DType dtype, double tol) {
  CAPTURE(heed::shape_str(c.batch));
  CAPTURE(c.L);
  CAPTURE(c.S);
  CAPTURE(c.causal);
  CAPTURE(c.bottom_right);
  CAPTURE(c.mask);
  CAPTURE(c.bias);
  auto with = [&](int64_t a, int64_t b) {
    Shape s = c.batch;
    s.push_back(a);
    s.push_back(b);
    return s;
  };
  const Tensor q0 = heed::randn(with(c.L, c.E), dtype), k0 = heed::randn(with(c.S, c.E), dtype),
               v0 = heed::randn(with(c.S, c.Ev), dtype), probe = heed::randn(with(c.L, c.Ev), dtype);
  Tensor keep, bias0;
  if (c.mask) {
    // per-row random mask (with some fully masked rows), or a key-padding-like (batch..., 1, S) mask
    keep = heed::lt(heed::rand(c.mask_per_row ? with(c.L, c.S) : with(1, c.S), DType::Float64), 0.7);
  }
  if (c.bias) bias0 = heed::randn({c.L, c.S}, dtype);  // broadcast over the batch

  struct Result {
    Tensor out, dq, dk, dv, dbias;
  };
  auto run = [&](nn::AttentionKernel kernel) {
    Tensor q = q0.clone().requires_grad_(), k = k0.clone().requires_grad_(), v = v0.clone().requires_grad_();
    Tensor bias = c.bias ? bias0.clone().requires_grad_() : Tensor();
    nn::SdpaOptions opt;
    opt.causal(c.causal, c.bottom_right).kernel(kernel);
    Tensor out = nn::scaled_dot_product_attention(q, k, v, keep, bias, opt).output;
    heed::sum(out * probe).backward();
    return Result{out.detach(), q.grad(), k.grad(), v.grad(), c.bias ? bias.grad() : Tensor()};
  };
  const Result naive = run(nn::AttentionKernel::Naive), flash = run(nn::AttentionKernel::Flash);
  CHECK(rel_error(flash.out, naive.out) <= tol);
  CHECK(rel_error(flash.dq, naive.dq) <= tol);
  CHECK(rel_error(flash.dk, naive.dk) <= tol);
  CHECK(rel_error(flash.dv, naive.dv) <= tol);
  if (c.bias) CHECK(rel_error(flash.dbias, naive.dbias) <= tol);
}

std::vector<Case> random_cases() {
  return {
      {{2, 3}, 7, 7, 8, 8},                                // one block each way
      {{2}, 150, 300, 16, 12},                             // L != S, several blocks, Ev != E
      {{1, 2}, 200, 70, 8, 8, true, true},                 // L > S, causal bottom-right (top rows see nothing)
      {{2}, 130, 260, 8, 4, true, false, true},            // causal top-left with a mask
      {{3}, 129, 129, 16, 16, true, true, true, true},     // causal + mask + bias, odd sizes
      {{2, 2}, 65, 300, 4, 8, false, true, true, true, false},  // key-padding-like mask + bias
      {{}, 1, 257, 8, 8, true, true},                      // one query row (decoding), bottom-right
      {{2}, 96, 40, 8, 8, true, false, false, true},       // L > S, causal top-left, bias
  };
}

}  // namespace

TEST_CASE("flash attention: equals the naive kernel, float64 (1e-12) and float32 (1e-5)") {
  heed::manual_seed(7);
  for (const Case& c : random_cases()) compare_kernels(c, DType::Float64, 1e-12);
  for (const Case& c : random_cases()) compare_kernels(c, DType::Float32, 1e-5);
}

TEST_CASE("flash attention: gradcheck for q, k, v and bias (masks, causal both ways, fully masked rows)") {
  heed::manual_seed(8);
  struct Small {
    int64_t L, S;
    bool causal, bottom_right, mask, bias;
  };
  for (const Small& s : {Small{3, 5, false, true, true, true}, Small{5, 3, true, true, false, true},
                         Small{4, 6, true, false, true, false}, Small{4, 4, true, true, true, true}}) {
    CAPTURE(s.L);
    CAPTURE(s.S);
    CAPTURE(s.causal);
    CAPTURE(s.bottom_right);
    Tensor q = heed::randn({2, s.L, 3}, DType::Float64).requires_grad_();
    Tensor k = heed::randn({2, s.S, 3}, DType::Float64).requires_grad_();
    Tensor v = heed::randn({2, s.S, 2}, DType::Float64).requires_grad_();
    Tensor bias = heed::randn({s.L, s.S}, DType::Float64).requires_grad_();
    Tensor keep;
    if (s.mask) {
      std::vector<bool> m(static_cast<std::size_t>(2 * s.L * s.S));
      for (std::size_t i = 0; i < m.size(); ++i) m[i] = (i * 7 + 3) % 5 != 0;
      for (int64_t j = 0; j < s.S; ++j) m[static_cast<std::size_t>(j)] = false;  // row 0 of batch 0: fully masked
      keep = heed::bool_tensor(m, {2, s.L, s.S});
    }
    std::vector<Tensor> inputs{q, k, v};
    if (s.bias) inputs.push_back(bias);
    heed::testing::check_grad(
        [&](const std::vector<Tensor>& in) {
          return nn::flash_attention(in[0], in[1], in[2], keep, s.bias ? in[3] : Tensor(), std::nullopt, s.causal,
                                     s.bottom_right);
        },
        inputs, "flash_attention");
  }
}

TEST_CASE("flash attention: a fully masked row gives zero output and zero gradient, no NaN") {
  Tensor q = heed::randn({1, 3, 4}, DType::Float64).requires_grad_();
  Tensor k = heed::randn({1, 5, 4}, DType::Float64).requires_grad_();
  Tensor v = heed::randn({1, 5, 2}, DType::Float64).requires_grad_();
  // row 1 fully masked by the keep-mask; row 2 fully masked by -inf biases
  std::vector<bool> m(15, true);
  for (int j = 0; j < 5; ++j) m[static_cast<std::size_t>(5 + j)] = false;
  Tensor keep = heed::bool_tensor(m, {3, 5});
  Tensor bias = heed::zeros({3, 5}, DType::Float64);
  for (int j = 0; j < 5; ++j) bias.data<double>()[10 + j] = -INFINITY;
  Tensor out = nn::flash_attention(q, k, v, keep, bias);
  heed::sum(out).backward();
  const std::vector<double> o = out.to_vector<double>(), gq = q.grad().to_vector<double>();
  for (double x : o) CHECK(std::isfinite(x));
  for (int e = 0; e < 2; ++e) {
    CHECK(o[static_cast<std::size_t>(2 + e)] == 0.0);
    CHECK(o[static_cast<std::size_t>(4 + e)] == 0.0);
  }
  for (int e = 0; e < 4; ++e) {
    CHECK(gq[static_cast<std::size_t>(4 + e)] == 0.0);
    CHECK(gq[static_cast<std::size_t>(8 + e)] == 0.0);
  }
  for (double x : k.grad().to_vector<double>()) CHECK(std::isfinite(x));
  // row 0 is an ordinary softmax-weighted average: the naive kernel agrees
  Tensor naive = nn::scaled_dot_product_attention(q.detach(), k.detach(), v.detach(), keep, bias,
                                                  nn::SdpaOptions().kernel(nn::AttentionKernel::Naive))
                     .output;
  CHECK(rel_error(out.detach(), naive) <= 1e-12);
}

TEST_CASE("flash attention: reads strided views (a head split) in place and broadcasts batch axes") {
  heed::manual_seed(9);
  // (N, L, H, hd) -> (N, H, L, hd) is a non-contiguous view; k broadcast over the first batch axis
  Tensor x = heed::randn({2, 6, 3, 4}, DType::Float64);
  Tensor q = x.transpose(1, 2);
  Tensor k = heed::randn({1, 3, 7, 4}, DType::Float64), v = heed::randn({1, 3, 7, 5}, DType::Float64);
  nn::SdpaOptions naive;
  naive.kernel(nn::AttentionKernel::Naive);
  const Tensor want = nn::scaled_dot_product_attention(q, k, v, Tensor(), Tensor(), naive).output;
  const Tensor got = nn::flash_attention(q, k, v);
  CHECK(got.shape() == Shape{2, 3, 6, 5});
  CHECK(rel_error(got, want) <= 1e-12);
  Tensor kk = k.clone().requires_grad_();
  heed::testing::check_grad([&](const std::vector<Tensor>& in) { return nn::flash_attention(q, in[0], v); }, {kk},
                            "broadcast k");
}

TEST_CASE("flash attention: errors name the op and the shapes") {
  using heed::testing::error_of;
  Tensor q = heed::randn({2, 3, 4}), k = heed::randn({2, 5, 4}), v = heed::randn({2, 5, 6});
  CHECK(error_of([&] { nn::flash_attention(q, heed::randn({2, 5, 3}), v); }) ==
        "flash_attention: expected q (..., L, E), k (..., S, E), v (..., S, Ev), got q [2, 3, 4], k [2, 5, 3], v [2, 5, 6]");
  CHECK(error_of([&] { nn::flash_attention(q, k, heed::randn({2, 4, 6})); }).find("v [2, 4, 6]") != std::string::npos);
  CHECK(error_of([&] { nn::flash_attention(q, k, v, heed::ones({3, 4}, DType::Bool)); }) ==
        "flash_attention: keep_mask of shape [3, 4] does not broadcast to the scores [2, 3, 5] (q [2, 3, 4], k [2, 5, 4])");
  CHECK(error_of([&] { nn::flash_attention(q, k, v, heed::ones({3, 5})); }) ==
        "flash_attention: keep_mask must be Bool, got Float32 of shape [3, 5]");
  CHECK(error_of([&] { nn::flash_attention(q, k, v, Tensor(), heed::ones({3, 5}, DType::Float64)); }) ==
        "flash_attention: bias must have q's dtype Float32, got Float64 of shape [3, 5]");
  CHECK(error_of([&] { nn::flash_attention(q, heed::randn({3, 5, 4}), v); })
            .find("flash_attention") != std::string::npos);
  CHECK(error_of([&] { nn::flash_attention(q, k.to(DType::Float64), v); })
            .find("must share one float dtype") != std::string::npos);
}

TEST_CASE("flash attention: heed::nn::flash_attention is the op heed::flash_attention (heed/ops/attention.hpp)") {
  CHECK((&nn::flash_attention == &heed::flash_attention));
}
