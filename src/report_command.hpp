// `euler report DIR...`: the markdown tables of docs/results.md, from run directories.
//
// Each DIR is one row: a run of `euler train --out DIR` (DIR/result.json, DIR/ranks.tsv) or a directory
// holding one such run per seed (DIR/seed-1/, DIR/seed-2/, ...). The numbers are gathered into one JSON
// object first (printed as is with --json), and the markdown is written from that object:
//
//     euler report runs/sasrec runs/euler --labels "SASRec,EulerFormer" --paired
#pragma once

#include <cxxopts.hpp>
#include <nlohmann/json.hpp>
#include <euler/train/progress.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include <euler/data/data_error.hpp>
#include <euler/io/atomic_file.hpp>
#include <euler/train/metrics.hpp>
#include <euler/train/trainer.hpp>

namespace euler::cli {
namespace report {

using nlohmann::json;
namespace fs = std::filesystem;

const std::array<const char*, 4> kTableMetrics = {"test_hr@10", "test_ndcg@10", "test_mrr@10", "valid_ndcg@10"};
const std::array<const char*, 3> kTestMetrics = {"test_hr@10", "test_ndcg@10", "test_mrr@10"};  // also the paired ones

// One training run: its result.json, read and checked, so that later code can use at() freely.
struct Run {
  std::string dir, file;                 // file = dir/result.json
  json result, data, rotation;           // rotation: null when the run has none
  std::map<std::string, json> settings;  // config and train options, less seed and threads
  int64_t seed = 0;
  double training_seconds = 0;
};

// One row of the tables: a run, or the runs of a multi-seed directory sorted by seed.
struct Row {
  std::string label, dir;
  std::vector<Run> runs;
};

// "section.key", or "key" at the top level.
inline std::string key_name(const std::string& section, const std::string& key) {
  return section.empty() ? key : section + "." + key;
}

// object[key], or DataError naming the file and the key (`section` names the object: "result", "data", ...).
inline const json& field(const json& object, const std::string& section, const std::string& key, const std::string& file) {
  if (!object.is_object() || !object.contains(key)) throw DataError(file + ": missing key '" + key_name(section, key) + "'");
  return object[key];
}

inline double number(const json& object, const std::string& section, const std::string& key, const std::string& file) {
  const json& value = field(object, section, key, file);
  if (!value.is_number())
    throw DataError(file + ": '" + key_name(section, key) + "' is not a number (got " + value.dump() + ")");
  return value.get<double>();
}

inline int64_t integer(const json& object, const std::string& section, const std::string& key, const std::string& file) {
  const json& value = field(object, section, key, file);
  if (!value.is_number_integer())
    throw DataError(file + ": '" + key_name(section, key) + "' is not an integer (got " + value.dump() + ")");
  return value.get<int64_t>();
}

// A setting or a data field as a reader wants it: strings without quotes.
inline std::string shown(const json& value) { return value.is_string() ? value.get<std::string>() : value.dump(); }

// The per-layer rotation of an EulerFormer run: [{layer, delta, b (a number or null)}].
inline void check_rotation(const json& rotation, const std::string& file) {
  if (!rotation.is_array()) throw DataError(file + ": 'rotation' is not a list");
  for (size_t l = 0; l < rotation.size(); ++l) {
    std::string section = "rotation[" + std::to_string(l) + "]";
    integer(rotation[l], section, "layer", file);
    number(rotation[l], section, "delta", file);
    if (!field(rotation[l], section, "b", file).is_null()) number(rotation[l], section, "b", file);
  }
}

inline Run read_run(const std::string& dir) {
  Run run;
  run.dir = dir;
  run.file = (fs::path(dir) / "result.json").string();
  json j;
  try {
    j = json::parse(read_file(run.file));
  } catch (const json::exception& e) {
    throw DataError(run.file + ": not valid JSON: " + e.what());
  }
  for (const char* section : {"result", "config", "train", "data"})
    if (!field(j, "", section, run.file).is_object()) throw DataError(run.file + ": '" + section + "' is not an object");
  const json& result = j["result"];
  for (const char* key : kTableMetrics) number(result, "result", key, run.file);
  for (const char* key : kTestMetrics) number(result, "result", std::string("pop_") + key, run.file);
  for (const char* key : kTestMetrics)  // older runs have no Markov baseline
    if (result.contains(std::string("markov_") + key)) number(result, "result", std::string("markov_") + key, run.file);
  integer(result, "result", "best_epoch", run.file);
  integer(result, "result", "epochs", run.file);
  run.training_seconds = number(j, "", "training_seconds", run.file);
  if (!field(j["data"], "data", "source", run.file).is_string())
    throw DataError(run.file + ": 'data.source' is not a string");
  for (const char* key : {"users", "items", "interactions"}) integer(j["data"], "data", key, run.file);
  run.seed = integer(j["train"], "train", "seed", run.file);
  for (const char* section : {"config", "train"})
    for (const auto& [key, value] : j[section].items())
      if (key != "seed" && key != "threads") run.settings[key] = value;
  if (j.contains("rotation")) {
    check_rotation(j["rotation"], run.file);
    run.rotation = j["rotation"];
  }
  run.result = result;
  run.data = j["data"];
  return run;
}

// The runs of one row may differ only in seed and threads: an error naming the first key that differs.
inline void check_same_settings(const Run& first, const Run& other) {
  std::set<std::string> keys;
  for (const auto& [key, value] : first.settings) keys.insert(key);
  for (const auto& [key, value] : other.settings) keys.insert(key);
  auto value_of = [](const Run& run, const std::string& key) {
    return run.settings.count(key) ? run.settings.at(key) : json("missing");
  };
  for (const std::string& key : keys)
    if (value_of(first, key) != value_of(other, key))
      throw DataError(other.file + ": runs of one row may differ only in seed and threads, but '" + key + "' is " +
                      shown(value_of(other, key)) + " here and " + shown(value_of(first, key)) + " in " + first.file);
}

inline Row read_row(const std::string& dir, const std::string& label) {
  Row row{label, dir, {}};
  if (!fs::is_directory(dir)) throw IoError(dir + ": not a directory");
  if (fs::exists(fs::path(dir) / "result.json")) {
    row.runs.push_back(read_run(dir));
  } else {
    for (const fs::directory_entry& entry : fs::directory_iterator(dir))
      if (entry.is_directory() && fs::exists(entry.path() / "result.json"))
        row.runs.push_back(read_run(entry.path().string()));
  }
  if (row.runs.empty())
    throw IoError((fs::path(dir) / "result.json").string() + ": missing, and no subdirectory of " + dir + " holds one");
  std::sort(row.runs.begin(), row.runs.end(), [](const Run& a, const Run& b) { return a.seed < b.seed; });
  for (size_t i = 1; i < row.runs.size(); ++i)
    if (row.runs[i].seed == row.runs[i - 1].seed)
      throw DataError(row.runs[i].file + ": seed " + std::to_string(row.runs[i].seed) + " again (also in " +
                      row.runs[i - 1].file + ")");
  return row;
}

// A run written before a setting existed lacks it and ran with its default: where another run of the
// report has the setting, the runs without it get euler's default (settings euler does not know stay
// missing). Then the runs of each row must agree on every setting but seed and threads.
inline void complete_and_check_settings(std::vector<Row>& rows) {
  json defaults = EulerFormerConfig{}.to_json();
  defaults.update(TrainOptions{}.to_json());
  std::set<std::string> keys;
  for (const Row& row : rows)
    for (const Run& run : row.runs)
      for (const auto& [key, value] : run.settings) keys.insert(key);
  for (Row& row : rows)
    for (Run& run : row.runs)
      for (const std::string& key : keys)
        if (!run.settings.count(key) && defaults.contains(key)) run.settings[key] = defaults[key];
  for (const Row& row : rows)
    for (size_t i = 1; i < row.runs.size(); ++i) check_same_settings(row.runs[0], row.runs[i]);
}

// Every run of every row must be on the same data as the first.
inline void check_same_data(const std::vector<Row>& rows) {
  const Run& first = rows[0].runs[0];
  for (const Row& row : rows)
    for (const Run& run : row.runs)
      for (const char* key : {"source", "users", "items", "interactions"})
        if (run.data[key] != first.data[key])
          throw DataError(run.file + ": data." + key + " is " + shown(run.data[key]) + ", but " + shown(first.data[key]) +
                          " in " + first.file + "; all rows must be on the same data");
}

// {"mean", "sd"} of values; sd (sample, n - 1) is null for a single value.
inline json mean_sd(const std::vector<double>& values) {
  double mean = 0, squares = 0;
  for (double v : values) mean += v / double(values.size());
  for (double v : values) squares += (v - mean) * (v - mean);
  json sd = values.size() > 1 ? json(std::sqrt(squares / double(values.size() - 1))) : json(nullptr);
  return {{"mean", mean}, {"sd", sd}};
}

// A baseline's test metrics from the first row's runs ("pop" or "markov"); null if a run lacks them.
// They depend only on the data, so runs that disagree are on different data.
inline json baseline(const Row& row, const std::string& prefix, const std::string& name) {
  json out = {{"model", name}};
  for (const char* metric : kTestMetrics) {
    std::string key = prefix + "_" + metric;
    for (const Run& run : row.runs) {
      if (!run.result.contains(key)) return nullptr;
      double value = run.result[key].get<double>(), first = row.runs[0].result[key].get<double>();
      if (std::abs(value - first) > 1e-9)
        throw DataError(run.file + ": " + key + " is " + std::to_string(value) + ", but " + std::to_string(first) + " in " +
                        row.runs[0].file + "; the baselines depend only on the data, so the data differ");
    }
    out[metric] = row.runs[0].result[key];
  }
  return out;
}

// Delta and b per layer, averaged over the row's seeds; null when the row's runs have no rotation.
inline json mean_rotation(const Row& row) {
  const json& first = row.runs[0].rotation;
  for (const Run& run : row.runs)
    if (run.rotation.is_null() != first.is_null() || (!first.is_null() && run.rotation.size() != first.size()))
      throw DataError(run.file + ": its 'rotation' has not the layers of " + row.runs[0].file + "'s");
  if (first.is_null()) return nullptr;
  json layers = json::array();
  for (size_t l = 0; l < first.size(); ++l) {
    double delta = 0, b = 0;
    bool has_b = true;
    for (const Run& run : row.runs) {
      delta += run.rotation[l]["delta"].get<double>() / double(row.runs.size());
      has_b = has_b && !run.rotation[l]["b"].is_null();
      if (has_b) b += run.rotation[l]["b"].get<double>() / double(row.runs.size());
    }
    layers.push_back({{"layer", first[l]["layer"]}, {"delta", delta}, {"b", has_b ? json(b) : json(nullptr)}});
  }
  return layers;
}

// One row's figures: mean ± sd of the metrics, seeds, epochs, mean training time, rotation.
inline json row_summary(const Row& row) {
  json out = {{"model", row.label}, {"dir", row.dir}, {"training_seconds", 0.0}};
  for (const char* metric : kTableMetrics) {
    std::vector<double> values;
    for (const Run& run : row.runs) values.push_back(run.result[metric].get<double>());
    out[metric] = mean_sd(values);
  }
  for (const Run& run : row.runs) {
    out["seeds"].push_back(run.seed);
    out["best_epochs"].push_back(run.result["best_epoch"]);
    out["last_epochs"].push_back(run.result["epochs"]);
    out["training_seconds"] = out["training_seconds"].get<double>() + run.training_seconds / double(row.runs.size());
  }
  json rotation = mean_rotation(row);
  if (!rotation.is_null()) out["rotation"] = rotation;
  return out;
}

// Each user's test HR@10, NDCG@10 and MRR@10 in one ranks.tsv, or averaged over a row's seeds.
struct UserMetrics {
  std::string file;                                      // (the first seed's) ranks.tsv, for messages
  std::vector<std::string> users;                        // in file order
  std::map<std::string, std::array<double, 3>> metrics;  // user -> HR@10, NDCG@10, MRR@10
};

// A positive integer rank, or 0 when the text is not one.
inline int64_t parse_rank(const std::string& text) {
  int64_t rank = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), rank);
  return error == std::errc() && end == text.data() + text.size() && rank >= 1 ? rank : 0;
}

