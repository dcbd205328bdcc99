// The heap fail-nth sweep: the kernel's iommufd_fail_nth fails every
// allocation an ioctl makes; here every heap allocation an engine operation
// makes can fail, not only the engine's own counted objects
// (fail_nth_alloc): the nodes of its B+trees, vectors, strings, absl
// containers, page-table journals.
//
// This binary links heap_hook.hpp's replaced global operator new and delete:
// while a HeapExhaustion scope is open, the nth allocation and every later
// one fail (the heap is exhausted from there on: an undo path that allocates
// fails too). The sweep runs every operation
// of TRACE.md (the Engine methods) on a world with several IOASes, domains of
// every format, pins, copies and dirty tracking, for n = 1, 2, ... until the
// operation no longer reaches its nth allocation. After each failure the
// engine must answer ENOMEM, equal the model engine that never ran the
// operation (every IOAS's snapshot and ranges, the memories and their use
// counts, every leaf of every domain), leak no table page (impl: pages in use less
// those reachable stays as it was), pass check(), and then run the operation without
// failure to the same answer and state as a fresh copy does. Leaks show
// under LeakSanitizer (the ASan build).
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <new>
#include <sstream>
#include <string>
#include <vector>

#include "heap_hook.hpp"
#include "ioas/engine.hpp"
#include "ioas/impl.hpp"

