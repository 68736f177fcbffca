// tests/test_init.cpp — heed::init against torch.nn.init's formulas: gains, fans, bounds and empirical
// moments on large tensors, orthogonality (and PyTorch's sign convention), determinism, errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include <heed/heed.hpp>

#include "testing.hpp"

namespace {

struct Moments {
  double mean = 0, std = 0, min = 0, max = 0;
};

Moments moments(const heed::Tensor& t) {
  const std::vector<double> v = t.to_vector<double>();
  Moments m;
  m.min = *std::min_element(v.begin(), v.end());
  m.max = *std::max_element(v.begin(), v.end());
  for (double x : v) m.mean += x;
  m.mean /= static_cast<double>(v.size());
  for (double x : v) m.std += (x - m.mean) * (x - m.mean);
  m.std = std::sqrt(m.std / static_cast<double>(v.size() - 1));
  return m;
}

// Rows x cols matrix product of row-major buffers: (n x k) * (k x m).
std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b, int64_t n, int64_t k,
                           int64_t m) {
  std::vector<double> c(static_cast<std::size_t>(n * m), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < m; ++j) c[i * m + j] += a[i * k + p] * b[p * m + j];
  return c;
}

std::vector<double> transposed(const std::vector<double>& a, int64_t rows, int64_t cols) {
  std::vector<double> t(a.size());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) t[j * rows + i] = a[i * cols + j];
  return t;
}

// max |M - scale * I| for an n x n row-major M.
double distance_from_identity(const std::vector<double>& m, int64_t n, double scale = 1.0) {
  double worst = 0.0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < n; ++j) worst = std::max(worst, std::fabs(m[i * n + j] - (i == j ? scale : 0.0)));
  return worst;
}

using heed::testing::error_of;

}  // namespace

TEST_CASE("init: calculate_gain matches torch.nn.init.calculate_gain") {
  using heed::init::calculate_gain;
  CHECK(calculate_gain("linear") == 1.0);
  CHECK(calculate_gain("conv2d") == 1.0);
  CHECK(calculate_gain("conv_transpose1d") == 1.0);
  CHECK(calculate_gain("sigmoid") == 1.0);
  CHECK(calculate_gain("tanh") == doctest::Approx(5.0 / 3.0).epsilon(1e-15));
  CHECK(calculate_gain("relu") == doctest::Approx(std::sqrt(2.0)).epsilon(1e-15));
  CHECK(calculate_gain("selu") == 0.75);
  // leaky_relu: sqrt(2 / (1 + slope^2)); PyTorch's default slope is 0.01.
  CHECK(calculate_gain("leaky_relu") == doctest::Approx(std::sqrt(2.0 / 1.0001)).epsilon(1e-15));
  CHECK(calculate_gain("leaky_relu", 0.2) == doctest::Approx(std::sqrt(2.0 / 1.04)).epsilon(1e-15));
  CHECK(calculate_gain("leaky_relu", 0.0) == doctest::Approx(std::sqrt(2.0)).epsilon(1e-15));
  // a = sqrt(5) is what torch.nn.Linear passes to kaiming_uniform_: gain sqrt(1/3).
  CHECK(calculate_gain("leaky_relu", std::sqrt(5.0)) == doctest::Approx(std::sqrt(1.0 / 3.0)).epsilon(1e-15));
  const std::string msg = error_of([] { heed::init::calculate_gain("swish"); });
  CHECK(msg.find("calculate_gain") != std::string::npos);
  CHECK(msg.find("swish") != std::string::npos);
}

