// tests/fuzz/fuzz_sentiment_reader.cpp — the sentiment example's reader of labelled sentences
// (examples/sentiment/data.hpp) on arbitrary bytes: heed::Error with an escaped message, or examples
// whose label is 0 or 1 and whose text holds no line break.
#include <heed/error.hpp>
#include <heed/utf8.hpp>
#include <sstream>

#include "../../examples/sentiment/data.hpp"
#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  std::vector<sentiment::Example> examples;
  try {
    examples = sentiment::read_labelled_sentences(in, "fuzz.txt");
  } catch (const heed::Error& e) {
    FUZZ_CHECK(heed::is_valid_utf8(e.what()));
    return 0;
  }
  FUZZ_CHECK(!examples.empty());
  for (const auto& e : examples) {
    FUZZ_CHECK(e.label == 0 || e.label == 1);
    FUZZ_CHECK(e.text.find('\n') == std::string::npos);
    FUZZ_CHECK(e.form == sentiment::Form::Unknown);
  }
  return 0;
}
