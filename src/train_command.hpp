// `euler train`, `euler eval` and `euler recommend`: the main job and its two companions.
#pragma once

#include <cxxopts.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <ctime>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>
#include <tuple>
#include <unordered_map>

#include <euler/plot/training_curves.hpp>
#include <euler/train/trainer.hpp>

#include "common_options.hpp"
#include "device_option.hpp"
#include "recbole_config.hpp"

namespace euler::cli {

// How one run of `euler train` is set up beyond its model config and training options.
struct RunSettings {
  int64_t keep_bytes = 0;  // the fused layer's keep budget (--keep-mb)
  std::string device;      // cpu | cuda
  std::string resume;      // a checkpoint to continue from (empty: start afresh)
  std::string plot_dir;    // training curves (empty: none)
  std::string command;     // recorded in result.json
};

inline nlohmann::json train_one_run(const EulerFormerConfig& c, const TrainOptions& t, const Dataset& data, const RunSettings& run) {
  Trainer<float> trainer(c, t, data);
  trainer.model().set_keep_bytes(run.keep_bytes);
  trainer.set_command(run.command);
  if (!run.resume.empty()) trainer.resume(run.resume);
  std::unique_ptr<StepBackend<float>> gpu = step_backend(run.device, trainer.model(), t.verbose);
  trainer.set_step_backend(gpu.get());
  trainer.set_group(process_group());  // under mpirun: this rank's share of every batch
  nlohmann::json result = trainer.run();
  if (!run.plot_dir.empty() && process_rank() == 0)
    plot::write_training_curves(run.plot_dir, trainer.epochs(), std::filesystem::path(data.source).filename().string());
  return result;
}

// "1,2,3" -> {1, 2, 3}: distinct non-negative integers.
inline std::vector<uint64_t> parse_seeds(const std::string& text) {
  std::vector<uint64_t> seeds;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    uint64_t seed = 0;
    auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), seed);
    if (item.empty() || error != std::errc() || end != item.data() + item.size())
      throw cxxopts::exceptions::exception("--seeds: '" + item + "' is not a seed (expected a list like 1,2,3)");
    if (std::find(seeds.begin(), seeds.end(), seed) != seeds.end())
      throw cxxopts::exceptions::exception("--seeds: " + item + " is given twice");
    seeds.push_back(seed);
  }
  if (seeds.empty()) throw cxxopts::exceptions::exception("--seeds: no seed given (expected a list like 1,2,3)");
  return seeds;
}

// A seed's run that finished before (its result.json), or null. A result.json written with other
// settings is an error naming the setting: results of different runs are never mixed.
inline nlohmann::json finished_run(const EulerFormerConfig& c, const TrainOptions& t) {
  if (t.out_dir.empty()) return nullptr;
  std::string file = (std::filesystem::path(t.out_dir) / "result.json").string();
  if (!std::filesystem::exists(file)) return nullptr;
  nlohmann::json stored;
  try {
    stored = nlohmann::json::parse(read_file(file));
    nlohmann::json model_now = c.to_json(), train_now = t.to_json();
    model_now.erase("n_items");  // set from the data, which the run's items are checked against elsewhere
    train_now.erase("threads");  // the thread count changes no result
    // A setting newer than the file is missing there; it ran with that setting's default.
    const nlohmann::json model_default = EulerFormerConfig{}.to_json(), train_default = TrainOptions{}.to_json();
    for (auto [what, now, before, fallback] : {std::tuple{"model setting", model_now, stored.at("config"), model_default},
                                               std::tuple{"training option", train_now, stored.at("train"), train_default}})
      for (const auto& [key, value] : now.items())
        if (!before.contains(key) ? fallback.value(key, nlohmann::json()) != value : before[key] != value)
          throw DataError(file + ": a finished run with another " + what + ": " + key + " is " +
                          (before.contains(key) ? before[key].dump() : "missing") + " there, " + value.dump() +
                          " now; use another --out, or remove " + t.out_dir + " to train it again");
    return stored.at("result");
  } catch (const nlohmann::json::exception& e) {
    throw DataError(file + ": not a result.json written by euler train: " + e.what());
  }
}

// The mean and sample standard deviation (null for one seed) over the seeds of every number the runs report.
inline nlohmann::json summarize_seeds(const std::vector<uint64_t>& seeds, const std::vector<nlohmann::json>& results) {
  nlohmann::json summary = {{"seeds", seeds}, {"runs", results.size()}};
  for (const auto& entry : results.front().items()) {
    if (!entry.value().is_number()) continue;
    std::vector<double> values;
    for (const nlohmann::json& r : results)
      if (r.contains(entry.key()) && r[entry.key()].is_number()) values.push_back(r[entry.key()].get<double>());
    if (values.size() != results.size()) continue;
    double mean = 0, squares = 0;
    for (double v : values) mean += v / double(values.size());
    for (double v : values) squares += (v - mean) * (v - mean);
    nlohmann::json sd = values.size() > 1 ? nlohmann::json(std::sqrt(squares / double(values.size() - 1))) : nlohmann::json();
    summary[entry.key()] = {{"mean", mean}, {"sd", sd}, {"values", values}};
  }
  return summary;
}

