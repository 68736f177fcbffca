// tests/fuzz/fuzz_tokenizer.cpp — heed::data::Tokenizer (the word tokenizer the sentiment example trains
// with) on arbitrary bytes: the first byte caps the vocabulary, the rest is split into lines, fitted and
// encoded. Every id is in range, every vocabulary word encodes to its own id, and pad_sequences of the
// encoded lines keeps their ids and lengths.
#include <heed/data.hpp>
#include <heed/tensor.hpp>
#include <sstream>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int64_t max_words = data[0] % 16 == 0 ? 0 : 2 + data[0] % 16;  // 0 = unlimited
  std::istringstream in(std::string(reinterpret_cast<const char*>(data + 1), size - 1));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  heed::data::Tokenizer tokenizer(max_words);
  tokenizer.fit(lines);
  const int64_t vocab = tokenizer.vocab_size();
  FUZZ_CHECK(vocab >= 2 && (max_words == 0 || vocab <= max_words));
  FUZZ_CHECK(tokenizer.word(heed::data::Tokenizer::kPad) == "<pad>");
  for (int64_t id = 2; id < vocab; ++id) {
    const std::string& word = tokenizer.word(id);
    FUZZ_CHECK(!word.empty());
    FUZZ_CHECK(tokenizer.encode(word) == std::vector<int64_t>{id});
  }
  const auto encoded = tokenizer.encode(lines);
  FUZZ_CHECK(encoded.size() == lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    FUZZ_CHECK(encoded[i].size() == heed::data::Tokenizer::split(lines[i]).size());
    for (int64_t id : encoded[i]) FUZZ_CHECK(id >= 1 && id < vocab);  // never <pad>
  }
  if (!lines.empty()) {
    const int64_t max_len = data[0] % 7;  // 0 = the longest line
    const heed::data::PaddedBatch padded = heed::data::pad_sequences(encoded, max_len);
    FUZZ_CHECK(padded.ids.size(0) == static_cast<int64_t>(lines.size()));
    const auto ids = padded.ids.to_vector<int64_t>();
    const auto lengths = padded.lengths.to_vector<int64_t>();
    const int64_t t = padded.ids.size(1);
    for (std::size_t i = 0; i < lines.size(); ++i) {
      const int64_t n = static_cast<int64_t>(encoded[i].size());
      FUZZ_CHECK(lengths[i] == std::min(n, t));
      for (int64_t j = 0; j < lengths[i]; ++j) FUZZ_CHECK(ids[i * static_cast<std::size_t>(t) + j] == encoded[i][j]);
    }
  }
  return 0;
}