// DIR/ranks.tsv as `euler eval --ranks` writes it: header, then "user<TAB>valid_rank<TAB>test_rank" lines.
inline UserMetrics read_ranks(const std::string& dir) {
  UserMetrics table{(fs::path(dir) / "ranks.tsv").string(), {}, {}};
  std::istringstream in(read_file(table.file));
  std::string line;
  if (!std::getline(in, line) || line != "user\tvalid_rank\ttest_rank")
    throw DataError(table.file + ":1: not an `euler eval --ranks` table (header '" + line + "')");
  for (int64_t number = 2; std::getline(in, line); ++number) {
    std::vector<std::string> fields;
    std::istringstream split(line);
    for (std::string f; std::getline(split, f, '\t');) fields.push_back(f);
    std::string where = table.file + ":" + std::to_string(number) + ": ";
    if (fields.size() != 3 || parse_rank(fields[1]) == 0 || parse_rank(fields[2]) == 0)
      throw DataError(where + "expected user, valid_rank, test_rank (ranks >= 1), got '" + line + "'");
    if (table.metrics.count(fields[0])) throw DataError(where + "user " + fields[0] + " appears twice");
    int64_t rank = parse_rank(fields[2]);
    table.users.push_back(fields[0]);
    table.metrics[fields[0]] = {hit_at(rank, 10), ndcg_at(rank, 10), mrr_at(rank, 10)};
  }
  return table;
}

