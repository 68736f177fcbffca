// tests/test_decoding.cpp — greedy decoding, beam search and sampling (heed/nn/decoding.hpp) on toy
// Markov models with known answers, and cached = uncached decoding on the Transformer models.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include <heed/heed.hpp>
#include <heed/nn/decoding.hpp>
#include <heed/nn/transformer.hpp>

#include "testing.hpp"

namespace {

namespace nn = heed::nn;
using heed::DType;
using heed::Shape;
using heed::Tensor;
using heed::testing::error_of;

// A first-order Markov "model": the next-token distribution depends on the last token only.
// probs[a][b] = P(next = b | last = a). It counts the rows it is asked for, to check the bookkeeping.
struct MarkovModel {
  std::vector<std::vector<double>> probs;
  std::vector<int64_t> last;  // per decoder row
  int64_t steps = 0, rows_fed = 0;

  std::unique_ptr<nn::IncrementalDecoder> decoder() {
    last.clear();
    return std::make_unique<nn::FunctionDecoder>(
        [this](const Tensor& tokens) {
          ++steps;
          const int64_t b = tokens.size(0), t = tokens.size(1), v = static_cast<int64_t>(probs.size());
          rows_fed += b;
          const std::vector<int64_t> tok = tokens.to_vector<int64_t>();
          last.assign(static_cast<size_t>(b), 0);
          std::vector<float> logits;
          for (int64_t r = 0; r < b; ++r) {
            last[r] = tok[r * t + t - 1];
            for (double p : probs[last[r]]) logits.push_back(static_cast<float>(p > 0 ? std::log(p) : -30.0));
          }
          return heed::tensor(logits, {b, v});
        },
        [this](const Tensor& rows) {
          std::vector<int64_t> kept;
          for (int64_t r : rows.to_vector<int64_t>()) kept.push_back(last.at(static_cast<size_t>(r)));
          last = kept;
        });
  }
};

// Tokens: 0 = eos, 1 = A, 2 = B, 3 = start. From start A (0.6) beats B (0.4), but after A every token is
// equally likely (eos 0.25) while after B eos has 0.9: greedy finds "A eos" (p 0.15), a beam of 2 finds
// "B eos" (p 0.36).
MarkovModel trap() {
  MarkovModel m;
  m.probs = {{0.97, 0.01, 0.01, 0.01}, {0.25, 0.25, 0.25, 0.25}, {0.9, 0.05, 0.05, 0.0}, {0.0, 0.6, 0.4, 0.0}};
  return m;
}

}  // namespace

TEST_CASE("greedy_decode: argmax chain, stops when every row has produced eos, pads finished rows with eos") {
  MarkovModel m = trap();
  auto dec = m.decoder();
  Tensor out = nn::greedy_decode(*dec, heed::index_tensor({3, 2}, {2, 1}), 10, 0);
  // Row 0: start -> A (0.6) -> eos (first of the ties); row 1: B -> eos.
  CHECK(out.shape() == Shape{2, 3});
  CHECK(out.to_vector<int64_t>() == std::vector<int64_t>{3, 1, 0, 2, 0, 0});
  CHECK(m.steps == 2);  // the prompt, then one token per row; stopped as soon as both rows ended

  MarkovModel n = trap();
  auto dec2 = n.decoder();
  Tensor no_eos = nn::greedy_decode(*dec2, heed::index_tensor({3}, {1, 1}), 4);
  CHECK(no_eos.to_vector<int64_t>() == std::vector<int64_t>{3, 1, 0, 0, 0});
  CHECK(n.steps == 4);
}

TEST_CASE("beam_search: escapes the greedy trap; GNMT length penalty; hypotheses sorted, eos included") {
  MarkovModel m = trap();
  auto dec = m.decoder();
  nn::BeamSearchResult r =
      nn::beam_search(*dec, heed::index_tensor({3}, {1, 1}),
                      nn::BeamSearchOptions().beam_width(2).length_penalty(0.0).eos(0).max_new_tokens(6));
  REQUIRE(r.hypotheses.size() == 1);
  REQUIRE(r.hypotheses[0].size() == 2);
  const nn::BeamHypothesis& best = r.hypotheses[0][0];
  CHECK(best.tokens == std::vector<int64_t>{2, 0});
  CHECK(best.log_prob == doctest::Approx(std::log(0.36)).epsilon(1e-5));
  CHECK(best.score == doctest::Approx(best.log_prob));
  CHECK(r.hypotheses[0][1].score <= best.score);
  CHECK(r.best().to_vector<int64_t>() == std::vector<int64_t>{2, 0});
  CHECK(nn::length_penalty(7, 0.6) == doctest::Approx(std::pow(2.0, 0.6)));

  // Width 1 is greedy.
  MarkovModel g = trap();
  auto dec1 = g.decoder();
  nn::BeamSearchResult r1 = nn::beam_search(*dec1, heed::index_tensor({3}, {1, 1}),
                                            nn::BeamSearchOptions().beam_width(1).eos(0).max_new_tokens(6));
  CHECK(r1.hypotheses[0][0].tokens == std::vector<int64_t>{1, 0});

  // A batch of two prompts keeps their beams apart.
  MarkovModel b = trap();
  auto decb = b.decoder();
  nn::BeamSearchResult rb = nn::beam_search(*decb, heed::index_tensor({3, 1}, {2, 1}),
                                            nn::BeamSearchOptions().beam_width(3).length_penalty(0.0).eos(0));
  CHECK(rb.hypotheses[0][0].tokens == std::vector<int64_t>{2, 0});
  CHECK(rb.hypotheses[1][0].tokens == std::vector<int64_t>{0});  // after A: eos 0.25 beats any longer path
}

