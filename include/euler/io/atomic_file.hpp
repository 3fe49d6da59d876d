// euler/io/atomic_file.hpp: write a file so that it is either wholly there or not changed at all.
//
// The bytes go to a temporary file beside the target, which is flushed and fsync'ed, then renamed over
// the target (atomic on POSIX file systems), and the directory is fsync'ed so the rename survives a
// crash. A failed write (full disk, unwritable directory) throws IoError naming the file and the
// reason, removes the temporary, and leaves the previous file intact. A process killed mid-write
// (SIGKILL, power loss) leaves the previous file and at worst a temporary ".<name>.tmp.<pid>", which
// remove_stale_temporaries() cleans up. read_file reads a whole file with the same care for errors;
// read_json_lines reads a file of one JSON object per line (a run's log.jsonl).
//
//     euler::write_file_atomically("run/model.safetensors", bytes);
//     std::string again = euler::read_file("run/model.safetensors");
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace euler {

// A file could not be read or written; the message names the file and the reason.
class IoError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

inline void write_file_atomically(const std::string& path, std::string_view bytes) {
  namespace fs = std::filesystem;
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  fs::file_status status = fs::status(target, ec);
  if (fs::exists(status) && !fs::is_regular_file(status))
    throw IoError(path + ": exists and is not a regular file; refusing to replace it");
  std::string tmp = (dir / ("." + target.filename().string() + ".tmp." + std::to_string(::getpid()))).string();
  auto fail = [&](const std::string& what, int err) {
    ::unlink(tmp.c_str());
    throw IoError(path + ": " + what + ": " + std::strerror(err));
  };
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(path + ": cannot create " + tmp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      fail("write failed", err);
    }
    done += size_t(n);
  }
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    fail("fsync failed", err);
  }
  if (::close(fd) != 0) fail("close failed", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename failed", errno);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
}

// The whole file, or IoError naming it and the reason: missing, a directory, no permission, a device
// (/dev/zero would never end), or a read that fails (EIO). Pipes and FIFOs are read to their end
// (`--data <(zcat x.gz)` works); a FIFO that no program is writing to reads as empty instead of
// blocking.
inline std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw IoError(path + ": cannot open: " + std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    int err = errno;
    ::close(fd);
    throw IoError(path + ": cannot stat: " + std::strerror(err));
  }
  auto refuse = [&](const std::string& what) {
    ::close(fd);
    throw IoError(path + ": " + what);
  };
  if (S_ISDIR(info.st_mode)) refuse("is a directory, not a file");
  if (!S_ISREG(info.st_mode) && !S_ISFIFO(info.st_mode))
    refuse("is not a regular file or a pipe (a device or a socket); refusing to read it");
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);  // blocking reads from here on
  std::string bytes;
  if (S_ISREG(info.st_mode) && info.st_size > 0) bytes.reserve(size_t(info.st_size));
  char buffer[1 << 16];
  while (true) {
    ssize_t got = ::read(fd, buffer, sizeof buffer);
    if (got < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      throw IoError(path + ": read failed after " + std::to_string(bytes.size()) + " bytes: " + std::strerror(err));
    }
    if (got == 0) break;
    bytes.append(buffer, size_t(got));
  }
  ::close(fd);
  return bytes;
}

// The text of `j`, valid JSON whatever bytes its strings hold: bytes that are not UTF-8 (a Latin-1
// file name or id) become U+FFFD instead of an exception after a finished run. NaN and inf, which
// JSON lacks, are written as null (euler's metrics are finite: see the trainer's non-finite checks).
inline std::string json_text(const nlohmann::json& j, int indent = -1) {
  return j.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

// The JSON object on each non-empty line of a file; a line that is not a JSON object is an IoError
// naming the file and the line.
inline std::vector<nlohmann::json> read_json_lines(const std::string& path) {
  std::string text = read_file(path);
  std::vector<nlohmann::json> records;
  size_t start = 0, line = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    ++line;
    std::string_view content(text.data() + start, end - start);
    if (content.find_first_not_of(" \t\r") != std::string_view::npos) {
      nlohmann::json record = nlohmann::json::parse(content.begin(), content.end(), nullptr, /*allow_exceptions=*/false);
      if (!record.is_object())
        throw IoError(path + ":" + std::to_string(line) + ": not a JSON object (expected one record per line)");
      records.push_back(std::move(record));
    }
    start = end + 1;
  }
  return records;
}

// Removes the temporaries that write_file_atomically left in `dir` when its process was killed
// mid-write (".<name>.tmp.<pid>" of a process that no longer runs). Returns how many it removed.
inline int remove_stale_temporaries(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  int removed = 0;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    size_t mark = name.rfind(".tmp.");
    if (name.empty() || name[0] != '.' || mark == std::string::npos || mark + 5 >= name.size()) continue;
    std::string digits = name.substr(mark + 5);
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    pid_t pid = pid_t(std::stol(digits));
    if (pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;  // its writer may still run
    std::error_code remove_ec;
    if (fs::remove(it->path(), remove_ec)) ++removed;
  }
  return removed;
}

}  // namespace euler