// Both tables must hold the same users: an error naming the first one missing, and from which file.
inline void check_same_users(const UserMetrics& a, const UserMetrics& b) {
  for (const auto& [x, y] : {std::pair(&a, &b), std::pair(&b, &a)})
    for (const std::string& user : x->users)
      if (!y->metrics.count(user)) throw DataError(y->file + ": no line for user " + user + ", who is in " + x->file);
}

// A row's per-user metrics, averaged over its seeds.
inline UserMetrics row_user_metrics(const Row& row) {
  UserMetrics mean = read_ranks(row.runs[0].dir);
  for (size_t i = 1; i < row.runs.size(); ++i) {
    UserMetrics other = read_ranks(row.runs[i].dir);
    check_same_users(mean, other);
    for (auto& [user, values] : mean.metrics)
      for (size_t m = 0; m < 3; ++m) values[m] += other.metrics[user][m];
  }
  for (auto& [user, values] : mean.metrics)
    for (double& v : values) v /= double(row.runs.size());
  return mean;
}

// b minus a per user: {"mean", "se" (sample sd / sqrt(n)), "z" (null when se is 0)} for each test metric.
inline json paired_difference(const UserMetrics& a, const UserMetrics& b) {
  check_same_users(a, b);
  double n = double(a.users.size());
  if (n < 2) throw DataError(a.file + ": a paired comparison needs at least 2 users");
  json out = {{"users", a.users.size()}};
  for (size_t m = 0; m < 3; ++m) {
    double mean = 0, squares = 0;
    for (const std::string& user : a.users) mean += (b.metrics.at(user)[m] - a.metrics.at(user)[m]) / n;
    for (const std::string& user : a.users)
      squares += std::pow(b.metrics.at(user)[m] - a.metrics.at(user)[m] - mean, 2);
    double se = std::sqrt(squares / (n - 1) / n);
    out[kTestMetrics[m]] = {{"mean", mean}, {"se", se}, {"z", se > 0 ? json(mean / se) : json(nullptr)}};
  }
  return out;
}

