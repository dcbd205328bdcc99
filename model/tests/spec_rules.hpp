// The SPEC.md rules as tests over any ioas::Engine.
//
// Each engine's test binary instantiates the suite with its factory:
//   INSTANTIATE_TEST_SUITE_P(Model, SpecRules,
//       ::testing::Values(ioas::testing::EngineFactory{"model", &ioas::make_model_engine}),
//       ioas::testing::FactoryName{});
//
// The helpers below keep each test to its rule. Every operation a test runs
// goes through one of three checkers, and each of them asserts that `check()`
// finds no violated invariant afterwards:
//   MUST(op)                 op succeeds; its value is returned;
//   EXPECT_FAILS(errno, op)  op fails with exactly that errno, with a message,
//                            and the whole observable world (every IOAS's
//                            snapshot and ranges, and memories()) is
//                            unchanged: "an operation that fails changes
//                            nothing";
//   EXPECT_FAILS_NAMING(errno, op, "name", ...)  EXPECT_FAILS, and the
//                            message contains each name;
//   EXPECT_NO_CHANGE(op)     op succeeds and the world is unchanged (no-ops);
//   EXPECT_FAILS_PART_DONE(errno, op)  op fails with that errno and a message
//                            and the world did change: the kernel's partial
//                            unmap (kernel mode only; the test then states
//                            what is left).
// Views (Areas, Reserved, Ranges, Dirty, ...) render state as short text so
// that an expectation reads like the SPEC and a failure prints a readable diff.
#pragma once

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "ioas/core/text.hpp"
#include "ioas/engine.hpp"

namespace ioas::testing {

struct EngineFactory {
  std::string name;
  std::unique_ptr<Engine> (*make)();
  // gtest (and so ctest's test names) show the parameter by its name, not
  // as a byte dump.
  friend void PrintTo(const EngineFactory& f, std::ostream* os) { *os << f.name; }
};

struct FactoryName {
  std::string operator()(const ::testing::TestParamInfo<EngineFactory>& info) const {
    return info.param.name;
  }
};

// Text renderings of state, for expectations and failure messages.
namespace spec_text {

using ioas::hex;

inline const char* mode_name(DirtyMode m) {
  switch (m) {
    case DirtyMode::kOff:
      return "off";
    case DirtyMode::kOn:
      return "on";
    case DirtyMode::kOnSplit:
      return "on-split";
  }
  return "?";
}

// One line per area: "0x1000-0x1fff rw m+0x0", with " pins=N" when pinned.
inline std::string describe_area(const AreaInfo& a) {
  std::string s =
      to_string(a.iova) + " " + to_string(a.prot) + " " + a.source + "+" + hex(a.offset);
  if (a.pins != 0) s += " pins=" + std::to_string(a.pins);
  return s;
}

// Everything `snapshot` shows, as text: two states are equal iff their texts are.
inline std::string describe(const IoasState& st) {
  std::string s =
      "ioas " + st.name + " mode=" + to_string(st.options.mode) +
      " zero-page=" + (st.options.zero_page == ZeroPage::kReserved ? "reserved" : "allowed") +
      " huge-pages=" + (st.options.huge_pages ? "on" : "off") +
      " alignment=" + hex(st.iova_alignment) + " next-pin=" + std::to_string(st.next_pin_id) + "\n";
  for (const auto& a : st.areas)
    s += "  area " + to_string(a.iova) + " " + to_string(a.prot) + " " + a.source + "+" +
         hex(a.offset) + " pins=" + std::to_string(a.pins) + "\n";
  for (const auto& r : st.reserved)
    s += "  reserved " + to_string(r.owner) + " " + to_string(r.range) + "\n";
  for (const auto& r : st.allowed) s += "  allowed " + to_string(r) + "\n";
  for (const auto& p : st.pins)
    s += "  pin " + std::to_string(p.id) + " " + to_string(p.iova) +
         (p.write ? " write" : " read") + (p.release ? " release" : " hold") + "\n";
  for (const auto& d : st.domains) {
    s += "  domain " + d.name + " " + to_string(d.fmt) + " aperture " + to_string(d.aperture) +
         " pgsizes " + hex(d.pgsize_bitmap) + " dirty " + mode_name(d.dirty) + " devices";
    for (const auto& dev : d.devices) s += " " + dev;
    s += "\n";
  }
  return s;
}

// The whole observable world of an engine: every IOAS's snapshot and ranges,
// and the memory sources with their use counts.
inline std::string describe(const Engine& e) {
  std::string s;
  for (const auto& name : e.ioas_names()) {
    auto st = e.snapshot(name);
    s += st.ok() ? describe(st.value())
                 : "ioas " + name + " snapshot " + to_string(st.error()) + "\n";
    auto r = e.ranges(name);
    if (r.ok())
      s += "  ranges " + to_string(r.value().ranges) + " align " + hex(r.value().alignment) + "\n";
    else
      s += "  ranges " + to_string(r.error()) + "\n";
  }
  for (const auto& m : e.memories())
    s += "memory " + m.source.name + " va " + hex(m.source.va) + " len " + hex(m.source.len) +
         " pa " + hex(m.source.pa) + (m.source.writable ? " rw" : " ro") + " use " +
         std::to_string(m.use_count) + "\n";
  return s;
}

template <typename T>
std::string show(const Result<T>& r) {
  return r.ok() ? std::string("ok") : to_string(r.error());
}

}  // namespace spec_text

// The memory sources most tests use.
//   m:  va 0x40000000, 1 GiB, pa 0x100000000 (1 GiB aligned), writable
//   ro: va 0x90000000, 16 MiB, pa 0x200000000, read-only
inline constexpr u64 kMVa = 0x4000'0000, kMLen = 0x4000'0000, kMPa = 0x1'0000'0000;
inline constexpr u64 kRoVa = 0x9000'0000, kRoLen = 0x100'0000, kRoPa = 0x2'0000'0000;

class SpecRules : public ::testing::TestWithParam<EngineFactory> {
 protected:
  void SetUp() override {
    engine = GetParam().make();
    ASSERT_NE(engine, nullptr);
  }
  std::unique_ptr<Engine> engine;

