// The C API (include/ioas/ioas.h): errors as negative errnos with messages,
// output parameters, the kernel-style -EMSGSIZE of ioas_ranges, NULL
// arguments refused, and the same answers from the engine and the spec.
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "ioas/ioas.h"

namespace {

struct Engine {
  explicit Engine(bool model = false) : e(model ? ioas_engine_new_model() : ioas_engine_new()) {}
  ~Engine() { ioas_engine_free(e); }
  ioas_engine* e;
};

constexpr uint64_t kVa = 0x7f0000000000ull;

void setup(ioas_engine* e) {
  ASSERT_EQ(ioas_create(e, "vm0", 0), 0);
  ASSERT_EQ(ioas_mem_register(e, "ram", kVa, 16ull << 20, kVa, 1), 0);
}

// The attach arguments of device "nic" into domain "d0", the MSI window
// reserved.
struct NicAttach {
  ioas_resv_region msi = {{0xfee00000ull, 0xfeefffffull}, IOAS_RESV_MSI};
  ioas_attach_args a{};
  NicAttach() {
    a.dev = "nic";
    a.dom = "d0";
    a.resv = &msi;
    a.num_resv = 1;
  }
  NicAttach(const NicAttach&) = delete;
  NicAttach& operator=(const NicAttach&) = delete;
};

TEST(CApi, ErrorsAreNegativeErrnosWithAMessage) {
  Engine x;
  EXPECT_EQ(ioas_create(x.e, "vm0", 0), 0);
  EXPECT_STREQ(ioas_last_error(x.e), "");
  EXPECT_EQ(ioas_create(x.e, "vm0", 0), -EEXIST);
  EXPECT_NE(std::string(ioas_last_error(x.e)).find("vm0"), std::string::npos) << ioas_last_error(x.e);
  EXPECT_STREQ(ioas_errno_name(-EADDRINUSE), "EADDRINUSE");
  EXPECT_STREQ(ioas_errno_name(EINVAL), "EINVAL");
}

TEST(CApi, UnknownCreateFlagsAreEINVAL) {
  Engine x;
  EXPECT_EQ(ioas_create(x.e, "vm0", 0x80), -EINVAL);
  EXPECT_EQ(ioas_create(x.e, "vm0", IOAS_CREATE_ZERO_PAGE_ALLOWED | IOAS_CREATE_NO_HUGE_PAGES), 0);
  size_t n = 0;
  uint64_t align = 0;
  ioas_range r[2];
  ASSERT_EQ(ioas_ranges(x.e, "vm0", r, 2, &n, &align), 0);
  EXPECT_EQ(n, 1u);
  EXPECT_EQ(r[0].start, 0u) << "zero-page allowed: nothing reserved";
  EXPECT_EQ(align, 4096u) << "huge pages off: alignment PAGE";
}

TEST(CApi, NullArgumentsAreEINVALNotACrash) {
  Engine x;
  setup(x.e);
  EXPECT_EQ(ioas_create(x.e, nullptr, 0), -EINVAL);
  EXPECT_EQ(ioas_map(x.e, "vm0", "ram", 0, 4096, IOAS_PROT_READ, 0, nullptr), -EINVAL);
  EXPECT_EQ(ioas_ranges(x.e, "vm0", nullptr, 4, nullptr, nullptr), -EINVAL);
  EXPECT_EQ(ioas_attach(x.e, "vm0", nullptr), -EINVAL);
  EXPECT_EQ(ioas_create(nullptr, "x", 0), -EINVAL);
  EXPECT_NE(std::strlen(ioas_last_error(x.e)), 0u);
}

TEST(CApi, AutomaticAndFixedMapsWriteTheIova) {
  Engine x;
  setup(x.e);
  uint64_t iova = 0;
  ASSERT_EQ(ioas_map(x.e, "vm0", "ram", 0, 8192, IOAS_PROT_READ | IOAS_PROT_WRITE, 0, &iova), 0);
  EXPECT_EQ(iova, 0x2000u) << "8K wants 8K alignment; the first hole starts at PAGE";
  uint64_t fixed = 0x100000;
  ASSERT_EQ(ioas_map(x.e, "vm0", "ram", 0x4000, 4096, IOAS_PROT_READ, 1, &fixed), 0);
  EXPECT_EQ(fixed, 0x100000u);
  EXPECT_EQ(ioas_map(x.e, "vm0", "ram", 0, 4096, IOAS_PROT_WRITE, 1, &fixed), -EINVAL) << "write-only";
  uint64_t unmapped = 0;
  ASSERT_EQ(ioas_unmap(x.e, "vm0", 0, UINT64_MAX, &unmapped), 0);
  EXPECT_EQ(unmapped, 0x3000u);
}

// A page-size bitmap given at attach is the new domain's own: a later device
// naming another bitmap for it is refused, one naming the same joins.
TEST(CApi, AttachGivesANewDomainTheBitmapItNames) {
  Engine x;
  setup(x.e);
  NicAttach nic;
  nic.a.has_pgsize_bitmap = 1;
  nic.a.pgsize_bitmap = 0x1000 | 0x200000;  // 4K|2M: no 1G
  ASSERT_EQ(ioas_attach(x.e, "vm0", &nic.a), 0) << ioas_last_error(x.e);
  NicAttach second;
  second.a.dev = "nic2";
  second.a.has_pgsize_bitmap = 1;
  second.a.pgsize_bitmap = 0x1000 | 0x200000 | 0x40000000;  // the format's default
  EXPECT_EQ(ioas_attach(x.e, "vm0", &second.a), -EINVAL) << "d0 has 4K|2M";
  second.a.pgsize_bitmap = 0x1000 | 0x200000;
  EXPECT_EQ(ioas_attach(x.e, "vm0", &second.a), 0) << ioas_last_error(x.e);
}

TEST(CApi, RangesReportsEMSGSIZEAndTheCountWhenTheBufferIsShort) {
  Engine x;
  setup(x.e);
  NicAttach nic;
  ioas_attach_args& a = nic.a;
  ASSERT_EQ(ioas_attach(x.e, "vm0", &a), 0);
  ioas_range r[1];
  size_t n = 0;
  EXPECT_EQ(ioas_ranges(x.e, "vm0", r, 1, &n, nullptr), -EMSGSIZE);
  EXPECT_EQ(n, 2u);
  EXPECT_EQ(r[0].start, 0x1000u) << "the first entry is filled";
  EXPECT_EQ(r[0].last, 0xfedfffffu);
  EXPECT_EQ(ioas_ranges(x.e, "vm0", nullptr, 0, &n, nullptr), -EMSGSIZE);
  EXPECT_EQ(n, 2u);
}

// ioas_ranges with room for fewer, exactly as many and more ranges than
// exist (k reserved MiBs, so k + 1 ranges after the reserved page 0), on
// both engines: the first min(cap, n) entries are the ranges, nothing at or
// past that index is written (a guard pattern lies after them, and a
// second call gets an exact-size heap buffer that an ASan build watches),
// *n is the count, and the answer is -EMSGSIZE exactly when cap < n. Each
// relation of cap to n is reached; the tag counts are printed.
TEST(CApi, RangesFillsWhatFitsAndWritesNothingMore) {
  rc::detail::TestParams params;
  params.seed = 11;
  params.maxSuccess = 300;
  params.maxSize = 100;
  auto prop = rc::detail::toProperty([] {
    const auto k = *rc::gen::inRange<std::size_t>(0, 6);
    const auto cap = *rc::gen::inRange<std::size_t>(0, k + 5);
    Engine x(*rc::gen::arbitrary<bool>());
    RC_ASSERT(ioas_create(x.e, "vm0", 0) == 0);
    std::vector<ioas_range> want{{0x1000, 0}};
    for (uint64_t i = 0; i < k; ++i) {
      const ioas_range r{(2 * i + 1) << 20, ((2 * i + 2) << 20) - 1};
      RC_ASSERT(ioas_reserve(x.e, "vm0", r, "fw") == 0);
      want.back().last = r.start - 1;
      want.push_back(ioas_range{r.last + 1, 0});
    }
    want.back().last = ~uint64_t{0};
    const std::size_t n_want = want.size();
    RC_TAG(cap < n_want ? "cap < n" : cap == n_want ? "cap == n" : "cap > n");
    constexpr std::size_t kGuard = 3;
    constexpr ioas_range kUntouched{0xdead, 0xbeef};
    std::vector<ioas_range> buf(cap + kGuard, kUntouched);
    size_t n = 0;
    const int rc = ioas_ranges(x.e, "vm0", buf.data(), cap, &n, nullptr);
    RC_ASSERT(n == n_want);
    RC_ASSERT(rc == (cap < n_want ? -EMSGSIZE : 0));
    const std::size_t filled = std::min(cap, n_want);
    for (std::size_t i = 0; i < filled; ++i) RC_ASSERT(buf[i].start == want[i].start && buf[i].last == want[i].last);
    for (std::size_t i = filled; i < buf.size(); ++i)
      RC_ASSERT(buf[i].start == kUntouched.start && buf[i].last == kUntouched.last);
    auto exact = std::make_unique<ioas_range[]>(cap);
    RC_ASSERT(ioas_ranges(x.e, "vm0", exact.get(), cap, &n, nullptr) == rc);
  });
  rc::detail::TestMetadata meta;
  meta.id = "capi-ranges";
  meta.description = "ioas_ranges with every relation of cap to n";
  const auto result = rc::detail::checkProperty(prop, meta, params);
  rc::detail::SuccessResult success;
  ASSERT_TRUE(result.match(success)) << [&] {
    std::ostringstream os;
    rc::detail::printResultMessage(result, os);
    return os.str();
  }();
  std::map<std::string, int> tags;
  for (const auto& [t, count] : success.distribution)  // RC_TAG shows a string with its quotes
    if (!t.empty()) tags[t.front().substr(1, t.front().size() - 2)] += count;
  for (const auto& [t, count] : tags) std::printf("%-10s %d\n", t.c_str(), count);
  for (const char* t : {"cap < n", "cap == n", "cap > n"}) EXPECT_GT(tags[t], 0) << t << " never generated";
}

TEST(CApi, AttachValidatesEnumsAndReportsConflicts) {
  Engine x;
  setup(x.e);
  uint64_t iova = 0xfee00000;
  ASSERT_EQ(ioas_map(x.e, "vm0", "ram", 0, 4096, IOAS_PROT_READ, 1, &iova), 0);
  NicAttach nic;
  ioas_attach_args& a = nic.a;
  EXPECT_EQ(ioas_attach(x.e, "vm0", &a), -EADDRINUSE);
  EXPECT_NE(std::string(ioas_last_error(x.e)).find("0xfee00000"), std::string::npos) << ioas_last_error(x.e);
  a.num_resv = 0;
  a.has_fmt = 1;
  a.fmt = 9;
  EXPECT_EQ(ioas_attach(x.e, "vm0", &a), -EINVAL);
  a.has_fmt = 0;
  ioas_resv_region odd = {{0x10000, 0x1ffff}, 7};
  a.resv = &odd;
  a.num_resv = 1;
  EXPECT_EQ(ioas_attach(x.e, "vm0", &a), -EINVAL) << "unknown reserved-region type";
  a.num_resv = 0;
  a.has_fmt = 1;
  a.fmt = IOAS_FMT_TCE;
  a.has_aperture = 1;
  a.aperture = {0, 0xffffffffull};
  ASSERT_EQ(ioas_attach(x.e, "vm0", &a), 0);
  EXPECT_EQ(ioas_detach(x.e, "nic"), 0);
  EXPECT_EQ(ioas_detach(x.e, "nic"), -ENOENT);
}

TEST(CApi, TranslateFaultIsEFAULT) {
  Engine x;
  setup(x.e);
  ioas_attach_args a{};
  a.dev = "nic";
  a.dom = "d0";
  ASSERT_EQ(ioas_attach(x.e, "vm0", &a), 0);
  uint64_t iova = 0x200000;
  ASSERT_EQ(ioas_map(x.e, "vm0", "ram", 0x200000, 0x200000, IOAS_PROT_READ, 1, &iova), 0);
  uint64_t pa = 0;
  int prot = 0;
  ASSERT_EQ(ioas_translate(x.e, "d0", 0x200042, &pa, &prot), 0);
  EXPECT_EQ(pa, kVa + 0x200042);
  EXPECT_EQ(prot, IOAS_PROT_READ);
  EXPECT_EQ(ioas_translate(x.e, "d0", 0x400000, &pa, &prot), -EFAULT);
  EXPECT_EQ(ioas_translate(x.e, "nope", 0x200000, &pa, &prot), -ENOENT);
}

TEST(CApi, PinsBlockUnmapWhenTheyDoNotRelease) {
  Engine x;
  setup(x.e);
  uint64_t iova = 0x10000;
  ASSERT_EQ(ioas_map(x.e, "vm0", "ram", 0, 0x4000, IOAS_PROT_READ | IOAS_PROT_WRITE, 1, &iova), 0);
  uint32_t id = 0;
  ASSERT_EQ(ioas_pin(x.e, "vm0", 0x10000, 0x1000, 1, 0, &id), 0);
  EXPECT_EQ(id, 1u);
  uint64_t unmapped = 0;
  EXPECT_EQ(ioas_unmap(x.e, "vm0", 0x10000, 0x4000, &unmapped), -EBUSY);
  EXPECT_EQ(ioas_mem_unregister(x.e, "ram"), -EBUSY);
  ASSERT_EQ(ioas_unpin(x.e, "vm0", id), 0);
  EXPECT_EQ(ioas_unmap(x.e, "vm0", 0x10000, 0x4000, &unmapped), 0);
  EXPECT_EQ(ioas_mem_unregister(x.e, "ram"), 0);
}

TEST(CApi, CopyCutReserveAllowWorkThroughC) {
  Engine x;
  setup(x.e);
  ASSERT_EQ(ioas_create(x.e, "vm1", 0), 0);
  uint64_t iova = 0x10000;
  ASSERT_EQ(ioas_map(x.e, "vm0", "ram", 0, 0x4000, IOAS_PROT_READ, 1, &iova), 0);
  ASSERT_EQ(ioas_cut(x.e, "vm0", 0x11fff), 0);
  uint64_t dst = 0;
  ASSERT_EQ(ioas_copy(x.e, "vm1", "vm0", 0x10000, 0x4000, IOAS_PROT_READ, 0, &dst), 0);
  EXPECT_EQ(dst, 0x4000u) << "16K wants 16K alignment (uaddr's low bit is higher)";
  EXPECT_EQ(ioas_reserve(x.e, "vm1", ioas_range{0x100000, 0x1fffff}, "fw"), 0);
  ioas_range allowed{0x100000, 0x1fffff};
  EXPECT_EQ(ioas_allow(x.e, "vm1", &allowed, 1), -EADDRINUSE);
  EXPECT_EQ(ioas_unreserve(x.e, "vm1", "fw"), 0);
  EXPECT_EQ(ioas_allow(x.e, "vm1", &allowed, 1), 0);
  EXPECT_EQ(ioas_allow(x.e, "vm1", nullptr, 0), 0);
}

TEST(CApi, TheSpecAndTheEngineAnswerAlikeThroughC) {
  Engine impl, model(true);
  for (ioas_engine* e : {impl.e, model.e}) setup(e);
  uint64_t a = 0, b = 0;
  ASSERT_EQ(ioas_map(impl.e, "vm0", "ram", 0x1000, 0x3000, IOAS_PROT_READ, 0, &a), 0);
  ASSERT_EQ(ioas_map(model.e, "vm0", "ram", 0x1000, 0x3000, IOAS_PROT_READ, 0, &b), 0);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, 0x1000u) << "uaddr 0x...1000 lowers the wanted alignment to 4K";
}

}  // namespace
