# How the test programs are compiled: every executable or library that links
# GTest::gtest or GTest::gtest_main directly (the libFuzzer targets, compiled
# with -fsanitize=fuzzer, excepted) is a test target, and
#   - reuses one precompiled header (gtest and the standard headers the
#     tests use, parsed once in ioas_test_pch_exe instead of once per test
#     source; -DIOAS_TEST_PCH=OFF: none). GCC refuses a header made with
#     other -fPIC/-fPIE or -O flags, so the test libraries (linked only into
#     test programs) are compiled with -fPIE as the programs are, and the
#     programs that keep -O2 use none: at -O2 their compile is code
#     generation, and a second header made at -O2 cost more to make than the
#     few programs that read it saved;
#   - has IOAS_TEST_DEBUG_INFO (default -g1: line tables and functions, so
#     failures, backtraces and sanitizer reports still name file and line) in
#     place of the configuration's -g. -DIOAS_TEST_DEBUG_INFO=-g gives the
#     tests full debug info;
#   - is compiled with IOAS_TEST_OPTIMIZE (default -O0) in place of
#     RelWithDebInfo's -O2: a test source mostly calls into the libraries and
#     compares answers, and runs once, so optimising it costs more compile
#     time than it saves in run time. A test target whose own code does the
#     heavy work (a loop of millions of steps, threads racing) keeps -O2 with
#     ioas_test_keeps_optimization(target). Under the sanitizers
#     (IOAS_SANITIZE, IOAS_TSAN) every test keeps -O2: instrumented code at
#     -O0 runs several times slower. The libraries, the tested code, keep the
#     configuration's flags everywhere. A heavy test among light ones goes
#     into a small program of its own (its ctest name unchanged), so that only
#     it keeps -O2. cmake.TestFlags (ioas_add_test_flags_check below) checks
#     all of this in compile_commands.json;
#   - is a unity build (ioas_unity_build, cmake/IoasBuildSpeed.cmake): at -O0
#     most of a test object is the inline and template code of gtest, std and
#     our headers, emitted once per unity file instead of once per source. A
#     source whose file-scope names repeat another's opts out with
#     SKIP_UNITY_BUILD_INCLUSION in its CMakeLists.txt.
#
# ccache: a compile that uses a precompiled header is cached only with
# sloppiness pch_defines,time_macros; ioas_use_ccache_with_pch() below sets
# it for ccache launchers (CMAKE_<LANG>_COMPILER_LAUNCHER=ccache).
# -DIOAS_TEST_PCH=OFF compiles the tests without it.
include_guard(GLOBAL)

option(IOAS_TEST_PCH "Share one precompiled header (gtest, std) across the test programs" ON)
set(IOAS_TEST_DEBUG_INFO "-g1" CACHE STRING
    "Debug info flag of the test programs under RelWithDebInfo and Debug (empty: the configuration's)")
set(IOAS_TEST_OPTIMIZE "-O0" CACHE STRING
    "Optimisation flag of the test programs under RelWithDebInfo (empty: the configuration's)")

# The donor: the one compile of the header, which the test targets reuse. It
# is an executable (-fPIE) at the tests' optimisation level.
set(IOAS_TEST_PCH_HEADERS
    <gtest/gtest.h>
    <algorithm> <cerrno> <cstdint> <cstdio> <cstdlib> <cstring> <functional> <map> <memory>
    <optional> <set> <sstream> <string> <string_view> <vector>)
function(ioas_add_test_pch)
  if(NOT IOAS_TEST_PCH)
    return()
  endif()
  add_executable(ioas_test_pch_exe ${PROJECT_SOURCE_DIR}/cmake/test_pch.cpp)
  target_link_libraries(ioas_test_pch_exe PRIVATE GTest::gtest)
  target_precompile_headers(ioas_test_pch_exe PRIVATE ${IOAS_TEST_PCH_HEADERS})
  ioas_test_flags(ioas_test_pch_exe)
endfunction()

# A test target whose own code does the heavy work keeps the configuration's
# optimisation level (its debug info is still IOAS_TEST_DEBUG_INFO). Call
# from the target's CMakeLists.txt; ioas_setup_test_targets reads it.
function(ioas_test_keeps_optimization t)
  set_target_properties(${t} PROPERTIES IOAS_TEST_KEEPS_OPTIMIZATION ON)
endfunction()

# Whether the tests get IOAS_TEST_OPTIMIZE: not under the sanitizers.
set(IOAS_TEST_LOWERS_OPTIMIZATION OFF)
if(IOAS_TEST_OPTIMIZE AND NOT IOAS_SANITIZE AND NOT IOAS_TSAN AND NOT IOAS_FUZZ)
  set(IOAS_TEST_LOWERS_OPTIMIZATION ON)
endif()

# The flags of a test target (its debug info and optimisation; the donors'
# must match).
function(ioas_test_flags t)
  if(IOAS_TEST_DEBUG_INFO)
    target_compile_options(${t} PRIVATE $<$<CONFIG:RelWithDebInfo,Debug>:${IOAS_TEST_DEBUG_INFO}>)
  endif()
  get_target_property(keep ${t} IOAS_TEST_KEEPS_OPTIMIZATION)
  if(IOAS_TEST_LOWERS_OPTIMIZATION AND NOT keep)
    target_compile_options(${t} PRIVATE $<$<CONFIG:RelWithDebInfo>:${IOAS_TEST_OPTIMIZE}>)
  endif()
