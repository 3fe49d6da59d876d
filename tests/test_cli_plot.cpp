// `euler train --plot DIR`: the training curves as SVG and CSV, with and without --out and --resume.
#include <doctest/doctest.h>

#include "cli_helpers.hpp"
#include "xml_check.hpp"

#include <euler/data/synthetic.hpp>
#include <euler/plot/training_curves.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

namespace test_cli_plot {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

namespace {
std::string temp_path(const std::string& name) { return euler_test::temp_path("cli_plot", name); }

// Number of data rows of a CSV (lines after the header).
size_t csv_rows(const std::string& path) {
  std::string text = read_file(path);
  return size_t(std::count(text.begin(), text.end(), '\n')) - 1;
}
}  // namespace

TEST_CASE("euler train --plot writes the training curves") {
  SyntheticConfig s;
  s.users = 100;
  std::string data = temp_path("small.txt"), log = temp_path("log");
  std::ofstream(data) << to_s3rec_text(generate_synthetic(s));
  std::string common = "train --data " + data + " --max-len 10 --hidden 8 --inner 16 --layers 1 --min-user 0 --min-item 0 "
                       "--objective all --batch-size 32 --quiet";

  // Without --out: the curves of this run, from the trainer's records.
  std::string plots = temp_path("plots");
  REQUIRE(euler_test::run_cli(common + " --epochs 2 --lamb 0.01 --plot " + plots, log) == 0);
  for (const char* name : {"curves.csv", "loss.svg", "contrastive.svg", "validation.svg"}) CHECK_MESSAGE(fs::exists(fs::path(plots) / name), name);
  CHECK(csv_rows(plots + "/curves.csv") == 2);
  CHECK(read_file(plots + "/curves.csv").rfind("epoch,loss,loss_ce,loss_con,valid_hr@5,valid_hr@10,valid_hr@20,valid_ndcg@5,", 0) == 0);
  for (const char* name : {"loss.svg", "contrastive.svg", "validation.svg"}) {
    std::string svg = read_file(plots + "/" + name);
    CAPTURE(name);
    CHECK(euler_test::xml_problem(svg) == "");
    CHECK(svg.find("small.txt") != std::string::npos);  // the run is named in the title
  }

  // With --out and --resume: the whole history, also the epochs before the resume.
  std::string out = temp_path("run"), resumed = temp_path("plots_resumed");
  REQUIRE(euler_test::run_cli(common + " --epochs 2 --lamb 0 --out " + out, log) == 0);
  REQUIRE(euler_test::run_cli(common + " --epochs 3 --lamb 0 --out " + out + " --resume " + out + "/checkpoint.safetensors --plot " + resumed,
                              log) == 0);
  CHECK(csv_rows(resumed + "/curves.csv") == 3);
  CHECK(!fs::exists(fs::path(resumed) / "contrastive.svg"));  // lamb 0: no contrastive term to show
}

TEST_CASE("euler train --plot: a directory that cannot be made fails before training") {
  std::string data = temp_path("tiny.txt"), log = temp_path("err"), blocker = temp_path("a_file");
  std::ofstream(data) << "1 1 2 3 4\n2 2 3 4 5\n";
  std::ofstream(blocker) << "not a directory\n";
  CHECK(euler_test::run_cli("train --data " + data + " --min-user 0 --min-item 0 --plot " + blocker + "/plots", log) == 1);
  std::string message = read_file(log);
  CHECK_MESSAGE(message.find("cannot create the --plot directory") != std::string::npos, message);
  CHECK(message.find("epoch") == std::string::npos);  // nothing was trained
}

}  // namespace test_cli_plot
