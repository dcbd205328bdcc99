// hw/tcg/tcg_test.cpp: QEMU's x86 MMU walks a table our code built.
//
// The scenario of tests/x86_scenario.hpp (a random x86-64 table with 4K,
// 2M and 1G leaves, built with hw/ in guest RAM, and a command list) is
// built straight into a file that QEMU then uses as the guest's RAM
// (memory-backend-file, share=on), so the guest runs on exactly the bytes we
// wrote, and after QEMU exits we read what it left there: the values read,
// the bytes written, the A/D bits its MMU set. The guest (x86_guest*.{S,cpp})
// is QEMU's firmware: it enters long mode with CR3 = our table, performs
// the commands and reports reads, writes and #PFs (CR2, error code) over
// COM1. QEMU runs with -accel tcg, so its softmmu (target/i386's page walk,
// an implementation of x86 paging that is not ours) decides each access.
// The same check as the KVM test's then says whether it agreed with our
// table. The planted-bug tests change one leaf as a wrong encoder would and
// require the check to notice, so a harness that sees nothing cannot pass.
//
// Needs qemu-system-x86_64 on PATH; without it every test here reports
// SKIPPED, loudly.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <thread>

#include "formats.hpp"
#include "pagetable.hpp"
#include "tests/x86_scenario.hpp"

