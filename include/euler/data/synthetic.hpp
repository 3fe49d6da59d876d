// euler/data/synthetic.hpp: the project's own small next-item dataset, made by a deterministic
// generator, and the simple baselines that show what its sequences reward.
//
// The real benchmarks (ML-1M, Yelp, Amazon) come with terms that forbid redistributing them, so the
// demo trains on data/synthetic.txt, which is exactly generate_synthetic(SyntheticConfig{}) written
// by to_s3rec_text (data/make_synthetic.cpp). The sequences are built so that ORDER matters, and
// specifically which item came last and which one came just before it:
//   - the K items fall into C clusters (a random partition of 1..K); within a cluster the items
//     have a Zipf-like popularity by their index, and so do the clusters and the items overall;
//   - the cluster rule: with probability follow_cluster_rule the next cluster is
//     successor[c[t-1]], the successor of the cluster TWO steps back (successor is a random
//     permutation); otherwise it is a random jump (one of the user's preferred clusters with
//     probability preference, else a cluster by popularity);
//   - the index rule: with probability follow_index_rule the next item is the one at the same
//     index in that cluster as the LAST item has in its own (modulo the cluster size); otherwise a
//     popular one of the cluster;
//   - with probability noise the step is instead a noise item (from a preferred cluster with
//     probability preference, else by global popularity);
//   - each user has a few preferred clusters (drawn by popularity) that start the sequence and bias
//     the jumps and the noise; lengths run from min_length to max_length, short ones more common.
// So the next item is pinned down by the last item and the one before it, in that order: a model
// that attends to "one step back" learns both rules; one that sees only the last item, or the
// history as an unordered bag, cannot tell which history item came just before the last one and
// does clearly worse; popularity alone is weak. evaluate_markov_baselines measures this with
// count models under the leave-one-out protocol.
//
// Every draw comes from euler::Rng (counter-based, integer arithmetic only: no std:: distribution,
// no pow or log), so the same config gives the same bytes on every platform and compiler. User u's
// sequence depends only on (seed, u) and the world, never on how many users are generated.
//
//     euler::SyntheticConfig config;                        // the defaults make data/synthetic.txt
//     std::vector<std::vector<int32_t>> sequences = euler::generate_synthetic(config);
//     std::string text = euler::to_s3rec_text(sequences);   // "1 17 203 ...\n2 ...": users 1..U
//     euler::SyntheticWorld world = euler::build_synthetic_world(config);  // clusters, successor
//     euler::SyntheticStatistics stats = euler::synthetic_statistics(sequences, world);
//     euler::MarkovBaselines scores = euler::evaluate_markov_baselines(sequences, config.items);
//     std::printf("%s%s", stats.summary().c_str(), scores.summary().c_str());
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <vector>

#include "euler/core/random.hpp"

namespace euler {

// Letters: U users, K items (ids 1..K, 0 is padding), C clusters.
struct SyntheticConfig {
  int32_t users = 2000;                // U
  int32_t items = 500;                 // K
  int32_t clusters = 32;               // C; each cluster gets at least 2 items
  int32_t min_length = 15;             // shortest sequence
  int32_t max_length = 80;             // longest; length = min + floor((max - min + 1) u^2), mean ~36
  int32_t preferred_clusters = 3;      // clusters each user favours
  double follow_cluster_rule = 0.8;    // P(next cluster = successor[c[t-1]]), the cluster two back
  double follow_index_rule = 0.75;     // P(next item = the last item's in-cluster index) in that cluster
  double noise = 0.10;                 // P(a step is a noise item)
  double preference = 0.5;             // share of jumps and noise taken from the preferred clusters
  int32_t popularity_offset = 5;       // Zipf-Mandelbrot weight 1 / (rank + offset); larger = flatter
  uint64_t seed = 20240601;

