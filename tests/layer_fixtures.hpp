// tests/layer_fixtures.hpp — compares a heed layer with PyTorch's golden values
// (tests/fixtures/make_layer_fixtures.py writes them; shared by test_layers.cpp and test_conv.cpp).
//
// For fixture case `name`: loads layer_<name>.state.safetensors into the module with Module::load, runs it
// on the stored input, and checks the output, the gradients of L = sum(output * probe) for the input
// and every parameter, and print(module), all against PyTorch.
#pragma once
#include <doctest/doctest.h>

#include <string>

#include <heed/heed.hpp>
#include <heed/io/safetensors.hpp>

namespace layer_fixtures {

inline std::string fixture_path(const std::string& name, const char* kind) {
  return std::string(HEED_FIXTURE_DIR) + "/layer_" + name + "." + kind + ".safetensors";
}

inline void check_close(const heed::Tensor& got, const heed::Tensor& want, const std::string& what) {
  REQUIRE_MESSAGE(got.defined(), what << " is undefined");
  REQUIRE_MESSAGE(got.shape() == want.shape(), what << ": shape " << heed::shape_str(got.shape()) << " vs PyTorch "
                                                    << heed::shape_str(want.shape()));
  CHECK_MESSAGE(heed::allclose(got, want, 1e-5, 1e-5),
                what << ": max |heed - PyTorch| = " << heed::max_abs_diff(got, want));
}

inline void check_against_pytorch(heed::nn::Module& module, const std::string& name) {
  CAPTURE(name);
  const heed::nn::LoadResult loaded = module.load(fixture_path(name, "state"));
  CHECK_MESSAGE(loaded.ok(), loaded.to_string());
  const heed::io::SafetensorsFile io = heed::io::load_safetensors(fixture_path(name, "io"));
  CHECK(module.to_string() == io.metadata.at("repr"));

  heed::Tensor input = io.get("input").clone();
  const bool float_input = heed::is_floating(input.dtype());
  if (float_input) input.requires_grad_();
  module.zero_grad();
  heed::Tensor output = module(input);
  check_close(output, io.get("output"), "output");

  heed::sum(output * io.get("probe")).backward();
  if (float_input) check_close(input.grad(), io.get("grad.input"), "grad.input");
  for (const auto& [pname, p] : module.named_parameters())
    check_close(p.grad(), io.get("grad." + pname), "grad." + pname);
}

}  // namespace layer_fixtures
