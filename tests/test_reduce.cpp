// tests/test_reduce.cpp — sum, mean, max, min, argmax, argmin, logsumexp, var: forward values by hand,
// gradients by gradcheck over several axes (adjacent, non-adjacent, keepdim, non-contiguous input), errors.
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

// 0, 1, ..., 23 as a (2, 3, 4) tensor: x[i][j][k] = 12 i + 4 j + k.
Tensor iota234(DType dtype = DType::Float64) { return heed::arange(24, dtype).reshape({2, 3, 4}); }

template <class F>
void check_grad(F f, const Tensor& x, const std::string& what) {
  auto r = heed::gradcheck([&](const std::vector<Tensor>& in) { return f(in[0]); }, {x});
  CHECK_MESSAGE(r.ok, what << "\n" << r.report);
}

const std::vector<std::vector<int64_t>> kAxisSets = {{}, {0}, {1}, {2}, {-1}, {0, 1}, {1, 2}, {0, 2}, {2, 0}, {0, 1, 2}};

}  // namespace

TEST_CASE("sum: all elements, one axis, several axes, keepdim") {
  Tensor x = iota234();
  check_values(heed::sum(x), {}, {276});
  check_values(x.sum(), {}, {276});
  check_values(heed::sum(x, {1}), {2, 4}, {12, 15, 18, 21, 48, 51, 54, 57});
  check_values(x.sum(-1, true), {2, 3, 1}, {6, 22, 38, 54, 70, 86});
  check_values(heed::sum(x, {0}), {3, 4}, {12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34});
  // non-adjacent axes: sum over i, k of 12 i + 4 j + k = 32 j + 60
  check_values(heed::sum(x, {0, 2}), {3}, {60, 92, 124});
  check_values(heed::sum(x, {2, 0}, true), {1, 3, 1}, {60, 92, 124});
  check_values(heed::sum(x, {1, 2}), {2}, {66, 210});
  check_values(heed::sum(x, {}, true), {1, 1, 1}, {276});
  // a non-contiguous input: x^T (4, 3, 2) summed over its axis 1
  check_values(heed::sum(x.transpose(0, 2), {1}), {4, 2}, {12, 48, 15, 51, 18, 54, 21, 57});
  // Float32 accumulates in double: 1e8 + many ones is not lost
  Tensor big = heed::ones({1000}, DType::Float32);
  big.data<float>()[0] = 1e8f;
  CHECK(heed::sum(big).item() == doctest::Approx(1e8 + 999).epsilon(1e-7));
  // a 0-d tensor sums to itself
  check_values(heed::sum(heed::scalar(2.5, DType::Float64), {0}), {}, {2.5});
}

TEST_CASE("sum: counts of Bool and sums of Int64 are Int64") {
  Tensor mask = heed::bool_tensor({true, false, true, true, false, true}, {2, 3});
  Tensor count = heed::sum(mask);
  CHECK(count.dtype() == DType::Int64);
  CHECK(count.item() == 4);
  Tensor per_row = heed::sum(mask, {1});
  CHECK(per_row.to_vector<int64_t>() == std::vector<int64_t>{2, 2});
  Tensor ints = heed::index_tensor({1, 2, 3, 4}, {2, 2});
  CHECK(heed::sum(ints, {0}).to_vector<int64_t>() == std::vector<int64_t>{4, 6});
}

TEST_CASE("sum: gradcheck over axis sets and keepdim") {
  Tensor x = heed::randn({2, 3, 4}, DType::Float64).requires_grad_();
  check_grad([](const Tensor& t) { return heed::sum(t); }, x, "sum all");
  for (const auto& axes : kAxisSets)
    for (bool keepdim : {false, true})
      check_grad([&](const Tensor& t) { return heed::sum(t, axes, keepdim); }, x,
                 "sum axes " + heed::shape_str(axes) + (keepdim ? " keepdim" : ""));
  // through a non-contiguous view of a leaf
  check_grad([](const Tensor& t) { return heed::sum(t.transpose(0, 2), {0, 2}); }, x, "sum of a transposed view");
}