// A new directory parent/YYYY-MM-DD-HHMMSS-POS (local time; -2, -3, ... when a run of the same second
// has it), created here, so two commands started together never share one.
inline std::string new_run_directory(const std::string& parent, const std::string& pos) {
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d-%H%M%S", &local);
  std::error_code error;
  std::filesystem::create_directories(parent, error);
  if (error) throw IoError(parent + ": cannot create the directory for runs: " + error.message());
  for (int k = 1; k <= 100; ++k) {
    std::string name = (std::filesystem::path(parent) / (std::string(stamp) + "-" + pos + (k > 1 ? "-" + std::to_string(k) : ""))).string();
    if (std::filesystem::create_directory(name, error)) return name;
    if (error) throw IoError(name + ": cannot create the run directory: " + error.message());
  }
  throw IoError(parent + ": 100 runs started in the second " + stamp + "; give --out");
}

// The command line as one string, arguments with spaces or quotes in single quotes.
inline std::string command_line(const std::string& program, int argc, char** argv) {
  std::string line = program;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    bool plain = !a.empty() && a.find_first_of(" \t\n'\"\\$`") == std::string::npos;
    line += " " + (plain ? a : "'" + a + "'");
  }
  return line;
}

// The model config after the flags: a value out of range is a usage error (exit 2) naming the flag
// that sets it. (A --config file's own values were checked when it was read: exit 1, naming the file.)
inline void validate_flags(const EulerFormerConfig& c, const std::string& config_file) {
  static const std::pair<const char*, const char*> flags[] = {
      {"MAX_ITEM_LIST_LENGTH", "--max-len"}, {"hidden_size", "--hidden"}, {"n_layers", "--layers"}, {"n_heads", "--heads"},
      {"inner_size", "--inner"}, {"hidden_dropout_prob", "--dropout"}, {"attn_dropout_prob", "--attn-dropout"}, {"lamb", "--lamb"},
      {"tep", "--tep"}, {"init_factor", "--init-factor"}, {"mask_ratio", "--mask-ratio"}};
  try {
    c.validate();
  } catch (const ConfigError& e) {
    std::string message = e.what(), named;  // the flag of the setting the message names first
    size_t first = std::string::npos;
    for (auto [key, flag] : flags)
      if (size_t at = message.find(std::string(" ") + key + " "); at < first) first = at, named = flag;
    throw cxxopts::exceptions::exception(message + (named.empty() ? "" : " (" + named + ")") +
                                         (config_file.empty() ? "" : " after the flags given over " + config_file));
  }
}

