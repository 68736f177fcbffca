// data.hpp — the data side of the translation example: the date generator (about ten human formats ->
// ISO 8601), the two alignment tasks of docs/attention-spec.md section 3 (fixed-length reversal and a monotone
// transliteration), the reader for tab-separated sentence pairs (the Tatoeba / Anki eng-fra.txt format)
// and the character vocabulary. Nothing here knows about the model.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <fstream>
#include <heed/error.hpp>
#include <heed/random.hpp>
#include <heed/utf8.hpp>
#include <istream>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace translation {

// One source -> target pair. For generated dates, [year_begin, year_begin + year_length) is where the year
// is written in the source, in characters ("79" of "3rd of may 79"); -1 for other data.
struct Pair {
  std::string source, target;
  int64_t year_begin = -1, year_length = 0;
  std::string format;  // the date format's name, or the task's
};

// ---- UTF-8 characters ------------------------------------------------------------------------------------

// Splits UTF-8 text into characters (code points, each kept as its bytes). A stray byte counts as one
// character, so any input splits.
inline std::vector<std::string> utf8_chars(const std::string& text) {
  std::vector<std::string> chars;
  for (std::size_t i = 0; i < text.size();) {
    const auto lead = static_cast<unsigned char>(text[i]);
    std::size_t n = lead < 0x80 ? 1 : (lead >> 5) == 0x6 ? 2 : (lead >> 4) == 0xE ? 3 : (lead >> 3) == 0x1E ? 4 : 1;
    if (i + n > text.size()) n = 1;
    for (std::size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80) n = 1;
    chars.push_back(text.substr(i, n));
    i += n;
  }
  return chars;
}

// ---- the vocabulary -------------------------------------------------------------------------------------

// Characters -> ids. Ids 0-3 are <pad>, <s> (the decoder's first input), </s> (end of output) and <unk>.
class Vocab {
 public:
  static constexpr int64_t kPad = 0, kBos = 1, kEos = 2, kUnk = 3, kSpecials = 4;

  Vocab() : tokens_{"<pad>", "<s>", "</s>", "<unk>"} {}
  // Every character of `texts`, sorted.
  static Vocab from_texts(const std::vector<std::string>& texts) {
    std::vector<std::string> chars;
    std::unordered_set<std::string> seen;
    for (const auto& text : texts)
      for (auto& c : utf8_chars(text))
        if (seen.insert(c).second) chars.push_back(c);
    std::sort(chars.begin(), chars.end());
    Vocab vocab;
    for (auto& c : chars) vocab.add(c);
    return vocab;
  }
  // The inverse of chars(): the characters after the specials, concatenated.
  static Vocab from_chars(const std::string& chars) {
    Vocab vocab;
    for (auto& c : utf8_chars(chars)) vocab.add(c);
    return vocab;
  }
  std::string chars() const {
    std::string all;
    for (std::size_t i = kSpecials; i < tokens_.size(); ++i) all += tokens_[i];
    return all;
  }
  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  const std::string& token(int64_t id) const { return tokens_.at(static_cast<std::size_t>(id)); }
  int64_t id(const std::string& c) const {
    auto it = ids_.find(c);
    return it == ids_.end() ? kUnk : it->second;
  }
  std::vector<int64_t> encode(const std::string& text) const {
    std::vector<int64_t> out;
    for (auto& c : utf8_chars(text)) out.push_back(id(c));
    return out;
  }
  // Ids up to the first </s> (or <pad>), specials other than <unk> left out.
  std::string decode(const std::vector<int64_t>& ids) const {
    std::string text;
    for (int64_t id : ids) {
      if (id == kEos || id == kPad) break;
      if (id == kBos) continue;
      text += id == kUnk ? "?" : token(id);
    }
    return text;
  }

 private:
  void add(const std::string& c) {
    if (ids_.emplace(c, size()).second) tokens_.push_back(c);
  }
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, int64_t> ids_;
};

// ---- dates ----------------------------------------------------------------------------------------------

constexpr int kFirstYear = 1950, kLastYear = 2049;  // two-digit years: 50-99 -> 19xx, 00-49 -> 20xx

