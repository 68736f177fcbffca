// tests/test_matmul.cpp — matmul and linear: forward against naive loops, gradients by gradcheck, errors.
#include <doctest/doctest.h>

#include <heed/heed.hpp>

#include <string>
#include <vector>

#include "testing.hpp"

using heed::DType;
using heed::Shape;
using heed::Tensor;

namespace {

// NumPy matmul by definition, in double: promote 1-D operands, broadcast the batch axes, sum over k.
Tensor naive_matmul(const Tensor& a, const Tensor& b) {
  Shape as = a.shape(), bs = b.shape();
  if (as.size() == 1) as.insert(as.begin(), 1);
  if (bs.size() == 1) bs.push_back(1);
  const int64_t n = as[as.size() - 2], k = as.back(), m = bs.back();
  REQUIRE(bs[bs.size() - 2] == k);
  const Shape ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  const std::size_t nd = std::max(ab.size(), bb.size());
  Shape batch(nd);
  for (std::size_t i = 0; i < nd; ++i) {
    const int64_t da = i + ab.size() < nd ? 1 : ab[i + ab.size() - nd];
    const int64_t db = i + bb.size() < nd ? 1 : bb[i + bb.size() - nd];
    batch[i] = std::max(da, db);
  }
  const std::vector<double> av = a.to_vector<double>(), bv = b.to_vector<double>();
  const int64_t nbatch = heed::shape_numel(batch);
  std::vector<double> out(static_cast<std::size_t>(nbatch * n * m), 0.0);
  for (int64_t t = 0; t < nbatch; ++t) {
    // batch index -> offsets of a's and b's matrices (broadcast axes repeat index 0)
    int64_t rem = t, a_index = 0, b_index = 0, a_scale = 1, b_scale = 1;
    for (std::size_t d = nd; d-- > 0;) {
      const int64_t i = rem % batch[d];
      rem /= batch[d];
      if (d + ab.size() >= nd) {
        const int64_t size = ab[d + ab.size() - nd];
        a_index += (size == 1 ? 0 : i) * a_scale;
        a_scale *= size;
      }
      if (d + bb.size() >= nd) {
        const int64_t size = bb[d + bb.size() - nd];
        b_index += (size == 1 ? 0 : i) * b_scale;
        b_scale *= size;
      }
    }
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < m; ++c) {
        double acc = 0.0;
        for (int64_t j = 0; j < k; ++j)
          acc += av[static_cast<std::size_t>(a_index * n * k + r * k + j)] *
                 bv[static_cast<std::size_t>(b_index * k * m + j * m + c)];
        out[static_cast<std::size_t>(t * n * m + r * m + c)] = acc;
      }
  }
  Shape out_shape = batch;
  if (a.dim() > 1) out_shape.push_back(n);
  if (b.dim() > 1) out_shape.push_back(m);
  return heed::tensor(out, out_shape, DType::Float64);
}

void check_forward(const Tensor& a, const Tensor& b, double tol = 1e-4) {
  const Tensor y = heed::matmul(a, b);
  const Tensor expected = naive_matmul(a, b);
  REQUIRE_MESSAGE(y.shape() == expected.shape(),
                  heed::shape_str(a.shape()) << " x " << heed::shape_str(b.shape()) << " gave "
                                             << heed::shape_str(y.shape()));
  CHECK(y.dtype() == a.dtype());
  CHECK_MESSAGE(heed::allclose(y.to(DType::Float64), expected, tol, tol),
                heed::shape_str(a.shape()) << " x " << heed::shape_str(b.shape())
                                           << ": max diff " << heed::max_abs_diff(y.to(DType::Float64), expected));
}

Tensor leaf(const Shape& shape) { return heed::randn(shape, DType::Float64).requires_grad_(); }

heed::GradcheckResult check_matmul_grad(const Tensor& a, const Tensor& b) {
  return heed::gradcheck([](const std::vector<Tensor>& in) { return heed::matmul(in[0], in[1]); }, {a, b});
}

using heed::testing::error_of;

}  // namespace

