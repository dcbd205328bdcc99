// The kernel engine over ioas's userspace iommufd (no /dev/iommu here): each
// engine operation becomes the ioctls the header says, and what the uAPI
// cannot express is refused with kNotExpressible before anything changes.
// The guest runs the same engine on Linux's iommufd (the kernel campaign).
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>

#include "ioas/kernel_engine.hpp"
#include "ioas/rules.hpp"

namespace ioas {
namespace {

constexpr u64 kVa = 0x7f1000000000;  // free in a test process (above ASan's shadow too)

IoasOptions kernel_mode(bool huge = true) {
  IoasOptions o;
  o.mode = IoasMode::kKernel;
  o.huge_pages = huge;
  return o;
}

std::unique_ptr<Engine> engine() {
  auto port = open_userspace_iommufd("impl");
  EXPECT_TRUE(port.ok());
  auto e = make_kernel_engine(std::move(port).value());
  EXPECT_TRUE(e.ok()) << (e.ok() ? "" : e.error().message);
  auto out = std::move(e).value();
  EXPECT_TRUE(out->create_ioas("a", kernel_mode()).ok());
  return out;
}

TEST(KernelEngine, DefaultModeIsNotExpressible) {
  auto e = engine();
  auto s = e->create_ioas("b", IoasOptions{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), kNotExpressible);
  EXPECT_NE(s.error().message.find("mode=kernel"), std::string::npos) << s.error().message;
  EXPECT_EQ(e->ioas_names(), std::vector<std::string>{"a"});
  EXPECT_EQ(e->create_ioas("a", kernel_mode()).code(), EEXIST);
}

TEST(KernelEngine, MemoryIsARealBufferAtItsVa) {
  auto e = engine();
  ASSERT_TRUE(e->add_memory({"m", kVa, 0x4000, kVa, true}).ok());
  std::memset(reinterpret_cast<void*>(kVa), 0x5a, 0x4000);  // faults if it is not there
  // A second source over the same pages shares them; the pages stay while one uses them.
  ASSERT_TRUE(e->add_memory({"n", kVa + 0x1000, 0x1000, kVa + 0x1000, true}).ok());
  ASSERT_TRUE(e->remove_memory("m").ok());
  EXPECT_EQ(*reinterpret_cast<volatile unsigned char*>(kVa + 0x1000), 0x5a);
  ASSERT_TRUE(e->remove_memory("n").ok());
  // Gone: the address can be taken again by anyone.
  void* p = mmap(reinterpret_cast<void*>(kVa), 0x1000, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  EXPECT_EQ(p, reinterpret_cast<void*>(kVa));
  // Taken: refused with kAddressUnavailable, naming the page.
  auto s = e->add_memory({"m", kVa, 0x2000, kVa, true});
  EXPECT_EQ(s.code(), kAddressUnavailable);
  EXPECT_EQ(e->memories().size(), 0u);
  munmap(p, 0x1000);
}

TEST(KernelEngine, MemoryThatIsNotPlainUserMemoryIsNotExpressible) {
  auto e = engine();
  EXPECT_EQ(e->add_memory({"m", kVa, 0x1000, 0x80000000, true}).code(), kNotExpressible);
  EXPECT_EQ(e->add_memory({"m", kVa, 0x1000, kVa, false}).code(), kNotExpressible);
  EXPECT_EQ(e->add_memory({"m", kVa, 0, kVa, true}).code(), EINVAL);
  EXPECT_TRUE(e->memories().empty());
}

TEST(KernelEngine, MapUnmapAndRangesAreTheIommufdAnswers) {
  auto e = engine();
  ASSERT_TRUE(e->add_memory({"m", kVa, 0x400000, kVa, true}).ok());
  auto fixed = e->map("a", {0x10000, 0x2000, "m", 0, Prot::kReadWrite});
  ASSERT_TRUE(fixed.ok());
  EXPECT_EQ(*fixed, 0x10000u);
  EXPECT_EQ(e->map("a", {0x11000, 0x1000, "m", 0, Prot::kRead}).code(), EEXIST);
  auto automatic = e->map("a", {std::nullopt, 0x1000, "m", 0x3000, Prot::kRead});
  ASSERT_TRUE(automatic.ok());
  EXPECT_NE(*automatic, 0u);
  auto s = e->snapshot("a");
  ASSERT_TRUE(s.ok());
  ASSERT_EQ(s->areas.size(), 2u);
  EXPECT_EQ(e->memories().at(0).use_count, 2u);
  EXPECT_EQ(e->remove_memory("m").code(), EBUSY);
  // Areas go whole: a partial unmap is the kernel's ENOENT, and changes nothing.
  EXPECT_EQ(e->unmap("a", 0x10000, 0x1000).code(), ENOENT);
  EXPECT_EQ(e->snapshot("a")->areas.size(), 2u);
  auto un = e->unmap("a", 0x10000, 0x2000);
  ASSERT_TRUE(un.ok());
  EXPECT_EQ(*un, 0x2000u);
  auto all = e->unmap_all("a");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, 0x1000u);
  EXPECT_TRUE(e->snapshot("a")->areas.empty());
  auto r = e->ranges("a");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->ranges, std::vector<Range>{Range::all()});
  // A map past the end of its source cannot be said to the kernel.
  EXPECT_EQ(e->map("a", {0x10000, 0x2000, "m", 0x3ff000, Prot::kRead}).code(), kNotExpressible);
}

TEST(KernelEngine, ReserveAttachAndPinsUseTheSelftestCommands) {
  auto e = engine();
  ASSERT_TRUE(e->add_memory({"m", kVa, 0x400000, kVa, true}).ok());
  ASSERT_TRUE(e->reserve("a", {0x20000, 0x2ffff}, "u0").ok());
  EXPECT_EQ(e->map("a", {0x20000, 0x1000, "m", 0, Prot::kRead}).code(), EINVAL);
  EXPECT_EQ(e->unreserve("a", "u0").code(), kNotExpressible);
  // The mock domain: its aperture appears in the ranges, its 2K page as the alignment.
  AttachArgs mock{"dev", "D0", Format::kMock, std::nullopt, std::nullopt, {}, {}};
  ASSERT_TRUE(e->attach("a", mock).ok());
  auto r = e->ranges("a");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->alignment, kMockPage);
  EXPECT_EQ(r->ranges.front().start, default_aperture(Format::kMock).start);
  AttachArgs x86{"dev2", "D0", Format::kX86_64, std::nullopt, std::nullopt, {}, {}};
  EXPECT_EQ(e->attach("a", x86).code(), kNotExpressible);
  auto iova = e->map("a", {0x1000000, 0x4000, "m", 0, Prot::kReadWrite});
  ASSERT_TRUE(iova.ok());
  auto pin = e->pin("a", {0x1001000, 0x1000, true, true});
  ASSERT_TRUE(pin.ok());
  EXPECT_EQ(*pin, 1u);
  EXPECT_EQ(e->snapshot("a")->pins.size(), 1u);
  EXPECT_EQ(e->pin("a", {0x1001000, 0x1000, true, false}).code(), kNotExpressible);
  // The unmap tells the access; its pin goes, and unpinning it is then ENOENT.
  ASSERT_TRUE(e->unmap_all("a").ok());
  EXPECT_TRUE(e->snapshot("a")->pins.empty());
  EXPECT_EQ(e->unpin("a", 1).code(), ENOENT);
  ASSERT_TRUE(e->detach("dev").ok());
  EXPECT_TRUE(e->snapshot("a")->domains.empty());
  EXPECT_EQ(e->detach("dev").code(), ENOENT);
}

