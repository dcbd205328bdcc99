// The kernel selftest's iommufd_fail_nth.c scenarios (Linux 6.12) on the
// userspace iommufd layer, with the impl engine's fault injection
// (ioas::fail_nth_alloc) standing for the kernel's /proc/self/task/N/fail-nth.
//
// For each scenario and n = 1, 2, ...: a fresh context runs the scenario's
// setup, arms "the nth allocation from now fails" where the selftest calls
// fail_nth_enable(), and runs the rest. The first refused call must answer
// ENOMEM and leave the context exactly as before it (context_state: the
// layer's table and everything the engine shows), with the engine's
// invariants holding and as many table pages in use and reachable from the
// domains as before (none leaked); the scenario stops there
// (as the selftest's `return -1`) and its cleanup (closing the access
// descriptor and the context) must work. The sweep ends at the first n past
// the scenario's last allocation: the scenario then runs to the end. Each
// scenario prints how many failure points it swept.
//
// Every scenario of iommufd_fail_nth.c applies (basic, map_domain,
// map_two_domains, access_rw, access_pin, access_pin_domain, device), with
// these parts that do not:
//   - open("/dev/iommu") is not swept: the engine that counts allocations is
//     created by the open itself (ioas_iommufd_open_engine), so injection is
//     armed after it; the kernel test sweeps the open too.
//   - IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT is run but changes nothing: the
//     engine has no temporary batch memory for the limit to shrink.
//   - Only the engine's allocations fail (table pages and the engine's own
//     objects: ioas/impl.hpp); the kernel fails every kmalloc and page
//     allocation, including the layer's own bookkeeping (the object table),
//     which here is std:: containers that a heap failure makes throw
//     std::bad_alloc (answered ENOMEM by ioas_iommufd_ioctl).
//   - access_rw: reading and writing through an access allocates nothing in
//     the engine (the layer copies through the areas' user addresses), so its
//     ACCESS_RW calls have no failure point; CREATE_ACCESS does not either (an
//     access is an object of the layer's table, not of the engine).
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "context_state.hpp"
#include "ioas/impl.hpp"
#include "ioas/iommufd.h"
#include "ioas/uapi/iommufd_test.h"

