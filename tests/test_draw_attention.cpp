// DRAW read/write attention (docs/attention-spec.md M7): the filterbank against a hand loop in both index
// conventions, the spec's identity filterbank, write∘read round trips on a patch, gradient checks of
// read and write w.r.t. all five parameters, the images, the patch and the layers' weights, the boxes,
// and errors.
#include <doctest/doctest.h>

#include <cmath>
#include <heed/heed.hpp>
#include <vector>

#include "heed/nn/draw_attention.hpp"
#include "testing.hpp"

namespace {

using heed::DType;
using heed::Tensor;
namespace nn = heed::nn;
using heed::testing::check_grad;

// F[i, a] from the header's equations, by hand, for one example.
std::vector<double> filter_by_hand(double g_tilde, double log_sigma2, double log_delta, int64_t n, int64_t size,
                                   int64_t longest, bool one_based, double eps) {
  const double g = (size + 1.0) / 2.0 * (g_tilde + 1.0);
  const double delta = (longest - 1.0) / (n - 1.0) * std::exp(log_delta), sigma2 = std::exp(log_sigma2);
  std::vector<double> f(static_cast<std::size_t>(n * size));
  for (int64_t i = 0; i < n; ++i) {
    const double idx = one_based ? i + 1.0 : static_cast<double>(i);
    const double mu = g + (idx - n / 2.0 - 0.5) * delta;
    double z = 0.0;
    for (int64_t a = 0; a < size; ++a) {
      const double pos = one_based ? a + 1.0 : static_cast<double>(a);
      f[i * size + a] = std::exp(-(pos - mu) * (pos - mu) / (2.0 * sigma2));
      z += f[i * size + a];
    }
    for (int64_t a = 0; a < size; ++a) f[i * size + a] /= z + eps;
  }
  return f;
}

}  // namespace

TEST_CASE("draw attention: filterbank equals the equations by hand, 1-based (paper) and 0-based (reference codes)") {
  const int64_t n = 3, height = 7, width = 9;
  Tensor params = heed::tensor({0.2, -0.4, -0.3, 0.1, 0.5, -0.7, 0.3, 0.4, -0.2, -0.1}, {2, 5}, DType::Float64);
  const auto p = params.to_vector<double>();
  for (bool one_based : {true, false}) {
    CAPTURE(one_based);
    auto bank = nn::draw_filterbank(
        params, n, height, width,
        nn::DrawFilterbankOptions().indexing(one_based ? nn::DrawIndexing::OneBased : nn::DrawIndexing::ZeroBased));
    REQUIRE(bank.fx.shape() == heed::Shape{2, n, width});
    REQUIRE(bank.fy.shape() == heed::Shape{2, n, height});
    const auto fx = bank.fx.to_vector<double>(), fy = bank.fy.to_vector<double>();
    for (int64_t b = 0; b < 2; ++b) {
      const double* q = &p[b * 5];
      const auto want_x = filter_by_hand(q[0], q[2], q[3], n, width, width, one_based, 1e-8);
      const auto want_y = filter_by_hand(q[1], q[2], q[3], n, height, width, one_based, 1e-8);
      for (std::size_t k = 0; k < want_x.size(); ++k)
        CHECK(fx[b * n * width + k] == doctest::Approx(want_x[k]).epsilon(1e-12));
      for (std::size_t k = 0; k < want_y.size(); ++k)
        CHECK(fy[b * n * height + k] == doctest::Approx(want_y[k]).epsilon(1e-12));
    }
    heed::testing::check_values(bank.gamma, {2, 1}, {std::exp(0.5), std::exp(-0.1)}, 1e-12);
  }
}

