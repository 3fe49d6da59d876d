# subdir_consumer.cmake: run as `cmake -D... -P subdir_consumer.cmake` (the ctest test subdir_consumer).
# Configures tests/subdir_consumer/ (a parent project that add_subdirectory()s this source tree, with
# no build type), builds it and runs its program, which exits non-zero when its gradient is wrong.
foreach(var EULER_SOURCE_DIR CONSUMER_BINARY_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "subdir_consumer: -D${var}=... is required")
  endif()
endforeach()

function(run_step what)
  message(STATUS "subdir_consumer: ${what}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "subdir_consumer: ${what} failed (${rc})")
  endif()
endfunction()

file(REMOVE_RECURSE "${CONSUMER_BINARY_DIR}")
set(_gen)
if(CONSUMER_GENERATOR)
  set(_gen -G "${CONSUMER_GENERATOR}")
endif()
set(_cxx)
if(CONSUMER_CXX_COMPILER)
  set(_cxx "-DCMAKE_CXX_COMPILER=${CONSUMER_CXX_COMPILER}")
endif()
run_step("configure" "${CMAKE_COMMAND}" -S "${EULER_SOURCE_DIR}/tests/subdir_consumer" -B "${CONSUMER_BINARY_DIR}" ${_gen} ${_cxx}
         "-DEULER_SOURCE_DIR=${EULER_SOURCE_DIR}")
run_step("build" "${CMAKE_COMMAND}" --build "${CONSUMER_BINARY_DIR}")
run_step("run" "${CONSUMER_BINARY_DIR}/euler_consumer")
message(STATUS "subdir_consumer: ok")
