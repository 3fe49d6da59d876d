// euler/train/memory.hpp: how much memory a run will take, estimated from its shapes before anything
// large is allocated, and the limit it is checked against.
//
// A flag such as --max-len 65536 or --batch-size 2147483647, or a checkpoint edited to such a config,
// would otherwise allocate until std::bad_alloc, minutes and gigabytes later. The trainer, `euler eval`,
// `recommend` and `grad` call check_memory() first: above the limit (--max-memory, by default 80% of
// the machine's memory) the run is refused with the estimate and its largest part.
//
// The estimate counts the float tensors that dominate (one "list" is one sequence of N positions):
//   parameters   P values x (value, gradient, two Adam moments, best copy, one gradient per thread)
//   training     per layer, the fused layer's kept intermediates (while they fit keep_bytes):
//                  B x (24 N D + 2 N I + (3H + 3) N^2)
//                and its outputs and their gradients, 3 B N D; outside the layers 8 B N D (embeddings,
//                dropout, LayerNorm); the loss's B N D + 2 K D and a 256 x K tile per thread; each
//                thread's tile scratch, ceil(256 / N) lists of 30 N D + 4 N I + (3H + 2) N^2.
//                The composed (unfused) layer instead keeps B x (40 N D + 6 H N^2) per layer.
//   evaluation   E rows: (2 layers + 10) E N D values on the forward tape, E K scores, the tile scratch.
// Peak = parameters + max(training, evaluation). The coefficients were fitted to measured peaks (less
// the program's own, about 220 MB with the cuBLAS libraries mapped): on ML-1M at the literature's
// settings (B 128, N 200, D 64, 2 layers, eval batch 1024) the estimate is 790 MB against 857 MB
// measured; on the bundled data at B 512, N 100, D 32 it is 720 against 801, and with keep_bytes 0
// 190 against 190. tests/test_cli_errors.cpp checks that it stays within a factor 2.
//
//     euler::MemoryShape shape = euler::memory_shape(config, parameter_count, batch, eval_rows, threads, keep_bytes, fused);
//     euler::check_memory(shape, euler::default_memory_limit(), "euler train");  // throws MemoryLimitError
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "euler/model/config.hpp"