// The access checks the page it pinned at the top of the space against the
// user page (iova + length wraps to 0 there; the page count must not).
TEST(KernelEngine, PinOfTheLastPageOfTheSpace) {
  auto e = engine();
  ASSERT_TRUE(e->add_memory({"m", kVa, 0x2000, kVa, true}).ok());
  ASSERT_TRUE(e->map("a", {kMaxIova - kPage + 1, kPage, "m", kPage, Prot::kReadWrite}).ok());
  auto pin = e->pin("a", {kMaxIova - kPage + 1, kPage, false, true});
  ASSERT_TRUE(pin.ok()) << pin.error().message;
  EXPECT_TRUE(e->unpin("a", *pin).ok());
}

TEST(KernelEngine, WhatTheUapiDoesNotShowIsNotExpressible) {
  auto e = engine();
  EXPECT_EQ(e->cut("a", 0x1000).code(), kNotExpressible);
  EXPECT_EQ(e->translate("D0", 0x1000).code(), kNotExpressible);
  EXPECT_EQ(e->uva("a", 0x1000).code(), kNotExpressible);
  EXPECT_EQ(e->dma("D0", DmaDir::kRead, 0, 1).code(), kNotExpressible);
  EXPECT_EQ(e->set_dirty_tracking("D0", DirtyMode::kOn).code(), kNotExpressible);
  EXPECT_EQ(e->leaves("D0", Range::all()).code(), kNotExpressible);
  EXPECT_TRUE(e->check().empty());
  EXPECT_EQ(e->clone(), nullptr);
}

}  // namespace
}  // namespace ioas