namespace ioas::uapi {
namespace {
using testing::test_cmd;

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kBufferSize = 2 * 1024 * 1024;  // the selftest's BUFFER_SIZE
constexpr std::uint64_t kMaxPoints = 400;               // the selftest's limit on iterations

// The selftest's buffer: 2 MiB of shared anonymous memory.
void* buffer() {
  static void* b = mmap(nullptr, kBufferSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return b;
}
std::uint64_t buffer_va() { return reinterpret_cast<std::uint64_t>(buffer()); }

// One run of a scenario with the nth allocation after enable() failing (0:
// none): the selftest's FIXTURE plus its fail_nth state.
class Attempt {
 public:
  explicit Attempt(std::uint64_t nth) : nth_(nth) {
    fd_ = ioas_iommufd_open_engine("impl");
    engine_ = testing::engine_of(fd_);
  }
  // FIXTURE_TEARDOWN: the access descriptor goes, then the context; both
  // must work whatever failed.
  ~Attempt() {
    if (engine_) fail_nth_alloc(*engine_, 0);
    destroy_access();
    EXPECT_EQ(ioas_iommufd_close(fd_), 0) << "the context does not close after a failure";
  }
  bool ok() const { return fd_ >= 0 && engine_ != nullptr; }

  // fail_nth_enable().
  void enable() {
    if (!nth_) return;
    start_ = alloc_calls(*engine_);
    ASSERT_TRUE(fail_nth_alloc(*engine_, nth_));
    armed_ = true;
  }
  // Whether the nth allocation has been reached.
  bool triggered() const { return armed_ && alloc_calls(*engine_) - start_ >= nth_; }
  bool failed() const { return failed_; }

  // One ioctl: true when it succeeded. A refused call must be the injected
  // failure: ENOMEM, with nothing changed.
  template <typename T>
  bool call(unsigned long request, T& cmd, const char* what) {
    const std::string before = testing::context_state(fd_);
    const std::uint64_t pages_in_use = table_pages_in_use(*engine_), pages_reachable = table_pages_reachable(*engine_);
    const bool was_triggered = triggered();
    errno = 0;
    if (ioas_iommufd_ioctl(fd_, request, &cmd) == 0) {
      EXPECT_TRUE(was_triggered || !triggered())
          << what << ": the injected allocation failure was swallowed, the call succeeded";
      return true;
    }
    const int err = errno;
    failed_ = true;
    EXPECT_TRUE(armed_ && triggered() && !was_triggered)
        << what << ": refused (" << ioas_iommufd_last_error() << ") without the injected failure";
    EXPECT_EQ(err, ENOMEM) << what << ": " << ioas_iommufd_last_error();
    EXPECT_EQ(testing::context_state(fd_), before) << what << ": the refused call changed the context";
    EXPECT_TRUE(engine_->check().empty()) << what << ": an engine invariant is broken after the failure";
    EXPECT_EQ(table_pages_in_use(*engine_), pages_in_use) << what << ": a page-table page leaked";
    EXPECT_EQ(table_pages_reachable(*engine_), pages_reachable) << what << ": the domains' tables changed";
    return false;
  }

  // ---- the selftest's helpers (iommufd_utils.h), as far as the scenarios use them ----
  bool ioas_alloc(std::uint32_t* id) {
    iommu_ioas_alloc cmd{sizeof(cmd), 0, 0};
    if (!call(IOMMU_IOAS_ALLOC, cmd, "IOMMU_IOAS_ALLOC")) return false;
    *id = cmd.out_ioas_id;
    return true;
  }
  bool map(std::uint32_t ioas, std::uint64_t va, std::uint64_t len, std::uint64_t* iova, std::uint32_t flags) {
    iommu_ioas_map cmd{};
    cmd.size = sizeof(cmd);
    cmd.flags = flags;
    cmd.ioas_id = ioas;
    cmd.user_va = va;
    cmd.length = len;
    cmd.iova = *iova;
    if (!call(IOMMU_IOAS_MAP, cmd, "IOMMU_IOAS_MAP")) return false;
    *iova = cmd.iova;
    return true;
  }
  bool map_rw(std::uint32_t ioas, std::uint64_t len, std::uint64_t* iova) {
    return map(ioas, buffer_va(), len, iova, IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE);
  }
  bool unmap(std::uint32_t ioas, std::uint64_t iova, std::uint64_t len) {
    iommu_ioas_unmap cmd{sizeof(cmd), ioas, iova, len};
    return call(IOMMU_IOAS_UNMAP, cmd, "IOMMU_IOAS_UNMAP");
  }
  bool destroy(std::uint32_t id) {
    iommu_destroy cmd{sizeof(cmd), id};
    return call(IOMMU_DESTROY, cmd, "IOMMU_DESTROY");
  }
  bool set_temp_memory_limit(std::uint32_t limit) {
    auto cmd = test_cmd(IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, 0);
    cmd.memory_limit.limit = limit;
    return call(IOMMU_TEST_CMD, cmd, "SET_TEMP_MEMORY_LIMIT");
  }
  bool mock_domain(std::uint32_t pt, std::uint32_t* stdev, std::uint32_t* hwpt = nullptr,
                   std::uint32_t* idev = nullptr) {
    auto cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, pt);
    if (!call(IOMMU_TEST_CMD, cmd, "MOCK_DOMAIN")) return false;
    *stdev = cmd.mock_domain.out_stdev_id;
    if (hwpt) *hwpt = cmd.mock_domain.out_hwpt_id;
    if (idev) *idev = cmd.mock_domain.out_idev_id;
    return true;
  }
  bool mock_domain_replace(std::uint32_t stdev, std::uint32_t pt) {
    auto cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, stdev);
    cmd.mock_domain_replace.pt_id = pt;
    return call(IOMMU_TEST_CMD, cmd, "MOCK_DOMAIN_REPLACE");
  }
  bool create_access(std::uint32_t ioas, std::uint32_t flags) {
    auto cmd = test_cmd(IOMMU_TEST_OP_CREATE_ACCESS, ioas);
    cmd.create_access.flags = flags;
    if (!call(IOMMU_TEST_CMD, cmd, "CREATE_ACCESS")) return false;
    access_fd_ = static_cast<int>(cmd.create_access.out_access_fd);
    return true;
  }
  // _test_cmd_destroy_access: the access descriptor is closed.
  void destroy_access() {
    if (access_fd_ < 0) return;
    EXPECT_EQ(ioas_iommufd_release_fd(access_fd_), 1);
    close(access_fd_);
    access_fd_ = -1;
  }
  bool access_rw(std::uint64_t iova, void* tmp, std::uint64_t len, std::uint32_t flags) {
    auto cmd = test_cmd(IOMMU_TEST_OP_ACCESS_RW, static_cast<std::uint32_t>(access_fd_));
    cmd.access_rw.iova = iova;
    cmd.access_rw.length = len;
    cmd.access_rw.uptr = reinterpret_cast<std::uint64_t>(tmp);
    cmd.access_rw.flags = flags;
    return call(IOMMU_TEST_CMD, cmd, "ACCESS_RW");
  }
  bool access_pages(std::uint64_t iova, std::uint64_t len, std::uint32_t* item) {
    auto cmd = test_cmd(IOMMU_TEST_OP_ACCESS_PAGES, static_cast<std::uint32_t>(access_fd_));
    cmd.access_pages.iova = iova;
    cmd.access_pages.length = len;
    cmd.access_pages.uptr = buffer_va();
    if (!call(IOMMU_TEST_CMD, cmd, "ACCESS_PAGES")) return false;
    *item = cmd.access_pages.out_access_pages_id;
    return true;
  }
  bool destroy_access_pages(std::uint32_t item) {
    auto cmd = test_cmd(IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, static_cast<std::uint32_t>(access_fd_));
    cmd.destroy_access_pages.access_pages_id = item;
    return call(IOMMU_TEST_CMD, cmd, "DESTROY_ACCESS_PAGES");
  }