namespace euler {

// A run that would need more memory than its limit; thrown before the large allocations.
class MemoryLimitError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The machine's physical memory in bytes (0 when unknown).
inline int64_t physical_memory_bytes() {
  long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? int64_t(pages) * int64_t(page) : 0;
}

// The default limit: 80% of physical memory (no limit when that is unknown).
inline int64_t default_memory_limit() {
  int64_t physical = physical_memory_bytes();
  return physical > 0 ? physical / 5 * 4 : INT64_MAX;
}

// "1.5 GB", "640 MB", "12 KB".
inline std::string byte_size(double bytes) {
  char text[32];
  if (bytes >= 1e9) std::snprintf(text, sizeof text, "%.1f GB", bytes / 1e9);
  else if (bytes >= 1e6) std::snprintf(text, sizeof text, "%.0f MB", bytes / 1e6);
  else std::snprintf(text, sizeof text, "%.0f KB", bytes / 1e3);
  return text;
}

// The estimate's parts, in bytes (doubles: absurd configs overflow int64).
struct MemoryEstimate {
  double parameters = 0, training = 0, evaluation = 0;
  std::string largest;  // the largest single part, in words
  double total() const { return parameters + std::max(training, evaluation); }
};

// What the estimate needs to know about a run. batch: training lists per step (0: no training);
// eval_rows: lists scored at once (0: none).
struct MemoryShape {
  EulerFormerConfig config;
  int64_t parameters = 0, batch = 0, eval_rows = 0, threads = 1, keep_bytes = kDefaultKeepBytes;
  bool fused = true;
};

inline MemoryEstimate estimate_memory(const MemoryShape& s) {
  const EulerFormerConfig& c = s.config;
  const double N = c.max_len, D = c.hidden_size, I = c.inner_size, H = c.n_heads, K = c.n_items, L = c.n_layers;
  const double B = double(s.batch), E = double(s.eval_rows), threads = double(std::max<int64_t>(1, s.threads));
  const double f = sizeof(float), lists_per_tile = std::max(1.0, std::floor(256.0 / N));
  MemoryEstimate m;
  m.parameters = double(s.parameters) * (5 + threads) * f;
  const double scratch = threads * lists_per_tile * (30 * N * D + 4 * N * I + (3 * H + 2) * N * N) * f;
  double layers = 0;
  if (B > 0) {
    const double kept = B * (24 * N * D + 2 * N * I + (3 * H + 3) * N * N) * f;
    const double per_layer = s.fused ? (kept <= double(s.keep_bytes) ? kept : 0.0) : B * (40 * N * D + 6 * H * N * N) * f;
    layers = L * (per_layer + 3 * B * N * D * f);
    const double outside = 8 * B * N * D * f, loss = (B * N * D + 2 * K * D + threads * 256 * K) * f;
    m.training = layers + outside + loss + scratch;
  }
  if (E > 0) m.evaluation = ((2 * L + 10) * E * N * D + E * K) * f + scratch;
  const double attention = lists_per_tile * (3 * H + 2) * N * N * f;
  if (attention >= std::max(layers, 8 * B * N * D * f) && attention > m.parameters)
    m.largest = "the attention of one tile of " + std::to_string(int64_t(lists_per_tile)) + " list(s) of " + std::to_string(int64_t(N)) +
                " positions (N^2) per thread: " + byte_size(attention);
  else if (B > 0 && layers >= m.parameters && layers >= m.evaluation)
    m.largest = "what " + std::to_string(int64_t(L)) + " layer(s) keep for backward at batch " + std::to_string(int64_t(B)) + " x " +
                std::to_string(int64_t(N)) + " positions: " + byte_size(layers);
  else if (m.evaluation >= m.parameters)
    m.largest = "scoring " + std::to_string(int64_t(E)) + " lists at once against " + std::to_string(int64_t(K)) + " items: " +
                byte_size(m.evaluation);
  else
    m.largest = "the parameters, their gradients and Adam's moments: " + byte_size(m.parameters);
  return m;
}

// Throws MemoryLimitError when the estimate is above `limit` bytes; `what` names the command.
inline MemoryEstimate check_memory(const MemoryShape& shape, int64_t limit, const std::string& what) {
  MemoryEstimate m = estimate_memory(shape);
  if (m.total() > double(limit)) {
    std::string physical = physical_memory_bytes() > 0 ? " (this machine has " + byte_size(double(physical_memory_bytes())) + ")" : "";
    throw MemoryLimitError(what + " would need about " + byte_size(m.total()) + " of memory (largest part: " + m.largest +
                           "), more than the limit of " + byte_size(double(limit)) + physical +
                           "; use a smaller --max-len, --batch-size or --eval-batch, or raise --max-memory");
  }
  return m;
}

// check_memory for a training run, where keeping the layers' intermediates for backward is a speed
// choice, never worth a refusal: a shape over the limit with them kept that fits when backward computes
// them again (the same bits, slower) comes back with keep_bytes 0 (said on stderr when `verbose`).
inline MemoryShape check_memory_or_recompute(MemoryShape shape, int64_t limit, const std::string& what, bool verbose) {
  MemoryShape recompute = shape;
  recompute.keep_bytes = 0;
  const double kept = estimate_memory(shape).total(), recomputed = estimate_memory(recompute).total();
  if (kept > double(limit) && recomputed <= double(limit)) {
    if (verbose)
      std::fprintf(stderr, "memory: keeping the layers' intermediates would need about %s, over the limit of %s; backward computes "
                   "them again (about %s)\n", byte_size(kept).c_str(), byte_size(double(limit)).c_str(), byte_size(recomputed).c_str());
    shape = recompute;
  }
  check_memory(shape, limit, what);
  return shape;
}

}  // namespace euler
