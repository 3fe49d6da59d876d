# install_consumer.cmake: run as `cmake -D... -P install_consumer.cmake` (the ctest test
# install_consumer does this). Checks that an installed euler works for another project:
#   1. cmake --install <build> --prefix <prefix>        (a fresh prefix under the build dir)
#   2. the installed package carries no own-target flags (-march, sanitizers, warnings)
#   3. configure + build tests/consumer/ with CMAKE_PREFIX_PATH=<prefix> (and only that)
#   4. run the consumer; it exits non-zero when its gradient is wrong
#   5. the same program built with the compiler alone and `pkg-config --cflags --libs euler` (needs
#      pkg-config: skipped with a message where it is missing, a failure when CI=true)
#   6. euler::cuda: found, built and run where euler has its CUDA backend; refused with the reason where not
set(CONSUMER_TEST install_consumer)
set(CONSUMER_REQUIRED EULER_BUILD_DIR EULER_PREFIX CONSUMER_SOURCE_DIR CONSUMER_BINARY_DIR)
include("${CMAKE_CURRENT_LIST_DIR}/consumer_steps.cmake")

file(REMOVE_RECURSE "${EULER_PREFIX}" "${CONSUMER_BINARY_DIR}")

# 1. install
run_step("install" "${CMAKE_COMMAND}" --install "${EULER_BUILD_DIR}" --prefix "${EULER_PREFIX}")

# 2. the exported interface must be clean
file(GLOB_RECURSE _configs "${EULER_PREFIX}/*eulerConfig.cmake")
if(NOT _configs)
  message(FATAL_ERROR "install_consumer: no eulerConfig.cmake under ${EULER_PREFIX}")
endif()
file(GLOB_RECURSE _targets "${EULER_PREFIX}/*eulerTargets*.cmake")
foreach(f IN LISTS _targets)
  file(READ "${f}" _text)
  foreach(bad "-march" "-fsanitize" "-Wall" "euler_dev_flags" "${EULER_BUILD_DIR}")
    string(FIND "${_text}" "${bad}" _at)
    if(NOT _at EQUAL -1)
      message(FATAL_ERROR "install_consumer: installed ${f} mentions '${bad}'")
    endif()
  endforeach()
endforeach()
if(NOT EXISTS "${EULER_PREFIX}/include/euler/euler.hpp")
  message(FATAL_ERROR "install_consumer: headers not installed under ${EULER_PREFIX}/include")
endif()

# 3. configure + build the consumer against the prefix only
run_step("configure consumer" "${CMAKE_COMMAND}" -S "${CONSUMER_SOURCE_DIR}" -B "${CONSUMER_BINARY_DIR}" ${CONSUMER_CONFIGURE_FLAGS}
         -DCMAKE_BUILD_TYPE=Release
         "-DCMAKE_PREFIX_PATH=${EULER_PREFIX}"
         -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
         -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)

# It must have found the installed copy, not a source or build tree (or a system-wide install).
file(STRINGS "${CONSUMER_BINARY_DIR}/CMakeCache.txt" _dir REGEX "^euler_DIR:")
string(REGEX REPLACE "^euler_DIR:[A-Z]+=" "" _dir "${_dir}")
file(REAL_PATH "${EULER_PREFIX}" _prefix_real)
if(EXISTS "${_dir}")
  file(REAL_PATH "${_dir}" _dir)
endif()
string(FIND "${_dir}" "${_prefix_real}/" _at)
if(NOT _at EQUAL 0)
  message(FATAL_ERROR "install_consumer: consumer found euler at '${_dir}', not under ${_prefix_real}")
endif()
message(STATUS "install_consumer: consumer uses ${_dir}")

run_step("build consumer" "${CMAKE_COMMAND}" --build "${CONSUMER_BINARY_DIR}")

# 4. run it
run_step("run consumer" "${CONSUMER_BINARY_DIR}/euler_consumer")

# 5. pkg-config, from the installed share/pkgconfig only
find_program(_pkg_config NAMES pkg-config pkgconf)
if(NOT _pkg_config)
  if("$ENV{CI}" STREQUAL "true")
    message(FATAL_ERROR "install_consumer: pkg-config is not installed (apt-get install pkgconf; scripts/install-deps.sh does)")
  endif()
  message(STATUS "install_consumer: pkg-config not found, its check skipped")
