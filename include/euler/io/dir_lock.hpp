// euler/io/dir_lock.hpp: one writer per output directory.
//
// Two runs writing into one directory would interleave their log lines and overwrite each other's
// checkpoints, and both would end "successfully". DirectoryLock takes an exclusive flock(2) on
// DIR/.euler.lock and writes its pid there; a second taker (another process, or another lock object
// in this process) is refused at once with an IoError naming the directory and the holder's pid.
// The kernel drops the lock when the process ends, however it ends (SIGKILL included), so a killed
// run never leaves a stale lock: the file stays, and the pid in it is only what a refusal reports.
//
//     euler::DirectoryLock lock = euler::lock_output_directory("run");  // creates run/ when needed
//     ... write into run/ ...                                            // released with `lock`
#pragma once

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>

#include "euler/io/atomic_file.hpp"

namespace euler {

class DirectoryLock {
 public:
  static constexpr const char* kFileName = ".euler.lock";

  // Lock the existing directory `dir`, or IoError: "run: another euler run (pid 4242) is writing
  // into this directory; wait for it to end, or use another output directory".
  explicit DirectoryLock(const std::string& dir) : dir_(dir) {
    std::string file = path();
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError(file + ": cannot create the lock file of the output directory: " + std::strerror(errno));
    int error = 0;
    while (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EINTR) continue;
      error = errno;
      break;
    }
    if (error != 0) {
      ::close(fd_);
      fd_ = -1;
      if (error != EWOULDBLOCK) throw IoError(file + ": cannot lock the output directory: " + std::strerror(error));
      long holder = holder_pid(file);
      std::string who = "another euler run";
      if (holder == long(::getpid())) who = "this process (pid " + std::to_string(holder) + ")";
      else if (holder > 0) who += " (pid " + std::to_string(holder) + ")";
      throw IoError(dir_ + ": " + who + " is writing into this directory; wait for it to end, or use another output directory");
    }
    // Ours now: the pid is what a refused run will report (best effort; the flock is the lock).
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0) {
      ssize_t written = ::pwrite(fd_, pid.data(), pid.size(), 0);
      (void)written;
    }
  }
  DirectoryLock(DirectoryLock&& other) noexcept : dir_(std::move(other.dir_)), fd_(other.fd_) { other.fd_ = -1; }
  DirectoryLock& operator=(DirectoryLock&& other) noexcept {
    if (this != &other) {
      release();
      dir_ = std::move(other.dir_);
      fd_ = other.fd_;
      other.fd_ = -1;
    }
    return *this;
  }
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;
  ~DirectoryLock() { release(); }

  const std::string& directory() const { return dir_; }
  std::string path() const { return (std::filesystem::path(dir_) / kFileName).string(); }

 private:
  void release() {
    if (fd_ >= 0) ::close(fd_);  // closing the only descriptor drops the flock
    fd_ = -1;
  }
  // The pid the holder wrote into the lock file (0: none yet). A holder that has just taken the lock
  // may not have written it: wait for it a little.
  static long holder_pid(const std::string& file) {
    for (int attempt = 0; attempt < 20; ++attempt) {
      std::string text;
      try {
        text = read_file(file);
      } catch (const IoError&) {
        return 0;
      }
      if (!text.empty() && text.back() == '\n') return std::strtol(text.c_str(), nullptr, 10);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return 0;
  }

  std::string dir_;
  int fd_ = -1;
};

// Create `dir` when needed and lock it for one run (see DirectoryLock); IoError naming it otherwise.
inline DirectoryLock lock_output_directory(const std::string& dir) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_directory(dir, ec))
    throw IoError(dir + ": exists and is not a directory (the output directory)");
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError(dir + ": cannot create the output directory: " + ec.message());
  return DirectoryLock(dir);
}

}  // namespace euler
