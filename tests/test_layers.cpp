// layer_norm and the basic layers (gradient checks, PyTorch parity), and the Module machinery around
// them: dotted names, train/eval, counting, printing, Sequential, user-defined layers, checkpoints.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <heed/heed.hpp>
#include <heed/io/safetensors.hpp>

#include "layer_fixtures.hpp"

namespace {

using heed::DType;
using heed::Tensor;
namespace nn = heed::nn;

Tensor randn64(const heed::Shape& shape) { return heed::randn(shape, DType::Float64).requires_grad_(); }

// layer_norm spelled out with generic ops, as the reference for the fused kernel.
Tensor layer_norm_reference(const Tensor& x, int64_t k, const Tensor& w, const Tensor& b, double eps) {
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < k; ++i) axes.push_back(-1 - i);
  Tensor centered = x - heed::mean(x, axes, true);
  Tensor y = centered / heed::sqrt(heed::mean(centered * centered, axes, true) + eps);
  if (w.defined()) y = y * w;
  if (b.defined()) y = y + b;
  return y;
}

// A fresh path in the temporary directory, removed when the test ends.
struct TempFile {
  std::string path;
  explicit TempFile(const std::string& name)
      : path((std::filesystem::temp_directory_path() /
              ("heed_test_layers_" + std::to_string(::getpid()) + "_" + name + ".safetensors"))
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

// The message of the heed::Error that f throws ("no error" when it returns).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const heed::Error& e) {
    return e.what();
  }
  return "no error";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

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

// ---- layer_norm op -------------------------------------------------------------------------------------

TEST_CASE("layer_norm: matches the composite definition and passes gradcheck") {
  heed::manual_seed(21);
  struct Case {
    const char* name;
    heed::Shape input, normalized;
    bool weight, bias;
  };
  const std::vector<Case> cases = {
      {"last axis, affine", {3, 5}, {5}, true, true},
      {"last two axes, affine", {2, 3, 4}, {3, 4}, true, true},
      {"no affine", {4, 6}, {6}, false, false},
      {"weight only", {2, 2, 3}, {3}, true, false},
      {"whole tensor", {2, 3}, {2, 3}, true, true},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Tensor x = randn64(c.input) * 2.0 + 1.0;
    x = x.detach().requires_grad_();
    Tensor w = c.weight ? randn64(c.normalized) : Tensor();
    Tensor b = c.bias ? randn64(c.normalized) : Tensor();
    Tensor y = heed::layer_norm(x, c.normalized, w, b, 1e-5);
    Tensor want = layer_norm_reference(x, static_cast<int64_t>(c.normalized.size()), w, b, 1e-5);
    CHECK(heed::max_abs_diff(y, want) < 1e-10);
    auto r = heed::gradcheck(
        [&](const std::vector<Tensor>& in) { return heed::layer_norm(in[0], c.normalized, in[1], in[2], 1e-5); },
        {x, w, b});
    CHECK_MESSAGE(r.ok, r.report);
  }
  // A strided (transposed) input.
  Tensor base = randn64({5, 3});
  auto r = heed::gradcheck(
      [](const std::vector<Tensor>& in) { return heed::layer_norm(in[0].transpose(0, 1), {5}, in[1], Tensor()); },
      {base, randn64({5})});
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("layer_norm: float32 rows of large values keep their accuracy; errors name shapes") {
  Tensor x = heed::tensor({1000.0f, 1001.0f, 1002.0f, 1003.0f}, {1, 4});
  Tensor y = heed::layer_norm(x, {4});
  const double s = std::sqrt(1.25 + 1e-5);
  CHECK(heed::allclose(y, heed::tensor({-1.5f / float(s), -0.5f / float(s), 0.5f / float(s), 1.5f / float(s)}, {1, 4}),
                       1e-5, 1e-5));
  CHECK_THROWS_WITH_AS(heed::layer_norm(heed::randn({2, 3}), {4}),
                       doctest::Contains("layer_norm: input shape [2, 3] does not end with normalized_shape [4]"),
                       heed::Error);
  CHECK_THROWS_WITH_AS(heed::layer_norm(heed::randn({2, 3}), {3}, heed::ones({2})),
                       doctest::Contains("layer_norm: weight has shape [2], expected normalized_shape [3]"),
                       heed::Error);
}

// ---- layers ----------------------------------------------------------------------------------------------

TEST_CASE("layers: Linear shapes, init bounds, printing, gradcheck") {
  heed::manual_seed(22);
  nn::Linear lin(5, 3);
  CHECK(lin.weight.shape() == heed::Shape{3, 5});
  CHECK(lin.bias.shape() == heed::Shape{3});
  CHECK(lin.to_string() == "Linear(in_features=5, out_features=3, bias=True)");
  const double bound = 1.0 / std::sqrt(5.0);
  double largest = 0.0;
  for (double v : lin.weight.to_vector<double>()) largest = std::max(largest, std::fabs(v));
  CHECK(largest <= bound);
  CHECK(largest > 0.5 * bound);  // really drawn from U(-bound, bound), not zeros
  for (double v : lin.bias.to_vector<double>()) CHECK(std::fabs(v) <= bound);

  lin.to(DType::Float64);
  Tensor x = randn64({2, 4, 5});
  auto r = heed::gradcheck([&](const std::vector<Tensor>& in) { return lin(in[0]); }, {x, lin.weight, lin.bias});
  CHECK_MESSAGE(r.ok, r.report);

  nn::Linear nobias(4, 2, false);
  CHECK_FALSE(nobias.bias.defined());
  CHECK(nobias.named_parameters().size() == 1);
  CHECK(nobias.to_string() == "Linear(in_features=4, out_features=2, bias=False)");
  CHECK_THROWS_WITH_AS(nobias(heed::randn({3, 5})), doctest::Contains("[3, 5]"), heed::Error);
}

TEST_CASE("layers: Embedding lookup, zero padding row without gradient, gradcheck") {
  heed::manual_seed(23);
  nn::Embedding emb(10, 4, 0);
  CHECK(emb.to_string() == "Embedding(10, 4, padding_idx=0)");
  for (double v : heed::select(emb.weight, 0, 0).to_vector<double>()) CHECK(v == 0.0);
  Tensor idx = heed::index_tensor({0, 3, 9, 3, 0, 1}, {2, 3});
  Tensor y = emb(idx);
  CHECK(y.shape() == heed::Shape{2, 3, 4});
  CHECK(heed::allclose(heed::select(heed::select(y, 0, 1), 0, 0), heed::select(emb.weight, 0, 3)));
  heed::sum(y * 3.0).backward();
  const std::vector<double> g = emb.weight.grad().to_vector<double>();
  for (int j = 0; j < 4; ++j) {
    CHECK(g[0 * 4 + j] == 0.0);  // padding row
    CHECK(g[3 * 4 + j] == 6.0);  // index 3 used twice
    CHECK(g[5 * 4 + j] == 0.0);  // unused
  }
  emb.to(DType::Float64);
  // The padding row is excluded from the finite differences' reach: it receives no gradient by design.
  Tensor used = heed::index_tensor({1, 3, 9, 3, 2}, {5});
  auto r = heed::gradcheck([&](const std::vector<Tensor>& in) { return emb(used) * in[1]; },
                           {emb.weight, randn64({5, 4})});
  CHECK_MESSAGE(r.ok, r.report);
  CHECK(nn::Embedding(3, 2).to_string() == "Embedding(3, 2)");
  CHECK_THROWS_WITH_AS(nn::Embedding(3, 2, 3), doctest::Contains("padding_idx 3"), heed::Error);
}

TEST_CASE("layers: Dropout follows train()/eval() and gradchecks with a fixed seed") {
  nn::Dropout drop(0.25);
  CHECK(drop.to_string() == "Dropout(p=0.25)");
  Tensor x = heed::ones({1000});
  heed::manual_seed(24);
  Tensor y = drop(x);
  const std::vector<float> v = y.to_vector<float>();
  int zeros = 0;
  for (float e : v) {
    CHECK((e == 0.0f || std::fabs(e - 1.0f / 0.75f) < 1e-6f));
    zeros += e == 0.0f;
  }
  CHECK(zeros > 180);
  CHECK(zeros < 320);
  drop.eval();
  CHECK(heed::allclose(drop(x), x));
  drop.train();
  Tensor x64 = randn64({3, 7});
  auto r = heed::gradcheck(
      [&](const std::vector<Tensor>& in) {
        heed::manual_seed(5);
        return drop(in[0]);
      },
      {x64});
  CHECK_MESSAGE(r.ok, r.report);
}

TEST_CASE("layers: LayerNorm module parameters, printing, gradcheck") {
  heed::manual_seed(25);
  nn::LayerNorm ln({3, 4});
  CHECK(ln.to_string() == "LayerNorm((3, 4), eps=1e-05, elementwise_affine=True)");
  CHECK(nn::LayerNorm({6}).to_string() == "LayerNorm((6,), eps=1e-05, elementwise_affine=True)");
  CHECK(heed::allclose(ln.weight, heed::ones({3, 4})));
  CHECK(heed::allclose(ln.bias, heed::zeros({3, 4})));
  ln.to(DType::Float64);
  {
    heed::NoGradGuard no_grad;  // non-trivial affine parameters
    ln.weight.copy_(heed::randn({3, 4}, DType::Float64));
    ln.bias.copy_(heed::randn({3, 4}, DType::Float64));
  }
  Tensor x = randn64({2, 3, 4});
  auto r = heed::gradcheck([&](const std::vector<Tensor>& in) { return ln(in[0]); }, {x, ln.weight, ln.bias});
  CHECK_MESSAGE(r.ok, r.report);

  nn::LayerNorm plain({4}, 1e-3, false);
  CHECK(plain.named_parameters().empty());
  CHECK(plain.to_string() == "LayerNorm((4,), eps=0.001, elementwise_affine=False)");
  Tensor y = plain(heed::randn({5, 4}));
  CHECK(std::fabs(heed::mean(y).item()) < 1e-5);
}

TEST_CASE("layers: Flatten and the activation modules equal their ops and pass gradcheck") {
  heed::manual_seed(26);
  nn::Flatten flat;
  CHECK(flat.to_string() == "Flatten(start_dim=1, end_dim=-1)");
  CHECK(flat(heed::randn({2, 3, 4, 5})).shape() == heed::Shape{2, 60});
  CHECK(nn::Flatten(0, 1)(heed::randn({2, 3, 4})).shape() == heed::Shape{6, 4});

  struct Act {
    std::shared_ptr<nn::Module> module;
    std::function<Tensor(const Tensor&)> op;
    std::string repr;
  };
  const std::vector<Act> acts = {
      {std::make_shared<nn::ReLU>(), [](const Tensor& x) { return heed::relu(x); }, "ReLU()"},
      {std::make_shared<nn::LeakyReLU>(0.2), [](const Tensor& x) { return heed::leaky_relu(x, 0.2); },
       "LeakyReLU(negative_slope=0.2)"},
      {std::make_shared<nn::Tanh>(), [](const Tensor& x) { return heed::tanh(x); }, "Tanh()"},
      {std::make_shared<nn::Sigmoid>(), [](const Tensor& x) { return heed::sigmoid(x); }, "Sigmoid()"},
      {std::make_shared<nn::GELU>(), [](const Tensor& x) { return heed::gelu(x); }, "GELU(approximate='none')"},
      {std::make_shared<nn::GELU>(true), [](const Tensor& x) { return heed::gelu(x, true); },
       "GELU(approximate='tanh')"},
      {std::make_shared<nn::ELU>(), [](const Tensor& x) { return heed::elu(x, 1.0); }, "ELU(alpha=1.0)"},
      {std::make_shared<nn::Softplus>(2.0, 10.0), [](const Tensor& x) { return heed::softplus(x, 2.0, 10.0); },
       "Softplus(beta=2.0, threshold=10.0)"},
      {std::make_shared<nn::Softmax>(0), [](const Tensor& x) { return heed::softmax(x, 0); }, "Softmax(dim=0)"},
  };
  for (const Act& a : acts) {
    CAPTURE(a.repr);
    CHECK(a.module->to_string() == a.repr);
    // Values away from the kinks of relu / leaky_relu, where central differences are exact.
    Tensor x = heed::randn({3, 4}, DType::Float64);
    x = (x + heed::where(heed::gt(x, 0.0), heed::full({}, 0.1, DType::Float64), heed::full({}, -0.1, DType::Float64)))
            .detach()
            .requires_grad_();
    CHECK(heed::allclose((*a.module)(x), a.op(x)));
    auto r = heed::gradcheck([&](const std::vector<Tensor>& in) { return (*a.module)(in[0]); }, {x});
    CHECK_MESSAGE(r.ok, r.report);
  }
}

TEST_CASE("layers match PyTorch on the same weights") {
  SUBCASE("Linear") {
    nn::Linear m(5, 3);
    layer_fixtures::check_against_pytorch(m, "linear");
  }
  SUBCASE("Linear without bias on a 3-D input") {
    nn::Linear m(6, 2, false);
    layer_fixtures::check_against_pytorch(m, "linear_nobias");
  }
  SUBCASE("Embedding with padding_idx") {
    nn::Embedding m(10, 4, 0);
    layer_fixtures::check_against_pytorch(m, "embedding");
  }
  SUBCASE("LayerNorm over two axes") {
    nn::LayerNorm m({3, 4});
    layer_fixtures::check_against_pytorch(m, "layernorm");
  }
}

// ---- Module machinery -----------------------------------------------------------------------------------

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
