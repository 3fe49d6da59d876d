# EulerInstall.cmake: install the headers and an exported euler::euler with a package config, so that
#   find_package(euler CONFIG REQUIRED)  +  target_link_libraries(app PRIVATE euler::euler)
# works against `cmake --install <build> --prefix <prefix>`.
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
