// tests/test_transformer.cpp — Transformer layers, stacks and models: PyTorch parity (fixtures from
// tests/fixtures/make_transformer_fixtures.py), gradchecks, positional encodings, cached = full passes,
// errors, and the copy / reverse tasks of docs/attention-spec.md M8 (task F).
#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <heed/heed.hpp>
#include <heed/io/safetensors.hpp>
#include <heed/nn/transformer.hpp>

#include "testing.hpp"

namespace {

namespace nn = heed::nn;
using heed::DType;
using heed::Shape;
using heed::Tensor;
using heed::testing::error_of;

std::string fixture(const std::string& name, const char* kind) {
  return std::string(HEED_FIXTURE_DIR) + "/" + name + "." + kind + ".safetensors";
}

using heed::testing::check_close;

void check_param_grads(nn::Module& m, const heed::io::SafetensorsFile& io) {
  for (const auto& [name, p] : m.named_parameters()) check_close(p.grad(), io.get("grad." + name), "grad." + name, 1e-4);
}

nn::TransformerLayerOptions tiny_layer(bool norm_first, nn::TransformerActivation act = nn::TransformerActivation::ReLU) {
  return nn::TransformerLayerOptions(16, 2).dim_feedforward(32).dropout(0.0).activation(act).norm_first(norm_first);
}

const char* ln_name(bool norm_first) { return norm_first ? "pre" : "post"; }

}  // namespace

TEST_CASE("transformer encoder layer: equals PyTorch (output, weights, gradients), post-LN and pre-LN") {
  for (bool nf : {false, true}) {
    CAPTURE(nf);
    const std::string name = std::string("tf_enc_") + ln_name(nf);
    nn::TransformerEncoderLayer layer(tiny_layer(nf, nf ? nn::TransformerActivation::GELU : nn::TransformerActivation::ReLU));
    const nn::LoadResult loaded = layer.load(fixture(name, "state"));
    CHECK_MESSAGE(loaded.ok(), loaded.to_string());
    const auto io = heed::io::load_safetensors(fixture(name, "io"));
    Tensor src = io.get("src").clone().requires_grad_();
    nn::AttentionMasks masks;
    masks.key_padding = nn::from_pytorch_mask(io.get("src_key_padding_mask"));
    layer.zero_grad();
    nn::EncoderLayerOutput out = layer.forward(src, masks, true);
    check_close(out.output, io.get("output"), name + " output");
    check_close(out.weights, io.get("weights"), name + " attention weights (N, H, L, S)");
    heed::sum(out.output * io.get("probe")).backward();
    check_close(src.grad(), io.get("grad.src"), name + " grad.src", 1e-4);
    check_param_grads(layer, io);
  }
}

TEST_CASE("transformer decoder layer: equals PyTorch with causal float tgt_mask and padding masks, post-LN and pre-LN") {
  for (bool nf : {false, true}) {
    CAPTURE(nf);
    const std::string name = std::string("tf_dec_") + ln_name(nf);
    nn::TransformerDecoderLayer layer(tiny_layer(nf));
    const nn::LoadResult loaded = layer.load(fixture(name, "state"));
    CHECK_MESSAGE(loaded.ok(), loaded.to_string());
    const auto io = heed::io::load_safetensors(fixture(name, "io"));
    Tensor tgt = io.get("tgt").clone().requires_grad_(), memory = io.get("memory").clone().requires_grad_();
    nn::AttentionMasks tgt_masks, mem_masks;
    tgt_masks.attn = nn::from_pytorch_mask(io.get("tgt_mask"));  // float -inf above the diagonal
    tgt_masks.key_padding = nn::from_pytorch_mask(io.get("tgt_key_padding_mask"));
    mem_masks.key_padding = nn::from_pytorch_mask(io.get("memory_key_padding_mask"));
    layer.zero_grad();
    nn::DecoderLayerOutput out = layer.forward(tgt, memory, tgt_masks, mem_masks, true);
    check_close(out.output, io.get("output"), name + " output");
    CHECK(out.self_weights.shape() == Shape{2, 2, 4, 4});
    CHECK(out.cross_weights.shape() == Shape{2, 2, 4, 5});
    heed::sum(out.output * io.get("probe")).backward();
    check_close(tgt.grad(), io.get("grad.tgt"), name + " grad.tgt", 1e-4);
    check_close(memory.grad(), io.get("grad.memory"), name + " grad.memory", 1e-4);
    check_param_grads(layer, io);

    // The same with heed's own causal flag instead of the float mask.
    nn::AttentionMasks causal = tgt_masks;
    causal.attn = Tensor();
    causal.causal = true;
    heed::NoGradGuard no_grad;
    check_close(layer.forward(tgt, memory, causal, mem_masks).output, io.get("output"), name + " output (causal flag)");
  }
}

