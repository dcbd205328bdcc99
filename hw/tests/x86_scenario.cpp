// hw/tests/x86_scenario.cpp: see x86_scenario.hpp.
#include "tests/x86_scenario.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <random>
#include <sstream>

#include "ioas/core/text.hpp"
#include "walker.hpp"

namespace ioas::hw::x86_scenario {

namespace {
constexpr u64 kMarker = 0xdeadbeefcafef00dull;  // a read's value slot before the read

}  // namespace

std::ostream& operator<<(std::ostream& os, const PfReport& r) {
  return os << "{cmd " << r.index << " cr2 " << hex(r.cr2) << " err " << r.error << "}";
}

u64 pattern(u64 pa) { return (pa * 0x9e3779b97f4a7c15ull) ^ 0x5a5a00000000a5a5ull; }

Scenario::~Scenario() {
  pt.reset();
  if (ram) munmap(ram, ram_size);
}
u64 Scenario::load(u64 pa) const {
  u64 v;
  std::memcpy(&v, ram + pa, 8);
  return v;
}
void Scenario::store(u64 pa, u64 v) { std::memcpy(ram + pa, &v, 8); }
std::string Scenario::sizes() const {
  std::string out;
  for (u64 z : sizes_used) out += z == k4K ? " 4K" : z == k2M ? " 2M" : z == k1G ? " 1G" : " ?";
  return out;
}

void build(Scenario& s, std::uint64_t seed, bool gbpages, int ram_fd) {
  s.ram_size = gbpages ? kBigRam : kSmallRam;
  void* p;
  if (ram_fd >= 0) {
    ASSERT_EQ(ftruncate(ram_fd, static_cast<off_t>(s.ram_size)), 0) << std::strerror(errno);
    p = mmap(nullptr, s.ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd, 0);
  } else {
    p = mmap(nullptr, s.ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  }
  ASSERT_NE(p, MAP_FAILED) << std::strerror(errno);
  s.ram = static_cast<unsigned char*>(p);
  s.mem = std::make_unique<ArenaPageMemory>(s.ram + X86_ARENA, X86_ARENA, X86_ARENA_END - X86_ARENA);
  TableConfig cfg;
  cfg.format = Format::kX86_64;
  cfg.pgsize_bitmap = k4K | k2M | (gbpages ? k1G : 0);
  cfg.preset_accessed = false;  // so that the walker visibly sets A
  auto t = make_page_table(cfg, *s.mem);
  ASSERT_TRUE(t.ok());
  s.pt = std::move(t).value();

  // The guest's own pages, identity mapped with 4K leaves.
  ASSERT_TRUE(
      s.pt->map({X86_GUEST_BASE, X86_GUEST_BASE, X86_CMDS_END - X86_GUEST_BASE, Prot::kReadWrite, 0, k4K}).ok());

  std::mt19937_64 rng(seed);
  const u64 base2m = u64{256} << 30, base4k = u64{300} << 30, base1g = u64{512} << 30;
  s.test_region = Range{base2m, base1g + k1G - 1};
  struct Map {
    u64 iova, len, pa;
    Prot prot;
  };
  std::vector<Map> maps;
  // 2M leaves: 12 of 24 slots, each on its own 2M chunk of RAM (chunks 1..).
  std::vector<u64> chunks;
  for (u64 c = 1; c < kSmallRam / k2M - 4; ++c) chunks.push_back(c * k2M);
  std::shuffle(chunks.begin(), chunks.end(), rng);
  std::vector<u64> slots2m(24);
  for (u64 i = 0; i < 24; ++i) slots2m[i] = i;
  std::shuffle(slots2m.begin(), slots2m.end(), rng);
  for (int i = 0; i < 12; ++i)
    maps.push_back({base2m + slots2m[i] * k2M, k2M, chunks[i], rng() % 3 ? Prot::kReadWrite : Prot::kRead});
  // 4K runs of 1..4 pages, on 4K pages of the last 4 chunks, shuffled.
  std::vector<u64> pages;
  for (u64 pa = kSmallRam - 4 * k2M; pa < kSmallRam; pa += k4K) pages.push_back(pa);
  std::shuffle(pages.begin(), pages.end(), rng);
  u64 next_page = 0, iova = base4k;
  for (int i = 0; i < 16; ++i) {
    iova += k4K * (1 + rng() % 3);  // a hole before each run
    const u64 n = 1 + rng() % 4;
    const Prot prot = rng() % 3 ? Prot::kReadWrite : Prot::kRead;
    for (u64 k = 0; k < n; ++k) maps.push_back({iova + k * k4K, k4K, pages[next_page++], prot});
    iova += n * k4K;
  }
  if (gbpages) maps.push_back({base1g, k1G, k1G, Prot::kReadWrite});
  for (const Map& m : maps) ASSERT_TRUE(s.pt->map({m.iova, m.pa, m.len, m.prot}).ok());

  // Commands: inside every mapping 1..3 accesses, and probes of the holes.
  // Each physical qword is probed at most once, and holds pattern(pa).
  std::set<u64> used_pa;
  auto leaf_of = [&](u64 a) {
    Leaf r{};
    s.pt->for_each_leaf(Range{a, a}, [&](const Leaf& l) { r = l; });
    return r;
  };
  auto add = [&](u64 addr, bool write) {
    auto t = s.pt->translate(addr);
    if (t && !used_pa.insert(t->pa).second) return;
    if (t) s.store(t->pa, pattern(t->pa));
    if (t && !(write && t->prot != Prot::kReadWrite)) {
      const Leaf l = leaf_of(addr);
      s.sizes_used.insert(l.size);
      s.used_leaves.insert(l.iova);
      if (write) s.written_leaves.insert(l.iova);
    }
    s.cmds.push_back({write ? u64{X86_OP_WRITE} : u64{X86_OP_READ}, addr, write ? rng() : kMarker});
  };
  for (const Map& m : maps) {
    const int n = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < n; ++k) add(m.iova + (rng() % (m.len / 8)) * 8, rng() % 2);
  }
  for (int k = 0; k < 24; ++k) {  // holes: 2M slots left out, gaps between 4K runs
    add(base2m + slots2m[12 + k % 12] * k2M + (rng() % (k2M / 8)) * 8, rng() % 2);
  }
  for (u64 a = base4k; a < iova; a += k4K)
    if (!s.pt->translate(a)) add(a + 8 * (rng() % 512), rng() % 2);
  std::shuffle(s.cmds.begin(), s.cmds.end(), rng);

  // The outcomes our table predicts, in command order.
  for (u64 i = 0; i < s.cmds.size(); ++i) {
    const Cmd& c = s.cmds[i];
    const bool write = c.op == X86_OP_WRITE;
    auto t = s.pt->translate(c.addr);
    Outcome o;
    if (t) o.pa = t->pa;
    if (!t || (write && t->prot != Prot::kReadWrite)) {
      o.fault = true;
      o.error = (t ? 1u : 0u) | (write ? 2u : 0u);  // P, W/R; U/S 0: the guest runs at CPL 0
      s.expect_faults.push_back({i, c.addr, o.error});
    }
    s.expect.push_back(o);
  }
  ASSERT_LT(X86_CMDS + (s.cmds.size() + 1) * X86_CMD_SIZE, u64{X86_CMDS_END});
  std::memcpy(s.ram + X86_CMDS, s.cmds.data(), s.cmds.size() * X86_CMD_SIZE);
  std::memset(s.ram + X86_CMDS + s.cmds.size() * X86_CMD_SIZE, 0, X86_CMD_SIZE);  // op 0: stop
}

std::vector<std::string> mismatches(Scenario& s, const std::vector<PfReport>& faults) {
  std::vector<std::string> out;
  auto say = [&](const auto&... parts) {
    std::ostringstream os;
    (os << ... << parts);
    out.push_back(os.str());
  };
  std::map<u64, PfReport> reported;
  for (const PfReport& f : faults) {
    if (f.index >= s.cmds.size())
      say("#PF reported for command ", f.index, ", past the last command");
    else if (!reported.emplace(f.index, f).second)
      say("command ", f.index, " faulted twice");
  }
  for (u64 i = 0; i < s.cmds.size(); ++i) {
    const Cmd& c = s.cmds[i];
    const Outcome& e = s.expect[i];
    const char* what = c.op == X86_OP_WRITE ? "write of " : "read of ";
    auto r = reported.find(i);
    if (e.fault) {
      const PfReport want{i, c.addr, e.error};
      if (r == reported.end())
        say("command ", i, ": ", what, hex(c.addr), " must fault ", want, ", no #PF came");
      else if (r->second != want)
        say("command ", i, ": ", what, hex(c.addr), " must fault ", want, ", got ", r->second);
      if (s.slot(i) != c.value) say("command ", i, ": a faulting ", what, hex(c.addr), " changed its value slot");
      if (e.error & 1 && s.load(e.pa) != pattern(e.pa))
        say("command ", i, ": read-only memory at pa ", hex(e.pa), " changed to ", hex(s.load(e.pa)));
      continue;
    }
    if (r != reported.end()) {
      say("command ", i, ": ", what, hex(c.addr), " (pa ", hex(e.pa), ") must not fault, got ", r->second);
      continue;
    }
    if (c.op == X86_OP_READ && s.slot(i) != pattern(e.pa))
      say("command ", i, ": ", what, hex(c.addr), " returned ", hex(s.slot(i)), ", the bytes at pa ", hex(e.pa),
          " are ", hex(pattern(e.pa)));
    if (c.op == X86_OP_WRITE && s.load(e.pa) != c.value)
      say("command ", i, ": ", what, hex(c.addr), " did not land at pa ", hex(e.pa), " (holds ", hex(s.load(e.pa)),
          ")");
  }

  // Hardware-set D bits: exactly the leaves written; A on every leaf used.
  std::set<u64> dirty, accessed;
  s.pt->for_each_leaf(s.test_region, [&](const Leaf& l) {
    if (l.dirty) dirty.insert(l.iova);
    if (l.accessed) accessed.insert(l.iova);
  });
  for (u64 l : dirty)
    if (!s.written_leaves.count(l)) say("D set on leaf ", hex(l), ", which was not written");
  for (u64 l : s.written_leaves)
    if (!dirty.count(l)) say("D clear on leaf ", hex(l), ", which was written");
  for (u64 l : s.used_leaves)
    if (!accessed.count(l)) say("A clear on leaf ", hex(l), ", which was accessed");
  // Our read-and-clear reports them, then nothing.
  DirtyBitmap bm(s.test_region.start, s.test_region.length(), k4K);
  const u64 n = s.pt->read_and_clear_dirty(s.test_region, &bm, false);
  if (n != dirty.size()) say("read_and_clear_dirty reported ", n, " dirty leaves, the table has ", dirty.size());
  u64 expect_units = 0;
  s.pt->for_each_leaf(s.test_region, [&](const Leaf& l) {
    if (!dirty.count(l.iova)) return;
    expect_units += l.size / k4K;
    for (u64 u = 0; u < l.size / k4K; u += 97)
      if (!bm.test((l.iova - s.test_region.start) / k4K + u))
        say("dirty bitmap misses ", hex(l.iova + u * k4K), " of dirty leaf ", hex(l.iova));
  });
  if (bm.count() != expect_units) say("dirty bitmap has ", bm.count(), " pages, the dirty leaves ", expect_units);
  if (const u64 again = s.pt->read_and_clear_dirty(s.test_region, nullptr, false))
    say("read_and_clear_dirty reported ", again, " dirty leaves after clearing");
  return out;
}

void check(Scenario& s, const std::vector<PfReport>& faults, const char* walker) {
  const std::vector<std::string> m = mismatches(s, faults);
  std::string all;
  for (const std::string& line : m) all += "\n  " + line;
  EXPECT_TRUE(m.empty()) << walker << " differs from our table in " << m.size() << " ways:" << all;
}

std::vector<PfReport> run_on_walker(Scenario& s) {
  std::vector<PfReport> faults;
  for (u64 i = 0;; ++i) {
    Cmd c;
    std::memcpy(&c, s.ram + X86_CMDS + i * X86_CMD_SIZE, X86_CMD_SIZE);
    if (c.op == X86_OP_STOP) break;
    const bool write = c.op == X86_OP_WRITE;
    WalkResult w = walk_x86_64(*s.mem, s.pt->root(), c.addr, write);
    if (w.fault != Fault::kNone) {
      faults.push_back({i, c.addr, (w.fault == Fault::kReadOnly ? 1u : 0u) | (write ? 2u : 0u)});
      continue;
    }
    if (write)
      s.store(w.pa, c.value);
    else
      s.store(X86_CMDS + i * X86_CMD_SIZE + 16, s.load(w.pa));
  }
  return faults;
}

}  // namespace ioas::hw::x86_scenario
