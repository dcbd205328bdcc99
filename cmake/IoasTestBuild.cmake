# How the test programs are compiled: every executable or library that links
# GTest::gtest or GTest::gtest_main directly (the libFuzzer targets, compiled
# with -fsanitize=fuzzer, excepted) is a test target, and
#   - reuses one precompiled header (gtest and the standard headers the
#     tests use, parsed once in ioas_test_pch_exe / ioas_test_pch_lib instead
#     of once per test source; -DIOAS_TEST_PCH=OFF: none);
#   - has IOAS_TEST_DEBUG_INFO (default -g1: line tables and functions, so
#     failures, backtraces and sanitizer reports still name file and line) in
#     place of the configuration's -g. The libraries, the tested code, keep
#     the configuration's flags; the optimisation level is the same
#     everywhere. -DIOAS_TEST_DEBUG_INFO=-g gives the tests full debug info.
#
# ccache: a compile that uses a precompiled header is cached only with
# sloppiness pch_defines,time_macros; ioas_use_ccache_with_pch() below sets
# it for ccache launchers (CMAKE_<LANG>_COMPILER_LAUNCHER=ccache).
# -DIOAS_TEST_PCH=OFF compiles the tests without it.
include_guard(GLOBAL)

option(IOAS_TEST_PCH "Share one precompiled header (gtest, std) across the test programs" ON)
set(IOAS_TEST_DEBUG_INFO "-g1" CACHE STRING
    "Debug info flag of the test programs under RelWithDebInfo and Debug (empty: the configuration's)")

# The donors: two compiles of the header, which the test targets reuse: one
# for executables (-fPIE), one for libraries (-fPIC); GCC refuses a header
# made with the other setting.
set(IOAS_TEST_PCH_HEADERS
    <gtest/gtest.h>
    <algorithm> <cerrno> <cstdint> <cstdio> <cstdlib> <cstring> <functional> <map> <memory>
    <optional> <set> <sstream> <string> <string_view> <vector>)
function(ioas_add_test_pch)
  if(NOT IOAS_TEST_PCH)
    return()
  endif()
  add_executable(ioas_test_pch_exe ${PROJECT_SOURCE_DIR}/cmake/test_pch.cpp)
  add_library(ioas_test_pch_lib OBJECT ${PROJECT_SOURCE_DIR}/cmake/test_pch.cpp)
  foreach(t ioas_test_pch_exe ioas_test_pch_lib)
    target_link_libraries(${t} PRIVATE GTest::gtest)
    target_precompile_headers(${t} PRIVATE ${IOAS_TEST_PCH_HEADERS})
    ioas_test_flags(${t})
  endforeach()
endfunction()

# The flags of a test target (its debug info; the donors' must match).
function(ioas_test_flags t)
  if(IOAS_TEST_DEBUG_INFO)
    target_compile_options(${t} PRIVATE $<$<CONFIG:RelWithDebInfo,Debug>:${IOAS_TEST_DEBUG_INFO}>)
  endif()
endfunction()

# Every test target under `dir` (recursively) gets the test flags and reuses
# the donor's header.
function(ioas_setup_test_targets dir)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(t IN LISTS targets)
    if(t MATCHES "^ioas_test_pch_(exe|lib)$")
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
    if(NOT IOAS_TEST_PCH)
      continue()
    endif()
    if(type STREQUAL "EXECUTABLE")
      target_precompile_headers(${t} REUSE_FROM ioas_test_pch_exe)
    else()
      target_precompile_headers(${t} REUSE_FROM ioas_test_pch_lib)
    endif()
  endforeach()
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    ioas_setup_test_targets(${sub})
  endforeach()
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