TEST_CASE("mean: values, gradcheck, empty input") {
  Tensor x = iota234();
  check_values(heed::mean(x), {}, {11.5});
  check_values(heed::mean(x, {0, 2}), {3}, {7.5, 11.5, 15.5});
  check_values(x.mean(1, true), {2, 1, 4}, {4, 5, 6, 7, 16, 17, 18, 19});
  Tensor r = heed::randn({3, 2, 5}, DType::Float64).requires_grad_();
  check_grad([](const Tensor& t) { return heed::mean(t); }, r, "mean all");
  for (const auto& axes : kAxisSets)
    for (bool keepdim : {false, true})
      check_grad([&](const Tensor& t) { return heed::mean(t, axes, keepdim); }, r,
                 "mean axes " + heed::shape_str(axes) + (keepdim ? " keepdim" : ""));
  // the mean of nothing is NaN, as in PyTorch
  CHECK(std::isnan(heed::mean(heed::zeros({0, 3}, DType::Float64)).item()));
  CHECK(heed::sum(heed::zeros({0, 3}, DType::Float64), {0}).to_vector<double>() == std::vector<double>{0, 0, 0});
}

TEST_CASE("max/min over all elements: value and gradient split among ties") {
  Tensor x = heed::tensor({1.0, 3.0, -2.0, 3.0, 0.5, 3.0}, {2, 3}, DType::Float64).requires_grad_();
  Tensor m = heed::max(x);
  CHECK(m.shape() == Shape{});
  CHECK(m.item() == 3.0);
  m.backward();
  check_values(x.grad(), {2, 3}, {0, 1.0 / 3, 0, 1.0 / 3, 0, 1.0 / 3});
  x.zero_grad();
  Tensor lo = heed::min(x);
  CHECK(lo.item() == -2.0);
  lo.backward();
  check_values(x.grad(), {2, 3}, {0, 0, 1, 0, 0, 0});
  // random values have no ties: plain gradcheck
  Tensor r = heed::randn({3, 4}, DType::Float64).requires_grad_();
  check_grad([](const Tensor& t) { return heed::max(t); }, r, "max all");
  check_grad([](const Tensor& t) { return heed::min(t); }, r, "min all");
  // NaN propagates
  CHECK(std::isnan(heed::max(heed::tensor({1.0, NAN, 2.0}, {3}, DType::Float64)).item()));
  CHECK(heed::max(heed::index_tensor({4, -1, 7})).item() == 7);
}

TEST_CASE("max/min/argmax/argmin along an axis: first extreme wins ties") {
  Tensor x = heed::tensor({1, 5, 5, 2,  //
                           7, 0, 7, -1,  //
                           3, 3, 3, 3},
                          {3, 4}, DType::Float64)
                 .requires_grad_();
  check_values(heed::max(x, 1), {3}, {5, 7, 3});
  CHECK(heed::argmax(x, 1).dtype() == DType::Int64);
  CHECK(heed::argmax(x, 1).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
  CHECK(heed::argmin(x, 1).to_vector<int64_t>() == std::vector<int64_t>{0, 3, 0});
  CHECK(heed::argmax(x, 0, true).shape() == Shape{1, 4});
  CHECK(heed::argmax(x, 0, true).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 1, 2});
  CHECK(heed::argmin(x, -2).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 1});
  check_values(heed::min(x, 0, true), {1, 4}, {1, 0, 3, -1});
  // the gradient goes to the first maximum only
  heed::sum(heed::max(x, 1)).backward();
  check_values(x.grad(), {3, 4}, {0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0});

  Tensor r = heed::randn({2, 3, 4}, DType::Float64).requires_grad_();
  for (int64_t axis : {0, 1, 2, -1})
    for (bool keepdim : {false, true}) {
      check_grad([&](const Tensor& t) { return heed::max(t, axis, keepdim); }, r, "max axis " + std::to_string(axis));
      check_grad([&](const Tensor& t) { return heed::min(t, axis, keepdim); }, r, "min axis " + std::to_string(axis));
    }
  // argmax of a non-contiguous view
  Tensor v = iota234().transpose(1, 2);  // (2, 4, 3): v[i][k][j] = 12 i + 4 j + k
  CHECK(heed::argmax(v, 2).to_vector<int64_t>() == std::vector<int64_t>(8, 2));
  CHECK(heed::argmin(v, 0).to_vector<int64_t>() == std::vector<int64_t>(12, 0));
}