  void validate() const {
    auto fail = [](const std::string& what) { throw std::invalid_argument("SyntheticConfig: " + what); };
    auto probability = [&](double p, const char* name) {
      if (!(p >= 0 && p <= 1)) fail(std::string(name) + " must be in [0, 1], got " + std::to_string(p));
    };
    if (users < 1) fail("users must be positive, got " + std::to_string(users));
    if (clusters < 1) fail("clusters must be positive, got " + std::to_string(clusters));
    if (items < 2 * clusters)
      fail("items must be at least 2 per cluster: " + std::to_string(items) + " items, " +
           std::to_string(clusters) + " clusters");
    if (min_length < 3 || max_length < min_length)
      fail("lengths must satisfy 3 <= min_length <= max_length, got " + std::to_string(min_length) + ".." +
           std::to_string(max_length));
    if (preferred_clusters < 1 || preferred_clusters > clusters)
      fail("preferred_clusters must be in 1..clusters, got " + std::to_string(preferred_clusters));
    if (popularity_offset < 1) fail("popularity_offset must be positive, got " + std::to_string(popularity_offset));
    probability(follow_cluster_rule, "follow_cluster_rule");
    probability(follow_index_rule, "follow_index_rule");
    probability(noise, "noise");
    probability(preference, "preference");
  }
};

namespace synthetic_detail {

// Draws an index with probability weight[i] / sum(weight), in integers so every platform agrees.
class WeightedDraw {
 public:
  WeightedDraw() = default;
  explicit WeightedDraw(const std::vector<uint64_t>& weights) {
    cumulative_.reserve(weights.size());
    uint64_t total = 0;
    for (uint64_t w : weights) cumulative_.push_back(total += w);
    if (total == 0) throw std::invalid_argument("WeightedDraw: the weights sum to zero");
  }
  int32_t operator()(Rng& rng) const {
    uint64_t ticket = rng.below(cumulative_.back());
    return int32_t(std::upper_bound(cumulative_.begin(), cumulative_.end(), ticket) - cumulative_.begin());
  }

 private:
  std::vector<uint64_t> cumulative_;  // running sums of the weights
};

// Zipf-Mandelbrot weights for ranks 0..n-1: 2^40 / (rank + offset), integer division.
inline std::vector<uint64_t> zipf_weights(int32_t n, int32_t offset) {
  std::vector<uint64_t> weights(static_cast<size_t>(n));
  for (int32_t rank = 0; rank < n; ++rank) weights[size_t(rank)] = (uint64_t(1) << 40) / uint64_t(rank + offset);
  return weights;
}

inline bool chance(Rng& rng, double probability) { return rng.uniform() < probability; }

// The stream of seeds for the users: user u draws from Rng(random_bits(seed, kUserSeedStream, u)).
inline constexpr uint64_t kUserSeedStream = 1;

}  // namespace synthetic_detail

// The hidden structure behind the sequences: which item is in which cluster, the cluster rule's
// successor permutation and the popularity orders. Built from the config's seed alone, before any user.
struct SyntheticWorld {
  int32_t n_items = 0;                               // K
  int32_t n_clusters = 0;                            // C
  std::vector<std::vector<int32_t>> cluster_items;   // [C][size] items of a cluster, most popular first
  std::vector<int32_t> cluster_of;                   // [K + 1] cluster of item i; [0] = -1 (padding)
  std::vector<int32_t> index_in_cluster;             // [K + 1] position of item i in cluster_items
  std::vector<int32_t> successor;                    // [C] a permutation: the cluster rule's next cluster
  std::vector<int32_t> clusters_by_popularity;       // [C] most popular first
  std::vector<int32_t> items_by_popularity;          // [K] global popularity order of the noise

