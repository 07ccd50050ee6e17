include(GoogleTest)

# skiff_test(<name> LABEL unit|bpf|e2e SOURCES ... LIBS ...)
# One GoogleTest binary; every TEST/TEST_P becomes its own ctest test carrying the label, so
# `ctest -L bpf` runs one layer. Root-only layers skip without root unless
# SKIFF_REQUIRE_PRIVILEGED=1 (tests/harness/privileged.h), where a skip is a failure.
function(skiff_test name)
  cmake_parse_arguments(T "" "LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} skiff_test_harness GTest::gtest GTest::gmock GTest::gtest_main)
  gtest_discover_tests(${name}
    PROPERTIES LABELS ${T_LABEL} TIMEOUT ${T_TIMEOUT} SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]"
    DISCOVERY_TIMEOUT 60)
endfunction()
