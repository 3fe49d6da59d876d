# EulerCuda.cmake: the optional CUDA backend, library target euler::cuda (cuda/euler_cuda.cu).
#
#   EULER_CUDA=AUTO  (default) build it when nvcc is found, else say so and go on without it
#   EULER_CUDA=ON    build it or stop with an error
#   EULER_CUDA=OFF   never
#
# nvcc is taken from CMAKE_CUDA_COMPILER or $CUDACXX when set, else from PATH, else from the usual install
# places (/usr/local/cuda/bin, $CUDA_PATH/bin), so a clean environment without CUDA on PATH still finds it.
# No GPU is needed to build: CMAKE_CUDA_ARCHITECTURES defaults to "80-real;90" (machine code for A100-class
# sm_80, which also runs on sm_86/sm_89, and sm_90 (H100/H200) plus its PTX, which newer GPUs compile at
# load time). Under EULER_SANITIZE the AUTO mode leaves CUDA out (ASan and the CUDA runtime do not mix).
#
# Sets EULER_WITH_CUDA (ON/OFF). Code linking euler::cuda gets the definition EULER_WITH_CUDA=1. When
# built, the library is installed (lib/libeuler_cuda.a) and exported as euler::cuda (eulerCudaTargets).
include_guard(GLOBAL)

set(EULER_WITH_CUDA OFF)
string(TOUPPER "${EULER_CUDA}" _euler_cuda_mode)
if(NOT _euler_cuda_mode MATCHES "^(AUTO|ON|OFF)$")
  message(FATAL_ERROR "EULER_CUDA must be AUTO, ON or OFF, got '${EULER_CUDA}'")
endif()

function(_euler_cuda_unavailable why)
  if(_euler_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR "euler: EULER_CUDA=ON but ${why}")
  endif()
  message(STATUS "euler: CUDA backend not built: ${why} (EULER_CUDA=AUTO)")
endfunction()

if(_euler_cuda_mode STREQUAL "OFF")
  return()
endif()
if(EULER_SANITIZE AND _euler_cuda_mode STREQUAL "AUTO")
  message(STATUS "euler: CUDA backend left out of the sanitizer build (EULER_CUDA=AUTO)")
  return()
endif()

if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
  find_program(EULER_NVCC nvcc
    HINTS ENV CUDA_PATH ENV CUDA_HOME
    PATHS /usr/local/cuda /opt/cuda
    PATH_SUFFIXES bin
    DOC "nvcc for the CUDA backend")
  if(EULER_NVCC)
    set(CMAKE_CUDA_COMPILER "${EULER_NVCC}" CACHE FILEPATH "CUDA compiler")
  endif()
endif()
include(CheckLanguage)
check_language(CUDA)
if(NOT CMAKE_CUDA_COMPILER)
  _euler_cuda_unavailable("no CUDA compiler (nvcc) was found on PATH or in /usr/local/cuda/bin")
  return()
endif()

if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
  set(CMAKE_CUDA_ARCHITECTURES "80-real;90" CACHE STRING "GPU architectures of the CUDA backend")
endif()
if(NOT DEFINED CMAKE_CUDA_HOST_COMPILER)
  set(CMAKE_CUDA_HOST_COMPILER "${CMAKE_CXX_COMPILER}" CACHE FILEPATH "host compiler of nvcc")
endif()
enable_language(CUDA)
# C++20 host code. CMake 3.25 knows nvcc's flags only up to C++17 (and would add -std=c++17); nvcc >= 12 takes
# -std=c++20, so tell CMake the flag when it does not know it.
if(NOT DEFINED CMAKE_CUDA20_STANDARD_COMPILE_OPTION AND CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.0)
  set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
  set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
  list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
endif()
find_package(CUDAToolkit)
if(NOT TARGET CUDA::cublas OR NOT TARGET CUDA::cudart_static)
  _euler_cuda_unavailable("the CUDA toolkit next to ${CMAKE_CUDA_COMPILER} has no cuBLAS or no static CUDA runtime")
  return()
endif()

add_library(euler_cuda STATIC "${PROJECT_SOURCE_DIR}/cuda/euler_cuda.cu")
add_library(euler::cuda ALIAS euler_cuda)
target_include_directories(euler_cuda PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_link_libraries(euler_cuda PUBLIC CUDA::cudart_static CUDA::cublas)
target_compile_definitions(euler_cuda INTERFACE EULER_WITH_CUDA=1)
target_compile_features(euler_cuda INTERFACE cxx_std_20)  # its header, in the consumer's C++ code
target_compile_options(euler_cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)  # the host compiler's warnings
set_target_properties(euler_cuda PROPERTIES
  CUDA_STANDARD 20
  CUDA_STANDARD_REQUIRED ON
  CUDA_EXTENSIONS OFF
  CUDA_RUNTIME_LIBRARY None        # the static runtime comes from CUDA::cudart_static above
  POSITION_INDEPENDENT_CODE ON
  EXPORT_NAME cuda)
# Installed and exported beside euler::euler: find_package(euler CONFIG REQUIRED COMPONENTS cuda)
# gives euler::cuda (eulerConfig.cmake finds the CUDA toolkit it links against).
install(TARGETS euler_cuda EXPORT eulerCudaTargets ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}")
install(EXPORT eulerCudaTargets NAMESPACE euler:: DESTINATION "${EULER_INSTALL_CMAKEDIR}")
set(EULER_WITH_CUDA ON)
message(STATUS "euler: CUDA backend euler::cuda with nvcc ${CMAKE_CUDA_COMPILER_VERSION} (${CMAKE_CUDA_COMPILER}), "
               "architectures ${CMAKE_CUDA_ARCHITECTURES}")