TEST_CASE("nn.Transformer: a PyTorch state_dict loads strictly and the outputs and gradients agree, post-LN and pre-LN") {
  for (bool nf : {false, true}) {
    CAPTURE(nf);
    const std::string name = std::string("tf_full_") + ln_name(nf);
    nn::Transformer model(nn::TransformerOptions(16, 2)
                              .num_encoder_layers(2)
                              .num_decoder_layers(2)
                              .dim_feedforward(32)
                              .dropout(0.0)
                              .norm_first(nf));
    const nn::LoadResult loaded = model.load(fixture(name, "state"));
    CHECK_MESSAGE(loaded.ok(), loaded.to_string());
    const auto io = heed::io::load_safetensors(fixture(name, "io"));
    Tensor src = io.get("src").clone().requires_grad_(), tgt = io.get("tgt").clone().requires_grad_();
    nn::AttentionMasks src_masks, tgt_masks, mem_masks;
    src_masks.key_padding = nn::from_pytorch_mask(io.get("src_key_padding_mask"));
    tgt_masks.attn = nn::from_pytorch_mask(io.get("tgt_mask"));
    tgt_masks.key_padding = nn::from_pytorch_mask(io.get("tgt_key_padding_mask"));
    mem_masks.key_padding = src_masks.key_padding;
    model.zero_grad();
    nn::TransformerOutput out = model.forward(src, tgt, src_masks, tgt_masks, mem_masks, true);
    check_close(out.output, io.get("output"), name + " output");
    REQUIRE(out.encoder_weights.size() == 2);
    REQUIRE(out.decoder_cross_weights.size() == 2);
    CHECK(out.decoder_cross_weights[1].shape() == Shape{2, 2, 4, 5});
    heed::sum(out.output * io.get("probe")).backward();
    check_close(src.grad(), io.get("grad.src"), name + " grad.src", 1e-4);
    check_close(tgt.grad(), io.get("grad.tgt"), name + " grad.tgt", 1e-4);
    check_param_grads(model, io);
  }
}

TEST_CASE("transformer: batch_first(false) takes (T, N, E) and gives what batch-first gives") {
  heed::manual_seed(3);
  nn::TransformerEncoder bf(tiny_layer(false), 2, true);
  nn::TransformerEncoder tf(tiny_layer(false).batch_first(false), 2, true);
  tf.load_state_dict(bf.state_dict());
  heed::NoGradGuard no_grad;
  Tensor x = heed::randn({3, 5, 16});
  nn::AttentionMasks masks;
  masks.causal = true;
  Tensor a = bf.forward(x, masks).output;
  Tensor b = tf.forward(heed::transpose(x, 0, 1), masks).output;
  CHECK(heed::max_abs_diff(a, heed::transpose(b, 0, 1)) < 1e-6);
}

namespace {

using heed::testing::randn64;

template <class F>
void check_layer_grads(nn::Module& m, std::vector<Tensor> inputs, F f) {
  const std::size_t n_inputs = inputs.size();
  for (const Tensor& p : m.parameters()) inputs.push_back(p);
  const heed::GradcheckResult r = heed::gradcheck(
      [&](const std::vector<Tensor>& in) { return f(std::vector<Tensor>(in.begin(), in.begin() + n_inputs)); }, inputs);
  CHECK_MESSAGE(r.ok, r.report);
  CHECK(r.elements_checked > 0);
}

nn::TransformerLayerOptions grad_layer(bool nf, nn::TransformerActivation act) {
  return nn::TransformerLayerOptions(4, 2).dim_feedforward(6).dropout(0.0).activation(act).norm_first(nf);
}

}  // namespace

