#include <gtest/gtest.h>
#include "ioas/range.hpp"
