// euler/train/progress.hpp: how the trainer reports progress inside an epoch. On a terminal, a bar
// redrawn in place; otherwise (nohup, CI, a pipe) a plain line every TrainOptions::progress_every
// seconds, so a log shows a long epoch moving:
//
//     epoch 3  41%  2,310 seq/s  ETA 2m10s
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

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

}  // namespace euler