TEST_CASE("transformer encoder layer: gradcheck (fp64) w.r.t. input and every parameter, with key padding") {
  for (bool nf : {false, true}) {
    CAPTURE(nf);
    heed::manual_seed(11);
    nn::TransformerEncoderLayer layer(grad_layer(nf, nf ? nn::TransformerActivation::GELU : nn::TransformerActivation::ReLU));
    layer.to(DType::Float64);
    nn::AttentionMasks masks;
    masks.key_padding = heed::bool_tensor({true, true, true, true, true, false}, {2, 3});
    Tensor x = randn64({2, 3, 4});
    check_layer_grads(layer, {x}, [&](const std::vector<Tensor>& in) { return layer.forward(in[0], masks).output; });
  }
}

TEST_CASE("transformer decoder layer: gradcheck (fp64) w.r.t. target, memory and every parameter, causal + memory padding") {
  for (bool nf : {false, true}) {
    CAPTURE(nf);
    heed::manual_seed(12);
    nn::TransformerDecoderLayer layer(grad_layer(nf, nn::TransformerActivation::ReLU));
    layer.to(DType::Float64);
    nn::AttentionMasks tgt_masks, mem_masks;
    tgt_masks.causal = true;
    mem_masks.key_padding = heed::bool_tensor({true, true, true, true, true, false, false, false}, {2, 4});
    Tensor tgt = randn64({2, 3, 4}), memory = randn64({2, 4, 4});
    check_layer_grads(layer, {tgt, memory}, [&](const std::vector<Tensor>& in) {
      return layer.forward(in[0], in[1], tgt_masks, mem_masks).output;
    });
  }
}

TEST_CASE("positional encodings: the paper's interleaved sinusoid; learned table offsets and gradient") {
  nn::PositionalEncoding pe(6, 20);
  const std::vector<float> t = pe.table().to_vector<float>();
  for (int64_t pos : {0, 1, 7, 19})
    for (int64_t i = 0; i < 3; ++i) {
      const double angle = static_cast<double>(pos) / std::pow(10000.0, 2.0 * static_cast<double>(i) / 6.0);
      CHECK(t[pos * 6 + 2 * i] == doctest::Approx(std::sin(angle)).epsilon(1e-6));
      CHECK(t[pos * 6 + 2 * i + 1] == doctest::Approx(std::cos(angle)).epsilon(1e-6));
    }
  Tensor x = heed::zeros({2, 3, 6});
  Tensor y = pe.forward(x, 4);  // positions 4, 5, 6
  CHECK(y.to_vector<float>()[0] == doctest::Approx(std::sin(4.0)));
  CHECK(pe.named_parameters().empty());
  CHECK(error_of([&] { pe.forward(x, 18); }).find("exceed max_len 20") != std::string::npos);

  heed::manual_seed(1);
  nn::LearnedPositionalEmbedding learned(10, 4);
  learned.to(DType::Float64);
  CHECK(learned.named_parameters().front().first == "weight");
  Tensor x64 = randn64({2, 3, 4});
  heed::testing::check_grad([&](const std::vector<Tensor>& in) { return learned.forward(in[0], 2); },
                            {x64, learned.weight});
}