  // The member functions that are not templates are defined in
  // spec_checks.cpp, compiled once; the checkers' templates below only run
  // the operation and hand its outcome (null, or its error) to them.

  // IOAS "a" with `options`, and the memory sources m and ro.
  void Basic(IoasOptions options = {});

  // Basic() plus IOAS "b" (empty) and, in "a":
  //   A1 [0x10000, 0x13fff] m+0 rw, A2 [0x14000, 0x14fff] ro+0 r,
  //   A3 [0x20000, 0x20fff] m+0x100000 rw.
  void CopyWorld();

  // Basic() plus device "nic" attached to a new x86-64 domain "d" (defaults),
  // and in "a": A [0x200000, 0x3fffff] m+0 rw (pa 0x100000000: one 2 MiB leaf),
  //             B [0x400000, 0x5fffff] m+0x200000 r (pa 0x100200000: one 2 MiB leaf).
  void DomainWorld(IoasOptions options = {});

  // ---- checkers (use through the macros below) ----

  void ExpectClean(const char* what, const char* file, int line);

  template <typename F>
  auto Must(F&& op, const char* what, const char* file, int line) {
    auto r = op();
    CheckSucceeded(ErrorOf(r), what, file, line);
    using R = decltype(r);
    if constexpr (std::is_same_v<R, Status>) {
      return r.ok();
    } else {
      using T = std::decay_t<decltype(r.value())>;
      return r.ok() ? r.value() : T{};
    }
  }

  template <typename F>
  void ExpectFails(int code, F&& op, const char* what, const char* file, int line,
                   const std::vector<std::string>& names = {}) {
    const std::string before = World();
    auto r = op();
    CheckFailedUnchanged(code, ErrorOf(r), before, what, file, line, names);
  }

  template <typename F>
  void ExpectFailsPartDone(int code, F&& op, const char* what, const char* file, int line) {
    const std::string before = World();
    auto r = op();
    CheckFailedChanged(code, ErrorOf(r), before, what, file, line);
  }

  template <typename F>
  void ExpectNoChange(F&& op, const char* what, const char* file, int line) {
    const std::string before = World();
    auto r = op();
    CheckSucceededUnchanged(ErrorOf(r), before, what, file, line);
  }

  // ---- builders ----