// A row's value of a setting (config or train option), null when its runs have none.
inline json setting(const Row& row, const std::string& key) {
  auto it = row.runs[0].settings.find(key);
  return it == row.runs[0].settings.end() ? json(nullptr) : it->second;
}

// All the numbers of the report: data, shared and differing settings, baselines, rows, paired differences.
inline json summarize(const std::vector<Row>& rows, bool paired) {
  check_same_data(rows);
  json out = {{"data", rows[0].runs[0].data}, {"shared_settings", json::object()}, {"baselines", json::array()}};
  for (json b : {baseline(rows[0], "pop", "most popular"), baseline(rows[0], "markov", "Markov")})
    if (!b.is_null()) out["baselines"].push_back(b);
  std::set<std::string> keys;  // the settings that differ go to each row, the others are shared
  for (const Row& row : rows)
    for (const auto& [key, value] : row.runs[0].settings) keys.insert(key);
  for (const Row& row : rows) out["rows"].push_back(row_summary(row));
  for (const std::string& key : keys) {
    bool same = true;
    for (const Row& row : rows) same = same && setting(row, key) == setting(rows[0], key);
    if (same) out["shared_settings"][key] = setting(rows[0], key);
    for (size_t r = 0; r < rows.size() && !same; ++r) out["rows"][r]["settings"][key] = setting(rows[r], key);
  }
  if (paired) {
    std::vector<UserMetrics> users;
    for (const Row& row : rows) users.push_back(row_user_metrics(row));
    out["paired"] = json::array();
    for (size_t i = 0; i < rows.size(); ++i)
      for (size_t j = i + 1; j < rows.size(); ++j) {
        json d = paired_difference(users[i], users[j]);
        d["model"] = rows[j].label;
        d["minus"] = rows[i].label;
        out["paired"].push_back(d);
      }
  }
  return out;
}