  // The cluster rule: the cluster that usually comes after `before_last_cluster` and one more item.
  int32_t rule_cluster(int32_t before_last_cluster) const { return successor[size_t(before_last_cluster)]; }
  // The index rule: the item of `cluster` at the index that `last_item` has in its own cluster.
  int32_t rule_item(int32_t cluster, int32_t last_item) const {
    const std::vector<int32_t>& members = cluster_items[size_t(cluster)];
    return members[size_t(index_in_cluster[size_t(last_item)]) % members.size()];
  }
};

inline SyntheticWorld build_synthetic_world(const SyntheticConfig& config) {
  config.validate();
  const int32_t K = config.items, C = config.clusters;
  Rng rng(config.seed);
  SyntheticWorld world;
  world.n_items = K;
  world.n_clusters = C;

  // Cluster sizes: 2 items each, the rest spread by random weights in [1, 3), so sizes vary ~3x.
  std::vector<uint64_t> size_weights(static_cast<size_t>(C));
  for (auto& w : size_weights) w = 1024 + rng.below(2048);
  uint64_t weight_total = 0;
  for (uint64_t w : size_weights) weight_total += w;
  std::vector<int32_t> sizes(size_t(C), 2);
  int32_t spare = K - 2 * C, handed_out = 0;
  for (int32_t c = 0; c < C; ++c) {
    int32_t extra = int32_t(uint64_t(spare) * size_weights[size_t(c)] / weight_total);
    sizes[size_t(c)] += extra;
    handed_out += extra;
  }
  for (int32_t c = 0; handed_out < spare; c = (c + 1) % C, ++handed_out) sizes[size_t(c)] += 1;

  // A random partition of the item ids: cluster c takes the next sizes[c] ids of a shuffle, in
  // their shuffled order, which is also their popularity order inside the cluster.
  std::vector<int32_t> order(static_cast<size_t>(K));
  for (int32_t i = 0; i < K; ++i) order[size_t(i)] = i + 1;
  rng.shuffle(order);
  world.cluster_items.resize(size_t(C));
  world.cluster_of.assign(size_t(K) + 1, -1);
  world.index_in_cluster.assign(size_t(K) + 1, -1);
  size_t next = 0;
  for (int32_t c = 0; c < C; ++c) {
    for (int32_t j = 0; j < sizes[size_t(c)]; ++j) {
      int32_t item = order[next++];
      world.cluster_items[size_t(c)].push_back(item);
      world.cluster_of[size_t(item)] = c;
      world.index_in_cluster[size_t(item)] = j;
    }
  }

  world.successor.resize(size_t(C));
  for (int32_t c = 0; c < C; ++c) world.successor[size_t(c)] = c;
  rng.shuffle(world.successor);
  world.clusters_by_popularity.resize(size_t(C));
  for (int32_t c = 0; c < C; ++c) world.clusters_by_popularity[size_t(c)] = c;
  rng.shuffle(world.clusters_by_popularity);
  world.items_by_popularity.assign(order.begin(), order.end());
  rng.shuffle(world.items_by_popularity);
  return world;
}

// The sequences of config.users users (user u is sequences[u]), item ids 1..K, oldest first.
inline std::vector<std::vector<int32_t>> generate_synthetic(const SyntheticConfig& config, const SyntheticWorld& world) {
  config.validate();
  if (world.n_items != config.items || world.n_clusters != config.clusters)
    throw std::invalid_argument("generate_synthetic: the world was built for another config");
  using synthetic_detail::chance;
  using synthetic_detail::WeightedDraw;
  using synthetic_detail::zipf_weights;
  const int32_t C = config.clusters;

  // Popularity tables: clusters by rank, items by rank within each cluster, items overall.
  WeightedDraw cluster_rank(zipf_weights(C, config.popularity_offset));
  WeightedDraw noise_rank(zipf_weights(config.items, config.popularity_offset));
  std::vector<WeightedDraw> item_rank_in(static_cast<size_t>(C));
  for (int32_t c = 0; c < C; ++c)
    item_rank_in[size_t(c)] =
        WeightedDraw(zipf_weights(int32_t(world.cluster_items[size_t(c)].size()), config.popularity_offset));
  auto popular_item_in = [&](int32_t cluster, Rng& rng) {
    return world.cluster_items[size_t(cluster)][size_t(item_rank_in[size_t(cluster)](rng))];
  };

  std::vector<std::vector<int32_t>> sequences(size_t(config.users));
  for (int32_t user = 0; user < config.users; ++user) {
    Rng rng(random_bits(config.seed, synthetic_detail::kUserSeedStream, uint64_t(user)));

    // The user's preferred clusters: distinct, drawn by popularity.
    std::vector<int32_t> preferred;
    while (int32_t(preferred.size()) < config.preferred_clusters) {
      int32_t c = world.clusters_by_popularity[size_t(cluster_rank(rng))];
      if (std::find(preferred.begin(), preferred.end(), c) == preferred.end()) preferred.push_back(c);
    }
    auto preferred_cluster = [&] { return preferred[size_t(rng.below(preferred.size()))]; };
    auto jump_cluster = [&] {
      return chance(rng, config.preference) ? preferred_cluster()
                                            : world.clusters_by_popularity[size_t(cluster_rank(rng))];
    };
    auto noise_item = [&] {
      return chance(rng, config.preference) ? popular_item_in(preferred_cluster(), rng)
                                            : world.items_by_popularity[size_t(noise_rank(rng))];
    };

    double u = rng.uniform();
    int32_t length = config.min_length + int32_t(double(config.max_length - config.min_length + 1) * u * u);
    std::vector<int32_t>& sequence = sequences[size_t(user)];
    sequence.reserve(size_t(length));
    sequence.push_back(popular_item_in(preferred_cluster(), rng));
    sequence.push_back(popular_item_in(jump_cluster(), rng));
    while (int32_t(sequence.size()) < length) {
      if (chance(rng, config.noise)) {
        sequence.push_back(noise_item());
        continue;
      }
      int32_t last = sequence.back(), before_last = sequence[sequence.size() - 2];
      int32_t cluster = chance(rng, config.follow_cluster_rule) ? world.rule_cluster(world.cluster_of[size_t(before_last)])
                                                                : jump_cluster();
      sequence.push_back(chance(rng, config.follow_index_rule) ? world.rule_item(cluster, last)
                                                               : popular_item_in(cluster, rng));
    }
  }
  return sequences;
}

inline std::vector<std::vector<int32_t>> generate_synthetic(const SyntheticConfig& config) {
  return generate_synthetic(config, build_synthetic_world(config));
}

// S3-Rec's text format: one line per user, `user item1 item2 ...`, users numbered 1..U in order.
inline std::string to_s3rec_text(const std::vector<std::vector<int32_t>>& sequences) {
  std::string text;
  for (size_t user = 0; user < sequences.size(); ++user) {
    text += std::to_string(user + 1);
    for (int32_t item : sequences[user]) {
      text += ' ';
      text += std::to_string(item);
    }
    text += '\n';
  }
  return text;
}

// What a generated dataset looks like, and how strongly its order follows the hidden rules.
struct SyntheticStatistics {
  int64_t users = 0;
  int64_t items_used = 0;               // distinct items that occur
  int64_t interactions = 0;
  int32_t shortest = 0, longest = 0;
  double mean_length = 0;
  double top10_item_share = 0;          // share of all interactions that go to the 10 most frequent items
  // Over the steps t >= 2:
  double follows_cluster_rule = 0;      // cluster[t] == successor[cluster[t-2]]
  double follows_cluster_rule_one_back = 0;  // the same rule applied to the wrong item: successor[cluster[t-1]]
  double follows_index_rule = 0;        // item[t] == rule_item(cluster[t], item[t-1])