TEST_CASE("sampling_distribution: temperature, top-k, top-p (nucleus)") {
  const std::vector<double> logits = {std::log(0.5), std::log(0.3), std::log(0.15), std::log(0.05)};
  auto dist = [&](nn::SamplingOptions o) { return nn::sampling_distribution(logits, o); };
  auto approx = [](const std::vector<double>& got, const std::vector<double>& want) {
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-9));
  };
  approx(dist({}), {0.5, 0.3, 0.15, 0.05});
  approx(dist(nn::SamplingOptions().top_k(2)), {0.625, 0.375, 0, 0});
  approx(dist(nn::SamplingOptions().top_p(0.7)), {0.625, 0.375, 0, 0});  // 0.5 < 0.7 <= 0.8
  approx(dist(nn::SamplingOptions().top_p(0.5)), {1, 0, 0, 0});
  approx(dist(nn::SamplingOptions().top_p(0.9).top_k(3)), {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0});
  approx(dist(nn::SamplingOptions().temperature(0.0)), {1, 0, 0, 0});
  const double s = std::sqrt(0.5) + std::sqrt(0.3) + std::sqrt(0.15) + std::sqrt(0.05);
  approx(dist(nn::SamplingOptions().temperature(2.0)),
         {std::sqrt(0.5) / s, std::sqrt(0.3) / s, std::sqrt(0.15) / s, std::sqrt(0.05) / s});
  CHECK(error_of([&] { dist(nn::SamplingOptions().top_p(0.0)); }).find("top_p") != std::string::npos);
  CHECK(error_of([&] { dist(nn::SamplingOptions().temperature(-1)); }).find("temperature") != std::string::npos);
}

TEST_CASE("sample: frequencies follow the distribution, top-k never leaves the top k, reproducible with a generator") {
  MarkovModel m;
  m.probs = {{0.5, 0.3, 0.15, 0.05}, {0.5, 0.3, 0.15, 0.05}, {0.5, 0.3, 0.15, 0.05}, {0.5, 0.3, 0.15, 0.05}};
  const int64_t n = 4000;
  heed::Generator gen(99);
  auto dec = m.decoder();
  Tensor out = nn::sample(*dec, heed::zeros({n, 1}, DType::Int64), 1, nn::SamplingOptions().generator(&gen));
  std::vector<double> freq(4, 0.0);
  const std::vector<int64_t> tok = out.to_vector<int64_t>();
  for (int64_t r = 0; r < n; ++r) freq[tok[r * 2 + 1]] += 1.0 / static_cast<double>(n);
  CHECK(freq[0] == doctest::Approx(0.5).epsilon(0.06));
  CHECK(freq[1] == doctest::Approx(0.3).epsilon(0.08));
  CHECK(freq[3] == doctest::Approx(0.05).epsilon(0.3));

  heed::Generator gk(5);
  auto deck = m.decoder();
  Tensor topk = nn::sample(*deck, heed::zeros({500, 1}, DType::Int64), 3,
                           nn::SamplingOptions().top_k(2).generator(&gk));
  const std::vector<int64_t> tk = topk.to_vector<int64_t>();
  for (size_t i = 0; i < tk.size(); ++i)
    if (i % 4 != 0) CHECK(tk[i] <= 1);

  heed::Generator a(7), b(7);
  auto d1 = m.decoder();
  Tensor s1 = nn::sample(*d1, heed::zeros({3, 1}, DType::Int64), 8, nn::SamplingOptions().generator(&a));
  auto d2 = m.decoder();
  Tensor s2 = nn::sample(*d2, heed::zeros({3, 1}, DType::Int64), 8, nn::SamplingOptions().generator(&b));
  CHECK(s1.to_vector<int64_t>() == s2.to_vector<int64_t>());
}

TEST_CASE("decoding: bad prompts and bad step results give heed errors") {
  MarkovModel m = trap();
  auto dec = m.decoder();
  CHECK(error_of([&] { nn::greedy_decode(*dec, heed::zeros({2, 1}), 3); }).find("greedy_decode: prompt must be Int64") !=
        std::string::npos);
  nn::FunctionDecoder bad([](const Tensor&) { return heed::zeros({5, 4}); }, [](const Tensor&) {});
  CHECK(error_of([&] { nn::greedy_decode(bad, heed::zeros({2, 1}, DType::Int64), 3); }).find("shape (2, V)") !=
        std::string::npos);
  CHECK(error_of([&] { nn::beam_search(*dec, heed::zeros({1, 1}, DType::Int64), nn::BeamSearchOptions().beam_width(0)); })
            .find("beam_width") != std::string::npos);
}