// x with `format`, e.g. "%.4f" or "%+.4f".
inline std::string fixed(double x, const char* format = "%.4f") {
  char text[64];
  std::snprintf(text, sizeof text, format, x);
  return text;
}

// "0.3100 ± 0.0100", or "0.3100" for one seed.
inline std::string mean_sd_cell(const json& stat) {
  std::string mean = fixed(stat["mean"].get<double>());
  return stat["sd"].is_null() ? mean : mean + " ± " + fixed(stat["sd"].get<double>());
}

// "+0.0046 ± 0.0022 (z 2.1)".
inline std::string difference_cell(const json& d) {
  std::string z = d["z"].is_null() ? "undefined" : fixed(d["z"].get<double>(), "%.1f");
  return fixed(d["mean"].get<double>(), "%+.4f") + " ± " + fixed(d["se"].get<double>()) + " (z " + z + ")";
}

inline std::string table_row(const std::vector<std::string>& cells) {
  std::string line = "|";
  for (const std::string& cell : cells) line += " " + cell + " |";
  return line + "\n";
}

// The header row and the rule under it.
inline std::string table_header(const std::vector<std::string>& cells) {
  return "\n" + table_row(cells) + table_row(std::vector<std::string>(cells.size(), "---"));
}

// "1, 2, 3" from a list, or "45 / 60, 40 / 55" from two.
inline std::string joined(const json& list, const json& second = nullptr) {
  std::string out;
  for (size_t i = 0; i < list.size(); ++i)
    out += (i ? ", " : "") + shown(list[i]) + (second.is_null() ? "" : " / " + shown(second[i]));
  return out;
}