namespace ioas::hw {
namespace {

using namespace x86_scenario;

constexpr int kTimeoutSeconds = 60;  // a run takes about a second; ASan and a loaded machine add some

std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string p = (dir.empty() ? "." : dir) + "/" + name;
    if (access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// A private directory for one run's RAM file, serial log and QEMU's output.
struct RunDir {
  std::string path;
  RunDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string t = std::string(tmp && *tmp ? tmp : "/tmp") + "/ioas-tcg-XXXXXX";
    if (mkdtemp(t.data())) path = t;
  }
  ~RunDir() {
    if (path.empty()) return;
    for (const char* f : {"/ram", "/serial", "/qemu.out"}) unlink((path + f).c_str());
    rmdir(path.c_str());
  }
  std::string file(const char* name) const { return path + "/" + name; }
};

// What the guest said over COM1 (x86_guest.cpp lists the lines).
struct GuestReport {
  bool cpuid = false, pdpe1gb = false;
  u64 cpuid_edx = 0;
  bool cr3_seen = false;
  u64 cr3 = 0;
  std::vector<PfReport> faults;
  std::map<u64, u64> reads;  // command index -> value
  std::set<u64> writes;
  bool done = false;
  u64 done_count = 0;
  std::vector<std::string> other;  // lines that are none of these
};

GuestReport parse(const std::string& serial) {
  GuestReport r;
  std::stringstream lines(serial);
  for (std::string line; std::getline(lines, line);) {
    std::stringstream in(line);
    std::string kw;
    in >> kw >> std::hex;
    u64 a = 0, b = 0, c = 0;
    if (kw == "CPUID") {
      std::string leaf, edx, pdpe1gb;
      if (in >> leaf >> edx >> r.cpuid_edx >> pdpe1gb >> a) r.cpuid = true, r.pdpe1gb = a == 1;
    } else if (kw == "CR3" && in >> a) {
      r.cr3_seen = true, r.cr3 = a;
    } else if (kw == "R" && in >> a >> b) {
      r.reads[a] = b;
    } else if (kw == "W" && in >> a) {
      r.writes.insert(a);
    } else if (kw == "PF" && in >> a >> b >> c) {
      r.faults.push_back({a, b, c});
    } else if (kw == "DONE" && in >> a) {
      r.done = true, r.done_count = a;
    } else if (!line.empty()) {
      r.other.push_back(line);
    }
  }
  return r;
}

struct QemuRun {
  bool started = false, timed_out = false;
  int exit_status = -1;  // isa-debug-exit: 2 * (the guest's code) + 1
  double seconds = 0;
  std::string serial, output;
};

// Runs the guest firmware on the RAM file `dir/ram` of `ram_size` bytes.
QemuRun run_qemu(const std::string& qemu, const RunDir& dir, u64 ram_size) {
  const std::string size = std::to_string(ram_size >> 20) + "M";
  // clang-format off
  const std::vector<std::string> args = {
      qemu, "-M", "q35,memory-backend=ram", "-cpu", "max", "-accel", "tcg", "-m", size,
      "-object", "memory-backend-file,id=ram,size=" + size + ",mem-path=" + dir.file("ram") + ",share=on",
      "-bios", IOAS_X86_GUEST_ROM, "-nographic", "-nodefaults", "-no-reboot",
      "-serial", "file:" + dir.file("serial"),
      "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"};
  // clang-format on
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  QemuRun run;
  const auto t0 = std::chrono::steady_clock::now();
  const pid_t pid = fork();
  if (pid < 0) return run;
  if (pid == 0) {
    const int in = open("/dev/null", O_RDONLY);
    const int out = open(dir.file("qemu.out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in >= 0 && out >= 0) {
      dup2(in, 0);
      dup2(out, 1);
      dup2(out, 2);
      execv(argv[0], argv.data());
    }
    _exit(127);
  }
  run.started = true;
  int status = 0;
  for (;;) {
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() - t0 > std::chrono::seconds(kTimeoutSeconds)) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      run.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  run.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!run.timed_out && WIFEXITED(status)) run.exit_status = WEXITSTATUS(status);
  run.serial = read_text(dir.file("serial"));
  run.output = read_text(dir.file("qemu.out"));
  return run;
}

// One guest run on a fresh scenario: build it into the RAM file, let
// `plant` change it, run QEMU, and require a complete, well-formed report.
// The Scenario then holds RAM as the guest left it.
struct TcgRun {
  RunDir dir;
  Scenario s;
  QemuRun qemu;
  GuestReport report;
};

void run_guest(TcgRun& t, std::uint64_t seed, bool gbpages, const std::function<void(Scenario&)>& plant = {}) {
  const std::string qemu = find_on_path("qemu-system-x86_64");
  if (qemu.empty()) {
    std::fprintf(stderr,
                 "\n*** hw.Tcg: SKIPPED: qemu-system-x86_64 is not on PATH (Debian package "
                 "qemu-system-x86). The x86-64 table was NOT checked by QEMU's x86 MMU. ***\n\n");
    GTEST_SKIP() << "qemu-system-x86_64 is not on PATH: the x86-64 table was NOT checked by QEMU's MMU";
  }
  struct stat st {};
  ASSERT_EQ(stat(IOAS_X86_GUEST_ROM, &st), 0) << "the guest firmware " << IOAS_X86_GUEST_ROM << " was not built";
  ASSERT_FALSE(t.dir.path.empty()) << "mkdtemp: " << std::strerror(errno);
  const int fd = open(t.dir.file("ram").c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  ASSERT_GE(fd, 0) << t.dir.file("ram") << ": " << std::strerror(errno);
  build(t.s, seed, gbpages, fd);
  close(fd);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  // The hand-off block: the guest loads CR3 from it before paging is on.
  t.s.store(X86_HANDOFF, X86_HANDOFF_MAGIC);
  t.s.store(X86_HANDOFF + 8, t.s.pt->root());
  if (plant) plant(t.s);
  ASSERT_FALSE(::testing::Test::HasFatalFailure());

  t.qemu = run_qemu(qemu, t.dir, t.s.ram_size);
  ASSERT_TRUE(t.qemu.started) << "fork: " << std::strerror(errno);
  const std::string said = "\nguest serial:\n" + t.qemu.serial + "\nqemu output:\n" + t.qemu.output;
  ASSERT_FALSE(t.qemu.timed_out) << "QEMU ran past " << kTimeoutSeconds << " s and was killed" << said;
  t.report = parse(t.qemu.serial);
  ASSERT_EQ(t.qemu.exit_status, 1) << "want the guest's isa-debug-exit code 0 (QEMU status 1); status 3: the guest "
                                      "hit something unexpected, 5: no hand-off block, 0: a triple fault (a reset, "
                                      "which -no-reboot turns into an exit), other: QEMU failed"
                                   << said;
  ASSERT_TRUE(t.report.other.empty()) << "lines the guest must not write" << said;
  ASSERT_TRUE(t.report.cpuid) << "no CPUID line" << said;
  ASSERT_TRUE(t.report.cr3_seen) << "no CR3 line" << said;
  EXPECT_EQ(t.report.cr3, t.s.pt->root()) << "the guest's MMU did not walk our table's root";
  if (gbpages) {
    ASSERT_TRUE(t.report.pdpe1gb) << "-cpu max offers no pdpe1gb: the 1G leaf cannot be walked" << said;
  }
  ASSERT_TRUE(t.report.done) << "the guest did not finish the command list" << said;
  ASSERT_EQ(t.report.done_count, t.s.cmds.size());
}

// The serial report agrees with what the guest left in RAM: every command
// is one R, W or PF line, and each read's value is the one in its slot.
void expect_report_matches_ram(const TcgRun& t) {
  std::map<u64, int> lines;
  for (const auto& [i, v] : t.report.reads) {
    ++lines[i];
    if (i < t.s.cmds.size()) {
      EXPECT_EQ(v, t.s.slot(i)) << "serial and RAM disagree on read " << i;
    }
  }
  for (u64 i : t.report.writes) ++lines[i];
  for (const PfReport& f : t.report.faults) ++lines[f.index];
  for (u64 i = 0; i < t.s.cmds.size(); ++i)
    EXPECT_EQ(lines[i], 1) << "command " << i << " reported " << lines[i] << " times";
  EXPECT_EQ(lines.size(), t.s.cmds.size());
}

void walks_our_table(std::uint64_t seed, bool gbpages) {
  TcgRun t;
  run_guest(t, seed, gbpages);
  if (::testing::Test::HasFatalFailure() || ::testing::Test::IsSkipped()) return;
  expect_report_matches_ram(t);
  const std::size_t dirty = t.s.written_leaves.size();
  check(t.s, t.report.faults, "QEMU's x86 MMU (TCG)");
  if (gbpages) {
    EXPECT_TRUE(t.s.sizes_used.count(k1G)) << "no command reached the 1G leaf";
  }
  std::fprintf(stderr,
               "hw.Tcg seed %llu: QEMU's x86 MMU (TCG; CPUID 0x80000001 EDX 0x%llx, pdpe1gb %d) checked "
               "leaves of sizes:%s; %zu accesses (%zu reads, %zu writes), %zu faults, %zu dirty leaves; "
               "QEMU ran %.2f s\n",
               static_cast<unsigned long long>(seed), static_cast<unsigned long long>(t.report.cpuid_edx),
               t.report.pdpe1gb ? 1 : 0, t.s.sizes().c_str(), t.s.cmds.size(), t.report.reads.size(),
               t.report.writes.size(), t.report.faults.size(), dirty, t.qemu.seconds);
}

TEST(Tcg, X86_64_Seed11) { walks_our_table(11, true); }
TEST(Tcg, X86_64_Seed12) { walks_our_table(12, true); }
TEST(Tcg, X86_64_Seed13) { walks_our_table(13, true); }
// A table with no 1G page size at all (the pgsize_bitmap of a CPU without
// pdpe1gb), in 64M of RAM.
TEST(Tcg, X86_64_Seed14_No1G) { walks_our_table(14, false); }

// ---- Planted bugs: the harness must be able to fail ----

// The qword our encoder wrote for leaf l, in the table pages: the one equal
// to Fmt::leaf_entry of l (A and D clear, as build() leaves them).
u64 descriptor_of(const Scenario& s, const Leaf& l) {
  const int level = l.size == k1G ? 2 : l.size == k2M ? 1 : 0;
  const u64 want = x86::Fmt::leaf_entry(l.pa, level, l.prot, false, false);
  u64 found = 0;
  int n = 0;
  for (u64 pa = X86_ARENA; pa < X86_ARENA_END; pa += 8)
    if (s.load(pa) == want) found = pa, ++n;
  EXPECT_EQ(n, 1) << "descriptor 0x" << std::hex << want << " of leaf 0x" << l.iova;
  return found;
}

// A leaf of `size` that some successful command of kind `op` uses, and the
// commands through it.
Leaf pick_leaf(const Scenario& s, u64 op, u64 size, std::set<u64>* commands) {
  for (u64 i = 0; i < s.cmds.size(); ++i) {
    if (s.cmds[i].op != op || s.expect[i].fault) continue;
    Leaf l{};
    s.pt->for_each_leaf(Range{s.cmds[i].addr, s.cmds[i].addr}, [&](const Leaf& x) { l = x; });
    if (l.size != size) continue;
    for (u64 j = 0; j < s.cmds.size(); ++j)
      if (Range{l.iova, l.iova + l.size - 1}.contains(s.cmds[j].addr)) commands->insert(j);
    return l;
  }
  ADD_FAILURE() << "no successful command of op " << op << " through a leaf of size 0x" << std::hex << size;
  return {};
}

// Runs the guest on a table whose leaf l has `bits` flipped, puts the bits
// back (our table as built is the prediction), and requires the check to
// name one of `commands`.
void planted_bug_is_caught(std::uint64_t seed, u64 op, u64 size, u64 bits, const char* bug) {
  TcgRun t;
  Leaf leaf{};
  u64 at = 0;
  std::set<u64> commands;
  run_guest(t, seed, true, [&](Scenario& s) {
    leaf = pick_leaf(s, op, size, &commands);
    at = descriptor_of(s, leaf);
    ASSERT_NE(at, 0u);
    s.store(at, s.load(at) ^ bits);
  });
  if (::testing::Test::HasFatalFailure() || ::testing::Test::IsSkipped()) return;
  t.s.store(at, t.s.load(at) ^ bits);
  const std::vector<std::string> m = mismatches(t.s, t.report.faults);
  std::string all;
  bool names_a_command = false;
  for (const std::string& line : m) {
    all += "\n  " + line;
    for (u64 i : commands) names_a_command |= line.rfind("command " + std::to_string(i) + ":", 0) == 0;
  }
  EXPECT_FALSE(m.empty()) << "the guest ran on a table with " << bug << " and the check saw nothing";
  EXPECT_TRUE(names_a_command) << "the check missed the commands through the planted leaf:" << all;
  std::fprintf(stderr, "hw.Tcg planted bug (%s, leaf 0x%llx, seed %llu): the check reports %zu differences:%s\n", bug,
               static_cast<unsigned long long>(leaf.iova), static_cast<unsigned long long>(seed), m.size(),
               all.c_str());
}

TEST(Tcg, X86_64_PlantedReadOnlyLeafIsCaught) {
  planted_bug_is_caught(11, X86_OP_WRITE, k4K, x86::kRW, "RW dropped from a written 4K leaf");
}
TEST(Tcg, X86_64_PlantedAddressBitIsCaught) {
  planted_bug_is_caught(12, X86_OP_READ, k4K, u64{1} << 12, "address bit 12 flipped in a read 4K leaf");
}
// The 1G leaf maps GPA 1G..2G; with bit 30 clear it would map 0..1G.
TEST(Tcg, X86_64_Planted1GAddressBitIsCaught) {
  planted_bug_is_caught(11, X86_OP_READ, k1G, u64{1} << 30, "address bit 30 flipped in the 1G leaf");
}

}  // namespace
}  // namespace ioas::hw
