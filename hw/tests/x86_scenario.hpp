// hw/tests/x86_scenario.hpp: a random x86-64 table in guest RAM, the
// commands that probe it, and the check of what a walker made of them.
//
// One scenario for every MMU that walks our x86-64 tables: our software
// walker (run_on_walker), a CPU under KVM (kvm/kvm_test.cpp) and QEMU's TCG
// MMU (tcg/tcg_test.cpp). build() lays out guest RAM (tests/x86_layout.h),
// builds the table there with hw/ (4K runs, 2M leaves, and a 1G leaf at GPA
// 1G when gbpages), identity-maps the guest's own pages, and writes the
// command list: accesses inside every mapping, probes of the holes, writes
// to read-only leaves. Each command's outcome is predicted from our table
// at build time, so a table changed after build() (the planted-bug tests)
// is still judged against what the correct table says. The guest program
// itself is the caller's: build() leaves X86_GUEST_BASE..X86_CMDS zero.
//
// The guest's contract: perform the commands in order, store each read's
// value in the command's value slot, report each #PF as {command index, CR2,
// error code} and skip the access; nothing else touches the test region.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "pagetable.hpp"
#include "tests/x86_layout.h"

namespace ioas::hw::x86_scenario {

inline constexpr u64 kSmallRam = u64{64} << 20;
inline constexpr u64 kBigRam = u64{2} << 30;  // with gbpages: a 1G leaf onto GPA 1G..2G

struct Cmd {
  u64 op, addr, value;
};
static_assert(sizeof(Cmd) == X86_CMD_SIZE);

struct PfReport {
  u64 index, cr2, error;
  friend bool operator==(const PfReport&, const PfReport&) = default;
};
std::ostream& operator<<(std::ostream& os, const PfReport& r);

// What our table says command i must do: fault with `error` (0 / 2 not
// present on read / write, 3 write to a read-only leaf), or reach `pa`.
struct Outcome {
  bool fault = false;
  u64 error = 0;
  u64 pa = 0;
};

struct Scenario {
  u64 ram_size = 0;
  unsigned char* ram = nullptr;
  std::unique_ptr<ArenaPageMemory> mem;
  std::unique_ptr<PageTable> pt;
  std::vector<Cmd> cmds;
  std::vector<Outcome> expect;  // per command
  std::vector<PfReport> expect_faults;
  Range test_region{};           // IOVAs of the random mappings
  std::set<u64> written_leaves;  // leaf IOVAs written successfully
  std::set<u64> used_leaves;     // leaf IOVAs accessed successfully
  std::set<u64> sizes_used;      // leaf sizes the successful commands touch

  Scenario() = default;
  Scenario(const Scenario&) = delete;
  Scenario& operator=(const Scenario&) = delete;
  ~Scenario();
  u64 load(u64 pa) const;
  void store(u64 pa, u64 v);
  // The value slot of command i, where the guest stores what it read.
  u64 slot(u64 i) const { return load(X86_CMDS + i * X86_CMD_SIZE + 16); }
  // " 4K 2M 1G" for the sizes used.
  std::string sizes() const;
};

// The bytes a successful read of physical address pa must return.
u64 pattern(u64 pa);

// Builds the scenario for `seed`. RAM is anonymous memory, or, with
// ram_fd >= 0, that file, grown to ram_size and mapped shared (so that an
// emulator mapping the same file runs on exactly these bytes).
void build(Scenario& s, std::uint64_t seed, bool gbpages, int ram_fd = -1);

// Every way in which a run differs from what our table predicts: the fault
// reports, the values read and the bytes written (both in RAM), the
// hardware-set A/D bits and what read_and_clear_dirty makes of them.
// Empty when the walker agrees with the table. Reads and clears the D bits.
std::vector<std::string> mismatches(Scenario& s, const std::vector<PfReport>& faults);

// mismatches() as a gtest failure naming the walker.
void check(Scenario& s, const std::vector<PfReport>& faults, const char* walker);

// The guest's program, executed on our software walker.
std::vector<PfReport> run_on_walker(Scenario& s);

}  // namespace ioas::hw::x86_scenario