TEST_CASE("init: fan_in_and_fan_out follows PyTorch and rejects tensors below 2-D") {
  using heed::init::fan_in_and_fan_out;
  // Linear weight (out, in).
  auto [fi, fo] = fan_in_and_fan_out(heed::empty({5, 3}));
  CHECK(fi == 3);
  CHECK(fo == 5);
  // Conv weight (out, in, kh, kw): receptive field 3*3.
  auto [cfi, cfo] = fan_in_and_fan_out(heed::empty({8, 4, 3, 3}));
  CHECK(cfi == 36);
  CHECK(cfo == 72);
  auto [c1i, c1o] = fan_in_and_fan_out(heed::empty({6, 2, 5}));
  CHECK(c1i == 10);
  CHECK(c1o == 30);

  const std::string msg = error_of([] { fan_in_and_fan_out(heed::empty({7})); });
  CHECK(msg.find("fewer than 2 dimensions") != std::string::npos);
  CHECK(msg.find("[7]") != std::string::npos);
  CHECK_THROWS_AS(fan_in_and_fan_out(heed::scalar(1.0)), heed::Error);
  // Every fan-based initializer inherits the check.
  heed::Tensor bias = heed::empty({7});
  CHECK_THROWS_AS(heed::init::xavier_uniform_(bias), heed::Error);
  CHECK_THROWS_AS(heed::init::xavier_normal_(bias), heed::Error);
  CHECK_THROWS_AS(heed::init::kaiming_uniform_(bias), heed::Error);
  CHECK_THROWS_AS(heed::init::kaiming_normal_(bias), heed::Error);
  const std::string ortho = error_of([&] { heed::init::orthogonal_(bias); });
  CHECK(ortho.find("orthogonal_") != std::string::npos);
  CHECK(ortho.find("[7]") != std::string::npos);
}

TEST_CASE("init: uniform_ and normal_ match their parameters") {
  heed::manual_seed(11);
  heed::Tensor t = heed::empty({400, 500});
  heed::init::uniform_(t, -2.0, 3.0);
  Moments u = moments(t);
  CHECK(u.min >= -2.0);
  CHECK(u.max <= 3.0);  // [low, high) in double; rounding to float may reach high
  CHECK(u.min < -1.99);
  CHECK(u.max > 2.99);
  CHECK(u.mean == doctest::Approx(0.5).epsilon(0.02));
  CHECK(u.std == doctest::Approx(5.0 / std::sqrt(12.0)).epsilon(0.01));

  heed::Tensor d = heed::empty({400, 500}, heed::DType::Float64);
  heed::init::normal_(d, 1.5, 0.25);
  Moments n = moments(d);
  CHECK(n.mean == doctest::Approx(1.5).epsilon(0.002));
  CHECK(n.std == doctest::Approx(0.25).epsilon(0.01));

  // Defaults: U[0, 1) and N(0, 1); 1-D and 0-D tensors are fine (no fans involved).
  heed::Tensor v = heed::empty({100000});
  heed::init::uniform_(v);
  Moments vu = moments(v);
  CHECK(vu.min >= 0.0);
  CHECK(vu.max <= 1.0);
  heed::init::normal_(v);
  CHECK(moments(v).std == doctest::Approx(1.0).epsilon(0.02));
  heed::Tensor s = heed::scalar(0.0, heed::DType::Float64);
  heed::init::uniform_(s, 4.0, 5.0);
  CHECK(s.item() >= 4.0);
  CHECK(s.item() < 5.0);
}

TEST_CASE("init: constant_, zeros_ and ones_") {
  heed::Tensor t = heed::randn({3, 4, 5});
  heed::init::constant_(t, 0.375);
  for (float x : t.to_vector<float>()) CHECK(x == 0.375f);
  heed::init::zeros_(t);
  for (float x : t.to_vector<float>()) CHECK(x == 0.0f);
  heed::Tensor d = heed::randn({6}, heed::DType::Float64);
  heed::init::ones_(d);
  for (double x : d.to_vector<double>()) CHECK(x == 1.0);
}