inline const std::array<const char*, 12>& month_names() {
  static const std::array<const char*, 12> names{"January", "February", "March",     "April",   "May",      "June",
                                                 "July",    "August",   "September", "October", "November", "December"};
  return names;
}
inline const std::array<const char*, 7>& weekday_names() {
  static const std::array<const char*, 7> names{"Sunday",   "Monday", "Tuesday", "Wednesday",
                                                "Thursday", "Friday", "Saturday"};
  return names;
}
inline int days_in_month(int year, int month) {
  static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : days[month - 1];
}
// 0 = Sunday (Sakamoto's method).
inline int weekday(int year, int month, int day) {
  static const int offset[12] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
  if (month < 3) year -= 1;
  return (year + year / 4 - year / 100 + year / 400 + offset[month - 1] + day) % 7;
}
inline std::string ordinal(int day) {
  const char* suffix = (day % 100 >= 11 && day % 100 <= 13) ? "th"
                       : day % 10 == 1                     ? "st"
                       : day % 10 == 2                     ? "nd"
                       : day % 10 == 3                     ? "rd"
                                                           : "th";
  return std::to_string(day) + suffix;
}
inline std::string two_digits(int n) { return (n < 10 ? "0" : "") + std::to_string(n); }
inline std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return s;
}
inline std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
  return s;
}

// The date formats (README.md, "the date grammar"), for 1979-05-03, a Thursday.
inline const std::vector<std::pair<const char*, const char*>>& date_formats() {
  static const std::vector<std::pair<const char*, const char*>> formats{
      {"weekday, Month D, YYYY", "Thursday, May 3, 1979"},
      {"Dth of month YY", "3rd of may 79"},
      {"MM/DD/YY", "05/03/79"},
      {"YYYY.M.D", "1979.5.3"},
      {"Month Dth, YYYY", "May 3rd, 1979"},
      {"D Month YYYY", "3 May 1979"},
      {"DD.MM.YYYY", "03.05.1979"},
      {"DD-MON-YYYY", "03-MAY-1979"},
      {"Wkd D Mon YY", "Thu 3 May 79"},
      {"the Dth of Month, YYYY", "the 3rd of May, 1979"},
      {"YYYYMMDD", "19790503"},
  };
  return formats;
}

// Renders year-month-day in format `f`, recording where the year sits.
inline Pair render_date(int year, int month, int day, std::size_t f) {
  const std::string month_name = month_names()[static_cast<std::size_t>(month - 1)];
  const std::string weekday_name = weekday_names()[static_cast<std::size_t>(weekday(year, month, day))];
  const std::string yyyy = std::to_string(year), yy = two_digits(year % 100);
  Pair pair;
  pair.format = date_formats().at(f).first;
  pair.target = yyyy + "-" + two_digits(month) + "-" + two_digits(day);
  std::string& s = pair.source;
  auto put_year = [&](const std::string& y) {
    pair.year_begin = static_cast<int64_t>(s.size());
    pair.year_length = static_cast<int64_t>(y.size());
    s += y;
  };
  switch (f) {
    case 0: s = weekday_name + ", " + month_name + " " + std::to_string(day) + ", "; put_year(yyyy); break;
    case 1: s = ordinal(day) + " of " + lower(month_name) + " "; put_year(yy); break;
    case 2: s = two_digits(month) + "/" + two_digits(day) + "/"; put_year(yy); break;
    case 3: put_year(yyyy); s += "." + std::to_string(month) + "." + std::to_string(day); break;
    case 4: s = month_name + " " + ordinal(day) + ", "; put_year(yyyy); break;
    case 5: s = std::to_string(day) + " " + month_name + " "; put_year(yyyy); break;
    case 6: s = two_digits(day) + "." + two_digits(month) + "."; put_year(yyyy); break;
    case 7: s = two_digits(day) + "-" + upper(month_name.substr(0, 3)) + "-"; put_year(yyyy); break;
    case 8:
      s = weekday_name.substr(0, 3) + " " + std::to_string(day) + " " + month_name.substr(0, 3) + " ";
      put_year(yy);
      break;
    case 9: s = "the " + ordinal(day) + " of " + month_name + ", "; put_year(yyyy); break;
    default: put_year(yyyy); s += two_digits(month) + two_digits(day); break;
  }
  return pair;
}

inline Pair random_date(heed::Generator& gen) {
  const int year = static_cast<int>(gen.randint(kFirstYear, kLastYear + 1));
  const int month = static_cast<int>(gen.randint(1, 13));
  const int day = static_cast<int>(gen.randint(1, days_in_month(year, month) + 1));
  return render_date(year, month, day,
                     static_cast<std::size_t>(gen.randint(0, static_cast<int64_t>(date_formats().size()))));
}

// ---- the alignment tasks of docs/attention-spec.md section 3 ----------------------------------------------------