  std::string summary() const {
    char line[512];
    std::snprintf(line, sizeof line,
                  "users %lld, items %lld, interactions %lld, length %d..%d (mean %.2f), top-10 items %.1f%% of "
                  "interactions\nnext cluster = successor of the cluster two back: %.1f%% of steps (of the one "
                  "back: %.1f%%); next item = index rule: %.1f%%\n",
                  (long long)users, (long long)items_used, (long long)interactions, shortest, longest, mean_length,
                  100 * top10_item_share, 100 * follows_cluster_rule, 100 * follows_cluster_rule_one_back,
                  100 * follows_index_rule);
    return line;
  }
};

inline SyntheticStatistics synthetic_statistics(const std::vector<std::vector<int32_t>>& sequences,
                                                const SyntheticWorld& world) {
  SyntheticStatistics stats;
  stats.users = int64_t(sequences.size());
  std::vector<int64_t> frequency(size_t(world.n_items) + 1, 0);
  int64_t steps = 0, cluster_hits = 0, one_back_hits = 0, index_hits = 0;
  stats.shortest = sequences.empty() ? 0 : int32_t(sequences[0].size());
  for (const std::vector<int32_t>& sequence : sequences) {
    stats.interactions += int64_t(sequence.size());
    stats.shortest = std::min(stats.shortest, int32_t(sequence.size()));
    stats.longest = std::max(stats.longest, int32_t(sequence.size()));
    for (int32_t item : sequence) {
      if (item < 1 || item > world.n_items)
        throw std::out_of_range("synthetic_statistics: item " + std::to_string(item) + " is outside 1.." +
                                std::to_string(world.n_items));
      ++frequency[size_t(item)];
    }
    for (size_t t = 2; t < sequence.size(); ++t) {
      int32_t two_back = world.cluster_of[size_t(sequence[t - 2])], one_back = world.cluster_of[size_t(sequence[t - 1])];
      int32_t cluster = world.cluster_of[size_t(sequence[t])];
      ++steps;
      cluster_hits += cluster == world.rule_cluster(two_back);
      one_back_hits += cluster == world.rule_cluster(one_back);
      index_hits += sequence[t] == world.rule_item(cluster, sequence[t - 1]);
    }
  }
  for (size_t i = 1; i < frequency.size(); ++i) stats.items_used += frequency[i] > 0;
  std::sort(frequency.begin(), frequency.end(), std::greater<>());
  int64_t top10 = 0;
  for (size_t i = 0; i < std::min<size_t>(10, frequency.size()); ++i) top10 += frequency[i];
  double interactions = double(std::max<int64_t>(stats.interactions, 1)), denominator = double(std::max<int64_t>(steps, 1));
  stats.mean_length = double(stats.interactions) / double(std::max<int64_t>(stats.users, 1));
  stats.top10_item_share = double(top10) / interactions;
  stats.follows_cluster_rule = double(cluster_hits) / denominator;
  stats.follows_cluster_rule_one_back = double(one_back_hits) / denominator;
  stats.follows_index_rule = double(index_hits) / denominator;
  return stats;
}

// HR@10 and NDCG@10 of one baseline, averaged over the evaluated users.
struct RankingScore {
  double hit_rate = 0;  // HR@10 (= Recall@10 with one target)
  double ndcg = 0;      // NDCG@10
};

// Three count-based recommenders under euler's leave-one-out protocol (dataset.hpp's Split): a user
// with n >= 3 items is tested on s[n-1] given s[0..n-2]; the counts come from the training parts
// s[0..n-3] of all users (the whole sequence for n < 3). Full ranking over the K items, history
// items not excluded. A model's ties are broken by the next model down; items still tied with the
// target rank ahead of it (pessimistic ties, as in euler/train/metrics.hpp):
//   popularity    training-part frequency;
//   first_order   count of (last -> next) transitions, i.e. a first-order Markov chain;
//   second_order  count of (before_last, last -> next), falling back to first_order.
struct MarkovBaselines {
  int64_t evaluated_users = 0;
  RankingScore popularity, first_order, second_order;

