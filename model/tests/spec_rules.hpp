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

  // IOAS "a" with `options`, and the memory sources m and ro.
  void Basic(IoasOptions options = {}) {
    ASSERT_TRUE(engine->create_ioas("a", options).ok());
    ASSERT_TRUE(Mem("m", kMVa, kMLen, kMPa).ok());
    ASSERT_TRUE(Mem("ro", kRoVa, kRoLen, kRoPa, false).ok());
  }

  // Basic() plus IOAS "b" (empty) and, in "a":
  //   A1 [0x10000, 0x13fff] m+0 rw, A2 [0x14000, 0x14fff] ro+0 r,
  //   A3 [0x20000, 0x20fff] m+0x100000 rw.
  void CopyWorld() {
    Basic();
    ASSERT_TRUE(engine->create_ioas("b", {}).ok());
    ASSERT_TRUE(MapFixed("a", 0x10000, 0x4000, "m", 0, Prot::kReadWrite).ok());
    ASSERT_TRUE(MapFixed("a", 0x14000, 0x1000, "ro", 0, Prot::kRead).ok());
    ASSERT_TRUE(MapFixed("a", 0x20000, 0x1000, "m", 0x100000, Prot::kReadWrite).ok());
  }

  // Basic() plus device "nic" attached to a new x86-64 domain "d" (defaults),
  // and in "a": A [0x200000, 0x3fffff] m+0 rw (pa 0x100000000: one 2 MiB leaf),
  //             B [0x400000, 0x5fffff] m+0x200000 r (pa 0x100200000: one 2 MiB leaf).
  void DomainWorld(IoasOptions options = {}) {
    Basic(options);
    ASSERT_TRUE(Attach("a", "nic", "d").ok());
    ASSERT_TRUE(MapFixed("a", 0x200000, 0x200000, "m", 0, Prot::kReadWrite).ok());
    ASSERT_TRUE(MapFixed("a", 0x400000, 0x200000, "m", 0x200000, Prot::kRead).ok());
  }

  // ---- checkers (use through the macros below) ----

  void ExpectClean(const char* what, const char* file, int line) {
    for (const auto& v : engine->check())
      ADD_FAILURE_AT(file, line) << "after " << what << ": invariant " << to_string(v.invariant)
                                 << " violated in ioas '" << v.ioas << "': " << v.detail
                                 << (v.witness ? " at " + spec_text::hex(*v.witness)
                                               : std::string());
  }

  template <typename F>
  auto Must(F&& op, const char* what, const char* file, int line) {
    auto r = op();
    if (!r.ok()) ADD_FAILURE_AT(file, line) << what << " failed: " << to_string(r.error());
    ExpectClean(what, file, line);
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
    const std::string before = spec_text::describe(*engine);
    auto r = op();
    const std::string want = errno_name(code);
    if (r.ok()) {
      ADD_FAILURE_AT(file, line) << what << " succeeded, expected " << want;
    } else {
      if (r.code() != code)
        ADD_FAILURE_AT(file, line)
            << what << " gave " << to_string(r.error()) << ", expected " << want;
      if (r.error().message.empty())
        ADD_FAILURE_AT(file, line) << what << ": error without a message";
      for (const std::string& name : names)
        if (r.error().message.find(name) == std::string::npos)
          ADD_FAILURE_AT(file, line) << what << ": the message \"" << r.error().message
                                     << "\" does not name " << name;
    }
    const std::string after = spec_text::describe(*engine);
    if (before != after)
      ADD_FAILURE_AT(file, line) << what << " (" << spec_text::show(r)
                                 << ") changed the state:\nbefore:\n"
                                 << before << "after:\n"
                                 << after;
    ExpectClean(what, file, line);
  }

  template <typename F>
  void ExpectFailsPartDone(int code, F&& op, const char* what, const char* file, int line) {
    const std::string before = spec_text::describe(*engine);
    auto r = op();
    if (r.ok())
      ADD_FAILURE_AT(file, line) << what << " succeeded, expected " << errno_name(code);
    else if (r.code() != code || r.error().message.empty())
      ADD_FAILURE_AT(file, line) << what << " gave " << to_string(r.error()) << ", expected "
                                 << errno_name(code) << " with a message";
    if (spec_text::describe(*engine) == before)
      ADD_FAILURE_AT(file, line) << what << " changed nothing; the kernel's unmap removes what it reached";
    ExpectClean(what, file, line);
  }

  template <typename F>
  void ExpectNoChange(F&& op, const char* what, const char* file, int line) {
    const std::string before = spec_text::describe(*engine);
    auto r = op();
    if (!r.ok()) ADD_FAILURE_AT(file, line) << what << " failed: " << to_string(r.error());
    const std::string after = spec_text::describe(*engine);
    if (before != after)
      ADD_FAILURE_AT(file, line) << what << " should be a no-op, changed the state:\nbefore:\n"
                                 << before << "after:\n"
                                 << after;
    ExpectClean(what, file, line);
  }

  // ---- builders ----

  Status Mem(std::string name, u64 va, u64 len, u64 pa, bool writable = true) {
    return engine->add_memory(MemorySource{std::move(name), va, len, pa, writable});
  }
  Result<u64> MapFixed(std::string_view ioas, u64 iova, u64 len, std::string src, u64 offset,
                       Prot prot = Prot::kReadWrite) {
    return engine->map(ioas, MapArgs{iova, len, std::move(src), offset, prot});
  }
  Result<u64> MapAuto(std::string_view ioas, u64 len, std::string src, u64 offset,
                      Prot prot = Prot::kReadWrite) {
    return engine->map(ioas, MapArgs{std::nullopt, len, std::move(src), offset, prot});
  }
  Status Attach(std::string_view ioas, std::string dev, std::string dom,
                std::vector<ResvRegion> resv = {}, std::optional<Format> fmt = std::nullopt,
                std::optional<Range> aperture = std::nullopt,
                std::optional<u64> pgsizes = std::nullopt) {
    return engine->attach(
        ioas, AttachArgs{std::move(dev), std::move(dom), fmt, aperture, pgsizes, std::move(resv), {}});
  }
  Result<std::uint32_t> Pin(std::string_view ioas, u64 iova, u64 len, bool write = false,
                            bool release = true) {
    return engine->pin(ioas, PinArgs{iova, len, write, release});
  }
  Result<u64> CopyFixed(std::string_view ioas, std::string from, u64 src_iova, u64 len,
                        u64 dst_iova, Prot prot = Prot::kReadWrite) {
    return engine->copy(ioas, CopyArgs{std::move(from), src_iova, len, dst_iova, prot});
  }
  Result<u64> CopyAuto(std::string_view ioas, std::string from, u64 src_iova, u64 len,
                       Prot prot = Prot::kReadWrite) {
    return engine->copy(ioas, CopyArgs{std::move(from), src_iova, len, std::nullopt, prot});
  }
  Status Allow(std::string_view ioas, std::vector<Range> ranges) {
    return engine->allow(ioas, ranges);
  }

  // ---- views ----

  IoasState Snap(std::string_view ioas) {
    auto st = engine->snapshot(ioas);
    if (!st.ok()) {
      ADD_FAILURE() << "snapshot " << ioas << ": " << to_string(st.error());
      return {};
    }
    return st.value();
  }
  // "0x1000-0x1fff rw m+0x0; 0x2000-0x2fff r m+0x1000 pins=1"
  std::string Areas(std::string_view ioas) {
    std::string s;
    for (const auto& a : Snap(ioas).areas)
      s += (s.empty() ? "" : "; ") + spec_text::describe_area(a);
    return s;
  }
  // "zero-page 0x0-0xfff; user u 0x10000-0x1ffff" in snapshot order (owner, range).
  std::string Reserved(std::string_view ioas) {
    std::string s;
    for (const auto& r : Snap(ioas).reserved)
      s += (s.empty() ? "" : "; ") + to_string(r.owner) + " " + to_string(r.range);
    return s;
  }
  std::string Allowed(std::string_view ioas) { return to_string(Snap(ioas).allowed); }
  // "0x1000-0xffffffffffffffff align 0x1"
  std::string Ranges(std::string_view ioas) {
    auto r = engine->ranges(ioas);
    if (!r.ok()) return to_string(r.error());
    return to_string(r.value().ranges) + " align " + spec_text::hex(r.value().alignment);
  }
  u64 Alignment(std::string_view ioas) { return Snap(ioas).iova_alignment; }
  std::string Pins(std::string_view ioas) {
    std::string s;
    for (const auto& p : Snap(ioas).pins)
      s += (s.empty() ? "" : "; ") + std::to_string(p.id) + " " + to_string(p.iova) +
           (p.write ? " write" : " read") + (p.release ? "" : " hold");
    return s;
  }
  u64 UseCount(std::string_view mem) {
    for (const auto& m : engine->memories())
      if (m.source.name == mem) return m.use_count;
    ADD_FAILURE() << "no memory source " << mem;
    return ~u64{0};
  }
  std::optional<DomainInfo> Domain(std::string_view ioas, std::string_view dom) {
    for (const auto& d : Snap(ioas).domains)
      if (d.name == dom) return d;
    return std::nullopt;
  }
  // "pa 0x100000123 rw", "fault", or the error.
  std::string Translate(std::string_view dom, u64 iova) {
    auto t = engine->translate(dom, iova);
    if (!t.ok()) return to_string(t.error());
    if (!t.value()) return "fault";
    return "pa " + spec_text::hex(t.value()->pa) + " " + to_string(t.value()->prot);
  }
  // "ok" or "fault 0x..." or the error; check() is asserted after it.
  std::string Dma(std::string_view dom, DmaDir dir, u64 iova, u64 len) {
    auto r = engine->dma(dom, dir, iova, len);
    ExpectClean("dma", __FILE__, __LINE__);
    if (!r.ok()) return to_string(r.error());
    return r.value().faulted ? "fault " + spec_text::hex(r.value().fault_iova) : "ok";
  }
  // The dirty ranges as text ("" when clean), or the error.
  std::string Dirty(std::string_view dom, u64 iova, u64 len, u64 pgsize = kPage,
                    bool keep = false) {
    auto r = engine->read_dirty(dom, iova, len, pgsize, keep);
    ExpectClean("read_dirty", __FILE__, __LINE__);
    if (!r.ok()) return to_string(r.error());
    return to_string(r.value());
  }
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
