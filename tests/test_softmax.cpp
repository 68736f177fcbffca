// tests/test_softmax.cpp — softmax, log_softmax, masked_softmax, masked_fill: values by hand, huge logits,
// partially and fully masked rows (exact zeros, no NaN, zero gradients), gradcheck on every axis, errors.
#include <doctest/doctest.h>

#include <heed/heed.hpp>

#include "testing.hpp"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

using heed::DType;
using heed::Shape;
using heed::Tensor;

namespace {

using heed::testing::error_of;
using heed::testing::check_values;

const double kInf = std::numeric_limits<double>::infinity();

template <class F>
void check_grad(F f, const Tensor& x, const std::string& what) {
  auto r = heed::gradcheck([&](const std::vector<Tensor>& in) { return f(in[0]); }, {x});
  CHECK_MESSAGE(r.ok, what << "\n" << r.report);
}

bool all_finite(const Tensor& t) {
  for (double v : t.to_vector<double>())
    if (!std::isfinite(v)) return false;
  return true;
}

}  // namespace

TEST_CASE("softmax: values by hand and rows summing to one on every axis") {
  Tensor x = heed::tensor({1.0, 2.0, 3.0, 0.0, 0.0, 0.0}, {2, 3}, DType::Float64);
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(3.0);
  check_values(heed::softmax(x), {2, 3}, {std::exp(1.0) / z, std::exp(2.0) / z, std::exp(3.0) / z, 1.0 / 3, 1.0 / 3, 1.0 / 3});
  // axis 0 of the same tensor: each column is softmax([a, 0])
  check_values(heed::softmax(x, 0), {2, 3},
               {1 / (1 + std::exp(-1.0)), 1 / (1 + std::exp(-2.0)), 1 / (1 + std::exp(-3.0)), 1 / (1 + std::exp(1.0)),
                1 / (1 + std::exp(2.0)), 1 / (1 + std::exp(3.0))});
  Tensor r = heed::randn({2, 3, 4}, DType::Float32);
  for (int64_t axis : {0, 1, 2, -1}) {
    Tensor s = heed::sum(heed::softmax(r, axis), {axis});
    for (double v : s.to_vector<double>()) CHECK(v == doctest::Approx(1.0).epsilon(1e-6));
  }
  // a NaN makes its whole row NaN (and only its row)
  Tensor with_nan = heed::softmax(heed::tensor({1.0, NAN, 2.0, 0.0, 1.0, 2.0}, {2, 3}, DType::Float64));
  const std::vector<double> nv = with_nan.to_vector<double>();
  for (int j = 0; j < 3; ++j) CHECK(std::isnan(nv[j]));
  for (int j = 3; j < 6; ++j) CHECK(std::isfinite(nv[j]));
  // softmax of a 0-d tensor is 1
  CHECK(heed::softmax(heed::scalar(4.0, DType::Float64), 0).item() == 1.0);
}

TEST_CASE("softmax and log_softmax: huge logits stay finite") {
  Tensor x = heed::tensor({1000.0, 1000.0, 0.0, -1000.0, 0.0, 1000.0}, {2, 3}, DType::Float32);
  Tensor s = heed::softmax(x);
  REQUIRE(all_finite(s));
  check_values(s, {2, 3}, {0.5, 0.5, 0, 0, 0, 1}, 1e-6);
  Tensor ls = heed::log_softmax(x);
  REQUIRE(all_finite(ls));
  check_values(ls, {2, 3}, {-std::log(2.0), -std::log(2.0), -1000 - std::log(2.0), -2000, -1000, 0}, 1e-6);
  Tensor xd = heed::tensor({1000.0, -1000.0, 999.0}, {3}, DType::Float64).requires_grad_();
  heed::sum(heed::softmax(xd) * heed::tensor({1.0, 2.0, 3.0}, {3}, DType::Float64)).backward();
  REQUIRE(all_finite(xd.grad()));
}

TEST_CASE("softmax: gradcheck on every axis, keepdim-free, non-contiguous input") {
  Tensor x = heed::randn({2, 3, 4}, DType::Float64).requires_grad_();
  for (int64_t axis : {0, 1, 2, -1, -3}) {
    check_grad([&](const Tensor& t) { return heed::softmax(t, axis); }, x, "softmax axis " + std::to_string(axis));
    check_grad([&](const Tensor& t) { return heed::log_softmax(t, axis); }, x, "log_softmax axis " + std::to_string(axis));
  }
  check_grad([](const Tensor& t) { return heed::softmax(t.transpose(0, 2), 1); }, x, "softmax of a transposed view");
  check_grad([](const Tensor& t) { return heed::log_softmax(t.transpose(1, 2), -1); }, x, "log_softmax of a view");
}