TEST_CASE("draw attention: identity filterbank (N = A = B, delta = 1, sigma^2 = 0.01, centred) reads x back") {
  const int64_t size = 6;
  // g̃ = 0 (centre), log σ² = log 0.01, log δ̃ = 0 (δ = (A-1)/(N-1) = 1), log γ = 0.
  Tensor params = heed::tensor({0.0, 0.0, std::log(0.01), 0.0, 0.0}, {1, 5}, DType::Float64);
  // Neighbours weigh exp(-1 / (2 * 0.01)) = 2e-22 and Z = 1 + eps, so F is I / (1 + eps): exact with eps = 0,
  // within 1e-8 with the default guard.
  heed::manual_seed(2);
  Tensor x = heed::rand({1, size, size}, DType::Float64);
  for (double eps : {0.0, 1e-8}) {
    CAPTURE(eps);
    const double tol = eps + 1e-14;
    auto exact = nn::draw_filterbank(params, size, size, size, nn::DrawFilterbankOptions().eps(eps));
    CHECK(heed::max_abs_diff(heed::select(exact.fx, 0, 0), heed::eye(size, DType::Float64)) < tol);
    CHECK(heed::max_abs_diff(heed::select(exact.fy, 0, 0), heed::eye(size, DType::Float64)) < tol);
    CHECK(heed::max_abs_diff(nn::draw_read(x, exact), x) < 2 * tol);
    CHECK(heed::max_abs_diff(nn::draw_write(x, exact), x) < 2 * tol);
  }
  auto bank = nn::draw_filterbank(params, size, size, size);
  // With δ = 1 the references' 0-based form gives the same filters (both sides shift by one).
  auto zero_based = nn::draw_filterbank(params, size, size, size,
                                        nn::DrawFilterbankOptions().indexing(nn::DrawIndexing::ZeroBased));
  CHECK(heed::max_abs_diff(zero_based.fx, bank.fx) < 1e-12);
}

TEST_CASE("draw attention: write(read(x)) returns a patch-supported image; read(write(w)) returns w") {
  // A 4 x 4 patch of a 10 x 12 image at rows 3..6, columns 5..8 (0-based). A 4 x 4 grid with stride 1 and
  // small σ centred on it: 1-based centre g = (top + bottom)/2 + 1, i.e. g̃ = 2 g / (size + 1) - 1.
  const int64_t height = 10, width = 12, n = 4;
  const double gy = (3 + 6) / 2.0 + 1.0, gx = (5 + 8) / 2.0 + 1.0;
  const double log_delta = std::log((n - 1.0) / (width - 1.0));  // δ = 1
  Tensor params = heed::tensor({2 * gx / (width + 1.0) - 1, 2 * gy / (height + 1.0) - 1, std::log(0.01), log_delta,
                                std::log(1.7)},
                               {1, 5}, DType::Float64);
  auto bank = nn::draw_filterbank(params, n, height, width, nn::DrawFilterbankOptions().eps(0.0));
  heed::manual_seed(3);
  Tensor patch = heed::rand({1, n, n}, DType::Float64) + 0.5;
  Tensor x = heed::pad(patch, {5, width - 9, 3, height - 7});  // the patch inside zeros
  REQUIRE(x.shape() == heed::Shape{1, height, width});
  Tensor glimpse = nn::draw_read(x, bank);
  CHECK(heed::max_abs_diff(glimpse, patch * 1.7) < 1e-9);  // γ = 1.7 scales the read...
  CHECK(heed::max_abs_diff(nn::draw_write(glimpse, bank), x) < 1e-9);  // ...and 1/γ undoes it on write
  CHECK(heed::max_abs_diff(nn::draw_read(nn::draw_write(patch, bank), bank), patch) < 1e-9);

  const auto boxes = nn::draw_boxes(bank);
  REQUIRE(boxes.size() == 1);
  CHECK(boxes[0].center_x == doctest::Approx(6.5));
  CHECK(boxes[0].center_y == doctest::Approx(4.5));
  CHECK(boxes[0].stride == doctest::Approx(1.0));
  CHECK(boxes[0].size == doctest::Approx(4.0));  // left edge 4.5 = pixel 5's left edge
  CHECK(boxes[0].sigma == doctest::Approx(0.1));
  CHECK(boxes[0].gamma == doctest::Approx(1.7));
  // With δ = 2 the paper's grid stays centred at g - 1 (0-based pixels), the references' moves to g - δ.
  params = heed::tensor({2 * gx / (width + 1.0) - 1, 2 * gy / (height + 1.0) - 1, 0.0, log_delta + std::log(2.0), 0.0},
                        {1, 5}, DType::Float64);
  const auto paper = nn::draw_boxes(nn::draw_filterbank(params, n, height, width));
  const auto moved = nn::draw_boxes(nn::draw_filterbank(
      params, n, height, width, nn::DrawFilterbankOptions().indexing(nn::DrawIndexing::ZeroBased)));
  CHECK(paper[0].center_x == doctest::Approx(6.5));
  CHECK(paper[0].size == doctest::Approx(8.0));
  CHECK(moved[0].center_x == doctest::Approx(5.5));
  CHECK(moved[0].center_y == doctest::Approx(3.5));
  CHECK(moved[0].stride == doctest::Approx(2.0));
}