  Status Mem(std::string name, u64 va, u64 len, u64 pa, bool writable = true);
  Result<u64> MapFixed(std::string_view ioas, u64 iova, u64 len, std::string src, u64 offset,
                       Prot prot = Prot::kReadWrite);
  Result<u64> MapAuto(std::string_view ioas, u64 len, std::string src, u64 offset,
                      Prot prot = Prot::kReadWrite);
  Status Attach(std::string_view ioas, std::string dev, std::string dom,
                std::vector<ResvRegion> resv = {}, std::optional<Format> fmt = std::nullopt,
                std::optional<Range> aperture = std::nullopt,
                std::optional<u64> pgsizes = std::nullopt);
  Result<std::uint32_t> Pin(std::string_view ioas, u64 iova, u64 len, bool write = false,
                            bool release = true);
  Result<u64> CopyFixed(std::string_view ioas, std::string from, u64 src_iova, u64 len,
                        u64 dst_iova, Prot prot = Prot::kReadWrite);
  Result<u64> CopyAuto(std::string_view ioas, std::string from, u64 src_iova, u64 len,
                       Prot prot = Prot::kReadWrite);
  Status Allow(std::string_view ioas, std::vector<Range> ranges);

  // ---- views ----

  IoasState Snap(std::string_view ioas);
  // "0x1000-0x1fff rw m+0x0; 0x2000-0x2fff r m+0x1000 pins=1"
  std::string Areas(std::string_view ioas);
  // "zero-page 0x0-0xfff; user u 0x10000-0x1ffff" in snapshot order (owner, range).
  std::string Reserved(std::string_view ioas);
  std::string Allowed(std::string_view ioas);
  // "0x1000-0xffffffffffffffff align 0x1"
  std::string Ranges(std::string_view ioas);
  u64 Alignment(std::string_view ioas);
  std::string Pins(std::string_view ioas);
  u64 UseCount(std::string_view mem);
  std::optional<DomainInfo> Domain(std::string_view ioas, std::string_view dom);
  // "pa 0x100000123 rw", "fault", or the error.
  std::string Translate(std::string_view dom, u64 iova);
  // "ok" or "fault 0x..." or the error; check() is asserted after it.
  std::string Dma(std::string_view dom, DmaDir dir, u64 iova, u64 len);
  // The dirty ranges as text ("" when clean), or the error.
  std::string Dirty(std::string_view dom, u64 iova, u64 len, u64 pgsize = kPage,
                    bool keep = false);

 private:
  // The error of an operation's result, null when it succeeded.
  template <typename R>
  static const Error* ErrorOf(const R& r) {
    return r.ok() ? nullptr : &r.error();
  }
  // spec_text::describe of the engine: the world before an operation.
  std::string World() const;
  // What each checker asserts once the operation ran (err: its error, or
  // null; before: World() before it).
  void CheckSucceeded(const Error* err, const char* what, const char* file, int line);
  void CheckFailedUnchanged(int code, const Error* err, const std::string& before,
                            const char* what, const char* file, int line,
                            const std::vector<std::string>& names);
  void CheckFailedChanged(int code, const Error* err, const std::string& before,
                          const char* what, const char* file, int line);
  void CheckSucceededUnchanged(const Error* err, const std::string& before, const char* what,
                               const char* file, int line);
};

#define MUST(expr) this->Must([&] { return (expr); }, #expr, __FILE__, __LINE__)
#define EXPECT_FAILS(code, expr) \
  this->ExpectFails((code), [&] { return (expr); }, #expr, __FILE__, __LINE__)
// EXPECT_FAILS, and the message names each of the strings after expr (the
// owner of a reserved range, the range of an area it is about).
#define EXPECT_FAILS_NAMING(code, expr, ...)                                          \
  this->ExpectFails((code), [&] { return (expr); }, #expr, __FILE__, __LINE__, \
                    std::vector<std::string>{__VA_ARGS__})
#define EXPECT_FAILS_PART_DONE(code, expr) \
  this->ExpectFailsPartDone((code), [&] { return (expr); }, #expr, __FILE__, __LINE__)
#define EXPECT_NO_CHANGE(expr) \
  this->ExpectNoChange([&] { return (expr); }, #expr, __FILE__, __LINE__)

}  // namespace ioas::testing
