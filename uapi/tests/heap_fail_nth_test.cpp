// The heap fail-nth sweep through the userspace iommufd layer: every heap
// allocation an ioctl makes (the layer's object table, its accesses, the
// engine's trees and tables) fails in turn (core/testing/heap_hook.hpp: the
// nth allocation and every later one fail).
//
// A world (a context on the impl engine with three IOASes, a reserved range,
// a mock domain, a huge-IOVA mock domain, a HWPT_ALLOC'd dirty-tracking HWPT
// with tracking on, maps, a copy, an access with pinned pages, and the VFIO
// compatibility IOAS with its container type set) is built afresh for each
// failure point. Each ioctl kind the layer serves is then run with the nth
// allocation failing, for n = 1, 2, ... until it runs without a heap failure
// or succeeds. A failed call must answer -1 with errno ENOMEM (or, when only
// its message could not be made, the errno it answers without a failure)
// and leave the context exactly as before: the layer's table (table_of),
// every IOAS's snapshot and ranges, the memories, every leaf of every
// domain, and the engine's invariants. A call that succeeds in spite of a
// refused allocation must have done what the same call does on a clean
// context (unused memory sources aside: their removal waits for a later
// call). Closing the context afterwards must work; leaks show under
// LeakSanitizer (the ASan build). The failure points of each ioctl and their
// total are printed. Kinds with a known gap (Case::known_gap) report SKIPPED
// naming it; IOAS_SWEEP_KNOWN_GAPS=1 sweeps them too. The maps' known gap
// (Case::unused_source_may_stay) is swept with unused sources left out.
#include <gtest/gtest.h>
#include <linux/vfio.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "context_state.hpp"
#include "heap_hook.hpp"
#include "ioas/iommufd.h"
#include "ioas/uapi/iommufd_test.h"