TEST_CASE("transformer stacks: cached incremental passes equal the full causal pass (encoder and decoder, both LN)") {
  for (bool nf : {false, true}) {
    CAPTURE(nf);
    heed::manual_seed(5);
    auto opts = tiny_layer(nf);
    nn::TransformerEncoder enc(opts, 2, true);
    nn::TransformerDecoder dec(opts, 2, true);
    enc.to(DType::Float64);
    dec.to(DType::Float64);
    heed::NoGradGuard no_grad;
    Tensor x = heed::randn({2, 6, 16}, DType::Float64), memory = heed::randn({2, 4, 16}, DType::Float64);
    nn::AttentionMasks causal, mem;
    causal.causal = true;
    mem.key_padding = heed::bool_tensor({true, true, true, true, true, true, false, false}, {2, 4});
    Tensor full_enc = enc.forward(x, causal).output;
    Tensor full_dec = dec.forward(x, memory, causal, mem).output;
    std::vector<nn::KVCache> enc_caches;
    std::vector<nn::DecoderLayerCache> dec_caches;
    std::vector<Tensor> enc_parts, dec_parts;
    // The prompt of 2 positions at once, then one at a time.
    for (auto [start, len] : std::vector<std::pair<int64_t, int64_t>>{{0, 2}, {2, 1}, {3, 1}, {4, 1}, {5, 1}}) {
      Tensor piece = heed::narrow(x, 1, start, len).contiguous();
      enc_parts.push_back(enc.forward_cached(piece, enc_caches).output);
      dec_parts.push_back(dec.forward_cached(piece, memory, dec_caches, mem).output);
    }
    CHECK(heed::max_abs_diff(heed::concat(enc_parts, 1), full_enc) < 1e-12);
    CHECK(heed::max_abs_diff(heed::concat(dec_parts, 1), full_dec) < 1e-12);
    CHECK(enc_caches[1].length() == 6);
    CHECK(dec_caches[0].cross_attn.length() == 4);
  }
}

TEST_CASE("transformer LM: logits (N, T, V), tied weights, per-layer attention weights, names") {
  heed::manual_seed(2);
  nn::TransformerLM lm(nn::TransformerLMOptions(11, 16).nhead(2).num_layers(2).dim_feedforward(32).max_len(32));
  std::vector<std::string> names;
  for (auto& [n, p] : lm.named_parameters()) names.push_back(n);
  CHECK(names.front() == "embed.weight");
  CHECK(std::find(names.begin(), names.end(), "pos.weight") != names.end());
  CHECK(std::find(names.begin(), names.end(), "encoder.layers.1.self_attn.in_proj_weight") != names.end());
  CHECK(std::find(names.begin(), names.end(), "encoder.norm.weight") != names.end());
  CHECK(std::find(names.begin(), names.end(), "lm_head.bias") != names.end());
  CHECK(std::find(names.begin(), names.end(), "lm_head.weight") == names.end());  // tied to embed.weight
  lm.eval();
  Tensor tokens = heed::randint(0, 11, {3, 7});
  Tensor logits = lm.forward(tokens, Tensor(), true);
  CHECK(logits.shape() == Shape{3, 7, 11});
  REQUIRE(lm.attention_weights().size() == 2);
  const Tensor w = lm.attention_weights()[1];
  CHECK(w.shape() == Shape{3, 2, 7, 7});
  const std::vector<float> wv = w.to_vector<float>();
  for (int64_t i = 0; i < 7; ++i) {
    double row = 0.0;
    for (int64_t j = 0; j < 7; ++j) {
      row += wv[i * 7 + j];
      if (j > i) CHECK(wv[i * 7 + j] == 0.0f);  // causal
    }
    CHECK(row == doctest::Approx(1.0).epsilon(1e-5));
  }
  // The gradient reaches the tied embedding through both uses.
  lm.train();
  heed::cross_entropy(lm.forward(tokens), tokens).backward();
  CHECK(lm.embed->weight.grad().defined());

  CHECK(error_of([&] { lm.forward(heed::index_tensor({0, 11}, {1, 2})); }).find("out of range [0, 11)") != std::string::npos);
  CHECK(error_of([&] { lm.forward(heed::zeros({2, 3})); }).find("Int64") != std::string::npos);
  CHECK(error_of([&] { lm.forward(heed::zeros({1, 40}, DType::Int64)); }).find("max_len") != std::string::npos);
}

