// Tensor basics: creation, dtypes, accessors, printing, random generators, in-place helpers.
#include <doctest/doctest.h>

#include <cstdint>
#include <heed/heed.hpp>

using heed::DType;
using heed::Tensor;

TEST_CASE("tensor: creation helpers and accessors") {
  Tensor z = heed::zeros({2, 3});
  CHECK(z.shape() == heed::Shape{2, 3});
  CHECK(z.strides() == heed::Shape{3, 1});
  CHECK(z.numel() == 6);
  CHECK(z.dim() == 2);
  CHECK(z.size(-1) == 3);
  CHECK(z.dtype() == DType::Float32);
  CHECK(z.is_contiguous());
  CHECK(heed::sum(z).item() == 0.0);
  CHECK(heed::full({2}, 2.5, DType::Float64).to_vector<double>() == std::vector<double>{2.5, 2.5});
  CHECK(heed::arange(4).to_vector<float>() == std::vector<float>{0, 1, 2, 3});
  CHECK(heed::arange(1, 2, 0.25, DType::Float64).numel() == 4);
  CHECK(heed::linspace(0, 1, 5, DType::Float64).to_vector<double>()[1] == doctest::Approx(0.25));
  CHECK(heed::eye(3).to_vector<float>() == std::vector<float>{1, 0, 0, 0, 1, 0, 0, 0, 1});
  CHECK(heed::scalar(3.0).dim() == 0);
  CHECK(heed::scalar(3.0).item() == 3.0);
  Tensor t = heed::tensor({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.to_vector<int64_t>() == std::vector<int64_t>{1, 2, 3, 4, 5, 6});
  CHECK(reinterpret_cast<std::uintptr_t>(t.data<float>()) % 64 == 0);
  CHECK(heed::index_tensor({4, 5}).dtype() == DType::Int64);
  CHECK(heed::bool_tensor({true, false}).to_vector<int>() == std::vector<int>{1, 0});
}

TEST_CASE("tensor: bad input throws heed::Error naming the problem") {
  CHECK_THROWS_WITH_AS(heed::tensor({1, 2, 3}, {2, 2}), doctest::Contains("[2, 2]"), heed::Error);
  CHECK_THROWS_WITH_AS(heed::zeros({2, 2}).item(), doctest::Contains("one-element"), heed::Error);
  CHECK_THROWS_WITH_AS(heed::zeros({2}).data<double>(), doctest::Contains("Float32"), heed::Error);
  CHECK_THROWS_WITH_AS(heed::zeros({2, 3}).size(2), doctest::Contains("out of range"), heed::Error);
  CHECK_THROWS_AS(heed::zeros({-1}), heed::Error);
  CHECK_THROWS_WITH_AS(Tensor().shape(), doctest::Contains("undefined"), heed::Error);
  CHECK_THROWS_AS(heed::randint(3, 3, {2}), heed::Error);
}

TEST_CASE("tensor: dtype conversion") {
  Tensor f = heed::tensor({1.7, -0.2, 0.0});
  CHECK(f.to(DType::Int64).to_vector<int64_t>() == std::vector<int64_t>{1, 0, 0});
  CHECK(f.to(DType::Bool).to_vector<int>() == std::vector<int>{1, 1, 0});
  Tensor d = f.to(DType::Float64);
  CHECK(d.dtype() == DType::Float64);
  CHECK(d.to_vector<double>()[0] == doctest::Approx(1.7).epsilon(1e-6));
}

TEST_CASE("tensor: conversion between float dtypes is differentiable") {
  Tensor x = heed::tensor({1.0, 2.0}, {2}, DType::Float64).requires_grad_();
  Tensor y = heed::sum(x.to(DType::Float32) * 3.0);
  y.backward();
  CHECK(x.grad().dtype() == DType::Float64);
  CHECK(x.grad().to_vector<double>() == std::vector<double>{3.0, 3.0});
}

TEST_CASE("tensor: fill_ and copy_ with broadcasting, on views") {
  Tensor t = heed::zeros({2, 3}, DType::Float64);
  t.copy_(heed::tensor({1.0, 2.0, 3.0}, {3}, DType::Float64));
  CHECK(t.to_vector<double>() == std::vector<double>{1, 2, 3, 1, 2, 3});
  Tensor col = heed::select(t, 1, 1);  // a strided view of column 1
  col.fill_(9.0);
  CHECK(t.to_vector<double>() == std::vector<double>{1, 9, 3, 1, 9, 3});
  CHECK_THROWS_WITH_AS(t.copy_(heed::zeros({4})), doctest::Contains("copy_"), heed::Error);
}

TEST_CASE("tensor: printing") {
  Tensor t = heed::tensor({1, 2, 3, 4}, {2, 2});
  std::string s = fmt::format("{}", t);
  CHECK(s.find("[[1, 2], [3, 4]]") != std::string::npos);
  CHECK(s.find("shape=[2, 2]") != std::string::npos);
  std::string long_s = heed::arange(100).to_string();
  CHECK(long_s.find("...") != std::string::npos);
  CHECK(heed::index_tensor({7}).to_string().find("7") != std::string::npos);
}

TEST_CASE("random: manual_seed makes draws reproducible; state round-trips") {
  heed::manual_seed(42);
  Tensor a = heed::randn({5});
  heed::manual_seed(42);
  Tensor b = heed::randn({5});
  CHECK(heed::allclose(a, b, 0, 0));
  heed::Generator g(7);
  g.normal();  // leaves a spare normal in the state
  const std::string state = g.state();
  const double next1 = g.normal(), next2 = g.uniform();
  heed::Generator h(0);
  h.set_state(state);
  CHECK(h.normal() == next1);
  CHECK(h.uniform() == next2);
  CHECK_THROWS_AS(h.set_state("not a state"), heed::Error);
}

TEST_CASE("random: distributions have the right moments and ranges") {
  heed::Generator g(3);
  std::vector<double> n = heed::randn({20000}, DType::Float64, &g).to_vector<double>();
  double mean = 0, sq = 0;
  for (double v : n) { mean += v; sq += v * v; }
  mean /= n.size();
  CHECK(std::fabs(mean) < 0.03);
  CHECK(sq / n.size() == doctest::Approx(1.0).epsilon(0.03));
  std::vector<double> u = heed::uniform({1000}, -2, 3, DType::Float64, &g).to_vector<double>();
  for (double v : u) CHECK((v >= -2 && v < 3));
  std::vector<int64_t> r = heed::randint(0, 3, {300}, &g).to_vector<int64_t>();
  int counts[3] = {0, 0, 0};
  for (int64_t v : r) { REQUIRE((v >= 0 && v < 3)); counts[v]++; }
  for (int c : counts) CHECK(c > 60);
}

TEST_CASE("tensor: allclose and max_abs_diff") {
  Tensor a = heed::tensor({1.0, 2.0});
  CHECK(heed::allclose(a, heed::tensor({1.0, 2.000001})));
  CHECK_FALSE(heed::allclose(a, heed::tensor({1.0, 2.1})));
  CHECK_FALSE(heed::allclose(a, heed::tensor({1.0, 2.0, 3.0})));
  CHECK(heed::max_abs_diff(a, heed::tensor({1.5, 2.0})) == doctest::Approx(0.5));
}

TEST_CASE("progress: plain mode prints lines with metrics") {
  heed::ProgressBar bar(8, "test", /*force_plain=*/true);
  for (int i = 0; i < 8; ++i) bar.update(1, {{"loss", 1.0 / (i + 1)}});
  bar.finish({{"acc", 0.5}});
  CHECK(bar.elapsed_seconds() >= 0.0);
  CHECK(heed::format_metrics({{"loss", 0.25}}) == "loss 0.2500");
  CHECK(heed::format_duration(75) == "1m15s");
}
