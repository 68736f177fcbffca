// Bad input is a heed::Error, never a crash or undefined behaviour: shape arithmetic that would overflow,
// hostile safetensors headers and IDX files, text that is not UTF-8, arange with NaN or huge ends, stale
// temporary files of killed saves (issue #16). Each case failed (or crashed) before the fix it guards.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <heed/heed.hpp>
#include <heed/idx.hpp>
#include <heed/io/safetensors.hpp>
#include <heed/utf8.hpp>
#include <iterator>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "../examples/charlm/text.hpp"
#include "../examples/sentiment/data.hpp"
#include "../examples/translation/data.hpp"
#include "io/atomic_file.hpp"
#include "testing.hpp"

namespace {

using heed::Shape;
using heed::Tensor;
using heed::testing::error_of;

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// True when every byte of s is printable ASCII (what an error message about binary input must be).
bool printable_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c < 0x20 || c >= 0x7f) return false;
  return true;
}

// A fresh directory under the system's temporary directory, removed with everything in it.
class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(std::filesystem::temp_directory_path() /
              ("heed_reliability_" + name + "_" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::string write(const std::string& name, const std::string& bytes, bool gzip = false) const {
    const std::string path = file(name);
    if (gzip) {
      gzFile f = gzopen(path.c_str(), "wb");
      REQUIRE(f != nullptr);
      REQUIRE(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()));
      gzclose(f);
    } else {
      std::ofstream out(path, std::ios::binary);
      out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    }
    return path;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(path_)) out.push_back(e.path().filename().string());
    return out;
  }

 private:
  std::filesystem::path path_;
};

// A safetensors file: the 8-byte little-endian header length, the header, then `data`.
std::string safetensors_bytes(const std::string& header, const std::string& data = "") {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

// An IDX header of unsigned bytes with these sizes (big-endian), then `data`.
std::string idx_bytes(const std::vector<uint32_t>& dims, const std::string& data = "") {
  std::string b{'\0', '\0', '\x08', static_cast<char>(dims.size())};
  for (uint32_t d : dims)
    for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<char>((d >> shift) & 0xff));
  return b + data;
}

}  // namespace

// ---- shape arithmetic ---------------------------------------------------------------------------------

TEST_CASE("shapes: sizes whose product overflows are an error naming the function called") {
  const int64_t big = int64_t{1} << 32;  // big * big = 2^64 wraps to 0 in 64 bits
  CHECK(contains(error_of([&] { heed::zeros({big, big}); }), "zeros:"));
  CHECK(contains(error_of([&] { heed::ones({big, big}); }), "ones:"));
  CHECK(contains(error_of([&] { heed::empty({big, big}); }), "empty:"));
  CHECK(contains(error_of([&] { heed::full({big, big}, 2.0); }), "full:"));
  CHECK(contains(error_of([&] { heed::randn({big, big}); }), "randn:"));
  CHECK(contains(error_of([&] { heed::rand({big, big}); }), "rand:"));
  CHECK(contains(error_of([&] { heed::uniform({big, big}, 0.0, 1.0); }), "uniform:"));
  CHECK(contains(error_of([&] { heed::randint(0, 5, {big, big}); }), "randint:"));
  CHECK(contains(error_of([&] { heed::eye(big); }), "eye:"));
  CHECK(contains(error_of([&] { heed::tensor(std::vector<float>{}, {big, big}); }), "tensor:"));
  CHECK(contains(error_of([&] { heed::index_tensor({}, {big, big}); }), "index_tensor:"));
  // Three sizes of 2^21..2^22 multiply to exactly 2^64, which also wraps to 0.
  const std::string m = error_of([] { heed::zeros({4194304, 2097152, 2097152}); });
  CHECK(contains(m, "zeros:"));
  CHECK(contains(m, "[4194304, 2097152, 2097152]"));
  // A zero size does not make the other sizes safe: the strides still multiply them.
  CHECK(contains(error_of([&] { heed::zeros({0, big, big}); }), "zeros:"));
  // Just below 2^63 elements of 8 bytes each still overflow the byte count.
  CHECK(contains(error_of([] { heed::zeros({int64_t{1} << 62}, heed::DType::Float64); }), "zeros:"));
}

