// The custom-op recipe from heed/autograd.hpp, checked with the public gradcheck.
#include <doctest/doctest.h>

#include <heed/heed.hpp>

namespace {
// y = x^3 written as a user would: forward on detached values, backward 3x^2 * gy.
heed::Tensor my_cube(const heed::Tensor& x) {
  heed::Tensor xd = x.detach();
  heed::Tensor y = xd * xd * xd;
  heed::record("my_cube", y, {x}, [x](const heed::Tensor& gy) { heed::accumulate_grad(x, gy * x * x * 3.0); });
  return y;
}
}  // namespace

TEST_CASE("custom op: forward, backward, and gradcheck") {
  heed::Tensor x = heed::tensor({1.0, -2.0, 0.5}, {3}, heed::DType::Float64).requires_grad_();
  heed::Tensor y = my_cube(x);
  CHECK(heed::allclose(y, heed::tensor({1.0, -8.0, 0.125}, {3}, heed::DType::Float64)));
  heed::sum(y).backward();
  CHECK(heed::allclose(x.grad(), heed::tensor({3.0, 12.0, 0.75}, {3}, heed::DType::Float64)));
  auto r = heed::gradcheck([](const std::vector<heed::Tensor>& in) { return my_cube(in[0]); }, {x});
  CHECK_MESSAGE(r.ok, r.report);
  CHECK(r.elements_checked == 3);
}

TEST_CASE("custom op: nothing is recorded when no input requires grad") {
  heed::clear_tape();
  heed::Tensor y = my_cube(heed::ones({2}, heed::DType::Float64));
  CHECK(heed::tape_size() == 0);
  CHECK_FALSE(y.requires_grad());
}