TEST_CASE("log_softmax: equals log(softmax) and its rows exponentiate to one") {
  Tensor x = heed::randn({3, 5}, DType::Float64);
  for (int64_t axis : {0, 1}) {
    Tensor ls = heed::log_softmax(x, axis);
    Tensor via = heed::log(heed::softmax(x, axis));
    CHECK(heed::max_abs_diff(ls, via) < 1e-12);
    for (double v : heed::sum(heed::exp(ls), {axis}).to_vector<double>()) CHECK(v == doctest::Approx(1.0));
  }
  // Many short rows: log_softmax exponentiates blocks of whole rows (about 1024 elements), here 341 rows
  // per block and a partial last block; every row must still match, with one all -inf row in the last one.
  Tensor many = heed::randn({1000, 3}, DType::Float64);
  Tensor ls = heed::log_softmax(many, 1);
  CHECK(heed::max_abs_diff(ls, heed::log(heed::softmax(many, 1))) < 1e-12);
  Tensor with_inf = heed::concat({many, heed::full({1, 3}, -kInf, DType::Float64)}, 0);
  const std::vector<double> last = heed::select(heed::log_softmax(with_inf, 1), 0, 1000).to_vector<double>();
  for (double v : last) CHECK(v == -kInf);
}

TEST_CASE("masked_softmax: partially and fully masked rows") {
  // row 0 keeps 0, 1, 3; row 1 keeps nothing; row 2 keeps only entry 2. Masked entries hold garbage
  // (inf, NaN) that must not leak into the result.
  Tensor x = heed::tensor({1.0, 2.0, kInf, 0.5,  //
                           3.0, -1.0, 0.0, 2.0,  //
                           NAN, 7.0, -4.0, kInf},
                          {3, 4}, DType::Float64)
                 .requires_grad_();
  Tensor keep = heed::bool_tensor({true, true, false, true, false, false, false, false, false, false, true, false}, {3, 4});
  Tensor y = heed::masked_softmax(x, keep, 1);
  REQUIRE(all_finite(y));
  const double z = std::exp(1.0) + std::exp(2.0) + std::exp(0.5);
  check_values(y, {3, 4}, {std::exp(1.0) / z, std::exp(2.0) / z, 0, std::exp(0.5) / z, 0, 0, 0, 0, 0, 0, 1, 0});
  const std::vector<double> yv = y.to_vector<double>();
  CHECK(yv[2] == 0.0);
  for (int j = 4; j < 8; ++j) CHECK(yv[j] == 0.0);

  Tensor w = heed::tensor({1.0, -2.0, 3.0, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0}, {3, 4}, DType::Float64);
  heed::sum(y * w).backward();
  const std::vector<double> g = x.grad().to_vector<double>();
  for (double v : g) CHECK(std::isfinite(v));
  CHECK(g[2] == 0.0);  // masked
  for (int j = 4; j < 12; ++j) CHECK(g[j] == 0.0);  // the fully masked row, and a row of one kept entry
  CHECK(g[0] != 0.0);
}

TEST_CASE("masked_softmax: broadcast masks, other axes, gradcheck") {
  Tensor x = heed::randn({2, 3, 4}, DType::Float64).requires_grad_();
  // a key-padding mask (2, 1, 4) broadcast over the 3 queries; batch 1 is fully masked
  Tensor keep = heed::bool_tensor({true, true, false, true, false, false, false, false}, {2, 1, 4});
  Tensor y = heed::masked_softmax(x, keep, -1);
  const std::vector<double> yv = y.to_vector<double>();
  for (int q = 0; q < 3; ++q) {
    CHECK(yv[q * 4 + 2] == 0.0);
    CHECK(yv[q * 4 + 0] + yv[q * 4 + 1] + yv[q * 4 + 3] == doctest::Approx(1.0));
  }
  for (int j = 12; j < 24; ++j) CHECK(yv[j] == 0.0);
  check_grad([&](const Tensor& t) { return heed::masked_softmax(t, keep, -1); }, x, "masked_softmax last axis");
  // a mask over axis 1 (3 positions), broadcast along the last axis
  Tensor keep1 = heed::bool_tensor({true, false, true}, {3, 1});
  check_grad([&](const Tensor& t) { return heed::masked_softmax(t, keep1, 1); }, x, "masked_softmax axis 1");
  Tensor y1 = heed::masked_softmax(x, keep1, 1);
  for (int b = 0; b < 2; ++b)
    for (int k = 0; k < 4; ++k) CHECK(y1.to_vector<double>()[b * 12 + 4 + k] == 0.0);
  // all kept: plain softmax
  Tensor all = heed::bool_tensor({true}, {1});
  CHECK(heed::max_abs_diff(heed::masked_softmax(x, all, 2), heed::softmax(x, 2)) == 0.0);
}

