# Configures cmake/tests/linker with IOAS_LINKER=<LINKER> in <BUILD_DIR> (made
# afresh) and checks the outcome:
#   EXPECT=fail  the configure stops, and its output names the linker:
#                "IOAS_LINKER=<LINKER>: ... cannot link with -fuse-ld=<LINKER>";
#   EXPECT=pass  the configure succeeds.
#   cmake -DIOAS_SOURCE_DIR=... -DBUILD_DIR=... -DLINKER=... -DEXPECT=fail|pass
#         -DCXX=<compiler> -DGENERATOR=<generator> -P check_linker.cmake
foreach(v IOAS_SOURCE_DIR BUILD_DIR LINKER EXPECT CXX GENERATOR)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "check_linker.cmake: -D${v}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE ${BUILD_DIR})
execute_process(
  COMMAND ${CMAKE_COMMAND} -S ${IOAS_SOURCE_DIR}/cmake/tests/linker -B ${BUILD_DIR} -G ${GENERATOR}
          -DCMAKE_CXX_COMPILER=${CXX} -DIOAS_SOURCE_DIR=${IOAS_SOURCE_DIR} -DIOAS_LINKER=${LINKER}
  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE out)
if(EXPECT STREQUAL "fail")
  if(status EQUAL 0)
    message(FATAL_ERROR "IOAS_LINKER=${LINKER}: the configure succeeded; it should have stopped:\n${out}")
  endif()
  string(REGEX REPLACE "[ \t\r\n]+" " " flat "${out}")
  if(NOT flat MATCHES "IOAS_LINKER=${LINKER}: .* cannot link with -fuse-ld=${LINKER}")
    message(FATAL_ERROR "IOAS_LINKER=${LINKER}: the configure stopped without naming the linker:\n${out}")
  endif()
  message(STATUS "IOAS_LINKER=${LINKER}: refused, as it should be")
elseif(EXPECT STREQUAL "pass")
  if(NOT status EQUAL 0)
    message(FATAL_ERROR "IOAS_LINKER=${LINKER}: the configure failed:\n${out}")
  endif()
  message(STATUS "IOAS_LINKER=${LINKER}: accepted")
else()
  message(FATAL_ERROR "check_linker.cmake: EXPECT must be fail or pass, not '${EXPECT}'")
endif()