inline int train_command(int argc, char** argv) {
  cxxopts::Options options("euler train",
                           "Train EulerFormer (or a baseline) on an interaction file, evaluate by full ranking, "
                           "print the final metrics as one JSON line. Defaults are the paper's settings.");
  add_data_options(options);
  add_memory_option(options);
  const EulerFormerConfig model;  // the defaults shown and used: the library's own
  const TrainOptions training;
  options.add_options("model")
      ("backbone", "sasrec|bert4rec", cxxopts::value<std::string>()->default_value(default_text(model.backbone)))
      ("pos", "positional scheme: none|learned|sinusoidal|rope|euler", cxxopts::value<std::string>()->default_value(default_text(model.pos)))
      ("objective", "last (a loss per prefix, the authors') | all (every position of one window per user)",
       cxxopts::value<std::string>()->default_value(default_text(model.objective)))
      ("max-len", "N, the list length (MAX_ITEM_LIST_LENGTH)", cxxopts::value<int>()->default_value(default_text(model.max_len)))
      ("hidden", "hidden size d (even)", cxxopts::value<int>()->default_value(default_text(model.hidden_size)))
      ("layers", "transformer layers", cxxopts::value<int>()->default_value(default_text(model.n_layers)))
      ("heads", "attention heads", cxxopts::value<int>()->default_value(default_text(model.n_heads)))
      ("inner", "feed-forward width", cxxopts::value<int>()->default_value(default_text(model.inner_size)))
      ("dropout", "hidden dropout", cxxopts::value<double>()->default_value(default_text(model.hidden_dropout_prob)))
      ("attn-dropout", "attention dropout", cxxopts::value<double>()->default_value(default_text(model.attn_dropout_prob)))
      ("lamb", "weight of the phase contrastive loss (0: off)", cxxopts::value<double>()->default_value(default_text(model.lamb)))
      ("tep", "temperature of the phase contrastive loss", cxxopts::value<double>()->default_value(default_text(model.tep)))
      ("init-factor", "initial delta", cxxopts::value<double>()->default_value(default_text(model.init_factor)))
      ("delta-shape", "scalar|vector", cxxopts::value<std::string>()->default_value(default_text(model.delta_shape)))
      ("no-euler-bias", "no phase bias b")
      ("no-adaptation", "no learned delta and b: the semantic phase is rotated by alpha only (delta fixed at 1, b = 0)")
      ("no-input-rotary", "no input rotary table psi")
      ("no-absolute-positions", "pos euler without SASRec's learned absolute position table")
      ("padding-idx", "row 0 of the item table (padding) gets no gradient from lookups, as RecBole's "
       "nn.Embedding(padding_idx=0); default: the true derivative")
      ("contrastive-mode", "authors|masked", cxxopts::value<std::string>()->default_value(default_text(model.contrastive_mode)))
      ("mask-ratio", "BERT4Rec mask ratio", cxxopts::value<double>()->default_value(default_text(model.mask_ratio)))
      ("config", "FILE.json: model settings (RecBole key names); FILE.yaml: a RecBole config (training, data and "
       "model keys, RecBole's defaults for the rest; docs/recbole.md). Flags given explicitly override it",
       cxxopts::value<std::string>());
  options.add_options("training")
      ("epochs", "maximum epochs", cxxopts::value<int>()->default_value(default_text(training.epochs)))
      ("batch-size", "training batch", cxxopts::value<int>()->default_value(default_text(training.batch_size)))
      ("lr", "learning rate", cxxopts::value<double>()->default_value(default_text(training.lr)))
      ("weight-decay", "L2 (Adam) or decoupled (with --adamw) weight decay", cxxopts::value<double>()->default_value(default_text(training.weight_decay)))
      ("adamw", "AdamW instead of Adam")
      ("clip", "clip the global gradient norm to this (0: off)", cxxopts::value<double>()->default_value(default_text(training.clip_norm)))
      ("patience", "stop after this many epochs without a better --valid-metric", cxxopts::value<int>()->default_value(default_text(training.patience)))
      ("valid-metric", "the validation metric that picks the best epoch: ndcg@K, hr@K (= recall@K) or mrr@K",
       cxxopts::value<std::string>()->default_value(training.valid_metric))
      ("seed", "random seed", cxxopts::value<uint64_t>()->default_value(default_text(training.seed)))
      ("seeds", "several runs, one per seed (e.g. 1,2,3), each in --out/seed-S; prints each run's metrics and then "
       "their mean and standard deviation. Run the same command again to resume: a finished seed is read from its "
       "result.json, an unfinished one resumes from its checkpoint", cxxopts::value<std::string>())
      ("threads", threads_help(), cxxopts::value<int>()->default_value(default_threads()))
      ("device", "where the training steps run: cpu | cuda (the CUDA backend, SASRec; evaluation stays on the CPU)",
       cxxopts::value<std::string>()->default_value("cpu"))
      ("eval-batch", "users per scoring batch", cxxopts::value<int>()->default_value(default_text(training.eval_batch)))
      ("keep-mb", "each transformer layer runs as one fused node (model/fused_layer.hpp, the same values as the "
       "library's default composed layer, faster); this is its memory per layer for the intermediates its backward "
       "reads: kept when they fit (faster), recomputed otherwise (0: always recompute, the least memory)",
       cxxopts::value<int>()->default_value(std::to_string(FusedLayerSpec{}.keep_bytes >> 20)))
      ("exclude-history", "drop history items from the ranking (default: keep them, as RecBole)")
      ("all-windows", "--objective all: train on every window of N+1 items of a long history each epoch, "
       "not only the last one (SASRec's and RecBole's way)")
      ("out", "directory for checkpoint.safetensors, best.safetensors and log.jsonl (default: a new runs/DATE-TIME-POS; "
       "with --resume: none)", cxxopts::value<std::string>())
      ("resume", "continue from a checkpoint.safetensors", cxxopts::value<std::string>())
      ("on-nonfinite", "a step with a NaN or inf loss or gradient: stop (name the op and exit) | skip (no update)",
       cxxopts::value<std::string>()->default_value(default_text(training.on_nonfinite)))
      ("plot", "directory for the training curves: loss and validation metrics per epoch as SVG (with pos euler also delta, b, their gradients and the phases), and curves.csv",
       cxxopts::value<std::string>())
      ("quiet", "no per-epoch lines or progress bar")
      ("progress-every", "when stderr is not a terminal (nohup, CI), a progress line every this many seconds "
       "inside an epoch (0: none)", cxxopts::value<double>()->default_value(default_text(training.progress_every)))
      ("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  required(args, "data");  // a usage error before anything else

  // A RecBole YAML file: its training, evaluation and data keys become flags written before the
  // user's, so a flag given on the command line wins (src/recbole_config.hpp).
  const bool yaml_config = args.count("config") && is_yaml_path(args["config"].as<std::string>());
  RecBoleConfig recbole;
  if (yaml_config) {
    recbole = read_recbole_config(args["config"].as<std::string>());
    std::vector<std::string> words = {argv[0]};
    for (const auto& [flag, value] : recbole.flags) {
      const std::string name = flag.substr(2);
      if (args.count(name) || (name == "seed" && args.count("seeds"))) continue;
      words.push_back(value.empty() ? flag : flag + "=" + value);  // --min-rating=-1: not read as an option
    }
    for (int i = 1; i < argc; ++i) words.push_back(argv[i]);
    std::vector<char*> pointers;
    for (std::string& word : words) pointers.push_back(word.data());
    args = options.parse(int(pointers.size()), pointers.data());
    const std::string& file = args["config"].as<std::string>();
    auto list = [](const std::vector<std::string>& items) {
      std::string text;
      for (const std::string& item : items) text += (text.empty() ? "" : ", ") + item;
      return text;
    };
    if (!recbole.unused.empty())
      std::cerr << "euler train: warning: " << file << ": keys with no effect in euler: " << list(recbole.unused) << "\n";
    if (!recbole.defaults.empty())
      std::cerr << "euler train: " << file << " does not set these, so RecBole's defaults apply: " << list(recbole.defaults) << "\n";
  }

  EulerFormerConfig c;
  if (args.count("config")) {
    std::string config_path = args["config"].as<std::string>();
    try {
      c = EulerFormerConfig::from_json(yaml_config ? recbole.model : nlohmann::json::parse(read_file(config_path)));
      EulerFormerConfig check = c;
      check.n_items = std::max(check.n_items, 2);  // set from the data later
      check.validate();
    } catch (const nlohmann::json::exception& e) {
      throw ConfigError(config_path + ": not valid JSON: " + e.what());
    } catch (const ConfigError& e) {
      throw ConfigError(config_path + ": " + e.what());
    }
  }
  auto set = [&](const char* flag, auto& field) {
    using F = std::remove_reference_t<decltype(field)>;
    if (args.count(flag) || !args.count("config")) field = args[flag].as<F>();
  };
  auto set_enum = [&](const char* flag, auto& field) {
    using E = std::remove_reference_t<decltype(field)>;
    if (args.count(flag) || !args.count("config")) field = parse_enum<E>(std::string("--") + flag, args[flag].as<std::string>());
  };
  set_enum("backbone", c.backbone);
  set_enum("pos", c.pos);
  set_enum("objective", c.objective);
  set("max-len", c.max_len);
  set("hidden", c.hidden_size);
  set("layers", c.n_layers);
  set("heads", c.n_heads);
  set("inner", c.inner_size);
  set("dropout", c.hidden_dropout_prob);
  set("attn-dropout", c.attn_dropout_prob);
  set("lamb", c.lamb);
  set("tep", c.tep);
  set("init-factor", c.init_factor);
  set_enum("delta-shape", c.delta_shape);
  set_enum("contrastive-mode", c.contrastive_mode);
  set("mask-ratio", c.mask_ratio);
  if (args.count("no-euler-bias")) c.euler_bias = false;
  if (args.count("no-adaptation")) c.adaptation = false;
  if (args.count("no-input-rotary")) c.input_rotary = false;
  if (args.count("no-absolute-positions")) c.absolute_positions = false;
  if (args.count("padding-idx")) c.padding_idx = true;

  TrainOptions t;
  t.epochs = args["epochs"].as<int>();
  t.batch_size = args["batch-size"].as<int>();
  t.lr = args["lr"].as<double>();
  t.weight_decay = args["weight-decay"].as<double>();
  t.adamw = args.count("adamw") > 0;
  t.clip_norm = args["clip"].as<double>();
  t.patience = args["patience"].as<int>();
  t.valid_metric = args["valid-metric"].as<std::string>();
  std::transform(t.valid_metric.begin(), t.valid_metric.end(), t.valid_metric.begin(),
                 [](unsigned char ch) { return char(std::tolower(ch)); });  // RecBole writes NDCG@10
  if (t.valid_metric.rfind("hit@", 0) == 0) t.valid_metric = "hr@" + t.valid_metric.substr(4);  // and Hit@10
  try {
    metric_cutoff(t.valid_metric);
  } catch (const std::invalid_argument& e) {
    throw cxxopts::exceptions::exception(std::string("--valid-metric: ") + e.what());
  }
  t.seed = args["seed"].as<uint64_t>();
  t.threads = thread_count(args);
  t.eval_batch = args["eval-batch"].as<int>();
  t.exclude_history = args.count("exclude-history") > 0;
  t.all_windows = args.count("all-windows") > 0;
  t.max_memory = memory_limit(args);
  t.verbose = t.progress = args.count("quiet") == 0;
  t.on_nonfinite = parse_enum<NonFiniteAction>("--on-nonfinite", args["on-nonfinite"].as<std::string>());
  t.progress_every = args["progress-every"].as<double>();
  if (!(t.progress_every >= 0 && std::isfinite(t.progress_every)))
    throw cxxopts::exceptions::exception("--progress-every must be a finite number of seconds >= 0");
  if (args.count("out")) t.out_dir = args["out"].as<std::string>();
  if (t.epochs < 1) throw cxxopts::exceptions::exception("--epochs must be >= 1");
  if (t.batch_size < 1) throw cxxopts::exceptions::exception("--batch-size must be >= 1");
  if (!(t.lr > 0 && std::isfinite(t.lr))) throw cxxopts::exceptions::exception("--lr must be a finite number > 0");
  if (!(t.weight_decay >= 0 && std::isfinite(t.weight_decay)))
    throw cxxopts::exceptions::exception("--weight-decay must be a finite number >= 0");
  if (!(t.clip_norm >= 0 && std::isfinite(t.clip_norm))) throw cxxopts::exceptions::exception("--clip must be a finite number >= 0 (0: no clipping)");
  if (t.eval_batch < 1) throw cxxopts::exceptions::exception("--eval-batch must be >= 1");
  if (t.patience < 1) throw cxxopts::exceptions::exception("--patience must be >= 1");
  const int keep_mb = args["keep-mb"].as<int>();
  if (keep_mb < 0) throw cxxopts::exceptions::exception("--keep-mb must be >= 0");
  if (t.all_windows && (c.objective != Objective::all || c.backbone != Backbone::sasrec))
    throw cxxopts::exceptions::exception("--all-windows is for --objective all with --backbone sasrec");
  c.n_items = 2;  // placeholder until the data is read; validate the rest before reading anything
  validate_flags(c, args.count("config") ? args["config"].as<std::string>() : "");
  const std::string device = args["device"].as<std::string>();
  check_device(device, c);
  // Under mpirun: every rank trains its share; rank 0 alone prints and writes (src/mpi_session.hpp).
  const bool first_rank = process_rank() == 0;
  if (process_group() && device != "cpu")
    throw cxxopts::exceptions::exception("--device " + device + " trains in one process; start it without mpirun");
  if (!first_rank) t.verbose = t.progress = false;

  std::string plot_dir = args.count("plot") ? args["plot"].as<std::string>() : "";
  if (!plot_dir.empty() && first_rank) {  // fail now, not after training
    std::error_code error;
    std::filesystem::create_directories(plot_dir, error);
    if (error) throw IoError(plot_dir + ": cannot create the --plot directory: " + error.message());
  }

  std::vector<uint64_t> seeds = {t.seed};
  if (args.count("seeds")) {
    if (args.count("seed")) throw cxxopts::exceptions::exception("give --seed or --seeds, not both");
    if (args.count("resume"))
      throw cxxopts::exceptions::exception("--resume is for one run; with --seeds, run the same command again to resume every seed");
    seeds = parse_seeds(args["seeds"].as<std::string>());
  }

  // --seeds: the command holds --out from here to the end (summary.json, which seeds are finished),
  // so a second --seeds command on it is refused at once; each seed's run holds its seed-S too. One
  // run holds --out in Trainer::run().
  std::optional<DirectoryLock> out_lock;
  if (args.count("seeds") && !t.out_dir.empty() && first_rank) out_lock.emplace(lock_output_directory(t.out_dir));

  set_num_threads(t.threads);
  Dataset data = load_data(args, t.verbose);
  // No --out (and nothing to resume): a new directory, once the data has been read, so a trained model
  // is never thrown away (by rank 0 alone, which writes it).
  if (!args.count("out") && !args.count("resume") && first_rank) {
    t.out_dir = new_run_directory("runs", to_string(c.pos));
    std::cerr << "writing the run to " << t.out_dir << " (--out DIR to choose)\n";
    if (args.count("seeds")) out_lock.emplace(lock_output_directory(t.out_dir));
  }
  // A run that fails before it wrote anything (refused by its memory estimate, say) leaves no empty
  // directory behind: only the one this command created, and only while it holds nothing but the lock.
  struct RemoveUnused {
    std::string dir;
    ~RemoveUnused() {
      if (dir.empty() || std::uncaught_exceptions() == 0) return;
      std::error_code error;
      for (const auto& entry : std::filesystem::directory_iterator(dir, error))
        if (entry.path().filename() != DirectoryLock::kFileName) return;
      if (!error) std::filesystem::remove_all(dir, error);
    }
  } remove_unused{args.count("out") || args.count("resume") ? std::string() : t.out_dir};
  RunSettings run;
  run.keep_bytes = int64_t(keep_mb) << 20;
  run.device = device;
  run.command = command_line("euler", argc, argv);
  if (!args.count("seeds")) {
    run.resume = args.count("resume") ? args["resume"].as<std::string>() : "";
    run.plot_dir = plot_dir;
    nlohmann::json result = train_one_run(c, t, data, run);
    result["data"] = data_json(data);
    if (first_rank) std::cout << json_text(result) << std::endl;
    return 0;
  }
  std::vector<nlohmann::json> results;
  for (uint64_t seed : seeds) {
    TrainOptions ts = t;
    ts.seed = seed;
    std::string name = "seed-" + std::to_string(seed);
    if (!t.out_dir.empty()) ts.out_dir = (std::filesystem::path(t.out_dir) / name).string();
    run.plot_dir = plot_dir.empty() ? "" : (std::filesystem::path(plot_dir) / name).string();
    run.resume = "";
    nlohmann::json finished = finished_run(c, ts);
    if (!finished.is_null()) {
      if (t.verbose) std::cerr << "seed " << seed << ": finished before, read from " << ts.out_dir << "/result.json\n";
      results.push_back(finished);
      continue;
    }
    if (!ts.out_dir.empty() && std::filesystem::exists(std::filesystem::path(ts.out_dir) / "checkpoint.safetensors")) {
      run.resume = (std::filesystem::path(ts.out_dir) / "checkpoint.safetensors").string();
      if (t.verbose) std::cerr << "seed " << seed << ": resuming from " << run.resume << "\n";
    } else if (t.verbose) {
      std::cerr << "seed " << seed << "\n";
    }
    results.push_back(train_one_run(c, ts, data, run));
    if (t.verbose) std::cerr << "seed " << seed << ": " << json_text(results.back()) << "\n";
  }
  nlohmann::json summary = summarize_seeds(seeds, results);
  summary["data"] = data_json(data);
  if (!first_rank) return 0;
  if (!t.out_dir.empty()) write_file_atomically((std::filesystem::path(t.out_dir) / "summary.json").string(), json_text(summary, 2) + "\n");
  std::cout << json_text(summary) << std::endl;
  return 0;
}

// The model and item ids stored in a checkpoint (best.safetensors or checkpoint.safetensors).
struct LoadedModel {
  EulerFormer<float> model;
  std::vector<std::string> item_tokens;  // [K], [0] = "" (padding)
};
inline LoadedModel load_checkpoint(const std::string& path) {
  safetensors::File file = safetensors::File::read(path);
  EulerFormer<float> model(read_config(file));
  model.set_fused(true);  // the fast path, as the trainer's
  load_weights(file, model, /*allow_unexpected=*/true);  // a checkpoint's optimizer state is ignored
  std::vector<std::string> tokens = get_item_tokens(file, path);
  if (!tokens.empty() && tokens.size() != size_t(model.config().n_items))
    throw safetensors::FormatError(path + ": metadata 'item_tokens' has " + std::to_string(tokens.size()) +
                                   " entries, but the model has " + std::to_string(model.config().n_items) + " item rows");
  return {std::move(model), std::move(tokens)};
}

// A checkpoint whose items are the data's in another order, or more items than the data's (a model
// converted from RecBole, which numbers items by first appearance and may keep items the data file
// lacks), is re-indexed to the data's rows by item token: data row i gets the checkpoint's row of the
// same id. Items of the checkpoint that the data lacks leave the ranking (said on stderr); an item of
// the data that the checkpoint lacks is an error naming it.
// Returns how many items left the ranking.
inline int64_t align_items(LoadedModel& loaded, const Dataset& data, const std::string& checkpoint) {
  if (loaded.item_tokens.empty() || loaded.item_tokens == data.item_tokens) return 0;
  std::unordered_map<std::string, int32_t> row_of;
  for (size_t i = 1; i < loaded.item_tokens.size(); ++i) row_of.emplace(loaded.item_tokens[i], int32_t(i));
  std::vector<int32_t> rows(data.item_tokens.size(), 0);  // data row -> checkpoint row (0: padding)
  int64_t absent = 0;
  std::string first_absent;
  for (size_t i = 1; i < data.item_tokens.size(); ++i) {
    auto it = row_of.find(data.item_tokens[i]);
    if (it == row_of.end() && absent++ == 0) first_absent = data.item_tokens[i];
    if (it != row_of.end()) rows[i] = it->second;
  }
  if (absent > 0)
    throw DataError(data.source + ": item '" + first_absent + "'" + (absent > 1 ? " and " + std::to_string(absent - 1) + " more" : "") +
                    " (after filtering) not in " + checkpoint + "; use the data and filter flags the model was trained with");
  EulerFormerConfig c = loaded.model.config();
  const int64_t dropped = int64_t(loaded.item_tokens.size()) - int64_t(data.item_tokens.size());
  c.n_items = int(data.table_rows());
  if (c.backbone == Backbone::bert4rec) rows.push_back(loaded.model.config().mask_token());  // the mask token stays last
  EulerFormer<float> model(c);
  model.set_fused(true);
  const Parameters<float>& from = loaded.model.parameters();
  Parameters<float>& to = model.parameters();
  for (int i = 0; i < to.count(); ++i) {
    const std::string& name = to.entry(i).name;
    TensorView<const float> source = from.value(name);
    TensorView<float> target = to.value(i);
    if (name != "item_embedding.weight") {
      std::copy(source.data, source.data + source.numel(), target.data);
      continue;
    }
    const int64_t width = target.shape[1];
    for (size_t r = 0; r < rows.size(); ++r)
      std::copy(source.data + rows[r] * width, source.data + (rows[r] + 1) * width, target.data + int64_t(r) * width);
  }
  std::cerr << checkpoint << ": items re-indexed to " << data.source << " by id"
            << (dropped > 0 ? "; " + std::to_string(dropped) + " items the data lacks are left out of the ranking" : "") << "\n";
  loaded.model = std::move(model);
  loaded.item_tokens = data.item_tokens;
  return dropped;
}

// The memory shape of scoring `rows` lists at once with a model (no training).
inline MemoryShape inference_shape(const EulerFormer<float>& model, int64_t rows) {
  MemoryShape shape;
  shape.config = model.config();
  shape.parameters = model.parameters().numel();
  shape.eval_rows = std::max<int64_t>(1, rows);
  shape.threads = num_threads();
  return shape;
}

inline int eval_command(int argc, char** argv) {
  cxxopts::Options options("euler eval", "Evaluate a checkpoint by full ranking on the validation and test targets of a data file "
                                         "(leave-one-out, read with the same filters as training). Prints one JSON line.");
  add_data_options(options);
  add_memory_option(options);
  options.add_options()
      ("checkpoint", "best.safetensors or checkpoint.safetensors", cxxopts::value<std::string>())
      ("threads", threads_help(), cxxopts::value<int>()->default_value(default_threads()))
      ("eval-batch", "users per scoring batch", cxxopts::value<int>()->default_value(default_text(TrainOptions{}.eval_batch)))
      ("exclude-history", "drop history items from the ranking")
      ("ranks", "also write each user's validation and test rank (1 = best) to this file, tab-separated "
                "(user, valid_rank, test_rank), to compare two checkpoints user by user",
       cxxopts::value<std::string>())
      ("h,help", "show this help");
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  std::string checkpoint = required(args, "checkpoint"), data_path = required(args, "data");
  set_num_threads(thread_count(args));
  int batch = at_least(args, "eval-batch", 1);
  LoadedModel loaded = load_checkpoint(checkpoint);
  Dataset data = load_data(args, false);
  const int64_t items_left_out = align_items(loaded, data, checkpoint);
  if (data.table_rows() != loaded.model.config().n_items)
    throw DataError(data_path + ": " + std::to_string(data.n_items) + " items, but " + checkpoint + " was trained on " +
                    std::to_string(loaded.model.config().n_items - 1));
  Split split = leave_one_out(data);
  check_memory(inference_shape(loaded.model, std::min<int64_t>(batch, int64_t(split.evaluated_users.size()))), memory_limit(args),
               "evaluating " + checkpoint);
  std::vector<std::span<const int32_t>> valid_h, test_h;
  std::vector<int32_t> valid_t, test_t;
  for (int32_t u : split.evaluated_users) {
    valid_h.push_back(split.validation_history(u));
    valid_t.push_back(split.validation_target(u));
    test_h.push_back(split.test_history(u));
    test_t.push_back(split.test_target(u));
  }
  RankingOptions r;
  r.exclude_history = args.count("exclude-history") > 0;
  std::vector<int64_t> valid_ranks, test_ranks;
  // Scores with NaN or inf have no ranking: such users would be ranked last, and the metrics wrong.
  UnusableScores unusable;
  nlohmann::json out = evaluate(loaded.model, valid_h, valid_t, r, batch, &unusable, &valid_ranks).to_json("valid");
  out.update(evaluate(loaded.model, test_h, test_t, r, batch, &unusable, &test_ranks).to_json("test"));
  if (unusable.rows > 0)
    throw NonFiniteError(checkpoint + ": the scores of " + std::to_string(unusable.rows) + " of " + std::to_string(2 * valid_t.size()) +
                         " histories (validation and test) hold NaN or inf: the weights overflow on this data; " + unusable.first.message());
  out["users"] = int64_t(split.evaluated_users.size());
  if (items_left_out > 0) out["items_left_out"] = items_left_out;  // checkpoint items the data lacks: not ranked
  out["data"] = data_json(data);
  if (args.count("ranks")) {
    write_file_atomically(args["ranks"].as<std::string>(), ranks_table(data, split.evaluated_users, valid_ranks, test_ranks));
  }
  std::cout << json_text(out) << std::endl;
  return 0;
}

inline int recommend_command(int argc, char** argv) {
  cxxopts::Options options("euler recommend",
                           "Top-K next items from a checkpoint, for a user of a data file (--user, with --data) or for a "
                           "given history (--history, ids as in the data file, oldest first). Prints one JSON line.");
  add_data_options(options);
  add_memory_option(options);
  options.add_options()
      ("checkpoint", "best.safetensors or checkpoint.safetensors", cxxopts::value<std::string>())
      ("user", "a user id of the data file (its whole history is used)", cxxopts::value<std::string>())
      ("history", "item ids, oldest first, e.g. \"12 7 33\"", cxxopts::value<std::string>())
      ("k", "how many items (-k N or --k N)", cxxopts::value<int>()->default_value("10"))
      ("exclude-history", "never recommend an item already in the history")
      ("threads", threads_help(), cxxopts::value<int>()->default_value(default_threads()))
      ("h,help", "show this help");
  // cxxopts takes one-letter options as short ones (-k); accept --k and --k=N as well.
  std::vector<std::string> spelled(argv, argv + argc);
  for (std::string& a : spelled) {
    if (a == "--k") a = "-k";
    else if (a.rfind("--k=", 0) == 0) a = "-k" + a.substr(4);
  }
  std::vector<char*> normalized;
  for (std::string& a : spelled) normalized.push_back(a.data());
  auto args = options.parse(int(normalized.size()), normalized.data());
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  std::string checkpoint = required(args, "checkpoint");
  if (args.count("user") == args.count("history"))
    throw cxxopts::exceptions::exception("give exactly one of --user (with --data) and --history");
  int k = args["k"].as<int>();
  if (k < 1) throw cxxopts::exceptions::exception("--k must be >= 1");
  set_num_threads(thread_count(args));
  LoadedModel loaded = load_checkpoint(checkpoint);
  check_memory(inference_shape(loaded.model, 1), memory_limit(args), "scoring with " + checkpoint);
  const EulerFormerConfig& c = loaded.model.config();
  auto token_of = [&](int32_t id) { return id < int32_t(loaded.item_tokens.size()) ? loaded.item_tokens[size_t(id)] : std::to_string(id); };
  std::vector<int32_t> history;
  if (args.count("user")) {
    Dataset data = load_data(args, false);
    align_items(loaded, data, checkpoint);
    history = data.sequences[size_t(data.user_id(args["user"].as<std::string>()))];
  } else {
    std::istringstream in(args["history"].as<std::string>());
    std::string token;
    while (in >> token) {
      int32_t id = -1;
      for (size_t i = 1; i < loaded.item_tokens.size(); ++i)
        if (loaded.item_tokens[i] == token) id = int32_t(i);
      if (loaded.item_tokens.empty()) id = int32_t(parse_id(token, 1, c.n_items - 1, "--history"));
      if (id < 1) throw DataError("--history: item '" + token + "' is not one of the items " + checkpoint + " knows");
      history.push_back(id);
    }
    if (history.empty()) throw DataError("--history: no item ids given");
  }
  nlohmann::json items = nlohmann::json::array(), score_list = nlohmann::json::array();
  for (auto [item, score] : recommend(loaded.model, history, k, args.count("exclude-history") > 0)) {
    items.push_back(token_of(item));
    score_list.push_back(score);
  }
  std::cout << json_text(nlohmann::json{{"items", items}, {"scores", score_list}, {"history_length", history.size()}}) << std::endl;
  return 0;
}

}  // namespace euler::cli
