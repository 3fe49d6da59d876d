# EulerCli.cmake: the command-line program `euler` from src/*.cpp, used while src/ has no
# CMakeLists.txt of its own (one there takes over). Target euler_cli, built as <build>/bin/euler.
# tests/ passes its path to the tests as EULER_CLI_PATH.
include_guard(GLOBAL)

find_package(cxxopts CONFIG QUIET)  # Debian: libcxxopts-dev (header-only)

file(GLOB EULER_CLI_SOURCES CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/src/*.cpp")
add_executable(euler_cli ${EULER_CLI_SOURCES})
euler_target_defaults(euler_cli)
if(TARGET cxxopts::cxxopts)
  target_link_libraries(euler_cli PRIVATE cxxopts::cxxopts)
endif()
# yaml-cpp (Debian: libyaml-cpp-dev) reads RecBole's YAML configs (euler train --config FILE.yaml); without
# it the program reads JSON configs only and says so when given a .yaml file.
find_package(yaml-cpp CONFIG QUIET)
set(EULER_WITH_YAML OFF)
foreach(_target yaml-cpp::yaml-cpp yaml-cpp)
  if(NOT EULER_WITH_YAML AND TARGET ${_target})
    target_link_libraries(euler_cli PRIVATE ${_target})
    set(EULER_WITH_YAML ON)
  endif()
endforeach()
target_compile_definitions(euler_cli PRIVATE EULER_WITH_YAML=$<BOOL:${EULER_WITH_YAML}>)
message(STATUS "euler: the command-line program reads YAML configs: ${EULER_WITH_YAML}")
# MPI (Debian: libopenmpi-dev) lets `mpirun -np P euler train ...` train one model on P processes
# (include/euler/mpi/group.hpp, src/mpi_session.hpp). EULER_MPI: AUTO uses it where it is found.
if(NOT EULER_MPI STREQUAL "OFF")
  if(EULER_MPI STREQUAL "ON")
    find_package(MPI REQUIRED COMPONENTS CXX)
  else()
    find_package(MPI QUIET COMPONENTS CXX)
  endif()
  if(MPI_CXX_FOUND)
    target_link_libraries(euler_cli PRIVATE MPI::MPI_CXX)
    set(EULER_WITH_MPI ON)
  endif()
endif()
target_compile_definitions(euler_cli PRIVATE EULER_WITH_MPI=$<BOOL:${EULER_WITH_MPI}>)
message(STATUS "euler: the command-line program trains over MPI: ${EULER_WITH_MPI}")
if(TARGET euler::cuda)  # euler train --device cuda
  target_link_libraries(euler_cli PRIVATE euler::cuda)
endif()
set_target_properties(euler_cli PROPERTIES
  OUTPUT_NAME euler
  RUNTIME_OUTPUT_DIRECTORY "${PROJECT_BINARY_DIR}/bin")
install(TARGETS euler_cli RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" OPTIONAL)
