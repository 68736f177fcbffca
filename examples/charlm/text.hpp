// text.hpp — the character-level data side of the charlm example: where the text comes from, the
// character vocabulary, the train/validation split, random training windows, fixed evaluation windows
// and the unigram baseline. Nothing here knows about the model.
#pragma once
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <heed/error.hpp>
#include <heed/random.hpp>
#include <heed/tensor.hpp>
#include <sstream>
#include <string>
#include <sys/wait.h>
#include <vector>

namespace charlm {

// ---- the text ------------------------------------------------------------------------------------------

// `bible -f` prints one verse per line, led by its reference: "Ge1:1 In the beginning ...",
// "1Chr1:1 Adam, Sheth, Enosh.", "Rev22:21 The grace ...". Drops the reference (up to and including the
// first space when the first word contains a ':') and keeps the verse and its newline.
inline std::string strip_verse_labels(const std::string& raw) {
  std::string text;
  text.reserve(raw.size());
  std::size_t start = 0;
  while (start < raw.size()) {
    std::size_t end = raw.find('\n', start);
    if (end == std::string::npos) end = raw.size();
    std::size_t body = start;
    const std::size_t space = raw.find(' ', start);
    if (space != std::string::npos && space < end && raw.find(':', start) < space) body = space + 1;
    if (end > body) {
      text.append(raw, body, end - body);
      text.push_back('\n');
    }
    start = end + 1;
  }
  return text;
}

constexpr const char* kBibleCommand = "bible -f \"Gen1:1-Rev22:21\"";

// The King James Bible from Debian's bible-kjv package: runs `bible` (about a second) and strips the
// verse references. Throws, saying how to install it, when the program is missing or prints nothing.
inline std::string read_bible() {
  const std::string hint =
      "charlm: the default text is the King James Bible from Debian's bible-kjv package, read by running `bible`; "
      "install it with `apt-get install bible-kjv` (or `bash scripts/heed.sh deps`), or give any text file with "
      "--text FILE";
  FILE* pipe = popen(fmt::format("{} </dev/null 2>/dev/null", kBibleCommand).c_str(), "r");
  HEED_CHECK(pipe != nullptr, "{} (could not start a shell)", hint);
  std::string raw;
  std::array<char, 1 << 16> buffer{};
  for (std::size_t n; (n = std::fread(buffer.data(), 1, buffer.size(), pipe)) > 0;) raw.append(buffer.data(), n);
  const int status = pclose(pipe);
  const int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  HEED_CHECK(exit_code == 0 && !raw.empty(), "{} (`{}` exited with code {} after printing {} bytes{})", hint,
             kBibleCommand, exit_code, raw.size(), exit_code == 127 ? "; 127: command not found" : "");
  return strip_verse_labels(raw);
}

inline std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  HEED_CHECK(in.good(), "charlm: cannot open --text file '{}'", path);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// ---- characters --------------------------------------------------------------------------------------

// The distinct bytes of a text, sorted; id i is chars[i]. (Characters are bytes: a UTF-8 letter outside
// ASCII becomes two or three tokens.)
class CharVocab {
 public:
  CharVocab() { id_.fill(-1); }
  explicit CharVocab(const std::string& text) : CharVocab() {
    std::array<bool, 256> seen{};
    for (unsigned char c : text) seen[c] = true;
    for (int c = 0; c < 256; ++c)
      if (seen[static_cast<std::size_t>(c)]) add(static_cast<char>(c));
  }
  // From the bytes in id order, each once.
  static CharVocab from_chars(const std::string& chars) {
    CharVocab vocab;
    for (char c : chars) {
      HEED_CHECK(!vocab.contains(c), "charlm: the checkpoint's vocabulary lists the character {} twice", shown(c));
      vocab.add(c);
    }
    return vocab;
  }

  // The vocabulary as a checkpoint stores it in its metadata: the bytes in id order, each byte b written as
  // the character U+00bb (ISO 8859-1) in UTF-8, because the safetensors header is JSON, whose strings must
  // be UTF-8: an ASCII byte stays itself, the byte 0xC3 of "é" becomes "Ã" (C3 83). Checkpoints from before
  // this encoding stored the raw bytes, which could only be saved for ASCII texts, so they read the same.
  std::string to_metadata() const {
    std::string out;
    for (char c : chars_) {
      const auto u = static_cast<unsigned char>(c);
      if (u < 0x80) {
        out.push_back(c);
      } else {
        out.push_back(static_cast<char>(0xC0 | (u >> 6)));
        out.push_back(static_cast<char>(0x80 | (u & 0x3F)));
      }
    }
    return out;
  }
  static CharVocab from_metadata(const std::string& text) {
    std::string bytes;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const auto u = static_cast<unsigned char>(text[i]);
      if (u < 0x80) {
        bytes.push_back(static_cast<char>(u));
        continue;
      }
      const auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
      HEED_CHECK((u == 0xC2 || u == 0xC3) && (next & 0xC0) == 0x80,
                 "charlm: the checkpoint's vocabulary holds {} at byte {}, not a character U+0000..U+00FF in UTF-8",
                 shown(static_cast<char>(u)), i);
      bytes.push_back(static_cast<char>(((u & 0x03) << 6) | (next & 0x3F)));
      ++i;
    }
    return from_chars(bytes);
  }

  int64_t size() const { return static_cast<int64_t>(chars_.size()); }
  const std::string& chars() const { return chars_; }
  bool contains(char c) const { return id_[static_cast<unsigned char>(c)] >= 0; }
  char chr(int64_t id) const { return chars_[static_cast<std::size_t>(id)]; }
  int64_t id(char c) const { return id_[static_cast<unsigned char>(c)]; }

