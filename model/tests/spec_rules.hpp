// The SPEC.md rules as tests over any ioas::Engine.
//
// Each engine's test binary instantiates the suite with its factory:
//   INSTANTIATE_TEST_SUITE_P(Model, SpecRules,
//       ::testing::Values(ioas::testing::EngineFactory{"model", &ioas::make_model_engine}),
//       ioas::testing::FactoryName{});
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "ioas/engine.hpp"

namespace ioas::testing {

struct EngineFactory {
  std::string name;
  std::unique_ptr<Engine> (*make)();
};

struct FactoryName {
  std::string operator()(const ::testing::TestParamInfo<EngineFactory>& info) const {
    return info.param.name;
  }
};

class SpecRules : public ::testing::TestWithParam<EngineFactory> {
 protected:
  void SetUp() override { engine = GetParam().make(); ASSERT_NE(engine, nullptr); }
  std::unique_ptr<Engine> engine;
};

}  // namespace ioas::testing
