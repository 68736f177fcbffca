// Module::reset() is virtual and recursive: the base resets each child in registration order, layers
// re-draw their own parameters (and call the base when they also have children). On a nested model it
// re-initializes every parameter.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <heed/heed.hpp>

using heed::Tensor;
namespace nn = heed::nn;

namespace {

// Containers within containers, of layers whose constructors draw exactly what their reset() draws.
class Plain : public nn::Module {
 public:
  Plain() : Module("Plain") {
    head = register_module("head", std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
                                       std::make_shared<nn::Linear>(4, 6), std::make_shared<nn::ReLU>(),
                                       std::make_shared<nn::LayerNorm>(heed::Shape{6})}));
    embed = register_module("embed", std::make_shared<nn::Embedding>(10, 4, /*padding_idx=*/0));
    lstm = register_module("lstm", std::make_shared<nn::LSTM>(nn::LSTMOptions(4, 3).num_layers(2).bidirectional(true)));
    cell = register_module("cell", std::make_shared<nn::GRUCell>(3, 5));
    conv = register_module("conv", std::make_shared<nn::Conv2d>(nn::Conv2dOptions(2, 3, 3).padding(1)));
  }
  std::shared_ptr<nn::Sequential> head;
  std::shared_ptr<nn::Embedding> embed;
  std::shared_ptr<nn::LSTM> lstm;
  std::shared_ptr<nn::GRUCell> cell;
  std::shared_ptr<nn::Conv2d> conv;
};

// Layers with parameters of their own and children (attention, transformer blocks, full models), nested.
class Composite : public nn::Module {
 public:
  Composite() : Module("Composite") {
    lm = register_module("lm", std::make_shared<nn::TransformerLM>(
                                   nn::TransformerLMOptions(12, 8).nhead(2).num_layers(2).dim_feedforward(16).max_len(8)));
    auto seq2seq = nn::Seq2SeqTransformerOptions(9, 9);
    seq2seq.d_model(8).nhead(2).num_encoder_layers(1).num_decoder_layers(1).dim_feedforward(16).max_len(8);
    s2s = register_module("s2s", std::make_shared<nn::Seq2SeqTransformer>(seq2seq.pad_id(0)));
    auto blocks = std::make_shared<nn::Sequential>();
    blocks->push_back(std::make_shared<nn::MultiheadAttention>(nn::MultiheadAttentionOptions(8, 2).kdim(5).vdim(6)));
    blocks->push_back(std::make_shared<nn::LinearAttention>(8, 2));
    blocks->push_back(std::make_shared<nn::GATConv>(nn::GATConvOptions(8, 4).heads(2)));
    blocks->push_back(std::make_shared<nn::GATv2Conv>(nn::GATv2ConvOptions(8, 4).heads(2)));
    blocks->push_back(std::make_shared<nn::AttentionPooling>(nn::AttentionPoolingOptions(8).step_bias(3)));
    blocks->push_back(std::make_shared<nn::LuongAttention>(
        nn::LuongAttentionOptions(8).score(nn::LuongScore::Concat).align(nn::LuongAlign::LocalPredictive).window(2)));
    blocks->push_back(std::make_shared<nn::BahdanauAttention>(8, 8, 5));
    blocks->push_back(std::make_shared<nn::SpatialAttention>(nn::SpatialAttentionOptions(8, 6, 5)));
    blocks->push_back(std::make_shared<nn::DrawWrite>(nn::DrawAttentionOptions(8, 2, 5, 5)));
    blocks->push_back(std::make_shared<nn::GRU>(nn::GRUOptions(8, 3)));
    blocks->push_back(std::make_shared<nn::RNNCell>(8, 3));
    blocks->push_back(std::make_shared<nn::LSTMCell>(8, 3));
    inner = register_module("inner", blocks);
  }
  std::shared_ptr<nn::TransformerLM> lm;
  std::shared_ptr<nn::Seq2SeqTransformer> s2s;
  std::shared_ptr<nn::Sequential> inner;
};

std::map<std::string, Tensor> copies(const nn::Module& m) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, p] : m.named_parameters()) out[name] = p.detach().clone();
  return out;
}

void fill_parameters(nn::Module& m, double value) {
  heed::NoGradGuard no_grad;
  for (Tensor& p : m.parameters()) p.detach().fill_(value);
}

bool all_equal_to(const Tensor& t, double value) {
  for (double x : t.to_vector<double>())
    if (x != value) return false;
  return true;
}

// True for a constant init (zeros, ones): every element the same number, and for one element 0 or 1 (a
// one-element bias drawn at random is not constant).
bool constant(const Tensor& t) {
  const std::vector<double> v = t.to_vector<double>();
  if (v.size() == 1) return v[0] == 0.0 || v[0] == 1.0;
  for (double x : v)
    if (x != v.front()) return false;
  return true;
}

}  // namespace

TEST_CASE("Module::reset: the base resets every child in registration order, as a fresh construction draws") {
  heed::manual_seed(11);
  Plain fresh;
  const auto expected = copies(fresh);

  heed::manual_seed(3);
  Plain model;
  fill_parameters(model, 0.5);
  heed::manual_seed(11);
  model.reset();
  const auto got = copies(model);
  REQUIRE(got.size() == expected.size());
  REQUIRE(got.size() == 4 + 1 + 16 + 4 + 2);  // head (Linear, LayerNorm), embed, lstm, cell, conv
  for (const auto& entry : expected) {
    const std::string& name = entry.first;  // not a structured binding: clang 14 rejects capturing one
    const auto& value = entry.second;
    CAPTURE(name);
    CHECK(heed::allclose(got.at(name), value, 0.0, 0.0));
  }
  CHECK(all_equal_to(heed::select(model.embed->weight.detach(), 0, 0), 0.0));  // the padding row again

  // A single layer resets alone, from wherever the generator is.
  heed::manual_seed(11);
  model.head->reset();
  CHECK(heed::allclose(model.head->parameters()[0], expected.at("head.0.weight"), 0.0, 0.0));
}

TEST_CASE("Module::reset: a nested model re-draws every parameter, and a new seed gives new values") {
  heed::manual_seed(1);
  Composite model;
  const auto constructed = copies(model);
  REQUIRE(constructed.size() > 60);

  fill_parameters(model, 0.5);
  heed::manual_seed(2);
  model.reset();
  const auto first = copies(model);
  int random = 0;
  for (const auto& entry : first) {
    const std::string& name = entry.first;
    const auto& value = entry.second;
    CAPTURE(name);
    CHECK_FALSE(all_equal_to(value, 0.5));  // re-initialized
    if (constant(constructed.at(name))) {
      CHECK(heed::allclose(value, constructed.at(name), 0.0, 0.0));  // zeros and ones come back
    } else {
      ++random;
      CHECK_FALSE(heed::allclose(value, constructed.at(name), 0.0, 0.0));  // another seed, other values
    }
  }
  CHECK(random > 40);

  // The same seed gives the same values again.
  fill_parameters(model, -0.25);
  heed::manual_seed(2);
  model.reset();
  for (const auto& entry : copies(model)) {
    const std::string& name = entry.first;
    const auto& value = entry.second;
    CAPTURE(name);
    CHECK(heed::allclose(value, first.at(name), 0.0, 0.0));
  }

  // The models' own embedding init comes back too: N(0, 0.02^2) for TransformerLM's unscaled table.
  const std::vector<double> table = model.lm->embed->weight.to_vector<double>();
  double square_sum = 0.0;
  for (double x : table) square_sum += x * x;
  CHECK(std::sqrt(square_sum / static_cast<double>(table.size())) < 0.04);
}
