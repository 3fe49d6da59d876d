# EulerDoctestAddTests.cmake: run by euler_doctest_discover_tests after a build (cmake -P).
# In:  TEST_EXECUTABLE, TEST_WORKING_DIR, TEST_PROPERTIES (a list: name value ...), CTEST_FILE.
# Out: CTEST_FILE, a ctest script with one add_test per doctest test case.
if(NOT EXISTS "${TEST_EXECUTABLE}")
  message(FATAL_ERROR "doctest discovery: '${TEST_EXECUTABLE}' does not exist")
endif()
execute_process(
  COMMAND "${TEST_EXECUTABLE}" --list-test-cases --no-colors=true --no-version=true
  WORKING_DIRECTORY "${TEST_WORKING_DIR}"
  OUTPUT_VARIABLE output
  ERROR_VARIABLE errors
  RESULT_VARIABLE result)
if(NOT result EQUAL 0)
  message(FATAL_ERROR "doctest discovery: '${TEST_EXECUTABLE} --list-test-cases' failed (${result}):\n"
                      "${output}\n${errors}")
endif()

# A bracket argument [=...=[text]=...=] that quotes `text` exactly, whatever it contains.
function(_bracket text out)
  set(eq "=")
  while(1)
    string(FIND "${text}" "]${eq}]" at)
    if(at EQUAL -1)
      break()
    endif()
    string(APPEND eq "=")
  endwhile()
  set(${out} "[${eq}[${text}]${eq}]" PARENT_SCOPE)
endfunction()

set(props_text "")
foreach(p IN LISTS TEST_PROPERTIES)
  _bracket("${p}" p)
  string(APPEND props_text " ${p}")
endforeach()
_bracket("${TEST_EXECUTABLE}" exe_arg)
_bracket("${TEST_WORKING_DIR}" dir_arg)
set(script "# Written by EulerDoctestAddTests.cmake from `${TEST_EXECUTABLE} --list-test-cases`.\n")
set(seen "\n")  # names so far, one per line (duplicates would make ctest refuse the file)
set(count 0)
set(rest "${output}")
while(NOT rest STREQUAL "")
  string(FIND "${rest}" "\n" nl)
  if(nl EQUAL -1)
    set(line "${rest}")
    set(rest "")
  else()
    string(SUBSTRING "${rest}" 0 ${nl} line)
    math(EXPR nl "${nl} + 1")
    string(SUBSTRING "${rest}" ${nl} -1 rest)
  endif()
  string(REGEX REPLACE "\r$" "" line "${line}")
  if(line STREQUAL "" OR line MATCHES "^=+$" OR line MATCHES "^\\[doctest\\] ")
    continue()
  endif()
  string(FIND "${seen}" "\n${line}\n" dup)
  if(NOT dup EQUAL -1)
    continue()
  endif()
  string(APPEND seen "${line}\n")
  math(EXPR count "${count} + 1")
  # doctest filters split on ',' unless escaped, and treat '\' as the escape character.
  string(REPLACE "\\" "\\\\" filter "${line}")
  string(REPLACE "," "\\," filter "${filter}")
  _bracket("${line}" name_arg)
  _bracket("--test-case=${filter}" filter_arg)
  string(APPEND script
    "add_test(${name_arg} ${exe_arg} ${filter_arg})\n"
    "set_tests_properties(${name_arg} PROPERTIES WORKING_DIRECTORY ${dir_arg} "
    "FAIL_REGULAR_EXPRESSION [==[test cases: *0 *[|]]==]${props_text})\n")
endwhile()
file(WRITE "${CTEST_FILE}" "${script}")
message(STATUS "doctest discovery: ${count} test cases in ${TEST_EXECUTABLE}")