namespace ioas::uapi {
namespace {
using testing::test_cmd;

constexpr std::uint64_t kPage = 4096;
constexpr std::uint64_t kBufferSize = 64 * kPage;
constexpr std::uint64_t kMapIova = 0x1000000;       // the maps of ioas1 (and ioas2's copy source)
constexpr std::uint64_t kMapLen = 16 * kPage;
constexpr std::uint64_t kCopyIova = 0x2000000;      // ioas2: the copy of ioas1's map
constexpr std::uint64_t kDmaIova = 0x3000000;       // ioas1 (the compat IOAS): a MAP_DMA
constexpr std::uint64_t kReserved = 0x7000000;      // ioas1: a reserved page
constexpr std::uint64_t kFreeIova = 0x4000000;      // free in every IOAS
constexpr std::uint64_t kMaxPoints = 2000;
constexpr int kAnyAnswer = -1;
constexpr bool kUnusedSourceMayStay = true;

// The memory every map uses: shared anonymous, never released.
std::uint64_t buffer_va() {
  static void* b = mmap(nullptr, kBufferSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  return reinterpret_cast<std::uint64_t>(b);
}

// Everything the context shows: context_state plus every leaf of every
// domain.
std::string full_state(int fd) {
  std::string s = testing::context_state(fd);
  const Engine* e = testing::engine_of(fd);
  if (!e) return s;
  for (const auto& name : e->ioas_names()) {
    auto st = e->snapshot(name);
    if (!st.ok()) continue;
    for (const DomainInfo& d : st.value().domains) {
      auto leaves = e->leaves(d.name, Range{0, ~u64{0}});
      s += "leaves " + d.name + ":";
      if (!leaves.ok()) {
        s += " " + std::string(errno_name(leaves.code())) + "\n";
        continue;
      }
      for (const LeafInfo& l : leaves.value())
        s += " " + to_string(l.iova) + ">" + std::to_string(l.pa) + to_string(l.prot) + (l.dirty ? "D" : "") + "@" +
             std::to_string(l.uaddr);
      s += "\n";
    }
  }
  return s;
}

// The lines of `a` that `b` lacks and those of `b` that `a` lacks; "" when
// the texts are equal.
std::string line_diff(const std::string& a, const std::string& b) {
  auto lines = [](const std::string& t) {
    std::vector<std::string> v;
    std::string::size_type at = 0;
    while (at < t.size()) {
      auto end = t.find('\n', at);
      if (end == std::string::npos) end = t.size();
      v.push_back(t.substr(at, end - at));
      at = end + 1;
    }
    return v;
  };
  const auto la = lines(a), lb = lines(b);
  std::string s;
  for (const auto& l : la)
    if (std::find(lb.begin(), lb.end(), l) == lb.end()) s += "- " + l.substr(0, 300) + "\n";
  for (const auto& l : lb)
    if (std::find(la.begin(), la.end(), l) == la.end()) s += "+ " + l.substr(0, 300) + "\n";
  if (s.empty() && a != b) s = "(same lines, another order or count)\n";
  return s;
}

// The state without the lines of unused memory sources ("memory ... use 0").
std::string without_unused_sources(const std::string& state) {
  std::string out;
  std::string::size_type at = 0;
  while (at < state.size()) {
    auto end = state.find('\n', at);
    if (end == std::string::npos) end = state.size();
    const std::string line = state.substr(at, end - at);
    if (!(line.starts_with("memory ") && line.ends_with(" use 0"))) out += line + "\n";
    at = end + 1;
  }
  return out;
}

// The world every failure point starts from.
struct World {
  int fd = -1;
  std::uint32_t ioas1 = 0, ioas2 = 0, ioas3 = 0;
  std::uint32_t stdev1 = 0, hwpt1 = 0, idev1 = 0;  // mock domain on ioas1
  std::uint32_t stdev2 = 0, hwpt2 = 0, idev2 = 0;  // huge-IOVA mock domain on ioas2
  std::uint32_t dirty_hwpt = 0;                    // HWPT_ALLOC'd on ioas1, tracking on
  int access_fd = -1;                              // an access on ioas1 with pinned pages
  std::uint32_t pages_id = 0;

  // Every step of the setup must work: an ioctl that fails stops the test.
  template <typename T>
  void must(unsigned long request, T& cmd, const char* what) {
    ASSERT_EQ(ioas_iommufd_ioctl(fd, request, &cmd), 0) << what << ": " << ioas_iommufd_last_error();
  }
  void must_value(unsigned long request, unsigned long value, const char* what) {
    ASSERT_GE(ioas_iommufd_ioctl(fd, request, reinterpret_cast<void*>(value)), 0)
        << what << ": " << ioas_iommufd_last_error();
  }
  std::uint32_t ioas_alloc() {
    iommu_ioas_alloc cmd{sizeof(cmd), 0, 0};
    must(IOMMU_IOAS_ALLOC, cmd, "IOAS_ALLOC");
    return cmd.out_ioas_id;
  }
  void map(std::uint32_t ioas, std::uint64_t iova, std::uint64_t len) {
    iommu_ioas_map cmd{};
    cmd.size = sizeof(cmd);
    cmd.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
    cmd.ioas_id = ioas;
    cmd.user_va = buffer_va();
    cmd.length = len;
    cmd.iova = iova;
    must(IOMMU_IOAS_MAP, cmd, "IOAS_MAP");
  }
  void mock_domain(std::uint32_t ioas, std::uint32_t flags, std::uint32_t* stdev, std::uint32_t* hwpt,
                   std::uint32_t* idev) {
    auto cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, ioas);
    cmd.mock_domain_flags.dev_flags = flags;
    must(IOMMU_TEST_CMD, cmd, "MOCK_DOMAIN_FLAGS");
    *stdev = cmd.mock_domain_flags.out_stdev_id;
    *hwpt = cmd.mock_domain_flags.out_hwpt_id;
    *idev = cmd.mock_domain_flags.out_idev_id;
  }

  // set_iommu: the VFIO container type is set (VFIO_SET_IOMMU done).
  explicit World(bool set_iommu) {
    fd = ioas_iommufd_open_engine("impl");
    if (fd < 0) return;
    ioas1 = ioas_alloc();
    ioas2 = ioas_alloc();
    ioas3 = ioas_alloc();
    auto reserve = test_cmd(IOMMU_TEST_OP_ADD_RESERVED, ioas1);
    reserve.add_reserved.start = kReserved;
    reserve.add_reserved.length = kPage;
    must(IOMMU_TEST_CMD, reserve, "ADD_RESERVED");
    mock_domain(ioas1, 0, &stdev1, &hwpt1, &idev1);
    mock_domain(ioas2, MOCK_FLAGS_DEVICE_HUGE_IOVA, &stdev2, &hwpt2, &idev2);
    iommu_hwpt_alloc alloc{};
    alloc.size = sizeof(alloc);
    alloc.flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
    alloc.dev_id = idev1;
    alloc.pt_id = ioas1;
    must(IOMMU_HWPT_ALLOC, alloc, "HWPT_ALLOC");
    dirty_hwpt = alloc.out_hwpt_id;
    // The HWPT serves a device so that it holds the maps.
    auto replace = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, stdev1);
    replace.mock_domain_replace.pt_id = dirty_hwpt;
    must(IOMMU_TEST_CMD, replace, "MOCK_DOMAIN_REPLACE");
    iommu_hwpt_set_dirty_tracking track{sizeof(track), IOMMU_HWPT_DIRTY_TRACKING_ENABLE, dirty_hwpt, 0};
    must(IOMMU_HWPT_SET_DIRTY_TRACKING, track, "SET_DIRTY_TRACKING");
    map(ioas1, kMapIova, kMapLen);
    map(ioas2, kMapIova, kMapLen);
    iommu_ioas_copy copy{};
    copy.size = sizeof(copy);
    copy.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
    copy.dst_ioas_id = ioas2;
    copy.src_ioas_id = ioas1;
    copy.length = kMapLen;
    copy.dst_iova = kCopyIova;
    copy.src_iova = kMapIova;
    must(IOMMU_IOAS_COPY, copy, "IOAS_COPY");
    auto access = test_cmd(IOMMU_TEST_OP_CREATE_ACCESS, ioas1);
    access.create_access.flags = MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES;
    must(IOMMU_TEST_CMD, access, "CREATE_ACCESS");
    access_fd = static_cast<int>(access.create_access.out_access_fd);
    auto pin = test_cmd(IOMMU_TEST_OP_ACCESS_PAGES, static_cast<std::uint32_t>(access_fd));
    pin.access_pages.iova = kMapIova;
    pin.access_pages.length = 4 * kPage;
    pin.access_pages.uptr = buffer_va();
    must(IOMMU_TEST_CMD, pin, "ACCESS_PAGES");
    pages_id = pin.access_pages.out_access_pages_id;
    iommu_vfio_ioas compat{sizeof(compat), ioas1, IOMMU_VFIO_IOAS_SET, 0};
    must(IOMMU_VFIO_IOAS, compat, "VFIO_IOAS SET");
    if (set_iommu) {
      must_value(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU, "VFIO_SET_IOMMU");
      vfio_iommu_type1_dma_map dma{sizeof(dma), VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE, buffer_va(),
                                   kDmaIova, 4 * kPage};
      must(VFIO_IOMMU_MAP_DMA, dma, "VFIO_IOMMU_MAP_DMA");
    }
  }
  ~World() {
    if (access_fd >= 0) {
      EXPECT_EQ(ioas_iommufd_release_fd(access_fd), 1);
      close(access_fd);
    }
    if (fd >= 0) {
      EXPECT_EQ(ioas_iommufd_close(fd), 0) << "the context does not close";
    }
  }
};

// One ioctl kind: `run` makes exactly one ioctl through `call` (which opens
// the exhaustion around it) and returns its answer; an access descriptor it
// creates goes into *new_fd.
using Call = std::function<int(unsigned long request, void* arg)>;
struct Case {
  const char* name;
  bool set_iommu = true;  // the world's container type is set
  std::function<int(World&, const Call&, int* new_fd)> run;
  // Not "" for a kind whose failure points are known to change the context
  // (or answer other than ENOMEM) and are not fixed yet: what the sweep
  // found. The case reports SKIPPED with it.
  const char* known_gap = "";
  // The errno of the call in this world without a heap failure (0: it
  // succeeds; kAnyAnswer: whatever it is, e.g. RLIMIT_MODE's EPERM without
  // CAP_SYS_RESOURCE, EBUSY with it, objects existing).
  int answer = 0;
  // A known gap of a map (IOAS_MAP, MAP_DMA): its undo, the engine's
  // remove_memory, needs memory too, so a failed map can leave its memory
  // source registered and unused (invisible through the uAPI, released by a
  // later call). The sweep then compares states without unused sources.
  bool unused_source_may_stay = false;
};

// gtest names a case by its name.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

int call_cmd(const Call& call, unsigned long request, auto& cmd) { return call(request, &cmd); }

std::vector<Case> cases() {
  std::vector<Case> c;
  c.push_back({"IOAS_ALLOC", true, [](World&, const Call& call, int*) {
                 iommu_ioas_alloc cmd{sizeof(cmd), 0, 0};
                 return call_cmd(call, IOMMU_IOAS_ALLOC, cmd);
               }});
  c.push_back({"IOAS_MAP", true, [](World& w, const Call& call, int*) {
                 iommu_ioas_map cmd{};
                 cmd.size = sizeof(cmd);
                 cmd.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
                 cmd.ioas_id = w.ioas1;
                 cmd.user_va = buffer_va() + kMapLen;
                 cmd.length = kMapLen;
                 return call_cmd(call, IOMMU_IOAS_MAP, cmd);
               },
               "", 0, kUnusedSourceMayStay});
  c.push_back({"IOAS_COPY", true, [](World& w, const Call& call, int*) {
                 iommu_ioas_copy cmd{};
                 cmd.size = sizeof(cmd);
                 cmd.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
                 cmd.dst_ioas_id = w.ioas2;
                 cmd.src_ioas_id = w.ioas1;
                 cmd.length = kMapLen;
                 cmd.dst_iova = kFreeIova;
                 cmd.src_iova = kMapIova;
                 return call_cmd(call, IOMMU_IOAS_COPY, cmd);
               }});
  c.push_back({"IOAS_UNMAP", true, [](World& w, const Call& call, int*) {
                 iommu_ioas_unmap cmd{sizeof(cmd), w.ioas2, kCopyIova, kMapLen};
                 return call_cmd(call, IOMMU_IOAS_UNMAP, cmd);
               }});
  c.push_back({"IOAS_UNMAP all", true, [](World& w, const Call& call, int*) {
                 iommu_ioas_unmap cmd{sizeof(cmd), w.ioas2, 0, ~std::uint64_t{0}};
                 return call_cmd(call, IOMMU_IOAS_UNMAP, cmd);
               }});
  c.push_back({"IOAS_ALLOW_IOVAS", true, [](World& w, const Call& call, int*) {
                 iommu_iova_range ranges[2] = {{0x1000000, 0x1ffffff}, {0x4000000, 0x4ffffff}};
                 iommu_ioas_allow_iovas cmd{sizeof(cmd), w.ioas1, 2, 0, reinterpret_cast<std::uint64_t>(ranges)};
                 return call_cmd(call, IOMMU_IOAS_ALLOW_IOVAS, cmd);
               }});
  c.push_back({"IOAS_IOVA_RANGES", true, [](World& w, const Call& call, int*) {
                 iommu_iova_range ranges[8] = {};
                 iommu_ioas_iova_ranges cmd{};
                 cmd.size = sizeof(cmd);
                 cmd.ioas_id = w.ioas1;
                 cmd.num_iovas = 8;
                 cmd.allowed_iovas = reinterpret_cast<std::uint64_t>(ranges);
                 return call_cmd(call, IOMMU_IOAS_IOVA_RANGES, cmd);
               }});
  c.push_back({"OPTION HUGE_PAGES set", true, [](World& w, const Call& call, int*) {
                 iommu_option cmd{};
                 cmd.size = sizeof(cmd);
                 cmd.option_id = IOMMU_OPTION_HUGE_PAGES;
                 cmd.op = IOMMU_OPTION_OP_SET;
                 cmd.object_id = w.ioas3;
                 cmd.val64 = 0;
                 return call_cmd(call, IOMMU_OPTION, cmd);
               }});
  c.push_back({"OPTION RLIMIT_MODE set", true, [](World&, const Call& call, int*) {
                 iommu_option cmd{};
                 cmd.size = sizeof(cmd);
                 cmd.option_id = IOMMU_OPTION_RLIMIT_MODE;
                 cmd.op = IOMMU_OPTION_OP_SET;
                 cmd.val64 = 1;
                 return call_cmd(call, IOMMU_OPTION, cmd);
               },
               "", kAnyAnswer});
  c.push_back({"VFIO_IOAS set", true, [](World& w, const Call& call, int*) {
                 iommu_vfio_ioas cmd{sizeof(cmd), w.ioas2, IOMMU_VFIO_IOAS_SET, 0};
                 return call_cmd(call, IOMMU_VFIO_IOAS, cmd);
               }});
  c.push_back({"VFIO_IOAS clear", true, [](World&, const Call& call, int*) {
                 iommu_vfio_ioas cmd{sizeof(cmd), 0, IOMMU_VFIO_IOAS_CLEAR, 0};
                 return call_cmd(call, IOMMU_VFIO_IOAS, cmd);
               }});
  c.push_back({"HWPT_ALLOC dirty", true, [](World& w, const Call& call, int*) {
                 iommu_hwpt_alloc cmd{};
                 cmd.size = sizeof(cmd);
                 cmd.flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
                 cmd.dev_id = w.idev1;
                 cmd.pt_id = w.ioas1;
                 return call_cmd(call, IOMMU_HWPT_ALLOC, cmd);
               }});
  c.push_back({"HWPT_SET_DIRTY_TRACKING off", true, [](World& w, const Call& call, int*) {
                 iommu_hwpt_set_dirty_tracking cmd{sizeof(cmd), 0, w.dirty_hwpt, 0};
                 return call_cmd(call, IOMMU_HWPT_SET_DIRTY_TRACKING, cmd);
               }});
  c.push_back({"HWPT_GET_DIRTY_BITMAP", true, [](World& w, const Call& call, int*) {
                 std::uint64_t bitmap[1] = {};
                 iommu_hwpt_get_dirty_bitmap cmd{};
                 cmd.size = sizeof(cmd);
                 cmd.hwpt_id = w.dirty_hwpt;
                 cmd.iova = kMapIova;
                 cmd.length = kMapLen;
                 cmd.page_size = kPage;
                 cmd.data = reinterpret_cast<std::uint64_t>(bitmap);
                 return call_cmd(call, IOMMU_HWPT_GET_DIRTY_BITMAP, cmd);
               }});
  c.push_back({"TEST_OP_DIRTY", true, [](World& w, const Call& call, int*) {
                 std::uint64_t bitmap[1] = {0x5};
                 auto cmd = test_cmd(IOMMU_TEST_OP_DIRTY, w.dirty_hwpt);
                 cmd.dirty.iova = kMapIova;
                 cmd.dirty.length = kMapLen;
                 cmd.dirty.page_size = kPage;
                 cmd.dirty.uptr = reinterpret_cast<std::uint64_t>(bitmap);
                 return call_cmd(call, IOMMU_TEST_CMD, cmd);
               }});
  c.push_back({"TEST_OP_MOCK_DOMAIN", true, [](World& w, const Call& call, int*) {
                 auto cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, w.ioas1);
                 return call_cmd(call, IOMMU_TEST_CMD, cmd);
               }});
  c.push_back({"TEST_OP_MOCK_DOMAIN huge", true, [](World& w, const Call& call, int*) {
                 auto cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, w.ioas1);
                 cmd.mock_domain_flags.dev_flags = MOCK_FLAGS_DEVICE_HUGE_IOVA;
                 return call_cmd(call, IOMMU_TEST_CMD, cmd);
               }});
  c.push_back({"TEST_OP_MOCK_DOMAIN_REPLACE ioas", true, [](World& w, const Call& call, int*) {
                 auto cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, w.stdev2);
                 cmd.mock_domain_replace.pt_id = w.ioas1;
                 return call_cmd(call, IOMMU_TEST_CMD, cmd);
               },
               "the old domain is detached before the new attach; re-attaching it after a failed attach needs memory"});
  c.push_back({"TEST_OP_MOCK_DOMAIN_REPLACE hwpt", true, [](World& w, const Call& call, int*) {
                 auto cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, w.stdev1);
                 cmd.mock_domain_replace.pt_id = w.hwpt2;
                 return call_cmd(call, IOMMU_TEST_CMD, cmd);
               },
               "the old domain is detached before the new attach; re-attaching it after a failed attach needs memory"});
  c.push_back({"TEST_OP_ADD_RESERVED", true, [](World& w, const Call& call, int*) {
                 auto cmd = test_cmd(IOMMU_TEST_OP_ADD_RESERVED, w.ioas2);
                 cmd.add_reserved.start = kFreeIova;
                 cmd.add_reserved.length = kPage;
                 return call_cmd(call, IOMMU_TEST_CMD, cmd);
               }});
  c.push_back({"TEST_OP_CREATE_ACCESS", true, [](World& w, const Call& call, int* new_fd) {
                 auto cmd = test_cmd(IOMMU_TEST_OP_CREATE_ACCESS, w.ioas2);
                 int rc = call_cmd(call, IOMMU_TEST_CMD, cmd);
                 if (rc == 0) *new_fd = static_cast<int>(cmd.create_access.out_access_fd);
                 return rc;
               }});
  c.push_back({"TEST_OP_ACCESS_PAGES", true, [](World& w, const Call& call, int*) {
                 auto cmd = test_cmd(IOMMU_TEST_OP_ACCESS_PAGES, static_cast<std::uint32_t>(w.access_fd));
                 cmd.access_pages.iova = kMapIova + 4 * kPage;
                 cmd.access_pages.length = 2 * kPage;
                 cmd.access_pages.uptr = buffer_va() + 4 * kPage;
                 return call_cmd(call, IOMMU_TEST_CMD, cmd);
               }});
  c.push_back({"TEST_OP_DESTROY_ACCESS_PAGES", true, [](World& w, const Call& call, int*) {
                 auto cmd = test_cmd(IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, static_cast<std::uint32_t>(w.access_fd));
                 cmd.destroy_access_pages.access_pages_id = w.pages_id;
                 return call_cmd(call, IOMMU_TEST_CMD, cmd);
               }});
  c.push_back({"TEST_OP_ACCESS_RW", true, [](World& w, const Call& call, int*) {
                 unsigned char tmp[64] = {};
                 auto cmd = test_cmd(IOMMU_TEST_OP_ACCESS_RW, static_cast<std::uint32_t>(w.access_fd));
                 cmd.access_rw.iova = kMapIova + kPage - 16;
                 cmd.access_rw.length = sizeof tmp;
                 cmd.access_rw.uptr = reinterpret_cast<std::uint64_t>(tmp);
                 return call_cmd(call, IOMMU_TEST_CMD, cmd);
               }});
  c.push_back({"DESTROY ioas", true, [](World& w, const Call& call, int*) {
                 iommu_destroy cmd{sizeof(cmd), w.ioas3};
                 return call_cmd(call, IOMMU_DESTROY, cmd);
               }});
  c.push_back({"DESTROY device", true, [](World& w, const Call& call, int*) {
                 iommu_destroy cmd{sizeof(cmd), w.stdev2};
                 return call_cmd(call, IOMMU_DESTROY, cmd);
               }});
  c.push_back({"VFIO_SET_IOMMU", false, [](World&, const Call& call, int*) {
                 return call(VFIO_SET_IOMMU, reinterpret_cast<void*>(VFIO_TYPE1v2_IOMMU));
               }});
  c.push_back({"VFIO_IOMMU_GET_INFO", true, [](World&, const Call& call, int*) {
                 unsigned char buf[512] = {};
                 auto* info = reinterpret_cast<vfio_iommu_type1_info*>(buf);
                 info->argsz = sizeof buf;
                 return call(VFIO_IOMMU_GET_INFO, info);
               }});
  c.push_back({"VFIO_IOMMU_MAP_DMA", true, [](World&, const Call& call, int*) {
                 vfio_iommu_type1_dma_map cmd{sizeof(cmd), VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE,
                                              buffer_va() + kMapLen, kFreeIova, 8 * kPage};
                 return call_cmd(call, VFIO_IOMMU_MAP_DMA, cmd);
               },
               "", 0, kUnusedSourceMayStay});
  c.push_back({"VFIO_IOMMU_UNMAP_DMA", true, [](World&, const Call& call, int*) {
                 vfio_iommu_type1_dma_unmap cmd{};
                 cmd.argsz = sizeof(cmd);
                 cmd.iova = kDmaIova;
                 cmd.size = 4 * kPage;
                 return call_cmd(call, VFIO_IOMMU_UNMAP_DMA, cmd);
               }});
  return c;
}

