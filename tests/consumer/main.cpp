// A program outside heed's source tree: trains a two-layer network for a few steps with an installed heed
// (or one added with add_subdirectory) and prints the loss of every step, for run_consumer_test.sh.
#include <heed/heed.hpp>

#include <cstdio>
#include <memory>

int main() {
  std::printf("heed %s (%d.%d.%d)\n", HEED_VERSION_STRING, HEED_VERSION_MAJOR, HEED_VERSION_MINOR,
              HEED_VERSION_PATCH);
  heed::manual_seed(0);
  heed::Tensor x = heed::randn({128, 2});
  heed::Tensor y = heed::sin(heed::sum(x, {1}, /*keepdim=*/true));  // a smooth nonlinear target
  auto model = std::make_shared<heed::nn::Sequential>();
  model->push_back("0", std::make_shared<heed::nn::Linear>(2, 16));
  model->push_back("1", std::make_shared<heed::nn::Tanh>());
  model->push_back("2", std::make_shared<heed::nn::Linear>(16, 1));
  heed::optim::Adam opt(model->parameters(), heed::optim::AdamOptions(0.02));
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    heed::Tensor loss = heed::mse_loss((*model)(x), y);
    loss.backward();
    opt.step();
    std::printf("step %d loss %.6f\n", step, loss.item());
  }
  return 0;
}