TEST_CASE("draw attention: gradcheck of read and write w.r.t. the five parameters, the images and the patch") {
  heed::manual_seed(11);
  const int64_t batch = 2, height = 5, width = 6;
  // Moderate parameters: σ² ≈ 1, δ ≈ 1, the grid inside the image, so every filter is smooth.
  Tensor params = (heed::rand({batch, 5}, DType::Float64) - 0.5) * 0.8;
  params.requires_grad_();
  Tensor x = heed::rand({batch, height, width}, DType::Float64).requires_grad_();
  Tensor x_hat = heed::randn({batch, height, width}, DType::Float64).requires_grad_();
  for (auto indexing : {nn::DrawIndexing::OneBased, nn::DrawIndexing::ZeroBased}) {
    const auto options = nn::DrawFilterbankOptions().indexing(indexing);
    CAPTURE(indexing == nn::DrawIndexing::OneBased);
    check_grad(
        [&](const std::vector<Tensor>& in) {
          auto bank = nn::draw_filterbank(in[0], 3, height, width, options);
          return heed::concat({heed::flatten(nn::draw_read(in[1], bank)), heed::flatten(nn::draw_read(in[2], bank))});
        },
        {params, x, x_hat}, "read, N = 3");
    for (int64_t n : {2, 1}) {
      Tensor w = heed::randn({batch, n * n}, DType::Float64).requires_grad_();
      check_grad(
          [&](const std::vector<Tensor>& in) {
            return nn::draw_write(in[1], nn::draw_filterbank(in[0], n, height, width, options));
          },
          {params, w}, fmt::format("write, N = {}", n));
    }
  }
}

TEST_CASE("draw attention: DrawRead and DrawWrite layers: names, shapes, gradcheck of every weight") {
  heed::manual_seed(5);
  const int64_t batch = 2, hidden = 3, height = 4, width = 5;
  nn::DrawRead read(nn::DrawAttentionOptions(hidden, 2, height, width));
  nn::DrawWrite write(nn::DrawAttentionOptions(hidden, 3, height, width));
  const auto read_names = read.named_parameters(), write_names = write.named_parameters();
  REQUIRE(read_names.size() == 2);
  CHECK(read_names[0].first == "params.weight");
  CHECK(read_names[0].second.shape() == heed::Shape{5, hidden});
  REQUIRE(write_names.size() == 4);
  CHECK(write_names[2].first == "patch.weight");
  CHECK(write_names[2].second.shape() == heed::Shape{9, hidden});
  CHECK(read.extra_repr() == "hidden_size=3, N=2, height=4, width=5");

  read.to(DType::Float64);
  write.to(DType::Float64);
  Tensor x = heed::rand({batch, height, width}, DType::Float64).requires_grad_();
  Tensor x_hat = heed::randn({batch, height, width}, DType::Float64).requires_grad_();
  Tensor h = heed::randn({batch, hidden}, DType::Float64).requires_grad_();
  auto out = read.forward(x, x_hat, h);
  CHECK(out.glimpse.shape() == heed::Shape{batch, 8});
  std::vector<Tensor> inputs{x, x_hat, h};
  for (const Tensor& p : read.parameters()) inputs.push_back(p);
  check_grad([&](const std::vector<Tensor>& in) { return read.forward(in[0], in[1], in[2]).glimpse; }, inputs,
             "DrawRead");
  std::vector<Tensor> write_inputs{h};
  for (const Tensor& p : write.parameters()) write_inputs.push_back(p);
  check_grad([&](const std::vector<Tensor>& in) { return write.forward_write(in[0]).canvas_update; }, write_inputs,
             "DrawWrite");
  CHECK(write(h).shape() == heed::Shape{batch, height, width});
}