  int fd() const { return fd_; }

 private:
  std::uint64_t nth_;
  int fd_ = -1;
  Engine* engine_ = nullptr;
  int access_fd_ = -1;
  bool armed_ = false;
  bool failed_ = false;
  std::uint64_t start_ = 0;
};

constexpr std::uint32_t kRw = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

// ---- the scenarios, in iommufd_fail_nth.c's order; true: ran to the end ----

bool basic(Attempt& r) {
  r.enable();
  std::uint32_t ioas = 0;
  if (!r.ioas_alloc(&ioas)) return false;
  iommu_iova_range ranges[10] = {};
  {
    iommu_ioas_iova_ranges cmd{};
    cmd.size = sizeof(cmd);
    cmd.num_iovas = 10;
    cmd.ioas_id = ioas;
    cmd.allowed_iovas = reinterpret_cast<std::uint64_t>(ranges);
    if (!r.call(IOMMU_IOAS_IOVA_RANGES, cmd, "IOMMU_IOAS_IOVA_RANGES")) return false;
  }
  {
    ranges[0].start = 16 * 1024;
    ranges[0].last = kBufferSize + 16 * 1024 * 600 - 1;
    iommu_ioas_allow_iovas cmd{};
    cmd.size = sizeof(cmd);
    cmd.ioas_id = ioas;
    cmd.num_iovas = 1;
    cmd.allowed_iovas = reinterpret_cast<std::uint64_t>(ranges);
    if (!r.call(IOMMU_IOAS_ALLOW_IOVAS, cmd, "IOMMU_IOAS_ALLOW_IOVAS")) return false;
  }
  std::uint64_t iova = 0;
  if (!r.map_rw(ioas, kBufferSize, &iova)) return false;
  {
    iommu_ioas_copy cmd{};
    cmd.size = sizeof(cmd);
    cmd.flags = kRw;
    cmd.dst_ioas_id = ioas;
    cmd.src_ioas_id = ioas;
    cmd.src_iova = iova;
    cmd.length = sizeof(ranges);
    if (!r.call(IOMMU_IOAS_COPY, cmd, "IOMMU_IOAS_COPY")) return false;
  }
  if (!r.unmap(ioas, iova, kBufferSize)) return false;
  // The selftest's failure path of no IOVA to unmap: its answer is ignored.
  iommu_ioas_unmap again{sizeof(again), ioas, iova, kBufferSize};
  (void)ioas_iommufd_ioctl(r.fd(), IOMMU_IOAS_UNMAP, &again);
  return true;
}

bool map_domain(Attempt& r) {
  std::uint32_t ioas = 0, stdev = 0, hwpt = 0;
  std::uint64_t iova = 0;
  if (!r.ioas_alloc(&ioas) || !r.set_temp_memory_limit(32)) return false;
  r.enable();
  return r.mock_domain(ioas, &stdev, &hwpt) && r.map_rw(ioas, 262144, &iova) && r.destroy(stdev) &&
         r.mock_domain(ioas, &stdev, &hwpt);
}

bool map_two_domains(Attempt& r) {
  std::uint32_t ioas = 0, stdev = 0, stdev2 = 0, hwpt = 0, hwpt2 = 0;
  std::uint64_t iova = 0;
  if (!r.ioas_alloc(&ioas) || !r.set_temp_memory_limit(32) || !r.mock_domain(ioas, &stdev, &hwpt)) return false;
  r.enable();
  return r.mock_domain(ioas, &stdev2, &hwpt2) && r.map_rw(ioas, 262144, &iova) && r.destroy(stdev) &&
         r.destroy(stdev2) && r.mock_domain(ioas, &stdev, &hwpt) && r.mock_domain(ioas, &stdev2, &hwpt2);
}

bool access_rw(Attempt& r) {
  std::uint32_t ioas = 0;
  std::uint64_t iova = 0;
  if (!r.ioas_alloc(&ioas) || !r.set_temp_memory_limit(32) || !r.map_rw(ioas, 262144, &iova)) return false;
  r.enable();
  if (!r.create_access(ioas, 0)) return false;
  std::uint16_t tmp[32] = {};
  for (std::uint32_t flags : {0u, std::uint32_t{MOCK_ACCESS_RW_WRITE}, std::uint32_t{MOCK_ACCESS_RW_SLOW_PATH},
                              std::uint32_t{MOCK_ACCESS_RW_SLOW_PATH | MOCK_ACCESS_RW_WRITE}})
    if (!r.access_rw(iova, tmp, sizeof(tmp), flags)) return false;
  std::vector<std::uint64_t> tmp_big(4096);
  if (!r.access_rw(iova, tmp_big.data(), tmp_big.size() * sizeof(std::uint64_t), MOCK_ACCESS_RW_SLOW_PATH))
    return false;
  r.destroy_access();
  return true;
}

// access_pin and access_pin_domain: pin the whole buffer through an access
// that needs pinned pages, with or without a domain in the IOAS.
bool access_pin_with(Attempt& r, bool domain) {
  std::uint32_t ioas = 0, stdev = 0, hwpt = 0, item = 0;
  std::uint64_t iova = 0;
  if (!r.ioas_alloc(&ioas) || !r.set_temp_memory_limit(32)) return false;
  if (domain && !r.mock_domain(ioas, &stdev, &hwpt)) return false;
  if (!r.map_rw(ioas, kBufferSize, &iova) || !r.create_access(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES))
    return false;
  r.enable();
  if (!r.access_pages(iova, kBufferSize, &item) || !r.destroy_access_pages(item)) return false;
  r.destroy_access();
  return !domain || r.destroy(stdev);
}
bool access_pin(Attempt& r) { return access_pin_with(r, false); }
bool access_pin_domain(Attempt& r) { return access_pin_with(r, true); }

bool device(Attempt& r) {
  std::uint32_t ioas = 0, ioas2 = 0, stdev = 0, idev = 0;
  std::uint64_t iova = MOCK_APERTURE_START;
  constexpr std::uint32_t kFixed = IOMMU_IOAS_MAP_FIXED_IOVA | kRw;
  if (!r.ioas_alloc(&ioas) || !r.ioas_alloc(&ioas2) || !r.map(ioas, buffer_va(), kPage, &iova, kFixed) ||
      !r.map(ioas2, buffer_va(), kPage, &iova, kFixed))
    return false;
  r.enable();
  if (!r.mock_domain(ioas, &stdev, nullptr, &idev)) return false;
  {
    iommu_test_hw_info info{};
    iommu_hw_info cmd{};
    cmd.size = sizeof(cmd);
    cmd.dev_id = idev;
    cmd.data_len = sizeof(info);
    cmd.data_uptr = reinterpret_cast<std::uint64_t>(&info);
    if (!r.call(IOMMU_GET_HW_INFO, cmd, "IOMMU_GET_HW_INFO")) return false;
  }
  iommu_hwpt_alloc alloc{};
  alloc.size = sizeof(alloc);
  alloc.dev_id = idev;
  alloc.pt_id = ioas;
  alloc.data_type = IOMMU_HWPT_DATA_NONE;
  if (!r.call(IOMMU_HWPT_ALLOC, alloc, "IOMMU_HWPT_ALLOC")) return false;
  return r.mock_domain_replace(stdev, ioas2) && r.mock_domain_replace(stdev, alloc.out_hwpt_id);
}

struct Scenario {
  const char* name;
  bool (*run)(Attempt&);
  std::uint64_t min_points;  // failure points there must be at least
  friend void PrintTo(const Scenario& s, std::ostream* os) { *os << s.name; }
};

const Scenario kScenarios[] = {
    {"basic", &basic, 1},
    {"map_domain", &map_domain, 1},
    {"map_two_domains", &map_two_domains, 1},
    {"access_rw", &access_rw, 0},  // nothing in it allocates in the engine (see the top)
    {"access_pin", &access_pin, 1},
    {"access_pin_domain", &access_pin_domain, 1},
    {"device", &device, 1},
};

class FailNth : public ::testing::TestWithParam<Scenario> {};

TEST_P(FailNth, EveryFailurePointAnswersEnomemChangesNothingAndCleansUp) {
  const Scenario& s = GetParam();
  {
    Attempt plain(0);
    ASSERT_TRUE(plain.ok());
    ASSERT_TRUE(s.run(plain)) << s.name << " does not run to the end without injection";
  }
  std::uint64_t n = 1;
  for (; n <= kMaxPoints; ++n) {
    SCOPED_TRACE(std::string(s.name) + " with allocation " + std::to_string(n) + " failing");
    Attempt r(n);
    ASSERT_TRUE(r.ok());
    const bool completed = s.run(r);
    if (::testing::Test::HasFailure()) return;
    if (completed && !r.triggered()) break;  // past the last allocation
    ASSERT_FALSE(completed) << "the injected failure left no trace: every call succeeded";
    ASSERT_TRUE(r.failed());
  }
  ASSERT_LE(n, kMaxPoints) << "more than " << kMaxPoints << " failure points";
  std::printf("FailNth %s: %llu failure points swept\n", s.name, static_cast<unsigned long long>(n - 1));
  EXPECT_GE(n - 1, s.min_points);
}

INSTANTIATE_TEST_SUITE_P(Selftest, FailNth, ::testing::ValuesIn(kScenarios),
                         [](const ::testing::TestParamInfo<Scenario>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace ioas::uapi
