// framework/data/data.cpp — datasets, loaders, padding, tokenizer (heed/data.hpp).
#include "heed/data.hpp"

#include <algorithm>
#include <cctype>
#include <numeric>

#include "heed/autograd.hpp"
#include "heed/ops.hpp"

namespace heed::data {

TensorDataset::TensorDataset(std::vector<Tensor> tensors) : tensors_(std::move(tensors)) {
  HEED_CHECK(!tensors_.empty(), "TensorDataset: needs at least one tensor");
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    HEED_CHECK(tensors_[i].defined() && tensors_[i].dim() >= 1, "TensorDataset: tensor {} must have at least one axis", i);
    HEED_CHECK(tensors_[i].size(0) == tensors_[0].size(0),
               "TensorDataset: tensor {} has {} rows ({}), tensor 0 has {} ({})", i, tensors_[i].size(0),
               shape_str(tensors_[i].shape()), tensors_[0].size(0), shape_str(tensors_[0].shape()));
  }
  size_ = tensors_[0].size(0);
}

std::vector<Tensor> TensorDataset::rows(const Tensor& index) const {
  NoGradGuard no_grad;
  std::vector<Tensor> out;
  for (const Tensor& t : tensors_) out.push_back(index_select(t, 0, index));
  return out;
}

std::pair<TensorDataset, TensorDataset> TensorDataset::split_tail(double fraction) const {
  HEED_CHECK(fraction > 0 && fraction < 1, "TensorDataset::split_tail: fraction must be in (0, 1), got {}", fraction);
  const int64_t tail = static_cast<int64_t>(static_cast<double>(size_) * fraction);
  HEED_CHECK(tail >= 1 && tail < size_, "TensorDataset::split_tail: {} of {} rows leaves an empty part", fraction, size_);
  std::vector<Tensor> head_t, tail_t;
  for (const Tensor& t : tensors_) {
    head_t.push_back(narrow(t, 0, 0, size_ - tail).contiguous());
    tail_t.push_back(narrow(t, 0, size_ - tail, tail).contiguous());
  }
  return {TensorDataset(head_t), TensorDataset(tail_t)};
}

DistributedSampler::DistributedSampler(int num_replicas, int rank, bool drop_last)
    : num_replicas_(num_replicas), rank_(rank), drop_last_(drop_last) {
  HEED_CHECK(num_replicas >= 1 && rank >= 0 && rank < num_replicas,
             "DistributedSampler: rank {} of {} replicas is invalid (need 0 <= rank < num_replicas)", rank, num_replicas);
}

int64_t DistributedSampler::shard_size(int64_t n) const {
  const int64_t p = num_replicas_;
  return drop_last_ ? n / p : (n + p - 1) / p;
}

std::vector<int64_t> DistributedSampler::shard(const std::vector<int64_t>& order) const {
  if (num_replicas_ == 1) return order;
  const int64_t n = static_cast<int64_t>(order.size()), per_rank = shard_size(n);
  std::vector<int64_t> out;
  if (n == 0) return out;
  out.reserve(static_cast<std::size_t>(per_rank));
  // Position i of the padded order is order[i mod n]: the padding wraps around to the start.
  for (int64_t j = 0; j < per_rank; ++j) out.push_back(order[static_cast<std::size_t>((j * num_replicas_ + rank_) % n)]);
  return out;
}

DataLoader::DataLoader(const TensorDataset& dataset, LoaderOptions options)
    : DataLoader(dataset, options, DistributedSampler()) {}

DataLoader::DataLoader(const TensorDataset& dataset, LoaderOptions options, DistributedSampler sampler)
    : dataset_(&dataset), options_(options), sampler_(sampler), gen_(options.seed()) {
  HEED_CHECK(options.batch_size() > 0, "DataLoader: batch_size must be positive, got {}", options.batch_size());
  std::vector<int64_t> all(static_cast<std::size_t>(dataset.size()));
  std::iota(all.begin(), all.end(), 0);
  if (options_.shuffle()) shuffle(all, gen_);
  order_ = sampler_.shard(all);
}

void DataLoader::reshuffle() {
  if (!options_.shuffle()) return;
  // The order depends only on the generator's state, so a resumed run reproduces it; every process of a
  // distributed run draws the same one and keeps its shard.
  std::vector<int64_t> all(static_cast<std::size_t>(dataset_->size()));
  std::iota(all.begin(), all.end(), 0);
  shuffle(all, gen_);
  order_ = sampler_.shard(all);
}

