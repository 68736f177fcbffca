// Bitwise reproducibility on one thread: a result must not depend on where its buffers sit in memory or
// on what ran before it in the process. Two checks:
//   - identical rows give bitwise identical results, whatever their offset in the buffer (each row of a
//     softmax-family op starts at a different alignment, so a kernel whose arithmetic depends on the
//     address gives them different last bits);
//   - training the same small model twice in one process (same seed, same data), with unrelated
//     allocations and ops in between, ends with bitwise equal parameters.
#include <doctest/doctest.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <heed/heed.hpp>

#include "heed/nn/attention.hpp"
#include "heed/nn/conv.hpp"
#include "heed/nn/recurrent.hpp"
#include "heed/nn/seq2seq_attention.hpp"
#include "heed/nn/transformer.hpp"

namespace {

using heed::DType;
using heed::Shape;
using heed::Tensor;
namespace nn = heed::nn;

// The rows of t (last axis) as raw bit patterns: equal only when bitwise equal (NaN included).
template <class T>
std::vector<std::vector<unsigned char>> row_bytes(const Tensor& t) {
  const std::vector<T> v = t.contiguous().to_vector<T>();
  const std::size_t n = static_cast<std::size_t>(t.size(-1));
  std::vector<std::vector<unsigned char>> rows;
  for (std::size_t r = 0; r * n < v.size(); ++r) {
    std::vector<unsigned char> bytes(n * sizeof(T));
    std::memcpy(bytes.data(), v.data() + r * n, bytes.size());
    rows.push_back(std::move(bytes));
  }
  return rows;
}

// Every row of t equals row 0 bit for bit.
template <class T>
void check_rows_identical(const Tensor& t, const std::string& what) {
  const auto rows = row_bytes<T>(t);
  REQUIRE(rows.size() > 1);
  for (std::size_t r = 1; r < rows.size(); ++r) CHECK_MESSAGE(rows[r] == rows[0], what << ": row " << r << " differs from row 0");
}

// `count` copies of one row of n values spread over [-4, 4] (so e^x spans its range).
Tensor repeated_rows(int64_t count, int64_t n, DType dtype) {
  std::vector<double> row(static_cast<std::size_t>(n));
  for (int64_t j = 0; j < n; ++j) row[static_cast<std::size_t>(j)] = -4.0 + 8.0 * static_cast<double>((j * 7) % n) / static_cast<double>(n) + 0.013 * j;
  std::vector<double> all;
  for (int64_t r = 0; r < count; ++r) all.insert(all.end(), row.begin(), row.end());
  return heed::tensor(all, {count, n}, dtype);
}

template <class T>
void check_softmax_family(DType dtype) {
  // n = 5: rows start at offsets 0, 5, 10, ... elements, i.e. at every alignment of a SIMD register.
  for (int64_t n : {5, 13}) {
    const std::string size = " (n = " + std::to_string(n) + ")";
    const Tensor x = repeated_rows(9, n, dtype).requires_grad_();
    check_rows_identical<T>(heed::softmax(x, -1), "softmax" + size);
    check_rows_identical<T>(heed::log_softmax(x, -1), "log_softmax" + size);
    check_rows_identical<T>(heed::logsumexp(x, 1, true), "logsumexp" + size);

    const Tensor targets = heed::full({9}, 2, DType::Int64);
    heed::CrossEntropyOptions none;
    none.reduction(heed::Reduction::None);
    const Tensor losses = heed::cross_entropy(x, targets, none);
    check_rows_identical<T>(losses.reshape({9, 1}), "cross_entropy" + size);
    heed::sum(losses).backward();
    check_rows_identical<T>(x.grad(), "cross_entropy gradient" + size);
  }
}

TEST_CASE("determinism: identical rows give bitwise identical softmax, log_softmax, logsumexp and cross_entropy") {
  check_softmax_family<float>(DType::Float32);
  check_softmax_family<double>(DType::Float64);
}

TEST_CASE("determinism: identical sequences in one GRU / LSTM batch give bitwise identical outputs") {
  heed::manual_seed(3);
  // H = 5: sequence n's rows of the fused kernels' scratch start at n * 2H, n * 3H, n * 4H elements.
  nn::GRU gru(nn::GRUOptions(3, 5).bidirectional(true).batch_first(true));
  nn::LSTM lstm(nn::LSTMOptions(3, 5).bidirectional(true).batch_first(true));
  const Tensor one = heed::randn({1, 4, 3});
  const Tensor batch = heed::concat(std::vector<Tensor>(7, one), 0);
  check_rows_identical<float>(gru.forward(batch, Tensor()).output.reshape({7, -1}), "GRU output");
  check_rows_identical<float>(lstm.forward(batch, nn::LSTMState{}).output.reshape({7, -1}), "LSTM output");
}

// A small seq2seq model of the kind examples/translation trains, plus a Transformer encoder layer (with
// dropout), a flash-attention op and a convolution on the way.
struct TinySeq2Seq : nn::Module {
  static constexpr int64_t kVocab = 11, kEmbed = 8, kHidden = 5, kDecoder = 7;
  TinySeq2Seq() : Module("TinySeq2Seq") {
    embedding = register_module("embedding", std::make_shared<nn::Embedding>(kVocab, kEmbed, 0));
    transformer = register_module(
        "transformer", std::make_shared<nn::TransformerEncoderLayer>(
                           nn::TransformerLayerOptions(kEmbed, 2).dim_feedforward(12).dropout(0.1)));
    conv = register_module("conv", std::make_shared<nn::Conv2d>(1, 1, heed::Size2{3, 3}));
    encoder = register_module("encoder", std::make_shared<nn::GRU>(
                                             nn::GRUOptions(kEmbed, kHidden).bidirectional(true).batch_first(true)));
    attention = register_module("attention", std::make_shared<nn::BahdanauAttention>(kDecoder, 2 * kHidden, 6));
    decoder = register_module("decoder", std::make_shared<nn::GRUCell>(nn::GRUCellOptions(kEmbed + 2 * kHidden, kDecoder)));
    output = register_module("output", std::make_shared<nn::Linear>(kDecoder + 2 * kHidden, kVocab));
  }

