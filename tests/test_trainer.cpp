// The trainer: it learns the bundled data's structure, is deterministic for a seed, and a run resumed
// from a checkpoint ends with exactly the metrics of an uninterrupted one.
#include <doctest/doctest.h>

#include "test_helpers.hpp"

#include <euler/data/synthetic.hpp>
#include <euler/train/trainer.hpp>

#include <filesystem>

namespace test_trainer {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

namespace {
// A small dataset from the bundled generator: 150 users.
Dataset small_dataset() {
  SyntheticConfig s;
  s.users = 150;
  auto sequences = generate_synthetic(s);
  std::string text = to_s3rec_text(sequences);
  return build_dataset(parse_interactions(text, "synthetic-300", Format::sequences));
}
EulerFormerConfig small_model(Objective objective) {
  EulerFormerConfig c;
  c.hidden_size = 16;
  c.inner_size = 32;
  c.n_layers = 1;
  c.max_len = 20;
  c.objective = objective;
  c.hidden_dropout_prob = c.attn_dropout_prob = 0.2;
  return c;
}
TrainOptions small_options(int epochs, const std::string& out = "") {
  TrainOptions t;
  t.epochs = epochs;
  t.batch_size = 64;
  t.lr = 3e-3;
  t.seed = 7;
  t.threads = 2;
  t.verbose = t.progress = false;
  t.out_dir = out;
  return t;
}
std::string temp_dir(const std::string& name) {
  fs::path dir = euler_test::scratch_dir("trainer") / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}
}  // namespace

TEST_CASE("trainer: the same seed gives identical metrics") {
  Dataset data = small_dataset();
  Trainer<float> a(small_model(Objective::all), small_options(2), data);
  Trainer<float> b(small_model(Objective::all), small_options(2), data);
  CHECK(a.run().dump() == b.run().dump());
}

TEST_CASE("trainer: resuming from a checkpoint finishes with the metrics of an uninterrupted run") {
  Dataset data = small_dataset();
  for (Objective objective : {Objective::all, Objective::last}) {
    CAPTURE(to_string(objective));
    std::string dir_full = temp_dir("full"), dir_part = temp_dir("part");
    Trainer<float> full(small_model(objective), small_options(3, dir_full), data);
    nlohmann::json uninterrupted = full.run();
    CHECK(fs::exists(fs::path(dir_full) / "best.safetensors"));
    CHECK(fs::exists(fs::path(dir_full) / "log.jsonl"));

    Trainer<float> first(small_model(objective), small_options(1, dir_part), data);
    first.run();  // stops after epoch 1, leaving its checkpoint
    Trainer<float> second(small_model(objective), small_options(3, dir_part), data);
    second.resume((fs::path(dir_part) / "checkpoint.safetensors").string());
    CHECK(second.state().epoch == 1);
    nlohmann::json resumed = second.run();
    CHECK(resumed.dump() == uninterrupted.dump());
    // The log holds one line per epoch of the whole run.
    std::string log = read_file((fs::path(dir_part) / "log.jsonl").string());
    CHECK(std::count(log.begin(), log.end(), '\n') == 3);
    auto line = nlohmann::json::parse(log.substr(0, log.find('\n')));
    for (const char* key : {"epoch", "loss", "loss_ce", "loss_con", "valid_ndcg@10", "seconds", "seq_per_s"})
      CHECK_MESSAGE(line.contains(key), key);
  }
}

TEST_CASE("trainer: BERT4Rec trains and evaluates") {
  Dataset data = small_dataset();
  EulerFormerConfig c = small_model(Objective::all);
  c.backbone = Backbone::bert4rec;
  Trainer<float> t(c, small_options(1), data);
  nlohmann::json r = t.run();
  CHECK(r["test_count"].get<int64_t>() == 150);
  CHECK(r["test_ndcg@10"].get<double>() >= 0);
}

TEST_CASE("trainer: a resumed run refuses a checkpoint of another model, other data or other training options") {
  Dataset data = small_dataset();
  std::string dir = temp_dir("other");
  Trainer<float> first(small_model(Objective::all), small_options(1, dir), data);
  first.run();
  const std::string checkpoint = (fs::path(dir) / "checkpoint.safetensors").string();
  auto refusal = [&](const EulerFormerConfig& c, const TrainOptions& t, const Dataset& d) {
    Trainer<float> second(c, t, d);
    return euler_test::error_of<DataError>([&] { second.resume(checkpoint); });
  };
  EulerFormerConfig other = small_model(Objective::all);
  other.hidden_size = 8;
  CHECK_CONTAINS(refusal(other, small_options(2), data),
                 checkpoint + ": cannot resume with another model setting: hidden_size is 8 in this run and 16 in the checkpoint's");

  // The same number of items with other ids: two item tokens swapped.
  Dataset swapped = data;
  std::swap(swapped.item_tokens[3], swapped.item_tokens[4]);
  CHECK_CONTAINS(refusal(small_model(Objective::all), small_options(2), swapped),
                 ": cannot resume on synthetic-300, whose items differ: item 3 is '4' there and '3' in the checkpoint's run");
  // Fewer items (another filter): only the count is compared, so the sequences need not change.
  Dataset fewer = data;
  fewer.item_tokens.pop_back();
  fewer.n_items -= 1;
  CHECK_CONTAINS(refusal(small_model(Objective::all), small_options(2), fewer),
                 "whose n_items differs: " + std::to_string(fewer.n_items) + " items, the checkpoint's run had " + std::to_string(data.n_items));
  // The same items and users, other interactions.
  Dataset reordered = data;
  std::reverse(reordered.sequences[0].begin(), reordered.sequences[0].end());
  CHECK_CONTAINS(refusal(small_model(Objective::all), small_options(2), reordered), "whose interactions differ from the checkpoint's run");
  // Another learning rate, batch size or seed: two runs would be mixed.
  for (auto [key, change] : {std::pair<const char*, void (*)(TrainOptions&)>{"lr", [](TrainOptions& t) { t.lr = 1e-2; }},
                             {"batch_size", [](TrainOptions& t) { t.batch_size = 32; }},
                             {"seed", [](TrainOptions& t) { t.seed = 8; }}}) {
    CAPTURE(key);
    TrainOptions t = small_options(2);
    change(t);
    CHECK_CONTAINS(refusal(small_model(Objective::all), t, data),
                   std::string("cannot resume with another training option: ") + key + " is ");
  }
  // More epochs and another patience continue the run.
  TrainOptions longer = small_options(2);
  longer.patience = 30;
  Trainer<float> resumed(small_model(Objective::all), longer, data);
  resumed.resume(checkpoint);
  CHECK(resumed.state().epoch == 1);
}

TEST_CASE("trainer: all_windows trains on every window of a long history, each item predicted once") {
  CHECK(window_ends(450, 200, true) == std::vector<int32_t>{450, 250, 50});
  CHECK(window_ends(450, 200, false) == std::vector<int32_t>{450});
  CHECK(window_ends(201, 200, true) == std::vector<int32_t>{201});  // 200 inputs, 200 targets: one window
  CHECK(window_ends(202, 200, true) == std::vector<int32_t>{202, 2});
  CHECK(window_ends(1, 200, true).empty());  // nothing to predict

  // The windows of 1..9 with N = 3 (ends 9, 6, 3): inputs and targets, each item 2..9 a target once.
  std::vector<int32_t> seq = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  std::vector<std::vector<int32_t>> ids, targets;
  for (int32_t end : window_ends(9, 3, true)) {
    std::vector<int32_t> i(3, -1), t(3, -1);
    fill_window(std::span<const int32_t>(seq).first(size_t(end)), 3, i.data(), t.data());
    ids.push_back(i), targets.push_back(t);
  }
  CHECK(ids == std::vector<std::vector<int32_t>>{{6, 7, 8}, {3, 4, 5}, {1, 2, 0}});
  CHECK(targets == std::vector<std::vector<int32_t>>{{7, 8, 9}, {4, 5, 6}, {2, 3, 0}});

  Dataset data = small_dataset();
  TrainOptions windows = small_options(1);
  windows.all_windows = true;
  // Every training sequence of length L (its last two items held out) gives ceil((L - 1) / N) windows.
  Trainer<float> one(small_model(Objective::all), small_options(1), data), all(small_model(Objective::all), windows, data);
  int64_t expected = 0, users = 0;
  for (size_t u = 0; u < data.sequences.size(); ++u) {
    int64_t length = int64_t(all.split().train(int32_t(u)).size());
    if (length >= 2) expected += (length - 1 + 19) / 20, ++users;
  }
  CHECK(one.examples_per_epoch() == users);
  CHECK(all.examples_per_epoch() == expected);
  CHECK(expected > users);  // the data has users longer than N + 1 = 21

  // With N beyond every history there is one window per user either way: the same run, bit for bit.
  EulerFormerConfig long_window = small_model(Objective::all);
  long_window.max_len = 200;
  Trainer<float> a(long_window, small_options(1), data), b(long_window, windows, data);
  CHECK(a.examples_per_epoch() == b.examples_per_epoch());
  CHECK(a.run().dump() == b.run().dump());
}

TEST_CASE("trainer: the output directory is locked for the whole run; a second writer is refused naming the holder's pid") {
  Dataset data = small_dataset();
  std::string dir = temp_dir("locked");
  std::string expected = dir + ": this process (pid " + std::to_string(::getpid()) +
                         ") is writing into this directory; wait for it to end, or use another output directory";
  {
    DirectoryLock held(dir);  // as another run's lock would
    Trainer<float> second(small_model(Objective::all), small_options(1, dir), data);
    std::string message;
    try {
      second.run();
    } catch (const IoError& e) {
      message = e.what();
    }
    CHECK(message == expected);
    CHECK_FALSE(fs::exists(dir + "/log.jsonl"));  // refused before anything was written
    CHECK(read_file(held.path()) == std::to_string(::getpid()) + "\n");
    // A second lock in this process is refused as well.
    CHECK_THROWS_WITH_AS(DirectoryLock{dir}, expected.c_str(), IoError);
  }
  // Released with the lock object, and by run() when it ends: runs one after the other are fine.
  Trainer<float> first(small_model(Objective::all), small_options(1, dir), data);
  first.run();
  Trainer<float> again(small_model(Objective::all), small_options(2, dir), data);
  again.resume(dir + "/checkpoint.safetensors");
  CHECK(again.run()["epochs"].get<int>() == 2);
  DirectoryLock after(dir);
}

TEST_CASE("trainer: on_step sees every step's gradients, and each epoch records how the rotation learned") {
  Dataset data = small_dataset();
  EulerFormerConfig c = small_model(Objective::all);
  c.n_layers = 2;
  c.lamb = 1e-3;
  REQUIRE(c.pos == PosScheme::euler);
  Trainer<float> trainer(c, small_options(2), data);
  const std::string delta1 = "trm_encoder.layer.1.multi_head_attention.euler.delta";
  // The watcher's statistics, computed again here from what the callback sees.
  std::vector<std::vector<double>> grads(2);  // [epoch][step]: dL/d delta of layer 1
  int64_t last_step = 0;
  trainer.on_step([&](const Trainer<float>::StepView& s) {
    REQUIRE((s.epoch == 1 || s.epoch == 2));
    CHECK(s.step == (int64_t(grads[size_t(s.epoch - 1)].size()) + 1));
    CHECK(s.loss == doctest::Approx(s.ce + s.contrastive).epsilon(1e-5));
    grads[size_t(s.epoch - 1)].push_back(double(s.parameters.grad(delta1)[0]));
    last_step = s.step;
  });
  std::vector<nlohmann::json> seen;
  trainer.on_epoch([&](const nlohmann::json& line) { seen.push_back(line); });
  trainer.run();
  REQUIRE(seen.size() == 2);
  CHECK(seen == trainer.history());
  CHECK(last_step == (trainer.examples_per_epoch() + 63) / 64);
  for (size_t e = 0; e < 2; ++e) {
    const nlohmann::json& line = seen[e];
    CAPTURE(line.dump());
    const std::vector<double>& g = grads[e];
    double mean = 0, squares = 0;
    int positive = 0;
    for (double x : g) mean += x, positive += x > 0;
    mean /= double(g.size());
    for (double x : g) squares += (x - mean) * (x - mean);
    CHECK(line["l1_delta_grad_mean"].get<double>() == doctest::Approx(mean).epsilon(1e-6));
    CHECK(line["l1_delta_grad_sd"].get<double>() == doctest::Approx(std::sqrt(squares / double(g.size() - 1))).epsilon(1e-6));
    CHECK(line["l1_delta_grad_positive"].get<double>() == doctest::Approx(double(positive) / double(g.size())));
    CHECK(line["l1_delta_grad_sd"].get<double>() > 0);
    for (const char* key : {"l0_delta", "l0_b", "l1_b_grad_mean", "l0_query_phase_concentration", "l1_key_phase_concentration"})
      CHECK(line.contains(key));
    for (const char* key : {"l0_query_phase_concentration", "l1_key_phase_concentration"}) {
      CHECK(line[key].get<double>() > 0);
      CHECK(line[key].get<double>() < 1);
    }
  }
  // Training moved delta from its initial value.
  CHECK(seen[1]["l1_delta"].get<double>() != doctest::Approx(c.init_factor).epsilon(1e-7));

  // Nothing to watch without the Euler rotation.
  c.pos = PosScheme::rope;
  Trainer<float> rope(c, small_options(1), data);
  rope.run();
  CHECK_FALSE(rope.history()[0].contains("l0_delta"));
}

TEST_CASE("trainer: phase_concentration is |mean of e^{i theta}| over the real positions") {
  Tensor<int32_t> ids({1, 3});
  ids[0] = 5, ids[1] = 7, ids[2] = 0;  // the third position is padding
  Tensor<double> phases({1, 3, 2});
  for (int i = 0; i < 6; ++i) phases[i] = 0.25;
  phases[4] = phases[5] = 2.0;  // padding: ignored
  CHECK(phase_concentration<double>(phases.view(), ids.view()) == doctest::Approx(1.0));
  phases[0] = 0, phases[1] = 0.5 * M_PI, phases[2] = M_PI, phases[3] = -0.5 * M_PI;  // four quarter turns
  CHECK(phase_concentration<double>(phases.view(), ids.view()) == doctest::Approx(0.0).epsilon(1e-12));
  phases[2] = 0, phases[3] = 0.5 * M_PI;  // two at 0, two at pi/2: |(2 + 2i) / 4|
  CHECK(phase_concentration<double>(phases.view(), ids.view()) == doctest::Approx(std::sqrt(0.5)));
}

TEST_CASE("trainer: valid_metric picks the best epoch, and its cutoff is reported") {
  // Run A picks by NDCG@10; among the metrics A's log reports, one peaks in another epoch. Run B, the
  // same run picking by that metric, must keep that epoch (training is the same: patience never ends it).
  Dataset data = small_dataset();
  TrainOptions t = small_options(6);
  t.patience = 100;
  auto best_epoch_by = [](const std::vector<nlohmann::json>& history, const std::string& metric) {
    int best = 0;
    double best_value = -1;
    for (const nlohmann::json& line : history)
      if (line.at("valid_" + metric).get<double>() > best_value) best_value = line["valid_" + metric], best = line["epoch"];
    return best;
  };
  Trainer<float> a(small_model(Objective::all), t, data);
  nlohmann::json result_a = a.run();
  CHECK(result_a["best_epoch"] == best_epoch_by(a.history(), "ndcg@10"));
  std::string other;
  for (const char* m : {"hr@5", "mrr@5", "hr@20", "mrr@20", "ndcg@20", "hr@10", "mrr@10", "ndcg@5"})
    if (other.empty() && best_epoch_by(a.history(), m) != result_a["best_epoch"]) other = m;
  REQUIRE_MESSAGE(!other.empty(), "every metric peaked in the same epoch; change the seed of this test");
  t.valid_metric = other;
  Trainer<float> b(small_model(Objective::all), t, data);
  nlohmann::json result_b = b.run();
  CAPTURE(other);
  CHECK(result_b["best_epoch"] == best_epoch_by(b.history(), other));
  CHECK(result_b["best_epoch"] != result_a["best_epoch"]);
  // A cutoff outside 5, 10, 20 is evaluated and reported too.
  t.valid_metric = "recall@30";
  t.epochs = 1;
  Trainer<float> c(small_model(Objective::all), t, data);
  nlohmann::json result_c = c.run();
  CHECK(result_c.contains("valid_hr@30"));
  CHECK(result_c.contains("test_ndcg@30"));
  t.valid_metric = "auc@10";
  CHECK_THROWS_WITH_AS(Trainer<float>(small_model(Objective::all), t, data), doctest::Contains("unknown metric \"auc@10\""),
                       std::invalid_argument);
}

TEST_CASE("trainer: a run over its memory limit only because the layers keep their intermediates recomputes them, with the same bits") {
  Dataset data = small_dataset();
  Trainer<float> recomputing(small_model(Objective::all), small_options(1), data);
  recomputing.model().set_keep_bytes(0);
  MemoryShape without = recomputing.memory_shape(), with = without;
  with.keep_bytes = FusedLayerSpec{}.keep_bytes;
  const double kept = estimate_memory(with).total(), recomputed = estimate_memory(without).total();
  REQUIRE(kept > recomputed);
  TrainOptions between = small_options(1);
  between.max_memory = int64_t((kept + recomputed) / 2);
  Trainer<float> limited(small_model(Objective::all), between, data);
  REQUIRE(limited.model().keep_bytes() == FusedLayerSpec{}.keep_bytes);
  std::string metrics = limited.run().dump();
  CHECK(limited.model().keep_bytes() == 0);
  CHECK(metrics == recomputing.run().dump());
  // Below what even recomputing needs: refused before training.
  TrainOptions below = small_options(1);
  below.max_memory = int64_t(recomputed / 2);
  Trainer<float> refused(small_model(Objective::all), below, data);
  CHECK_THROWS_AS(refused.run(), MemoryLimitError);
  CHECK(refused.state().epoch == 0);
}

}  // namespace test_trainer