TEST_CASE("transformer: bad shapes and options give heed errors naming the layer") {
  CHECK(error_of([] { nn::TransformerEncoderLayer l(nn::TransformerLayerOptions(10, 3)); })
            .find("multiple of nhead") != std::string::npos);
  nn::TransformerEncoderLayer l(tiny_layer(false));
  CHECK(error_of([&] { l.forward(heed::zeros({2, 3, 8})); }).find("TransformerEncoderLayer: src") != std::string::npos);
  nn::TransformerDecoderLayer d(tiny_layer(false));
  CHECK(error_of([&] { d.forward(heed::zeros({2, 3, 16}), heed::zeros({3, 4, 16}), {}, {}); }).find("batch sizes") !=
        std::string::npos);
  CHECK(error_of([] { nn::Seq2SeqTransformer m(nn::Seq2SeqTransformerOptions(5, 6).share_embeddings(true)); })
            .find("share_embeddings") != std::string::npos);
}

// ---- task F: copy and reverse (docs/attention-spec.md M8) ----------------------------------------------------------

namespace {

constexpr int64_t kPad = 0, kBos = 1, kSymbols = 10, kVocab = 2 + kSymbols;

struct TaskBatch {
  Tensor src, tgt_in, tgt_out;
  std::vector<int64_t> lengths;
};

// Sequences of random symbols, lengths in [min_len, max_len], right-padded; the target is the source
// (copy) or the source reversed (reverse), fed as BOS + target.
TaskBatch make_task_batch(heed::Generator& gen, int64_t n, int64_t min_len, int64_t max_len, bool reverse) {
  std::vector<int64_t> src(n * max_len, kPad), tin(n * max_len, kPad), tout(n * max_len, kPad);
  TaskBatch b;
  for (int64_t r = 0; r < n; ++r) {
    const int64_t len = gen.randint(min_len, max_len + 1);
    b.lengths.push_back(len);
    std::vector<int64_t> s(len);
    for (auto& v : s) v = 2 + gen.randint(0, kSymbols);
    for (int64_t t = 0; t < len; ++t) {
      src[r * max_len + t] = s[t];
      const int64_t y = reverse ? s[len - 1 - t] : s[t];
      tout[r * max_len + t] = y;
      tin[r * max_len + t] = t == 0 ? kBos : (reverse ? s[len - t] : s[t - 1]);
    }
  }
  b.src = heed::index_tensor(src, {n, max_len});
  b.tgt_in = heed::index_tensor(tin, {n, max_len});
  b.tgt_out = heed::index_tensor(tout, {n, max_len});
  return b;
}

struct TaskResult {
  double exact_match = 0.0;
  double anti_diagonal = 0.0;  // best layer's fraction of target positions whose cross-attention argmax is S-1-t
  double seconds = 0.0;
  int64_t steps = 0;
};

TaskResult run_task(bool reverse, bool norm_first) {
  const auto t0 = std::chrono::steady_clock::now();
  // Test-sized task F (the spec: lengths 10-20, d 64, ff 128, warmup 400): lengths 5-10, d 32, ff 64,
  // 4 heads, 2 + 2 layers, batch 64, Noam warmup 100 (factor 0.3; 0.5 left pre-LN reverse unstable), Adam (0.9, 0.98, 1e-9), label smoothing 0.1.
  constexpr int64_t kMinLen = 5, kMaxLen = 10, kBatch = 64, kD = 32, kWarmup = 100;
  // Copy gets 600 steps: at 400 a fresh build reached 98.6% once (float summation order differs with buffer
  // alignment, and the run sits close to the 99% line there).
  const int64_t steps = reverse ? 800 : 600;
  heed::manual_seed(reverse ? 21 : 20);
  heed::Generator data_gen(norm_first ? 7 : 8);
  nn::Seq2SeqTransformer model(nn::Seq2SeqTransformerOptions(kVocab, kVocab)
                                   .d_model(kD)
                                   .nhead(4)
                                   .num_encoder_layers(2)
                                   .num_decoder_layers(2)
                                   .dim_feedforward(2 * kD)
                                   .dropout(0.0)
                                   .norm_first(norm_first)
                                   .max_len(32)
                                   .pad_id(kPad));
  heed::optim::Adam opt(model.parameters(), heed::optim::AdamOptions(1.0).betas(0.9, 0.98).eps(1e-9));
  heed::optim::NoamLR schedule(opt, kD, kWarmup, 0.3);
  heed::CrossEntropyOptions ce;
  ce.ignore_index = kPad;
  ce.label_smoothing = 0.1;
  for (int64_t step = 0; step < steps; ++step) {
    TaskBatch b = make_task_batch(data_gen, kBatch, kMinLen, kMaxLen, reverse);
    opt.zero_grad();
    Tensor loss = heed::cross_entropy(model.forward(b.src, b.tgt_in), b.tgt_out, ce);
    loss.backward();
    opt.step();
    schedule.step();
  }
  // 1000 held-out sequences (another generator), greedy decoding with the KV cache.
  model.eval();
  heed::NoGradGuard no_grad;
  heed::Generator test_gen(12345);
  int64_t exact = 0, positions = 0;
  std::vector<int64_t> diag_hits(2, 0);
  for (int64_t chunk = 0; chunk < 4; ++chunk) {
    TaskBatch b = make_task_batch(test_gen, 250, kMinLen, kMaxLen, reverse);
    auto decoder = model.incremental_decoder(b.src);
    Tensor out = nn::greedy_decode(*decoder, heed::full({250, 1}, kBos, DType::Int64), kMaxLen);
    const std::vector<int64_t> got = out.to_vector<int64_t>(), want = b.tgt_out.to_vector<int64_t>();
    for (int64_t r = 0; r < 250; ++r) {
      bool same = true;
      for (int64_t t = 0; t < b.lengths[r]; ++t) same = same && got[r * (kMaxLen + 1) + 1 + t] == want[r * kMaxLen + t];
      exact += same;
    }
    // Cross-attention of a teacher-forced pass: argmax over source positions for each target position.
    model.forward(b.src, b.tgt_in, true);
    for (size_t layer = 0; layer < 2; ++layer) {
      const Tensor w = heed::mean(model.attention_weights().decoder_cross_weights[layer], {1});  // (N, T, S)
      const std::vector<int64_t> am = heed::argmax(w, 2).to_vector<int64_t>();
      for (int64_t r = 0; r < 250; ++r)
        for (int64_t t = 0; t < b.lengths[r]; ++t) {
          const int64_t expect = reverse ? b.lengths[r] - 1 - t : t;
          diag_hits[layer] += am[r * kMaxLen + t] == expect;
          if (layer == 0) ++positions;
        }
    }
  }
  TaskResult res;
  res.exact_match = static_cast<double>(exact) / 1000.0;
  res.anti_diagonal = static_cast<double>(std::max(diag_hits[0], diag_hits[1])) / static_cast<double>(positions);
  res.steps = steps;
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("[task F] %s %s-LN: %lld steps, exact match %.1f%%, cross-attention argmax on the %s: %.1f%% (%.1f s)\n",
              reverse ? "reverse" : "copy", norm_first ? "pre" : "post", static_cast<long long>(steps),
              100.0 * res.exact_match, reverse ? "anti-diagonal" : "diagonal", 100.0 * res.anti_diagonal, res.seconds);
  return res;
}

}  // namespace

TEST_CASE("[learning] transformer task F copy, post-LN: greedy exact match >= 99%") {
  CHECK(run_task(false, false).exact_match >= 0.99);
}

TEST_CASE("[learning] transformer task F copy, pre-LN: greedy exact match >= 99%") {
  CHECK(run_task(false, true).exact_match >= 0.99);
}

TEST_CASE("[learning] transformer task F reverse, post-LN: exact match >= 95%, cross-attention anti-diagonal >= 90%") {
  const TaskResult r = run_task(true, false);
  CHECK(r.exact_match >= 0.95);
  CHECK(r.anti_diagonal >= 0.90);
}

TEST_CASE("[learning] transformer task F reverse, pre-LN: exact match >= 95%, cross-attention anti-diagonal >= 90%") {
  const TaskResult r = run_task(true, true);
  CHECK(r.exact_match >= 0.95);
  CHECK(r.anti_diagonal >= 0.90);
}
