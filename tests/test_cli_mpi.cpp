// `mpirun -np P euler train`: data-parallel training over MPI with the program itself (src/mpi_session.hpp,
// include/euler/mpi/group.hpp). P = 2 and 3 (an uneven share of every batch) train the model of one
// process: the same loss per epoch to 1e-5, the same metrics within seed noise, identical replicas (the
// trainer compares their parameter hashes), the same bits when run twice; a run resumes with any P; a
// rank that fails (an unreadable file, killed mid-epoch) stops every rank instead of leaving them
// waiting. Skipped (euler-skip) when the program was built without MPI.
#include <doctest/doctest.h>

#include "cli_helpers.hpp"

#include <euler/data/synthetic.hpp>
#include <euler/eulerformer.hpp>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

namespace test_cli_mpi {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

#if EULER_CLI_MPI

namespace {

std::string temp_path(const std::string& name) { return euler_test::temp_path("cli_mpi", name); }

// `mpirun -np P <command>` with output to `log`; root needs --allow-run-as-root (CI runs as root), and
// the 2 cores of a small machine need --oversubscribe for 3 ranks. `timeout` turns a hang into a failure.
int mpirun(int P, const std::string& command, const std::string& log) {
  std::string launcher = std::string("timeout 300 ") + EULER_MPIEXEC + " --oversubscribe" +
                         (geteuid() == 0 ? " --allow-run-as-root" : "") + " -np " + std::to_string(P) + " ";
  int status = std::system((launcher + command + " > " + log + " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  return t.substr(t.rfind('\n') == std::string::npos ? 0 : t.rfind('\n') + 1);
}

std::vector<double> epoch_losses(const std::string& dir) {
  std::vector<double> losses;
  std::ifstream in(dir + "/log.jsonl");
  for (std::string line; std::getline(in, line);) losses.push_back(nlohmann::json::parse(line)["loss"].get<double>());
  return losses;
}

struct Fixture {
  std::string data = temp_path("small.txt");
  std::string model, flags;  // flags: " train --data DATA" + model
  Fixture() {
    SyntheticConfig s;
    s.users = 150;
    std::ofstream(data) << to_s3rec_text(generate_synthetic(s));
    // dropout and the contrastive loss on: the shares must draw the whole batch's masks
    model = " --min-user 0 --min-item 0 --max-len 12 --hidden 16 --inner 32 --heads 2 --dropout 0.3 --attn-dropout 0.3 "
            "--lamb 1e-3 --objective all --batch-size 40 --lr 3e-3 --seed 5 --threads 1 --quiet";
    flags = " train --data " + data + model;
  }
};

}  // namespace

TEST_CASE("mpirun: 2 and 3 processes train the model of one process; twice the same bits") {
  Fixture f;
  const std::string cli = EULER_CLI_PATH, log = temp_path("log");
  REQUIRE(euler_test::run_cli(f.flags.substr(1) + " --epochs 3 --out " + temp_path("one"), log) == 0);
  nlohmann::json one = nlohmann::json::parse(last_line(read_file(log)));
  std::vector<double> reference = epoch_losses(temp_path("one"));
  REQUIRE(reference.size() == 3);
  std::string checksum;
  for (int P : {2, 3, 2}) {
    CAPTURE(P);
    std::string out = temp_path("p" + std::to_string(P));
    euler_test::remove_tree(out);
    REQUIRE(mpirun(P, cli + f.flags + " --epochs 3 --out " + out, log) == 0);
    std::string printed = read_file(log);
    nlohmann::json many = nlohmann::json::parse(last_line(printed));
    CHECK(many["processes"] == P);
    CHECK(printed.find("parameter_checksum") == printed.rfind("parameter_checksum"));  // one rank printed
    std::vector<double> losses = epoch_losses(out);
    REQUIRE(losses.size() == reference.size());
    for (size_t e = 0; e < losses.size(); ++e) CHECK(std::abs(losses[e] - reference[e]) <= 1e-5 * std::abs(reference[e]));
    CHECK(std::abs(many["test_ndcg@10"].get<double>() - one["test_ndcg@10"].get<double>()) <= 0.02);
    if (P == 2 && !checksum.empty()) CHECK(many["parameter_checksum"] == checksum);  // the second P = 2 run
    if (P == 2) checksum = many["parameter_checksum"];
  }
}

TEST_CASE("mpirun: a run checkpointed with 2 processes resumes with 1 or 3") {
  Fixture f;
  const std::string cli = EULER_CLI_PATH, log = temp_path("log");
  const std::string full = temp_path("full"), part = temp_path("part");
  euler_test::remove_tree(full);
  REQUIRE(euler_test::run_cli(f.flags.substr(1) + " --epochs 2 --out " + full, log) == 0);
  std::vector<double> reference = epoch_losses(full);
  for (int P : {1, 3}) {
    CAPTURE(P);
    euler_test::remove_tree(part);
    REQUIRE(mpirun(2, cli + f.flags + " --epochs 1 --out " + part, log) == 0);
    const std::string resume = " --epochs 2 --resume " + part + "/checkpoint.safetensors --out " + part;
    REQUIRE((P == 1 ? euler_test::run_cli(f.flags.substr(1) + resume, log) : mpirun(P, cli + f.flags + resume, log)) == 0);
    std::vector<double> losses = epoch_losses(part);
    REQUIRE(losses.size() == 2);
    for (size_t e = 0; e < 2; ++e) CHECK(std::abs(losses[e] - reference[e]) <= 1e-5 * std::abs(reference[e]));
  }
}

TEST_CASE("mpirun: a rank that fails stops every rank, with its message, instead of a hang") {
  Fixture f;
  const std::string cli = EULER_CLI_PATH, log = temp_path("log");
  // Rank 1 alone is given a file that does not exist.
  std::string missing = temp_path("missing.txt");
  std::string script = temp_path("one_bad_rank.sh");
  std::ofstream(script) << "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then exec " << cli << " train --data " << missing << f.model
                        << " --epochs 2 --out " << temp_path("bad") << "; else exec " << cli << f.flags << " --epochs 2 --out "
                        << temp_path("bad") << "; fi\n";
  auto start = std::chrono::steady_clock::now();
  CHECK(mpirun(2, "sh " + script, log) != 0);
  std::string printed = read_file(log);
  CHECK_MESSAGE(printed.find("[rank 1 of 2]") != std::string::npos, printed);
  CHECK_MESSAGE(printed.find("missing.txt") != std::string::npos, printed);

  // Rank 1 is killed a few seconds into a long run: mpirun ends the job.
  std::ofstream(script) << "if [ \"$OMPI_COMM_WORLD_RANK\" = 1 ]; then (sleep 4; kill -9 $$) & fi; exec " << cli << f.flags
                        << " --epochs 500 --patience 500 --out " << temp_path("killed") << "\n";
  CHECK(mpirun(2, "sh " + script, log) != 0);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  CHECK_MESSAGE(seconds < 200, "the failed runs took " << seconds << " s");
}

TEST_CASE("mpirun: only train runs over MPI; the other commands say so") {
  const std::string log = temp_path("log");
  CHECK(mpirun(2, std::string(EULER_CLI_PATH) + " eval --checkpoint x.safetensors --data y.txt", log) != 0);
  std::string printed = read_file(log);
  CHECK(printed.find("only 'euler train' runs over MPI") != std::string::npos);
  CHECK(printed.find("only 'euler train'") == printed.rfind("only 'euler train'"));  // printed once
}

#else

TEST_CASE("mpirun: skipped, the program was built without MPI") {
  MESSAGE("euler-skip: the euler program was built without MPI (install libopenmpi-dev; EULER_MPI=AUTO finds it)");
}

#endif

}  // namespace test_cli_mpi
