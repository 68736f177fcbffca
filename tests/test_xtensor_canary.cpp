// Canary for the toolchain facts in docs/toolchain.md: under -std=c++20, g++ 12 silently breaks
// assignment of a container to a strided view and xt::pad. heed builds as C++17; this test fails if that
// ever changes.
#include <doctest/doctest.h>

#include <xtensor/xarray.hpp>
#include <xtensor/xpad.hpp>
#include <xtensor/xview.hpp>
#include <xtensor/xmanipulation.hpp>

TEST_CASE("xtensor canary: view assignment and pad work (C++17)") {
  CHECK(__cplusplus == 201703L);
  xt::xarray<float> arr = {{1, 2}, {3, 4}};
  xt::xarray<float> out = xt::zeros<float>({2, 2});
  xt::transpose(out) = arr;
  CHECK(out(0, 1) == 3.0f);
  CHECK(out(1, 0) == 2.0f);
  xt::xarray<float> padded = xt::pad(arr, 1);
  CHECK(padded.shape()[0] == 4);
  CHECK(padded(1, 1) == 1.0f);
  CHECK(padded(2, 2) == 4.0f);
}
