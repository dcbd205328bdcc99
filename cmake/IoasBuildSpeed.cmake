# How the build is made faster without changing what it compiles.
#
# ioas_select_linker()
#   Links everything with IOAS_LINKER: "auto" (the default: lld if the
#   compiler can link with it, else gold, else the compiler's default), or
#   "lld", "gold", "bfd", or "default" (no -fuse-ld). The many test programs
#   carry debug info; lld links them several times faster than GNU ld. A
#   linker named explicitly that does not work is an error at configure time.
#   Call before the targets are created.
#
# ioas_unity_build(target [BATCH n])
#   Compiles the target's sources as unity files of n sources each (default
#   8): the headers are parsed, and their inline and template code compiled,
#   once per batch instead of once per source. -DIOAS_UNITY=OFF compiles each
#   source on its own (the sources must keep building that way too: names at
#   file scope in an anonymous namespace must not repeat across a target's
#   sources).
include_guard(GLOBAL)
include(CheckCXXSourceCompiles)

set(IOAS_LINKER "auto" CACHE STRING "Linker: auto (lld, else gold, else the default), lld, gold, bfd, default")
set_property(CACHE IOAS_LINKER PROPERTY STRINGS auto lld gold bfd default)
option(IOAS_UNITY "Unity builds of the targets that ask for one (ioas_unity_build)" ON)

# Whether the C++ compiler links a program with -fuse-ld=<name>.
function(ioas_linker_works name out)
  set(CMAKE_REQUIRED_LINK_OPTIONS -fuse-ld=${name})
  set(CMAKE_REQUIRED_QUIET ON)
  check_cxx_source_compiles("int main() { return 0; }" IOAS_LINKER_${name}_WORKS)
  set(${out} ${IOAS_LINKER_${name}_WORKS} PARENT_SCOPE)
endfunction()

function(ioas_select_linker)
  if(IOAS_LINKER STREQUAL "default")
    return()
  endif()
  if(IOAS_LINKER STREQUAL "auto")
    set(candidates lld gold)
  else()
    set(candidates ${IOAS_LINKER})
  endif()
  foreach(name IN LISTS candidates)
    ioas_linker_works(${name} works)
    if(works)
      add_link_options(-fuse-ld=${name})
      message(STATUS "Linker: ${name} (IOAS_LINKER=${IOAS_LINKER})")
      return()
    endif()
  endforeach()
  if(NOT IOAS_LINKER STREQUAL "auto")
    message(FATAL_ERROR "IOAS_LINKER=${IOAS_LINKER}: ${CMAKE_CXX_COMPILER} cannot link with -fuse-ld=${IOAS_LINKER}")
  endif()
  message(STATUS "Linker: the compiler's default (neither lld nor gold links here)")
endfunction()

function(ioas_unity_build target)
  cmake_parse_arguments(PARSE_ARGV 1 U "" "BATCH" "")
  if(NOT U_BATCH)
    set(U_BATCH 8)
  endif()
  if(IOAS_UNITY)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${U_BATCH})
  endif()
endfunction()
