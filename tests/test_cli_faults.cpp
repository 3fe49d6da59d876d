// Faults while `euler train` writes its files: SIGKILL at random moments (and on purpose while a
// checkpoint is being written) never leaves a checkpoint that does not load, and resuming from the
// latest one ends with the metrics of an uninterrupted run. A write that fails (the file-size limit,
// as a full disk would) is reported, and the previous checkpoint stays as it was.
#include <doctest/doctest.h>

#include "cli_helpers.hpp"

#include <euler/eulerformer.hpp>
#include <euler/train/trainer.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace test_cli_faults {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;
namespace fs = std::filesystem;

namespace {

std::string temp_path(const std::string& name) { return euler_test::temp_path("cli_faults", name); }

std::vector<std::string> split_words(const std::string& text) {
  std::istringstream in(text);
  std::vector<std::string> words;
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// Starts `euler <args>` with output to `log`; `file_size_limit` > 0 sets RLIMIT_FSIZE in the child
// (with SIGXFSZ ignored, so an oversized write fails with EFBIG as on a full disk).
pid_t start(const std::string& args, const std::string& log, rlim_t file_size_limit = 0) {
  std::vector<std::string> words = split_words(args);
  words.insert(words.begin(), EULER_CLI_PATH);
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // only async-signal-safe calls from here to exec
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) ::dup2(fd, 1), ::dup2(fd, 2);
    if (file_size_limit > 0) {
      ::signal(SIGXFSZ, SIG_IGN);
      struct rlimit limit = {file_size_limit, file_size_limit};
      ::setrlimit(RLIMIT_FSIZE, &limit);
    }
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  return pid;
}
int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}
std::string last_line(const std::string& text) {
  std::string t = text;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  size_t newline = t.rfind('\n');
  return newline == std::string::npos ? t : t.substr(newline + 1);
}
// Whether `dir` holds a temporary of write_file_atomically (of the file named `of`, or of any).
bool has_temporary(const std::string& dir, const std::string& of = "") {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    if (name.find(".tmp.") != std::string::npos && name.find(of) != std::string::npos) return true;
  }
  return false;
}

// 40 users of 8 items out of 1200, and a small model: an epoch takes milliseconds, and a
// checkpoint (the item table four times: weights, two Adam moments, best weights) about 600 KB, so
// that writing it takes long enough to be caught in the act.
struct Setup {
  std::string data = temp_path("data.txt");
  std::string args = " --format sequences --max-len 5 --hidden 32 --inner 32 --layers 1 --min-user 0 --min-item 0 --quiet --batch-size 16 --seed 5";
  Setup() {
    std::ofstream out(data);
    for (int u = 0; u < 40; ++u) {
      out << 1000 + u;
      for (int k = 0; k < 8; ++k) out << " " << 1 + (u * 37 + k * (11 + u % 4)) % 1200;
      out << "\n";
    }
  }
  std::string train(int epochs, const std::string& out, int patience = 100) const {
    return "train --data " + data + args + " --epochs " + std::to_string(epochs) + " --patience " + std::to_string(patience) +
           " --out " + out;
  }
};

}  // namespace