TEST_CASE("shapes: negative sizes name the function called, not an internal one") {
  const std::string m = error_of([] { heed::zeros({2, -3}); });
  CHECK(contains(m, "zeros:"));
  CHECK(contains(m, "[2, -3]"));
  CHECK_FALSE(contains(m, "make_tensor"));
  CHECK(contains(error_of([] { heed::randn({-1}); }), "randn:"));
  CHECK(contains(error_of([] { heed::eye(-2); }), "eye:"));
  CHECK(contains(error_of([] { heed::full({-1, 2}, 1.0); }), "full:"));
}

TEST_CASE("shapes: views cannot describe more elements than fit in 64 bits") {
  const int64_t big = int64_t{1} << 32;
  CHECK(contains(error_of([&] { heed::expand(heed::scalar(1.0), {big, big}); }), "expand:"));
  CHECK(contains(error_of([&] { heed::broadcast_to(heed::zeros({1, 1}), {big, big}); }), "broadcast_to:"));
  CHECK(contains(error_of([&] { heed::reshape(heed::zeros({0}), {0, big, big}); }), "reshape:"));
  // A legal expand of a zero-size tensor and of a moderately large one still work.
  CHECK(heed::expand(heed::zeros({1, 0}), {3, 0}).shape() == Shape{3, 0});
  CHECK(heed::expand(heed::scalar(2.0), {1 << 20, 1 << 20}).numel() == int64_t{1} << 40);
}

// ---- arange -------------------------------------------------------------------------------------------

TEST_CASE("arange: NaN, infinite or huge bounds and steps are an error, not an empty tensor") {
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  CHECK(contains(error_of([&] { heed::arange(0.0, nan); }), "arange:"));
  CHECK(contains(error_of([&] { heed::arange(nan); }), "arange:"));
  CHECK(contains(error_of([&] { heed::arange(nan, 3.0); }), "arange:"));
  CHECK(contains(error_of([&] { heed::arange(0.0, inf); }), "arange:"));
  CHECK(contains(error_of([&] { heed::arange(0.0, 10.0, nan); }), "arange:"));
  CHECK(contains(error_of([&] { heed::arange(0.0, 10.0, inf); }), "arange:"));
  CHECK(contains(error_of([&] { heed::arange(0.0, 1e30); }), "arange:"));
  CHECK(contains(error_of([&] { heed::arange(0.0, -1e30, -1.0); }), "arange:"));
  // Ordinary and empty ranges are unchanged.
  CHECK(heed::arange(0.0, 1.0, 0.25).to_vector<double>() == std::vector<double>{0, 0.25, 0.5, 0.75});
  CHECK(heed::arange(5.0, 1.0).numel() == 0);
  CHECK(heed::arange(1.0, 5.0, -1.0).numel() == 0);
  CHECK(heed::arange(3.0, 0.0, -1.0).to_vector<double>() == std::vector<double>{3, 2, 1});
}

// ---- IDX ----------------------------------------------------------------------------------------------

TEST_CASE("idx: a header whose sizes overflow is an error, never a tensor without data (plain and gzip)") {
  TempDir dir("idx");
  for (bool gzip : {false, true}) {
    CAPTURE(gzip);
    // 2^22 x 2^21 x 2^21 = 2^64 elements: wrapped to 0, this used to return a tensor of that shape.
    const std::string huge = dir.write("huge", idx_bytes({4194304, 2097152, 2097152}), gzip);
    std::string m = error_of([&] { heed::data::read_idx(huge); });
    CHECK(contains(m, huge));
    CHECK(contains(m, "[4194304, 2097152, 2097152]"));
    CHECK(contains(m, "too large"));
    // 12 bytes: two sizes of 2^32 - 1, whose product overflowed a signed 64-bit integer.
    const std::string twelve = dir.write("twelve", idx_bytes({0xffffffffu, 0xffffffffu}), gzip);
    m = error_of([&] { heed::data::read_idx(twelve); });
    CHECK(contains(m, twelve));
    CHECK(contains(m, "too large"));
  }
}

