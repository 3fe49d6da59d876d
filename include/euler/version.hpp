// euler/version.hpp: the library's version, the one place it is written (CMakeLists.txt reads it for
// project(VERSION), so find_package(euler 0.1) and these macros always agree).
//
//     std::printf("euler %s\n", EULER_VERSION_STRING);
//     #if EULER_VERSION_MAJOR == 0 && EULER_VERSION_MINOR < 2  ...
#pragma once

#define EULER_VERSION_MAJOR 0
#define EULER_VERSION_MINOR 1
#define EULER_VERSION_PATCH 0
#define EULER_VERSION_STRING "0.1.0"

namespace euler {
inline constexpr int version_major = EULER_VERSION_MAJOR, version_minor = EULER_VERSION_MINOR, version_patch = EULER_VERSION_PATCH;
inline constexpr const char* version_string = EULER_VERSION_STRING;
}  // namespace euler
