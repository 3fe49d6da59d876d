# consumer_steps.cmake: what install_consumer.cmake and subdir_consumer.cmake share. Include it after
# setting CONSUMER_TEST (the name in messages); it checks the -D variables named in CONSUMER_REQUIRED,
# defines run_step(what COMMAND...) (runs it, stops the script when it fails) and sets
# CONSUMER_CONFIGURE_FLAGS (the generator and compiler of euler's own build, for the consumer's).
foreach(var IN LISTS CONSUMER_REQUIRED)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "${CONSUMER_TEST}: -D${var}=... is required")
  endif()
endforeach()

function(run_step what)
  message(STATUS "${CONSUMER_TEST}: ${what}: ${ARGN}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${CONSUMER_TEST}: ${what} failed (${rc})")
  endif()
endfunction()

set(CONSUMER_CONFIGURE_FLAGS)
if(CONSUMER_GENERATOR)
  list(APPEND CONSUMER_CONFIGURE_FLAGS -G "${CONSUMER_GENERATOR}")
endif()
if(CONSUMER_CXX_COMPILER)
  list(APPEND CONSUMER_CONFIGURE_FLAGS "-DCMAKE_CXX_COMPILER=${CONSUMER_CXX_COMPILER}")
endif()
