// Edge cases that must train and evaluate without NaN, crash or garbage: all-padding rows, users
// with 1 or 2 interactions, items that never appear in training, complex pairs of magnitude 0,
// lists of length N = 1, and a catalogue of one item.
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <euler/check/finite.hpp>
#include <euler/euler.hpp>
#include <euler/train/trainer.hpp>


#include <cmath>
#include <filesystem>
#include <fstream>

namespace test_edge_cases {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string& name) {
  fs::path dir = euler_test::scratch_dir("edge") / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

Dataset dataset_of(const std::string& text) { return build_dataset(parse_interactions(text, "edge", Format::sequences)); }

// `users` users of `length` items out of `items` (user u: 1 + (3u + k) mod items, k = 0..length-1).
std::string sequences(int users, int length, int items, int first_user = 0) {
  std::string text;
  for (int u = first_user; u < first_user + users; ++u) {
    text += std::to_string(1000 + u);  // user ids 1000, 1001, ...
    for (int k = 0; k < length; ++k) text += " " + std::to_string(1 + (3 * u + k) % items);
    text += "\n";
  }
  return text;
}

EulerFormerConfig small_model(Backbone backbone = Backbone::sasrec, Objective objective = Objective::last, int N = 5) {
  EulerFormerConfig c;
  c.hidden_size = 8;
  c.inner_size = 16;
  c.n_layers = 1;
  c.max_len = N;
  c.backbone = backbone;
  c.objective = objective;
  return c;
}

// Every number in a trainer's report is finite, and every metric in [0, 1].
void check_report(const nlohmann::json& report) {
  for (auto& [key, value] : report.items()) {
    CAPTURE(key);
    REQUIRE(value.is_number());
    CHECK(std::isfinite(value.get<double>()));
    if (key.find('@') != std::string::npos) CHECK((value.get<double>() >= 0 && value.get<double>() <= 1));
  }
}

// Train (checkpoints in a temporary folder), then resume from the checkpoint to check it loads.
nlohmann::json train(const Dataset& data, const EulerFormerConfig& c, int epochs = 2, bool exclude_history = false) {
  TrainOptions t;
  t.epochs = epochs;
  t.batch_size = 16;
  t.verbose = t.progress = false;
  t.exclude_history = exclude_history;
  t.out_dir = temp_dir("run");
  Trainer<float> trainer(c, t, data);
  nlohmann::json report = trainer.run();
  check_report(report);
  CHECK_FALSE(first_nonfinite_parameter(trainer.model().parameters()));
  Trainer<float> again(c, t, data);
  again.resume(t.out_dir + "/checkpoint.safetensors");
  CHECK(again.state().epoch == epochs);
  return report;
}

// One forward and backward of `ids` [B, N] with `targets`; every value and gradient finite.
void check_step(const EulerFormer<float>& model, const Tensor<int32_t>& ids, const Tensor<int32_t>& targets) {
  Tape<float> tape;
  Rng rng(5);
  Context<float> ctx{tape, model.parameters(), /*dropout_on=*/true, rng};
  Losses<float> losses = model.loss(ctx, {ids.view(), targets.view()});
  tape.backward(losses.total, BackwardOptions{.keep_intermediate_grads = true});
  NonFinite bad = find_nonfinite(tape);
  CHECK_MESSAGE(!bad, bad.message());
  CHECK(std::isfinite(losses.total.value()[0]));
}

}  // namespace

