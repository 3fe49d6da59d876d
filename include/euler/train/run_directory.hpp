// euler/train/run_directory.hpp: the output directory of a training run (--out), and how its files
// are written so that no crash or failed write leaves one torn.
//
// The directory holds best.safetensors (the best weights so far), checkpoint.safetensors
// (train/checkpoint.hpp), log.jsonl (one JSON line per epoch), and at the end result.json and ranks.tsv.
// Before the first epoch it is created, locked for the whole run (one writer per directory: a second
// run writing into it is refused at once, naming the holder's pid; io/dir_lock.hpp) and a file is
// written there, so an unwritable --out fails at once, not after an epoch. Every file is written
// atomically (io/atomic_file.hpp).
//
//     euler::DirectoryLock lock = euler::open_run_directory("runs/a");   // held until the run ends
//     euler::append_epoch_log("runs/a/log.jsonl", line, epoch);
#pragma once

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "euler/io/atomic_file.hpp"
#include "euler/io/dir_lock.hpp"

namespace euler {

// The directory exists, is this run's alone (while the returned lock lives) and takes files; stale
// temporaries of killed runs are removed.
inline DirectoryLock open_run_directory(const std::string& dir) {
  DirectoryLock lock = lock_output_directory(dir);
  std::string probe = (std::filesystem::path(dir) / ".euler_write_test").string();
  write_file_atomically(probe, "euler checks that it can write here\n");
  std::error_code ec;
  std::filesystem::remove(probe, ec);
  remove_stale_temporaries(dir);
  return lock;
}

// Epoch `epoch`'s record as the last line of the log `file`. The log is rewritten whole (atomically),
// so a crash never leaves a torn line. The trainer writes it before the checkpoint, and it keeps only
// the lines of earlier epochs, so a run killed between the two and resumed from the previous
// checkpoint logs each epoch once.
inline void append_epoch_log(const std::string& file, const nlohmann::json& line, int epoch) {
  std::string old, text;
  try {
    old = read_file(file);
  } catch (const IoError&) {
  }
  for (size_t start = 0, end; (end = old.find('\n', start)) != std::string::npos; start = end + 1) {
    nlohmann::json earlier = nlohmann::json::parse(old.begin() + std::ptrdiff_t(start), old.begin() + std::ptrdiff_t(end), nullptr,
                                                   /*allow_exceptions=*/false);
    if (earlier.is_object() && earlier.contains("epoch") && earlier["epoch"].is_number_integer() && earlier["epoch"].get<int>() < epoch)
      text.append(old, start, end - start + 1);
  }
  write_file_atomically(file, text + json_text(line) + "\n");
}

}  // namespace euler
