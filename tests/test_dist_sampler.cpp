// heed::data::DistributedSampler and the sharded DataLoader: every rank's share of an epoch, checked here
// in one process by building the loaders of all ranks side by side.
#include <doctest/doctest.h>

#include <algorithm>
#include <heed/heed.hpp>
#include <set>

#include "testing.hpp"

using heed::Tensor;
namespace data = heed::data;

namespace {

// A dataset whose only column is the row number, so a loader's batches show its order.
data::TensorDataset row_numbers(int64_t n) {
  std::vector<int64_t> ids(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<std::size_t>(i)] = i;
  return data::TensorDataset({heed::index_tensor(ids)});
}

// The rows a loader gives in one epoch, batch after batch.
std::vector<int64_t> epoch_rows(const data::DataLoader& loader) {
  std::vector<int64_t> rows;
  for (std::size_t b = 0; b < loader.size(); ++b) {
    const std::vector<int64_t> batch = loader.batch(b)[0].to_vector<int64_t>();
    rows.insert(rows.end(), batch.begin(), batch.end());
  }
  return rows;
}

std::vector<data::DataLoader> rank_loaders(const data::TensorDataset& ds, int replicas, int64_t batch, uint64_t seed,
                                           bool drop_last = false) {
  std::vector<data::DataLoader> loaders;
  for (int r = 0; r < replicas; ++r)
    loaders.emplace_back(ds, data::LoaderOptions().batch_size(batch).shuffle(true).seed(seed).drop_last(false), data::DistributedSampler(replicas, r, drop_last));
  return loaders;
}

}  // namespace

TEST_CASE("dist sampler: shards are disjoint, equal, cover the data, and repeat for the same seed") {
  const data::TensorDataset ds = row_numbers(60);
  for (int replicas : {1, 2, 3, 4}) {
    CAPTURE(replicas);
    auto loaders = rank_loaders(ds, replicas, 4, 7);
    auto again = rank_loaders(ds, replicas, 4, 7);
    auto other_seed = rank_loaders(ds, replicas, 4, 8);
    for (int epoch = 0; epoch < 3; ++epoch) {
      std::multiset<int64_t> all;
      std::vector<std::vector<int64_t>> shards;
      for (int r = 0; r < replicas; ++r) {
        shards.push_back(epoch_rows(loaders[static_cast<std::size_t>(r)]));
        CHECK(shards.back().size() == static_cast<std::size_t>(60 / replicas));
        CHECK(loaders[static_cast<std::size_t>(r)].size() == loaders[0].size());  // the same number of steps
        all.insert(shards.back().begin(), shards.back().end());
        CHECK(epoch_rows(again[static_cast<std::size_t>(r)]) == shards.back());  // same seed, same shard
      }
      CHECK(all.size() == 60);
      for (int64_t i = 0; i < 60; ++i) CHECK(all.count(i) == 1);  // disjoint and covering
      if (replicas > 1) CHECK(epoch_rows(other_seed[0]) != shards[0]);
      // The next epoch: a new order, the same for every rank.
      const std::vector<int64_t> before = shards[0];
      for (auto* set : {&loaders, &again, &other_seed})
        for (auto& loader : *set) loader.reshuffle();
      CHECK(epoch_rows(loaders[0]) != before);
    }
  }
}

TEST_CASE("dist sampler: batch b of every shard is batch b of one process with batch P x B") {
  const data::TensorDataset ds = row_numbers(48);
  const int replicas = 3;
  auto loaders = rank_loaders(ds, replicas, 4, 11);
  data::DataLoader single(ds, data::LoaderOptions().batch_size(4 * replicas).shuffle(true).seed(11).drop_last(false));
  for (int epoch = 0; epoch < 2; ++epoch) {
    for (auto& l : loaders) l.reshuffle();
    single.reshuffle();
    REQUIRE(single.size() == loaders[0].size());
    for (std::size_t b = 0; b < single.size(); ++b) {
      std::vector<int64_t> expected = single.batch(b)[0].to_vector<int64_t>(), got;
      for (auto& l : loaders) {
        const std::vector<int64_t> part = l.batch(b)[0].to_vector<int64_t>();
        got.insert(got.end(), part.begin(), part.end());
      }
      std::sort(expected.begin(), expected.end());
      std::sort(got.begin(), got.end());
      CHECK(got == expected);
    }
  }
}

TEST_CASE("dist sampler: one replica is the plain DataLoader's order") {
  const data::TensorDataset ds = row_numbers(23);
  data::DataLoader plain(ds, data::LoaderOptions().batch_size(5).shuffle(true).seed(3).drop_last(false));
  data::DataLoader sharded(ds, data::LoaderOptions().batch_size(5).shuffle(true).seed(3).drop_last(false), data::DistributedSampler(1, 0));
  for (int epoch = 0; epoch < 3; ++epoch) {
    CHECK(epoch_rows(plain) == epoch_rows(sharded));
    plain.reshuffle();
    sharded.reshuffle();
  }
}

TEST_CASE("dist sampler: a size that does not divide pads by wrapping around, or drops the tail") {
  const data::TensorDataset ds = row_numbers(10);
  // 10 rows, 4 ranks: 3 each, the first 2 rows of the epoch's order serve twice.
  auto loaders = rank_loaders(ds, 4, 2, 5);
  data::DataLoader whole(ds, data::LoaderOptions().batch_size(10).shuffle(true).seed(5).drop_last(false));
  const std::vector<int64_t> order = epoch_rows(whole);
  std::multiset<int64_t> all;
  for (int r = 0; r < 4; ++r) {
    const std::vector<int64_t> shard = epoch_rows(loaders[static_cast<std::size_t>(r)]);
    REQUIRE(shard.size() == 3);
    for (std::size_t j = 0; j < 3; ++j) CHECK(shard[j] == order[(j * 4 + static_cast<std::size_t>(r)) % 10]);
    all.insert(shard.begin(), shard.end());
  }
  for (int64_t i = 0; i < 10; ++i) CHECK(all.count(i) == (i == order[0] || i == order[1] ? 2u : 1u));
  // drop_last: 2 each, the last 2 rows of the order are left out this epoch.
  auto dropped = rank_loaders(ds, 4, 2, 5, true);
  std::set<int64_t> seen;
  for (auto& l : dropped) {
    const std::vector<int64_t> shard = epoch_rows(l);
    CHECK(shard.size() == 2);
    seen.insert(shard.begin(), shard.end());
  }
  CHECK(seen.size() == 8);
  CHECK(seen.count(order[8]) == 0);
  CHECK(seen.count(order[9]) == 0);
  CHECK(data::DistributedSampler(4, 1).shard_size(10) == 3);
  CHECK(data::DistributedSampler(4, 1, true).shard_size(10) == 2);
}

TEST_CASE("dist sampler: bad ranks are errors") {
  CHECK(heed::testing::error_of([] { data::DistributedSampler(2, 2); }) ==
        "DistributedSampler: rank 2 of 2 replicas is invalid (need 0 <= rank < num_replicas)");
  CHECK(heed::testing::error_of([] { data::DistributedSampler(0, 0); }).find("rank 0 of 0 replicas") != std::string::npos);
}
