// A custom Module: parameters and children registered by name, checked with gradcheck, saved and loaded.
#include <heed/heed.hpp>

#include <cstdio>

// y = fc(x) * scale: a Linear child and a per-feature scale parameter of its own.
class ScaledLinear : public heed::nn::Module {
 public:
  ScaledLinear(int64_t in, int64_t out) : Module("ScaledLinear") {
    fc = register_module("fc", std::make_shared<heed::nn::Linear>(in, out));
    scale = register_parameter("scale", heed::ones({out}));   // the name is its state_dict key
  }
  heed::Tensor forward(const heed::Tensor& x) override { return (*fc)(x) * scale; }

  std::shared_ptr<heed::nn::Linear> fc;
  heed::Tensor scale;
};

int main() {
  heed::manual_seed(1);
  ScaledLinear layer(4, 3);
  for (auto& [name, p] : layer.named_parameters()) std::printf("%s %s\n", name.c_str(), p.to_string().c_str());

  // Gradients of the input and of every parameter against central differences, in float64.
  layer.to(heed::DType::Float64);
  std::vector<heed::Tensor> inputs = {heed::randn({2, 4}, heed::DType::Float64).requires_grad_()};
  for (heed::Tensor& p : layer.parameters()) inputs.push_back(p);   // parameters already require grad
  auto check = heed::gradcheck([&](const std::vector<heed::Tensor>& in) { return layer(in[0]); }, inputs);
  std::printf("gradcheck: %s (%lld elements)\n", check.ok ? "ok" : check.report.c_str(),
              static_cast<long long>(check.elements_checked));

  // Save (safetensors, PyTorch's names: fc.weight, fc.bias, scale) and load into a fresh instance.
  layer.save("scaled_linear.safetensors");
  ScaledLinear restored(4, 3);
  restored.to(heed::DType::Float64);
  restored.load("scaled_linear.safetensors");   // strict: a missing or extra name throws
  heed::NoGradGuard no_grad;
  const bool same = heed::allclose(restored(inputs[0]), layer(inputs[0]), 0, 0);
  std::printf("reloaded model gives the same output: %s\n", same ? "yes" : "no");
  return check.ok && same ? 0 : 1;
}
