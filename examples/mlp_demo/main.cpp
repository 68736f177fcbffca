// mlp_demo — the smallest complete heed program: an MLP learns to separate two interleaved spirals.
//
//   ./build/examples/mlp_demo/mlp_demo [--epochs 60] [--hidden 32] [--points 1000] [--lr 0.01] [--seed 1]
//
// Shows the core loop every heed model uses: tensors, a Module built from Linear layers, a forward pass
// recorded on the tape, loss.backward(), an optimizer step, evaluation under NoGradGuard.
#include <CLI/CLI.hpp>
#include <cmath>
#include <heed/heed.hpp>

namespace {

// Two spirals, label 0 and 1, with a little noise: points (N, 2), labels (N, 1).
std::pair<heed::Tensor, heed::Tensor> make_spirals(int64_t n, heed::Generator& gen) {
  heed::Tensor points = heed::empty({n, 2});
  heed::Tensor labels = heed::empty({n, 1});
  float* p = points.data<float>();
  float* l = labels.data<float>();
  for (int64_t i = 0; i < n; ++i) {
    const int label = static_cast<int>(i % 2);
    const double t = 0.5 + 3.0 * M_PI * gen.uniform();  // angle along the arm
    const double sign = label == 0 ? 1.0 : -1.0;
    p[2 * i] = static_cast<float>(sign * t * std::cos(t) / 10.0 + 0.05 * gen.normal());
    p[2 * i + 1] = static_cast<float>(sign * t * std::sin(t) / 10.0 + 0.05 * gen.normal());
    l[i] = static_cast<float>(label);
  }
  return {points, labels};
}

class MLP : public heed::nn::Module {
 public:
  MLP(int64_t hidden) : Module("MLP") {
    net = register_module("net", std::make_shared<heed::nn::Sequential>(std::vector<std::shared_ptr<heed::nn::Module>>{
                                     std::make_shared<heed::nn::Linear>(2, hidden), std::make_shared<heed::nn::Tanh>(),
                                     std::make_shared<heed::nn::Linear>(hidden, hidden), std::make_shared<heed::nn::Tanh>(),
                                     std::make_shared<heed::nn::Linear>(hidden, 1)}));
  }
  heed::Tensor forward(const heed::Tensor& x) override { return (*net)(x); }  // logits
  std::shared_ptr<heed::nn::Sequential> net;
};

double accuracy(const heed::Tensor& logits, const heed::Tensor& labels) {
  heed::Tensor predicted = heed::gt(logits, 0.0).to(heed::DType::Float32);
  return heed::mean(heed::eq(predicted, labels).to(heed::DType::Float32)).item();
}

}  // namespace

// A function-try-block: bad input ends with a message and exit code 1, never std::terminate.
int main(int argc, char** argv) try {
  CLI::App app{"heed mlp_demo: an MLP separates two spirals"};
  int epochs = 60, hidden = 32, points = 1000, batch = 50, seed = 1;
  double lr = 0.01;
  app.add_option("--epochs", epochs, "training epochs")->check(CLI::PositiveNumber);
  app.add_option("--hidden", hidden, "hidden units per layer")->check(CLI::PositiveNumber);
  app.add_option("--points", points, "training points (the test set has a quarter as many)")->check(CLI::Range(10, 10000000));
  app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "Adam learning rate")->check(CLI::PositiveNumber);
  app.add_option("--seed", seed, "random seed");
  CLI11_PARSE(app, argc, argv);

  heed::manual_seed(static_cast<uint64_t>(seed));
  heed::Generator data_gen(static_cast<uint64_t>(seed) + 1);
  auto [train_x, train_y] = make_spirals(points, data_gen);
  auto [test_x, test_y] = make_spirals(std::max(points / 4, 2), data_gen);

  auto model = std::make_shared<MLP>(hidden);
  fmt::print("{}", model->summary(heed::zeros({batch, 2})));
  heed::optim::Adam optimizer(model->parameters(), heed::optim::AdamOptions(lr));

  const int64_t n = train_x.size(0);
  const int64_t steps = (n + batch - 1) / batch;
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    heed::ProgressBar bar(steps, fmt::format("epoch {:>3}/{}", epoch, epochs));
    heed::Tensor order = heed::randint(0, n, {n}, &data_gen);  // bootstrap-style shuffled batches
    double loss_sum = 0.0;
    for (int64_t s = 0; s < steps; ++s) {
      heed::Tensor idx = heed::narrow(order, 0, s * batch, std::min<int64_t>(batch, n - s * batch));
      heed::Tensor x = heed::index_select(train_x, 0, idx), y = heed::index_select(train_y, 0, idx);
      optimizer.zero_grad();
      heed::Tensor loss = heed::binary_cross_entropy_with_logits((*model)(x), y);
      loss.backward();
      optimizer.step();
      loss_sum += loss.item();
      bar.update(1, {{"loss", loss_sum / static_cast<double>(s + 1)}});
    }
    heed::NoGradGuard no_grad;
    bar.finish({{"test_acc", accuracy((*model)(test_x), test_y)}});
  }
  heed::NoGradGuard no_grad;
  const double test_acc = accuracy((*model)(test_x), test_y);
  fmt::print("final: train accuracy {:.3f}, test accuracy {:.3f} (chance 0.5)\n", accuracy((*model)(train_x), train_y),
             test_acc);
  return 0;
} catch (const std::exception& e) {  // heed::Error or anything else
  fmt::print(stderr, "error: {}\n", e.what());
  return 1;
}
