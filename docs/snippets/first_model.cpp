// A first model: tensors, autograd, a Linear layer, an optimizer step.
#include <heed/heed.hpp>

#include <cstdio>

int main() {
  heed::manual_seed(0);
  heed::Tensor x = heed::randn({64, 3});                              // 64 samples, 3 features
  heed::Tensor y = heed::sum(x * 2.0, {1}, /*keepdim=*/true) + 1.0;   // target: 2*(x0+x1+x2) + 1
  auto model = std::make_shared<heed::nn::Linear>(3, 1);              // weight (1, 3), bias (1)
  heed::optim::Adam opt(model->parameters(), heed::optim::AdamOptions(0.05));
  double first = 0, last = 0;
  for (int step = 0; step < 200; ++step) {
    opt.zero_grad();                                   // forget the previous step's gradients
    heed::Tensor loss = heed::mse_loss((*model)(x), y);
    loss.backward();                                   // fills model->weight.grad() and bias.grad()
    opt.step();                                        // updates the parameters in place
    (step == 0 ? first : last) = loss.item();
  }
  std::printf("loss %.4f -> %.6f, weight %s, bias %s\n", first, last,
              model->weight.to_string().c_str(), model->bias.to_string().c_str());
  return last < 1e-3 * first ? 0 : 1;   // the weights approach (2, 2, 2) and the bias 1
}
