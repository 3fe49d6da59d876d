# tests/guide_pictures.cmake: the pictures docs/guide.md shows (docs/img/NAME.svg) must be the ones its
# snippets draw today. Run after docs_guide, which writes them to <temp dir>/euler_guide_run; copies
# them to OUT (where they are rendered to PNG and checked) and fails, naming the file, if the
# committed picture differs.
#
#   cmake -D SOURCE=<repo> -D OUT=<dir> -P guide_pictures.cmake
foreach(variable TMPDIR TMP TEMP TEMPDIR)  # the order std::filesystem::temp_directory_path reads them
  if(DEFINED ENV{${variable}} AND IS_DIRECTORY "$ENV{${variable}}")
    set(tmp "$ENV{${variable}}")
    break()
  endif()
endforeach()
if(NOT tmp)
  set(tmp "/tmp")
endif()
file(MAKE_DIRECTORY "${OUT}")
foreach(name rope_rotation delta_jump)
  set(drawn "${tmp}/euler_guide_run/${name}.svg")
  set(committed "${SOURCE}/docs/img/${name}.svg")
  if(NOT EXISTS "${drawn}")
    message(FATAL_ERROR "${drawn} is missing: docs_guide should have drawn it")
  endif()
  file(COPY "${drawn}" DESTINATION "${OUT}")
  execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${drawn}" "${committed}" RESULT_VARIABLE differs)
  if(differs)
    message(FATAL_ERROR "docs/img/${name}.svg is not what docs/guide.md's snippet draws now: cp ${drawn} ${committed}")
  endif()
endforeach()
message(STATUS "docs/img/rope_rotation.svg and delta_jump.svg match the guide's snippets")
