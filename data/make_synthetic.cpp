// make_synthetic: writes the project's synthetic next-item dataset (include/euler/data/synthetic.hpp)
// in S3-Rec's format, one user per line `user item1 item2 ...`, and prints its statistics and the
// leave-one-out scores of the popularity and Markov baselines.
//
//     make_synthetic                            # the defaults: rewrites data/synthetic.txt exactly
//     make_synthetic --out /tmp/big.txt --users 20000 --seed 7
//
// Build: g++ -std=c++20 -O2 -Iinclude -isystem /usr/include/eigen3 -fopenmp data/make_synthetic.cpp -o make_synthetic
#include <cxxopts.hpp>

#include <cstdio>
#include <exception>
#include <iostream>
#include <string>

#include "euler/data/synthetic.hpp"
#include "euler/io/atomic_file.hpp"

int main(int argc, char** argv) {
  euler::SyntheticConfig config;  // its defaults are the shipped file's
  cxxopts::Options options("make_synthetic", "Write the synthetic next-item dataset (S3-Rec format) and its statistics");
  // clang-format off
  options.add_options()
      ("out", "output file", cxxopts::value<std::string>()->default_value("data/synthetic.txt"))
      ("seed", "random seed", cxxopts::value<uint64_t>()->default_value(std::to_string(config.seed)))
      ("users", "number of users U", cxxopts::value<int32_t>()->default_value(std::to_string(config.users)))
      ("items", "number of items K (ids 1..K)", cxxopts::value<int32_t>()->default_value(std::to_string(config.items)))
      ("clusters", "number of item clusters C", cxxopts::value<int32_t>()->default_value(std::to_string(config.clusters)))
      ("min-length", "shortest sequence", cxxopts::value<int32_t>()->default_value(std::to_string(config.min_length)))
      ("max-length", "longest sequence", cxxopts::value<int32_t>()->default_value(std::to_string(config.max_length)))
      ("noise", "probability that a step is a noise item", cxxopts::value<double>()->default_value(std::to_string(config.noise)))
      ("h,help", "this help");
  // clang-format on
  try {
    cxxopts::ParseResult args = options.parse(argc, argv);
    if (args.count("help")) {
      std::cout << options.help() << "\nWith no options it rewrites data/synthetic.txt byte for byte.\n";
      return 0;
    }
    if (!args.unmatched().empty()) throw std::invalid_argument("unexpected argument '" + args.unmatched()[0] + "'");
    config.seed = args["seed"].as<uint64_t>();
    config.users = args["users"].as<int32_t>();
    config.items = args["items"].as<int32_t>();
    config.clusters = args["clusters"].as<int32_t>();
    config.min_length = args["min-length"].as<int32_t>();
    config.max_length = args["max-length"].as<int32_t>();
    config.noise = args["noise"].as<double>();

    euler::SyntheticWorld world = euler::build_synthetic_world(config);
    std::vector<std::vector<int32_t>> sequences = euler::generate_synthetic(config, world);
    std::string text = euler::to_s3rec_text(sequences);
    std::string out = args["out"].as<std::string>();
    euler::write_file_atomically(out, text);

    std::printf("wrote %s: %zu bytes\n%s%s", out.c_str(), text.size(),
                euler::synthetic_statistics(sequences, world).summary().c_str(),
                euler::evaluate_markov_baselines(sequences, config.items).summary().c_str());
    return 0;
  } catch (const cxxopts::exceptions::exception& e) {
    std::cerr << "make_synthetic: " << e.what() << " (see 'make_synthetic --help')\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "make_synthetic: error: " << e.what() << "\n";
    return 1;
  }
}
