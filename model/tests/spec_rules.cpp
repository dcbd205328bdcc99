#include "spec_rules.hpp"
