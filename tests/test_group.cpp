// Data-parallel training (train/group.hpp) without MPI: P ranks as P threads of this process, sharing
// a ThreadGroup. Checks that a batch's shares of dropout masks are the rows of the whole batch's masks,
// and that P = 1, 2 and 3 train the same model: the same losses at every step (to float rounding, the
// sums differ in order), identical replicas, the same metrics, and the same bits when run twice.
// tests/test_cli_mpi.cpp runs the same over MPI with the `euler` program.
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <euler/data/synthetic.hpp>
#include <euler/eulerformer.hpp>
#include <euler/train/trainer.hpp>

#include <barrier>
#include <cmath>
#include <thread>
#include <vector>

namespace test_group {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;

namespace {

// P ranks in one process: each sum adds the ranks' buffers in rank order, so every rank gets the same bits.
class ThreadGroup {
 public:
  explicit ThreadGroup(int size) : size_(size), sync_(size), slots_(size_t(size)) {}

  class Rank : public ProcessGroup {
   public:
    Rank(ThreadGroup& g, int rank) : g_(g), rank_(rank) {}
    int rank() const override { return rank_; }
    int size() const override { return g_.size_; }
    void sum(float* x, int64_t n) override { add(x, n); }
    void sum(double* x, int64_t n) override { add(x, n); }
    void sum(uint64_t* x, int64_t n) override { add(x, n); }
    std::vector<int64_t> gather(std::span<const int64_t> part) override {
      g_.slots_[size_t(rank_)] = {part.data(), int64_t(part.size())};
      g_.sync_.arrive_and_wait();
      std::vector<int64_t> all;
      for (const auto& [data, n] : g_.slots_) all.insert(all.end(), static_cast<const int64_t*>(data), static_cast<const int64_t*>(data) + n);
      g_.sync_.arrive_and_wait();
      return all;
    }

   private:
    template <class V>
    void add(V* x, int64_t n) {
      g_.slots_[size_t(rank_)] = {x, n};
      g_.sync_.arrive_and_wait();
      std::vector<V> total(size_t(n), V(0));
      for (const auto& [data, count] : g_.slots_)
        for (int64_t i = 0; i < n; ++i) total[size_t(i)] += static_cast<const V*>(data)[i];
      g_.sync_.arrive_and_wait();  // every rank has read every buffer
      std::copy(total.begin(), total.end(), x);
    }
    ThreadGroup& g_;
    int rank_;
  };

