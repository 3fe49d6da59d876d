// The synthetic dataset: the generator is deterministic (same config, same sequences; a user's
// sequence does not depend on how many users are made), the shipped data/synthetic.txt is exactly
// the default output and euler's loader reads it back unchanged, ids and lengths stay in range, the
// hidden rules show in the data, and the ordering property holds: the second-order Markov baseline
// (last two items, in order) beats the first-order one (last item), which beats popularity, by
// clear margins. Plus the baselines on a
// sequence small enough to score by hand.
#include <doctest/doctest.h>

#include <euler/data/dataset.hpp>
#include <euler/data/synthetic.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace test_synthetic {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;

namespace {

// data/synthetic.txt of this checkout, found from this file's folder.
std::string shipped_file_path() {
  return (std::filesystem::path(__FILE__).parent_path() / ".." / "data" / "synthetic.txt").string();
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot open " << path);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

}  // namespace

TEST_CASE("synthetic: the same config gives the same sequences; another seed gives others") {
  SyntheticConfig config;
  config.users = 300;
  std::vector<std::vector<int32_t>> first = generate_synthetic(config), second = generate_synthetic(config);
  CHECK(first == second);

  // User u's sequence depends on (seed, u) only: fewer users give a prefix of the same sequences.
  SyntheticConfig fewer = config;
  fewer.users = 40;
  std::vector<std::vector<int32_t>> prefix = generate_synthetic(fewer);
  REQUIRE(prefix.size() == 40);
  CHECK(std::equal(prefix.begin(), prefix.end(), first.begin()));

  SyntheticConfig reseeded = config;
  reseeded.seed += 1;
  CHECK(generate_synthetic(reseeded) != first);
}

TEST_CASE("synthetic: data/synthetic.txt is exactly the default output, and euler's loader reads it back") {
  std::vector<std::vector<int32_t>> sequences = generate_synthetic(SyntheticConfig{});
  std::string expected = to_s3rec_text(sequences);
  std::string path = shipped_file_path();
  std::string shipped = read_whole_file(path);
  CHECK_MESSAGE(shipped.size() == expected.size(), "regenerate it with make_synthetic (data/README.md)");
  CHECK_MESSAGE(shipped == expected, path << " differs from make_synthetic's default output");

  Dataset data = load_dataset(path);
  CHECK(data.format == Format::sequences);
  CHECK(data.n_users == 2000);
  CHECK(data.n_items == 500);
  CHECK(data.sequences == sequences);  // ids 1..K are kept, users in file order
  CHECK(data.user_token(0) == "1");
  CHECK(data.item_token(17) == "17");

  // Every user has >= 15 items and every item >= 10 users: the paper's 10-core filter keeps all.
  Dataset filtered = load_dataset(path, DatasetOptions::paper());
  CHECK(filtered.filters.removed_by_core == 0);
  CHECK(filtered.sequences == sequences);
}

TEST_CASE("synthetic: to_s3rec_text writes `user item ...` lines, users from 1") {
  CHECK(to_s3rec_text({{3, 1, 2}, {5}}) == "1 3 1 2\n2 5\n");
  CHECK(to_s3rec_text({}).empty());
}

TEST_CASE("synthetic: the default dataset's size, ids and lengths") {
  SyntheticConfig config;
  SyntheticWorld world = build_synthetic_world(config);
  std::vector<std::vector<int32_t>> sequences = generate_synthetic(config, world);
  SyntheticStatistics stats = synthetic_statistics(sequences, world);

  CHECK(stats.users == config.users);
  CHECK(stats.items_used == config.items);  // every id 1..K occurs
  CHECK(stats.interactions >= 60000);
  CHECK(stats.interactions <= 80000);
  CHECK(stats.shortest >= config.min_length);
  CHECK(stats.longest <= config.max_length);
  CHECK(stats.mean_length > 30);
  CHECK(stats.mean_length < 42);
  int64_t outside = 0;
  for (const std::vector<int32_t>& sequence : sequences)
    for (int32_t item : sequence) outside += item < 1 || item > config.items;
  CHECK(outside == 0);
  CHECK(to_s3rec_text(sequences).size() < 400 * 1000);

  // The world: a partition of 1..K into clusters, and a successor permutation of the clusters.
  int64_t members = 0;
  for (int32_t c = 0; c < world.n_clusters; ++c) {
    CHECK(world.cluster_items[size_t(c)].size() >= 2);
    for (int32_t item : world.cluster_items[size_t(c)]) CHECK(world.cluster_of[size_t(item)] == c);
    members += int64_t(world.cluster_items[size_t(c)].size());
  }
  CHECK(members == config.items);
  std::vector<int32_t> successors = world.successor;
  std::sort(successors.begin(), successors.end());
  for (int32_t c = 0; c < world.n_clusters; ++c) CHECK(successors[size_t(c)] == c);

  // The rules show, and only for the right item: the cluster rule applied to the last item instead
  // of the one before it finds little more than chance.
  CHECK(stats.follows_cluster_rule > 0.65);
  CHECK(stats.follows_cluster_rule_one_back < 0.15);
  CHECK(stats.follows_index_rule > 0.6);
  CHECK(stats.top10_item_share < 0.12);  // popularity is skewed, but not enough to carry a model
}

TEST_CASE("synthetic: order matters: second-order Markov > first-order > popularity") {
  SyntheticConfig config;
  MarkovBaselines scores = evaluate_markov_baselines(generate_synthetic(config), config.items);
  INFO(scores.summary());
  CHECK(scores.evaluated_users == config.users);
  CHECK(scores.popularity.hit_rate < 0.1);
  CHECK(scores.first_order.hit_rate > 2 * scores.popularity.hit_rate);
  CHECK(scores.second_order.hit_rate > scores.first_order.hit_rate + 0.08);
  CHECK(scores.second_order.hit_rate > 4 * scores.popularity.hit_rate);
  CHECK(scores.first_order.ndcg > 2 * scores.popularity.ndcg);
  CHECK(scores.second_order.ndcg > 2 * scores.first_order.ndcg);
}

TEST_CASE("synthetic: the Markov baselines on a sequence scored by hand") {
  // Training part (all but the last two): 1 3 4 1 3 4 1 3 4 2 3 1 2; then the history ends (2, 3)
  // and the target is 1. Item 5 never occurs.
  //   popularity: 1 and 3 occur 4 times each, so 3 ties with the target and ranks ahead: rank 2;
  //   first order after 3: 4 (3 times) beats 1 (once): rank 2;
  //   second order after (2, 3): only 1 was seen: rank 1.
  std::vector<std::vector<int32_t>> sequences = {{1, 3, 4, 1, 3, 4, 1, 3, 4, 2, 3, 1, 2, 3, 1}};
  MarkovBaselines scores = evaluate_markov_baselines(sequences, 5);
  CHECK(scores.evaluated_users == 1);
  double second_place = 1 / std::log2(3.0);
  CHECK(scores.popularity.ndcg == doctest::Approx(second_place));
  CHECK(scores.first_order.ndcg == doctest::Approx(second_place));
  CHECK(scores.second_order.ndcg == doctest::Approx(1.0));
  CHECK(scores.second_order.hit_rate == 1.0);

  // Users with fewer than 3 items only train; an item outside 1..K is an error.
  CHECK(evaluate_markov_baselines({{1, 2}}, 5).evaluated_users == 0);
  CHECK_THROWS_AS(evaluate_markov_baselines({{1, 6, 2}}, 5), std::out_of_range);
  CHECK_THROWS_AS(evaluate_markov_baselines({{1, 2, 3}}, 0), std::invalid_argument);
}

TEST_CASE("synthetic: configs that cannot work are refused") {
  auto refused = [](auto change) {
    SyntheticConfig config;
    change(config);
    CHECK_THROWS_AS(generate_synthetic(config), std::invalid_argument);
  };
  refused([](SyntheticConfig& c) { c.users = 0; });
  refused([](SyntheticConfig& c) { c.items = 2 * c.clusters - 1; });
  refused([](SyntheticConfig& c) { c.min_length = 2; });
  refused([](SyntheticConfig& c) { c.max_length = c.min_length - 1; });
  refused([](SyntheticConfig& c) { c.preferred_clusters = c.clusters + 1; });
  refused([](SyntheticConfig& c) { c.noise = 1.5; });
  refused([](SyntheticConfig& c) { c.follow_index_rule = std::nan(""); });
  refused([](SyntheticConfig& c) { c.popularity_offset = 0; });

  // The smallest world that is allowed: 2 items per cluster, one cluster preferred.
  SyntheticConfig tiny;
  tiny.users = 5;
  tiny.items = 6;
  tiny.clusters = 3;
  tiny.preferred_clusters = 1;
  tiny.min_length = tiny.max_length = 4;
  std::vector<std::vector<int32_t>> sequences = generate_synthetic(tiny);
  REQUIRE(sequences.size() == 5);
  for (const std::vector<int32_t>& sequence : sequences) {
    CHECK(sequence.size() == 4);
    for (int32_t item : sequence) CHECK((item >= 1 && item <= 6));
  }
}

}  // namespace test_synthetic