std::size_t DataLoader::size() const {
  const std::size_t n = order_.size(), b = static_cast<std::size_t>(options_.batch_size());
  return options_.drop_last() ? n / b : (n + b - 1) / b;
}

std::vector<Tensor> DataLoader::batch(std::size_t i) const {
  HEED_CHECK(i < size(), "DataLoader::batch: batch {} is out of range ({} batches)", i, size());
  const std::size_t b = static_cast<std::size_t>(options_.batch_size());
  const std::size_t begin = i * b, end = std::min(order_.size(), begin + b);
  std::vector<int64_t> idx(order_.begin() + static_cast<std::ptrdiff_t>(begin), order_.begin() + static_cast<std::ptrdiff_t>(end));
  return dataset_->rows(index_tensor(idx));
}

PaddedBatch pad_sequences(const std::vector<std::vector<int64_t>>& sequences, int64_t max_length, int64_t pad_value,
                          Side padding, Side truncating) {
  HEED_CHECK(max_length >= 0, "pad_sequences: max_length must be >= 0, got {}", max_length);
  int64_t t = max_length;
  if (t == 0)
    for (const auto& s : sequences) t = std::max<int64_t>(t, static_cast<int64_t>(s.size()));
  const int64_t n = static_cast<int64_t>(sequences.size());
  PaddedBatch out{full({n, t}, static_cast<double>(pad_value), DType::Int64), zeros({n}, DType::Int64),
                  zeros({n, t}, DType::Bool)};
  int64_t* ids = out.ids.data<int64_t>();
  int64_t* lengths = out.lengths.data<int64_t>();
  uint8_t* mask = out.mask.data<uint8_t>();
  for (int64_t i = 0; i < n; ++i) {
    const auto& s = sequences[static_cast<std::size_t>(i)];
    const int64_t len = std::min<int64_t>(t, static_cast<int64_t>(s.size()));
    const int64_t src_begin = truncating == Side::Pre ? static_cast<int64_t>(s.size()) - len : 0;
    const int64_t dst_begin = padding == Side::Pre ? t - len : 0;
    for (int64_t j = 0; j < len; ++j) {
      ids[i * t + dst_begin + j] = s[static_cast<std::size_t>(src_begin + j)];
      mask[i * t + dst_begin + j] = 1;
    }
    lengths[i] = len;
  }
  return out;
}

std::vector<std::string> Tokenizer::split(const std::string& text) {
  std::vector<std::string> tokens;
  std::string current;
  auto flush = [&] {
    if (!current.empty()) tokens.push_back(current);
    current.clear();
  };
  for (unsigned char c : text) {
    if (std::isspace(c)) {
      flush();
    } else if (std::ispunct(c) && c != '\'') {
      flush();
      tokens.emplace_back(1, static_cast<char>(c));
    } else {
      current += static_cast<char>(std::tolower(c));
    }
  }
  flush();
  return tokens;
}

void Tokenizer::fit(const std::vector<std::string>& texts) {
  std::unordered_map<std::string, int64_t> counts;
  std::vector<std::string> first_seen;
  for (const auto& text : texts)
    for (auto& w : split(text))
      if (counts[w]++ == 0) first_seen.push_back(w);
  // Most frequent first; ties keep first-seen order so the vocabulary is deterministic.
  std::stable_sort(first_seen.begin(), first_seen.end(),
                   [&](const std::string& a, const std::string& b) { return counts[a] > counts[b]; });
  words_ = {"<pad>", "<oov>"};
  ids_.clear();
  for (const auto& w : first_seen) {
    if (max_words_ > 0 && static_cast<int64_t>(words_.size()) >= max_words_) break;
    ids_[w] = static_cast<int64_t>(words_.size());
    words_.push_back(w);
  }
}

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (auto& w : split(text)) {
    auto it = ids_.find(w);
    ids.push_back(it == ids_.end() ? kOov : it->second);
  }
  return ids;
}

std::vector<std::vector<int64_t>> Tokenizer::encode(const std::vector<std::string>& texts) const {
  std::vector<std::vector<int64_t>> out;
  out.reserve(texts.size());
  for (const auto& t : texts) out.push_back(encode(t));
  return out;
}

const std::string& Tokenizer::word(int64_t id) const {
  HEED_CHECK(id >= 0 && id < vocab_size(), "Tokenizer::word: id {} is out of range (vocabulary of {})", id, vocab_size());
  return words_[static_cast<std::size_t>(id)];
}

}  // namespace heed::data