TEST_CASE("init: xavier_uniform_ and xavier_normal_") {
  heed::manual_seed(3);
  const int64_t out = 300, in = 500;
  heed::Tensor w = heed::empty({out, in});
  heed::init::xavier_uniform_(w);
  const double bound = std::sqrt(6.0 / static_cast<double>(in + out));
  Moments u = moments(w);  // Float32: allow the rounding of a value next to the bound
  CHECK(u.min >= -bound * (1 + 1e-6));
  CHECK(u.max <= bound * (1 + 1e-6));
  CHECK(u.max > 0.99 * bound);
  CHECK(u.min < -0.99 * bound);
  CHECK(u.std == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.01));
  CHECK(std::fabs(u.mean) < 0.01 * bound);

  // gain scales the bound; conv weights count the receptive field.
  heed::Tensor conv = heed::empty({64, 32, 3, 3}, heed::DType::Float64);
  heed::init::xavier_uniform_(conv, 2.0);
  const double conv_bound = 2.0 * std::sqrt(6.0 / (32.0 * 9 + 64.0 * 9));
  Moments c = moments(conv);
  CHECK(c.max <= conv_bound);
  CHECK(c.min >= -conv_bound);
  CHECK(c.max > 0.99 * conv_bound);

  heed::Tensor n = heed::empty({out, in}, heed::DType::Float64);
  heed::init::xavier_normal_(n, heed::init::calculate_gain("tanh"));
  const double std = 5.0 / 3.0 * std::sqrt(2.0 / static_cast<double>(in + out));
  Moments m = moments(n);
  CHECK(m.std == doctest::Approx(std).epsilon(0.01));
  CHECK(std::fabs(m.mean) < 0.01 * std);
}

TEST_CASE("init: kaiming_uniform_ and kaiming_normal_ (mode, nonlinearity, a)") {
  heed::manual_seed(5);
  const int64_t out = 256, in = 800;
  heed::Tensor w = heed::empty({out, in});

  // Defaults: a = 0, fan_in, leaky_relu -> gain sqrt(2), bound = sqrt(6 / fan_in).
  heed::init::kaiming_uniform_(w);
  double bound = std::sqrt(6.0 / in);
  Moments u = moments(w);  // Float32: allow the rounding of a value next to the bound
  CHECK(u.max <= bound * (1 + 1e-6));
  CHECK(u.min >= -bound * (1 + 1e-6));
  CHECK(u.max > 0.99 * bound);
  CHECK(u.std == doctest::Approx(bound / std::sqrt(3.0)).epsilon(0.01));

  // torch.nn.Linear's reset_parameters: a = sqrt(5) gives bound = 1 / sqrt(fan_in).
  heed::init::kaiming_uniform_(w, std::sqrt(5.0));
  bound = 1.0 / std::sqrt(static_cast<double>(in));
  u = moments(w);
  CHECK(u.max <= bound * (1 + 1e-6));
  CHECK(u.min >= -bound * (1 + 1e-6));
  CHECK(u.max > 0.99 * bound);

  // fan_out mode with relu on a conv weight: fan_out = 16 * 5 * 5.
  heed::Tensor conv = heed::empty({16, 300, 5, 5}, heed::DType::Float64);
  heed::init::kaiming_uniform_(conv, 0.0, heed::init::FanMode::FanOut, "relu");
  bound = std::sqrt(2.0) * std::sqrt(3.0 / (16.0 * 25));
  Moments c = moments(conv);
  CHECK(c.max <= bound);
  CHECK(c.min >= -bound);
  CHECK(c.max > 0.99 * bound);

  // kaiming_normal_: std = gain / sqrt(fan).
  heed::Tensor n = heed::empty({out, in}, heed::DType::Float64);
  heed::init::kaiming_normal_(n, 0.0, heed::init::FanMode::FanIn, "relu");
  Moments m = moments(n);
  CHECK(m.std == doctest::Approx(std::sqrt(2.0 / in)).epsilon(0.01));
  heed::init::kaiming_normal_(n, 0.0, heed::init::FanMode::FanOut, "tanh");
  CHECK(moments(n).std == doctest::Approx(5.0 / 3.0 / std::sqrt(static_cast<double>(out))).epsilon(0.01));
  heed::init::kaiming_normal_(n, 0.2);  // leaky_relu with slope 0.2
  CHECK(moments(n).std == doctest::Approx(std::sqrt(2.0 / 1.04) / std::sqrt(static_cast<double>(in))).epsilon(0.01));

  CHECK_THROWS_AS(heed::init::kaiming_normal_(n, 0.0, heed::init::FanMode::FanIn, "swish"), heed::Error);
  // A zero-element weight is left alone, as PyTorch does.
  heed::Tensor empty_weight = heed::empty({0, 4});
  heed::init::kaiming_uniform_(empty_weight);
  CHECK(empty_weight.numel() == 0);
}

