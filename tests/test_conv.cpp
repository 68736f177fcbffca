// conv2d, max_pool2d, avg_pool2d and their layers: gradient checks, direct-loop references, PyTorch
// parity (tests/fixtures/make_layer_fixtures.py) and error messages.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include <heed/heed.hpp>

#include "layer_fixtures.hpp"
#include "testing.hpp"

namespace {

using heed::DType;
using heed::Size2;
using heed::Tensor;
using heed::testing::error_of;

using heed::testing::randn64;

// The definition of conv2d as six nested loops over a dense Float64 input, for comparison.
Tensor conv2d_reference(const Tensor& x, const Tensor& w, const Tensor& b, Size2 s, Size2 p, Size2 d) {
  const auto xs = x.shape(), ws = w.shape();
  const int64_t N = xs[0], C = xs[1], H = xs[2], W = xs[3], O = ws[0], KH = ws[2], KW = ws[3];
  const int64_t OH = heed::conv_output_size(H, KH, s.h, p.h, d.h), OW = heed::conv_output_size(W, KW, s.w, p.w, d.w);
  const std::vector<double> xv = x.to_vector<double>(), wv = w.to_vector<double>();
  const std::vector<double> bv = b.defined() ? b.to_vector<double>() : std::vector<double>(O, 0.0);
  std::vector<double> y(N * O * OH * OW, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = bv[o];
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < KH; ++i)
              for (int64_t j = 0; j < KW; ++j) {
                const int64_t ih = oh * s.h - p.h + i * d.h, iw = ow * s.w - p.w + j * d.w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                acc += wv[((o * C + c) * KH + i) * KW + j] * xv[((n * C + c) * H + ih) * W + iw];
              }
          y[((n * O + o) * OH + oh) * OW + ow] = acc;
        }
  return heed::tensor(y, {N, O, OH, OW}, DType::Float64);
}

struct ConvCase {
  const char* name;
  heed::Shape input, weight;
  Size2 stride, padding, dilation;
  bool bias;
};

const std::vector<ConvCase> conv_cases = {
    {"3x3", {2, 3, 5, 4}, {4, 3, 3, 3}, 1, 0, 1, true},
    {"3x3 padding 1", {2, 2, 5, 5}, {3, 2, 3, 3}, 1, 1, 1, true},
    {"stride 2 padding 1", {1, 2, 7, 6}, {2, 2, 3, 3}, 2, 1, 1, true},
    {"dilation 2", {1, 2, 7, 7}, {2, 2, 3, 3}, 1, 1, 2, true},
    {"asymmetric kernel, stride, padding, dilation", {2, 2, 7, 8}, {3, 2, 3, 2}, {2, 1}, {1, 0}, {1, 2}, true},
    {"no bias", {1, 3, 4, 4}, {2, 3, 2, 2}, 1, 0, 1, false},
    {"1x1 (no im2col)", {2, 4, 3, 3}, {2, 4, 1, 1}, 1, 0, 1, true},
    {"1x1 stride 2", {1, 3, 5, 5}, {2, 3, 1, 1}, 2, 0, 1, true},
    {"kernel equals padded input", {1, 1, 2, 3}, {1, 1, 4, 5}, 1, 1, 1, true},
};

}  // namespace

TEST_CASE("conv2d: matches the direct definition") {
  heed::manual_seed(11);
  for (const ConvCase& c : conv_cases) {
    CAPTURE(c.name);
    Tensor x = heed::randn(c.input, DType::Float64), w = heed::randn(c.weight, DType::Float64);
    Tensor b = c.bias ? heed::randn({c.weight[0]}, DType::Float64) : Tensor();
    Tensor y = heed::conv2d(x, w, b, c.stride, c.padding, c.dilation);
    Tensor want = conv2d_reference(x, w, b, c.stride, c.padding, c.dilation);
    REQUIRE(y.shape() == want.shape());
    CHECK(heed::max_abs_diff(y, want) < 1e-12);
    // Float32 runs the same kernel through sgemm.
    Tensor y32 = heed::conv2d(x.to(DType::Float32), w.to(DType::Float32), b.defined() ? b.to(DType::Float32) : b,
                              c.stride, c.padding, c.dilation);
    CHECK(heed::allclose(y32.to(DType::Float64), want, 1e-4, 1e-4));
  }
}

