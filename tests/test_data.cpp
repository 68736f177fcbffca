// heed::data: datasets, loaders, padding with masks, tokenizer.
#include <doctest/doctest.h>

#include <heed/heed.hpp>
#include <set>

using heed::Tensor;
namespace data = heed::data;

TEST_CASE("data: pad_sequences pads and truncates like Keras, with lengths and masks") {
  auto p = data::pad_sequences({{5, 6, 7}, {8}, {}}, 2);
  CHECK(p.ids.to_vector<int64_t>() == std::vector<int64_t>{5, 6, 8, 0, 0, 0});
  CHECK(p.lengths.to_vector<int64_t>() == std::vector<int64_t>{2, 1, 0});
  CHECK(p.mask.to_vector<int>() == std::vector<int>{1, 1, 1, 0, 0, 0});
  auto pre = data::pad_sequences({{5, 6, 7}, {8}}, 2, 0, data::Side::Pre, data::Side::Pre);
  CHECK(pre.ids.to_vector<int64_t>() == std::vector<int64_t>{6, 7, 0, 8});
  CHECK(pre.mask.to_vector<int>() == std::vector<int>{1, 1, 0, 1});
  auto longest = data::pad_sequences({{1}, {2, 3, 4}}, 0, 9);
  CHECK(longest.ids.shape() == heed::Shape{2, 3});
  CHECK(longest.ids.to_vector<int64_t>() == std::vector<int64_t>{1, 9, 9, 2, 3, 4});
}

TEST_CASE("data: tokenizer splits punctuation, lower-cases and ranks words by frequency") {
  CHECK(data::Tokenizer::split("Great movie, it's GOOD!") ==
        std::vector<std::string>{"great", "movie", ",", "it's", "good", "!"});
  data::Tokenizer tok(5);  // <pad>, <oov> and three words
  tok.fit({"the cat sat", "the cat ran", "the dog"});
  CHECK(tok.vocab_size() == 5);
  CHECK(tok.word(2) == "the");
  CHECK(tok.word(3) == "cat");
  CHECK(tok.encode("The cat flew") == std::vector<int64_t>{2, 3, data::Tokenizer::kOov});
  CHECK(tok.word(0) == "<pad>");
  CHECK_THROWS_AS(tok.word(99), heed::Error);
}

TEST_CASE("data: dataset checks rows; loader covers every row once per epoch, reproducibly") {
  Tensor x = heed::arange(10).reshape({10, 1});
  Tensor y = heed::arange(10, heed::DType::Int64);
  CHECK_THROWS_WITH_AS(data::TensorDataset({x, heed::zeros({9})}), doctest::Contains("9 rows"), heed::Error);
  data::TensorDataset ds({x, y});
  data::DataLoader loader(ds, data::LoaderOptions().batch_size(3).seed(7));
  CHECK(loader.size() == 4);
  std::multiset<int64_t> seen;
  for (std::size_t b = 0; b < loader.size(); ++b) {
    auto batch = loader.batch(b);
    REQUIRE(batch.size() == 2);
    auto xs = batch[0].to_vector<int64_t>(), ys = batch[1].to_vector<int64_t>();
    CHECK(xs == ys);  // rows stay aligned across tensors
    seen.insert(ys.begin(), ys.end());
  }
  CHECK(seen.size() == 10);
  CHECK(std::set<int64_t>(seen.begin(), seen.end()).size() == 10);
  data::DataLoader again(ds, data::LoaderOptions().batch_size(3).seed(7));
  CHECK(again.batch(0)[1].to_vector<int64_t>() == loader.batch(0)[1].to_vector<int64_t>());
  data::DataLoader dropping(ds, data::LoaderOptions().batch_size(3).shuffle(false).drop_last(true));
  CHECK(dropping.size() == 3);
  CHECK(dropping.batch(0)[1].to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2});
  CHECK_THROWS_AS(dropping.batch(3), heed::Error);
  auto [train, val] = ds.split_tail(0.2);
  CHECK(train.size() == 8);
  CHECK(val.tensors()[1].to_vector<int64_t>() == std::vector<int64_t>{8, 9});
}

TEST_CASE("data: shuffle is a permutation fixed by the generator's state, the one DataLoader draws") {
  std::vector<int64_t> order(50), items(50);
  for (int64_t i = 0; i < 50; ++i) order[static_cast<std::size_t>(i)] = i, items[static_cast<std::size_t>(i)] = 100 + i;
  heed::Generator a(7), b(7), c(8);
  std::vector<int64_t> first = order, same = order, other = order;
  data::shuffle(first, a);
  data::shuffle(same, b);
  data::shuffle(other, c);
  CHECK(first == same);
  CHECK(first != order);
  CHECK(first != other);
  CHECK(std::set<int64_t>(first.begin(), first.end()).size() == 50);
  // Any element type follows the same order: 100 + the shuffled indices.
  heed::Generator d(7);
  data::shuffle(items, d);
  for (std::size_t i = 0; i < 50; ++i) CHECK(items[i] == 100 + first[i]);
  // DataLoader with seed 7 and one batch of everything yields the rows in that order.
  data::TensorDataset ds({heed::arange(50, heed::DType::Int64)});
  data::DataLoader loader(ds, data::LoaderOptions().batch_size(50).seed(7));
  CHECK(loader.batch(0)[0].to_vector<int64_t>() == first);
  std::vector<int64_t> none;
  data::shuffle(none, a);  // empty and single-element inputs are left alone
  CHECK(none.empty());
}
