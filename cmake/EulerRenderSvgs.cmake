# EulerRenderSvgs.cmake: check that the SVGs a ctest test writes render, with rsvg-convert.
#
#   euler_render_svgs(<test> <dir>)
#
# <test> is an existing ctest test that writes SVG files into <dir>. This adds <test>_clean, which
# empties <dir> before it runs (so no stale file from an earlier build is checked), and
# <test>_render, which runs scripts/render-svgs.sh on <dir> after it: every SVG must convert to a
# non-blank PNG of its size (skipped, exit 77, where rsvg-convert is missing outside CI).

# Included by tests/ and examples/ (no include guard: each directory scope needs EULER_SVG_DIR).
set(EULER_SVG_DIR "${PROJECT_BINARY_DIR}/svg")  # where the tests and examples write their pictures

function(euler_render_svgs test dir)
  add_test(NAME ${test}_clean COMMAND "${CMAKE_COMMAND}" -E rm -rf "${dir}")
  set_tests_properties(${test}_clean PROPERTIES FIXTURES_SETUP ${test}_clean LABELS svg)
  set_property(TEST ${test} APPEND PROPERTY FIXTURES_REQUIRED ${test}_clean)
  set_property(TEST ${test} APPEND PROPERTY FIXTURES_SETUP ${test}_svg)
  add_test(NAME ${test}_render COMMAND bash "${PROJECT_SOURCE_DIR}/scripts/render-svgs.sh" "${dir}")
  set_tests_properties(${test}_render PROPERTIES FIXTURES_REQUIRED ${test}_svg SKIP_RETURN_CODE 77 LABELS svg TIMEOUT 300)
endfunction()