TEST_CASE("conv2d: gradcheck for input, weight and bias with padding, stride and dilation") {
  heed::manual_seed(12);
  for (const ConvCase& c : conv_cases) {
    CAPTURE(c.name);
    Tensor x = randn64(c.input), w = randn64(c.weight);
    Tensor b = c.bias ? randn64({c.weight[0]}) : Tensor();
    auto r = heed::gradcheck(
        [&](const std::vector<Tensor>& in) {
          return heed::conv2d(in[0], in[1], in[2], c.stride, c.padding, c.dilation);
        },
        {x, w, b});
    CHECK_MESSAGE(r.ok, r.report);
  }
}

TEST_CASE("conv2d: a non-contiguous input and an input that needs no gradient") {
  heed::manual_seed(13);
  Tensor base = randn64({2, 3, 5, 4});
  Tensor w = randn64({2, 4, 3, 3});
  // base.transpose(1, 3) is (2, 4, 5, 3): strided, not dense.
  auto r = heed::gradcheck(
      [](const std::vector<Tensor>& in) { return heed::conv2d(in[0].transpose(1, 3), in[1], Tensor(), 1, 1); },
      {base, w});
  CHECK_MESSAGE(r.ok, r.report);

  Tensor x = heed::randn({1, 4, 5, 3}, DType::Float64);  // no requires_grad: only the weight gets a gradient
  heed::sum(heed::conv2d(x, w)).backward();
  CHECK(w.grad().defined());
  CHECK_FALSE(x.grad().defined());
}

TEST_CASE("conv2d: errors name the op and the shapes") {
  Tensor x = heed::randn({1, 3, 5, 5});
  std::string m = error_of([&] { heed::conv2d(x, heed::randn({2, 4, 3, 3})); });
  CHECK(m.find("conv2d") != std::string::npos);
  CHECK(m.find("[1, 3, 5, 5]") != std::string::npos);
  CHECK(m.find("[2, 4, 3, 3]") != std::string::npos);
  m = error_of([&] { heed::conv2d(x, heed::randn({2, 3, 7, 7})); });
  CHECK(m.find("does not fit") != std::string::npos);
  m = error_of([&] { heed::conv2d(heed::randn({3, 5, 5}), heed::randn({2, 3, 3, 3})); });
  CHECK(m.find("(N, C, H, W)") != std::string::npos);
  m = error_of([&] { heed::conv2d(x, heed::randn({2, 3, 3, 3}), heed::randn({3})); });
  CHECK(m.find("bias") != std::string::npos);
  m = error_of([&] { heed::conv2d(x, heed::randn({2, 3, 3, 3}), Tensor(), 0); });
  CHECK(m.find("stride") != std::string::npos);
  m = error_of([&] { heed::conv2d(x, heed::randn({2, 3, 3, 3}, DType::Float64)); });
  CHECK(m.find("Float64") != std::string::npos);
}

TEST_CASE("max_pool2d (conv family): values, gradient to the first maximum, padding as -inf") {
  // 1 x 1 x 4 x 4 with a tie in the top-left window (5 at (0,1) and (1,0)).
  Tensor x = heed::tensor({1, 5, 2, 0,  //
                           5, 3, 4, 8,  //
                           0, 1, 9, 2,  //
                           6, 2, 2, 7},
                          {1, 1, 4, 4}, DType::Float64)
                 .requires_grad_();
  Tensor y = heed::max_pool2d(x, 2);
  CHECK(heed::allclose(y, heed::tensor({5, 8, 6, 9}, {1, 1, 2, 2}, DType::Float64)));
  heed::sum(y * heed::tensor({1, 2, 3, 4}, {1, 1, 2, 2}, DType::Float64)).backward();
  CHECK(heed::allclose(x.grad(), heed::tensor({0, 1, 0, 0,  //
                                                0, 0, 0, 2,  //
                                                0, 0, 4, 0,  //
                                                3, 0, 0, 0},
                                               {1, 1, 4, 4}, DType::Float64)));
  // All-negative input with padding 1: the padding never wins.
  Tensor neg = heed::full({1, 1, 3, 3}, -2.0, DType::Float64);
  Tensor yp = heed::max_pool2d(neg, 3, Size2(1), 1);
  CHECK(yp.shape() == heed::Shape{1, 1, 3, 3});
  CHECK(heed::allclose(yp, heed::full({1, 1, 3, 3}, -2.0, DType::Float64)));
}

