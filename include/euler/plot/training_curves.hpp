// euler/plot/training_curves.hpp: the curves of a training run (loss terms and validation metrics per
// epoch) as SVG plots and one CSV, from the per-epoch records the trainer keeps (the lines of its
// log.jsonl). This is what `euler train --plot DIR` writes.
//
//     std::vector<nlohmann::json> epochs = euler::plot::read_json_lines("run/log.jsonl");
//     std::vector<std::string> files = euler::plot::write_training_curves("run/plots", epochs, "ml-1m");
//
// Files in DIR:
//   curves.csv       every numeric field of every epoch (epoch, loss, loss_ce, loss_con, valid_*, ...)
//   loss.svg         cross-entropy (and the total, when the contrastive term is on) per epoch
//   contrastive.svg  the phase contrastive term per epoch (only when it is not zero throughout)
//   validation.svg   validation HR@10, NDCG@10 and MRR@10 per epoch, the best epoch marked
// and, for EulerFormer (the fields of train/rotation_watch.hpp):
//   delta.svg        each layer's learned delta per epoch (RoPE: 1)
//   phase_bias.svg   each layer's learned b per epoch (RoPE: 0)
//   rotation_gradients.svg
//                    per layer, the mean of delta's (b's) per-step gradient over the epoch divided by
//                    its standard deviation: near 0, the steps mostly cancel (noise); near +-1 and
//                    beyond, they agree
//   phase_concentration.svg
//                    |mean e^{i theta~}| of the rotated queries' and keys' phases per layer and epoch
// A field missing from some epochs is NaN there (a gap in its curve, "nan" in the CSV).
#pragma once

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "euler/io/atomic_file.hpp"
#include "euler/plot/charts.hpp"
#include "euler/plot/csv.hpp"

namespace euler::plot {

using euler::read_json_lines;  // io/atomic_file.hpp

// Field `key` of every record as a number, NaN where it is missing or not a number.
inline std::vector<double> numeric_field(const std::vector<nlohmann::json>& records, const std::string& key) {
  std::vector<double> out;
  for (const nlohmann::json& r : records) {
    auto it = r.find(key);
    out.push_back(it != r.end() && it->is_number() ? it->get<double>() : std::nan(""));
  }
  return out;
}

// The numeric fields of the records, in a readable order: epoch, the loss terms, the validation
// metrics (HR, NDCG, MRR, each by K), the rest alphabetically.
inline std::vector<std::string> numeric_fields(const std::vector<nlohmann::json>& records) {
  std::vector<std::string> keys;
  for (const nlohmann::json& r : records)
    for (auto it = r.begin(); it != r.end(); ++it)
      if (it.value().is_number() && std::find(keys.begin(), keys.end(), it.key()) == keys.end()) keys.push_back(it.key());
  // Sort key: (group, metric, K, name).
  auto rank = [](const std::string& key) {
    static const std::vector<std::string> kFirst = {"epoch", "loss", "loss_ce", "loss_con"};
    static const std::vector<std::string> kMetrics = {"hr", "ndcg", "mrr"};
    auto first = std::find(kFirst.begin(), kFirst.end(), key);
    if (first != kFirst.end()) return std::tuple{int(first - kFirst.begin()), 0, 0, key};
    size_t at = key.find('@');
    if (key.rfind("valid_", 0) == 0 && at != std::string::npos) {
      auto metric = std::find(kMetrics.begin(), kMetrics.end(), key.substr(6, at - 6));
      int k = std::atoi(key.c_str() + at + 1);
      return std::tuple{10, int(metric - kMetrics.begin()), k, key};
    }
    return std::tuple{20, 0, 0, key};
  };
  std::sort(keys.begin(), keys.end(), [&](const std::string& a, const std::string& b) { return rank(a) < rank(b); });
  return keys;
}

// Write the files listed above into `dir` (created if needed); returns their paths. `run` names the
// run in the titles (e.g. the data file); may be empty.
inline std::vector<std::string> write_training_curves(const std::string& dir, const std::vector<nlohmann::json>& records,
                                                      const std::string& run = "") {
  namespace fs = std::filesystem;
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) throw IoError(dir + ": cannot create the plot directory: " + error.message());
  std::vector<std::string> written;
  auto write = [&](const std::string& name, const std::string& text) {
    std::string path = (fs::path(dir) / name).string();
    write_file_atomically(path, text);
    written.push_back(path);
  };
  std::string suffix = run.empty() ? "" : " (" + run + ")";

  std::vector<std::string> keys = numeric_fields(records);
  std::vector<std::vector<double>> columns;
  for (const std::string& k : keys) columns.push_back(numeric_field(records, k));
  Csv csv(keys.empty() ? std::vector<std::string>{"epoch"} : keys);
  for (size_t r = 0; r < records.size() && !keys.empty(); ++r) {
    std::vector<CsvCell> row;
    for (const std::vector<double>& c : columns) row.emplace_back(c[r]);
    csv.row(row);
  }
  write("curves.csv", csv.str());