// ---- safetensors: reading -----------------------------------------------------------------------------

TEST_CASE("safetensors: a header nested 100,000 levels deep is an error, not a stack overflow") {
  TempDir dir("nested");
  const int depth = 100000;
  const std::string header =
      R"({"__metadata__":{"a":)" + std::string(depth, '[') + std::string(depth, ']') + "}}";
  const std::string path = dir.write("nested.safetensors", safetensors_bytes(header));
  const std::string m = error_of([&] { heed::io::load_safetensors(path); });
  CHECK(contains(m, path));
  CHECK(contains(m, "nested"));
  // The same as a top-level array (not an object).
  const std::string path2 =
      dir.write("nested2.safetensors", safetensors_bytes(std::string(depth, '[') + std::string(depth, ']')));
  CHECK(contains(error_of([&] { heed::io::load_safetensors(path2); }), "nested"));
  // Brackets inside strings do not count: a name full of them loads.
  const std::string brackets(300, '[');
  const std::string ok = dir.write(
      "strings.safetensors",
      safetensors_bytes(R"({"__metadata__":{"k":")" + brackets + R"("},")" + brackets +
                            R"(":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                        std::string(4, '\0')));
  const heed::io::SafetensorsFile file = heed::io::load_safetensors(ok);
  REQUIRE(file.tensors.size() == 1);
  CHECK(file.tensors[0].first == brackets);
  CHECK(file.metadata.at("k") == brackets);
}

TEST_CASE("safetensors: shape entries must be non-negative integers (no 1e300, 2.7 or -1)") {
  TempDir dir("shape");
  const std::string four_floats(16, '\0');
  auto load_with_shape = [&](const std::string& shape, std::size_t nbytes = 16) {
    const std::string header = R"({"w":{"dtype":"F32","shape":)" + shape + R"(,"data_offsets":[0,)" +
                               std::to_string(nbytes) + "]}}";
    const std::string path = dir.write("shape.safetensors", safetensors_bytes(header, std::string(nbytes, '\0')));
    return error_of([&] { heed::io::load_safetensors(path); });
  };
  CHECK(load_with_shape("[4]") == "(no error)");
  for (const char* bad : {"[1e300]", "[2.7, 2]", "[4.0]", "[-4]", "[\"4\"]", "[true]", "[null]", "4", "[[4]]",
                          "[18446744073709551615]", "[99999999999999999999]"}) {
    CAPTURE(bad);
    const std::string m = load_with_shape(bad);
    CHECK(contains(m, "'w'"));
    CHECK(contains(m, "shape"));
  }
  // The product of the sizes is checked, not only each size: 2^32 x 2^32 x 0 elements is not a shape.
  CHECK(contains(load_with_shape("[4294967296, 4294967296, 0]", 0), "'w'"));
}

TEST_CASE("safetensors: data_offsets must tile the data section exactly") {
  TempDir dir("offsets");
  auto load = [&](const std::string& entries, std::size_t data_bytes) {
    const std::string path = dir.write("offsets.safetensors", safetensors_bytes("{" + entries + "}", std::string(data_bytes, '\0')));
    return error_of([&] { heed::io::load_safetensors(path); });
  };
  const std::string a4 = R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  CHECK(load(a4, 4) == "(no error)");
  CHECK(load(a4 + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]})", 8) == "(no error)");
  // A gap between tensors, bytes after the last one, and overlapping tensors.
  CHECK(contains(load(a4 + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]})", 12), "data_offsets"));
  CHECK(contains(load(a4, 8), "data_offsets"));
  CHECK(contains(load(a4 + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]})", 8), "overlap"));
  // Offsets as floats or negative numbers.
  CHECK(contains(load(R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0.0,4]})", 4), "data_offsets"));
  CHECK(contains(load(R"("a":{"dtype":"F32","shape":[1],"data_offsets":[-4,4]})", 4), "data_offsets"));
}