TEST_CASE("max_pool2d and avg_pool2d (conv family): gradcheck with stride and padding") {
  heed::manual_seed(14);
  struct PoolCase {
    const char* name;
    heed::Shape input;
    Size2 kernel;
    std::optional<Size2> stride;
    Size2 padding;
  };
  const std::vector<PoolCase> cases = {
      {"2x2 default stride", {2, 3, 4, 6}, 2, std::nullopt, 0},
      {"3x3 stride 2 padding 1", {1, 2, 7, 7}, 3, Size2(2), 1},
      {"overlapping 3x3 stride 1", {1, 2, 5, 5}, 3, Size2(1), 0},
      {"asymmetric", {1, 2, 6, 7}, {3, 2}, Size2{2, 1}, {1, 0}},
      {"unbatched (C, H, W)", {3, 5, 5}, 2, Size2(2), 1},
  };
  for (const PoolCase& c : cases) {
    CAPTURE(c.name);
    Tensor x = randn64(c.input);
    auto rmax = heed::gradcheck(
        [&](const std::vector<Tensor>& in) { return heed::max_pool2d(in[0], c.kernel, c.stride, c.padding); }, {x});
    CHECK_MESSAGE(rmax.ok, rmax.report);
    for (bool include_pad : {true, false}) {
      auto ravg = heed::gradcheck(
          [&](const std::vector<Tensor>& in) {
            return heed::avg_pool2d(in[0], c.kernel, c.stride, c.padding, include_pad);
          },
          {x});
      CHECK_MESSAGE(ravg.ok, ravg.report);
    }
  }
}

TEST_CASE("avg_pool2d (conv family): padded zeros count by default, not with count_include_pad = false") {
  Tensor x = heed::ones({1, 1, 2, 2}, DType::Float64);
  // kernel 2, stride 1, padding 1: the corner windows hold one real element out of four.
  Tensor with_pad = heed::avg_pool2d(x, 2, Size2(1), 1);
  CHECK(heed::allclose(with_pad, heed::tensor({0.25, 0.5, 0.25, 0.5, 1.0, 0.5, 0.25, 0.5, 0.25}, {1, 1, 3, 3},
                                              DType::Float64)));
  Tensor without = heed::avg_pool2d(x, 2, Size2(1), 1, false);
  CHECK(heed::allclose(without, heed::ones({1, 1, 3, 3}, DType::Float64)));
}

TEST_CASE("pooling (conv family): errors name the op and the shapes") {
  Tensor x = heed::randn({1, 1, 4, 4});
  CHECK_THROWS_WITH_AS(heed::max_pool2d(x, 2, std::nullopt, 2),
                       doctest::Contains("max_pool2d: padding (2, 2) must be non-negative and at most half the kernel"),
                       heed::Error);
  CHECK_THROWS_WITH_AS(heed::avg_pool2d(x, 5), doctest::Contains("avg_pool2d: kernel (5, 5)"), heed::Error);
  CHECK_THROWS_WITH_AS(heed::max_pool2d(heed::randn({4, 4}), 2), doctest::Contains("got shape [4, 4]"), heed::Error);
}

TEST_CASE("Conv2d, MaxPool2d, AvgPool2d layers (conv family): options, parameters, printing, gradcheck") {
  heed::manual_seed(15);
  heed::nn::Conv2d conv(heed::nn::Conv2dOptions(3, 4, {3, 2}).stride(2).padding({1, 0}).dilation(1).bias(true));
  CHECK(conv.weight.shape() == heed::Shape{4, 3, 3, 2});
  CHECK(conv.bias.shape() == heed::Shape{4});
  CHECK(conv.num_parameters() == 4 * 3 * 3 * 2 + 4);
  CHECK(conv.to_string() == "Conv2d(3, 4, kernel_size=(3, 2), stride=(2, 2), padding=(1, 0))");
  // PyTorch's init: every weight and bias inside +-1/sqrt(fan_in), fan_in = 3 * 3 * 2.
  const double bound = 1.0 / std::sqrt(18.0);
  for (double v : conv.weight.to_vector<double>()) CHECK(std::fabs(v) <= bound);
  for (double v : conv.bias.to_vector<double>()) CHECK(std::fabs(v) <= bound);

  heed::nn::Conv2d plain(2, 3, 3);
  CHECK(plain.options.stride() == Size2(1));
  CHECK(plain.to_string() == "Conv2d(2, 3, kernel_size=(3, 3), stride=(1, 1))");
  heed::nn::Conv2d nobias(heed::nn::Conv2dOptions(2, 3, 1).bias(false).dilation(2));
  CHECK_FALSE(nobias.bias.defined());
  CHECK(nobias.named_parameters().size() == 1);
  CHECK(nobias.to_string() == "Conv2d(2, 3, kernel_size=(1, 1), stride=(1, 1), dilation=(2, 2), bias=False)");

  heed::nn::MaxPool2d maxpool(heed::nn::MaxPool2dOptions(3).stride(2).padding(1));
  heed::nn::AvgPool2d avgpool(2);
  CHECK(avgpool.options.stride() == Size2(2));
  CHECK(maxpool.to_string() == "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=False)");
  CHECK(avgpool.to_string() == "AvgPool2d(kernel_size=2, stride=2, padding=0)");
  CHECK(maxpool.num_parameters() == 0);

  conv.to(DType::Float64);
  Tensor x = randn64({2, 3, 6, 5});
  auto r = heed::gradcheck([&](const std::vector<Tensor>& in) { return conv(in[0]); }, {x, conv.weight, conv.bias});
  CHECK_MESSAGE(r.ok, r.report);
  auto rm = heed::gradcheck([&](const std::vector<Tensor>& in) { return maxpool(in[0]); }, {x});
  CHECK_MESSAGE(rm.ok, rm.report);
  auto ra = heed::gradcheck([&](const std::vector<Tensor>& in) { return avgpool(in[0]); }, {x});
  CHECK_MESSAGE(ra.ok, ra.report);
}

