// tests/fuzz/make_seeds.cpp — writes the seed corpora of the fuzz targets into tests/fuzz/corpus/<target>/
// (checked in; rerun after a format change: build the make_fuzz_seeds target of a -DHEED_FUZZ=ON build and
// run it with the corpus directory as its argument). The safetensors seeds come from heed's writer; the
// IDX seeds are small image and label files, plain and gzip (heed reads IDX but does not write it); the
// text seeds are short files in the formats the example readers take.
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <heed/heed.hpp>
#include <heed/io/safetensors.hpp>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

void write(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  HEED_CHECK(out.good(), "make_seeds: cannot write '{}'", path.string());
}

void write_gzip(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  gzFile f = gzopen(path.string().c_str(), "wb9");
  HEED_CHECK(f != nullptr && gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())) ==
                                 static_cast<int>(bytes.size()) && gzclose(f) == Z_OK,
             "make_seeds: cannot write '{}'", path.string());
}

std::string idx(const std::vector<uint32_t>& dims, int64_t seed) {
  std::string b{'\0', '\0', '\x08', static_cast<char>(dims.size())};
  uint64_t n = 1;
  for (uint32_t d : dims) {
    n *= d;
    for (int shift = 24; shift >= 0; shift -= 8) b.push_back(static_cast<char>((d >> shift) & 0xff));
  }
  for (uint64_t i = 0; i < n; ++i) b.push_back(static_cast<char>((i * 37 + static_cast<uint64_t>(seed)) % 256));
  return b;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    fmt::print(stderr, "usage: make_fuzz_seeds tests/fuzz/corpus\n");
    return 2;
  }
  const fs::path root(argv[1]);
  heed::manual_seed(16);

  // safetensors: every dtype heed writes, metadata, an empty tensor, a small layer's state dict.
  const fs::path st = root / "safetensors";
  write(st / "f32_metadata", heed::io::serialize_safetensors({{"weight", heed::randn({2, 3})}, {"bias", heed::zeros({3})}},
                                                             {{"format", "pt"}, {"vocab", "ab\xc3\xa9\n"}}));
  write(st / "dtypes", heed::io::serialize_safetensors({{"f64", heed::randn({2}, heed::DType::Float64)},
                                                        {"i64", heed::index_tensor({1, -2, 3})},
                                                        {"mask", heed::bool_tensor({true, false})},
                                                        {"scalar", heed::scalar(1.5)},
                                                        {"empty", heed::zeros({0, 4})}}));
  heed::nn::Linear linear(3, 2);
  write(st / "linear", heed::io::serialize_safetensors(linear.state_dict(), {{"framework", "heed"}}));
  write(st / "no_tensors", heed::io::serialize_safetensors({}, {{"note", "only metadata"}}));
  // F16 and BF16 (which heed reads but does not write), the same header layout by hand.
  {
    const std::string header =
        R"({"h":{"dtype":"F16","shape":[2],"data_offsets":[0,4]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[4,8]}})";
    std::string bytes(8, '\0');
    for (int i = 0; i < 8; ++i) bytes[static_cast<std::size_t>(i)] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
    bytes += header;
    bytes += std::string("\x00\x3c\x01\x80\x80\x3f\xc0\x7f", 8);  // 1.0, a subnormal, 1.0, NaN
    write(st / "half", bytes);
  }

  // IDX: labels (1-D), images (3-D), a 2-D array; plain and gzip; one truncated.
  const fs::path ix = root / "idx";
  write(ix / "labels", idx({5}, 1));
  write(ix / "images", idx({2, 3, 3}, 2));
  write(ix / "matrix", idx({3, 4}, 3));
  write_gzip(ix / "labels.gz", idx({5}, 4));
  write_gzip(ix / "images.gz", idx({2, 3, 3}, 5));
  write(ix / "truncated", idx({2, 3, 3}, 6).substr(0, 20));

  // The sentiment reader: sentence<TAB>label lines.
  const fs::path se = root / "sentiment_reader";
  write(se / "reviews", "So there is no way for me to plug it in here in the US unless I go by a converter.\t0\n"
                        "Good case, Excellent value.\t1\r\n\nGreat for the jawbone.   \t1\n");
  write(se / "utf8", "Caf\xc3\xa9 tr\xc3\xa8s bon !\t1\nnot good\t0\n");
  write(se / "malformed", "a sentence without a label\nanother\t2\n");

  // The translation pairs reader: english<TAB>french[<TAB>attribution]; the first byte sets the limit.
  const fs::path tr = root / "translation_pairs";
  write(tr / "pairs", std::string(1, '\x20') + "Go.\tVa !\nHi.\tSalut !\tCC-BY 2.0 (France) Attribution: tatoeba.org\n"
                                                 "I see.\tJe comprends.\n");
  write(tr / "bom_crlf", std::string(1, '\x08') + "\xEF\xBB\xBFRun!\tCours\xc2\xa0!\r\n\nWho?\tQui ?\r\n");
  write(tr / "malformed", std::string(1, '\x30') + "Go.\tVa !\nno tab here\n");

  // The tokenizer: the first byte caps the vocabulary, then lines of text.
  const fs::path tk = root / "tokenizer";
  write(tk / "reviews", std::string(1, '\x00') + "Great movie, it's GOOD!\nthe cat sat; the cat flew.\n\tTabs\tand  spaces\n");
  write(tk / "capped", std::string(1, '\x05') + "a b c d e f g a b a\n\xc3\xa9t\xc3\xa9 caf\xc3\xa9\n");
  fmt::print("wrote the seeds under {}\n", root.string());
  return 0;
}