TEST_CASE("matmul: 2-D products match naive loops") {
  heed::manual_seed(1);
  check_forward(heed::randn({3, 4}), heed::randn({4, 5}));
  check_forward(heed::randn({37, 61}), heed::randn({61, 23}));
  check_forward(heed::randn({1, 7}), heed::randn({7, 1}));
  check_forward(heed::randn({5, 3}, DType::Float64), heed::randn({3, 4}, DType::Float64), 1e-12);
  // exact small case
  Tensor a = heed::tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor b = heed::tensor({7, 8, 9, 10, 11, 12}, {3, 2});
  CHECK(heed::matmul(a, b).to_vector<float>() == std::vector<float>{58, 64, 139, 154});
  CHECK(a.matmul(b).to_vector<float>() == std::vector<float>{58, 64, 139, 154});
}

TEST_CASE("matmul: 1-D operands are promoted and the added axis removed") {
  heed::manual_seed(2);
  Tensor v = heed::randn({6}), w = heed::randn({6});
  Tensor dot = heed::matmul(v, w);
  CHECK(dot.shape() == Shape{});
  check_forward(v, w);
  check_forward(v, heed::randn({6, 4}));          // [6] x [6, 4] -> [4]
  check_forward(heed::randn({3, 6}), w);          // [3, 6] x [6] -> [3]
  check_forward(v, heed::randn({2, 6, 5}));       // [6] x [2, 6, 5] -> [2, 5]
  check_forward(heed::randn({2, 3, 6}), w);       // [2, 3, 6] x [6] -> [2, 3]
  check_forward(heed::randn({4, 2, 3, 6}), w);    // folded: one GEMM with M = 24, N = 1
  CHECK(heed::matmul(heed::tensor({1, 2, 3}), heed::tensor({4, 5, 6})).item() == doctest::Approx(32.0));
}

TEST_CASE("matmul: batched and broadcast batch axes") {
  heed::manual_seed(3);
  check_forward(heed::randn({4, 3, 5}), heed::randn({4, 5, 2}));         // same batch
  check_forward(heed::randn({4, 3, 5}), heed::randn({5, 2}));            // b one matrix: folded
  check_forward(heed::randn({2, 4, 3, 5}), heed::randn({5, 2}));         // two leading axes folded
  check_forward(heed::randn({3, 5}), heed::randn({4, 5, 2}));            // a broadcast over b's batch
  check_forward(heed::randn({2, 1, 3, 5}), heed::randn({4, 5, 2}));      // -> [2, 4, 3, 2]
  check_forward(heed::randn({1, 3, 3, 5}), heed::randn({2, 1, 5, 4}));   // both broadcast -> [2, 3, 3, 4]
}

TEST_CASE("matmul: transposed and strided views") {
  heed::manual_seed(4);
  Tensor a = heed::randn({5, 3}), b = heed::randn({2, 5});
  check_forward(a.transpose(-1, -2), heed::randn({5, 4}));                    // A^T B
  check_forward(heed::randn({4, 2}), b);                                      // plain
  check_forward(heed::randn({3, 5}), b.transpose(-1, -2));                    // A B^T
  check_forward(a.transpose(-1, -2), b.transpose(-1, -2));                    // A^T B^T
  Tensor a3 = heed::randn({4, 6, 3}), b3 = heed::randn({4, 2, 6});
  check_forward(a3.transpose(-1, -2), heed::randn({4, 6, 2}));                // batched A^T B
  check_forward(a3.transpose(-1, -2), heed::randn({6, 5}));                   // transposed batch, b 2-D
  check_forward(heed::randn({4, 6, 3}).transpose(-1, -2), b3.transpose(-1, -2));  // batched A^T B^T
  // a permuted batch (3, 4, 5) read as (4, 3, 5): each matrix is read in place (row stride 20), one GEMM each
  check_forward(heed::randn({3, 4, 5}).transpose(0, 1), heed::randn({5, 2}));
  // a column slice of a batch: batch and rows still fold into one (6 x 5) matrix with row stride 7
  check_forward(heed::narrow(heed::randn({2, 3, 7}), 2, 1, 5), heed::randn({5, 4}));
  // column slice: rows are strided (row stride 7 > 4 columns) but each row is dense
  check_forward(heed::narrow(heed::randn({3, 7}), 1, 2, 4), heed::randn({4, 5}));
  // every other column: no BLAS layout, copied
  check_forward(heed::slice(heed::randn({3, 8}), 1, 0, 8, 2), heed::randn({4, 5}));
  // an expanded (stride 0) operand: copied
  check_forward(heed::randn({3, 4}), heed::expand(heed::randn({1, 5}), {4, 5}));
  check_forward(heed::expand(heed::randn({3, 4}), {2, 3, 4}), heed::randn({2, 4, 5}));
  // strided 1-D vectors
  check_forward(heed::slice(heed::randn({10}), 0, 0, 10, 2), heed::randn({5, 3}));
  check_forward(heed::randn({3, 5}), heed::slice(heed::randn({10}), 0, 1, 10, 2));
}

