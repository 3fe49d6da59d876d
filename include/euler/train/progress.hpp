// euler/train/progress.hpp: how the trainer reports progress. Inside an epoch (EpochProgress), on a
// terminal a bar redrawn in place; otherwise (nohup, CI, a pipe) a plain line every
// TrainOptions::progress_every seconds, so a log shows a long epoch moving:
//
//     epoch 3  41%  2,310 seq/s  ETA 2m10s
//
// After each epoch, one line of its losses and validation metrics (print_epoch), a star on a new best.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include <unistd.h>

#include <nlohmann/json.hpp>

namespace euler {

// A duration for people: "0.4s", "45s", "2m10s", "1h02m" (rounded; never negative, "?" when unknown).
inline std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  char text[32];
  if (seconds < 9.95) std::snprintf(text, sizeof text, "%.1fs", seconds);
  else if (seconds < 59.5) std::snprintf(text, sizeof text, "%.0fs", seconds);
  else if (seconds < 3599.5) {
    long long s = std::llround(seconds);
    std::snprintf(text, sizeof text, "%lldm%02llds", s / 60, s % 60);
  } else {
    long long m = std::llround(seconds / 60);
    std::snprintf(text, sizeof text, "%lldh%02lldm", m / 60, m % 60);
  }
  return text;
}

// A count rounded to a whole number with thousands separators: 2310.4 -> "2,310".
inline std::string format_count(double x) {
  if (!std::isfinite(x)) return "?";
  std::string digits = std::to_string(std::llround(std::abs(x))), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return (x < 0 && out != "0" ? "-" : "") + out;
}

// The plain progress line of an epoch, `done` of `total` lists after `elapsed` seconds.
inline std::string progress_line(int epoch, int64_t done, int64_t total, double elapsed) {
  double rate = double(done) / std::max(elapsed, 1e-9);
  int percent = int(100 * done / std::max<int64_t>(1, total));
  return "epoch " + std::to_string(epoch) + "  " + std::to_string(percent) + "%  " + format_count(rate) + " seq/s  ETA " +
         (done > 0 ? format_duration(double(total - done) / rate) : "?");  // no rate yet: no estimate
}

// The progress of one epoch on stderr: update(done) after each batch; finish() clears the bar.
class EpochProgress {
 public:
  // every: seconds between plain lines (0: none); on: false prints nothing.
  EpochProgress(int epoch, int64_t total, double every, bool on)
      : epoch_(epoch), total_(total), every_(every), on_(on), start_(std::chrono::steady_clock::now()), last_(start_) {}

  void update(int64_t done) {
    if (!on_) return;
    auto now = std::chrono::steady_clock::now();
    double elapsed = std::chrono::duration<double>(now - start_).count();
    if (!isatty(2)) {
      if (every_ <= 0 || done >= total_ || std::chrono::duration<double>(now - last_).count() < every_) return;
      last_ = now;
      std::fprintf(stderr, "%s\n", progress_line(epoch_, done, total_, elapsed).c_str());
      return;
    }
    double rate = double(done) / std::max(elapsed, 1e-9);
    int width = 30, filled = int(double(width) * double(done) / double(std::max<int64_t>(1, total_)));
    std::fprintf(stderr, "\repoch %d [%.*s%*s] %3d%% %8.0f seq/s ETA %-8s", epoch_, filled, "==============================",
                 width - filled, "", int(100 * done / std::max<int64_t>(1, total_)), rate,
                 format_duration(double(total_ - done) / std::max(rate, 1e-9)).c_str());
    std::fflush(stderr);
  }
  void finish() const {
    if (on_ && isatty(2)) std::fprintf(stderr, "\r%80s\r", "");
  }

 private:
  int epoch_;
  int64_t total_;
  double every_;
  bool on_;
  std::chrono::steady_clock::time_point start_, last_;  // the epoch's start; the last plain line
};

// An epoch's record (the trainer's log.jsonl line) as one line for people.
inline void print_epoch(const nlohmann::json& line) {
  std::fprintf(stderr, "epoch %3d  loss %.4f (ce %.4f, con %.3g)  valid ndcg@10 %.4f hr@10 %.4f  %.1f s, %.0f seq/s%s\n",
               line["epoch"].get<int>(), line["loss"].get<double>(), line["loss_ce"].get<double>(), line["loss_con"].get<double>(),
               line["valid_ndcg@10"].get<double>(), line["valid_hr@10"].get<double>(), line["seconds"].get<double>(),
               line["seq_per_s"].get<double>(), line["best_epoch"].get<int>() == line["epoch"].get<int>() ? "  *" : "");
  if (line.contains("skipped_steps"))
    std::fprintf(stderr, "epoch %3d  skipped %lld non-finite steps\n", line["epoch"].get<int>(), line["skipped_steps"].get<long long>());
}

}  // namespace euler
