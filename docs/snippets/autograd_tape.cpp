// The tape: what is recorded, when it is freed, and how to keep memory flat.
#include <heed/heed.hpp>

#include <cstdio>

int main() {
  heed::Tensor w = heed::tensor({1.0, 2.0}, {2}).requires_grad_();   // a leaf
  heed::Tensor c = heed::tensor({3.0, 4.0}, {2});                    // a constant: no grad

  heed::Tensor h = w * c;           // recorded: w requires grad
  heed::Tensor loss = heed::sum(h * h);
  std::printf("entries on the tape: %zu\n", heed::tape_size());   // mul, mul, sum -> 3

  loss.backward(heed::Tensor(), /*retain_graph=*/true);   // keep the tape for a second pass
  std::printf("w.grad %s; h.grad defined: %d\n", w.grad().to_string().c_str(), h.grad().defined());
  loss.backward();                  // leaves accumulate: w.grad doubles; the tape is then cleared
  std::printf("after the second backward: w.grad %s, tape %zu\n", w.grad().to_string().c_str(),
              heed::tape_size());

  bool threw = false;
  try {
    loss.backward();                // its entries are gone
  } catch (const heed::Error& e) {
    threw = true;
    std::printf("third backward: %s\n", e.what());
  }

  {
    heed::NoGradGuard no_grad;      // evaluation: nothing is recorded, nothing is kept alive
    heed::Tensor y = heed::sum(w * c);
    std::printf("under NoGradGuard: tape %zu, requires_grad %d\n", heed::tape_size(), y.requires_grad());
  }

  heed::Tensor unused = w * 3.0;    // recorded, but no backward will run: free it by hand
  heed::clear_tape();
  const bool ok = threw && heed::tape_size() == 0 && heed::allclose(w.grad(), heed::tensor({36.0, 128.0}, {2}));
  w.zero_grad();                    // what optimizer.zero_grad() does for every parameter

  heed::Tensor g = w * c;
  g.retain_grad();                  // keep the gradient of this non-leaf too
  heed::sum(g * g).backward();
  std::printf("g.grad %s (2 * g)\n", g.grad().to_string().c_str());
  return ok && heed::allclose(g.grad(), heed::tensor({6.0, 16.0}, {2})) ? 0 : 1;
}
