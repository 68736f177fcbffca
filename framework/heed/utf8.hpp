// heed/utf8.hpp — UTF-8 validation, and bytes made safe to print in error messages.
//
// safetensors headers are JSON, and JSON text is UTF-8: a tensor name or metadata value that is not
// well-formed UTF-8 cannot be saved (save_safetensors checks with utf8_error_at and throws naming the key).
// Error messages about a bad file quote its bytes through printable(), so a message never carries raw
// control characters or broken UTF-8 to a terminal or a log.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace heed {

/// The offset of the first byte of `text` that does not start a well-formed UTF-8 sequence (an overlong
/// form, a UTF-16 surrogate, a code point above U+10FFFF, a stray continuation byte or a truncated
/// sequence), or std::string_view::npos when the whole text is well-formed (Unicode 15, table 3-7).
std::size_t utf8_error_at(std::string_view text);
/// utf8_error_at(text) == npos
inline bool is_valid_utf8(std::string_view text) { return utf8_error_at(text) == std::string_view::npos; }

/// `text` for an error message: well-formed UTF-8 characters and printable ASCII stay, \n \t \r become
/// "\n" "\t" "\r", a backslash stays, and every other byte (controls, DEL, bytes that are not well-formed
/// UTF-8) becomes "\xNN". Texts longer than max_bytes are cut there (at a character boundary) and end in
/// "...". The result is valid UTF-8 without control characters.
std::string printable(std::string_view text, std::size_t max_bytes = 200);

}  // namespace heed
