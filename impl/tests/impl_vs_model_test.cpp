// A quick lockstep of impl against the model (the full RapidCheck harness is
// differential/): random operations biased to a small IOVA space, where
// holes, boundaries and large leaves are dense, with a fixed seed. After
// every operation both must give the same result and the same observable
// state; impl runs with verify() after every call. Also checks that clone()
// gives an independent engine that behaves the same.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "ioas/engine.hpp"
#include "ioas/impl.hpp"

namespace ioas {
namespace {

template <typename T>
std::string show(const Result<T>& r) {
  if (!r.ok()) return std::string("error ") + errno_name(r.code());
  if constexpr (std::is_same_v<T, void>) {
    return "ok";
  } else if constexpr (std::is_same_v<T, u64> || std::is_same_v<T, std::uint32_t>) {
    return "value " + std::to_string(r.value());
  } else if constexpr (std::is_same_v<T, std::vector<Range>>) {
    return "ranges " + to_string(r.value());
  } else if constexpr (std::is_same_v<T, DmaOutcome>) {
    return r.value().faulted ? "fault " + std::to_string(r.value().fault_iova) : "ok";
  } else if constexpr (std::is_same_v<T, std::optional<Translation>>) {
    return r.value() ? "pa " + std::to_string(r.value()->pa) + to_string(r.value()->prot) : "fault";
  } else {
    return "ok";
  }
}
template <>
std::string show(const Status& r) {
  return r.ok() ? "ok" : std::string("error ") + errno_name(r.code());
}

std::string describe(const IoasState& st) {
  std::string s = "align " + std::to_string(st.iova_alignment) + " next-pin " + std::to_string(st.next_pin_id) + "\n";
  for (const auto& a : st.areas)
    s += " area " + to_string(a.iova) + " " + to_string(a.prot) + " " + a.source + "+" + std::to_string(a.offset) +
         " pins " + std::to_string(a.pins) + "\n";
  for (const auto& r : st.reserved) s += " reserved " + to_string(r.owner) + " " + to_string(r.range) + "\n";
  for (const auto& r : st.allowed) s += " allowed " + to_string(r) + "\n";
  for (const auto& p : st.pins) s += " pin " + std::to_string(p.id) + " " + to_string(p.iova) + "\n";
  for (const auto& d : st.domains) {
    s += " domain " + d.name + " " + to_string(d.aperture) + " pg " + std::to_string(d.pgsize_bitmap) + " dirty " +
         std::to_string(static_cast<int>(d.dirty));
    for (const auto& x : d.devices) s += " " + x;
    s += "\n";
  }
  return s;
}

template <typename R>
std::string msg(const R& r) { return r.ok() ? "" : r.error().message; }

class Lockstep {
 public:
  explicit Lockstep(std::uint64_t seed) : rng_(seed), model_(make_model_engine()), impl_(make_checked_engine()) {}

  u64 below(u64 n) { return n ? rng_() % n : 0; }
  bool coin(int one_in) { return below(one_in) == 0; }

  // Mostly 4K multiples in the first 8 MiB (2M leaves exist there), some
  // odd values and some at the top of the space.
  u64 addr() {
    if (!known_.empty() && below(10) < 4) return known_[below(known_.size())] + (coin(4) ? below(3) * kPage : 0);
    switch (below(10)) {
      case 0: return below(0x10000);
      case 1: return kMaxIova - below(3) * kPage - below(2);
      case 2: return below(4) * k2M;
      default: return below(2048) * kPage;
    }
  }
  u64 len() {
    switch (below(8)) {
      case 0: return below(3) * 0x800 + below(2);
      case 1: return k2M * (1 + below(2));
      case 2: return kMaxIova - below(2);
      default: return (1 + below(16)) * kPage;
    }
  }
  std::string ioas() { return below(4) ? "a" : "b"; }
  std::string mem() {
    static const char* names[] = {"m", "big", "ro", "odd"};
    return names[below(4)];
  }
  Prot prot() { return below(8) ? (below(3) ? Prot::kReadWrite : Prot::kRead) : Prot::kWrite; }

  template <typename F>
  void both(const std::string& what, F&& f) {
    auto a = f(*model_);
    auto b = f(*impl_);
    if constexpr (std::is_same_v<decltype(a), Result<u64>>) {
      if (a.ok() && (what == "map" || what == "copy")) known_.push_back(a.value());
    }
    ++outcomes_[what + " " + show(a).substr(0, show(a).find(' ') == 0 ? 0 : std::min(show(a).size(), show(a).rfind("error", 0) == 0 ? show(a).size() : std::size_t{2}))];
    ASSERT_EQ(show(a), show(b)) << "step " << step_ << ": " << what << "\nmodel: " << msg(a) << "\nimpl:  " << msg(b);
    compare(what);
  }

