// A custom differentiable op: forward on detached values, backward recorded with heed::record, checked
// with heed::gradcheck.
#include <heed/heed.hpp>

#include <cstdio>

// softsign(x) = x / (1 + |x|), d/dx = 1 / (1 + |x|)^2.
heed::Tensor softsign(const heed::Tensor& x) {
  heed::Tensor xd = x.detach();                      // compute without recording anything
  heed::Tensor denom = 1.0 + heed::abs(xd);
  heed::Tensor y = xd / denom;
  // Recorded only when grad mode is on and x requires grad. Capture by value what backward needs.
  heed::record("softsign", y, {x}, [x, denom](const heed::Tensor& grad_y) {
    heed::accumulate_grad(x, grad_y / (denom * denom));
  });
  return y;
}

int main() {
  heed::Tensor x = heed::randn({3, 5}, heed::DType::Float64).requires_grad_();
  auto result = heed::gradcheck([](const std::vector<heed::Tensor>& in) { return softsign(in[0]); }, {x});
  std::printf("softsign gradcheck: %s, max abs error %.2e over %lld elements\n",
              result.ok ? "ok" : result.report.c_str(), result.max_abs_error,
              static_cast<long long>(result.elements_checked));

  // A wrong backward is caught: d/dx written as 1 / (1 + |x|) instead.
  auto broken = [](const heed::Tensor& in) {
    heed::Tensor denom = 1.0 + heed::abs(in.detach());
    heed::Tensor y = in.detach() / denom;
    heed::record("softsign_wrong", y, {in}, [in, denom](const heed::Tensor& g) { heed::accumulate_grad(in, g / denom); });
    return y;
  };
  auto wrong = heed::gradcheck([&](const std::vector<heed::Tensor>& in) { return broken(in[0]); }, {x});
  std::printf("wrong backward detected: %s\n", wrong.ok ? "no" : "yes");
  return result.ok && !wrong.ok ? 0 : 1;
}
