// tests/fuzz/fuzz_translation_pairs.cpp — the translation example's --pairs reader and its character
// vocabulary (examples/translation/data.hpp) on arbitrary bytes. The first byte picks the length limit.
// Either heed::Error with an escaped message, or pairs with two non-empty UTF-8 sides, no line break, no
// tab in the source, none longer than the limit; the vocabulary built from them encodes and decodes every
// side back to itself, and survives its checkpoint form (chars() -> from_chars()).
#include <heed/error.hpp>
#include <heed/utf8.hpp>
#include <sstream>

#include "../../examples/translation/data.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const int64_t max_chars = 1 + data[0] % 64;
  std::istringstream in(std::string(reinterpret_cast<const char*>(data + 1), size - 1));
  std::vector<translation::Pair> pairs;
  int64_t skipped = -1;
  try {
    pairs = translation::read_pairs(in, "fuzz.txt", max_chars, &skipped);
  } catch (const heed::Error& e) {
    FUZZ_CHECK(heed::is_valid_utf8(e.what()));
    return 0;
  }
  FUZZ_CHECK(!pairs.empty() && skipped >= 0);
  std::vector<std::string> texts;
  for (const auto& p : pairs) {
    for (const std::string* side : {&p.source, &p.target}) {
      FUZZ_CHECK(!side->empty() && heed::is_valid_utf8(*side));
      FUZZ_CHECK(side->find('\n') == std::string::npos);
      FUZZ_CHECK(static_cast<int64_t>(translation::utf8_chars(*side).size()) <= max_chars);
      texts.push_back(*side);
    }
    FUZZ_CHECK(p.source.find('\t') == std::string::npos && p.target.find('\t') == std::string::npos);
  }
  const translation::Vocab vocab = translation::Vocab::from_texts(texts);
  const translation::Vocab stored = translation::Vocab::from_chars(vocab.chars());
  FUZZ_CHECK(stored.size() == vocab.size());
  FUZZ_CHECK(heed::is_valid_utf8(vocab.chars()));
  for (const auto& text : texts) {
    const std::vector<int64_t> ids = vocab.encode(text);
    for (int64_t id : ids) FUZZ_CHECK(id >= translation::Vocab::kSpecials && id < vocab.size());
    FUZZ_CHECK(stored.encode(text) == ids);
    FUZZ_CHECK(vocab.decode(ids) == text);
  }
  return 0;
}