  void compare(const std::string& what) {
    ASSERT_EQ(model_->ioas_names(), impl_->ioas_names()) << what;
    for (const auto& n : model_->ioas_names()) {
      auto a = model_->snapshot(n), b = impl_->snapshot(n);
      ASSERT_TRUE(a.ok() && b.ok());
      ASSERT_EQ(describe(a.value()), describe(b.value())) << "step " << step_ << ": " << what << ": snapshot of " << n;
      ASSERT_TRUE(a.value() == b.value()) << "step " << step_ << ": " << what << ": snapshot of " << n << " differs";
      ASSERT_TRUE(model_->ranges(n).value() == impl_->ranges(n).value()) << what;
    }
    ASSERT_TRUE(model_->memories() == impl_->memories()) << "step " << step_ << ": " << what;
    ASSERT_TRUE(impl_->check().empty()) << what;
  }

  void step() {
    ++step_;
    const std::string io_ = ioas();
    switch (below(20)) {
      case 0:
      case 1:
      case 2: {
        MapArgs m{std::nullopt, len(), mem(), below(4) ? below(64) * kPage : below(0x3000), prot()};
        if (below(2)) m.iova = addr();
        both("map", [&](Engine& e) { return e.map(io_, m); });
        break;
      }
      case 3:
      case 4: {
        u64 i = addr(), l = len();
        if (coin(6)) i = 0, l = kMaxIova;
        both("unmap", [&](Engine& e) { return e.unmap(io_, i, l); });
        break;
      }
      case 5: {
        u64 i = addr() + (coin(3) ? kPage - 1 : below(2) * 0x7ff);
        both("cut", [&](Engine& e) { return e.cut(io_, i); });
        break;
      }
      case 6: {
        Range r{addr(), 0};
        r.last = r.start + len() - 1;
        std::string owner = below(6) ? (below(2) ? "u1" : "u2") : "";
        both("reserve", [&](Engine& e) { return e.reserve(io_, r, owner); });
        break;
      }
      case 7: {
        std::string owner = below(2) ? "u1" : "u2";
        both("unreserve", [&](Engine& e) { return e.unreserve(io_, owner); });
        break;
      }
      case 8: {
        std::vector<Range> rs;
        for (u64 n = below(3); n > 0; --n) rs.push_back(Range{addr(), 0}), rs.back().last = rs.back().start + len() - 1;
        both("allow", [&](Engine& e) { return e.allow(io_, rs); });
        break;
      }
      case 9:
      case 10: {
        AttachArgs a;
        a.dev = "d" + std::to_string(below(4));
        a.dom = "D" + std::to_string(below(3));
        if (coin(3)) a.fmt = below(3) ? Format::kX86_64 : Format::kTce;
        if (coin(3)) a.aperture = Range{below(2) * k2M, below(2) ? (u64{1} << 48) - 1 : 0x7fffffff};
        if (coin(3)) a.pgsize_bitmap = below(2) ? k4K : (k4K | k2M);
        if (coin(3)) a.resv.push_back(ResvRegion{Range{addr(), 0}, static_cast<ResvType>(below(4))}),
                     a.resv.back().range.last = a.resv.back().range.start + len() - 1;
        std::string io = ioas();
        both("attach", [&](Engine& e) { return e.attach(io, a); });
        break;
      }
      case 11: {
        std::string d = "d" + std::to_string(below(4));
        both("detach", [&](Engine& e) { return e.detach(d); });
        break;
      }
      case 12: {
        PinArgs p{addr(), len(), coin(2), !coin(3)};
        both("pin", [&](Engine& e) { return e.pin(io_, p); });
        break;
      }
      case 13: {
        std::uint32_t id = static_cast<std::uint32_t>(below(6));
        both("unpin", [&](Engine& e) { return e.unpin(io_, id); });
        break;
      }
      case 14: {
        CopyArgs c{below(2) ? "a" : "b", addr(), len(), std::nullopt, prot()};
        if (coin(2)) c.dst_iova = addr();
        both("copy", [&](Engine& e) { return e.copy(io_, c); });
        break;
      }
      case 15: {
        std::string d = "D" + std::to_string(below(3));
        u64 i = addr(), l = len();
        DmaDir dir = coin(3) ? DmaDir::kRead : DmaDir::kWrite;
        both("dma", [&](Engine& e) { return e.dma(d, dir, i, l); });
        both("translate", [&](Engine& e) { return e.translate(d, i); });
        break;
      }
      case 16: {
        std::string d = "D" + std::to_string(below(3));
        DirtyMode m = static_cast<DirtyMode>(below(3));
        both("dirty", [&](Engine& e) { return e.set_dirty_tracking(d, m); });
        break;
      }
      case 17: {
        std::string d = "D" + std::to_string(below(3));
        u64 pg = coin(4) ? k2M : (coin(8) ? 3 : kPage);
        u64 i = addr() & ~(pg - 1), l = coin(3) ? 8 * k2M : (1 + below(64)) * kPage;
        bool keep = coin(3);
        both("read-dirty", [&](Engine& e) { return e.read_dirty(d, i, l, pg, keep); });
        break;
      }
      case 18: {
        u64 i = addr() + below(0x1000);
        std::string io = ioas();
        both("uva", [&](Engine& e) { return e.uva(io, i); });
        const std::string m = coin(20) ? mem() : "nosuch";
        both("unmem", [&](Engine& e) { return e.remove_memory(m); });
        break;
      }
      case 19: {
        // IOMMU_OPTION_HUGE_PAGES set (no trace line: driven here only).
        const bool on = coin(2);
        both("huge-pages", [&](Engine& e) { return e.set_huge_pages(io_, on); });
        compare_leaves(io_);
        break;
      }
    }
  }

