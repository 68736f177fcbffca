// heed/data.hpp — in-memory datasets, batching, sequence padding and a word tokenizer (heed::data).
//
//   heed::data::TensorDataset train({ids, labels});           // rows along axis 0
//   heed::data::DataLoader loader(train, heed::data::LoaderOptions().batch_size(100).seed(1));
//   for (std::size_t b = 0; b < loader.size(); ++b) { auto batch = loader.batch(b); ... }
//   loader.reshuffle();                                       // a new order for the next epoch
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "heed/random.hpp"
#include "heed/options.hpp"
#include "heed/tensor.hpp"

/// Data: datasets, batching, shuffling, tokenizing, padding.
namespace heed::data {

/// Shuffles `items` in place (Fisher-Yates with heed's generator): the order depends only on gen's state,
/// so the same seed gives the same order on every platform. DataLoader draws its orders with it.
template <class T>
void shuffle(std::vector<T>& items, Generator& gen) {
  for (std::size_t i = items.size(); i > 1; --i)
    std::swap(items[i - 1], items[static_cast<std::size_t>(gen.randint(0, static_cast<int64_t>(i)))]);
}

/// Tensors that share their first axis (examples); batch i is the same rows of each.
class TensorDataset {
 public:
  TensorDataset() = default;
  explicit TensorDataset(std::vector<Tensor> tensors);  ///< throws when first axes differ
  int64_t size() const { return size_; }  ///< rows (the shared first-axis length)
  const std::vector<Tensor>& tensors() const { return tensors_; }  ///< the tensors, in construction order
  std::vector<Tensor> rows(const Tensor& index) const;  ///< index_select of each tensor (no grad)
  /// Splits off the last `fraction` of the rows (Keras' validation_split takes the tail too).
  std::pair<TensorDataset, TensorDataset> split_tail(double fraction) const;

 private:
  std::vector<Tensor> tensors_;
  int64_t size_ = 0;
};

/// Settings of a DataLoader. Setters chain; the same names without arguments read.
struct LoaderOptions {
  HEED_ARG(int64_t, batch_size) = 32;  ///< rows per batch; must be > 0
  HEED_ARG(bool, shuffle) = true;  ///< a random order (else the dataset's order)
  HEED_ARG(uint64_t, seed) = 0;  ///< seed of the loader's own generator
  HEED_ARG(bool, drop_last) = false;  ///< skip a last batch smaller than batch_size
};

/// One process's share of every epoch in a distributed run (PyTorch's DistributedSampler): the epoch's
/// order of all rows — the same on every process, drawn from the same seed — is padded by wrapping around
/// to a multiple of num_replicas (its first rows repeat) or, with drop_last, cut to one, and process
/// `rank` takes positions rank, rank + num_replicas, rank + 2 num_replicas, ... So the shards are equal in
/// size, disjoint but for the padding (at most num_replicas - 1 repeated rows), and together cover every
/// row; and batch b of every shard, with batch size B, holds exactly the rows of batch b of one process
/// reading the whole order with batch size num_replicas x B. With one replica it is the identity.
class DistributedSampler {
 public:
  /// Throws heed::Error unless num_replicas >= 1 and 0 <= rank < num_replicas.
  explicit DistributedSampler(int num_replicas = 1, int rank = 0, bool drop_last = false);
  /// This rank's rows of an epoch's order of all rows (the same `order` on every rank).
  std::vector<int64_t> shard(const std::vector<int64_t>& order) const;
  /// Rows per rank for a dataset of n rows: ceil(n / num_replicas), or floor with drop_last.
  int64_t shard_size(int64_t n) const;
  int num_replicas() const { return num_replicas_; }  ///< processes sharing the data
  int rank() const { return rank_; }  ///< this process's number

 private:
  int num_replicas_, rank_;
  bool drop_last_;
};

/// Cuts a TensorDataset into batches in a (re)shuffled order.
class DataLoader {
 public:
  /// Keeps a pointer to `dataset`, which must outlive the loader; draws a first order when shuffle is on.
  /// Throws heed::Error when batch_size <= 0.
  DataLoader(const TensorDataset& dataset, LoaderOptions options);
  /// A loader over this process's shard only (DistributedSampler): every process draws the same order of
  /// all rows (the same options.seed on every process) and reads its own share of it; size() counts the
  /// shard's batches, the same number on every process. heed::fit makes one in a distributed run.
  DataLoader(const TensorDataset& dataset, LoaderOptions options, DistributedSampler sampler);
  std::size_t size() const;  ///< batches per epoch
  /// Batch i of the current order: the rows of each dataset tensor (no grad); throws when i >= size().
  std::vector<Tensor> batch(std::size_t i) const;
  /// Draws a new order (when shuffle is on) from the loader's own generator; the order is a function of
  /// the generator's state alone.
  void reshuffle();
  Generator& generator() { return gen_; }  ///< state is part of a training checkpoint

 private:
  const TensorDataset* dataset_;
  LoaderOptions options_;
  DistributedSampler sampler_;
  Generator gen_;
  std::vector<int64_t> order_;  // this process's rows of the epoch, in order
};

/// Variable-length integer sequences padded into one batch, the form recurrent layers and attention take.
struct PaddedBatch {
  Tensor ids;      ///< Int64 (N, T)
  Tensor lengths;  ///< Int64 (N): real tokens per row
  Tensor mask;     ///< Bool (N, T): true at real tokens (a keep-mask)
};
/// Where pad_sequences pads or truncates a sequence.
enum class Side {
  Pre,   ///< at the start
  Post,  ///< at the end
};
/// Keras pad_sequences: pad (and truncate) each sequence to max_length (0 = longest), `pad_value` in the
/// gaps; Post padding/truncation keeps the start of long sequences. Empty sequences get length 0.
PaddedBatch pad_sequences(const std::vector<std::vector<int64_t>>& sequences, int64_t max_length = 0,
                          int64_t pad_value = 0, Side padding = Side::Post, Side truncating = Side::Post);

/// Lower-cases, splits on white space and punctuation (each punctuation mark becomes its own token),
/// and maps words to ids by frequency: 0 = padding, 1 = out-of-vocabulary, then the most frequent words.
class Tokenizer {
 public:
  /// max_words caps the vocabulary size, `<pad>` and `<oov>` included (0 = keep every word).
  explicit Tokenizer(int64_t max_words = 0) : max_words_(max_words) {}
  /// The tokens of `text`: lower-cased words split at white space; punctuation other than ' is a token alone.
  static std::vector<std::string> split(const std::string& text);
  /// Rebuilds the vocabulary from `texts`: most frequent words first, ties in first-seen order.
  void fit(const std::vector<std::string>& texts);
  /// The ids of text's tokens; words outside the vocabulary become kOov.
  std::vector<int64_t> encode(const std::string& text) const;
  /// encode() of each text (ragged: feed them to pad_sequences).
  std::vector<std::vector<int64_t>> encode(const std::vector<std::string>& texts) const;
  const std::string& word(int64_t id) const;  ///< "<pad>", "<oov>", or the word; throws when out of range
  /// Ids in use, `<pad>` and `<oov>` included (an Embedding's num_embeddings).
  int64_t vocab_size() const { return static_cast<int64_t>(words_.size()); }
  static constexpr int64_t kPad = 0;  ///< the id of padding
  static constexpr int64_t kOov = 1;  ///< the id of every out-of-vocabulary word

 private:
  int64_t max_words_;
  std::vector<std::string> words_{"<pad>", "<oov>"};
  std::unordered_map<std::string, int64_t> ids_;
};

}  // namespace heed::data