TEST_CASE("matmul: empty dimensions") {
  Tensor y = heed::matmul(heed::zeros({0, 3}), heed::zeros({3, 4}));
  CHECK(y.shape() == Shape{0, 4});
  Tensor z = heed::matmul(heed::ones({2, 0}), heed::ones({0, 3}));
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.to_vector<float>() == std::vector<float>(6, 0.0f));
}

TEST_CASE("matmul: gradients (gradcheck, Float64)") {
  heed::manual_seed(5);
  struct Case {
    Shape a, b;
  };
  for (const Case& c : std::vector<Case>{{{3, 4}, {4, 5}},
                                         {{4}, {4}},
                                         {{4}, {4, 3}},
                                         {{3, 4}, {4}},
                                         {{4}, {2, 4, 3}},
                                         {{2, 3, 4}, {4}},
                                         {{2, 3, 4}, {2, 4, 5}},
                                         {{2, 3, 4}, {4, 5}},
                                         {{2, 2, 3, 4}, {4, 5}},
                                         {{3, 4}, {2, 4, 5}},
                                         {{2, 1, 3, 4}, {3, 4, 2}},
                                         {{1, 3, 2, 4}, {2, 1, 4, 3}}}) {
    auto r = check_matmul_grad(leaf(c.a), leaf(c.b));
    CHECK_MESSAGE(r.ok, heed::shape_str(c.a) << " x " << heed::shape_str(c.b) << ": " << r.report);
  }
}

TEST_CASE("matmul: gradients through transposed and strided views (gradcheck)") {
  heed::manual_seed(6);
  using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
  struct Case {
    const char* what;
    Shape a, b;
    Fn f;
  };
  const std::vector<Case> cases{
      {"A^T B", {4, 3}, {4, 5}, [](const auto& in) { return heed::matmul(in[0].transpose(-1, -2), in[1]); }},
      {"A B^T", {3, 4}, {5, 4}, [](const auto& in) { return heed::matmul(in[0], in[1].transpose(-1, -2)); }},
      {"A^T B^T", {4, 3}, {5, 4},
       [](const auto& in) { return heed::matmul(in[0].transpose(-1, -2), in[1].transpose(-1, -2)); }},
      {"batched A^T B", {2, 4, 3}, {2, 4, 5},
       [](const auto& in) { return heed::matmul(in[0].transpose(-1, -2), in[1]); }},
      {"batched A^T, b 2-D", {2, 4, 3}, {4, 5},
       [](const auto& in) { return heed::matmul(in[0].transpose(-1, -2), in[1]); }},
      {"broadcast A, batched B^T", {3, 4}, {2, 5, 4},
       [](const auto& in) { return heed::matmul(in[0], in[1].transpose(-1, -2)); }},
      {"permuted batch", {3, 2, 4}, {4, 5},
       [](const auto& in) { return heed::matmul(in[0].transpose(0, 1), in[1]); }},
      {"column slice of a batch (folds)", {2, 3, 7}, {5, 4},
       [](const auto& in) { return heed::matmul(heed::narrow(in[0], 2, 1, 5), in[1]); }},
      {"column slice", {3, 7}, {4, 2}, [](const auto& in) { return heed::matmul(heed::narrow(in[0], 1, 2, 4), in[1]); }},
      {"strided columns (copied)", {3, 8}, {4, 2},
       [](const auto& in) { return heed::matmul(heed::slice(in[0], 1, 0, 8, 2), in[1]); }},
      {"expanded B (copied)", {3, 4}, {1, 5},
       [](const auto& in) { return heed::matmul(in[0], heed::expand(in[1], {4, 5})); }},
  };
  for (const Case& c : cases) {
    auto r = heed::gradcheck(c.f, {leaf(c.a), leaf(c.b)});
    CHECK_MESSAGE(r.ok, c.what << ": " << r.report);
  }
}