  std::vector<double> epoch = numeric_field(records, "epoch");
  std::vector<double> con = numeric_field(records, "loss_con");
  bool contrastive = std::any_of(con.begin(), con.end(), [](double v) { return std::isfinite(v) && v != 0; });

  LinePlot loss;
  loss.title = "training loss per epoch" + suffix;
  loss.x_label = "epoch";
  loss.y_label = "mean loss over the epoch's batches";
  loss.integer_x = true;
  loss.series.push_back({"cross-entropy", epoch, numeric_field(records, "loss_ce")});
  if (contrastive) loss.series.push_back({"total (cross-entropy + contrastive)", epoch, numeric_field(records, "loss")});
  write("loss.svg", loss.svg());

  if (contrastive) {
    LinePlot c;
    c.title = "phase contrastive loss per epoch" + suffix;
    c.x_label = "epoch";
    c.y_label = "contrastive term (sum over layers, weighted by lamb)";
    c.integer_x = true;
    c.series.push_back({"contrastive", epoch, con});
    write("contrastive.svg", c.svg());
  }

  LinePlot valid;
  valid.title = "validation metrics per epoch" + suffix;
  valid.x_label = "epoch";
  valid.y_label = "metric (full ranking)";
  valid.integer_x = true;
  for (const char* metric : {"hr@10", "ndcg@10", "mrr@10"})
    valid.series.push_back({std::string("valid ") + metric, epoch, numeric_field(records, std::string("valid_") + metric)});
  std::vector<double> best = numeric_field(records, "best_epoch");
  if (!best.empty() && std::isfinite(best.back())) valid.markers.push_back({best.back(), "best epoch"});
  write("validation.svg", valid.svg());

  // EulerFormer's rotation: the layers k with an "l<k>_delta" field.
  std::vector<int> layers;
  for (const std::string& key : keys)
    if (key.size() > 7 && key[0] == 'l' && std::isdigit(static_cast<unsigned char>(key[1])) && key.compare(key.size() - 6, 6, "_delta") == 0)
      layers.push_back(std::atoi(key.c_str() + 1));
  std::sort(layers.begin(), layers.end());
  if (layers.empty()) return written;
  auto field = [&](int layer, const std::string& name) { return numeric_field(records, "l" + std::to_string(layer) + "_" + name); };
  auto has = [&](int layer, const std::string& name) {
    std::vector<double> v = field(layer, name);
    return std::any_of(v.begin(), v.end(), [](double x) { return std::isfinite(x); });
  };
  auto per_layer = [&](const std::string& title, const std::string& y_label) {
    LinePlot plot;
    plot.title = title + suffix;
    plot.x_label = "epoch";
    plot.y_label = y_label;
    plot.integer_x = true;
    return plot;
  };
  LinePlot delta = per_layer("learned delta per epoch (RoPE: delta = 1)", "delta (scales the semantic phase)");
  LinePlot bias = per_layer("learned phase bias b per epoch (RoPE: b = 0)", "b (radians added to the query phases)");
  LinePlot snr = per_layer("gradient signal per epoch: mean / sd of the per-step gradient", "mean / sd (near 0: steps cancel)");
  LinePlot phases = per_layer("concentration of the rotated phases per epoch", "|mean of e^{i theta~}| (0 spread, 1 equal)");
  for (int l : layers) {
    std::string name = "layer " + std::to_string(l);
    delta.series.push_back({name, epoch, field(l, "delta")});
    if (has(l, "b")) bias.series.push_back({name, epoch, field(l, "b")});
    for (const char* p : {"delta", "b"}) {
      if (!has(l, std::string(p) + "_grad_mean")) continue;
      std::vector<double> mean = field(l, std::string(p) + "_grad_mean"), sd = field(l, std::string(p) + "_grad_sd"), ratio;
      for (size_t e = 0; e < mean.size(); ++e) ratio.push_back(sd[e] > 0 ? mean[e] / sd[e] : std::nan(""));
      snr.series.push_back({name + ", " + p, epoch, ratio});
    }
    if (has(l, "query_phase_concentration")) {
      phases.series.push_back({name + ", queries", epoch, field(l, "query_phase_concentration")});
      phases.series.push_back({name + ", keys", epoch, field(l, "key_phase_concentration")});
    }
  }
  write("delta.svg", delta.svg());
  if (!bias.series.empty()) write("phase_bias.svg", bias.svg());
  if (!snr.series.empty()) write("rotation_gradients.svg", snr.svg());
  if (!phases.series.empty()) write("phase_concentration.svg", phases.svg());
  return written;
}

}  // namespace euler::plot