else()
  set(ENV{PKG_CONFIG_PATH} "${EULER_PREFIX}/share/pkgconfig")
  execute_process(COMMAND "${_pkg_config}" --modversion euler OUTPUT_VARIABLE _version RESULT_VARIABLE rc
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  file(STRINGS "${EULER_PREFIX}/share/cmake/euler/eulerConfigVersion.cmake" _cmake_version REGEX "set\\(PACKAGE_VERSION ")
  string(REGEX MATCH "\"[^\"]+\"" _cmake_version "${_cmake_version}")
  if(NOT rc EQUAL 0 OR NOT "\"${_version}\"" STREQUAL "${_cmake_version}")
    message(FATAL_ERROR "install_consumer: pkg-config --modversion euler gave '${_version}' (${rc}), CMake's package says ${_cmake_version}")
  endif()
  execute_process(COMMAND "${_pkg_config}" --cflags --libs euler OUTPUT_VARIABLE _flags RESULT_VARIABLE rc
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "install_consumer: pkg-config --cflags --libs euler failed (${rc})")
  endif()
  # One -I must be the prefix's include directory (written relative to the .pc file: ${pcfiledir}/../..).
  file(REAL_PATH "${EULER_PREFIX}/include" _include)
  separate_arguments(_flags UNIX_COMMAND "${_flags}")
  set(_found FALSE)
  foreach(flag IN LISTS _flags)
    if(flag MATCHES "^-I(.+)$")
      set(_dir "${CMAKE_MATCH_1}")  # (in the if() itself, ${CMAKE_MATCH_1} would be expanded before the match)
      if(EXISTS "${_dir}")
        file(REAL_PATH "${_dir}" _dir)
        if(_dir STREQUAL _include)
          set(_found TRUE)
        endif()
      endif()
    endif()
  endforeach()
  if(NOT _found)
    message(FATAL_ERROR "install_consumer: pkg-config's flags '${_flags}' do not point at ${_include}")
  endif()
  set(_compiler "${CONSUMER_CXX_COMPILER}")
  if(NOT _compiler)
    set(_compiler c++)
  endif()
  run_step("build with pkg-config" "${_compiler}" -O1 "${CONSUMER_SOURCE_DIR}/main.cpp" ${_flags}
           -o "${CONSUMER_BINARY_DIR}/euler_consumer_pc")
  run_step("run the pkg-config build" "${CONSUMER_BINARY_DIR}/euler_consumer_pc")
endif()
# 6. the CUDA backend: where euler was built with it, a consumer of euler::cuda (COMPONENTS cuda)
#    builds and runs; where not, asking for the component fails with euler's reason.
if(NOT DEFINED EULER_WITH_CUDA)
  message(FATAL_ERROR "install_consumer: -DEULER_WITH_CUDA=ON|OFF is required")
endif()
set(_cuda_source "${CMAKE_CURRENT_LIST_DIR}/consumer_cuda")
set(_cuda_binary "${CONSUMER_BINARY_DIR}-cuda")
file(REMOVE_RECURSE "${_cuda_binary}")
set(_cuda_configure "${CMAKE_COMMAND}" -S "${_cuda_source}" -B "${_cuda_binary}" ${CONSUMER_CONFIGURE_FLAGS}
    -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=${EULER_PREFIX}" -DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON)
if(EULER_WITH_CUDA)
  if(NOT EXISTS "${EULER_PREFIX}/share/cmake/euler/eulerCudaTargets.cmake")
    message(FATAL_ERROR "install_consumer: euler was built with CUDA, but euler::cuda was not installed")
  endif()
  run_step("configure the euler::cuda consumer" ${_cuda_configure})
  run_step("build the euler::cuda consumer" "${CMAKE_COMMAND}" --build "${_cuda_binary}")
  run_step("run the euler::cuda consumer" "${_cuda_binary}/euler_cuda_consumer")
else()
  execute_process(COMMAND ${_cuda_configure} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE out)
  if(rc EQUAL 0 OR NOT out MATCHES "component cuda: this euler was built without its CUDA backend")
    message(FATAL_ERROR "install_consumer: without CUDA, find_package(euler COMPONENTS cuda) should fail with a reason; "
                        "it gave (${rc}):\n${out}")
  endif()
  message(STATUS "install_consumer: find_package(euler COMPONENTS cuda) is refused, as it should be, without CUDA")
endif()
message(STATUS "install_consumer: ok")
