// The Module machinery: dotted parameter names, counting, train/eval propagation, printing, summary(),
// Sequential and a user-defined layer trained end to end, checkpoints (save/load bit for bit, truncated,
// corrupted and mismatched files, strict and non-strict loading).
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <heed/heed.hpp>
#include <heed/io/safetensors.hpp>

#include "testing.hpp"

namespace {

using heed::DType;
using heed::Tensor;
using heed::testing::contains;
using heed::testing::error_of;
using heed::testing::randn64;
namespace nn = heed::nn;

// A fresh path in the temporary directory, removed when the test ends.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name)
      : path((std::filesystem::temp_directory_path() /
              ("heed_test_module_" + std::to_string(::getpid()) + "_" + name + ".safetensors"))
                 .string()) {}
  ~TempFile() { std::remove(path.c_str()); }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::vector<float> values_of(const nn::Module& m) {
  std::vector<float> out;
  for (const auto& [name, t] : m.state_dict()) {
    std::vector<float> v = t.to_vector<float>();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// A user-defined layer: its own parameter, a child, and a forward; no framework change needed.
// y = x + scale * tanh(fc(x))
class ScaledResidual : public nn::Module {
 public:
  explicit ScaledResidual(int64_t width) : Module("ScaledResidual") {
    scale = register_parameter("scale", heed::full({width}, 0.5));
    fc = register_module("fc", std::make_shared<nn::Linear>(width, width));
  }
  Tensor forward(const Tensor& x) override { return x + scale * heed::tanh((*fc)(x)); }
  std::string extra_repr() const override { return fmt::format("width={}", scale.size(0)); }

  Tensor scale;
  std::shared_ptr<nn::Linear> fc;
};

// A nested model: encoder (Sequential of custom blocks, LayerNorm, Dropout) and a head.
class Net : public nn::Module {
 public:
  Net() : Module("Net") {
    encoder = register_module("encoder", std::make_shared<nn::Sequential>());
    encoder->push_back(std::make_shared<ScaledResidual>(4));
    encoder->push_back(std::make_shared<nn::LayerNorm>(heed::Shape{4}));
    encoder->push_back("drop", std::make_shared<nn::Dropout>(0.5));
    head = register_module("head", std::make_shared<nn::Linear>(4, 2));
  }
  Tensor forward(const Tensor& x) override { return (*head)((*encoder)(x)); }

  std::shared_ptr<nn::Sequential> encoder;
  std::shared_ptr<nn::Linear> head;
};

}  // namespace

TEST_CASE("module: dotted parameter names, counting, train/eval propagation, printing") {
  heed::manual_seed(27);
  auto net = std::make_shared<Net>();
  std::vector<std::string> names;
  for (const auto& [name, t] : net->named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"encoder.0.scale", "encoder.0.fc.weight", "encoder.0.fc.bias",
                                          "encoder.1.weight", "encoder.1.bias", "head.weight", "head.bias"});
  CHECK(net->parameter("encoder.0.fc.weight").shape() == heed::Shape{4, 4});
  CHECK_THROWS_WITH_AS(net->parameter("encoder.0.nope"), doctest::Contains("encoder.0.fc.bias"), heed::Error);
  CHECK(net->num_parameters() == 4 + 16 + 4 + 4 + 4 + 8 + 2);
  net->encoder->operator[](1)->parameter("bias").requires_grad_(false);
  CHECK(net->num_parameters(true) == 4 + 16 + 4 + 4 + 8 + 2);

  auto drop = std::dynamic_pointer_cast<nn::Dropout>((*net->encoder)[2]);
  REQUIRE(drop);
  CHECK(drop->is_training());
  net->eval();
  CHECK_FALSE(drop->is_training());
  CHECK_FALSE(net->encoder->is_training());
  Tensor x = heed::randn({3, 4});
  CHECK(heed::allclose((*net)(x), (*net)(x)));  // deterministic without dropout
  net->train();
  CHECK(drop->is_training());

  CHECK(net->to_string() ==
        "Net(\n"
        "  (encoder): Sequential(\n"
        "    (0): ScaledResidual(\n"
        "      width=4\n"
        "      (fc): Linear(in_features=4, out_features=4, bias=True)\n"
        "    )\n"
        "    (1): LayerNorm((4,), eps=1e-05, elementwise_affine=True)\n"
        "    (drop): Dropout(p=0.5)\n"
        "  )\n"
        "  (head): Linear(in_features=4, out_features=2, bias=True)\n"
        ")");
}

TEST_CASE("module: summary lists layers, output shapes and parameter counts") {
  heed::manual_seed(28);
  auto net = std::make_shared<Net>();
  net->encoder->operator[](2)->eval();  // summary must leave each module's mode as it was
  const std::string s = net->summary(heed::randn({7, 4}));
  CAPTURE(s);
  CHECK(contains(s, "Output shape"));
  CHECK(contains(s, "encoder.0"));
  CHECK(contains(s, "ScaledResidual"));
  CHECK(contains(s, "encoder.0.fc"));
  CHECK(contains(s, "[7, 4]"));
  CHECK(contains(s, "[7, 2]"));
  CHECK(contains(s, "Total params: 42"));
  CHECK(contains(s, "Trainable params: 42"));
  CHECK(net->is_training());
  CHECK(net->encoder->is_training());
  CHECK_FALSE(net->encoder->operator[](2)->is_training());
  // Without an input: no shapes, still the table and the totals.
  CHECK(contains(net->summary(), "Total params: 42"));
  // A module that is not owned by a shared_ptr can be summarized too.
  nn::Linear lin(3, 2);
  CHECK(contains(lin.summary(heed::randn({1, 3})), "[1, 2]"));
}

TEST_CASE("module: Sequential and a user-defined layer train end to end") {
  heed::manual_seed(29);
  nn::Sequential seq;
  seq.push_back(std::make_shared<ScaledResidual>(3)).push_back(std::make_shared<nn::GELU>());
  seq.push_back("out", std::make_shared<nn::Linear>(3, 1));
  CHECK(seq.size() == 3);
  CHECK(seq[2]->type_name() == "Linear");
  seq.to(DType::Float64);
  Tensor x = randn64({4, 3});
  std::vector<Tensor> inputs{x};
  for (const Tensor& p : seq.parameters()) inputs.push_back(p);
  auto r = heed::gradcheck([&](const std::vector<Tensor>& in) { return seq(in[0]); }, inputs);
  CHECK_MESSAGE(r.ok, r.report);
  CHECK(r.elements_checked == 12 + 3 + 9 + 3 + 3 + 1);

  // A few plain gradient steps lower a regression loss.
  Tensor target = heed::randn({4, 1}, DType::Float64);
  auto loss = [&] { return heed::mse_loss(seq(x.detach()), target); };
  const double before = loss().item();
  heed::clear_tape();
  for (int step = 0; step < 20; ++step) {
    seq.zero_grad();
    loss().backward();
    heed::NoGradGuard no_grad;
    for (Tensor& p : seq.parameters()) p.copy_(p - p.grad() * 0.1);
  }
  CHECK(loss().item() < before);
  heed::clear_tape();
}

TEST_CASE("module: save then load is bit-identical") {
  TempFile file("roundtrip");
  heed::manual_seed(30);
  auto a = std::make_shared<Net>();
  a->save(file.path);
  heed::manual_seed(31);
  auto b = std::make_shared<Net>();
  CHECK(values_of(*a) != values_of(*b));
  const nn::LoadResult res = b->load(file.path);
  CHECK(res.ok());
  CHECK(values_of(*a) == values_of(*b));  // exact float equality
  TempFile again("roundtrip_again");
  b->save(again.path);
  CHECK(read_bytes(file.path) == read_bytes(again.path));
  // Float64 parameters round-trip too.
  a->to(DType::Float64);
  a->save(file.path);
  auto c = std::make_shared<Net>();
  c->to(DType::Float64);
  c->load(file.path);
  for (const auto& [name, t] : c->state_dict()) {
    const std::string key = name;  // CAPTURE is a lambda: no structured binding in it (C++17)
    CAPTURE(key);
    CHECK(t.to_vector<double>() == a->parameter(name).to_vector<double>());
  }
}

TEST_CASE("module: truncated and corrupted files throw naming the file and the key") {
  TempFile file("damaged");
  nn::Linear lin(4, 3);
  lin.save(file.path);
  const std::string bytes = read_bytes(file.path);

  write_bytes(file.path, bytes.substr(0, bytes.size() - 5));  // the last tensor loses its tail
  std::string m = error_of([&] { lin.load(file.path); });
  CHECK(contains(m, file.path));
  CHECK(contains(m, "truncated"));
  CHECK((contains(m, "'weight'") || contains(m, "'bias'")));

  write_bytes(file.path, bytes.substr(0, 5));  // not even a header length
  m = error_of([&] { lin.load(file.path); });
  CHECK(contains(m, file.path));
  CHECK(contains(m, "truncated"));

  std::string garbled = bytes;
  garbled[9] = '#';  // inside the JSON header
  write_bytes(file.path, garbled);
  m = error_of([&] { lin.load(file.path); });
  CHECK(contains(m, file.path));
  CHECK(contains(m, "corrupted header"));

  // A header whose shape overflows when multiplied out must not allocate a bogus tensor.
  const std::string header = R"({"weight":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,0]}})";
  std::string evil(8, '\0');
  for (int i = 0; i < 8; ++i) evil[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  write_bytes(file.path, evil + header);
  m = error_of([&] { heed::io::load_safetensors(file.path); });
  CHECK(contains(m, file.path));
  CHECK(contains(m, "'weight'"));

  m = error_of([&] { lin.load(file.path + ".does-not-exist"); });
  CHECK(contains(m, file.path + ".does-not-exist"));
}

TEST_CASE("module: mismatched files throw naming the file and the key; strict=false loads what matches") {
  TempFile file("mismatch");
  heed::manual_seed(32);
  nn::Linear saved(4, 3);
  saved.save(file.path);

  nn::Linear wrong_shape(4, 2);
  const std::vector<float> before = values_of(wrong_shape);
  std::string m = error_of([&] { wrong_shape.load(file.path); });
  CHECK(contains(m, file.path));
  CHECK(contains(m, "weight"));
  CHECK(contains(m, "[3, 4]"));
  CHECK(values_of(wrong_shape) == before);  // nothing changed

  nn::Linear no_bias(4, 3, false);  // the file has an unexpected 'bias'
  m = error_of([&] { no_bias.load(file.path); });
  CHECK(contains(m, file.path));
  CHECK(contains(m, "unexpected: bias"));

  TempFile small("mismatch_small");
  no_bias.save(small.path);
  nn::Linear with_bias(4, 3);  // the file misses 'bias'
  m = error_of([&] { with_bias.load(small.path); });
  CHECK(contains(m, small.path));
  CHECK(contains(m, "missing: bias"));

  const nn::LoadResult partial = with_bias.load(small.path, false);
  CHECK(partial.missing_keys == std::vector<std::string>{"bias"});
  CHECK(partial.unexpected_keys.empty());
  CHECK(heed::allclose(with_bias.weight, no_bias.weight, 0.0, 0.0));

  nn::Linear other(4, 2);
  const nn::LoadResult mixed = other.load(file.path, false);
  REQUIRE(mixed.mismatched_keys.size() == 2);
  CHECK(contains(mixed.mismatched_keys[0], "weight"));
  CHECK(contains(mixed.to_string(), "shape mismatch"));
}
