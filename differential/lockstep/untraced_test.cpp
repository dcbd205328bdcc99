// Lockstep of what no trace line can say, on the states the lockstep
// generator draws: IOMMU_OPTION_HUGE_PAGES changed on an existing IOAS
// (Engine::set_huge_pages), and clone(), whose copy must equal its original
// and then live on its own. Fixed seeds; a failure is shrunk by RapidCheck
// and printed as the steps that led to it.
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <cstdio>
#include <map>
#include <sstream>
#include <string>

#include "lockstep.hpp"
#include "sut.hpp"

namespace ioas::lockstep {
namespace {

// `property` checked like a RapidCheck test, with a fixed seed: "" when it
// held, else the shrunk failure: its message and the steps (RC_LOG) that led
// to it.
template <typename F>
std::string check_with_seed(std::uint64_t seed, int cases, F property) {
  rc::detail::TestParams params;
  params.seed = seed;
  params.maxSuccess = cases;
  params.maxSize = 100;
  rc::detail::TestMetadata meta;
  meta.id = "untraced";
  const auto result = rc::detail::checkProperty(rc::detail::toProperty(property), meta, params);
  rc::detail::SuccessResult success;
  if (result.match(success)) return "";
  rc::detail::FailureResult failure;
  if (result.match(failure)) return failure.description;
  std::ostringstream msg;
  rc::detail::printResultMessage(result, msg);
  return msg.str();
}

struct Side {
  std::unique_ptr<Engine> engine;
  std::string current = "default";
};

Side fresh_sut() {
  Side s{make_sut(), "default"};
  RC_ASSERT(s.engine != nullptr);
  RC_ASSERT(s.engine->create_ioas("default", IoasOptions{}).ok());
  return s;
}

std::string answer(const Status& s) { return s.ok() ? "ok" : errno_name(s.code()); }

// `steps` steps on the spec and the engine under test: a trace operation
// from the lockstep generator, or, one time in `huge_one_in` (0: never),
// huge pages switched on or off in the current IOAS. After each, the answers
// and every observable state must agree (diff_states). `outcomes` counts the
// huge-pages answers ("huge-pages off EINVAL").
void run_steps(SpecModel& spec, Side& sut, int steps, int huge_one_in, std::map<std::string, int>& outcomes) {
  for (int i = 0; i < steps; ++i) {
    if (huge_one_in && *rc::gen::inRange(0, huge_one_in) == 0) {
      const bool on = *rc::gen::arbitrary<bool>();
      const std::string what = std::string("huge-pages ") + (on ? "on" : "off");
      RC_LOG() << "(" << what << " in " << spec.current << ")\n";
      const std::string a = answer(spec.engine->set_huge_pages(spec.current, on));
      const std::string b = answer(sut.engine->set_huge_pages(sut.current, on));
      ++outcomes[what + " " + a];
      if (a != b) RC_FAIL(what + " in " + spec.current + ": spec => " + a + ", sut => " + b);
      if (std::string d = diff_states(*spec.engine, *sut.engine); !d.empty()) RC_FAIL("after " + what + ": " + d);
      continue;
    }
    const trace::Operation op = *gen_operation(spec);
    RC_LOG() << trace::to_string(op) << "\n";
    const StepResult r = lockstep_step(*spec.engine, spec.current, *sut.engine, sut.current, op);
    if (!r.failure.empty()) RC_FAIL(r.failure);
  }
}

// A fresh spec and engine under test after `least` to `most - 1` steps.
struct Grown {
  SpecModel spec;
  Side sut;
};
Grown grown(int least, int most, int huge_one_in, std::map<std::string, int>& outcomes) {
  Grown g{SpecModel{}, fresh_sut()};
  run_steps(g.spec, g.sut, *rc::gen::inRange(least, most), huge_one_in, outcomes);
  return g;
}

TEST(Untraced, HugePagesSwitchedBetweenOperationsAgree) {
  std::map<std::string, int> outcomes;
  const std::string failure = check_with_seed(20261206, 150, [&] { grown(1, 60, 5, outcomes); });
  ASSERT_TRUE(failure.empty()) << failure;
  for (const auto& [k, n] : outcomes) std::printf("%-28s %6d\n", k.c_str(), n);
  // Every answer set_huge_pages can give on an existing IOAS was compared.
  for (const char* k : {"huge-pages on ok", "huge-pages off ok", "huge-pages off EINVAL", "huge-pages off EADDRINUSE"})
    EXPECT_GT(outcomes[k], 0) << k << " never happened";
}

TEST(Untraced, CloneEqualsItsOriginalAndThenLivesOnItsOwn) {
  std::map<std::string, int> outcomes;
  const std::string failure = check_with_seed(20261207, 100, [&] {
    auto [spec, sut] = grown(0, 50, 0, outcomes);
    Side copy{sut.engine->clone(), sut.current};
    if (!copy.engine) RC_FAIL("the engine under test cannot clone itself");
    if (std::string d = diff_states(*spec.engine, *copy.engine); !d.empty()) RC_FAIL("the clone differs: " + d);
    // The clone goes on in lockstep with the spec; the original must stay
    // as it was when it was cloned.
    const SpecModel at_clone = spec;
    RC_LOG() << "(the clone from here on)\n";
    run_steps(spec, copy, *rc::gen::inRange(1, 50), 0, outcomes);
    if (std::string d = diff_states(*at_clone.engine, *sut.engine); !d.empty())
      RC_FAIL("working on the clone changed the original: " + d);
  });
  ASSERT_TRUE(failure.empty()) << failure;
}

}  // namespace
}  // namespace ioas::lockstep