TEST_CASE("edge: all-padding rows give finite losses, gradients and scores, for every scheme and backbone") {
  for (PosScheme pos : {PosScheme::none, PosScheme::learned, PosScheme::sinusoidal, PosScheme::rope, PosScheme::euler}) {
    for (auto [backbone, objective] : {std::pair{Backbone::sasrec, Objective::last}, {Backbone::sasrec, Objective::all},
                                       {Backbone::bert4rec, Objective::all}}) {
      CAPTURE(to_string(pos));
      CAPTURE(to_string(backbone));
      CAPTURE(to_string(objective));
      EulerFormerConfig c = small_model(backbone, objective);
      c.pos = pos;
      c.n_items = 10;
      EulerFormer<float> model(c, 11);
      Tensor<int32_t> ids = Tensor<int32_t>::from({3, 5}, {0, 0, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0});
      Tensor<int32_t> targets = objective == Objective::last && backbone == Backbone::sasrec
                                    ? Tensor<int32_t>::from({3}, {4, 5, 0})
                                    : Tensor<int32_t>::from({3, 5}, {0, 0, 0, 0, 0, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0});
      check_step(model, ids, targets);
      Tape<float> tape;
      NoGrad<float> no_grad(tape);
      Rng rng(0);
      Context<float> ctx{tape, model.parameters(), false, rng};
      TensorView<float> scores = model.score(ctx, ids.view()).value();
      CHECK(first_nonfinite_index(scores.data, scores.numel()) == -1);
      // evaluate() with an empty history: one all-padding row.
      std::vector<int32_t> empty;
      std::span<const int32_t> history(empty);
      std::vector<int32_t> target{3};
      RankingMetrics metrics = evaluate(model, std::span<const std::span<const int32_t>>(&history, 1), target, RankingOptions{});
      CHECK(std::isfinite(metrics.value("ndcg@10")));
    }
  }
}

TEST_CASE("edge: users with 1 or 2 interactions train, and only users with 3 or more are evaluated") {
  std::string text = sequences(30, 6, 12) + "9001 3\n9002 4 5\n9003 7 8\n";  // three short users
  Dataset data = dataset_of(text);
  REQUIRE(data.n_users == 33);
  for (Objective objective : {Objective::last, Objective::all}) {
    CAPTURE(to_string(objective));
    nlohmann::json report = train(data, small_model(Backbone::sasrec, objective));
    CHECK(report["users"].get<int>() == 30);
    CHECK(report["test_count"].get<int>() == 30);
  }
  train(data, small_model(Backbone::bert4rec, Objective::all));
  // A user of 2 interactions is one training example for the per-prefix objective, of 1 none.
  Trainer<float> t(small_model(), TrainOptions{}, data);
  Dataset without = dataset_of(sequences(30, 6, 12));
  Trainer<float> base(small_model(), TrainOptions{}, without);
  CHECK(t.examples_per_epoch() == base.examples_per_epoch() + 2);
}

TEST_CASE("edge: items that never appear in training are still scored and ranked") {
  // Each user's last item (the test target) is an item no one has anywhere else.
  std::string text;
  for (int u = 0; u < 30; ++u) {
    text += std::to_string(1000 + u);
    for (int k = 0; k < 6; ++k) text += " " + std::to_string(1 + (3 * u + k) % 10);
    text += " " + std::to_string(100 + u) + "\n";  // new items 100, 101, ...
  }
  Dataset data = dataset_of(text);
  REQUIRE(data.n_items == 40);
  Split split = leave_one_out(data);
  for (int32_t u = 0; u < 30; ++u)
    for (int32_t item : split.train(u)) CHECK(std::stoi(data.item_token(item)) <= 10);
  for (Objective objective : {Objective::last, Objective::all}) {
    nlohmann::json report = train(data, small_model(Backbone::sasrec, objective));
    CHECK(report["test_count"].get<int>() == 30);
  }
  train(data, small_model(Backbone::bert4rec, Objective::all), 2, /*exclude_history=*/true);
}

