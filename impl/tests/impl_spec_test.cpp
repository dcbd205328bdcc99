// Runs the SPEC rules (model/tests/spec_rules.cpp) on the production engine,
// with verify() after every call (make_checked_engine).
#include "ioas/impl.hpp"
#include "spec_rules.hpp"

namespace ioas::testing {
INSTANTIATE_TEST_SUITE_P(Impl, SpecRules,
                         ::testing::Values(EngineFactory{"impl", &make_checked_engine}),
                         FactoryName{});
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(SpecRules);
}  // namespace ioas::testing