TEST_CASE("conv layers match PyTorch on the same weights") {
  SUBCASE("Conv2d 3x3 padding 1") {
    heed::nn::Conv2d m(heed::nn::Conv2dOptions(3, 4, 3).padding(1));
    layer_fixtures::check_against_pytorch(m, "conv2d");
  }
  SUBCASE("Conv2d with asymmetric stride, padding and dilation") {
    heed::nn::Conv2d m(heed::nn::Conv2dOptions(3, 4, {3, 2}).stride({2, 1}).padding({1, 0}).dilation({1, 2}));
    layer_fixtures::check_against_pytorch(m, "conv2d_strided");
  }
  SUBCASE("Conv2d 1x1 without bias") {
    heed::nn::Conv2d m(heed::nn::Conv2dOptions(4, 2, 1).bias(false));
    layer_fixtures::check_against_pytorch(m, "conv2d_1x1");
  }
  SUBCASE("MaxPool2d 3 stride 2 padding 1") {
    heed::nn::MaxPool2d m(heed::nn::MaxPool2dOptions(3).stride(2).padding(1));
    layer_fixtures::check_against_pytorch(m, "maxpool2d");
  }
  SUBCASE("AvgPool2d 3 stride 2 padding 1") {
    heed::nn::AvgPool2d m(heed::nn::AvgPool2dOptions(3).stride(2).padding(1));
    layer_fixtures::check_against_pytorch(m, "avgpool2d");
  }
}

TEST_CASE("conv net: Sequential of Conv2d, ReLU, MaxPool2d, Flatten, Linear trains a step and summarizes") {
  heed::manual_seed(16);
  auto net = std::make_shared<heed::nn::Sequential>(std::vector<std::shared_ptr<heed::nn::Module>>{
      std::make_shared<heed::nn::Conv2d>(heed::nn::Conv2dOptions(1, 4, 3).padding(1)),
      std::make_shared<heed::nn::ReLU>(),
      std::make_shared<heed::nn::MaxPool2d>(2),
      std::make_shared<heed::nn::Flatten>(),
      std::make_shared<heed::nn::Linear>(4 * 4 * 4, 3),
  });
  Tensor x = heed::randn({5, 1, 8, 8});
  Tensor y = (*net)(x);
  CHECK(y.shape() == heed::Shape{5, 3});
  heed::sum(y * y).backward();
  for (const auto& [name, p] : net->named_parameters()) {
    const std::string key = name;  // CAPTURE is a lambda: no structured binding in it (C++17)
    CAPTURE(key);
    REQUIRE(p.grad().defined());
    CHECK(p.grad().shape() == p.shape());
  }
  const std::string s = net->summary(x);
  CHECK(s.find("[5, 4, 8, 8]") != std::string::npos);  // conv
  CHECK(s.find("[5, 4, 4, 4]") != std::string::npos);  // pool
  CHECK(s.find("[5, 64]") != std::string::npos);       // flatten
  CHECK(s.find("[5, 3]") != std::string::npos);        // linear
  CHECK(s.find(fmt::format("Total params: {}", 4 * 9 + 4 + 64 * 3 + 3)) != std::string::npos);
}