inline std::string markdown(const json& report) {
  std::ostringstream out;
  const json& data = report["data"];
  out << "Data: `" << shown(data["source"]) << "`, " << format_count(data["users"].get<double>()) << " users, "
      << format_count(data["items"].get<double>()) << " items, " << format_count(data["interactions"].get<double>())
      << " interactions.\n\nSettings shared by all rows (seed and threads aside):";
  std::string separator = " ";
  for (const auto& [key, value] : report["shared_settings"].items()) {
    out << separator << key << " " << shown(value);
    separator = ", ";
  }
  out << ".\n";
  out << table_header({"model", "seeds", "test HR@10", "test NDCG@10", "test MRR@10", "valid NDCG@10", "best / last epoch",
                       "training time"});
  for (const json& b : report["baselines"])
    out << table_row({shown(b["model"]), "–", fixed(b["test_hr@10"].get<double>()), fixed(b["test_ndcg@10"].get<double>()),
                      fixed(b["test_mrr@10"].get<double>()), "–", "–", "–"});
  std::set<std::string> differing;
  bool rotation = false;
  for (const json& row : report["rows"]) {
    out << table_row({shown(row["model"]), joined(row["seeds"]), mean_sd_cell(row["test_hr@10"]),
                      mean_sd_cell(row["test_ndcg@10"]), mean_sd_cell(row["test_mrr@10"]), mean_sd_cell(row["valid_ndcg@10"]),
                      joined(row["best_epochs"], row["last_epochs"]),
                      format_count(row["training_seconds"].get<double>()) + " s"});
    if (row.contains("settings"))
      for (const auto& [key, value] : row["settings"].items()) differing.insert(key);
    rotation = rotation || row.contains("rotation");
  }
  if (!differing.empty()) {
    out << "\nSettings that differ between rows:\n";
    std::vector<std::string> header = {"model"};
    header.insert(header.end(), differing.begin(), differing.end());
    out << table_header(header);
    for (const json& row : report["rows"]) {
      std::vector<std::string> cells = {shown(row["model"])};
      for (const std::string& key : differing) {
        const json& value = row.at("settings").at(key);
        cells.push_back(value.is_null() ? "–" : shown(value));
      }
      out << table_row(cells);
    }
  }
  if (rotation) {
    out << "\nLearned rotation per layer (mean over seeds):\n" << table_header({"model", "layer", "delta", "b"});
    for (const json& row : report["rows"])
      for (const json& layer : row.value("rotation", json::array()))
        out << table_row({shown(row["model"]), shown(layer["layer"]), fixed(layer["delta"].get<double>()),
                          layer["b"].is_null() ? "–" : fixed(layer["b"].get<double>())});
  }
  if (report.contains("paired")) {
    out << "\nPaired differences on the same users (test, @10): mean of the per-user difference ± its standard error, "
           "z = mean / error:\n"
        << table_header({"difference", "users", "HR@10", "NDCG@10", "MRR@10"});
    for (const json& d : report["paired"])
      out << table_row({shown(d["model"]) + " minus " + shown(d["minus"]), format_count(d["users"].get<double>()),
                        difference_cell(d["test_hr@10"]), difference_cell(d["test_ndcg@10"]), difference_cell(d["test_mrr@10"])});
    out << "\nThe error covers the draw of users, not of training seeds (a row's per-user metric is its mean over its "
           "seeds).\n";
  }
  return out.str();
}

// DIR's last path component: "runs/euler/" -> "euler".
inline std::string basename(const std::string& dir) {
  fs::path path = fs::path(dir).lexically_normal();
  return path.has_filename() ? path.filename().string() : path.parent_path().filename().string();
}

}  // namespace report

inline int report_command(int argc, char** argv) {
  cxxopts::Options options("euler report",
                           "Markdown tables of run directories (euler train --out DIR), one row per DIR: a run, or a "
                           "directory of runs with one subdirectory per seed (mean ± sd over seeds).");
  options.positional_help("DIR...");
  options.add_options()
      ("dirs", "run directories", cxxopts::value<std::vector<std::string>>())
      ("labels", "row names, comma-separated, one per DIR (default: each DIR's name)", cxxopts::value<std::string>())
      ("paired", "paired differences of every two rows on the same users, from each run's ranks.tsv")
      ("json", "print the numbers as one JSON object instead of markdown")
      ("h,help", "show this help");
  options.parse_positional({"dirs"});
  auto args = options.parse(argc, argv);
  if (args.count("help")) {
    std::cout << options.help() << "\n";
    return 0;
  }
  if (!args.count("dirs")) throw cxxopts::exceptions::exception("give at least one run directory");
  std::vector<std::string> dirs = args["dirs"].as<std::vector<std::string>>(), labels;
  if (args.count("labels")) {
    std::istringstream in(args["labels"].as<std::string>());
    for (std::string label; std::getline(in, label, ',');) labels.push_back(label);
    if (labels.size() != dirs.size())
      throw cxxopts::exceptions::exception("--labels has " + std::to_string(labels.size()) + " names for " +
                                           std::to_string(dirs.size()) + " directories");
  }
  std::vector<report::Row> rows;
  for (size_t i = 0; i < dirs.size(); ++i)
    rows.push_back(report::read_row(dirs[i], labels.empty() ? report::basename(dirs[i]) : labels[i]));
  report::complete_and_check_settings(rows);
  nlohmann::json summary = report::summarize(rows, args.count("paired") > 0);
  std::cout << (args.count("json") ? json_text(summary, 2) + "\n" : report::markdown(summary));
  return 0;
}

}  // namespace euler::cli
