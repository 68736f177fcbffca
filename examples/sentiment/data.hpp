// data.hpp — the data side of the sentiment example that does not generate: the labelled example, and the
// reader for the UCI "sentiment labelled sentences" files (sentence<TAB>label). Nothing here knows about
// the model; tests/fuzz/fuzz_sentiment_reader.cpp feeds the reader arbitrary bytes.
#pragma once
#include <cstdint>
#include <fstream>
#include <heed/error.hpp>
#include <heed/utf8.hpp>
#include <istream>
#include <string>
#include <vector>

namespace sentiment {

// Where a generated review puts its deciding phrase (README.md, "the default data").
enum class Form { VerdictFirst, Contrast, VerdictMiddle, VerdictLast, Unknown };
constexpr int kForms = 4;
inline const char* form_name(Form f) {
  switch (f) {
    case Form::VerdictFirst:
      return "verdict first";
    case Form::Contrast:
      return "contrast";
    case Form::VerdictMiddle:
      return "verdict in the middle";
    case Form::VerdictLast:
      return "verdict last";
    default:
      return "from a file";
  }
}

struct Example {
  std::string text;
  int label;  // 1 positive, 0 negative
  Form form = Form::Unknown;
};

// ---- the UCI "sentiment labelled sentences" format: sentence<TAB>label --------------------------------

// One example a line: the text up to the last tab, then 0 or 1. Trailing spaces and carriage returns are
// dropped and blank lines skipped; any other line is an error naming `name` and the line, its bytes
// escaped (heed::printable). The text is kept as it is (the tokenizer splits any bytes).
inline std::vector<Example> read_labelled_sentences(std::istream& in, const std::string& name) {
  std::vector<Example> examples;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (line.empty()) continue;
    const auto tab = line.rfind('\t');
    const std::string label = tab == std::string::npos ? "" : line.substr(tab + 1);
    HEED_CHECK(label == "0" || label == "1",
               "sentiment: {}:{}: expected 'sentence<TAB>0' or 'sentence<TAB>1', got '{}'", name, number,
               heed::printable(line, 80));
    examples.push_back({line.substr(0, tab), label == "1" ? 1 : 0});
  }
  HEED_CHECK(!examples.empty(), "sentiment: '{}' holds no labelled sentences", name);
  return examples;
}

// The --data file at `path`.
inline std::vector<Example> read_labelled_sentences(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HEED_CHECK(in.good(), "sentiment: cannot open '{}'", path);
  return read_labelled_sentences(in, path);
}

}  // namespace sentiment