TEST_CASE("logsumexp: values, stability, -inf rows, gradcheck") {
  Tensor x = heed::tensor({0.0, 1.0, 2.0, -1.0, 0.5, 3.0}, {2, 3}, DType::Float64);
  check_values(heed::logsumexp(x, 1), {2},
               {std::log(1 + std::exp(1.0) + std::exp(2.0)), std::log(std::exp(-1.0) + std::exp(0.5) + std::exp(3.0))});
  check_values(heed::logsumexp(x, 0, true), {1, 3},
               {std::log(1 + std::exp(-1.0)), std::log(std::exp(1.0) + std::exp(0.5)), std::log(std::exp(2.0) + std::exp(3.0))});
  // huge values stay finite
  Tensor huge = heed::tensor({1000.0, 1000.0, -1000.0}, {3}, DType::Float32);
  CHECK(heed::logsumexp(huge, 0).item() == doctest::Approx(1000.0 + std::log(2.0)));
  // a row of only -inf gives -inf and no NaN gradient
  const double inf = std::numeric_limits<double>::infinity();
  Tensor neg = heed::tensor({-inf, -inf, 0.0, 1.0}, {2, 2}, DType::Float64).requires_grad_();
  Tensor l = heed::logsumexp(neg, 1);
  CHECK(l.to_vector<double>()[0] == -inf);
  heed::sum(l * heed::tensor({0.0, 1.0}, {2}, DType::Float64)).backward();
  for (double g : neg.grad().to_vector<double>()) CHECK(std::isfinite(g));

  Tensor r = heed::randn({2, 3, 4}, DType::Float64).requires_grad_();
  for (int64_t axis : {0, 1, 2, -1})
    for (bool keepdim : {false, true})
      check_grad([&](const Tensor& t) { return heed::logsumexp(t, axis, keepdim); }, r,
                 "logsumexp axis " + std::to_string(axis));
}

TEST_CASE("var: correction, axes, keepdim, gradcheck") {
  Tensor x = heed::tensor({1.0, 2.0, 3.0, 4.0, 2.0, 2.0, 2.0, 6.0}, {2, 4}, DType::Float64);
  check_values(heed::var(x, {1}), {2}, {5.0 / 3, 12.0 / 3});
  check_values(heed::var(x, {1}, 0), {2}, {1.25, 3.0});
  check_values(heed::var(x, {0}, 1, true), {1, 4}, {0.5, 0, 0.5, 2});
  check_values(heed::var(x, {}), {}, {17.5 / 7});  // all 8 values: mean 2.75, squared deviations sum to 17.5
  // non-adjacent axes: var over i, k of 12 i + 4 j + k = var of {k, 12 + k} (population: 36 + 1.25)
  check_values(heed::var(iota234(), {0, 2}, 0), {3}, {37.25, 37.25, 37.25});
  // one value with correction 1: 0 / 0 = NaN, as in PyTorch
  CHECK(std::isnan(heed::var(heed::tensor({3.0}, {1}, DType::Float64), {0}).item()));

  Tensor r = heed::randn({2, 3, 4}, DType::Float64).requires_grad_();
  for (const auto& axes : kAxisSets)
    for (int64_t correction : {0, 1})
      for (bool keepdim : {false, true})
        check_grad([&](const Tensor& t) { return heed::var(t, axes, correction, keepdim); }, r,
                   "var axes " + heed::shape_str(axes) + " correction " + std::to_string(correction));
}

TEST_CASE("reductions: errors name the op, the axis and the shape") {
  Tensor x = heed::zeros({2, 3});
  std::string e = error_of([&] { heed::sum(x, {2}); });
  CHECK_MESSAGE(e.find("sum") != std::string::npos, e);
  CHECK_MESSAGE(e.find("axis 2") != std::string::npos, e);
  e = error_of([&] { heed::mean(x, {0, -2}); });
  CHECK_MESSAGE(e.find("mean") != std::string::npos, e);
  CHECK_MESSAGE(e.find("more than once") != std::string::npos, e);
  CHECK_MESSAGE(e.find("[2, 3]") != std::string::npos, e);
  e = error_of([&] { heed::max(heed::zeros({0, 3})); });
  CHECK_MESSAGE(e.find("max") != std::string::npos, e);
  CHECK_MESSAGE(e.find("[0, 3]") != std::string::npos, e);
  e = error_of([&] { heed::argmax(heed::zeros({2, 0}), 1); });
  CHECK_MESSAGE(e.find("argmax") != std::string::npos, e);
  e = error_of([&] { heed::mean(heed::index_tensor({1, 2})); });
  CHECK_MESSAGE(e.find("mean") != std::string::npos, e);
  CHECK_MESSAGE(e.find("Int64") != std::string::npos, e);
  e = error_of([&] { heed::logsumexp(x, -3); });
  CHECK_MESSAGE(e.find("logsumexp") != std::string::npos, e);
  e = error_of([&] { heed::var(heed::index_tensor({1, 2}), {0}); });
  CHECK_MESSAGE(e.find("var") != std::string::npos, e);
  e = error_of([&] { heed::argmin(heed::bool_tensor({true}), 0); });
  CHECK_MESSAGE(e.find("argmin") != std::string::npos, e);
}