TEST_CASE("init: orthogonal_ gives (semi-)orthogonal matrices") {
  heed::manual_seed(9);
  SUBCASE("wide: W W^T = I") {
    heed::Tensor w = heed::empty({4, 7}, heed::DType::Float64);
    heed::init::orthogonal_(w);
    const std::vector<double> v = w.to_vector<double>();
    CHECK(distance_from_identity(matmul(v, transposed(v, 4, 7), 4, 7, 4), 4) < 1e-12);
  }
  SUBCASE("tall: W^T W = I") {
    heed::Tensor w = heed::empty({9, 3}, heed::DType::Float64);
    heed::init::orthogonal_(w);
    const std::vector<double> v = w.to_vector<double>();
    CHECK(distance_from_identity(matmul(transposed(v, 9, 3), v, 3, 9, 3), 3) < 1e-12);
  }
  SUBCASE("square Float32 with gain: W W^T = gain^2 I both ways") {
    heed::Tensor w = heed::empty({16, 16});
    heed::init::orthogonal_(w, 2.0);
    const std::vector<double> v = w.to_vector<double>();
    CHECK(distance_from_identity(matmul(v, transposed(v, 16, 16), 16, 16, 16), 16, 4.0) < 1e-5);
    CHECK(distance_from_identity(matmul(transposed(v, 16, 16), v, 16, 16, 16), 16, 4.0) < 1e-5);
  }
  SUBCASE("more than 2 axes are flattened to (rows, rest)") {
    heed::Tensor w = heed::empty({3, 2, 4}, heed::DType::Float64);
    heed::init::orthogonal_(w);
    const std::vector<double> v = w.to_vector<double>();  // as (3, 8)
    CHECK(distance_from_identity(matmul(v, transposed(v, 3, 8), 3, 8, 3), 3) < 1e-12);
  }
}

// PyTorch's algorithm: A ~ N(0,1), A = QR (of A^T when wide), Q *= sign(diag R). Then Q^T A = |R| is
// upper triangular with a positive diagonal; without the sign correction some diagonal entries would be
// negative.
TEST_CASE("init: orthogonal_ applies PyTorch's sign correction to the QR of the drawn Gaussian") {
  SUBCASE("tall") {
    const int64_t rows = 6, cols = 4;
    heed::Generator g(42), replay(42);
    heed::Tensor w = heed::empty({rows, cols}, heed::DType::Float64);
    heed::init::orthogonal_(w, 1.0, &g);
    const std::vector<double> a = heed::randn({rows, cols}, heed::DType::Float64, &replay).to_vector<double>();
    const std::vector<double> r = matmul(transposed(w.to_vector<double>(), rows, cols), a, cols, rows, cols);
    for (int64_t i = 0; i < cols; ++i) {
      CHECK(r[i * cols + i] > 0.0);
      for (int64_t j = 0; j < i; ++j) CHECK(std::fabs(r[i * cols + j]) < 1e-12);
    }
  }
  SUBCASE("wide") {
    const int64_t rows = 3, cols = 5;
    heed::Generator g(43), replay(43);
    heed::Tensor w = heed::empty({rows, cols}, heed::DType::Float64);
    heed::init::orthogonal_(w, 1.0, &g);
    const std::vector<double> a = heed::randn({rows, cols}, heed::DType::Float64, &replay).to_vector<double>();
    // W A^T = R (rows x rows).
    const std::vector<double> r = matmul(w.to_vector<double>(), transposed(a, rows, cols), rows, cols, rows);
    for (int64_t i = 0; i < rows; ++i) {
      CHECK(r[i * rows + i] > 0.0);
      for (int64_t j = 0; j < i; ++j) CHECK(std::fabs(r[i * rows + j]) < 1e-12);
    }
  }
}

