#!/usr/bin/env bash
# Installs the build tree BUILD into a temporary prefix, then builds and runs
# the two examples against that installed copy only: the C one with
# pkg-config, the C++ one with find_package. Used by ctest (install.examples).
#   examples/check-installed.sh BUILD EXAMPLES_DIR
set -euo pipefail
build=$1
examples=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name ioas.pc -print -quit)")/..
echo "installed into $prefix:"
(cd "$prefix" && find . -type f -o -type l | sort | sed 's/^/  /')

# The shared library carries a versioned SONAME.
soname=$(objdump -p "$libdir/libioas.so" | awk '/SONAME/ {print $2}')
echo "SONAME: $soname"
[ "$soname" = "libioas.so.0" ] || { echo "unexpected SONAME '$soname'"; exit 1; }

# Extra compile and link flags, the same the installed library was built with
# (the sanitizers' under -DIOAS_SANITIZE=ON).
extra=${IOAS_EXAMPLE_FLAGS:-}

# C, through pkg-config.
export PKG_CONFIG_PATH=$libdir/pkgconfig
cc -std=c11 -Wall -Wextra -Werror $extra "$examples/c/example.c" $(pkg-config --cflags --libs ioas) -o "$work/c-example"
LD_LIBRARY_PATH=$libdir "$work/c-example"

# C++, through find_package(ioas).
cmake -S "$examples/cpp" -B "$work/cpp-build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_CXX_FLAGS="$extra" -DCMAKE_EXE_LINKER_FLAGS="$extra" >/dev/null
cmake --build "$work/cpp-build" >/dev/null
"$work/cpp-build/example"
echo "install.examples: ok"