TEST_CASE("masked_fill then softmax: -inf entries and fully -inf rows give zeros, not NaN") {
  Tensor x = heed::randn({2, 3}, DType::Float64).requires_grad_();
  Tensor fill_here = heed::bool_tensor({false, true, false, true, true, true}, {2, 3});
  Tensor filled = heed::masked_fill(x, fill_here, -kInf);
  const std::vector<double> fv = filled.to_vector<double>();
  const std::vector<double> xv = x.to_vector<double>();
  CHECK(fv[0] == xv[0]);
  CHECK(fv[1] == -kInf);
  CHECK(fv[2] == xv[2]);
  Tensor y = heed::softmax(filled, 1);
  REQUIRE(all_finite(y));
  check_values(y, {2, 3}, {1 / (1 + std::exp(xv[2] - xv[0])), 0, 1 / (1 + std::exp(xv[0] - xv[2])), 0, 0, 0});
  heed::sum(y * heed::tensor({1.0, 2.0, 3.0, 4.0, 5.0, 6.0}, {2, 3}, DType::Float64)).backward();
  const std::vector<double> g = x.grad().to_vector<double>();
  for (double v : g) CHECK(std::isfinite(v));
  CHECK(g[1] == 0.0);
  for (int j = 3; j < 6; ++j) CHECK(g[j] == 0.0);
  CHECK(g[0] == doctest::Approx(-g[2]));
}

TEST_CASE("masked_fill: values, broadcasting, gradcheck, integer tensors") {
  Tensor x = heed::randn({2, 3}, DType::Float64).requires_grad_();
  Tensor col = heed::bool_tensor({true, false, true}, {3});
  Tensor y = heed::masked_fill(x, col, 2.5);
  const std::vector<double> xv = x.to_vector<double>(), yv = y.to_vector<double>();
  CHECK(yv == std::vector<double>{2.5, xv[1], 2.5, 2.5, xv[4], 2.5});
  check_grad([&](const Tensor& t) { return heed::masked_fill(t, col, 2.5); }, x, "masked_fill");
  check_grad([&](const Tensor& t) { return heed::masked_fill(t.transpose(0, 1), heed::bool_tensor({true, false}, {2}), -1.0); },
             x, "masked_fill of a transposed view");
  // padding targets for cross_entropy
  Tensor targets = heed::index_tensor({3, 1, 4, 1});
  Tensor pad = heed::bool_tensor({false, false, true, true});
  CHECK(heed::masked_fill(targets, pad, -100).to_vector<int64_t>() == std::vector<int64_t>{3, 1, -100, -100});
}

TEST_CASE("softmax family: errors name the op, the argument and the shapes") {
  Tensor x = heed::zeros({2, 3});
  std::string e = error_of([&] { heed::softmax(x, 2); });
  CHECK_MESSAGE(e.find("softmax") != std::string::npos, e);
  CHECK_MESSAGE(e.find("axis 2") != std::string::npos, e);
  e = error_of([&] { heed::log_softmax(x, -3); });
  CHECK_MESSAGE(e.find("log_softmax") != std::string::npos, e);
  e = error_of([&] { heed::softmax(heed::index_tensor({1, 2})); });
  CHECK_MESSAGE(e.find("softmax") != std::string::npos, e);
  CHECK_MESSAGE(e.find("Int64") != std::string::npos, e);
  e = error_of([&] { heed::masked_softmax(x, heed::zeros({2, 3}), 1); });
  CHECK_MESSAGE(e.find("masked_softmax: keep_mask must be Bool") != std::string::npos, e);
  CHECK_MESSAGE(e.find("Float32") != std::string::npos, e);
  e = error_of([&] { heed::masked_softmax(x, heed::bool_tensor({true, false}, {2}), 1); });
  CHECK_MESSAGE(e.find("masked_softmax") != std::string::npos, e);
  CHECK_MESSAGE(e.find("[2]") != std::string::npos, e);
  CHECK_MESSAGE(e.find("[2, 3]") != std::string::npos, e);
  // a mask that broadcasts to a larger shape than x is not allowed
  e = error_of([&] { heed::masked_fill(x, heed::bool_tensor(std::vector<bool>(12, true), {2, 2, 3}), 0.0); });
  CHECK_MESSAGE(e.find("masked_fill") != std::string::npos, e);
  CHECK_MESSAGE(e.find("[2, 2, 3]") != std::string::npos, e);
  e = error_of([&] { heed::masked_fill(heed::index_tensor({1}), heed::bool_tensor({true}), -kInf); });
  CHECK_MESSAGE(e.find("masked_fill") != std::string::npos, e);
}