TEST_CASE("safetensors: messages about a bad file escape its bytes") {
  TempDir dir("escape");
  // A key with control characters (legal JSON escapes) in an entry that lacks data_offsets.
  std::string path = dir.write("key.safetensors",
                               safetensors_bytes(R"({"bad\u0001\u001b[2Jname":{"dtype":"F32","shape":[1]}})"));
  std::string m = error_of([&] { heed::io::load_safetensors(path); });
  CHECK(contains(m, "bad\\x01\\x1b[2Jname"));
  CHECK(printable_ascii(m));
  // An unknown dtype tag with a raw UTF-8 character kept and a control character escaped.
  path = dir.write("dtype.safetensors",
                   safetensors_bytes(R"({"w":{"dtype":"F\u0007é","shape":[1],"data_offsets":[0,4]}})", "abcd"));
  m = error_of([&] { heed::io::load_safetensors(path); });
  CHECK(contains(m, "F\\x07é"));
  // Binary garbage as the header: the JSON library's message quotes what it read.
  std::string garbage = "{\x01\x02\xff\xfe\x1b[31m\x80";
  path = dir.write("garbage.safetensors", safetensors_bytes(garbage));
  m = error_of([&] { heed::io::load_safetensors(path); });
  CHECK(contains(m, "corrupted header"));
  CHECK(printable_ascii(m));
  // A missing tensor lists the file's keys escaped.
  path = dir.write("names.safetensors",
                   safetensors_bytes(R"({"\u0000x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", "abcd"));
  m = error_of([&] { heed::io::load_safetensors(path).get("y"); });
  CHECK(contains(m, "\\x00x"));
  CHECK(printable_ascii(m));
}

// ---- safetensors: writing -----------------------------------------------------------------------------

TEST_CASE("safetensors: a name or metadata value that is not UTF-8 is a heed::Error naming the key") {
  TempDir dir("utf8");
  const std::string path = dir.file("out.safetensors");
  const Tensor t = heed::zeros({2});
  CHECK_THROWS_AS(heed::io::save_safetensors(path, {{"caf\xe9", t}}), heed::Error);
  std::string m = error_of([&] { heed::io::save_safetensors(path, {{"caf\xe9", t}}); });
  CHECK(contains(m, "caf\\xe9"));
  CHECK(contains(m, "UTF-8"));
  CHECK(printable_ascii(m));
  CHECK_THROWS_AS(heed::io::save_safetensors(path, {{"w", t}}, {{"vocab", "ab\xc3"}}), heed::Error);
  m = error_of([&] { heed::io::save_safetensors(path, {{"w", t}}, {{"vocab", "ab\xc3"}}); });
  CHECK(contains(m, "'vocab'"));
  CHECK(contains(m, "UTF-8"));
  m = error_of([&] { heed::io::save_safetensors(path, {{"w", t}}, {{"k\xff", "v"}}); });
  CHECK(contains(m, "k\\xff"));
  // Overlong encodings, UTF-16 surrogates and code points above U+10FFFF are not UTF-8 either.
  for (const char* bad : {"\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82"}) {
    CAPTURE(bad);
    CHECK_THROWS_AS(heed::io::save_safetensors(path, {{"w", t}}, {{"k", bad}}), heed::Error);
  }
  CHECK_FALSE(std::filesystem::exists(path));  // nothing was written
  // Valid multi-byte text saves and loads back unchanged.
  heed::io::save_safetensors(path, {{"poids \xc3\xa9\xe2\x82\xac\xf0\x9f\x99\x82", t}}, {{"vocab", "a\xc3\xa9\n\t"}});
  const auto file = heed::io::load_safetensors(path);
  CHECK(file.tensors.at(0).first == "poids \xc3\xa9\xe2\x82\xac\xf0\x9f\x99\x82");
  CHECK(file.metadata.at("vocab") == "a\xc3\xa9\n\t");
}

TEST_CASE("safetensors: the next save of a path removes the temporary files of killed saves") {
  TempDir dir("stale");
  const std::string path = dir.file("model.safetensors");
  // A process that has exited: its pid names no running process (until the system reuses it).
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  const std::string dead = std::to_string(child), alive = std::to_string(::getpid());
  dir.write("model.safetensors.tmp." + dead + ".1f2e3d4c", "half a checkpoint");
  dir.write("model.safetensors.tmp." + dead, "the old naming, without the random part");
  dir.write("model.safetensors.tmp." + alive + ".00aa00aa", "a save in progress in this process");
  dir.write("other.safetensors.tmp." + dead + ".1f2e3d4c", "another path's file");
  dir.write("model.safetensors.tmp.notapid", "not ours");
  heed::io::save_safetensors(path, {{"w", heed::zeros({3})}});
  std::vector<std::string> names = dir.names();
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"model.safetensors", "model.safetensors.tmp." + alive + ".00aa00aa",
                                          "model.safetensors.tmp.notapid", "other.safetensors.tmp." + dead + ".1f2e3d4c"});
}

// ---- the examples' text readers -----------------------------------------------------------------------

TEST_CASE("translation pairs: a line that is not UTF-8 is an error naming the file and the line") {
  TempDir dir("pairs");
  const std::string path = dir.write("pairs.txt", "Go.\tVa !\nHi.\tSalut \xff!\n");
  int64_t skipped = 0;
  const std::string m = error_of([&] { translation::read_pairs(path, 50, &skipped); });
  CHECK(contains(m, path + ":2:"));
  CHECK(contains(m, "UTF-8"));
  CHECK(contains(m, "\\xff"));
  CHECK(printable_ascii(m));
  // Control bytes in a malformed line are escaped in the message.
  const std::string path2 = dir.write("pairs2.txt", "no tab \x1b[2J here\n");
  const std::string m2 = error_of([&] { translation::read_pairs(path2, 50, &skipped); });
  CHECK(contains(m2, path2 + ":1:"));
  CHECK(contains(m2, "\\x1b[2J"));
}

TEST_CASE("sentiment reader: malformed lines name the file and the line, bytes escaped") {
  std::istringstream good("great phone\t1\r\n\nterrible \xff battery\t0  \n");
  const auto examples = sentiment::read_labelled_sentences(good, "reviews.txt");
  REQUIRE(examples.size() == 2);
  CHECK(examples[0].text == "great phone");
  CHECK(examples[0].label == 1);
  CHECK(examples[1].text == "terrible \xff battery");  // kept: the tokenizer splits any bytes
  CHECK(examples[1].label == 0);
  std::istringstream bad("fine\t1\nno label \x1b[2J\xc3\n");
  const std::string m = error_of([&] { sentiment::read_labelled_sentences(bad, "reviews.txt"); });
  CHECK(contains(m, "reviews.txt:2:"));
  CHECK(contains(m, "\\x1b[2J\\xc3"));
  CHECK(printable_ascii(m));
  std::istringstream empty("\n\n");
  CHECK(contains(error_of([&] { sentiment::read_labelled_sentences(empty, "empty.txt"); }), "no labelled sentences"));
}

// ---- UTF-8 and printable() ----------------------------------------------------------------------------

TEST_CASE("utf8: validation follows the standard's table; printable() escapes what is not text") {
  CHECK(heed::is_valid_utf8(""));
  CHECK(heed::is_valid_utf8("plain ASCII \t\n"));
  CHECK(heed::is_valid_utf8("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x99\x82 \xf4\x8f\xbf\xbf \xef\xbb\xbf"));
  CHECK(heed::utf8_error_at("ab\xff") == 2);
  CHECK(heed::utf8_error_at("ab\xc3") == 2);          // truncated
  CHECK(heed::utf8_error_at("\x80") == 0);            // a stray continuation byte
  CHECK(heed::utf8_error_at("a\xc1\xbf") == 1);       // overlong
  CHECK(heed::utf8_error_at("\xe0\x9f\xbf") == 0);    // overlong 3-byte form
  CHECK(heed::utf8_error_at("\xed\xbf\xbf") == 0);    // a surrogate
  CHECK(heed::utf8_error_at("\xf4\x90\x80\x80") == 0);  // above U+10FFFF
  CHECK(heed::utf8_error_at("\xf5\x80\x80\x80") == 0);
  CHECK(heed::utf8_error_at("ok\xe2\x82\xac\xe2\x28\xa1") == 5);

  CHECK(heed::printable("caf\xc3\xa9\tok\n") == "caf\xc3\xa9\\tok\\n");
  CHECK(heed::printable(std::string("a\0b\x7f\xff\x1b", 6)) == "a\\x00b\\x7f\\xff\\x1b");
  CHECK(heed::printable("\xc2\x9b" "2J") == "\\xc2\\x9b2J");  // a C1 control (CSI) is escaped too
  CHECK(heed::printable("abcdef", 3) == "abc...");
  CHECK(heed::printable("ab\xe2\x82\xac", 3) == "ab...");  // a character is not cut in half
  for (const std::string& s : {std::string("\xff\xfe\x00\x01", 4), std::string("\xe2\x82"), std::string("x\x80y")})
    CHECK(heed::is_valid_utf8(heed::printable(s)));
}

// ---- checkpoint metadata ------------------------------------------------------------------------------

TEST_CASE("metadata_int: sizes in checkpoint metadata are decimal integers or a clear error") {
  const heed::io::Metadata m{{"hidden", "64"}, {"zero", "0"}, {"word", "eight"}, {"neg", "-3"},
                             {"float", "1e3"}, {"tail", "12abc"}, {"empty", ""}, {"huge", "99999999999999999999"}};
  CHECK(heed::io::metadata_int(m, "hidden", "ckpt") == 64);
  CHECK(heed::io::metadata_int(m, "zero", "ckpt") == 0);
  for (const char* key : {"word", "neg", "float", "tail", "empty", "huge"}) {
    CAPTURE(key);
    const std::string msg = error_of([&] { heed::io::metadata_int(m, key, "ckpt.safetensors"); });
    CHECK(contains(msg, "ckpt.safetensors"));
    CHECK(contains(msg, std::string("'") + key + "'"));
    CHECK(contains(msg, "not a non-negative integer"));
  }
  CHECK(contains(error_of([&] { heed::io::metadata_int(m, "missing", "ckpt"); }), "has no 'missing'"));
}

TEST_CASE("charlm vocabulary: any bytes survive the checkpoint's metadata; ASCII vocabularies read as before") {
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes.push_back(static_cast<char>(b));
  const charlm::CharVocab vocab(all_bytes + "caf\xc3\xa9");
  REQUIRE(vocab.size() == 256);
  const std::string stored = vocab.to_metadata();
  CHECK(heed::is_valid_utf8(stored));
  CHECK(charlm::CharVocab::from_metadata(stored).chars() == vocab.chars());
  // Saved and loaded through a real file (this failed with the JSON library's type_error 316 before).
  TempDir dir("charlm");
  const std::string path = dir.file("vocab.safetensors");
  heed::io::save_safetensors(path, {{"w", heed::zeros({1})}}, {{"vocab", stored}});
  CHECK(charlm::CharVocab::from_metadata(heed::io::load_safetensors(path).metadata.at("vocab")).chars() == vocab.chars());
  // A checkpoint of an ASCII text (all that could be saved before) stored the bytes themselves: the same.
  const charlm::CharVocab ascii(std::string("\n !,.:;?ABCabc"));
  CHECK(ascii.to_metadata() == ascii.chars());
  CHECK(charlm::CharVocab::from_metadata("\n !,.:;?ABCabc").chars() == ascii.chars());
  // Characters above U+00FF, a broken sequence or a repeated byte are errors.
  CHECK(contains(error_of([] { charlm::CharVocab::from_metadata("ab\xe2\x82\xac"); }), "vocabulary"));
  CHECK(contains(error_of([] { charlm::CharVocab::from_metadata("ab\xc3"); }), "vocabulary"));
  CHECK(contains(error_of([] { charlm::CharVocab::from_metadata("aba"); }), "twice"));
}

// ---- the atomic writer --------------------------------------------------------------------------------

TEST_CASE("atomic writer: a failed fsync still closes the file descriptor") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);  // fsync on a pipe fails with EINVAL
  const std::string m = error_of([&] { heed::io::detail::sync_and_close(fds[1], "the pipe"); });
  CHECK(contains(m, "flushing 'the pipe' failed"));
  errno = 0;
  CHECK(::fcntl(fds[1], F_GETFD) == -1);  // closed
  CHECK(errno == EBADF);
  ::close(fds[0]);
}

