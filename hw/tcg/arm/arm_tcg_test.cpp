// hw/tcg/arm/arm_tcg_test.cpp: QEMU TCG's AArch64 MMU walks an arm-lpae
// table our code built.
//
// We build a random arm-lpae table with hw/ (4K, 2M and 1G leaves, every
// leaf with AF clear and every writable leaf clean: AP[2]=1 with DBM) in the
// RAM of a `qemu-system-aarch64 -M virt -cpu max` guest, which is a file
// both QEMU and this test map (memory-backend-file, share=on). The table
// also identity-maps the guest's own code (read-only, so EL1 may execute
// it), data, stack, shared area and UART. The guest (guest.c, cross-built)
// points TTBR0_EL1 at the table, turns the MMU on with hardware AF and dirty
// state (TCR_EL1.HA/HD) and runs the commands; its vector records each data
// abort (FAR_EL1, ESR_EL1) and skips the access. QEMU's implementation of
// the VMSAv8-64 translation rules decides every access. After the guest
// powers off we check, against what our table says (predicted before the
// run, from translate()):
//   - every read returned the bytes at the output address, every write
//     landed there;
//   - an access with no leaf took a translation fault, a write to a
//     read-only leaf (AP[2]=1 without DBM) a permission fault, both with
//     FAR = the address and WnR = the access; nothing else faulted, and
//     memory behind a refused write is unchanged;
//   - the MMU set AF on exactly the leaves accessed, and cleared AP[2]
//     (dirty, in our format's terms) on exactly the leaves written; our
//     read_and_clear_dirty reports those leaves, then nothing.
// The same scenario runs on our software walker (always), so the
// expectations are exercised where QEMU is absent; the QEMU tests then
// report SKIPPED. A planted wrong encoding (a read-only leaf losing AP[2], a
// leaf's output address off by one bit) must make the check fail.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ioas/core/text.hpp"
#include "formats.hpp"
#include "pagetable.hpp"
#include "tcg/arm/layout.h"
#include "walker.hpp"

extern char** environ;

namespace ioas::hw {
namespace {

// Guest RAM: 2 GiB from 0x40000000, so the 1G leaf can point at an aligned
// 1 GiB of RAM above the guest's own (the file is sparse: only touched pages
// take space).
constexpr u64 kRamSize = u64{2} << 30;
constexpr u64 kChunks2m = 0x4100'0000;      // 2M leaves' memory: 56 chunks
constexpr u64 kChunks2mEnd = 0x4800'0000;
constexpr u64 kPages4k = 0x4800'0000;       // 4K leaves' memory
constexpr u64 kPages4kEnd = 0x4880'0000;
constexpr u64 kGigPa = 0x8000'0000;         // the 1G leaf's memory
// Test IOVAs, far from the identity-mapped guest.
constexpr u64 kBase2m = u64{256} << 30;
constexpr u64 kBase4k = u64{300} << 30;
constexpr u64 kBase1g = u64{512} << 30;     // a 1G leaf, then an unmapped 1G

constexpr u64 kMarker = 0xdeadbeefcafef00dull;
u64 pattern(u64 pa) { return (pa * 0x9e3779b97f4a7c15ull) ^ 0x5a5a00000000a5a5ull; }

// ESR_EL1 of a data abort: EC (31:26) = 0x25 (from the current EL), WnR (6),
// DFSC (5:0): 0b0001LL translation fault at level LL, 0b0011LL permission.
constexpr u64 kEcDataAbortSameEl = 0x25;
constexpr u64 kEsrWnR = u64{1} << 6;
constexpr u64 kDfscTranslation = 0x04;
constexpr u64 kDfscPermission = 0x0c;
u64 esr_ec(u64 esr) { return esr >> 26; }
u64 esr_fault_class(u64 esr) { return esr & 0x3c; }
u64 esr_fault_level(u64 esr) { return esr & 3; }
// The Arm level (0 = the top) of a leaf: 1G at level 1, 2M at 2, 4K at 3.
u64 arm_level(u64 leaf_size) { return leaf_size == k1G ? 1 : leaf_size == k2M ? 2 : 3; }

// The guest's RAM: a sparse file mapped shared, so QEMU and we see the same
// bytes, before, during and after the run.
class GuestRam {
 public:
  GuestRam() {
    const char* tmp = std::getenv("TMPDIR");
    dir_ = std::string(tmp && *tmp ? tmp : "/tmp") + "/ioas-tcg-arm-XXXXXX";
    if (!mkdtemp(dir_.data())) {
      error_ = "mkdtemp " + dir_ + ": " + std::strerror(errno);
      dir_.clear();
      return;
    }
    const int fd = open(ram_path().c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, kRamSize) != 0) {
      error_ = ram_path() + ": " + std::strerror(errno);
      if (fd >= 0) close(fd);
      return;
    }
    void* p = mmap(nullptr, kRamSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) {
      error_ = "mmap " + ram_path() + ": " + std::strerror(errno);
      return;
    }
    base_ = static_cast<unsigned char*>(p);
  }
  ~GuestRam() {
    if (base_) munmap(base_, kRamSize);
    if (dir_.empty()) return;
    unlink(ram_path().c_str());
    unlink(log_path().c_str());
    rmdir(dir_.c_str());
  }
  GuestRam(const GuestRam&) = delete;
  GuestRam& operator=(const GuestRam&) = delete;

