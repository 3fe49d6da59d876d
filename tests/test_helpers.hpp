// Helpers shared by the test files.
#pragma once

#include <doctest/doctest.h>

#include <string>

namespace euler_test {

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

