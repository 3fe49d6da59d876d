// Helpers shared by the test files.
#pragma once

#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>
#include <map>
#include <string>
#include <system_error>

namespace euler_test {

// Removes `dir` and everything in it, giving back the permissions a test may have taken away.
inline void remove_tree(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::remove_all(dir, ec);
  if (!ec) return;
  ec.clear();
  fs::permissions(dir, fs::perms::owner_all, fs::perm_options::add, ec);
  for (auto it = fs::recursive_directory_iterator(dir, ec); !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
    if (it->is_directory(ec)) fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(dir, ec);
}

// This process's own scratch directory for `tag` under the system temporary directory. It is new:
// a directory left by an earlier process that had the same pid is removed first (the pid alone does
// not make a path fresh: pids are reused, and a stale checkpoint once failed a test in CI). Every
// scratch directory is removed when the process exits.
inline std::filesystem::path scratch_dir(const std::string& tag) {
  struct Registry {
    std::map<std::string, std::filesystem::path> dirs;
    ~Registry() {
      for (const auto& [tag, dir] : dirs) remove_tree(dir);
    }
  };
  static Registry registry;
  auto [it, created] = registry.dirs.try_emplace(tag);
  if (created) {
    it->second = std::filesystem::temp_directory_path() / ("euler_" + tag + "_" + std::to_string(::getpid()));
    remove_tree(it->second);
    std::filesystem::create_directories(it->second);
  }
  return it->second;
}

// The message of the exception of type E that f throws; a failed check (and "") when it throws none.
template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL_CHECK("expected an exception of the named type, none was thrown");
  return "";
}

}  // namespace euler_test

// A check that `text` contains `part`, printing the whole text when it does not.
#define CHECK_CONTAINS(text, part)                                                   \
  do {                                                                               \
    std::string message_ = (text);                                                   \
    CHECK_MESSAGE(message_.find(part) != std::string::npos, "message: " << message_); \
  } while (0)

