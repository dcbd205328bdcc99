// Domain back ends (ioas/backend.hpp): ImplOptions::tables makes each new
// domain's table; a back end's errors reach the caller with their own errno
// and leave nothing changed.
#include <gtest/gtest.h>

#include <new>

#include "ioas/backend.hpp"
#include "ioas/impl.hpp"

namespace ioas {
namespace {

// Forwards everything to the built-in table; tests override what they change.
struct Forward : IoPageTable {
  std::unique_ptr<IoPageTable> in;
  Status map(Range r, u64 pa, u64 u, Prot p, u64 g) override { return in->map(r, pa, u, p, g); }
  void unmap(Range r) override { in->unmap(r); }
  Status split(u64 last) override { return in->split(last); }
  void unsplit(u64 l) override { in->unsplit(l); }
  Status relayout(u64 p) override { return in->relayout(p); }
  std::optional<Translation> translate(u64 i) const override { return in->translate(i); }
  DmaOutcome dma(DmaDir d, Range r) override { return in->dma(d, r); }
  std::vector<Range> read_dirty(Range r, u64 p, bool k) override { return in->read_dirty(r, p, k); }
  void clear_dirty() override { in->clear_dirty(); }
  void leaves(Range r, const std::function<void(const LeafInfo&)>& f) const override { in->leaves(r, f); }
  void flush_iotlb() override { in->flush_iotlb(); }
  u64 flushes() const override { return in->flushes(); }
  u64 table_pages() const override { return in->table_pages(); }
  std::size_t mapping_count() const override { return in->mapping_count(); }
  void for_each_mapping(const std::function<void(const PtMapping&)>& f) const override { in->for_each_mapping(f); }
  std::size_t verify() const override { return in->verify(); }
};

// Fails map with `fail_errno` while armed, and records every call, as a
// kernel back end would forward them.
struct Recorder final : Forward {
  std::vector<std::string>* log;
  int* fail_errno;
  Status map(Range r, u64 pa, u64 uaddr, Prot prot, u64 pgsizes) override {
    if (*fail_errno) return make_error(*fail_errno, "back end refuses " + to_string(r));
    log->push_back("map " + to_string(r));
    return in->map(r, pa, uaddr, prot, pgsizes);
  }
  void unmap(Range r) override {
    log->push_back("unmap " + to_string(r));
    in->unmap(r);
  }
};

TEST(Backend, FactoryMakesEachDomainsTableAndErrorsKeepTheirErrno) {
  std::vector<std::string> log;
  int fail = 0;
  std::vector<std::string> configs;
  ImplOptions o;
  o.verify_each_op = true;
  o.tables = [&](const DomainConfig& c, const std::function<Result<std::unique_ptr<IoPageTable>>()>& builtin)
      -> Result<std::unique_ptr<IoPageTable>> {
    configs.push_back(c.name + " " + c.ioas + " " + c.first_device + " " + to_string(c.fmt));
    if (c.name == "refused") return make_error(ENODEV, "no such container");
    auto t = builtin();
    if (!t.ok()) return t.error();
    auto r = std::make_unique<Recorder>();
    r->in = std::move(t).value();
    r->log = &log;
    r->fail_errno = &fail;
    return std::unique_ptr<IoPageTable>(std::move(r));
  };
  auto e = make_engine(o);
  ASSERT_TRUE(e->create_ioas("a", {}).ok());
  ASSERT_TRUE(e->add_memory(MemorySource{"m", 0x7f0000000000, 0x400000, 0x40000000, true}).ok());
  ASSERT_TRUE(e->map("a", MapArgs{0x100000, 0x200000, "m", 0, Prot::kReadWrite}).ok());
  ASSERT_TRUE(e->attach("a", AttachArgs{"nic", "d", Format::kArmLpae, {}, {}, {}, {}}).ok());
  EXPECT_EQ(configs, (std::vector<std::string>{"d a nic arm-lpae"}));
  EXPECT_EQ(log, (std::vector<std::string>{"map 0x100000-0x2fffff"}));
  // The factory's own error fails the attach with its errno; nothing changed.
  auto before = e->snapshot("a");
  EXPECT_EQ(e->attach("a", AttachArgs{"gpu", "refused", {}, {}, {}, {}, {}}).code(), ENODEV);
  EXPECT_EQ(e->snapshot("a").value(), before.value());
  // A back end's map error (a kernel's EFAULT, say) reaches the caller as is.
  fail = EFAULT;
  auto m = e->map("a", MapArgs{0x400000, 0x1000, "m", 0x200000, Prot::kRead});
  EXPECT_EQ(m.code(), EFAULT);
  EXPECT_NE(m.error().message.find("back end refuses"), std::string::npos) << m.error().message;
  EXPECT_EQ(e->snapshot("a").value(), before.value());
  fail = 0;
  ASSERT_TRUE(e->unmap("a", 0x100000, 0x200000).ok());
  EXPECT_EQ(log.back(), "unmap 0x100000-0x2fffff");
  // A back end that cannot be copied makes the engine say so: clone() is null.
  EXPECT_EQ(e->clone(), nullptr);
}

// A back end whose split always fails: the engine must unsplit the domains
// it already split. With many mappings the btree moves nodes on erase, which
// is where unsplit once used a stale iterator (found by the VFIO back end's
// host lockstep).
// An engine that verifies after every call, with IOAS "io", memory "m" and
// domains "a" (device x) and "b" (device y), whose table is b_table (a
// Forward) around the built-in one.
template <typename Table>
std::unique_ptr<Engine> two_domains(std::function<std::unique_ptr<Table>()> b_table) {
  ImplOptions o;
  o.verify_each_op = true;
  o.tables = [b_table](const DomainConfig& c,
                       const std::function<Result<std::unique_ptr<IoPageTable>>()>& builtin)
      -> Result<std::unique_ptr<IoPageTable>> {
    auto t = builtin();
    if (!t.ok() || c.name != "b") return t;
    std::unique_ptr<Table> f = b_table();
    f->in = std::move(t).value();
    return std::unique_ptr<IoPageTable>(std::move(f));
  };
  auto e = make_engine(o);
  EXPECT_TRUE(e->create_ioas("io", {}).ok());
  EXPECT_TRUE(e->add_memory({"m", 0x7f0000000000, 16 << 20, 0x40000000, true}).ok());
  EXPECT_TRUE(e->attach("io", AttachArgs{"x", "a", {}, {}, {}, {}, {}}).ok());
  EXPECT_TRUE(e->attach("io", AttachArgs{"y", "b", {}, {}, {}, {}, {}}).ok());
  return e;
}

struct SplitRefused final : Forward {
  Status split(u64) override { return make_error(EIO, "split refused"); }
};

TEST(Backend, ACutRefusedByTheSecondDomainIsUndoneInTheFirst) {
  auto e = two_domains<SplitRefused>([] { return std::make_unique<SplitRefused>(); });
  for (u64 i = 0; i < 40; ++i)
    ASSERT_TRUE(e->map("io", MapArgs{0x100000 + i * 0x10000, 0x8000, "m", i * 0x8000, Prot::kReadWrite}).ok());
  const auto before = e->snapshot("io").value();
  const auto leaves_before = e->leaves("a", Range::all()).value();
  for (u64 i = 0; i < 40; ++i) {
    auto st = e->cut("io", 0x100000 + i * 0x10000 + 0x3fff);
    EXPECT_EQ(st.code(), EIO) << i;
  }
  EXPECT_EQ(e->snapshot("io").value(), before);
  EXPECT_EQ(e->leaves("a", Range::all()).value(), leaves_before);
}

// A back end whose map throws std::bad_alloc (its own allocation failed)
// while armed, having changed nothing.
struct MapThrows final : Forward {
  const bool* armed;
  Status map(Range r, u64 pa, u64 u, Prot p, u64 g) override {
    if (*armed) throw std::bad_alloc();
    return in->map(r, pa, u, p, g);
  }
};

TEST(Backend, AMapWhoseTableThrowsBadAllocIsEnomemAndUndoneInTheDomainsBefore) {
  bool armed = false;
  auto e = two_domains<MapThrows>([&] {
    auto f = std::make_unique<MapThrows>();
    f->armed = &armed;
    return f;
  });
  ASSERT_TRUE(e->map("io", MapArgs{0x100000, 0x8000, "m", 0, Prot::kReadWrite}).ok());
  const auto before = e->snapshot("io").value();
  const auto leaves_before = e->leaves("a", Range::all()).value();
  armed = true;
  auto m = e->map("io", MapArgs{0x200000, 0x4000, "m", 0x8000, Prot::kReadWrite});
  EXPECT_EQ(m.code(), ENOMEM);
  auto automatic = e->map("io", MapArgs{std::nullopt, 0x4000, "m", 0x8000, Prot::kRead});
  EXPECT_EQ(automatic.code(), ENOMEM);
  EXPECT_EQ(e->snapshot("io").value(), before);
  EXPECT_EQ(e->leaves("a", Range::all()).value(), leaves_before);
  armed = false;
  EXPECT_TRUE(e->map("io", MapArgs{0x200000, 0x4000, "m", 0x8000, Prot::kReadWrite}).ok());
}

// A table whose verify() counts one mapping more than it holds once `lie`
// is set: the engine's own verification must notice.
struct Miscounting final : Forward {
  const bool* lie;
  std::size_t verify() const override { return in->verify() + (*lie ? 1 : 0); }
};

TEST(Backend, VerifyOnCheckRunsTheTablesVerifyInCheckRatherThanAfterEachCall) {
  bool lie = false;
  ImplOptions o;
  o.verify_on_check = true;
  o.tables = [&](const DomainConfig&, const std::function<Result<std::unique_ptr<IoPageTable>>()>& builtin)
      -> Result<std::unique_ptr<IoPageTable>> {
    auto t = builtin();
    if (!t.ok()) return t;
    auto m = std::make_unique<Miscounting>();
    m->in = std::move(t).value();
    m->lie = &lie;
    return std::unique_ptr<IoPageTable>(std::move(m));
  };
  // An IOAS with one domain and one area.
  auto made = [](const ImplOptions& opts) {
    auto e = make_engine(opts);
    EXPECT_TRUE(e->create_ioas("io", {}).ok());
    EXPECT_TRUE(e->add_memory({"m", 0x7f0000000000, 16 << 20, 0x40000000, true}).ok());
    EXPECT_TRUE(e->attach("io", AttachArgs{"x", "a", {}, {}, {}, {}, {}}).ok());
    EXPECT_TRUE(e->map("io", MapArgs{0x100000, 0x8000, "m", 0, Prot::kReadWrite}).ok());
    return e;
  };
  auto e = made(o);
  EXPECT_TRUE(e->check().empty());
  lie = true;
  // No verification after a call: the map goes through.
  ASSERT_TRUE(e->map("io", MapArgs{0x200000, 0x8000, "m", 0x8000, Prot::kReadWrite}).ok());
  EXPECT_DEATH((void)e->check(), "page table mapping count");
  // Without the option (the table miscounts there too), check() reports the
  // SPEC invariants only.
  ImplOptions plain = o;
  plain.verify_on_check = false;
  auto p = made(plain);
  EXPECT_TRUE(p->check().empty());
}

}  // namespace
}  // namespace ioas