TEST_CASE("TransformerLM: cached decoding gives the same tokens as re-running the prefix (greedy, beam, sampling)") {
  for (bool nf : {false, true}) {
    CAPTURE(nf);
    heed::manual_seed(31);
    nn::TransformerLM lm(nn::TransformerLMOptions(13, 16).nhead(2).num_layers(2).dim_feedforward(32).max_len(64).norm_first(nf));
    lm.eval();
    Tensor prompt = heed::randint(0, 13, {3, 4});
    auto cached = lm.incremental_decoder();
    auto full = lm.uncached_decoder();
    Tensor g1 = nn::greedy_decode(*cached, prompt, 20);
    Tensor g2 = nn::greedy_decode(*full, prompt, 20);
    CHECK(g1.shape() == Shape{3, 24});
    CHECK(g1.to_vector<int64_t>() == g2.to_vector<int64_t>());

    auto opts = nn::BeamSearchOptions().beam_width(3).max_new_tokens(12).eos(0);
    auto c2 = lm.incremental_decoder();
    auto f2 = lm.uncached_decoder();
    nn::BeamSearchResult b1 = nn::beam_search(*c2, prompt, opts), b2 = nn::beam_search(*f2, prompt, opts);
    for (size_t r = 0; r < 3; ++r) {
      REQUIRE(b1.hypotheses[r].size() == b2.hypotheses[r].size());
      for (size_t h = 0; h < b1.hypotheses[r].size(); ++h) {
        CHECK(b1.hypotheses[r][h].tokens == b2.hypotheses[r][h].tokens);
        CHECK(b1.hypotheses[r][h].score == doctest::Approx(b2.hypotheses[r][h].score).epsilon(1e-4));
      }
    }

    heed::Generator ga(3), gb(3);
    auto c3 = lm.incremental_decoder();
    auto f3 = lm.uncached_decoder();
    Tensor s1 = nn::sample(*c3, prompt, 16, nn::SamplingOptions().temperature(0.8).top_p(0.9).generator(&ga));
    Tensor s2 = nn::sample(*f3, prompt, 16, nn::SamplingOptions().temperature(0.8).top_p(0.9).generator(&gb));
    CHECK(s1.to_vector<int64_t>() == s2.to_vector<int64_t>());

    // generate(): the cache, eval mode inside, the caller's mode restored, the prompt kept.
    lm.train();
    heed::Generator gc(4);
    Tensor gen = lm.generate(prompt, 5, nn::SamplingOptions().top_k(4).generator(&gc));
    CHECK(lm.is_training());
    CHECK(gen.shape() == Shape{3, 9});
    CHECK(heed::max_abs_diff(heed::narrow(gen, 1, 0, 4).to(DType::Float64), prompt.to(DType::Float64)) == 0.0);
  }
}

TEST_CASE("Seq2SeqTransformer: cached decoding gives the same tokens as re-running the decoder (greedy, beam)") {
  heed::manual_seed(41);
  nn::Seq2SeqTransformer model(nn::Seq2SeqTransformerOptions(9, 11)
                                   .d_model(16)
                                   .nhead(2)
                                   .num_encoder_layers(2)
                                   .num_decoder_layers(2)
                                   .dim_feedforward(32)
                                   .max_len(40)
                                   .tie_output(true));
  model.eval();
  Tensor src = heed::index_tensor({3, 4, 5, 6, 7, 0, 8, 2, 3, 4, 0, 0}, {2, 6});  // the second row padded
  Tensor bos = heed::full({2, 1}, 1, DType::Int64);
  auto c = model.incremental_decoder(src);
  auto f = model.uncached_decoder(src);
  CHECK(nn::greedy_decode(*c, bos, 15).to_vector<int64_t>() == nn::greedy_decode(*f, bos, 15).to_vector<int64_t>());
  auto opts = nn::BeamSearchOptions().beam_width(4).max_new_tokens(10).eos(2);
  auto c2 = model.incremental_decoder(src);
  auto f2 = model.uncached_decoder(src);
  nn::BeamSearchResult b1 = nn::beam_search(*c2, bos, opts), b2 = nn::beam_search(*f2, bos, opts);
  for (size_t r = 0; r < 2; ++r)
    for (size_t h = 0; h < b1.hypotheses[r].size(); ++h) CHECK(b1.hypotheses[r][h].tokens == b2.hypotheses[r][h].tokens);
  // Tied output: no generator.weight, the bias is generator.bias.
  bool has_weight = false, has_bias = false;
  for (auto& [name, p] : model.named_parameters()) {
    has_weight = has_weight || name == "generator.weight";
    has_bias = has_bias || name == "generator.bias";
  }
  CHECK(!has_weight);
  CHECK(has_bias);
}
