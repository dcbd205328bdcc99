// A write-only mapping (prot w, kernel mode's WRITEABLE without READABLE) in
// each format: the leaf holds what ioas::leaf_prot says. x86-64 and arm-lpae
// have no write-only encoding and write rw (as Linux's VT-d first stage, AMD
// v2 and arm stage-1 io-pgtable do); tce clears TCE_PCI_READ and the mock
// sets its no-read bit, so the walker faults a read there.
#include <gtest/gtest.h>

#include "formats.hpp"
#include "ioas/rules.hpp"
#include "mock.hpp"
#include "tce.hpp"
#include "test_util.hpp"
#include "walker.hpp"

namespace ioas::hw {
namespace {

using testing::Fixture;
using testing::leaves;

TableConfig config_of(Format f) {
  switch (f) {
    case Format::kX86_64:
    case Format::kArmLpae: return testing::radix_config(f);
    case Format::kTce: return TableConfig{Format::kTce, k4K, Range{0, 0x7fffffff}};
    case Format::kMock: return TableConfig{Format::kMock, kMockPage | kMockHugePage, Range{0x1000000, 0x7fffffff}};
  }
  return {};
}

class WriteOnly : public ::testing::TestWithParam<Format> {};

TEST_P(WriteOnly, TheLeafHoldsWhatLeafProtSays) {
  const Format f = GetParam();
  const Prot want = leaf_prot(f, Prot::kWrite);
  Fixture t(config_of(f));
  ASSERT_TRUE(t.pt->map({0x1000000, 0x40000000, 0x2000, Prot::kWrite}).ok());
  const auto tr = t.pt->translate(0x1000010);
  ASSERT_TRUE(tr.has_value());
  EXPECT_EQ(tr->pa, 0x40000010u);
  EXPECT_EQ(tr->prot, want);
  for (const Leaf& l : leaves(*t.pt)) EXPECT_EQ(l.prot, want) << "leaf at " << l.iova;
  Walker w(*t.pt);
  EXPECT_EQ(w.access(0x1001ff0, true).fault, Fault::kNone);
  EXPECT_EQ(w.access(0x1000010, false).fault, prot_reads(want) ? Fault::kNone : Fault::kReadOnly);
  EXPECT_EQ(t.pt->verify(), 0x2000 / (f == Format::kMock ? kMockPage : k4K));
  // No permission at all is refused by every format.
  EXPECT_EQ(t.pt->map({0x1100000, 0x40100000, 0x1000, Prot::kNone}).code(), EINVAL);
}

// A read walk's `writes` is what a write walk (update=false) answers, on
// read-write, read-only and write-only leaves and on holes, so one walk can
// stand for both.
TEST_P(WriteOnly, AReadWalkTellsWhetherAWriteWouldFault) {
  const Format f = GetParam();
  Fixture t(config_of(f));
  ASSERT_TRUE(t.pt->map({0x1000000, 0x40000000, 0x2000, Prot::kReadWrite}).ok());
  ASSERT_TRUE(t.pt->map({0x1002000, 0x40100000, 0x2000, Prot::kRead}).ok());
  ASSERT_TRUE(t.pt->map({0x1004000, 0x40200000, 0x2000, Prot::kWrite}).ok());
  Walker w(*t.pt);
  int reads = 0, writes = 0;
  for (u64 iova = 0x1000000; iova < 0x1008000; iova += 0x800) {
    const WalkResult rd = w.access(iova, false, false);
    const WalkResult wr = w.access(iova, true, false);
    if (rd.fault != Fault::kNone) continue;
    ++reads;
    writes += rd.writes;
    EXPECT_EQ(rd.writes, wr.fault == Fault::kNone) << "at " << iova;
  }
  EXPECT_EQ(reads, prot_reads(leaf_prot(f, Prot::kWrite)) ? 12 : 8);
  EXPECT_EQ(writes, prot_reads(leaf_prot(f, Prot::kWrite)) ? 8 : 4);
}

// A look (which keeps the upper levels from one walk to the next) answers
// what a whole walk does, in any order of IOVAs: across tables, holes, large
// and small leaves, and under an upper level that forbids writes.
TEST_P(WriteOnly, ALookAnswersWhatAWholeWalkDoes) {
  const Format f = GetParam();
  Fixture t(config_of(f));
  const bool radix = f == Format::kX86_64 || f == Format::kArmLpae;
  const u64 big = radix ? k2M : 0x2000;
  ASSERT_TRUE(t.pt->map({0x1000000, 0x40000000, 0x3000, Prot::kReadWrite}).ok());
  ASSERT_TRUE(t.pt->map({0x1200000, 0x40200000, big, Prot::kRead}).ok());
  ASSERT_TRUE(t.pt->map({0x1400000, 0x40400000, 0x2000, Prot::kWrite}).ok());
  ASSERT_TRUE(t.pt->map({0x41000000, 0x50000000, 0x1000, Prot::kReadWrite}).ok());
  if (f == Format::kX86_64) t.mem.page(t.pt->root())[0] &= ~x86::kRW;  // no writes below the first PML4E
  std::vector<u64> at;
  for (u64 base : {u64{0x1000000}, u64{0x1200000}, u64{0x1400000}, u64{0x41000000}})
    for (u64 off : {u64{0}, u64{0x800}, u64{0x1000}, u64{0x2ff8}, u64{0x3000}, big - 1})
      at.push_back(base + off);
  at.push_back(0x10);
  at.push_back(0x7fffffff);
  std::vector<u64> order = at;
  order.insert(order.end(), at.rbegin(), at.rend());  // forwards, then backwards
  Walker looking(*t.pt);
  int hits = 0;
  for (u64 iova : order) {
    const WalkResult want = Walker(*t.pt).access(iova, false, false);
    const WalkResult got = looking.look(iova);
    EXPECT_EQ(got.fault, want.fault) << "at " << iova;
    if (want.fault != Fault::kNone) continue;
    ++hits;
    EXPECT_EQ(got.pa, want.pa) << "at " << iova;
    EXPECT_EQ(got.leaf_iova, want.leaf_iova) << "at " << iova;
    EXPECT_EQ(got.leaf_size, want.leaf_size) << "at " << iova;
    EXPECT_EQ(got.writes, want.writes) << "at " << iova;
    EXPECT_EQ(got.writes, Walker(*t.pt).access(iova, true, false).fault == Fault::kNone) << "at " << iova;
  }
  EXPECT_GT(hits, 20);
}

INSTANTIATE_TEST_SUITE_P(Formats, WriteOnly,
                         ::testing::Values(Format::kX86_64, Format::kArmLpae, Format::kTce, Format::kMock),
                         [](const ::testing::TestParamInfo<Format>& i) {
                           return i.param == Format::kMock ? std::string("mock") : testing::fmt_name(i);
                         });

// The entries themselves, against the architectures' bits.
TEST(WriteOnlyBits, X86SetsPresentAndRwArmLeavesApRdonlyToDbm) {
  Fixture x(testing::radix_config(Format::kX86_64));
  ASSERT_TRUE(x.pt->map({0, 0x5000, k4K, Prot::kWrite}).ok());
  // PML4[0] -> PDPT[0] -> PD[0] -> PT[0]: the leaf entry.
  u64 table = x.pt->root();
  for (int level = 0; level < 3; ++level) table = x.mem.page(table)[0] & x86::kAddrMask;
  const u64 e = x.mem.page(table)[0];
  EXPECT_TRUE(e & x86::kP);
  EXPECT_TRUE(e & x86::kRW);
  Fixture a(testing::radix_config(Format::kArmLpae));
  ASSERT_TRUE(a.pt->map({0, 0x5000, k4K, Prot::kWrite}).ok());
  table = a.pt->root();
  for (int level = 0; level < 3; ++level) table = a.mem.page(table)[0] & arm::kAddrMask;
  const u64 d = a.mem.page(table)[0];
  EXPECT_TRUE(d & arm::kDBM);  // writable (clean): the same descriptor as rw
}

TEST(WriteOnlyBits, TceClearsReadAndMockSetsNoRead) {
  HeapPageMemory mem;
  auto t = make_page_table(config_of(Format::kTce), mem);
  ASSERT_TRUE(t.ok());
  auto& tce = static_cast<TceTable&>(**t);
  ASSERT_TRUE(tce.map({0x3000, 0x40003000, k4K, Prot::kWrite}).ok());
  EXPECT_EQ(tce::from_be(tce.raw_entry(3)), 0x40003000u | tce::kWrite);
  auto m = make_page_table(config_of(Format::kMock), mem);
  ASSERT_TRUE(m.ok());
  auto& mock = static_cast<MockTable&>(**m);
  // A 1 MiB write-only leaf, then a partial unmap splits it: the pieces stay w.
  ASSERT_TRUE(mock.map({0x1100000, 0x40100000, kMockHugePage, Prot::kWrite}).ok());
  EXPECT_TRUE(mock.entry(0x1100000) & MockTable::kHuge);
  EXPECT_TRUE(mock.entry(0x1100000) & MockTable::kNoRead);
  EXPECT_TRUE(mock.entry(0x1100000) & MockTable::kWritable);
  ASSERT_TRUE(mock.unmap(0x1100000, kMockPage).ok());
  EXPECT_FALSE(mock.entry(0x1100800) & MockTable::kHuge);
  EXPECT_EQ(mock.translate(0x11ff800)->prot, Prot::kWrite);
  mock.verify();
}

}  // namespace
}  // namespace ioas::hw
