// The fail-nth sweep (the kernel's iommufd_fail_nth): for each
// scenario, fail the 1st, 2nd, ... allocation (page-table pages and the
// engine's own objects) of one mutating operation until it succeeds. After every injected failure the engine
// must answer ENOMEM, pass its own verify() (the checked engine runs it
// after every call), leak no table page (every page in use is reachable
// from a domain's root), and equal the model that never ran
// the operation: IOAS state, ranges, translations, dirty state and every
// page-table leaf (diff_states). When the operation finally succeeds, the
// model runs it too and both must agree again.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "ioas/impl.hpp"
#include "lockstep.hpp"
#include "replay.hpp"
#include "trace.hpp"

namespace ioas::lockstep {
namespace {

struct Scenario {
  const char* name;
  const char* setup;  // trace lines run on both engines first
  const char* op;     // the operation swept
  int min_failures;   // the sweep must have failed at least this many times
};

// Three formats side by side (x86-64, arm-lpae, tce) make every map touch
// three tables; sizes and offsets are chosen so that 1G/2M/4K leaves and
// fresh intermediate tables are all needed.
constexpr const char* kThreeDomains =
    "mem m1 va=0x7f0000000000 len=0x80000000 pa=0x40000000\n"
    "mem m2 va=0x7e0000001000 len=0x400000\n"
    "attach dev=a dom=dx fmt=x86-64\n"
    "attach dev=b dom=da fmt=arm-lpae\n"
    "attach dev=c dom=dt fmt=tce\n";

const Scenario kScenarios[] = {
    {"map into three domains", kThreeDomains, "map iova=0x20000000 len=0x40201000 src=m1 prot=rw", 6},
    {"automatic map into three domains", kThreeDomains, "map len=0x200000 src=m2 prot=rw", 3},
    {"attach with many areas",
     "mem m1 va=0x7f0000000000 len=0x80000000 pa=0x40000000\n"
     "map iova=0x40000000 len=0x40000000 src=m1 prot=rw\n"
     "map iova=0x10000000 len=0x201000 src=m1+0x40000000 prot=r\n"
     "map iova=0x20003000 len=0x5000 src=m1+0x40300000 prot=rw\n"
     "map iova=0x100000000 len=0x200000 src=m1+0x50000000 prot=rw\n",
     "attach dev=a dom=d fmt=arm-lpae", 4},
    {"copy into an IOAS with two domains",
     "mem m1 va=0x7f0000000000 len=0x80000000 pa=0x40000000\n"
     "map iova=0x40000000 len=0x400000 src=m1 prot=rw\n"
     "map iova=0x40400000 len=0x3000 src=m1+0x400000 prot=rw\n"
     "ioas dst\n"
     "attach dev=a dom=dx fmt=x86-64\n"
     "attach dev=b dom=dt fmt=tce aperture=0-0xffffffffff\n",
     "copy from=default iova=0x40000000 len=0x403000 to=0x8000000000 prot=rw", 4},
    {"cut inside large leaves of two domains",
     "mem m1 va=0x7f0000000000 len=0x80000000 pa=0x40000000\n"
     "attach dev=a dom=dx fmt=x86-64\n"
     "attach dev=b dom=da fmt=arm-lpae\n"
     "map iova=0x40000000 len=0x40000000 src=m1 prot=rw\n",
     "cut iova=0x40203fff", 4},
    {"dirty tracking split of a 1G and 2M mapping",
     "mem m1 va=0x7f0000000000 len=0x80000000 pa=0x40000000\n"
     "attach dev=a dom=d fmt=arm-lpae\n"
     "map iova=0x40000000 len=0x40400000 src=m1 prot=rw\n"
     "dma dom=d write iova=0x40000010 len=4\n",
     "dirty dom=d on split", 3},
    // The engine's own objects: each is one counted allocation.
    {"create an IOAS", "", "ioas other huge-pages=off", 1},
    {"register memory", "", "mem m9 va=0x1000 len=0x1000", 1},
    {"reserve", "", "reserve 0x100000-0x1fffff owner=fw", 1},
    {"allow", "", "allow 0x100000-0x1fffff 0x400000-0x4fffff", 1},
    {"pin an area", "mem m1 va=0x7f0000000000 len=0x100000\nmap iova=0x100000 len=0x10000 src=m1 prot=rw\n",
     "pin iova=0x100000 len=0x10000 write", 1},
};

// Test names and failure messages show the scenario by its name.
void PrintTo(const Scenario& s, std::ostream* os) { *os << s.name; }

std::vector<trace::Line> lines_of(const std::string& text) {
  auto t = trace::parse_trace(text, "scenario");
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
  return t.ok() ? t->lines : std::vector<trace::Line>{};
}

class FailNth : public ::testing::TestWithParam<Scenario> {};

TEST_P(FailNth, EveryInjectedFailureIsEnomemAndChangesNothing) {
  const Scenario& sc = GetParam();
  auto impl = make_checked_engine();
  auto model = make_model_engine();
  std::string ci = "default", cm = "default";
  ASSERT_TRUE(impl->create_ioas("default", IoasOptions{}).ok());
  ASSERT_TRUE(model->create_ioas("default", IoasOptions{}).ok());
  for (const auto& line : lines_of(sc.setup)) {
    StepResult r = lockstep_step(*model, cm, *impl, ci, line.op);
    ASSERT_EQ(r.failure, "") << line.text;
    ASSERT_EQ(r.outcome.kind == trace::OutcomeKind::kError, false) << line.text << " => " << trace::to_string(r.outcome);
  }
  const auto op_lines = lines_of(sc.op);
  ASSERT_EQ(op_lines.size(), 1u);
  const trace::Operation& op = op_lines[0].op;
  int failures = 0;
  for (u64 n = 1;; ++n) {
    ASSERT_LT(n, 10000u) << "the operation never succeeded";
    ASSERT_TRUE(fail_nth_alloc(*impl, n));
    std::string c = ci;
    const auto a = trace::execute(*impl, c, op);
    fail_nth_alloc(*impl, 0);
    if (a.outcome.kind == trace::OutcomeKind::kError) {
      ASSERT_EQ(a.outcome.error, ENOMEM) << "failing allocation " << n << ": " << a.note;
      EXPECT_NE(a.note.find("memory"), std::string::npos) << a.note;
      ++failures;
      // Nothing changed: the model, which never ran the operation, agrees.
      ASSERT_EQ(diff_states(*model, *impl), "") << "after failing allocation " << n;
      ASSERT_EQ(table_pages_in_use(*impl), table_pages_reachable(*impl))
          << "table pages leaked (in use but unreachable) after failing allocation " << n;
      continue;
    }
    // Success: the injection point lay beyond what the operation needs.
    const auto b = trace::execute(*model, cm, op);
    ci = c;
    ASSERT_EQ(trace::to_string(a.outcome), trace::to_string(b.outcome));
    ASSERT_EQ(diff_states(*model, *impl), "");
    break;
  }
  std::printf("[ fail-nth ] %s: %d injected failures, each ENOMEM with nothing changed\n", sc.name, failures);
  EXPECT_GE(failures, sc.min_failures) << "the scenario needs fewer page-table pages than it was built for";
}

INSTANTIATE_TEST_SUITE_P(Scenarios, FailNth, ::testing::ValuesIn(kScenarios),
                         [](const ::testing::TestParamInfo<Scenario>& i) {
                           std::string n;
                           for (const char* p = i.param.name; *p; ++p) n += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
                           return n;
                         });

}  // namespace
}  // namespace ioas::lockstep