  const std::string& error() const { return error_; }
  std::string ram_path() const { return dir_ + "/ram"; }
  std::string log_path() const { return dir_ + "/serial.log"; }
  unsigned char* at(u64 pa) const { return base_ + (pa - ARM_RAM_BASE); }
  u64 load(u64 pa) const {
    u64 v;
    std::memcpy(&v, at(pa), 8);
    return v;
  }
  void store(u64 pa, u64 v) { std::memcpy(at(pa), &v, 8); }
  ArmShared& shared() const { return *reinterpret_cast<ArmShared*>(at(ARM_SHARED)); }

 private:
  std::string dir_;
  std::string error_;
  unsigned char* base_ = nullptr;
};

// What our table says about one command, computed before the run.
struct Predicted {
  bool mapped = false;
  u64 pa = 0;
  bool writable = false;
  u64 leaf_iova = 0;
  u64 leaf_size = 0;
};

enum class Plant { kNone, kReadOnlyLeafLosesAp2, kOutputAddressBitFlipped };

struct Scenario {
  GuestRam ram;
  std::unique_ptr<ArenaPageMemory> mem;
  std::unique_ptr<PageTable> pt;
  std::vector<ArmCmd> cmds;
  std::vector<Predicted> predicted;  // one per command
  Range test_region{kBase2m, kBase1g + 2 * k1G - 1};
  u64 planted_index = ~u64{0};       // the command a planted bug should betray
};

// The descriptor of the leaf behind p, as the format's encoder wrote it
// (before the run): found by value among the table pages, where each output
// address belongs to one leaf only, so no second walk is needed.
u64* find_leaf_descriptor(Scenario& s, const Predicted& p) {
  const int level = static_cast<int>(3 - arm_level(p.leaf_size));  // ours: 0 = 4K
  const u64 leaf_pa = p.pa & ~(p.leaf_size - 1);
  const Prot prot = p.writable ? Prot::kReadWrite : Prot::kRead;
  const u64 want = arm::Fmt::leaf_entry(leaf_pa, level, prot, false, false);
  u64* found = nullptr;
  int count = 0;
  for (u64 pa = ARM_TABLE_ARENA; pa < ARM_TABLE_ARENA + ARM_TABLE_ARENA_SIZE; pa += kGranule) {
    u64* t = s.mem->page(pa);
    for (int i = 0; i < 512; ++i)
      if (t[i] == want) {
        found = &t[i];
        ++count;
      }
  }
  return count == 1 ? found : nullptr;
}

void plant(Scenario& s, Plant what, std::mt19937_64& rng) {
  if (what == Plant::kNone) return;
  // Candidates: for AP[2], writes our table refuses on a mapped leaf; for the
  // output address, successful reads of a 4K or 2M leaf (flipping bit 12 or
  // 21 stays inside the test memory).
  std::vector<u64> candidates;
  for (u64 i = 0; i < s.cmds.size(); ++i) {
    const Predicted& p = s.predicted[i];
    if (!p.mapped) continue;
    if (what == Plant::kReadOnlyLeafLosesAp2 && s.cmds[i].op == ARM_OP_WRITE && !p.writable)
      candidates.push_back(i);
    if (what == Plant::kOutputAddressBitFlipped && s.cmds[i].op == ARM_OP_READ && p.leaf_size != k1G)
      candidates.push_back(i);
  }
  ASSERT_FALSE(candidates.empty()) << "the scenario offers no command to plant a bug under";
  const u64 i = candidates[rng() % candidates.size()];
  u64* e = find_leaf_descriptor(s, s.predicted[i]);
  ASSERT_NE(e, nullptr) << "no unique descriptor for the leaf of command " << i;
  if (what == Plant::kReadOnlyLeafLosesAp2)
    *e &= ~arm::kApRdonly;  // AP[2:1] = 01: read/write, as an encoder that forgot AP[2] writes
  else
    *e ^= s.predicted[i].leaf_size;  // the lowest output-address bit of the leaf
  s.planted_index = i;
}

void build(Scenario& s, std::uint64_t seed, Plant planted = Plant::kNone) {
  ASSERT_EQ(s.ram.error(), "");
  s.mem = std::make_unique<ArenaPageMemory>(s.ram.at(ARM_TABLE_ARENA), ARM_TABLE_ARENA, ARM_TABLE_ARENA_SIZE);
  TableConfig cfg;
  cfg.format = Format::kArmLpae;
  cfg.pgsize_bitmap = k4K | k2M | k1G;
  cfg.preset_accessed = false;  // so that the MMU visibly sets AF
  auto t = make_page_table(cfg, *s.mem);
  ASSERT_TRUE(t.ok());
  s.pt = std::move(t).value();
  // The guest reads TTBR0_EL1 from layout.h: the root must be the arena's
  // first page.
  ASSERT_EQ(s.pt->root(), ARM_TABLE_ARENA);

  // The guest itself, identity mapped: code read-only (EL1 does not execute
  // what EL0 may write), data, stack, shared area and UART writable. The
  // format has one memory type (MAIR index 1, normal write-back), so the
  // UART is mapped as normal memory.
  struct Map {
    u64 iova, len, pa;
    Prot prot;
  };
  const Map identity[] = {
      {ARM_UART_BASE, k4K, ARM_UART_BASE, Prot::kReadWrite},
      {ARM_GUEST_TEXT, ARM_WINDOW_SIZE, ARM_GUEST_TEXT, Prot::kRead},
      {ARM_GUEST_DATA, ARM_WINDOW_SIZE, ARM_GUEST_DATA, Prot::kReadWrite},
      {ARM_SHARED, ARM_WINDOW_SIZE, ARM_SHARED, Prot::kReadWrite},
  };
  for (const Map& m : identity) ASSERT_TRUE(s.pt->map({m.iova, m.pa, m.len, m.prot}).ok());

  std::mt19937_64 rng(seed);
  auto random_prot = [&] { return rng() % 3 ? Prot::kReadWrite : Prot::kRead; };
  std::vector<Map> maps;
  // 2M leaves: 12 of 24 slots, each on its own 2M chunk.
  std::vector<u64> chunks;
  for (u64 c = kChunks2m; c < kChunks2mEnd; c += k2M) chunks.push_back(c);
  std::shuffle(chunks.begin(), chunks.end(), rng);
  std::vector<u64> slots2m(24);
  for (u64 i = 0; i < slots2m.size(); ++i) slots2m[i] = i;
  std::shuffle(slots2m.begin(), slots2m.end(), rng);
  for (int i = 0; i < 12; ++i) maps.push_back({kBase2m + slots2m[i] * k2M, k2M, chunks[i], random_prot()});
  // 4K runs of 1..4 pages on shuffled pages, a hole before each run.
  std::vector<u64> pages;
  for (u64 pa = kPages4k; pa < kPages4kEnd; pa += k4K) pages.push_back(pa);
  std::shuffle(pages.begin(), pages.end(), rng);
  u64 next_page = 0, iova = kBase4k;
  for (int i = 0; i < 16; ++i) {
    iova += k4K * (1 + rng() % 3);
    const u64 n = 1 + rng() % 4;
    const Prot prot = random_prot();
    for (u64 k = 0; k < n; ++k) maps.push_back({iova + k * k4K, k4K, pages[next_page++], prot});
    iova += n * k4K;
  }
  const u64 end4k = iova;
  maps.push_back({kBase1g, k1G, kGigPa, random_prot()});
  for (const Map& m : maps) ASSERT_TRUE(s.pt->map({m.iova, m.pa, m.len, m.prot}).ok());

  // Commands: 0..3 accesses inside every mapping, 1..3 in the 1G one (each
  // output address used once, so no access sees another's data; the 1G
  // leaf's first access is one that succeeds, so every leaf size is
  // accessed; leaves left alone must keep AF clear), and probes of the
  // holes.
  std::set<u64> used_pa;
  auto add = [&](u64 addr, bool write) {
    const auto tr = s.pt->translate(addr);
    if (tr && !used_pa.insert(tr->pa).second) return;
    if (tr) s.ram.store(tr->pa, pattern(tr->pa));
    s.cmds.push_back({write ? u64{ARM_OP_WRITE} : u64{ARM_OP_READ}, addr, write ? rng() : kMarker});
  };
  for (const Map& m : maps) {
    const bool gig = m.len == k1G;
    const int n = static_cast<int>(gig ? 1 + rng() % 3 : rng() % 4);
    for (int k = 0; k < n; ++k) {
      const bool write = rng() % 2 && (k > 0 || !gig || m.prot == Prot::kReadWrite);
      add(m.iova + (rng() % (m.len / 8)) * 8, write);
    }
  }
  for (int k = 0; k < 24; ++k) add(kBase2m + slots2m[12 + k % 12] * k2M + (rng() % (k2M / 8)) * 8, rng() % 2);
  for (u64 a = kBase4k; a < end4k; a += k4K)
    if (!s.pt->translate(a)) add(a + 8 * (rng() % 512), rng() % 2);
  for (int k = 0; k < 4; ++k) add(kBase1g + k1G + (rng() % (k1G / 8)) * 8, rng() % 2);
  std::shuffle(s.cmds.begin(), s.cmds.end(), rng);
  ASSERT_LT(s.cmds.size(), u64{ARM_MAX_CMDS});

  for (const ArmCmd& c : s.cmds) {
    Predicted p;
    if (auto tr = s.pt->translate(c.addr)) {
      p.mapped = true;
      p.pa = tr->pa;
      p.writable = tr->prot == Prot::kReadWrite;
      s.pt->for_each_leaf(Range{c.addr, c.addr}, [&](const Leaf& l) {
        p.leaf_iova = l.iova;
        p.leaf_size = l.size;
      });
    }
    s.predicted.push_back(p);
  }

  ArmShared& sh = s.ram.shared();
  std::memset(&sh, 0, sizeof sh);
  sh.magic = ARM_MAGIC;
  std::memcpy(sh.cmds, s.cmds.data(), s.cmds.size() * sizeof(ArmCmd));
  plant(s, planted, rng);
}

// What the checks covered, for the log.
struct Coverage {
  std::set<u64> sizes;  // leaf sizes accessed through
  u64 accesses = 0, translation_faults = 0, permission_faults = 0;
  u64 af_checked = 0, dirty_checked = 0;  // leaves whose AF / dirty state was compared
  std::set<u64> permission_fault_levels;  // Arm levels of the leaves that refused a write
  u64 accessed_leaves = 0, written_leaves = 0;
  u64 hafdbs = 0;
};

// Compares the run (the shared area, the memory, the table's AF and dirty
// state) with what our table predicted. Returns every difference; the
// caller asserts there are none, or, with a planted bug, that there are.
// With `fault_levels`, a permission fault must also name the level of the
// leaf our table has there (DFSC 0b0011LL), so a leaf of each size is seen
// at its level; translation fault levels are not checked.
std::vector<std::string> check(Scenario& s, Coverage& cov, bool fault_levels) {
  std::vector<std::string> bad;
  const ArmShared& sh = s.ram.shared();
  cov.hafdbs = sh.hafdbs;
  if (sh.status != ARM_STATUS_DONE) {
    bad.push_back("guest status " + std::to_string(sh.status) + " (unexpected exception kind " +
                  std::to_string(sh.unexpected_kind) + " esr " + hex(sh.unexpected_esr) + " far " +
                  hex(sh.unexpected_far) + " elr " + hex(sh.unexpected_elr) + ")");
    return bad;
  }
  std::set<u64> used_leaves, written_leaves;
  u64 f = 0;  // next reported fault
  for (u64 i = 0; i < s.cmds.size(); ++i) {
    const ArmCmd& c = s.cmds[i];
    const Predicted& p = s.predicted[i];
    const bool write = c.op == ARM_OP_WRITE;
    const std::string what = "command " + std::to_string(i) + " (" + (write ? "write " : "read ") + hex(c.addr) + ")";
    ++cov.accesses;
    const bool expect_fault = !p.mapped || (write && !p.writable);
    const bool faulted = f < sh.nfaults && sh.faults[f].index == i;
    if (expect_fault != faulted) {
      bad.push_back(what + (expect_fault ? ": no fault, our table says " : ": a fault, our table says ") +
                    (!p.mapped ? "unmapped" : p.writable ? "writable" : "read-only"));
    }
    if (faulted) {
      const ArmFault& r = sh.faults[f++];
      const u64 want_class = p.mapped ? kDfscPermission : kDfscTranslation;
      const bool level_ok = !fault_levels || !p.mapped || esr_fault_level(r.esr) == arm_level(p.leaf_size);
      if (expect_fault && (r.far != c.addr || esr_ec(r.esr) != kEcDataAbortSameEl ||
                           esr_fault_class(r.esr) != want_class || ((r.esr & kEsrWnR) != 0) != write || !level_ok))
        bad.push_back(what + ": fault far " + hex(r.far) + " esr " + hex(r.esr) + ", expected far " + hex(c.addr) +
                      (p.mapped ? " permission fault at level " + std::to_string(arm_level(p.leaf_size))
                                : std::string(" translation fault")) +
                      ", WnR " + (write ? "1" : "0"));
      if (expect_fault) ++(p.mapped ? cov.permission_faults : cov.translation_faults);
      if (expect_fault && p.mapped && fault_levels) cov.permission_fault_levels.insert(esr_fault_level(r.esr));
    }
    const u64 after = sh.cmds[i].value;
    if (faulted) {
      if (after != c.value) bad.push_back(what + ": faulted but its value changed to " + hex(after));
      if (p.mapped && s.ram.load(p.pa) != pattern(p.pa))
        bad.push_back(what + ": refused, yet memory at pa " + hex(p.pa) + " changed");
      continue;
    }
    if (!p.mapped) continue;  // reported above
    cov.sizes.insert(p.leaf_size);
    used_leaves.insert(p.leaf_iova);
    if (write) {
      written_leaves.insert(p.leaf_iova);
      if (s.ram.load(p.pa) != c.value) bad.push_back(what + ": did not land at pa " + hex(p.pa));
    } else if (after != pattern(p.pa)) {
      bad.push_back(what + ": read " + hex(after) + ", expected the bytes at pa " + hex(p.pa) + " (" +
                    hex(pattern(p.pa)) + ")");
    }
  }
  if (f != sh.nfaults)
    bad.push_back(std::to_string(sh.nfaults - f) + " faults reported out of command order or beyond the commands");

  // AF and dirty state as the MMU left them: AF on exactly the leaves
  // accessed, dirty on exactly those written. A write refused by a
  // permission fault leaves AF clear: QEMU's walk and ours update the
  // descriptor only for an access that completes.
  s.pt->for_each_leaf(s.test_region, [&](const Leaf& l) {
    ++cov.af_checked;
    if (l.prot == Prot::kReadWrite) ++cov.dirty_checked;
    if (l.accessed != (used_leaves.count(l.iova) != 0))
      bad.push_back("leaf " + hex(l.iova) + ": AF " + (l.accessed ? "set" : "clear") + ", expected " +
                    (l.accessed ? "clear" : "set"));
    if (l.dirty != (written_leaves.count(l.iova) != 0))
      bad.push_back("leaf " + hex(l.iova) + ": " + (l.dirty ? "dirty" : "clean") + ", expected " +
                    (l.dirty ? "clean" : "dirty"));
  });
  cov.accessed_leaves = used_leaves.size();
  cov.written_leaves = written_leaves.size();
  // Our read-and-clear reports them, then nothing.
  DirtyBitmap bm(s.test_region.start, s.test_region.length(), k4K);
  const u64 seen = s.pt->read_and_clear_dirty(s.test_region, &bm, false);
  if (seen != written_leaves.size())
    bad.push_back("read_and_clear_dirty saw " + std::to_string(seen) + " dirty leaves, " +
                  std::to_string(written_leaves.size()) + " were written");
  u64 units = 0;
  s.pt->for_each_leaf(s.test_region, [&](const Leaf& l) {
    if (!written_leaves.count(l.iova)) return;
    units += l.size / k4K;
    if (!bm.test((l.iova - s.test_region.start) / k4K) || !bm.test((l.iova + l.size - 1 - s.test_region.start) / k4K))
      bad.push_back("leaf " + hex(l.iova) + ": written, not wholly in the dirty bitmap");
  });
  if (bm.count() != units)
    bad.push_back("dirty bitmap has " + std::to_string(bm.count()) + " units, expected " + std::to_string(units));
  if (const u64 again = s.pt->read_and_clear_dirty(s.test_region, nullptr, false); again != 0)
    bad.push_back("read_and_clear_dirty after clearing saw " + std::to_string(again) + " dirty leaves");
  return bad;
}

// The guest's command loop, executed on our software walker; faults are
// reported as the guest's vector reports them (the walker does not say at
// which level it faulted: level 3 is reported, and not checked).
void run_on_walker(Scenario& s) {
  ArmShared& sh = s.ram.shared();
  sh.hafdbs = 2;  // the walker models HTTU's access flag and dirty state
  for (u64 i = 0; i < ARM_MAX_CMDS && sh.cmds[i].op != ARM_OP_STOP; ++i) {
    ArmCmd& c = sh.cmds[i];
    const bool write = c.op == ARM_OP_WRITE;
    const WalkResult w = walk_arm_lpae(*s.mem, s.pt->root(), c.addr, write);
    if (w.fault != Fault::kNone) {
      const u64 dfsc = (w.fault == Fault::kReadOnly ? kDfscPermission : kDfscTranslation) | 3;
      sh.faults[sh.nfaults++] = ArmFault{i, c.addr, (kEcDataAbortSameEl << 26) | (write ? kEsrWnR : 0) | dfsc};
      continue;
    }
    if (write)
      s.ram.store(w.pa, c.value);
    else
      c.value = s.ram.load(w.pa);
  }
  sh.status = ARM_STATUS_DONE;
}

std::string sizes_text(const std::set<u64>& sizes) {
  std::string out;
  for (u64 z : sizes) out += z == k4K ? " 4K" : z == k2M ? " 2M" : z == k1G ? " 1G" : " ?";
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream os;
  os << in.rdbuf();
  return os.str();
}

std::string problems_text(const std::vector<std::string>& bad) {
  std::string out;
  for (const auto& b : bad) out += "  " + b + "\n";
  return out;
}

TEST(TcgArmScenario, RunsOnTheSoftwareWalker) {
  for (std::uint64_t seed : {21, 22, 23}) {
    SCOPED_TRACE(seed);
    Scenario s;
    build(s, seed);
    ASSERT_FALSE(HasFatalFailure());
    run_on_walker(s);
    Coverage cov;
    const auto bad = check(s, cov, false);
    EXPECT_TRUE(bad.empty()) << problems_text(bad);
    EXPECT_EQ(cov.sizes, (std::set<u64>{k4K, k2M, k1G}));
    EXPECT_GT(cov.translation_faults, 0u);
    EXPECT_GT(cov.permission_faults, 0u);
    EXPECT_GT(cov.written_leaves, 0u);
  }
}

TEST(TcgArmScenario, PlantedBugsAreCaughtOnTheSoftwareWalker) {
  for (Plant p : {Plant::kReadOnlyLeafLosesAp2, Plant::kOutputAddressBitFlipped}) {
    Scenario s;
    build(s, 21, p);
    ASSERT_FALSE(HasFatalFailure());
    run_on_walker(s);
    Coverage cov;
    const auto bad = check(s, cov, false);
    ASSERT_FALSE(bad.empty());
    EXPECT_NE(problems_text(bad).find("command " + std::to_string(s.planted_index) + " "), std::string::npos)
        << problems_text(bad);
  }
}

// ---- QEMU TCG ----

// The guest image and the emulator, as CMake found them (empty: absent).
constexpr const char* kGuestElf = IOAS_TCG_ARM_GUEST;
constexpr const char* kQemu = IOAS_QEMU_AARCH64;

// Skips (loudly) when the cross-built guest or qemu-system-aarch64 is
// absent; the caller returns when the test IsSkipped().
void skip_without_qemu_or_guest() {
  std::string why;
  if (!*kQemu || access(kQemu, X_OK) != 0)
    why = "qemu-system-aarch64 was not found when configuring (Debian: qemu-system-arm; re-run cmake)";
  else if (!*kGuestElf || access(kGuestElf, R_OK) != 0)
    why = "no AArch64 cross compiler built the guest (Debian: gcc-aarch64-linux-gnu; re-run cmake)";
  if (why.empty()) return;
  std::fprintf(stderr,
               "\n*** hw.Tcg: SKIPPED: %s. The arm-lpae table was NOT walked by QEMU's AArch64 MMU. ***\n\n",
               why.c_str());
  GTEST_SKIP() << why;
}

// Boots the guest on the scenario's RAM; returns "" or what went wrong.
std::string run_qemu(Scenario& s, double& seconds) {
  const std::string object = "memory-backend-file,id=ram,size=" + std::to_string(kRamSize) +
                             ",mem-path=" + s.ram.ram_path() + ",share=on";
  const std::string serial = "file:" + s.ram.log_path();
  std::vector<std::string> args = {kQemu,  "-M",       "virt,memory-backend=ram", "-cpu", "max",
                                   "-m",   "2G",       "-object", object,     "-kernel", kGuestElf,
                                   "-display", "none", "-monitor", "none",    "-nodefaults",
                                   "-serial", serial,  "-no-reboot"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  const std::string out = s.ram.log_path() + ".qemu";
  posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid;
  const auto t0 = std::chrono::steady_clock::now();
  const int rc = posix_spawn(&pid, kQemu, &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return std::string("posix_spawn ") + kQemu + ": " + std::strerror(rc);
  // A hung guest (a fault loop) is stopped after 60 s.
  int status = 0;
  bool done = false;
  while (!done && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(60)) {
    const pid_t w = waitpid(pid, &status, WNOHANG);
    if (w == pid) done = true;
    else std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!done) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::string qemu_out = read_file(out);
  unlink(out.c_str());
  std::fprintf(stderr, "%s", read_file(s.ram.log_path()).c_str());
  if (!done) return "QEMU did not power off within 60 s (a fault loop in the guest?)\n" + qemu_out;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return "QEMU exited with status " + std::to_string(status) + ":\n" + qemu_out;
  return "";
}

// Runs one scenario under QEMU; returns the check's differences.
std::vector<std::string> run_scenario_on_qemu(Scenario& s, const char* name, Coverage& cov) {
  double seconds = 0;
  const std::string err = run_qemu(s, seconds);
  if (!err.empty()) {
    ADD_FAILURE() << err;
    return {err};
  }
  const ArmShared& sh = s.ram.shared();
  if (sh.status == ARM_STATUS_NO_HAFDBS) {
    std::fprintf(stderr,
                 "\n*** hw.Tcg %s: QEMU's -cpu max has ID_AA64MMFR1_EL1.HAFDBS = %llu: no hardware access "
                 "flag and dirty state, without which our AF-clear, writable-clean leaves cannot be "
                 "walked. ***\n\n",
                 name, static_cast<unsigned long long>(sh.hafdbs));
    return {"HAFDBS < 2"};
  }
  auto bad = check(s, cov, true);
  std::string levels;
  for (u64 l : cov.permission_fault_levels) levels += " " + std::to_string(l);
  std::fprintf(stderr,
               "hw.Tcg %s: HAFDBS %llu; QEMU's AArch64 MMU checked leaves of sizes:%s; %llu accesses, "
               "%llu translation faults, %llu permission faults (at Arm levels%s); AF compared on %llu leaves (%llu "
               "accessed), dirty on %llu writable leaves (%llu written); %.2f s in QEMU\n",
               name, static_cast<unsigned long long>(cov.hafdbs), sizes_text(cov.sizes).c_str(),
               static_cast<unsigned long long>(cov.accesses), static_cast<unsigned long long>(cov.translation_faults),
               static_cast<unsigned long long>(cov.permission_faults), levels.c_str(),
               static_cast<unsigned long long>(cov.af_checked),
               static_cast<unsigned long long>(cov.accessed_leaves),
               static_cast<unsigned long long>(cov.dirty_checked),
               static_cast<unsigned long long>(cov.written_leaves), seconds);
  return bad;
}

void qemu_walks_our_table(std::uint64_t seed) {
  skip_without_qemu_or_guest();
  if (::testing::Test::IsSkipped()) return;
  Scenario s;
  build(s, seed);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  Coverage cov;
  const std::string name = "seed " + std::to_string(seed);
  const auto bad = run_scenario_on_qemu(s, name.c_str(), cov);
  EXPECT_TRUE(bad.empty()) << problems_text(bad);
  EXPECT_EQ(cov.sizes, (std::set<u64>{k4K, k2M, k1G}));
}

TEST(Tcg, ArmLpaeSeed21) { qemu_walks_our_table(21); }
TEST(Tcg, ArmLpaeSeed22) { qemu_walks_our_table(22); }
TEST(Tcg, ArmLpaeSeed23) { qemu_walks_our_table(23); }

// A wrong encoding must show: the run differs from the correct table's
// prediction at the command that uses the planted leaf.
void planted_bug_is_caught(Plant p, const char* name) {
  skip_without_qemu_or_guest();
  if (::testing::Test::IsSkipped()) return;
  Scenario s;
  build(s, 21, p);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  Coverage cov;
  const auto bad = run_scenario_on_qemu(s, name, cov);
  ASSERT_FALSE(bad.empty()) << "QEMU's MMU agreed with the correct table although a leaf was planted wrong";
  const std::string text = problems_text(bad);
  std::fprintf(stderr, "hw.Tcg %s: the check found (as it must):\n%s", name, text.c_str());
  EXPECT_NE(text.find("command " + std::to_string(s.planted_index) + " "), std::string::npos) << text;
}

TEST(Tcg, ArmLpaePlantedReadOnlyLeafWithoutAp2IsCaught) {
  planted_bug_is_caught(Plant::kReadOnlyLeafLosesAp2, "planted AP[2] bug");
}
TEST(Tcg, ArmLpaePlantedOutputAddressBitIsCaught) {
  planted_bug_is_caught(Plant::kOutputAddressBitFlipped, "planted output-address bug");
}

}  // namespace
}  // namespace ioas::hw
