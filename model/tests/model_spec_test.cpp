// Runs the SPEC rules (spec_rules.cpp) on the executable spec.
#include "spec_rules.hpp"

namespace ioas::testing {
INSTANTIATE_TEST_SUITE_P(Model, SpecRules,
                         ::testing::Values(EngineFactory{"model", &make_model_engine}),
                         FactoryName{});
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(SpecRules);
}  // namespace ioas::testing
