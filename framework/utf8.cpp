// framework/utf8.cpp — UTF-8 validation and printable() (heed/utf8.hpp).
#include "heed/utf8.hpp"

#include <fmt/format.h>

namespace heed {
namespace {

// The length of the well-formed UTF-8 sequence at text[i], or 0 when there is none (table 3-7 of the
// Unicode standard: the second byte's range depends on the first byte).
std::size_t sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) return 1;
  std::size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) n = 2;
  else if (b0 == 0xE0) n = 3, lo = 0xA0;
  else if (b0 >= 0xE1 && b0 <= 0xEC) n = 3;
  else if (b0 == 0xED) n = 3, hi = 0x9F;  // not the surrogates U+D800..U+DFFF
  else if (b0 >= 0xEE && b0 <= 0xEF) n = 3;
  else if (b0 == 0xF0) n = 4, lo = 0x90;
  else if (b0 >= 0xF1 && b0 <= 0xF3) n = 4;
  else if (b0 == 0xF4) n = 4, hi = 0x8F;  // not above U+10FFFF
  else return 0;  // a continuation byte, C0/C1 (overlong) or F5..FF
  if (text.size() - i < n) return 0;
  if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
  for (std::size_t k = 2; k < n; ++k)
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  return n;
}

}  // namespace

std::size_t utf8_error_at(std::string_view text) {
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t n = sequence_length(text, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

std::string printable(std::string_view text, std::size_t max_bytes) {
  std::string out;
  std::size_t i = 0;
  while (i < text.size() && i < max_bytes) {
    const auto c = static_cast<unsigned char>(text[i]);
    std::size_t n = sequence_length(text, i);
    if (n == 2 && c == 0xC2 && static_cast<unsigned char>(text[i + 1]) < 0xA0) n = 0;  // the C1 controls
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (n == 1 && c >= 0x20 && c < 0x7f) out.push_back(static_cast<char>(c));
    else if (n > 1 && i + n <= max_bytes) out.append(text.substr(i, n));
    else if (n > 1) break;  // a character cut by max_bytes
    else out += fmt::format("\\x{:02x}", c);
    i += n == 0 ? 1 : n;
  }
  if (i < text.size()) out += "...";
  return out;
}

}  // namespace heed
