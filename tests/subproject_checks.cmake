# subproject_checks.cmake: included by the parent projects of tests/subdir_consumer/ and
# tests/fetchcontent_consumer/ after they have pulled euler in. Checks that euler left the parent alone
# (no build type set, CUDA off unless asked, none of euler's own programs in the parent's build), then
# adds the consumer program, tests/consumer/main.cpp, linked to euler::euler.
if(CMAKE_BUILD_TYPE)
  message(FATAL_ERROR "${PROJECT_NAME}: euler set the parent's CMAKE_BUILD_TYPE to '${CMAKE_BUILD_TYPE}'")
endif()
if(NOT EULER_CUDA STREQUAL "OFF")
  message(FATAL_ERROR "${PROJECT_NAME}: EULER_CUDA is '${EULER_CUDA}' in a subproject (expected OFF unless asked)")
endif()
foreach(target euler_tests euler_cli euler_bench example_train)
  if(TARGET ${target})
    message(FATAL_ERROR "${PROJECT_NAME}: euler's own target ${target} is part of the parent's build")
  endif()
endforeach()

add_executable(euler_consumer "${CMAKE_CURRENT_LIST_DIR}/consumer/main.cpp")
target_link_libraries(euler_consumer PRIVATE euler::euler)