  // src (N, S), lengths (N), tgt_in (N, T) -> logits (N, T, vocab)
  Tensor forward_teacher(const Tensor& src, const Tensor& lengths, const Tensor& tgt_in) {
    const int64_t N = src.size(0), S = src.size(1);
    const Tensor keep = nn::keep_mask_from_lengths(lengths, S);
    nn::AttentionMasks masks;
    masks.key_padding = keep;
    Tensor x = transformer->forward((*embedding)(src), masks).output;
    const Tensor q = x.reshape({N, S, 2, kEmbed / 2}).transpose(1, 2);
    x = x + nn::flash_attention(q, q, q, keep.reshape({N, 1, 1, S})).transpose(1, 2).reshape({N, S, kEmbed});
    x = x + (*conv)(x.unsqueeze(1)).squeeze(1).mean() * 0.1;
    const Tensor encoded = encoder->forward(x, Tensor(), lengths).output;  // (N, S, 2H)
    const nn::AttentionMemory memory = attention->precompute(encoded, keep);
    const Tensor targets = (*embedding)(tgt_in);
    Tensor h = heed::zeros({N, kDecoder});
    std::vector<Tensor> steps;
    for (int64_t t = 0; t < tgt_in.size(1); ++t) {
      const Tensor context = attention->forward(h, memory).context;
      h = decoder->forward(heed::concat({heed::select(targets, 1, t), context}, 1), h);
      steps.push_back((*output)(heed::concat({h, context}, 1)));
    }
    return heed::stack(steps, 1);
  }

  std::shared_ptr<nn::Embedding> embedding;
  std::shared_ptr<nn::TransformerEncoderLayer> transformer;
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::GRU> encoder;
  std::shared_ptr<nn::BahdanauAttention> attention;
  std::shared_ptr<nn::GRUCell> decoder;
  std::shared_ptr<nn::Linear> output;
};

// Trains a fresh TinySeq2Seq from manual_seed(seed) and returns every parameter's bytes and each loss.
std::vector<unsigned char> train_tiny_seq2seq(uint64_t seed) {
  heed::manual_seed(seed);
  auto model = std::make_shared<TinySeq2Seq>();
  heed::optim::Adam optimizer(model->parameters(), heed::optim::AdamOptions(1e-2));
  const Tensor src = heed::tensor({3, 5, 7, 2, 9, 4, 6, 8, 3, 4, 2, 5, 0, 0, 10, 7, 3, 0, 0, 0, 6, 6, 1, 2, 0, 0, 0},
                                  {3, 9}, DType::Int64);  // row-major: the rows are padded with 0
  const Tensor lengths = heed::tensor({9, 7, 4}, {3}, DType::Int64);
  const Tensor tgt_in = heed::tensor({1, 7, 9, 2, 5, 1, 4, 4, 8, 3, 1, 2, 6, 10, 9}, {3, 5}, DType::Int64);
  const Tensor tgt_out = heed::tensor({7, 9, 2, 5, 3, 4, 4, 8, 3, 0, 2, 6, 10, 0, 0}, {3, 5}, DType::Int64);
  std::vector<unsigned char> bytes;
  auto append = [&bytes](const Tensor& t) {
    const std::vector<float> v = t.contiguous().to_vector<float>();
    const auto* p = reinterpret_cast<const unsigned char*>(v.data());
    bytes.insert(bytes.end(), p, p + v.size() * sizeof(float));
  };
  model->train();
  for (int step = 0; step < 6; ++step) {
    optimizer.zero_grad();
    const Tensor logits = model->forward_teacher(src, lengths, tgt_in);
    heed::CrossEntropyOptions options;
    options.ignore_index(0);
    const Tensor loss = heed::cross_entropy(logits, tgt_out, options);
    loss.backward();
    heed::optim::clip_grad_norm_(model->parameters(), 1.0);
    optimizer.step();
    append(loss.detach());
  }
  for (const Tensor& p : model->parameters()) append(p.detach());
  return bytes;
}

// Allocations of odd sizes (some kept alive by the caller) and unrelated ops, so that the next run's
// buffers land at other addresses and alignments than the first run's.
std::vector<std::vector<float>> disturb_allocator(int round) {
  std::vector<std::vector<float>> kept;
  for (int i = 1; i <= 23; ++i) kept.emplace_back(static_cast<std::size_t>(i * (round + 2) + 1), 1.0f);
  for (int i = 0; i < 7; ++i) {
    Tensor junk = heed::randn({i + 1 + round, 13});
    junk = heed::softmax(junk, -1) + heed::log_softmax(junk, 0);
    (void)heed::sum(junk).item();
  }
  return kept;
}

TEST_CASE("determinism: training the same model twice in one process gives bitwise equal parameters") {
  const std::vector<unsigned char> first = train_tiny_seq2seq(11);
  REQUIRE(!first.empty());
  std::vector<std::vector<std::vector<float>>> kept;
  for (int round = 0; round < 3; ++round) {
    kept.push_back(disturb_allocator(round));
    const std::vector<unsigned char> again = train_tiny_seq2seq(11);
    REQUIRE(again.size() == first.size());
    CHECK_MESSAGE(again == first, "run " << round + 2 << " differs from run 1");
  }
}

}  // namespace