 private:
  int size_;
  std::barrier<> sync_;
  std::vector<std::pair<const void*, int64_t>> slots_;
};

Dataset group_dataset() {
  SyntheticConfig s;
  s.users = 120;
  return build_dataset(parse_interactions(to_s3rec_text(generate_synthetic(s)), "synthetic-120", Format::sequences));
}

EulerFormerConfig group_model(Objective objective) {
  EulerFormerConfig c;
  c.hidden_size = 16;
  c.inner_size = 32;
  c.n_layers = 2;
  c.n_heads = 2;
  c.max_len = 12;
  c.objective = objective;
  c.hidden_dropout_prob = c.attn_dropout_prob = 0.3;
  c.lamb = 1e-3;  // the contrastive loss on, with its dropout view
  return c;
}

TrainOptions group_options() {
  TrainOptions t;
  t.epochs = 2;
  t.batch_size = 50;  // 120 users: batches of 50, 50 and 20 rows (objective all)
  t.lr = 3e-3;
  t.seed = 11;
  t.threads = 1;
  t.verbose = t.progress = false;
  return t;
}

struct GroupRun {
  std::vector<std::vector<double>> step_losses;  // per rank: total loss of every step
  std::vector<nlohmann::json> reports;           // per rank: run()'s report
};

// Train with P ranks (P = 0: alone, no group).
GroupRun train_with(int P, const EulerFormerConfig& config, const TrainOptions& options, const Dataset& data) {
  GroupRun out;
  const int ranks = std::max(1, P);
  out.step_losses.resize(size_t(ranks));
  out.reports.resize(size_t(ranks));
  ThreadGroup group(ranks);
  auto rank_main = [&](int r) {
    Trainer<float> trainer(config, options, data);
    ThreadGroup::Rank me(group, r);
    if (P > 0) trainer.set_group(&me);
    trainer.on_step([&, r](const Trainer<float>::StepView& s) { out.step_losses[size_t(r)].push_back(s.loss); });
    out.reports[size_t(r)] = trainer.run();
  };
  std::vector<std::thread> threads;
  for (int r = 1; r < ranks; ++r) threads.emplace_back(rank_main, r);
  rank_main(0);
  for (auto& t : threads) t.join();
  return out;
}

}  // namespace

TEST_CASE("group: batch shares are contiguous, in rank order, and cover the batch") {
  for (int P : {1, 2, 3, 7})
    for (int64_t rows : {0, 1, 2, 5, 50}) {
      int64_t next = 0;
      for (int r = 0; r < P; ++r) {
        auto [first, end] = batch_share(rows, r, P);
        CHECK(first == next);
        CHECK(end - first >= rows / P);
        CHECK(end - first <= rows / P + 1);
        next = end;
      }
      CHECK(next == rows);
    }
}

TEST_CASE("group: a share's dropout mask is its rows of the whole batch's mask, and the Rng moves on as for the whole") {
  const int64_t rows = 5, per_row = 37;
  Rng whole(3);
  DropoutMask all = draw_dropout_mask(whole, uint64_t(rows * per_row), 0.4);
  for (auto [first, end] : {std::pair<int64_t, int64_t>{0, 2}, {2, 5}, {4, 5}}) {
    Rng part(3);
    part.set_row_share({first, end - first, rows});
    DropoutMask mine = draw_dropout_mask(part, uint64_t((end - first) * per_row), 0.4);
    CHECK(part.counter() == whole.counter());
    int differ = 0;
    for (int64_t i = 0; i < (end - first) * per_row; ++i) differ += mine.keep(i) != all.keep(first * per_row + i);
    CHECK(differ == 0);
  }
  Rng bad(3);
  bad.set_row_share({0, 2, 5});
  CHECK_THROWS_AS(bad.reserve_rows(7), ShapeError);  // 7 numbers are not 2 rows' worth
}

TEST_CASE("group: 1, 2 and 3 ranks train the same model as one process (losses, replicas, metrics)") {
  Dataset data = group_dataset();
  for (Objective objective : {Objective::all, Objective::last}) {
    CAPTURE(to_string(objective));
    EulerFormerConfig config = group_model(objective);
    TrainOptions options = group_options();
    if (objective == Objective::last) options.batch_size = 400, options.epochs = 1;  // thousands of prefixes
    GroupRun alone = train_with(0, config, options, data);
    const std::vector<double>& reference = alone.step_losses[0];
    REQUIRE(reference.size() >= 3);
    for (int P : {1, 2, 3}) {
      CAPTURE(P);
      GroupRun run = train_with(P, config, options, data);
      for (int r = 0; r < P; ++r) {
        REQUIRE(run.step_losses[size_t(r)].size() == reference.size());
        for (size_t i = 0; i < reference.size(); ++i)
          CHECK(std::abs(run.step_losses[size_t(r)][i] - reference[i]) <= 1e-5 * std::abs(reference[i]));
        // check_replicas gathered every rank's parameter hash and found them equal
        if (P > 1) CHECK(run.reports[size_t(r)].at("processes") == P);
        else CHECK_FALSE(run.reports[size_t(r)].contains("processes"));
        CHECK(run.reports[size_t(r)]["valid_ndcg@10"] == run.reports[0]["valid_ndcg@10"]);
      }
      CHECK(std::abs(double(run.reports[0]["test_ndcg@10"]) - double(alone.reports[0]["test_ndcg@10"])) <= 0.02);
      if (P == 1) CHECK(run.reports[0].dump() == alone.reports[0].dump());  // a group of one is no group
    }
  }
}

TEST_CASE("group: two ranks run twice give the same bits; BERT4Rec's masks are shared too") {
  Dataset data = group_dataset();
  EulerFormerConfig config = group_model(Objective::all);
  GroupRun a = train_with(2, config, group_options(), data), b = train_with(2, config, group_options(), data);
  CHECK(a.reports[0]["parameter_checksum"] == b.reports[0]["parameter_checksum"]);
  CHECK(a.step_losses[0] == b.step_losses[0]);

  config.backbone = Backbone::bert4rec;
  config.pos = PosScheme::learned;
  GroupRun alone = train_with(0, config, group_options(), data), two = train_with(2, config, group_options(), data);
  REQUIRE(two.step_losses[0].size() == alone.step_losses[0].size());
  for (size_t i = 0; i < alone.step_losses[0].size(); ++i)
    CHECK(std::abs(two.step_losses[0][i] - alone.step_losses[0][i]) <= 1e-5 * std::abs(alone.step_losses[0][i]));
}

TEST_CASE("group: replicas that drifted apart are an error after training, naming the rank") {
  Dataset data = group_dataset();
  TrainOptions options = group_options();
  options.epochs = 1;
  ThreadGroup group(2);
  std::string errors[2];
  auto rank_main = [&](int r) {
    Trainer<float> trainer(group_model(Objective::all), options, data);
    ThreadGroup::Rank me(group, r);
    trainer.set_group(&me);
    if (r == 1)  // as a bit flip or a rank with other code would: one parameter of rank 1 changes
      trainer.on_step([&trainer](const Trainer<float>::StepView& s) {
        if (s.step == 1) trainer.model().parameters().values().data[0] += 1e-3f;
      });
    try {
      trainer.run();
    } catch (const std::exception& e) {
      errors[r] = e.what();
    }
  };
  std::thread other(rank_main, 1);
  rank_main(0);
  other.join();
  for (const std::string& e : errors) CHECK_MESSAGE(e.find("replicas differ after training: rank(s) 1 against rank 0") != std::string::npos, e);
}

}  // namespace test_group