class UapiHeapFailNth : public ::testing::TestWithParam<Case> {
 protected:
  static void TearDownTestSuite() {
    std::printf("[ heap fail-nth ] total %llu failure points\n", static_cast<unsigned long long>(total_points));
  }
  static inline std::uint64_t total_points = 0;
};

TEST_P(UapiHeapFailNth, EveryFailurePointAnswersEnomemAndChangesNothing) {
  const Case& c = GetParam();
  // IOAS_SWEEP_KNOWN_GAPS=1 sweeps the known gaps too (and fails on them).
  if (*c.known_gap && !std::getenv("IOAS_SWEEP_KNOWN_GAPS"))
    GTEST_SKIP() << c.name << ": known gap, not swept: " << c.known_gap;
  std::uint64_t points = 0;
  bool done = false;      // the call ran without a heap failure
  bool absorbed = false;  // or succeeded with one (a deferred cleanup: unused memory sources)
  int answer = 0;        // its errno then (0: it succeeded)
  std::vector<std::pair<std::uint64_t, int>> other_errnos;  // failure points answering other than ENOMEM
  for (std::uint64_t n = 1; n <= kMaxPoints && !done; ++n) {
    World w(c.set_iommu);
    ASSERT_GE(w.fd, 0) << ioas_iommufd_last_error();
    if (HasFatalFailure()) return;
    const std::string before = full_state(w.fd);
    bool refused_any = false;
    int err = 0, new_fd = -1;
    const Call call = [&](unsigned long request, void* arg) {
      int rc;
      {
        ::ioas::testing::HeapExhaustion scope(n);
        errno = 0;
        rc = ioas_iommufd_ioctl(w.fd, request, arg);
        err = errno;
        refused_any = scope.failed();
      }
      return rc;
    };
    const int rc = c.run(w, call, &new_fd);
    if (new_fd >= 0) {
      EXPECT_EQ(ioas_iommufd_release_fd(new_fd), 1);
      close(new_fd);
    }
    // A call that succeeds is done; so is one that ran without a heap
    // failure (its answer, an errno for the calls refused in this world,
    // is the call's own).
    if (rc >= 0 || !refused_any) {
      done = true;
      absorbed = refused_any;
      if (absorbed) {
        // It must have done what it does without the failure, but for
        // unused memory sources whose removal waits for a later call.
        const std::string after = without_unused_sources(full_state(w.fd));
        World clean(c.set_iommu);
        int clean_fd = -1;
        const Call plain = [&](unsigned long request, void* arg) { return ioas_iommufd_ioctl(clean.fd, request, arg); };
        EXPECT_EQ(c.run(clean, plain, &clean_fd), rc) << c.name << " n=" << n;
        if (clean_fd >= 0) {
          EXPECT_EQ(ioas_iommufd_release_fd(clean_fd), 1);
          close(clean_fd);
        }
        EXPECT_EQ(line_diff(without_unused_sources(full_state(clean.fd)), after), "")
            << c.name << " n=" << n << ": absorbing a heap failure changed what the call did (- clean, + absorbed)";
      }
      answer = rc >= 0 ? 0 : err;
      continue;
    }
    ++points;
    EXPECT_EQ(rc, -1) << c.name << " n=" << n;
    // The refusal's own errno may come through when only its message could
    // not be made; checked against the un-exhausted answer below.
    if (err != ENOMEM) other_errnos.emplace_back(n, err);
    if (c.unused_source_may_stay)
      EXPECT_EQ(line_diff(without_unused_sources(before), without_unused_sources(full_state(w.fd))), "")
          << c.name << " n=" << n << ": the refused call changed the context (- before, + after)";
    else
      EXPECT_EQ(line_diff(before, full_state(w.fd)), "")
          << c.name << " n=" << n << ": the refused call changed the context (- before, + after)";
    const Engine* e = testing::engine_of(w.fd);
    ASSERT_NE(e, nullptr);
    EXPECT_TRUE(e->check().empty()) << c.name << " n=" << n << ": an engine invariant is broken";
    if (HasFailure()) break;
  }
  for (const auto& [n, e] : other_errnos)
    EXPECT_EQ(e, answer) << c.name << " n=" << n << ": answered neither ENOMEM nor the call's own errno";
  if (c.answer != kAnyAnswer) {
    EXPECT_EQ(answer, c.answer) << c.name << ": the call's answer without a heap failure";
  }
  if (!HasFailure()) {
    EXPECT_TRUE(done) << c.name << ": still failing after " << kMaxPoints << " failure points";
  }
  std::printf("[ heap fail-nth ] %-36s %4llu failure points%s\n", c.name, static_cast<unsigned long long>(points),
              absorbed ? " (then succeeded with a refused allocation absorbed)" : "");
  std::fflush(stdout);
  RecordProperty("failure_points", static_cast<int>(points));
  total_points += points;
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string s;
  for (const char* p = info.param.name; *p; ++p) s += std::isalnum(static_cast<unsigned char>(*p)) ? *p : '_';
  return s;
}

INSTANTIATE_TEST_SUITE_P(Ioctls, UapiHeapFailNth, ::testing::ValuesIn(cases()), case_name);

}  // namespace
}  // namespace ioas::uapi
