# subdir_consumer.cmake: run as `cmake -D... -P subdir_consumer.cmake` (the ctest test subdir_consumer).
# Configures tests/subdir_consumer/ (a parent project that add_subdirectory()s this source tree, with
# no build type), builds it and runs its program, which exits non-zero when its gradient is wrong.
set(CONSUMER_TEST subdir_consumer)
set(CONSUMER_REQUIRED EULER_SOURCE_DIR CONSUMER_BINARY_DIR)
include("${CMAKE_CURRENT_LIST_DIR}/consumer_steps.cmake")

file(REMOVE_RECURSE "${CONSUMER_BINARY_DIR}")
run_step("configure" "${CMAKE_COMMAND}" -S "${EULER_SOURCE_DIR}/tests/subdir_consumer" -B "${CONSUMER_BINARY_DIR}" ${CONSUMER_CONFIGURE_FLAGS}
         "-DEULER_SOURCE_DIR=${EULER_SOURCE_DIR}")
run_step("build" "${CMAKE_COMMAND}" --build "${CONSUMER_BINARY_DIR}")
run_step("run" "${CONSUMER_BINARY_DIR}/euler_consumer")
message(STATUS "subdir_consumer: ok")
