// tests/testing.hpp — small helpers shared by the test files (one copy instead of one per file): include
// it and use `using heed::testing::error_of;` etc. rather than writing a local copy.
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

// A Float64 N(0, 1) tensor that requires grad: a gradcheck input.
inline Tensor randn64(const Shape& shape) { return heed::randn(shape, DType::Float64).requires_grad_(); }

// s contains part.
inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// got is defined, has want's shape and allclose(got, want, tol, tol); `what` names it in the failure
// (e.g. a PyTorch fixture's tensor).
inline void check_close(const Tensor& got, const Tensor& want, const std::string& what, double tol = 1e-5) {
  REQUIRE_MESSAGE(got.defined(), what << " is undefined");
  REQUIRE_MESSAGE(got.shape() == want.shape(),
                  what << ": shape " << heed::shape_str(got.shape()) << " vs PyTorch " << heed::shape_str(want.shape()));
  CHECK_MESSAGE(heed::allclose(got, want, tol, tol), what << ": max |heed - PyTorch| = " << heed::max_abs_diff(got, want));
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