TEST_CASE("matmul: gradients reach only inputs that require grad, and accumulate") {
  heed::manual_seed(7);
  Tensor a = heed::randn({2, 3, 4}).requires_grad_();
  Tensor b = heed::randn({4, 5});
  Tensor y = heed::matmul(a, b);
  y.backward(heed::ones(y.shape()));
  REQUIRE(a.grad().defined());
  CHECK_FALSE(b.grad().defined());
  // d(sum(A B))/dA = 1 B^T: every row of dA holds the row sums of B
  const std::vector<float> bv = b.to_vector<float>(), ga = a.grad().to_vector<float>();
  for (int64_t r = 0; r < 6; ++r)
    for (int64_t j = 0; j < 4; ++j) {
      float row_sum = 0;
      for (int64_t c = 0; c < 5; ++c) row_sum += bv[static_cast<std::size_t>(j * 5 + c)];
      CHECK(ga[static_cast<std::size_t>(r * 4 + j)] == doctest::Approx(row_sum).epsilon(1e-5));
    }
  Tensor y2 = heed::matmul(a, b);
  y2.backward(heed::ones(y2.shape()));
  CHECK(heed::allclose(a.grad(), heed::mul(heed::tensor(ga, {2, 3, 4}), 2.0), 1e-5, 1e-6));
}

TEST_CASE("matmul: linear with and without bias") {
  heed::manual_seed(8);
  Tensor x = heed::randn({5, 4}), w = heed::randn({3, 4}), bias = heed::randn({3});
  const Tensor xw = naive_matmul(x, w.transpose(0, 1));
  CHECK(heed::allclose(heed::linear(x, w).to(DType::Float64), xw, 1e-5, 1e-5));
  const Tensor y = heed::linear(x, w, bias);
  CHECK(y.shape() == Shape{5, 3});
  CHECK(heed::allclose(y.to(DType::Float64), heed::add(xw, bias.to(DType::Float64)), 1e-5, 1e-5));
  // leading axes fold into rows; 1-D input; transposed weight; a non-dense input
  Tensor x3 = heed::randn({2, 3, 4});
  CHECK(heed::linear(x3, w, bias).shape() == Shape{2, 3, 3});
  CHECK(heed::allclose(heed::linear(x3, w, bias).to(DType::Float64),
                       heed::add(naive_matmul(x3, w.transpose(0, 1)), bias.to(DType::Float64)), 1e-5, 1e-5));
  Tensor v = heed::randn({4});
  CHECK(heed::linear(v, w, bias).shape() == Shape{3});
  CHECK(heed::allclose(heed::linear(v, w, bias).to(DType::Float64),
                       heed::add(naive_matmul(v, w.transpose(0, 1)), bias.to(DType::Float64)), 1e-5, 1e-5));
  Tensor wt = heed::randn({4, 3}).transpose(0, 1);  // a (3, 4) weight stored transposed
  CHECK(heed::allclose(heed::linear(x, wt).to(DType::Float64), naive_matmul(x, wt.transpose(0, 1)), 1e-5, 1e-5));
  Tensor xp = heed::randn({3, 2, 4}).transpose(0, 1);  // (2, 3, 4) whose rows do not fold: copied
  CHECK(heed::allclose(heed::linear(xp, w).to(DType::Float64), naive_matmul(xp, w.transpose(0, 1)), 1e-5, 1e-5));
  CHECK(heed::linear(heed::zeros({0, 4}), w, bias).shape() == Shape{0, 3});
}