namespace ioas {
namespace {

using testing::HeapExhaustion;

// ---------------------------------------------------------------- answers and states as text

std::string hexs(u64 v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

void put(std::ostream& os, const Range& r) { os << hexs(r.start) << "-" << hexs(r.last); }

template <typename T>
std::string show(const Result<T>& r) {
  if (!r.ok()) return std::string("error ") + errno_name(r.code());
  std::ostringstream os;
  if constexpr (std::is_same_v<T, void>) {
    os << "ok";
  } else {
    const T& v = r.value();
    if constexpr (std::is_same_v<T, u64> || std::is_same_v<T, std::uint32_t>) {
      os << hexs(v);
    } else if constexpr (std::is_same_v<T, std::vector<Range>>) {
      for (const Range& x : v) put(os << " ", x);
    } else if constexpr (std::is_same_v<T, DmaOutcome>) {
      os << (v.faulted ? "fault " + hexs(v.fault_iova) : "ok");
    } else if constexpr (std::is_same_v<T, std::optional<Translation>>) {
      os << (v ? "pa " + hexs(v->pa) + " " + to_string(v->prot) : "fault");
    } else if constexpr (std::is_same_v<T, IovaRanges>) {
      for (const Range& x : v.ranges) put(os << " ", x);
      os << " align " << hexs(v.alignment);
    } else if constexpr (std::is_same_v<T, std::vector<LeafInfo>>) {
      for (const LeafInfo& l : v) {
        put(os << " ", l.iova);
        os << ">" << hexs(l.pa) << to_string(l.prot) << (l.dirty ? "D" : "") << "@" << hexs(l.uaddr);
      }
    } else if constexpr (std::is_same_v<T, IoasState>) {
      os << v.name << " align " << hexs(v.iova_alignment) << " next pin " << v.next_pin_id;
      for (const AreaInfo& a : v.areas) {
        put(os << "\n  area ", a.iova);
        os << " " << to_string(a.prot) << " " << a.source << "+" << hexs(a.offset) << " pins " << a.pins;
      }
      for (const ReservedInfo& x : v.reserved) put(os << "\n  reserved " << to_string(x.owner) << " ", x.range);
      for (const Range& x : v.allowed) put(os << "\n  allowed ", x);
      for (const PinInfo& p : v.pins) {
        put(os << "\n  pin " << p.id << " ", p.iova);
        os << (p.write ? " write" : "") << (p.release ? "" : " keep");
      }
      for (const DomainInfo& d : v.domains) {
        os << "\n  domain " << d.name << " " << to_string(d.fmt) << " pgsizes " << hexs(d.pgsize_bitmap)
           << " dirty " << static_cast<int>(d.dirty) << " devices";
        put(os << " aperture ", d.aperture);
        for (const std::string& dev : d.devices) os << " " << dev;
      }
    } else {
      static_assert(sizeof(T) == 0, "show: a result type without a printer");
    }
  }
  return os.str();
}

// Everything observable: every IOAS (snapshot and ranges), every memory
// source with its use count, every leaf of every domain.
std::string dump(const Engine& e) {
  std::ostringstream os;
  for (const MemoryInfo& m : e.memories())
    os << "mem " << m.source.name << " " << hexs(m.source.va) << "+" << hexs(m.source.len) << " pa "
       << hexs(m.source.pa) << (m.source.writable ? "" : " ro") << " uses " << m.use_count << "\n";
  for (const std::string& name : e.ioas_names()) {
    auto st = e.snapshot(name);
    os << "ioas " << show(st) << "\n  ranges" << show(e.ranges(name)) << "\n";
    if (!st.ok()) continue;
    for (const DomainInfo& d : st->domains) os << "  leaves " << d.name << show(e.leaves(d.name, Range::all())) << "\n";
  }
  for (const Violation& v : e.check()) os << "violated " << to_string(v.invariant) << " " << v.detail << "\n";
  return os.str();
}

// ---------------------------------------------------------------- the world and the operations

MemorySource mem(const char* name, u64 va, u64 len, u64 pa, bool writable = true) {
  return MemorySource{name, va, len, pa, writable};
}
MapArgs fixed(u64 iova, u64 len, const char* src, u64 off, Prot prot = Prot::kReadWrite) {
  return MapArgs{iova, len, src, off, prot};
}
AttachArgs dev(const char* d, const char* dom, std::optional<Format> fmt = std::nullopt,
               std::vector<ResvRegion> resv = {}) {
  AttachArgs a;
  a.dev = d;
  a.dom = dom;
  a.fmt = fmt;
  a.resv = std::move(resv);
  return a;
}

// Three IOASes (a: default mode with x86-64 and arm-lpae domains; b: kernel
// mode with tce and mock domains; c: huge pages off, one x86-64 domain),
// three memory sources (one read-only, one unused), areas with 2M and 4K
// leaves, pins, a user reservation, an allowed list, a copy, and dirty
// tracking with a dirty leaf. Small enough that the sweep stays in seconds
// under ASan.
void build(Engine& e) {
  auto must = [](const auto& r, const char* what) {
    ASSERT_TRUE(r.ok()) << what << ": " << r.error().message;
  };
  must(e.create_ioas("a", IoasOptions{}), "ioas a");
  must(e.create_ioas("b", IoasOptions{ZeroPage::kAllowed, true, IoasMode::kKernel}), "ioas b");
  must(e.create_ioas("c", IoasOptions{ZeroPage::kReserved, false}), "ioas c");
  must(e.add_memory(mem("m1", 0x7f0000000000, 0x1000000, 0x40000000)), "mem m1");
  must(e.add_memory(mem("m2", 0x7e0000001000, 0x100000, 0x80001000, false)), "mem m2");
  must(e.add_memory(mem("m3", 0x100000, 0x10000, 0x100000)), "mem m3");
  must(e.attach("a", dev("ax", "dx", Format::kX86_64)), "attach ax");
  must(e.attach("a", dev("ax2", "dx")), "attach ax2");
  must(e.attach("a", dev("aa", "da", Format::kArmLpae)), "attach aa");
  must(e.attach("b", dev("bt", "dt", Format::kTce)), "attach bt");
  must(e.attach("b", dev("bm", "dm", Format::kMock)), "attach bm");
  must(e.attach("c", dev("cx", "dc", Format::kX86_64)), "attach cx");
  must(e.map("a", fixed(0x200000, 0x400000, "m1", 0)), "map a 2M leaves");
  must(e.map("a", fixed(0x800000, 0x3000, "m1", 0x400000)), "map a 4K leaves");
  must(e.map("a", fixed(0x1000000, 0x10000, "m2", 0, Prot::kRead)), "map a read-only");
  must(e.map("b", fixed(0x1000000, 0x8000, "m1", 0x600000)), "map b");
  must(e.map("b", fixed(0x2000000, 0x1000, "m1", 0x800000)), "map b 2");
  must(e.map("b", fixed(0x3000000, 0x4000, "m1", 0x700000)), "map b 3");
  must(e.map("c", fixed(0x100000, 0x2000, "m1", 0x900000)), "map c");
  must(e.pin("a", PinArgs{0x800000, 0x2000, true, true}), "pin a");
  must(e.pin("b", PinArgs{0x1000000, 0x1000, false, true}), "pin b");
  must(e.copy("b", CopyArgs{"a", 0x200000, 0x4000, std::nullopt, Prot::kRead}), "copy a to b");
  must(e.reserve("a", Range{0x40000000, 0x4fffffff}, "fw"), "reserve a");
  const Range allowed[] = {Range{0x100000, 0xffffff}};
  must(e.allow("c", allowed), "allow c");
  must(e.set_dirty_tracking("da", DirtyMode::kOn), "dirty da");
  must(e.dma("da", DmaDir::kWrite, 0x200010, 4), "dma da");
  must(e.set_dirty_tracking("dt", DirtyMode::kOn), "dirty dt");
}

using Call = std::function<std::string(Engine&, std::uint64_t nth, bool* failed)>;
struct Op {
  std::string name;
  Call call;
};

// Runs f(e) inside the exhaustion scope; the answer is printed outside it.
// f's arguments are made outside the scope (captured), so that only the
// engine's own allocations are counted.
template <typename F>
Call call(F f) {
  return [f](Engine& e, std::uint64_t nth, bool* failed) {
    std::optional<decltype(f(e))> r;
    {
      HeapExhaustion scope(nth);
      r.emplace(f(e));
      *failed = scope.failed();
    }
    return show(*r);
  };
}

std::vector<Op> operations() {
  const Range two[] = {Range{0x100000, 0x1ffffff}, Range{0x4000000, 0x4ffffff}};
  std::vector<Range> allow_two(std::begin(two), std::end(two));
  return {
      {"create_ioas", call([](Engine& e) { return e.create_ioas("d", IoasOptions{}); })},
      {"create_ioas kernel",
       call([](Engine& e) { return e.create_ioas("kernel-mode-ioas", IoasOptions{ZeroPage::kAllowed, true, IoasMode::kKernel}); })},
      {"add_memory", call([m = mem("a-memory-source-name", 0x7d0000000000, 0x100000, 0x7d0000000000)](Engine& e) { return e.add_memory(m); })},
      {"remove_memory", call([](Engine& e) { return e.remove_memory("m3"); })},
      {"map fixed", call([a = fixed(0x400000000, 0x400000, "m1", 0xa00000)](Engine& e) { return e.map("a", a); })},
      {"map automatic", call([a = MapArgs{std::nullopt, 0x4000, "m1", 0xb00000, Prot::kReadWrite}](Engine& e) { return e.map("b", a); })},
      {"map huge pages off", call([a = fixed(0x200000, 0x3000, "m1", 0xc00000)](Engine& e) { return e.map("c", a); })},
      {"unmap pinned area", call([](Engine& e) { return e.unmap("a", 0x800000, 0x3000); })},
      {"unmap one area", call([](Engine& e) { return e.unmap("a", 0x1000000, 0x10000); })},
      {"unmap, kernel mode stops at a partial area", call([](Engine& e) { return e.unmap("b", 0x2000000, 0x1002000); })},
      {"map onto an area (an error)", call([a = fixed(0x200000, 0x1000, "m1", 0)](Engine& e) { return e.map("a", a); })},
      {"unmap all", call([](Engine& e) { return e.unmap_all("b"); })},
      {"cut", call([](Engine& e) { return e.cut("a", 0x2fffff); })},
      {"huge pages on, leaves grow", call([](Engine& e) { return e.set_huge_pages("c", true); })},
      {"huge pages off", call([](Engine& e) { return e.set_huge_pages("a", false); })},
      {"map write-only, kernel mode",
       call([a = MapArgs{std::nullopt, 0x2000, "m1", 0xd00000, Prot::kWrite}](Engine& e) { return e.map("b", a); })},
      {"cut in c", call([](Engine& e) { return e.cut("c", 0x100fff); })},
      {"reserve new owner", call([](Engine& e) { return e.reserve("a", Range{0x50000000, 0x5fffffff}, "firmware-two"); })},
      {"reserve existing owner", call([](Engine& e) { return e.reserve("a", Range{0x60000000, 0x6fffffff}, "fw"); })},
      {"unreserve", call([](Engine& e) { return e.unreserve("a", "fw"); })},
      {"allow", call([allow_two](Engine& e) { return e.allow("c", allow_two); })},
      {"allow clear", call([](Engine& e) { return e.allow("c", {}); })},
      {"ranges", call([](Engine& e) { return e.ranges("a"); })},
      {"attach new x86-64 domain", call([a = dev("n1", "new-x86-domain", Format::kX86_64)](Engine& e) { return e.attach("c", a); })},
      {"attach new arm-lpae domain", call([a = dev("n2", "new-arm-domain", Format::kArmLpae)](Engine& e) { return e.attach("a", a); })},
      {"attach new tce domain", call([a = dev("n3", "new-tce-domain", Format::kTce)](Engine& e) { return e.attach("b", a); })},
      {"attach new mock domain", call([a = dev("n4", "new-mock-domain", Format::kMock)](Engine& e) { return e.attach("b", a); })},
      {"attach to a domain, with reserved regions",
       call([a = dev("a-device-with-regions", "dx", std::nullopt,
                     {ResvRegion{Range{0x70000000, 0x700fffff}, ResvType::kMsi},
                      ResvRegion{Range{0x71000000, 0x71000fff}, ResvType::kDirect}})](Engine& e) {
         return e.attach("a", a);
       })},
      {"detach the last device", call([](Engine& e) { return e.detach("aa"); })},
      {"detach one of two devices", call([](Engine& e) { return e.detach("ax2"); })},
      {"detach mock", call([](Engine& e) { return e.detach("bm"); })},
      {"pin", call([](Engine& e) { return e.pin("a", PinArgs{0x200000, 0x2000, false, true}); })},
      {"pin in kernel mode", call([](Engine& e) { return e.pin("b", PinArgs{0x1004000, 0x2000, true, false}); })},
      {"unpin", call([](Engine& e) { return e.unpin("a", 1); })},
      {"copy fixed", call([a = CopyArgs{"a", 0x200000, 0x4000, 0x3000000, Prot::kReadWrite}](Engine& e) { return e.copy("c", a); })},
      {"copy automatic", call([a = CopyArgs{"a", 0x5fc000, 0x4000, std::nullopt, Prot::kReadWrite}](Engine& e) { return e.copy("b", a); })},
      {"translate", call([](Engine& e) { return e.translate("dx", 0x200123); })},
      {"dma write", call([](Engine& e) { return e.dma("da", DmaDir::kWrite, 0x3ff000, 0x2000); })},
      {"dma write tce", call([](Engine& e) { return e.dma("dt", DmaDir::kWrite, 0x1000000, 0x8000); })},
      {"dma read", call([](Engine& e) { return e.dma("dm", DmaDir::kRead, 0x1000000, 0x9000); })},
      {"dirty on split", call([](Engine& e) { return e.set_dirty_tracking("dx", DirtyMode::kOnSplit); })},
      {"dirty on", call([](Engine& e) { return e.set_dirty_tracking("dm", DirtyMode::kOn); })},
      {"dirty off", call([](Engine& e) { return e.set_dirty_tracking("da", DirtyMode::kOff); })},
      {"read_dirty", call([](Engine& e) { return e.read_dirty("da", 0x200000, 0x400000, 0x1000, false); })},
      {"read_dirty tce", call([](Engine& e) { return e.read_dirty("dt", 0x1000000, 0x8000, 0x1000, false); })},
      {"read_dirty keep", call([](Engine& e) { return e.read_dirty("da", 0x200000, 0x400000, 0x1000, true); })},
      {"uva", call([](Engine& e) { return e.uva("a", 0x200010); })},
      {"leaves", call([](Engine& e) { return e.leaves("da", Range{0x200000, 0x80ffff}); })},
      {"snapshot", call([](Engine& e) { return e.snapshot("a"); })},
      {"ioas_options", call([](Engine& e) {
         auto r = e.ioas_options("b");
         return r.ok() ? Result<u64>(static_cast<u64>(r->mode)) : Result<u64>(r.error());
       })},
  };
}

// Engine methods whose answer has no error value (check, memories,
// ioas_names): heap exhaustion while making the answer aborts
// (ioas/boundary.hpp), so they are not swept.
constexpr const char* kNoErrorValue = "check, memories, ioas_names";

// Operations not yet safe under heap exhaustion on an engine: listed here,
// not swept, and reported loudly.
struct KnownUnsafe {
  const char* engine;
  const char* op;
};
const std::vector<KnownUnsafe> kKnownUnsafe = {};

bool known_unsafe(const std::string& engine, const std::string& op) {
  for (const auto& k : kKnownUnsafe)
    if (engine == k.engine && op == k.op) return true;
  return false;
}

std::unique_ptr<Engine> built(std::unique_ptr<Engine> e) {
  build(*e);
  return e;
}

// Table pages in use less those reachable from the domains' roots: 0 but for
// the mock domains, whose table_pages() counts xarray nodes (heap, not table
// pages), so a leak is a change of this number.
std::int64_t unreachable_pages(const Engine& e) {
  return static_cast<std::int64_t>(table_pages_in_use(e)) - static_cast<std::int64_t>(table_pages_reachable(e));
}

void sweep(const char* kind, std::unique_ptr<Engine> base) {
  auto model = built(make_model_engine());
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  base = built(std::move(base));
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  const std::string before = dump(*model);
  ASSERT_EQ(dump(*base), before) << "the engines disagree after building the world";
  const bool impl = std::string(kind) == "impl";
  u64 total = 0;
  std::vector<std::string> skipped;
  for (const Op& op : operations()) {
    if (known_unsafe(kind, op.name)) {
      skipped.push_back(op.name);
      continue;
    }
    SCOPED_TRACE(op.name);
    // What the operation gives and leaves when nothing fails (the model's
    // answer is the reference).
    bool failed = false;
    auto ref = model->clone();
    const std::string want = op.call(*ref, 0, &failed);
    const std::string want_state = dump(*ref);
    u64 points = 0;
    for (std::uint64_t n = 1;; ++n) {
      ASSERT_LT(n, 100000u) << "the operation never got through";
      auto e = base->clone();
      ASSERT_TRUE(e);
      const std::string got = op.call(*e, n, &failed);
      if (!failed) {
        ASSERT_EQ(got, want) << "after " << points << " failures";
        ASSERT_EQ(dump(*e), want_state);
        break;
      }
      ++points;
      ASSERT_EQ(got, "error ENOMEM") << "allocation " << n << " failed";
      ASSERT_EQ(dump(*e), before) << "allocation " << n << " failed and the engine changed";
      if (impl) {
        ASSERT_EQ(unreachable_pages(*e), unreachable_pages(*base)) << "allocation " << n << ": a table page leaked";
      }
      // Nothing hidden broke: the same operation now runs as on a fresh copy.
      ASSERT_EQ(op.call(*e, 0, &failed), want) << "allocation " << n << " failed, then the retry";
      ASSERT_EQ(dump(*e), want_state) << "allocation " << n << " failed, then the retry";
    }
    std::printf("[heap fail-nth] %s %-45s %4llu failure points\n", kind, op.name.c_str(),
                static_cast<unsigned long long>(points));
    total += points;
  }
  std::printf("[heap fail-nth] %s: %llu failure points swept in all; not swept (no error value): %s\n", kind,
              static_cast<unsigned long long>(total), kNoErrorValue);
  EXPECT_GT(total, 0u);
  if (!skipped.empty()) {
    std::string list;
    for (const std::string& s : skipped) {
      std::printf("[heap fail-nth] %s: NOT SWEPT, KNOWN UNSAFE under heap exhaustion: %s\n", kind, s.c_str());
      list += " [" + s + "]";
    }
    GTEST_SKIP() << kind << ": operations not yet safe under heap exhaustion, not swept:" << list;
  }
}

TEST(HeapFailNth, HookFailsEveryAllocationFromTheNth) {
  std::vector<int>* v = nullptr;
  bool threw = false, failed = false;
  void* third = &threw;
  std::uint64_t count = 0;
  {
    HeapExhaustion scope(2);
    v = new std::vector<int>();  // the 1st: granted
    try {
      v->reserve(10);  // the 2nd: refused
    } catch (const std::bad_alloc&) {
      threw = true;
    }
    third = ::operator new(8, std::nothrow);  // the 3rd: refused too
    failed = scope.failed();
    count = scope.count();
  }
  EXPECT_NE(v, nullptr);
  EXPECT_TRUE(threw);
  EXPECT_EQ(third, nullptr);
  EXPECT_TRUE(failed);
  EXPECT_EQ(count, 3u);
  delete v;
}

// The injection hooks answer for an impl engine only: for another engine
// they say so (false, 0) and touch nothing.
TEST(HeapFailNth, TheInjectionHooksAnswerNoForAnEngineThatIsNotImpl) {
  auto model = make_model_engine();
  EXPECT_FALSE(fail_nth_alloc(*model, 1));
  EXPECT_EQ(alloc_calls(*model), 0u);
  EXPECT_EQ(table_pages_in_use(*model), 0u);
  EXPECT_EQ(table_pages_reachable(*model), 0u);
  EXPECT_TRUE(model->create_ioas("a", IoasOptions{}).ok()) << "the failure was not armed";
  auto impl = make_engine();
  EXPECT_TRUE(fail_nth_alloc(*impl, 1));
  EXPECT_EQ(impl->create_ioas("a", IoasOptions{}).code(), ENOMEM);
  EXPECT_TRUE(fail_nth_alloc(*impl, 0));
  EXPECT_TRUE(impl->create_ioas("a", IoasOptions{}).ok());
}

TEST(HeapFailNth, Impl) {
  ImplOptions o;
  o.thread_safe = true;
  sweep("impl", make_engine(o));
}

TEST(HeapFailNth, Model) { sweep("model", make_model_engine()); }

}  // namespace
}  // namespace ioas