TEST_CASE("faults: SIGKILL at random moments and during checkpoint writes; the latest checkpoint loads and resumes exactly") {
  Setup setup;
  const int epochs = 5;
  std::string full = temp_path("full"), log = temp_path("full.log");
  fs::remove_all(full);
  auto started = std::chrono::steady_clock::now();
  REQUIRE(wait_for(start(setup.train(epochs, full), log)) == 0);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::string expected = last_line(read_file(log));
  REQUIRE(nlohmann::json::parse(expected)["epochs"].get<int>() == epochs);

  std::mt19937 random(20240607);
  int during_writes = 0, with_checkpoint = 0;
  const int trials = 6;
  for (int trial = 0; trial < trials; ++trial) {
    CAPTURE(trial);
    std::string dir = temp_path("trial" + std::to_string(trial)), trial_log = dir + ".log";
    fs::remove_all(dir);
    pid_t pid = start(setup.train(epochs, dir), trial_log);
    if (trial % 2 == 0) {
      // A random moment of the run.
      std::this_thread::sleep_for(std::chrono::duration<double>(std::uniform_real_distribution<double>(0.05, 0.95)(random) * seconds));
    } else {
      // While a checkpoint is being written: as soon as its temporary appears, after 0-200 us.
      auto give_up = std::chrono::steady_clock::now() + std::chrono::duration<double>(2 * seconds + 5);
      while (!has_temporary(dir, "checkpoint") && std::chrono::steady_clock::now() < give_up) std::this_thread::yield();
      std::this_thread::sleep_for(std::chrono::microseconds(std::uniform_int_distribution<int>(0, 200)(random)));
    }
    ::kill(pid, SIGKILL);
    int code = wait_for(pid);
    bool killed = code == -SIGKILL;
    during_writes += killed && has_temporary(dir);

    std::string checkpoint = dir + "/checkpoint.safetensors";
    std::string resume;
    if (fs::exists(checkpoint)) {
      ++with_checkpoint;
      // It loads as a whole: weights, config, training state.
      safetensors::File file = safetensors::File::read(checkpoint);
      EulerFormerConfig config = read_config(file);
      int epoch = nlohmann::json::parse(file.metadata().at("train_state"))["epoch"].get<int>();
      CHECK(epoch >= 1);
      CHECK(epoch <= epochs);
      EulerFormer<float> model(config);
      load_weights(file, model, /*allow_unexpected=*/true);  // the optimizer's state is there too
      resume = " --resume " + checkpoint;
    }
    if (fs::exists(dir + "/best.safetensors")) CHECK_NOTHROW(load_model<float>(dir + "/best.safetensors"));
    // Resuming (or starting again, when no checkpoint was written yet) ends with the same metrics.
    REQUIRE(wait_for(start(setup.train(epochs, dir) + resume, trial_log)) == 0);
    CHECK(last_line(read_file(trial_log)) == expected);
    CHECK_FALSE(has_temporary(dir));  // the killed run's temporary was cleaned up
    std::string lines = read_file(dir + "/log.jsonl");
    CHECK(std::count(lines.begin(), lines.end(), '\n') == epochs);  // each epoch logged once
    for (int e = 1; e <= epochs; ++e) CHECK(lines.find("\"epoch\":" + std::to_string(e) + ",") != std::string::npos);
  }
  MESSAGE(trials << " kills: " << with_checkpoint << " left a checkpoint, " << during_writes << " hit a write in progress (run: "
                 << seconds << " s)");
  CHECK(during_writes >= 1);
}

TEST_CASE("faults: a write that fails (file-size limit, as a full disk) is reported; the previous checkpoint stays") {
  Setup setup;
  std::string dir = temp_path("full_disk"), log = temp_path("full_disk.log");
  fs::remove_all(dir);
  REQUIRE(wait_for(start(setup.train(1, dir), log)) == 0);
  std::string checkpoint = dir + "/checkpoint.safetensors";
  std::string before = read_file(checkpoint);

  // Room for the small files (the write probe, the log), not for a checkpoint.
  rlim_t limit = rlim_t(before.size() / 2);
  int code = wait_for(start(setup.train(3, dir) + " --resume " + checkpoint, log, limit));
  std::string output = read_file(log);
  CHECK_MESSAGE(code == 1, output);
  CHECK_MESSAGE(output.find("write failed: File too large (epoch 2 not saved; the file it was replacing is unchanged, and " +
                            checkpoint + " (epoch 1) is unchanged)") != std::string::npos,
                output);
  CHECK(read_file(checkpoint) == before);
  CHECK_FALSE(has_temporary(dir));
  // The checkpoint still resumes, and without the limit the run completes.
  REQUIRE(wait_for(start(setup.train(3, dir) + " --resume " + checkpoint, log)) == 0);
  CHECK(nlohmann::json::parse(last_line(read_file(log)))["epochs"].get<int>() == 3);
}