  // Throws naming the first character the vocabulary lacks and where it is.
  std::vector<int64_t> encode(const std::string& text, const char* what) const {
    std::vector<int64_t> ids;
    ids.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
      HEED_CHECK(contains(text[i]), "charlm: {} has the character {} at position {}, which the model never saw; its "
                 "{} characters are \"{}\"", what, shown(text[i]), i, size(), escaped(chars_));
      ids.push_back(id(text[i]));
    }
    return ids;
  }
  std::string decode(const std::vector<int64_t>& ids) const {
    std::string text;
    for (int64_t id : ids) text.push_back(chr(id));
    return text;
  }

  // A readable name for a character in messages: 'a', '\n', byte 0xC3.
  static std::string shown(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\n') return "'\\n'";
    if (c == '\t') return "'\\t'";
    if (u < 32 || u >= 127) return fmt::format("byte 0x{:02X}", u);
    return fmt::format("'{}'", c);
  }
  static std::string escaped(const std::string& s) {
    std::string out;
    for (char c : s) {
      if (c == '\n') out += "\\n";
      else if (c == '\t') out += "\\t";
      else if (c == '"' || c == '\\') out += std::string("\\") + c;
      else if (static_cast<unsigned char>(c) < 32 || static_cast<unsigned char>(c) >= 127)
        out += fmt::format("\\x{:02X}", static_cast<unsigned char>(c));
      else out.push_back(c);
    }
    return out;
  }

 private:
  void add(char c) {
    id_[static_cast<unsigned char>(c)] = size();
    chars_.push_back(c);
  }
  std::string chars_;
  std::array<int64_t, 256> id_{};
};

// ---- the split and the windows -----------------------------------------------------------------------

struct Split {
  std::vector<int64_t> train, validation;  // character ids
};

// The first (1 - val_fraction) of the text trains, the rest validates (as in nanoGPT's character-level
// Shakespeare): validation is text the model never saw, not a random sample of lines it trained around.
inline Split split_tail(const std::vector<int64_t>& ids, double val_fraction) {
  const auto n = static_cast<int64_t>(ids.size());
  const auto n_val = static_cast<int64_t>(std::llround(static_cast<double>(n) * val_fraction));
  Split split;
  split.train.assign(ids.begin(), ids.end() - n_val);
  split.validation.assign(ids.end() - n_val, ids.end());
  return split;
}

// A batch of `batch` windows of `context` characters: inputs (B, T) and targets (B, T), the inputs
// shifted by one character (targets[b][t] = the character after inputs[b][t]).
struct Batch {
  heed::Tensor inputs, targets;
};

inline Batch make_batch(const std::vector<int64_t>& ids, const std::vector<int64_t>& starts, int64_t context) {
  const auto batch = static_cast<int64_t>(starts.size());
  std::vector<int64_t> inputs, targets;
  inputs.reserve(static_cast<std::size_t>(batch * context));
  targets.reserve(static_cast<std::size_t>(batch * context));
  for (int64_t start : starts) {
    const auto* first = ids.data() + start;
    inputs.insert(inputs.end(), first, first + context);
    targets.insert(targets.end(), first + 1, first + context + 1);
  }
  return {heed::index_tensor(inputs, {batch, context}), heed::index_tensor(targets, {batch, context})};
}

// Windows starting anywhere in the text, uniformly at random.
inline Batch random_batch(const std::vector<int64_t>& ids, int64_t batch, int64_t context, heed::Generator& gen) {
  const auto last_start = static_cast<int64_t>(ids.size()) - context - 1;
  HEED_CHECK(last_start >= 0, "charlm: the training text has {} characters, fewer than --context {} + 1", ids.size(),
             context);
  std::vector<int64_t> starts;
  for (int64_t b = 0; b < batch; ++b) starts.push_back(gen.randint(0, last_start + 1));
  return make_batch(ids, starts, context);
}

// Up to `max_windows` non-overlapping windows spread evenly over the whole text (the same ones every time,
// so evaluations are comparable), cut into batches of `batch`.
inline std::vector<Batch> evaluation_batches(const std::vector<int64_t>& ids, int64_t context, int64_t max_windows,
                                             int64_t batch) {
  const int64_t available = (static_cast<int64_t>(ids.size()) - 1) / context;
  HEED_CHECK(available >= 1, "charlm: a text of {} characters has no evaluation window of --context {} + 1", ids.size(),
             context);
  const int64_t windows = std::min(available, max_windows);
  std::vector<int64_t> starts;
  for (int64_t w = 0; w < windows; ++w) starts.push_back(w * available / windows * context);
  std::vector<Batch> batches;
  for (int64_t first = 0; first < windows; first += batch) {
    const int64_t last = std::min(windows, first + batch);
    batches.push_back(make_batch(ids, std::vector<int64_t>(starts.begin() + first, starts.begin() + last), context));
  }
  return batches;
}

// ---- the unigram baseline ----------------------------------------------------------------------------

// The best model that ignores context: each character with its training frequency (add-one smoothed so a
// character absent from training costs log2(N + V) bits instead of infinity). Returns the cross-entropy of
// `evaluated` under it, in bits per character. Evaluated on the training text itself this is the
// training text's entropy.
inline double unigram_bits_per_char(const std::vector<int64_t>& training, const std::vector<int64_t>& evaluated,
                                    int64_t vocab_size) {
  std::vector<double> counts(static_cast<std::size_t>(vocab_size), 1.0);
  for (int64_t id : training) counts[static_cast<std::size_t>(id)] += 1.0;
  const double total = static_cast<double>(training.size()) + static_cast<double>(vocab_size);
  double bits = 0;
  for (int64_t id : evaluated) bits -= std::log2(counts[static_cast<std::size_t>(id)] / total);
  return bits / static_cast<double>(evaluated.size());
}

}  // namespace charlm