// Fixed-length reversal: 10 random lowercase letters -> the same letters backwards (for the location score,
// which aligns by position only).
inline Pair random_reversal(heed::Generator& gen) {
  Pair pair;
  pair.format = "reverse";
  for (int i = 0; i < 10; ++i) pair.source.push_back(static_cast<char>('a' + gen.randint(0, 26)));
  pair.target.assign(pair.source.rbegin(), pair.source.rend());
  return pair;
}

// A transliteration-like monotone task (for local-m, whose window follows p_t = t): 4 to 12 capital letters
// standing for a foreign script, each written as one or two lowercase letters (X -> kh, C -> ts, H -> ch,
// W -> sh, J -> zh, Q -> ya); about one letter in eight becomes two.
inline const std::vector<std::pair<char, const char*>>& transliteration_table() {
  static const std::vector<std::pair<char, const char*>> table{
      {'A', "a"}, {'B', "b"}, {'V', "v"}, {'G', "g"}, {'D', "d"}, {'E', "e"}, {'Z', "z"},  {'I', "i"},
      {'K', "k"}, {'L', "l"}, {'M', "m"}, {'N', "n"}, {'O', "o"}, {'P', "p"}, {'R', "r"},  {'S', "s"},
      {'T', "t"}, {'U', "u"}, {'F', "f"}, {'X', "kh"}, {'C', "ts"}, {'H', "ch"}, {'W', "sh"}, {'J', "zh"},
      {'Q', "ya"}};
  return table;
}
inline Pair random_transliteration(heed::Generator& gen) {
  const auto& table = transliteration_table();
  constexpr int64_t kSingles = 19, kDoubles = 6;  // the table's first 19 entries map to one letter
  Pair pair;
  pair.format = "monotone";
  const int64_t length = gen.randint(4, 13);
  for (int64_t i = 0; i < length; ++i) {
    const auto& [from, to] = table[static_cast<std::size_t>(gen.uniform() < 0.125 ? kSingles + gen.randint(0, kDoubles)
                                                                                  : gen.randint(0, kSingles))];
    pair.source.push_back(from);
    pair.target += to;
  }
  return pair;
}

// ---- tab-separated sentence pairs -----------------------------------------------------------------------

// The Tatoeba / manythings.org Anki format, one pair a line: english<TAB>french[<TAB>attribution]. Blank
// lines are skipped; a line that is not UTF-8, has no tab, or has an empty side, is an error naming the file
// (`name`) and the line, so that a bad file stops the run before training, not when the checkpoint (whose
// JSON header must be UTF-8) is saved. Pairs with a side longer than max_chars characters are left out
// (counted in `skipped`). Reads from any stream (tests/fuzz/fuzz_translation_pairs.cpp feeds it bytes).
inline std::vector<Pair> read_pairs(std::istream& in, const std::string& name, int64_t max_chars, int64_t* skipped) {
  std::vector<Pair> pairs;
  std::string line;
  *skipped = 0;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a UTF-8 byte-order mark
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    const std::size_t bad = heed::utf8_error_at(line);
    HEED_CHECK(bad == std::string::npos, "translation: {}:{}: not valid UTF-8 (byte 0x{:02x} at column {}): '{}'",
               name, number, bad == std::string::npos ? 0 : static_cast<unsigned char>(line[bad]), bad + 1,
               heed::printable(line, 80));
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const auto tab = line.find('\t');
    const auto second_tab = tab == std::string::npos ? std::string::npos : line.find('\t', tab + 1);
    Pair pair;
    pair.format = "pairs";
    if (tab != std::string::npos) {
      pair.source = line.substr(0, tab);
      pair.target = line.substr(tab + 1, second_tab == std::string::npos ? std::string::npos : second_tab - tab - 1);
    }
    HEED_CHECK(!pair.source.empty() && !pair.target.empty(),
               "translation: {}:{}: expected 'english<TAB>french[<TAB>attribution]', got '{}'", name, number,
               heed::printable(line, 80));
    if (static_cast<int64_t>(utf8_chars(pair.source).size()) > max_chars ||
        static_cast<int64_t>(utf8_chars(pair.target).size()) > max_chars) {
      ++*skipped;
      continue;
    }
    pairs.push_back(std::move(pair));
  }
  HEED_CHECK(!pairs.empty(), "translation: '{}' holds no sentence pairs of at most {} characters (--max-len)", name,
             max_chars);
  return pairs;
}

// The --pairs file at `path`.
inline std::vector<Pair> read_pairs(const std::string& path, int64_t max_chars, int64_t* skipped) {
  std::ifstream in(path, std::ios::binary);
  HEED_CHECK(in.good(), "translation: cannot open --pairs file '{}'", path);
  return read_pairs(in, path, max_chars, skipped);
}

}  // namespace translation
