# EulerInstall.cmake: install the headers and an exported euler::euler with a package config, so that
#   find_package(euler CONFIG REQUIRED)  +  target_link_libraries(app PRIVATE euler::euler)
# works against `cmake --install <build> --prefix <prefix>`; and a pkg-config file (share/pkgconfig/
# euler.pc, relocatable) for builds without CMake: c++ $(pkg-config --cflags --libs euler) app.cpp
include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

# Header-only: the config files are architecture-independent and go under share/.
set(EULER_INSTALL_CMAKEDIR "${CMAKE_INSTALL_DATADIR}/cmake/euler" CACHE STRING
    "Where eulerConfig.cmake is installed (relative to the prefix)")

install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/euler"
        DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
        FILES_MATCHING PATTERN "*.hpp" PATTERN "*.h" PATTERN "*.cuh")

install(TARGETS euler EXPORT eulerTargets)
install(EXPORT eulerTargets
        NAMESPACE euler::
        DESTINATION "${EULER_INSTALL_CMAKEDIR}")

configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/eulerConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/eulerConfig.cmake"
  INSTALL_DESTINATION "${EULER_INSTALL_CMAKEDIR}")
# 0.x: only the same minor version is compatible.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/eulerConfigVersion.cmake"
  VERSION "${PROJECT_VERSION}"
  COMPATIBILITY SameMinorVersion
  ARCH_INDEPENDENT)
install(FILES "${PROJECT_BINARY_DIR}/eulerConfig.cmake" "${PROJECT_BINARY_DIR}/eulerConfigVersion.cmake"
        DESTINATION "${EULER_INSTALL_CMAKEDIR}")

# pkg-config: the same usage requirements (C++20, the headers, Eigen, threads, nlohmann-json when
# this build found it), with the prefix taken from where the file lies, so a moved prefix still works.
set(EULER_PC_REQUIRES_JSON "")
if(EULER_WITH_JSON)
  set(EULER_PC_REQUIRES_JSON ", nlohmann_json >= 3")
endif()
configure_file("${PROJECT_SOURCE_DIR}/cmake/euler.pc.in" "${PROJECT_BINARY_DIR}/euler.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/euler.pc" DESTINATION "${CMAKE_INSTALL_DATADIR}/pkgconfig")
