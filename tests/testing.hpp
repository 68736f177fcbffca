// tests/testing.hpp — small helpers shared by the test files (one copy instead of one per file).
#pragma once
#include <doctest/doctest.h>

#include <heed/heed.hpp>
#include <string>
#include <vector>

namespace heed::testing {

// The message of the heed::Error that f() throws, or "(no error)".
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const heed::Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Checks t's shape, then every element against `expected` (row-major) with relative tolerance tol.
inline void check_values(const Tensor& t, const Shape& shape, const std::vector<double>& expected, double tol = 1e-9) {
  REQUIRE(t.shape() == shape);
  const std::vector<double> got = t.to_vector<double>();
  REQUIRE(got.size() == expected.size());
  for (std::size_t i = 0; i < got.size(); ++i) CHECK_MESSAGE(got[i] == doctest::Approx(expected[i]).epsilon(tol), i);
}

// heed::gradcheck of f at `inputs` passes and checked at least one element.
inline void check_grad(const GradcheckFn& f, const std::vector<Tensor>& inputs, const std::string& what = "") {
  const GradcheckResult r = gradcheck(f, inputs);
  CHECK_MESSAGE(r.ok, what << "\n" << r.report);
  CHECK(r.elements_checked > 0);
}

}  // namespace heed::testing
