// Options shared by `euler train`, `euler eval` and `euler recommend`: reading the data the same way
// the model was trained on, and the model's hyperparameters.
#pragma once

#include <cxxopts.hpp>

#include <algorithm>
#include <charconv>
#include <string_view>
#include <type_traits>
#include <iostream>
#include <thread>

#include <euler/data/dataset.hpp>
#include <euler/eulerformer.hpp>
#include <euler/train/memory.hpp>

#include "mpi_session.hpp"

namespace euler::cli {

// A default as cxxopts shows it in --help and parses it: the library's own default, never restated.
inline std::string default_text(int value) { return std::to_string(value); }
inline std::string default_text(int64_t value) { return std::to_string(value); }
inline std::string default_text(uint64_t value) { return std::to_string(value); }
inline std::string default_text(std::string_view value) { return std::string(value); }
inline std::string default_text(double value) {  // the shortest text that reads back as the same double
  char text[32];
  return std::string(text, std::to_chars(text, text + sizeof text, value).ptr);
}
template <class E>
  requires std::is_enum_v<E>
std::string default_text(E value) { return to_string(value); }

// The data options; their defaults are DatasetOptions::paper()'s (rating >= 3, 10-core) and ColumnNames'.
inline void add_data_options(cxxopts::Options& options) {
  const DatasetOptions paper = DatasetOptions::paper();
  const ColumnNames columns;
  options.add_options("data")
      ("data", "interaction file: ratings.dat, u.data, 'user item' lines, 'user item item ...' lines, .inter or .csv",
       cxxopts::value<std::string>())
      ("format", "auto|ml-1m|ml-100k|pairs|sequences|inter|csv",
       cxxopts::value<std::string>()->default_value(default_text(format_name(paper.format))))
      ("dedup", "drop repeated rows before the filters: none, exact (same user, item and timestamp) or consecutive "
                "(also an item repeating the user's previous one)",
       cxxopts::value<std::string>()->default_value(default_text(dedup_names[size_t(paper.dedup)])))
      ("min-rating", "keep interactions rated >= this (files with ratings only; negative: keep all)",
       cxxopts::value<double>()->default_value(default_text(paper.min_rating)))
      ("min-user", "k-core: keep users with at least this many interactions",
       cxxopts::value<int64_t>()->default_value(default_text(paper.min_user_interactions)))
      ("min-item", "k-core: keep items with at least this many interactions",
       cxxopts::value<int64_t>()->default_value(default_text(paper.min_item_interactions)))
      ("user-column", "csv/inter: user column", cxxopts::value<std::string>()->default_value(columns.user))
      ("item-column", "csv/inter: item column", cxxopts::value<std::string>()->default_value(columns.item))
      ("rating-column", "csv/inter: rating column", cxxopts::value<std::string>()->default_value(columns.rating))
      ("time-column", "csv/inter: timestamp column", cxxopts::value<std::string>()->default_value(columns.timestamp));
}

inline DatasetOptions data_options(const cxxopts::ParseResult& args) {
  DatasetOptions o;
  o.format = parse_format(args["format"].as<std::string>());
  o.dedup = parse_dedup(args["dedup"].as<std::string>());
  o.min_rating = args["min-rating"].as<double>();
  o.min_user_interactions = args["min-user"].as<int64_t>();
  o.min_item_interactions = args["min-item"].as<int64_t>();
  if (o.min_user_interactions < 0 || o.min_item_interactions < 0)
    throw cxxopts::exceptions::exception("--min-user and --min-item must be >= 0");
  o.columns.user = args["user-column"].as<std::string>();
  o.columns.item = args["item-column"].as<std::string>();
  o.columns.rating = args["rating-column"].as<std::string>();
  o.columns.timestamp = args["time-column"].as<std::string>();
  return o;
}

// An integer option that must be at least `lowest`; a usage error naming it otherwise.
inline int at_least(const cxxopts::ParseResult& args, const char* name, int lowest) {
  int value = args[name].as<int>();
  if (value < lowest)
    throw cxxopts::exceptions::exception(std::string("--") + name + " must be >= " + std::to_string(lowest) + ", got " +
                                         std::to_string(value));
  return value;
}

// --threads' default: every hardware thread of the machine (the same seed and thread count give the
// same results; pass --threads to fix it across machines).

// The machine's hardware threads, shared among the processes mpirun starts on it.
inline std::string default_threads() {
  const int processes = MpiSession::local_processes();
  return std::to_string(std::max(1, int(std::max(1u, std::thread::hardware_concurrency())) / processes));
}
inline std::string threads_help() {
  return "threads (by default the machine's hardware threads; under mpirun, divided among the processes on the machine)";
}

inline int thread_count(const cxxopts::ParseResult& args) {
  int threads = at_least(args, "threads", 1);
  if (threads > max_threads())
    throw cxxopts::exceptions::exception("--threads " + std::to_string(threads) + " is more than " + std::to_string(max_threads()) +
                                         " (4 per hardware thread; this machine has " +
                                         std::to_string(std::max(1u, std::thread::hardware_concurrency())) + ")");
  return threads;
}

// --max-memory: the most memory a run may need by its estimate (train/memory.hpp), as 500M, 8G or a
// number of megabytes; the default is 80% of physical memory.
inline void add_memory_option(cxxopts::Options& options) {
  options.add_options()("max-memory", "refuse a run whose memory estimate is above this (e.g. 500M, 8G; default: 80% of physical memory)",
                        cxxopts::value<std::string>());
}
inline int64_t memory_limit(const cxxopts::ParseResult& args) {
  if (!args.count("max-memory")) return default_memory_limit();
  std::string text = args["max-memory"].as<std::string>();
  double value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  std::string unit(end, size_t(text.data() + text.size() - end));
  double scale = unit.empty() || unit == "M" || unit == "MB" ? 1e6 : unit == "G" || unit == "GB" ? 1e9 : unit == "K" || unit == "KB" ? 1e3 : 0;
  if (error != std::errc() || end == text.data() || scale == 0 || !(value > 0) || value * scale > 9e18)
    throw cxxopts::exceptions::exception("--max-memory: '" + text + "' is not a size (expected e.g. 500M or 8G)");
  return int64_t(value * scale);
}

inline std::string required(const cxxopts::ParseResult& args, const char* name) {
  if (!args.count(name)) throw cxxopts::exceptions::exception(std::string("missing --") + name);
  return args[name].as<std::string>();
}

// Read --data with the data flags. The summary goes to stderr when `verbose`; a warning that the
// filters removed most of the file goes there always.
inline Dataset load_data(const cxxopts::ParseResult& args, bool verbose) {
  Dataset data = load_dataset(required(args, "data"), data_options(args));
  if (verbose) {
    std::cerr << data.summary() << "\n";
  } else if (std::string warning = data.filter_warning(); !warning.empty()) {
    std::cerr << warning << "\n";
  }
  return data;
}

}  // namespace euler::cli
