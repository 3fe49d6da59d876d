// euler/data/text_file.hpp: the bytes of a data file, decompressed when it is gzip data.
//
// A file is gzip data by its magic bytes (1f 8b), whatever its name. It is decompressed by running
// `gzip -dc` (posix_spawnp, no shell) with the file as its standard input, reading its output and its
// messages through two pipes; no library is linked for it. Errors name the file: IoError when it
// cannot be read or gzip cannot be run, DataError (quoting gzip's message) when the compressed data
// is corrupt. gzip data from a pipe (not a regular file) is refused: decompress it first.
//
//     std::string text = euler::read_text_file("ratings.dat.gz");  // the decompressed bytes
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "euler/data/data_error.hpp"
#include "euler/io/atomic_file.hpp"

extern char** environ;

namespace euler {

// The bytes of a file, decompressed when it is gzip data (by its magic bytes 1f 8b, whatever its
// name) by running `gzip -dc` with the file as its standard input. IoError when the file cannot be
// read or gzip cannot be run; DataError (with gzip's message) when the compressed data is corrupt.
inline std::string read_text_file(const std::string& path) {
  std::string bytes = read_file(path);
  if (!(bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x1F && static_cast<unsigned char>(bytes[1]) == 0x8B))
    return bytes;
  bytes.clear();
  bytes.shrink_to_fit();
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec))
    throw IoError(path + ": gzip-compressed data from a pipe is not supported; decompress it first (zcat)");

  int input = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (input < 0) throw IoError(path + ": cannot open: " + std::strerror(errno));
  int out[2], err[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(input);
    throw IoError(path + ": cannot make a pipe for gzip: " + std::strerror(e));
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    int e = errno;
    ::close(input), ::close(out[0]), ::close(out[1]);
    throw IoError(path + ": cannot make a pipe for gzip: " + std::strerror(e));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, input, 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  char arg0[] = "gzip", arg1[] = "-dc";
  char* argv[] = {arg0, arg1, nullptr};
  pid_t pid = 0;
  int spawned = posix_spawnp(&pid, "gzip", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(input), ::close(out[1]), ::close(err[1]);
  if (spawned != 0) {
    ::close(out[0]), ::close(err[0]);
    throw IoError(path + ": is gzip-compressed, and running 'gzip -dc' failed: " + std::strerror(spawned));
  }

  std::string text, messages;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  std::string* sinks[2] = {&text, &messages};
  std::vector<char> buffer(1 << 16);
  int open_pipes = 2;
  while (open_pipes > 0) {
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int k = 0; k < 2; ++k) {
      if (fds[k].fd < 0 || fds[k].revents == 0) continue;
      ssize_t got = ::read(fds[k].fd, buffer.data(), buffer.size());
      if (got > 0) {
        sinks[k]->append(buffer.data(), size_t(got));
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        ::close(fds[k].fd);
        fds[k].fd = -1;
        --open_pipes;
      }
    }
  }
  for (auto& p : fds)
    if (p.fd >= 0) ::close(p.fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  // gzip exits 2 for warnings only (e.g. trailing zeros after the data).
  bool ok = WIFEXITED(status) && (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == 2);
  if (!ok) {
    while (!messages.empty() && (messages.back() == '\n' || messages.back() == '\r')) messages.pop_back();
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
      throw IoError(path + ": is gzip-compressed, and the 'gzip' program could not be run");
    throw DataError(path + ": corrupt gzip data: " + (messages.empty() ? "gzip -dc failed" : messages));
  }
  return text;
}

}  // namespace euler
