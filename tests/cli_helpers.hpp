// Helpers for the tests that run the `euler` program: a per-process temporary directory, and running
// the program with its output captured to a file.
#pragma once

#include <sys/wait.h>

#include "test_helpers.hpp"

#include <cstdlib>
#include <filesystem>
#include <string>

#ifndef EULER_CLI_PATH
#error "EULER_CLI_PATH must name the euler program (set by tests/CMakeLists.txt)"
#endif

namespace euler_test {

// A path in this process's own temporary directory (`tag` keeps test files apart).
inline std::string temp_path(const std::string& tag, const std::string& name) {
  return (scratch_dir(tag) / name).string();
}

// Run `euler <args>` with stdout and stderr to `log`; returns the exit code (-1 if it did not exit).
inline int run_cli(const std::string& args, const std::string& log) {
  int status = std::system((std::string(EULER_CLI_PATH) + " " + args + " > " + log + " 2>&1").c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace euler_test
