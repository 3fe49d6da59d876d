// Options shared by `euler train`, `euler eval` and `euler recommend`: reading the data the same way
// the model was trained on, and the model's hyperparameters.
#pragma once

#include <cxxopts.hpp>

#include <euler/data/dataset.hpp>
#include <euler/eulerformer.hpp>

namespace euler::cli {

inline void add_data_options(cxxopts::Options& options) {
  options.add_options("data")
      ("data", "interaction file: ratings.dat, u.data, 'user item' lines, 'user item item ...' lines, .inter or .csv",
       cxxopts::value<std::string>())
      ("format", "auto|ml-1m|ml-100k|pairs|sequences|inter|csv", cxxopts::value<std::string>()->default_value("auto"))
      ("min-rating", "keep interactions rated >= this (files with ratings only; negative: keep all)",
       cxxopts::value<double>()->default_value("3"))
      ("min-user", "k-core: keep users with at least this many interactions", cxxopts::value<int64_t>()->default_value("10"))
      ("min-item", "k-core: keep items with at least this many interactions", cxxopts::value<int64_t>()->default_value("10"))
      ("user-column", "csv/inter: user column", cxxopts::value<std::string>()->default_value("user_id"))
      ("item-column", "csv/inter: item column", cxxopts::value<std::string>()->default_value("item_id"))
      ("rating-column", "csv/inter: rating column", cxxopts::value<std::string>()->default_value("rating"))
      ("time-column", "csv/inter: timestamp column", cxxopts::value<std::string>()->default_value("timestamp"));
}

inline DatasetOptions data_options(const cxxopts::ParseResult& args) {
  DatasetOptions o;
  o.format = parse_format(args["format"].as<std::string>());
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

inline std::string required(const cxxopts::ParseResult& args, const char* name) {
  if (!args.count(name)) throw cxxopts::exceptions::exception(std::string("missing --") + name);
  return args[name].as<std::string>();
}

}  // namespace euler::cli
