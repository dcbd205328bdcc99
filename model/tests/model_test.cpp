#include <gtest/gtest.h>
#include "ioas/engine.hpp"