  // The leaves of every domain of `io` over every area (the first 256 of
  // each): the same on both engines.
  void compare_leaves(const std::string& io) {
    auto st = model_->snapshot(io);
    ASSERT_TRUE(st.ok());
    for (const auto& d : st.value().domains)
      for (const auto& a : st.value().areas) {
        const u64 minpg = d.pgsize_bitmap & (~d.pgsize_bitmap + 1);
        Range r = a.iova;
        if (r.length() / minpg > 256) r.last = r.start + 256 * minpg - 1;
        auto la = model_->leaves(d.name, r), lb = impl_->leaves(d.name, r);
        ASSERT_EQ(la.code(), lb.code()) << "step " << step_ << ": leaves of " << d.name;
        if (la.ok()) {
          ASSERT_TRUE(la.value() == lb.value()) << "step " << step_ << ": leaves of " << d.name << " over " << to_string(r);
        }
      }
  }

  void setup() {
    both("ioas a", [](Engine& e) { return e.create_ioas("a", IoasOptions{}); });
    const bool huge = coin(2);
    both("ioas b", [&](Engine& e) { return e.create_ioas("b", IoasOptions{ZeroPage::kAllowed, huge}); });
    both("mem m", [](Engine& e) { return e.add_memory(MemorySource{"m", 0x40000000, 0x1000000, 0x100000000, true}); });
    both("mem big", [](Engine& e) { return e.add_memory(MemorySource{"big", 0x80000000, 0x40000000, 0x80000000, true}); });
    both("mem ro", [](Engine& e) { return e.add_memory(MemorySource{"ro", 0x7f0000001000, 0x100000, 0x5000, false}); });
    both("mem odd", [](Engine& e) { return e.add_memory(MemorySource{"odd", 0x12345800, 0x100000, 0x800, true}); });
  }

  Engine& impl() { return *impl_; }
  Engine& model() { return *model_; }
  void swap_impl(std::unique_ptr<Engine> e) { impl_ = std::move(e); }

 private:
  std::mt19937_64 rng_;
  std::unique_ptr<Engine> model_, impl_;
  int step_ = 0;
  std::vector<u64> known_;

 public:
  static inline std::map<std::string, int> outcomes_;
};

TEST(ImplVsModel, RandomOperationsGiveTheSameAnswers) {
  for (std::uint64_t seed = 1; seed <= 60; ++seed) {
    Lockstep l(seed);
    l.setup();
    if (::testing::Test::HasFatalFailure()) return;
    for (int i = 0; i < 600; ++i) {
      l.step();
      if (::testing::Test::HasFatalFailure()) {
        ADD_FAILURE() << "seed " << seed;
        return;
      }
    }
  }
}

// Prints how often each operation gave each outcome (errno paths covered).
TEST(ImplVsModel, ZOutcomeCounts) {
  std::string line;
  for (const auto& [k, v] : Lockstep::outcomes_) line += k + "=" + std::to_string(v) + "  ";
  std::printf("%s\n", line.c_str());
}

TEST(ImplVsModel, CloneIsIndependentAndEqual) {
  Lockstep l(99);
  l.setup();
  for (int i = 0; i < 300; ++i) {
    l.step();
    if (::testing::Test::HasFatalFailure()) return;
  }
  auto c = l.impl().clone();
  ASSERT_NE(c, nullptr);
  for (const auto& n : l.impl().ioas_names()) EXPECT_TRUE(c->snapshot(n).value() == l.impl().snapshot(n).value());
  // Carry on with the clone in place of the original: still in lockstep.
  l.swap_impl(std::move(c));
  for (int i = 0; i < 300; ++i) {
    l.step();
    if (::testing::Test::HasFatalFailure()) return;
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace ioas