TEST_CASE("atomic writer: temporary names identify the process and differ between saves") {
  const std::string a = heed::io::detail::temporary_name("dir/model.safetensors");
  const std::string b = heed::io::detail::temporary_name("dir/model.safetensors");
  const std::string prefix = "dir/model.safetensors.tmp." + std::to_string(::getpid()) + ".";
  CHECK(a.compare(0, prefix.size(), prefix) == 0);
  CHECK(a.size() == prefix.size() + 8);
  CHECK(a != b);
  // Saving into the current directory (a path without a directory part) works too.
  TempDir dir("cwd");
  const auto previous = std::filesystem::current_path();
  std::filesystem::current_path(dir.file(""));
  heed::io::save_safetensors("plain.safetensors", {{"w", heed::ones({2})}});
  CHECK(heed::io::load_safetensors("plain.safetensors").get("w").to_vector<float>() == std::vector<float>{1, 1});
  std::filesystem::current_path(previous);
}

// ---- parse_safetensors --------------------------------------------------------------------------------

TEST_CASE("parse_safetensors: the loader's checks on bytes in memory; a save loads back through it") {
  TempDir dir("memory");
  const std::string path = dir.file("m.safetensors");
  heed::io::save_safetensors(path, {{"b", heed::tensor({1.0, 2.0}, {2})}, {"a", heed::index_tensor({7}, {1})}},
                             {{"note", "x"}});
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const heed::io::SafetensorsFile file = heed::io::parse_safetensors(bytes, "in memory");
  REQUIRE(file.tensors.size() == 2);
  CHECK(file.tensors[0].first == "b");  // file order of offsets
  CHECK(file.tensors[1].second.to_vector<int64_t>() == std::vector<int64_t>{7});
  CHECK(file.metadata.at("note") == "x");
  CHECK(contains(error_of([&] { heed::io::parse_safetensors(bytes.substr(0, bytes.size() - 1), "cut"); }), "'cut'"));
}

TEST_CASE("empty tensors are contiguous, however many size-0 axes they have (found by fuzz_safetensors)") {
  CHECK(heed::zeros({0}).is_contiguous());
  CHECK(heed::zeros({0, 0}).is_contiguous());
  CHECK(heed::zeros({3, 0, 2}).is_contiguous());
  CHECK(heed::zeros({0, 5}).transpose(0, 1).is_contiguous());
  // The input that found it: a checkpoint entry of shape [0, 0].
  const auto file = heed::io::parse_safetensors(
      safetensors_bytes(R"({"empty":{"dtype":"F32","shape":[0,0],"data_offsets":[0,0]}})"), "empty");
  REQUIRE(file.tensors.size() == 1);
  CHECK(file.tensors[0].second.shape() == Shape{0, 0});
  CHECK(file.tensors[0].second.is_contiguous());
}