TEST_CASE("draw attention: a grid far outside the image gives zero filters, not NaN") {
  Tensor params = heed::tensor({40.0, -40.0, std::log(0.01), 0.0, 0.0}, {1, 5}, DType::Float64);
  auto bank = nn::draw_filterbank(params, 3, 8, 8);
  for (double v : bank.fx.to_vector<double>()) CHECK(v == 0.0);
  for (double v : nn::draw_read(heed::ones({1, 8, 8}, DType::Float64), bank).to_vector<double>()) CHECK(v == 0.0);
}

TEST_CASE("draw attention: errors name the op and the shapes") {
  using heed::testing::error_of;
  Tensor params = heed::zeros({2, 5});
  CHECK(error_of([&] { nn::draw_filterbank(heed::zeros({2, 4}), 3, 8, 8); }).find("(batch, 5)") != std::string::npos);
  CHECK(error_of([&] { nn::draw_filterbank(heed::zeros({2, 5}, DType::Int64), 3, 8, 8); }).find("Int64") !=
        std::string::npos);
  CHECK(error_of([&] { nn::draw_filterbank(params, 0, 8, 8); }).find("N=0") != std::string::npos);
  auto bank = nn::draw_filterbank(params, 3, 8, 10);
  CHECK(error_of([&] { nn::draw_read(heed::zeros({2, 10, 8}), bank); }) ==
        "draw_read: image has shape [2, 10, 8], expected (batch, height, width) = [2, 8, 10] for an N=3 filterbank");
  CHECK(error_of([&] { nn::draw_read(heed::zeros({3, 8, 10}), bank); }).find("[3, 8, 10]") != std::string::npos);
  CHECK(error_of([&] { nn::draw_read(heed::zeros({2, 8, 10}, DType::Float64), bank); }).find("Float64") !=
        std::string::npos);
  CHECK(error_of([&] { nn::draw_write(heed::zeros({2, 4, 4}), bank); }) ==
        "draw_write: patch has shape [2, 4, 4], expected [2, 3, 3] or [2, 9] for an N=3 filterbank");
  CHECK(error_of([&] { nn::draw_read(heed::zeros({2, 8, 10}), nn::DrawFilterbank{}); }).find("empty") !=
        std::string::npos);
  nn::DrawRead read(nn::DrawAttentionOptions(4, 2, 8, 10));
  CHECK(error_of([&] { read.forward(heed::zeros({2, 8, 10}), heed::zeros({2, 8, 10}), heed::zeros({2, 5})); })
            .find("DrawRead(hidden_size=4): decoder state has shape [2, 5]") != std::string::npos);
  CHECK(error_of([&] { read.forward(heed::zeros({2, 8, 10}), heed::zeros({2, 8, 9}), heed::zeros({2, 4})); })
            .find("same shape") != std::string::npos);
  CHECK(error_of([&] { read.forward(heed::zeros({2, 10, 8}), heed::zeros({2, 10, 8}), heed::zeros({2, 4})); })
            .find("[2, 10, 8]") != std::string::npos);
  CHECK_THROWS_AS(nn::DrawWrite(nn::DrawAttentionOptions(4, 0, 8, 8)), heed::Error);
  CHECK_THROWS_AS(read(heed::zeros({2, 4})), heed::Error);
}
