# EulerDevFlags.cmake: compile/link flags for euler's OWN programs, never for the exported library.
#
# Provides
#   euler_dev_flags               INTERFACE target: warnings, -march=native (EULER_NATIVE),
#                                 ASan+UBSan (EULER_SANITIZE). Not installed, not exported.
#   euler_target_defaults(<tgt>)  links <tgt> to euler::euler and euler_dev_flags (PRIVATE).
#
# Every test, bench, example, the CLI and any CUDA unit goes through euler_target_defaults, so a
# flag changed here changes for all of them:
#
#   add_executable(euler-train src/train.cpp)
#   euler_target_defaults(euler-train)
#
# CUDA sources (if the project later enables the CUDA language) get the same host flags through
# -Xcompiler; the C++-only flags are guarded by $<COMPILE_LANGUAGE:CXX>.
include_guard(GLOBAL)

add_library(euler_dev_flags INTERFACE)

set(_euler_cxx "$<COMPILE_LANGUAGE:CXX>")
set(_euler_cuda "$<COMPILE_LANGUAGE:CUDA>")

# Warnings. GCC 12's AVX-512 intrinsics build "undefined" vectors as `__m512 __Y = __Y;` (GCC bug
# 105593, fixed in 13); inlined into Eigen 3.4's GEMM packing (ptranspose, pload1) that gives ~1000
# false -W(maybe-)uninitialized per build that -isystem does not hide and that bury real diagnostics.
# GCC 12 also gives false -Wrestrict on std::string concatenation at -O3 (GCC bug 105651).
# Both off for GCC < 13 only; the sanitizer build covers uninitialised reads and overlaps.
set(_euler_gcc12 "$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>")
target_compile_options(euler_dev_flags INTERFACE
  $<${_euler_cxx}:-Wall -Wextra>
  $<$<AND:${_euler_cxx},${_euler_gcc12}>:-Wno-maybe-uninitialized -Wno-uninitialized -Wno-restrict>
  $<${_euler_cuda}:-Xcompiler=-Wall,-Wextra>)

# The instruction set is worth 4-5x on GEMM (shared/docs/performance-notes.md): on by default.
if(EULER_NATIVE)
  include(CheckCXXCompilerFlag)
  check_cxx_compiler_flag(-march=native EULER_HAVE_MARCH_NATIVE)
  if(EULER_HAVE_MARCH_NATIVE)
    target_compile_options(euler_dev_flags INTERFACE
      $<${_euler_cxx}:-march=native>
      $<${_euler_cuda}:-Xcompiler=-march=native>)
  else()
    message(WARNING "euler: EULER_NATIVE=ON but the compiler rejects -march=native; ignoring")
  endif()
endif()

if(EULER_SANITIZE)
  set(_euler_san -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  target_compile_options(euler_dev_flags INTERFACE $<${_euler_cxx}:${_euler_san}>)
  target_link_options(euler_dev_flags INTERFACE ${_euler_san})
  # Not position-independent: the sanitized test program (355 MB) spent 0.85 s of every start applying
  # its relocations, page by page (47,000 page faults), and ctest starts it once per test case; linked
  # -no-pie it starts in 0.34 s (14,000 faults). These programs are never installed.
  target_link_options(euler_dev_flags INTERFACE -no-pie)
endif()

function(euler_target_defaults tgt)
  target_link_libraries(${tgt} PRIVATE euler::euler euler_dev_flags)
endfunction()