  std::string summary() const {
    char line[512];
    std::snprintf(line, sizeof line,
                  "leave-one-out over %lld users, full ranking, HR@10 / NDCG@10:\n"
                  "  popularity          %.4f / %.4f\n  first-order Markov  %.4f / %.4f\n"
                  "  second-order Markov %.4f / %.4f\n",
                  (long long)evaluated_users, popularity.hit_rate, popularity.ndcg, first_order.hit_rate,
                  first_order.ndcg, second_order.hit_rate, second_order.ndcg);
    return line;
  }
};

inline MarkovBaselines evaluate_markov_baselines(const std::vector<std::vector<int32_t>>& sequences, int32_t n_items) {
  // Transitions are kept as sorted integer keys, (before_last * (K+1) + last) * (K+1) + next, which
  // fit in int64 for K below 2 million; memory grows with the data, not with K^2.
  if (n_items < 1 || n_items >= 2'000'000)
    throw std::invalid_argument("evaluate_markov_baselines: n_items must be in 1..1999999, got " + std::to_string(n_items));
  const int64_t K1 = int64_t(n_items) + 1;  // ids 0..K
  auto check = [&](int32_t item) {
    if (item < 1 || item > n_items)
      throw std::out_of_range("evaluate_markov_baselines: item " + std::to_string(item) + " is outside 1.." +
                              std::to_string(n_items));
  };

  // Counts over the training parts.
  std::vector<int64_t> frequency(size_t(K1), 0);
  std::vector<int64_t> first_order_keys;   // last * (K+1) + next
  std::vector<int64_t> second_order_keys;  // (before_last * (K+1) + last) * (K+1) + next
  for (const std::vector<int32_t>& sequence : sequences) {
    size_t train_length = sequence.size() >= 3 ? sequence.size() - 2 : sequence.size();
    for (size_t t = 0; t < train_length; ++t) {
      check(sequence[t]);
      ++frequency[size_t(sequence[t])];
      if (t >= 1) first_order_keys.push_back(sequence[t - 1] * K1 + sequence[t]);
      if (t >= 2) second_order_keys.push_back((sequence[t - 2] * K1 + sequence[t - 1]) * K1 + sequence[t]);
    }
  }
  std::sort(first_order_keys.begin(), first_order_keys.end());
  std::sort(second_order_keys.begin(), second_order_keys.end());
  // counts[next] = how often the context `prefix` (a key without its last digit) was followed by next.
  auto count_followers = [&](const std::vector<int64_t>& keys, int64_t prefix, std::vector<int64_t>& counts) {
    std::fill(counts.begin(), counts.end(), 0);
    int64_t first_key = prefix * K1;
    for (auto key = std::lower_bound(keys.begin(), keys.end(), first_key); key != keys.end() && *key < first_key + K1; ++key)
      ++counts[size_t(*key - first_key)];
  };

  // Rank of the target, 0 = top: the items ordered by their first key, ties broken by the next key;
  // an item whose keys all equal the target's ranks ahead of it.
  auto rank_of = [&](int32_t target, std::initializer_list<const std::vector<int64_t>*> keys) {
    int64_t ahead = 0;
    for (int32_t item = 1; item <= n_items; ++item) {
      if (item == target) continue;
      int order = 0;  // > 0: item ahead of the target, < 0: behind, 0: tied on every key
      for (const std::vector<int64_t>* key : keys) {
        int64_t mine = (*key)[size_t(item)], theirs = (*key)[size_t(target)];
        if (mine != theirs) {
          order = mine > theirs ? 1 : -1;
          break;
        }
      }
      ahead += order >= 0;
    }
    return ahead;
  };
  auto add = [](RankingScore& score, int64_t rank) {
    if (rank < 10) {
      score.hit_rate += 1;
      score.ndcg += 1 / std::log2(double(rank) + 2);
    }
  };

  MarkovBaselines result;
  std::vector<int64_t> first_counts(static_cast<size_t>(K1)), second_counts(static_cast<size_t>(K1));
  for (const std::vector<int32_t>& sequence : sequences) {
    if (sequence.size() < 3) continue;
    size_t n = sequence.size();
    int32_t target = sequence[n - 1], last = sequence[n - 2], before_last = sequence[n - 3];
    check(target);
    check(last);
    count_followers(first_order_keys, last, first_counts);
    count_followers(second_order_keys, before_last * K1 + last, second_counts);
    add(result.popularity, rank_of(target, {&frequency}));
    add(result.first_order, rank_of(target, {&first_counts, &frequency}));
    add(result.second_order, rank_of(target, {&second_counts, &first_counts, &frequency}));
    ++result.evaluated_users;
  }
  double users = double(std::max<int64_t>(result.evaluated_users, 1));
  for (RankingScore* score : {&result.popularity, &result.first_order, &result.second_order}) {
    score->hit_rate /= users;
    score->ndcg /= users;
  }
  return result;
}

}  // namespace euler
