# Checks, in a build's compile_commands.json, the optimisation and debug-info
# flags every compile gets (cmake/IoasTestBuild.cmake): GCC and Clang obey the
# last -O and the last -g of a command, so those are the ones compared.
#   - every compile of a test target (TEST_TARGETS) but the kept ones has
#     TEST_OPTIMIZE and TEST_DEBUG_INFO;
#   - every compile of a kept test target (KEPT: those whose own code does the
#     heavy work, named here so that a program moving between the two sets is
#     a change this test sees) has LIBRARY_OPTIMIZE and TEST_DEBUG_INFO;
#   - every compile of a library (LIBRARIES) has LIBRARY_OPTIMIZE and
#     LIBRARY_DEBUG_INFO (someone stepping through the library needs its
#     variables);
#   - every compile of a test target but the kept ones includes the shared
#     precompiled header TEST_PCH (cmake_pch.hxx of ioas_test_pch_exe), and
#     every compile of a kept one includes KEPT_PCH ("none": no precompiled
#     header), so that no target quietly gets a header of its own, or none;
#     and a compile that includes TEST_PCH is position-independent as the
#     donor is (-fPIE: GCC silently parses the header's text instead of a
#     precompiled header made with other -fPIC/-fPIE flags);
#   - each of the targets named has at least one compile (a renamed target
#     must not make the check pass by checking nothing), and every kept
#     target is a test target.
#   cmake -DCOMPILE_COMMANDS=<file> -DTEST_TARGETS=a;b -DKEPT=c;d -DLIBRARIES=e;f
#         -DTEST_OPTIMIZE=-O0 -DTEST_DEBUG_INFO=-g1 -DLIBRARY_OPTIMIZE=-O2
#         -DLIBRARY_DEBUG_INFO=-g -DTEST_PCH=<build>/CMakeFiles/ioas_test_pch_exe.dir/cmake_pch.hxx
#         -DKEPT_PCH=none -P check_test_flags.cmake
cmake_minimum_required(VERSION 3.25)
foreach(v COMPILE_COMMANDS TEST_TARGETS KEPT LIBRARIES TEST_OPTIMIZE TEST_DEBUG_INFO LIBRARY_OPTIMIZE
          LIBRARY_DEBUG_INFO TEST_PCH KEPT_PCH)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "check_test_flags.cmake: -D${v}=... is required")
  endif()
endforeach()
foreach(t IN LISTS KEPT)
  if(NOT t IN_LIST TEST_TARGETS)
    message(FATAL_ERROR "${t} is named as a kept test program, but is no test target "
                        "(it does not link GTest, or it was renamed)")
  endif()
endforeach()

file(READ ${COMPILE_COMMANDS} json)
string(JSON count LENGTH "${json}")
set(problems "")
set(seen "")
math(EXPR last "${count} - 1")
foreach(i RANGE ${last})
  string(JSON command ERROR_VARIABLE no_command GET "${json}" ${i} command)
  if(no_command)
    continue()
  endif()
  string(JSON file GET "${json}" ${i} file)
  # The target is the directory of the object: .../CMakeFiles/<target>.dir/...
  if(NOT command MATCHES " -o [^ ]*CMakeFiles/([^/ ]+)\\.dir/")
    continue()
  endif()
  set(target ${CMAKE_MATCH_1})
  if(target IN_LIST KEPT)
    set(want_o ${LIBRARY_OPTIMIZE})
    set(want_g ${TEST_DEBUG_INFO})
    set(what "a kept test program")
    set(want_pch ${KEPT_PCH})
  elseif(target IN_LIST TEST_TARGETS)
    set(want_o ${TEST_OPTIMIZE})
    set(want_g ${TEST_DEBUG_INFO})
    set(what "a test target")
    set(want_pch ${TEST_PCH})
  elseif(target IN_LIST LIBRARIES)
    set(want_o ${LIBRARY_OPTIMIZE})
    set(want_g ${LIBRARY_DEBUG_INFO})
    set(what "a library")
    set(want_pch "")
  else()
    continue()
  endif()
  list(APPEND seen ${target})
  # The last -O<level> and the last -g<level> of the command.
  separate_arguments(words UNIX_COMMAND "${command}")
  set(got_o "")
  set(got_g "")
  set(got_pch none)
  set(got_pic "")
  set(after_include OFF)
  foreach(w IN LISTS words)
    if(after_include)
      if(w MATCHES "/cmake_pch\\.hxx$")
        set(got_pch ${w})
      endif()
      set(after_include OFF)
    elseif(w STREQUAL "-include")
      set(after_include ON)
    elseif(w MATCHES "^-f(PIC|PIE|pic|pie|no-pic|no-pie)$")
      set(got_pic ${w})
    elseif(w MATCHES "^-O([0-3sgz]|fast)?$")
      set(got_o ${w})
    elseif(w MATCHES "^-g[0-3]?$")
      set(got_g ${w})
    endif()
  endforeach()
  if(NOT got_o STREQUAL want_o OR NOT got_g STREQUAL want_g)
    string(APPEND problems "  ${file} (${target}, ${what}): compiled with '${got_o} ${got_g}', "
                           "expected '${want_o} ${want_g}'\n")
  endif()
  if(want_pch AND NOT got_pch STREQUAL want_pch)
    string(APPEND problems "  ${file} (${target}, ${what}): precompiled header '${got_pch}', "
                           "expected '${want_pch}'\n")
  endif()
  if(NOT got_pch STREQUAL "none" AND NOT got_pic STREQUAL "-fPIE")
    string(APPEND problems "  ${file} (${target}, ${what}): reads the precompiled header with "
                           "'${got_pic}', which was made with -fPIE\n")
  endif()
endforeach()

foreach(t IN LISTS TEST_TARGETS LIBRARIES)
  if(NOT t IN_LIST seen)
    string(APPEND problems "  ${t}: no compile of it in ${COMPILE_COMMANDS}\n")
  endif()
endforeach()
if(problems)
  message(FATAL_ERROR "Compile flags differ from cmake/IoasTestBuild.cmake's rules:\n${problems}")
endif()
list(REMOVE_DUPLICATES seen)
list(LENGTH seen n)
message(STATUS "The flags of ${n} targets' compiles are as expected")