namespace {
// Waits until `file` exists (up to a minute); false if it never appeared.
bool wait_for_file(const std::string& file) {
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(file) && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return fs::exists(file);
}
bool still_running(pid_t pid) {
  int status = 0;
  return ::waitpid(pid, &status, WNOHANG) == 0;
}
std::string refusal(const std::string& dir, pid_t holder) {
  return "euler train: error: " + dir + ": another euler run (pid " + std::to_string(holder) +
         ") is writing into this directory; wait for it to end, or use another output directory\n";
}
// log.jsonl holds one line per epoch, epochs 1..n in order.
void check_log(const std::string& dir, int epochs) {
  std::istringstream lines(read_file(dir + "/log.jsonl"));
  int expected = 0;
  for (std::string line; std::getline(lines, line);) CHECK(nlohmann::json::parse(line)["epoch"].get<int>() == ++expected);
  CHECK(expected == epochs);
}
}  // namespace

TEST_CASE("faults: a second run writing into the same --out is refused at once, naming the first's pid") {
  Setup setup;
  // About 6 s alone, every epoch run (patience = epochs): long enough that the first run still trains
  // when the second is refused (about 1 s after it starts) on a machine busy with other tests; 100
  // epochs ended first there once.
  const int epochs = 300;
  std::string dir = temp_path("shared"), log = temp_path("shared.log"), second_log = temp_path("shared2.log");
  fs::remove_all(dir);
  pid_t first = start(setup.train(epochs, dir, epochs), log);
  REQUIRE(wait_for_file(dir + "/log.jsonl"));  // the first run is training and holds the directory
  auto started = std::chrono::steady_clock::now();
  int code = wait_for(start(setup.train(epochs, dir), second_log));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  CHECK_MESSAGE(still_running(first), "the first run ended before the second was refused: give it more epochs");
  CHECK(code == 1);
  CHECK(read_file(second_log) == refusal(dir, first));
  MESSAGE("the second run was refused after " << seconds << " s");
  REQUIRE(wait_for(first) == 0);
  CHECK(nlohmann::json::parse(last_line(read_file(log)))["epochs"].get<int>() == epochs);
  check_log(dir, epochs);

  // --seeds: the whole command holds --out, so a second --seeds command is refused before it reads or
  // writes anything there (each seed's run also holds its seed-S, as any run holds its --out).
  std::string seeds = temp_path("seeds");
  fs::remove_all(seeds);
  std::string train_seeds = setup.train(epochs / 2, seeds, epochs) + " --seeds 1,2";
  train_seeds.replace(train_seeds.find(" --seed 5"), 9, "");
  first = start(train_seeds, log);
  REQUIRE(wait_for_file(seeds + "/seed-1/log.jsonl"));
  code = wait_for(start(train_seeds, second_log));
  CHECK_MESSAGE(still_running(first), "the first --seeds command ended before the second was refused");
  CHECK(code == 1);
  CHECK(read_file(second_log) == refusal(seeds, first));
  REQUIRE(wait_for(first) == 0);
  for (const char* seed : {"/seed-1", "/seed-2"}) check_log(seeds + seed, epochs / 2);
  CHECK(nlohmann::json::parse(read_file(seeds + "/summary.json"))["runs"].get<int>() == 2);
}

TEST_CASE("faults: a run killed with SIGKILL leaves no lock behind") {
  Setup setup;
  std::string dir = temp_path("killed"), log = temp_path("killed.log");
  fs::remove_all(dir);
  pid_t pid = start(setup.train(1000, dir), log);
  REQUIRE(wait_for_file(dir + "/log.jsonl"));
  ::kill(pid, SIGKILL);
  REQUIRE(wait_for(pid) == -SIGKILL);
  CHECK(read_file(dir + "/.euler.lock") == std::to_string(pid) + "\n");  // the file stays; the lock went with the process
  int code = wait_for(start(setup.train(2, dir), log));
  CHECK_MESSAGE(code == 0, read_file(log));
  check_log(dir, 2);
}

}  // namespace test_cli_faults
