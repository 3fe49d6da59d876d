# fetchcontent_consumer.cmake: run as `cmake -D... -P fetchcontent_consumer.cmake` (the ctest test
# fetchcontent_consumer). Packs what a release archive of euler holds (CMakeLists.txt, cmake/,
# include/, LICENSE) from this source tree into a .tar.gz, then configures tests/fetchcontent_consumer/
# (FetchContent_Declare(URL ... URL_HASH SHA256=...)), builds it and runs its program, which exits
# non-zero when its gradient is wrong.
set(CONSUMER_TEST fetchcontent_consumer)
set(CONSUMER_REQUIRED EULER_SOURCE_DIR CONSUMER_BINARY_DIR)
include("${CMAKE_CURRENT_LIST_DIR}/consumer_steps.cmake")

file(REMOVE_RECURSE "${CONSUMER_BINARY_DIR}")
file(MAKE_DIRECTORY "${CONSUMER_BINARY_DIR}/pack/euler-src")
foreach(item CMakeLists.txt cmake include LICENSE)
  file(COPY "${EULER_SOURCE_DIR}/${item}" DESTINATION "${CONSUMER_BINARY_DIR}/pack/euler-src")
endforeach()
set(archive "${CONSUMER_BINARY_DIR}/euler-src.tar.gz")
execute_process(COMMAND "${CMAKE_COMMAND}" -E tar czf "${archive}" euler-src
                WORKING_DIRECTORY "${CONSUMER_BINARY_DIR}/pack" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "fetchcontent_consumer: packing ${archive} failed (${rc})")
endif()
file(SHA256 "${archive}" sha256)

run_step("configure" "${CMAKE_COMMAND}" -S "${EULER_SOURCE_DIR}/tests/fetchcontent_consumer" -B "${CONSUMER_BINARY_DIR}/build"
         ${CONSUMER_CONFIGURE_FLAGS} "-DEULER_ARCHIVE=${archive}" "-DEULER_ARCHIVE_SHA256=${sha256}")
run_step("build" "${CMAKE_COMMAND}" --build "${CONSUMER_BINARY_DIR}/build")
run_step("run" "${CONSUMER_BINARY_DIR}/build/euler_consumer")
message(STATUS "fetchcontent_consumer: ok")
