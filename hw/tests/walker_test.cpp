// The software walker does what the IOMMU does: faults, A/D, AF, DBM.
#include <gtest/gtest.h>

#include "formats.hpp"
#include "test_util.hpp"
#include "walker.hpp"

namespace ioas::hw {
namespace {

using testing::Fixture;
using testing::leaves;
using testing::radix_config;

TEST(Walker, X86SetsAccessedOnEveryLevelAndDirtyOnWrite) {
  Fixture f(radix_config(Format::kX86_64, k4K | k2M | k1G, /*preset_accessed=*/false));
  ASSERT_TRUE(f.pt->map({k1G, 0x40000000, k2M, Prot::kReadWrite}).ok());
  ASSERT_TRUE(f.pt->map({k1G + k2M, 0x5000, k4K, Prot::kRead}).ok());
  for (const Leaf& l : leaves(*f.pt)) EXPECT_FALSE(l.accessed || l.dirty);
  const u64 pml4e = f.mem.page(f.pt->root())[0];
  EXPECT_FALSE(pml4e & x86::kA);
  WalkResult r = walk_x86_64(f.mem, f.pt->root(), k1G + 0x1234, /*write=*/false);
  EXPECT_EQ(r.fault, Fault::kNone);
  EXPECT_EQ(r.pa, 0x40001234u);
  EXPECT_EQ(r.leaf_size, k2M);
  EXPECT_TRUE(f.mem.page(f.pt->root())[0] & x86::kA);
  auto ls = leaves(*f.pt);
  EXPECT_TRUE(ls[0].accessed);
  EXPECT_FALSE(ls[0].dirty);
  EXPECT_FALSE(ls[1].accessed);
  EXPECT_EQ(walk_x86_64(f.mem, f.pt->root(), k1G + 8, true).fault, Fault::kNone);
  EXPECT_TRUE(leaves(*f.pt)[0].dirty);
  // Write to the read-only leaf: write-protect fault, D stays clear.
  EXPECT_EQ(walk_x86_64(f.mem, f.pt->root(), k1G + k2M, true).fault, Fault::kReadOnly);
  EXPECT_FALSE(leaves(*f.pt)[1].dirty);
  EXPECT_EQ(walk_x86_64(f.mem, f.pt->root(), k1G + k2M + k4K, false).fault, Fault::kNotPresent);
  EXPECT_EQ(walk_x86_64(f.mem, f.pt->root(), 5 * k1G, false).fault, Fault::kNotPresent);
  EXPECT_EQ(walk_x86_64(f.mem, f.pt->root(), u64{1} << 47, false).fault, Fault::kNotPresent);
  EXPECT_EQ(walk_x86_64(f.mem, f.pt->root(), u64{1} << 48, false).fault, Fault::kOutOfRange);
  // The top of the 48-bit aperture walks like any other address.
  ASSERT_TRUE(f.pt->map({(u64{1} << 48) - k4K, 0x5000, k4K, Prot::kRead}).ok());
  EXPECT_EQ(walk_x86_64(f.mem, f.pt->root(), (u64{1} << 48) - 1, false).pa, 0x5fffu);
}

TEST(Walker, X86WriteNeedsRwAtEveryLevel) {
  Fixture f(radix_config(Format::kX86_64));
  ASSERT_TRUE(f.pt->map({0, 0, k4K, Prot::kReadWrite}).ok());
  EXPECT_EQ(walk_x86_64(f.mem, f.pt->root(), 0, true).fault, Fault::kNone);
  f.mem.page(f.pt->root())[0] &= ~x86::kRW;  // a read-only PML4E forbids writes below it
  EXPECT_EQ(walk_x86_64(f.mem, f.pt->root(), 0, true).fault, Fault::kReadOnly);
  EXPECT_EQ(walk_x86_64(f.mem, f.pt->root(), 0, false).fault, Fault::kNone);
  f.mem.page(f.pt->root())[0] |= x86::kPS;  // PS in a PML4E is reserved
  EXPECT_EQ(walk_x86_64(f.mem, f.pt->root(), 0, false).fault, Fault::kReserved);
}

TEST(Walker, ArmSetsAfAndDbmMakesWritableCleanDirty) {
  Fixture f(radix_config(Format::kArmLpae, k4K | k2M | k1G, /*preset_accessed=*/false));
  ASSERT_TRUE(f.pt->map({k1G, 0, k1G, Prot::kReadWrite}).ok());
  ASSERT_TRUE(f.pt->map({3 * k1G, 0x7000, k4K, Prot::kRead}).ok());
  auto ls = leaves(*f.pt);
  EXPECT_FALSE(ls[0].accessed);
  EXPECT_EQ(walk_arm_lpae(f.mem, f.pt->root(), k1G + 77, false).pa, 77u);
  ls = leaves(*f.pt);
  EXPECT_TRUE(ls[0].accessed);  // AF set by the walk
  EXPECT_FALSE(ls[0].dirty);
  EXPECT_EQ(walk_arm_lpae(f.mem, f.pt->root(), k1G + 77, true).fault, Fault::kNone);
  ls = leaves(*f.pt);
  EXPECT_TRUE(ls[0].dirty);  // AP[2] cleared: writable-dirty
  EXPECT_EQ(walk_arm_lpae(f.mem, f.pt->root(), 3 * k1G, true).fault, Fault::kReadOnly);  // no DBM
  EXPECT_FALSE(leaves(*f.pt)[1].dirty);
  EXPECT_EQ(walk_arm_lpae(f.mem, f.pt->root(), 3 * k1G + k4K, false).fault, Fault::kNotPresent);
  // After read-and-clear, AP[2] is set again and the next write dirties again.
  EXPECT_EQ(f.pt->read_and_clear_dirty(Range::all(), nullptr, false), 1u);
  EXPECT_FALSE(leaves(*f.pt)[0].dirty);
  EXPECT_EQ(walk_arm_lpae(f.mem, f.pt->root(), k1G, true).fault, Fault::kNone);
  EXPECT_TRUE(leaves(*f.pt)[0].dirty);
}

TEST(Walker, ArmBlockEncodingAtTheLastLevelFaults) {
  Fixture f(radix_config(Format::kArmLpae));
  ASSERT_TRUE(f.pt->map({0, 0, k4K, Prot::kRead}).ok());
  EXPECT_EQ(walk_arm_lpae(f.mem, f.pt->root(), 0, false).fault, Fault::kNone);
  u64 t = f.mem.page(f.pt->root())[0] & arm::kAddrMask;
  t = f.mem.page(t)[0] & arm::kAddrMask;
  t = f.mem.page(t)[0] & arm::kAddrMask;
  f.mem.page(t)[0] &= ~u64{2};  // type 01 at level 3 is invalid
  EXPECT_EQ(walk_arm_lpae(f.mem, f.pt->root(), 0, false).fault, Fault::kNotPresent);
}

class WalkerDma : public ::testing::TestWithParam<Format> {};

// dma reports the exact first faulting byte; bytes before it stay written
// and dirty.
TEST_P(WalkerDma, ReportsTheFirstFaultingByteAndDirtiesWhatWasWritten) {
  Fixture f(radix_config(GetParam()));
  ASSERT_TRUE(f.pt->map({k2M, 0, k2M + k4K, Prot::kReadWrite}).ok());
  ASSERT_TRUE(f.pt->map({2 * k2M + k4K, k1G, k4K, Prot::kRead}).ok());
  Walker w(*f.pt);
  EXPECT_EQ(w.dma(DmaDir::kRead, Range{k2M, 2 * k2M + 2 * k4K - 1}), DmaOutcome{});
  EXPECT_EQ(w.dma(DmaDir::kRead, Range{k2M, 2 * k2M + 2 * k4K}), (DmaOutcome{true, 2 * k2M + 2 * k4K}));
  EXPECT_EQ(w.dma(DmaDir::kWrite, Range{k2M + 5, 2 * k2M + k4K + 9}), (DmaOutcome{true, 2 * k2M + k4K}));
  EXPECT_EQ(w.dma(DmaDir::kRead, Range{k2M - 1, k2M}), (DmaOutcome{true, k2M - 1}));
  DirtyBitmap bm(k2M, k2M + 2 * k4K, k4K);
  EXPECT_EQ(f.pt->read_and_clear_dirty(Range{k2M, 2 * k2M + 2 * k4K - 1}, &bm, false), 2u);
  EXPECT_EQ(bm.ranges(), (std::vector<Range>{{k2M, 2 * k2M + k4K - 1}}));
}

INSTANTIATE_TEST_SUITE_P(Formats, WalkerDma, ::testing::Values(Format::kX86_64, Format::kArmLpae),
                         testing::fmt_name);

}  // namespace
}  // namespace ioas::hw
