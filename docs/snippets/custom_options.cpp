// Options for your own layer: HEED_ARG declares a typed field with its default, a chainable setter and a
// getter of the same name; reset() re-draws the layer's own parameters.
#include <heed/heed.hpp>

#include <cstdio>

// The settings of Dense: two required sizes, the rest with defaults.
struct DenseOptions {
  DenseOptions(int64_t in, int64_t out) : in_features_(in), out_features_(out) {}
  HEED_ARG(int64_t, in_features);           ///< size of the input's last axis
  HEED_ARG(int64_t, out_features);          ///< size of the output's last axis
  HEED_ARG(bool, bias) = true;              ///< learn a bias
  HEED_ARG(double, negative_slope) = 0.01;  ///< of the LeakyReLU
  HEED_ARG(double, init_std) = 0.02;        ///< the weight starts as N(0, init_std^2)
};

// y = leaky_relu(x W^T + b)
class Dense : public heed::nn::Module {
 public:
  explicit Dense(const DenseOptions& options) : Module("Dense"), options_(options) {
    weight = register_parameter("weight", heed::empty({options.out_features(), options.in_features()}));
    if (options.bias()) bias = register_parameter("bias", heed::empty({options.out_features()}));
    reset();
  }
  void reset() override {  // model->reset() reaches this through every container above the layer
    heed::init::normal_(weight, 0.0, options_.init_std());
    if (bias.defined()) heed::init::zeros_(bias);
  }
  heed::Tensor forward(const heed::Tensor& x) override {
    return heed::leaky_relu(heed::linear(x, weight, bias), options_.negative_slope());
  }
  const DenseOptions& options() const { return options_; }  // the settings it was made with

  heed::Tensor weight, bias;

 private:
  DenseOptions options_;
};

int main() {
  heed::manual_seed(1);
  auto model = std::make_shared<heed::nn::Sequential>();
  model->push_back(std::make_shared<Dense>(DenseOptions(4, 8).negative_slope(0.2)));   // setters chain
  model->push_back(std::make_shared<Dense>(DenseOptions(8, 2).bias(false).init_std(0.5)));
  const auto& first = static_cast<const Dense&>(*(*model)[0]).options();
  std::printf("in_features=%lld negative_slope=%g bias=%d\n", static_cast<long long>(first.in_features()),
              first.negative_slope(), first.bias());

  // reset() on the container re-draws every Dense, in registration order: after the same seed, the
  // same values as at construction.
  const heed::Tensor before = (*model)(heed::ones({1, 4}));
  heed::manual_seed(1);
  model->reset();
  const bool same = heed::allclose((*model)(heed::ones({1, 4})), before, 0, 0);
  std::printf("reset after the same seed gives the same model: %s\n", same ? "yes" : "no");
  return same && first.negative_slope() == 0.2 && first.bias() ? 0 : 1;
}
