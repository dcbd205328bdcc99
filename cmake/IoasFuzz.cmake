# The two kinds of target every fuzzed reader has.
#
# ioas_fuzz_target(NAME SOURCE src LIBS lib... [INCLUDES dir...])
#   The libFuzzer executable (only under -DIOAS_FUZZ=ON; run by .ci/fuzz):
#   linked with -fsanitize=fuzzer, which brings libFuzzer's main().
#   differential/fuzz (property.hpp) is on the include path.
#
# ioas_fuzz_regressions(NAME SOURCE fuzz_src TEST test_src LIBS lib...
#                       REGRESSIONS dir SEEDS dir TEST_PREFIX prefix
#                       [INCLUDES dir...] [DEFINITIONS def...] [PROPERTIES prop value...])
#   The same entry point (fuzz_src defines LLVMFuzzerTestOneInput) run by a
#   gtest (test_src) on every kept regression input and every seed, in the
#   ordinary build, without libFuzzer. REGRESSIONS and SEEDS become
#   IOAS_FUZZ_REGRESSIONS_DIR and IOAS_FUZZ_SEEDS_DIR; differential/fuzz
#   (kept_inputs.hpp, property.hpp) is always on the include path.
#   Tests are discovered with TEST_PREFIX; PROPERTIES go to each of them.
include_guard(GLOBAL)

function(ioas_fuzz_target NAME)
  cmake_parse_arguments(PARSE_ARGV 1 F "" "SOURCE" "LIBS;INCLUDES")
  add_executable(${NAME} ${F_SOURCE})
  target_include_directories(${NAME} PRIVATE ${F_INCLUDES} ${PROJECT_SOURCE_DIR}/differential/fuzz)
  target_link_libraries(${NAME} PRIVATE ${F_LIBS})
  target_compile_options(${NAME} PRIVATE -fsanitize=fuzzer)
  target_link_options(${NAME} PRIVATE -fsanitize=fuzzer,address,undefined)
endfunction()

function(ioas_fuzz_regressions NAME)
  cmake_parse_arguments(PARSE_ARGV 1 F "" "SOURCE;TEST;REGRESSIONS;SEEDS;TEST_PREFIX"
                        "LIBS;INCLUDES;DEFINITIONS;PROPERTIES")
  add_executable(${NAME} ${F_TEST} ${F_SOURCE})
  target_include_directories(${NAME} PRIVATE ${F_INCLUDES} ${PROJECT_SOURCE_DIR}/differential/fuzz)
  target_link_libraries(${NAME} PRIVATE ${F_LIBS} GTest::gtest GTest::gtest_main)
  target_compile_definitions(${NAME} PRIVATE IOAS_FUZZ_REGRESSIONS_DIR="${F_REGRESSIONS}"
                             IOAS_FUZZ_SEEDS_DIR="${F_SEEDS}" ${F_DEFINITIONS})
  if(F_PROPERTIES)
    gtest_discover_tests(${NAME} TEST_PREFIX "${F_TEST_PREFIX}" DISCOVERY_TIMEOUT 60 PROPERTIES ${F_PROPERTIES})
  else()
    gtest_discover_tests(${NAME} TEST_PREFIX "${F_TEST_PREFIX}" DISCOVERY_TIMEOUT 60)
  endif()
endfunction()