TEST_CASE("edge: complex pairs of magnitude 0 (zero queries and keys, zero embeddings) train without NaN") {
  Dataset data = dataset_of(sequences(30, 6, 12));
  for (DeltaShape delta : {DeltaShape::scalar, DeltaShape::vector}) {
    EulerFormerConfig c = small_model(Backbone::sasrec, Objective::all);
    c.delta_shape = delta;
    c.lamb = 0.1;  // the phase contrastive loss reads the phases of the zero pairs too
    TrainOptions t;
    t.epochs = 1;
    t.batch_size = 16;
    t.verbose = t.progress = false;
    Trainer<float> trainer(c, t, data);
    Parameters<float>& p = trainer.model().parameters();
    for (const char* name : {"query", "key"})
      for (const char* part : {"weight", "bias"}) {
        TensorView<float> v = p.value(std::string("trm_encoder.layer.0.multi_head_attention.") + name + "." + part);
        std::fill(v.begin(), v.end(), 0.0f);
      }
    TensorView<float> table = p.value("item_embedding.weight");
    for (int64_t row = 0; row < table.shape[0]; ++row) table[row * 8] = table[row * 8 + 1] = 0.0f;  // pair 0 of every item

    Tensor<int32_t> ids = Tensor<int32_t>::from({2, 5}, {1, 2, 3, 0, 0, 4, 5, 6, 7, 8});
    Tensor<int32_t> targets = Tensor<int32_t>::from({2, 5}, {2, 3, 4, 0, 0, 5, 6, 7, 8, 9});
    check_step(trainer.model(), ids, targets);
    check_report(trainer.run());  // stops with a NonFiniteError on any NaN
  }
}

TEST_CASE("edge: lists of length N = 1 train and evaluate, for every objective and backbone") {
  Dataset data = dataset_of(sequences(30, 6, 12));
  for (auto [backbone, objective] : {std::pair{Backbone::sasrec, Objective::last}, {Backbone::sasrec, Objective::all},
                                     {Backbone::bert4rec, Objective::all}}) {
    CAPTURE(to_string(backbone));
    CAPTURE(to_string(objective));
    for (PosScheme pos : {PosScheme::euler, PosScheme::rope}) {
      EulerFormerConfig c = small_model(backbone, objective, /*N=*/1);
      c.pos = pos;
      CHECK(train(data, c)["test_count"].get<int>() == 30);
    }
  }
}

TEST_CASE("edge: a catalogue of one item trains, evaluates and ranks it first") {
  std::string text;
  for (int u = 0; u < 12; ++u) text += std::to_string(1000 + u) + " 7 7 7 7\n";
  Dataset data = dataset_of(text);
  REQUIRE(data.n_items == 1);
  REQUIRE(data.table_rows() == 2);
  for (auto [backbone, objective] : {std::pair{Backbone::sasrec, Objective::last}, {Backbone::sasrec, Objective::all},
                                     {Backbone::bert4rec, Objective::all}}) {
    CAPTURE(to_string(backbone));
    nlohmann::json report = train(data, small_model(backbone, objective));
    CHECK(report["test_hr@5"].get<double>() == 1.0);  // the only candidate is the target
    CHECK(report["test_mrr@10"].get<double>() == 1.0);
  }
  // With the history excluded, the target (also in the history) is still ranked, never dropped.
  nlohmann::json excluded = train(data, small_model(), 1, /*exclude_history=*/true);
  CHECK(excluded["test_count"].get<int>() == 12);
}

TEST_CASE("tests: a scratch directory is fresh even when an earlier process with this pid left one") {
  // Pids are reused: a directory named by the pid alone once held a stale checkpoint that failed CI.
  fs::path stale = fs::temp_directory_path() / ("euler_stale_probe_" + std::to_string(::getpid()));
  fs::create_directories(stale / "run");
  std::ofstream(stale / "run" / "best.safetensors") << "left by another process";
  fs::path dir = euler_test::scratch_dir("stale_probe");
  CHECK(dir == stale);
  CHECK(fs::is_directory(dir));
  CHECK_FALSE(fs::exists(dir / "run"));
  CHECK(euler_test::scratch_dir("stale_probe") == dir);  // one directory per tag and process
}

}  // namespace test_edge_cases
