// Tensors and autograd without any layer: make tensors, compute, differentiate.
#include <heed/heed.hpp>

#include <iostream>

int main() {
  heed::Tensor a = heed::tensor({1, 2, 3, 4, 5, 6}, {2, 3});   // Float32, row-major, shape (2, 3)
  heed::Tensor b = heed::ones({3});                               // broadcasts against (2, 3)
  std::cout << a + b << "\n" << a.transpose(0, 1) << "\n";       // transpose is a view, no copy

  // requires_grad_() marks a leaf; every op on it from then on is recorded on the tape.
  heed::Tensor w = heed::tensor({0.5, -1.0, 2.0}, {3}).requires_grad_();
  heed::Tensor loss = heed::sum(heed::tanh(heed::matmul(a, w)));  // a scalar, shape []
  loss.backward();                                                 // d loss / d w into w.grad()
  std::cout << "loss " << loss.item() << ", grad " << w.grad() << "\n";

  // The same gradient by hand: sum_i (1 - tanh(a_i . w)^2) * a_i.
  heed::Tensor t = heed::tanh(heed::matmul(a, w.detach()));
  heed::Tensor expected = heed::sum((1.0 - t * t).unsqueeze(1) * a, {0});
  return heed::allclose(w.grad(), expected, 1e-5, 1e-6) ? 0 : 1;
}