endfunction()

# Every test target under `dir` (recursively) gets the test flags and reuses
# the donor's header.
function(ioas_setup_test_targets dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS targets)
    if(t STREQUAL "ioas_test_pch_exe")
      continue()
    endif()
    get_target_property(type ${t} TYPE)
    if(NOT type MATCHES "^(EXECUTABLE|STATIC_LIBRARY|OBJECT_LIBRARY)$")
      continue()
    endif()
    get_target_property(libs ${t} LINK_LIBRARIES)
    get_target_property(opts ${t} COMPILE_OPTIONS)
    if(NOT libs OR NOT ("GTest::gtest" IN_LIST libs OR "GTest::gtest_main" IN_LIST libs))
      continue()
    endif()
    if(opts AND "${opts}" MATCHES "-fsanitize=fuzzer")
      continue()
    endif()
    ioas_test_flags(${t})
    set_property(GLOBAL APPEND PROPERTY IOAS_TEST_TARGETS ${t})
    ioas_unity_build(${t})
    if(NOT IOAS_TEST_PCH)
      continue()
    endif()
    get_target_property(keeps ${t} IOAS_TEST_KEEPS_OPTIMIZATION)
    if(keeps AND IOAS_TEST_LOWERS_OPTIMIZATION)
      continue()
    endif()
    if(NOT type STREQUAL "EXECUTABLE")
      # Compiled as the programs it is linked into are, so that it can read
      # the programs' header.
      set_target_properties(${t} PROPERTIES POSITION_INDEPENDENT_CODE OFF)
      target_compile_options(${t} PRIVATE ${CMAKE_CXX_COMPILE_OPTIONS_PIE})
    endif()
    target_precompile_headers(${t} REUSE_FROM ioas_test_pch_exe)
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    ioas_setup_test_targets(${sub})
  endforeach()
endfunction()

# cmake.TestFlags: every test target's compiles, and the libraries', carry
# the flags above (cmake/tests/check_test_flags.cmake reads
# compile_commands.json). The test programs that keep the configuration's
# optimisation are named here, so that one moving in or out of that set is a
# change the test sees. Call after ioas_setup_test_targets. Under
# RelWithDebInfo only, the configuration these rules are about.
function(ioas_add_test_flags_check)
  if(NOT CMAKE_BUILD_TYPE STREQUAL "RelWithDebInfo" OR NOT CMAKE_EXPORT_COMPILE_COMMANDS)
    return()
  endif()
  cmake_parse_arguments(PARSE_ARGV 0 C "" "" "KEPT;LIBRARIES")
  get_property(tests GLOBAL PROPERTY IOAS_TEST_TARGETS)
  set(test_o -O2)
  if(IOAS_TEST_LOWERS_OPTIMIZATION)
    set(test_o ${IOAS_TEST_OPTIMIZE})
  endif()
  set(test_g -g)
  if(IOAS_TEST_DEBUG_INFO)
    set(test_g ${IOAS_TEST_DEBUG_INFO})
  endif()
  # The precompiled header each compile reads: the donor's for the test
  # targets, none for the kept ones (IOAS_TEST_PCH=OFF: none anywhere).
  set(test_pch none)
  set(kept_pch none)
  if(IOAS_TEST_PCH)
    set(test_pch ${CMAKE_BINARY_DIR}/CMakeFiles/ioas_test_pch_exe.dir/cmake_pch.hxx)
    if(NOT IOAS_TEST_LOWERS_OPTIMIZATION)
      set(kept_pch ${test_pch})
    endif()
  endif()
  string(REPLACE ";" "\\;" tests "${tests}")
  string(REPLACE ";" "\\;" kept "${C_KEPT}")
  string(REPLACE ";" "\\;" libs "${C_LIBRARIES}")
  add_test(NAME cmake.TestFlags
           COMMAND ${CMAKE_COMMAND} -DCOMPILE_COMMANDS=${CMAKE_BINARY_DIR}/compile_commands.json
                   -DTEST_TARGETS=${tests} -DKEPT=${kept} -DLIBRARIES=${libs}
                   -DTEST_OPTIMIZE=${test_o} -DTEST_DEBUG_INFO=${test_g}
                   -DLIBRARY_OPTIMIZE=-O2 -DLIBRARY_DEBUG_INFO=-g
                   -DTEST_PCH=${test_pch} -DKEPT_PCH=${kept_pch}
                   -P ${PROJECT_SOURCE_DIR}/cmake/tests/check_test_flags.cmake)
endfunction()

# ccache caches a compile that includes a precompiled header only with
# sloppiness pch_defines,time_macros: when the C++ launcher is ccache, run
# it with CCACHE_SLOPPINESS set (this replaces a sloppiness set elsewhere for
# these compiles). Call before the targets are created.
macro(ioas_use_ccache_with_pch)
  if(IOAS_TEST_PCH AND CMAKE_CXX_COMPILER_LAUNCHER)
    list(GET CMAKE_CXX_COMPILER_LAUNCHER 0 _ioas_launcher)
    get_filename_component(_ioas_launcher_name "${_ioas_launcher}" NAME)
    if(_ioas_launcher_name STREQUAL "ccache")
      set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env CCACHE_SLOPPINESS=pch_defines,time_macros
          ${CMAKE_CXX_COMPILER_LAUNCHER})
    endif()
  endif()
endmacro()