TEST_CASE("init: initializers are deterministic under manual_seed and an explicit Generator") {
  auto draw_all = [] {
    heed::Tensor a = heed::empty({5, 6}), b = heed::empty({5, 6}), c = heed::empty({5, 6}),
                 d = heed::empty({5, 6}), e = heed::empty({5, 6}), f = heed::empty({5, 6});
    heed::init::uniform_(a, -1, 1);
    heed::init::normal_(b);
    heed::init::xavier_uniform_(c);
    heed::init::xavier_normal_(d);
    heed::init::kaiming_uniform_(e);
    heed::init::orthogonal_(f);
    return std::vector<heed::Tensor>{a, b, c, d, e, f};
  };
  heed::manual_seed(2024);
  std::vector<heed::Tensor> first = draw_all();
  heed::manual_seed(2024);
  std::vector<heed::Tensor> second = draw_all();
  heed::manual_seed(2025);
  std::vector<heed::Tensor> other = draw_all();
  for (std::size_t i = 0; i < first.size(); ++i) {
    CHECK(first[i].to_vector<float>() == second[i].to_vector<float>());
    CHECK(first[i].to_vector<float>() != other[i].to_vector<float>());
  }

  heed::Generator g1(77), g2(77);
  heed::Tensor x = heed::empty({8, 8}), y = heed::empty({8, 8});
  heed::manual_seed(1);
  heed::init::kaiming_normal_(x, 0.0, heed::init::FanMode::FanIn, "relu", &g1);
  heed::manual_seed(2);  // the default generator is not used
  heed::init::kaiming_normal_(y, 0.0, heed::init::FanMode::FanIn, "relu", &g2);
  CHECK(x.to_vector<float>() == y.to_vector<float>());
}

TEST_CASE("init: initializers fill views in place and record nothing") {
  // A (5, 3) view of a (3, 5) buffer with swapped strides: every base element gets written.
  heed::Tensor base = heed::zeros({3, 5}, heed::DType::Float64);
  heed::Tensor view = heed::make_view(base, {5, 3}, {1, 5}, 0);
  heed::init::constant_(view, 2.5);
  for (double x : base.to_vector<double>()) CHECK(x == 2.5);
  heed::init::xavier_uniform_(view);
  const double bound = std::sqrt(6.0 / 8.0);
  for (double x : base.to_vector<double>()) {
    CHECK(x != 2.5);
    CHECK(std::fabs(x) <= bound);
  }
  heed::init::orthogonal_(view);  // as a (5, 3) matrix: W^T W = I
  const std::vector<double> w = view.to_vector<double>();
  CHECK(distance_from_identity(matmul(transposed(w, 5, 3), w, 3, 5, 3), 3) < 1e-12);

  heed::clear_tape();
  heed::Tensor param = heed::empty({4, 4}).requires_grad_();
  heed::init::kaiming_uniform_(param);
  heed::init::normal_(param);
  heed::init::orthogonal_(param);
  heed::init::zeros_(param);
  CHECK(heed::tape_size() == 0);
  CHECK(param.is_leaf());
  CHECK(param.requires_grad());
}

TEST_CASE("init: non-float tensors are rejected, naming the initializer and the shape") {
  heed::Tensor idx = heed::index_tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  const std::string msg = error_of([&] { heed::init::xavier_uniform_(idx); });
  CHECK(msg.find("xavier_uniform_") != std::string::npos);
  CHECK(msg.find("[2, 3]") != std::string::npos);
  CHECK(msg.find("Int64") != std::string::npos);
  heed::Tensor mask = heed::bool_tensor({true, false, true, false}, {2, 2});
  CHECK(error_of([&] { heed::init::orthogonal_(mask); }).find("orthogonal_") != std::string::npos);
  CHECK(error_of([&] { heed::init::uniform_(idx); }).find("uniform_") != std::string::npos);
  CHECK(error_of([&] { heed::init::normal_(idx); }).find("normal_") != std::string::npos);
  CHECK(error_of([&] { heed::init::kaiming_normal_(idx); }).find("kaiming_normal_") != std::string::npos);
  CHECK(error_of([&] { heed::init::constant_(mask, 1.0); }).find("constant_") != std::string::npos);
  CHECK(error_of([&] { heed::init::zeros_(idx); }).find("zeros_") != std::string::npos);
  CHECK(error_of([&] { heed::init::ones_(idx); }).find("ones_") != std::string::npos);
  heed::Tensor undefined;
  CHECK_THROWS_AS(heed::init::normal_(undefined), heed::Error);
}