TEST_CASE("matmul: linear gradients (gradcheck, Float64)") {
  heed::manual_seed(9);
  auto with_bias = [](const std::vector<Tensor>& in) { return heed::linear(in[0], in[1], in[2]); };
  auto no_bias = [](const std::vector<Tensor>& in) { return heed::linear(in[0], in[1]); };
  for (const Shape& xs : std::vector<Shape>{{5, 4}, {2, 3, 4}, {4}}) {
    auto r = heed::gradcheck(with_bias, {leaf(xs), leaf({3, 4}), leaf({3})});
    CHECK_MESSAGE(r.ok, "x " << heed::shape_str(xs) << " with bias: " << r.report);
    auto r2 = heed::gradcheck(no_bias, {leaf(xs), leaf({3, 4})});
    CHECK_MESSAGE(r2.ok, "x " << heed::shape_str(xs) << " without bias: " << r2.report);
  }
  auto transposed = [](const std::vector<Tensor>& in) {
    return heed::linear(in[0].transpose(0, 1), in[1].transpose(0, 1), in[2]);
  };
  auto r = heed::gradcheck(transposed, {leaf({4, 5}), leaf({4, 3}), leaf({3})});
  CHECK_MESSAGE(r.ok, "transposed x and weight: " << r.report);
  auto permuted = [](const std::vector<Tensor>& in) { return heed::linear(in[0].transpose(0, 1), in[1]); };
  auto r3 = heed::gradcheck(permuted, {leaf({3, 2, 4}), leaf({3, 4})});
  CHECK_MESSAGE(r3.ok, "non-folding x: " << r3.report);
  // only the weight requires grad
  auto r4 = heed::gradcheck(with_bias, {heed::randn({5, 4}, DType::Float64), leaf({3, 4}), leaf({3})});
  CHECK_MESSAGE(r4.ok, "constant x: " << r4.report);
}

TEST_CASE("matmul: errors name the op and the shapes") {
  CHECK(error_of([] { heed::matmul(heed::zeros({32, 100}), heed::zeros({64, 1})); }) ==
        "matmul: inner dimensions differ: [32, 100] x [64, 1]");
  CHECK(error_of([] { heed::matmul(heed::zeros({3}), heed::zeros({4})); }) ==
        "matmul: inner dimensions differ: [3] x [4]");
  CHECK(error_of([] { heed::matmul(heed::zeros({2, 3, 4}), heed::zeros({3, 4, 5})); }) ==
        "matmul: batch dimensions do not broadcast: [2, 3, 4] x [3, 4, 5]");
  const std::string zero_d = error_of([] { heed::matmul(heed::scalar(2.0), heed::zeros({3})); });
  CHECK(zero_d.find("matmul: both arguments need at least 1 dimension, got shapes [] and [3]") == 0);
  const std::string dtype = error_of([] { heed::matmul(heed::zeros({2, 2}), heed::zeros({2, 2}, DType::Float64)); });
  CHECK(dtype.find("matmul: inputs differ in dtype: Float32 [2, 2] and Float64 [2, 2]") == 0);
  const std::string ints = error_of([] { heed::matmul(heed::index_tensor({1, 2}), heed::index_tensor({1, 2})); });
  CHECK(ints.find("matmul:") == 0);
  CHECK(error_of([] { heed::linear(heed::zeros({8, 5}), heed::zeros({3, 4})); }) ==
        "linear: input features differ: input [8, 5] x weight [3, 4] (expects in_features = 4)");
  CHECK(error_of([] { heed::linear(heed::zeros({8, 4}), heed::zeros({3, 4}), heed::zeros({4})); }) ==
        "linear: the bias must have shape [3], got [4]");
  CHECK(error_of([] { heed::linear(heed::zeros({8, 4}), heed::zeros({4})); }) ==
        "linear: the weight must be 2-D (out_features, in_features), got shape [4]");
  CHECK(error_of([] { heed::linear(heed::scalar(1.0), heed::zeros({3, 1})); }) ==
        "linear: the input needs at least 1 dimension, got shape []");
}
