# EulerDoctest.cmake: one ctest test per doctest TEST_CASE.
#
#   euler_doctest_discover_tests(<target> [PROPERTIES <prop> <value> ...])
#
# Like doctest_discover_tests from Debian's doctest-dev (2.4.9), which it replaces because that one
# splits the `--list-test-cases` output as a CMake list: a test name with ';' or an unbalanced '['
# (e.g. "uniform lies in [0, 1)") breaks it and ctest refuses the whole test file. Here the output
# is walked line by line as plain strings and each name is written as a bracket argument.
#
# After each build of <target>, `<target> --list-test-cases` is run and a ctest script is written
# with one `add_test(<name> <target> --test-case=<name with , and \ escaped>)` per test case. A test
# that matches no test case (doctest exits 0 then) fails through FAIL_REGULAR_EXPRESSION.
include_guard(GLOBAL)

set(_EULER_DOCTEST_ADD_TESTS_SCRIPT "${CMAKE_CURRENT_LIST_DIR}/EulerDoctestAddTests.cmake")

function(euler_doctest_discover_tests target)
  cmake_parse_arguments(PARSE_ARGV 1 _arg "" "" "PROPERTIES")
  set(tests_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_doctest_tests.cmake")
  set(include_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_doctest_include.cmake")
  add_custom_command(TARGET ${target} POST_BUILD
    BYPRODUCTS "${tests_file}"
    COMMAND "${CMAKE_COMMAND}"
            -D "TEST_EXECUTABLE=$<TARGET_FILE:${target}>"
            -D "TEST_WORKING_DIR=${CMAKE_CURRENT_BINARY_DIR}"
            -D "TEST_PROPERTIES=${_arg_PROPERTIES}"
            -D "CTEST_FILE=${tests_file}"
            -P "${_EULER_DOCTEST_ADD_TESTS_SCRIPT}"
    COMMENT "Listing the doctest test cases of ${target}"
    VERBATIM)
  file(WRITE "${include_file}"
    "if(EXISTS \"${tests_file}\")\n"
    "  include(\"${tests_file}\")\n"
    "else()\n"
    "  add_test(${target}_NOT_BUILT ${target}_NOT_BUILT)\n"
    "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${include_file}")
endfunction()
