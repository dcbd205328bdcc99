#include "checker.hpp"

#include <z3++.h>

#include <algorithm>
#include <map>
#include <new>
#include <optional>
#include <set>

#include "bv.hpp"
#include "ioas/core/text.hpp"
#include "ioas/rules.hpp"

namespace ioas::checker {
namespace {

namespace A = ioas::arith;
using proofs::Bool;
using proofs::Bv;

struct Clause {
  Invariant inv;
  std::string ioas;
  std::string detail;
  Bool holds;
  std::optional<Bool> witness_when;  // over the symbolic IOVA `x`
  std::optional<u64> witness;        // when there is no condition
};

// Out of memory inside Z3: Z3 sets Z3_MEMOUT_FAIL on the context and answers
// a null term, and a wrapper of the C++ API that does not look at the code
// hands that term to the next call, which fails with an unrelated message
// ("ast is not an expression"). Each context's error handler records the
// out-of-memory here, and check_state turns a Z3 failure after it into
// std::bad_alloc.
thread_local bool t_z3_out_of_memory = false;
void note_z3_error(Z3_context, Z3_error_code e) {
  if (e == Z3_MEMOUT_FAIL) t_z3_out_of_memory = true;
}

// A Z3 context made and checked here: out of memory, Z3_mk_context answers
// null, and z3::context's own constructor would then crash inside Z3
// (Z3_set_error_handler on the null context). A null context is
// std::bad_alloc instead.
class Context {
 public:
  // After ctx_, whose constructor clears the handler.
  Context() : raw_(make()), ctx_(raw_) { Z3_set_error_handler(raw_, note_z3_error); }
  ~Context() { Z3_del_context(raw_); }  // ctx_ only lets go of it afterwards
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;
  z3::context& operator()() { return ctx_(); }

 private:
  static Z3_context make() {
    Z3_config cfg = Z3_mk_config();
    if (!cfg) throw std::bad_alloc();
    Z3_context c = Z3_mk_context_rc(cfg);
    Z3_del_config(cfg);
    if (!c) throw std::bad_alloc();
    return c;
  }
  Z3_context raw_;
  z3::scoped_context ctx_;
};

// One context per thread, made on first use and kept: making a context costs
// more than checking a small state. A check's terms and solvers go with its
// Builder, so nothing of one check stays in the context for the next. (A
// context that could not be made throws, and the next call tries again.)
z3::context& thread_context() {
  thread_local Context ctx;
  return ctx();
}

class Builder {
 public:
  Builder() : ctx_(thread_context()), x_{ctx_.bv_const("x", 64)} {}

  z3::context& ctx() { return ctx_; }
  Bv k(u64 v) { return Bv{ctx_.bv_val(static_cast<std::uint64_t>(v), 64)}; }
  Bool b(bool v) { return Bool{ctx_.bool_val(v)}; }
  const Bv& x() const { return x_; }
  Bool in(const Bv& y, const Range& r) { return k(r.start) <= y && y <= k(r.last); }

  void add(Invariant inv, const std::string& ioas, std::string detail, Bool holds,
           std::optional<Bool> when = std::nullopt, std::optional<u64> witness = std::nullopt) {
    clauses_.push_back(Clause{inv, ioas, std::move(detail), holds, when, witness});
  }

  // The SMT core alone (Z3_mk_simple_solver), with assert_and_track and
  // unsat cores as the default solver: the clauses are ground bit-vector
  // facts and the witness queries small, and the default solver's set-up
  // (its tactics, chosen per check) dominated: a campaign with a Z3 check
  // after every whole comparison runs about 9 times faster on the core.
  z3::solver solver() { return z3::solver(ctx_, z3::solver::simple()); }

  Report run() {
    Report rep;
    rep.clauses = static_cast<int>(clauses_.size());
    std::set<std::size_t> broken;
    for (;;) {
      z3::solver s = solver();
      std::map<std::string, std::size_t> by_name;
      for (std::size_t i = 0; i < clauses_.size(); ++i) {
        if (broken.count(i)) continue;
        const std::string name = "c" + std::to_string(i);
        by_name[name] = i;
        s.add(clauses_[i].holds.e, name.c_str());  // assert_and_track under `name`
      }
      ++rep.solver_calls;
      if (s.check() != z3::unsat) break;
      const z3::expr_vector core = s.unsat_core();
      std::size_t before = broken.size();
      for (unsigned i = 0; i < core.size(); ++i) {
        auto it = by_name.find(core[i].to_string());
        if (it != by_name.end()) broken.insert(it->second);
      }
      if (broken.size() == before) break;  // nothing named: cannot make progress
    }
    for (std::size_t i : broken) {
      const Clause& c = clauses_[i];
      std::optional<u64> w = c.witness;
      if (c.witness_when) {
        z3::solver s = solver();
        s.add(c.witness_when->e);
        ++rep.solver_calls;
        if (s.check() == z3::sat) {
          std::uint64_t v = 0;
          if (s.get_model().eval(x_.e, true).is_numeral_u64(v)) w = v;
        }
      }
      rep.violations.push_back(Violation{c.inv, c.ioas, c.detail, w});
    }
    std::stable_sort(rep.violations.begin(), rep.violations.end(),
                     [](const Violation& a, const Violation& b) { return a.invariant < b.invariant; });
    return rep;
  }

 private:
  z3::context& ctx_;
  Bv x_;
  std::vector<Clause> clauses_;
};

std::string str(const Range& r) { return to_string(r); }

// The iova_alignment SPEC derives for s (invariant 5), on plain numbers for
// the message; the clause itself computes it on bit-vectors.
u64 derived_alignment(const IoasState& s) {
  u64 want = s.options.huge_pages ? 1 : kPage;
  for (const auto& dm : s.domains) want = std::max(want, A::lowest_bit(dm.pgsize_bitmap));
  if (!s.pins.empty()) want = std::max(want, kPage);
  return want;
}

// Invariant 1 over one list: each range valid, each after the previous.
void sorted_list(Builder& b, const std::string& io, const std::string& what, const std::vector<Range>& rs) {
  for (std::size_t i = 0; i < rs.size(); ++i) {
    const Bv s = b.k(rs[i].start), l = b.k(rs[i].last);
    b.add(Invariant::kSorted, io,
          what + " " + str(rs[i]) + " has start > last", s <= l,
          std::nullopt, rs[i].start);
    if (i == 0) continue;
    // (Read only when the clause breaks: the two overlap, or are out of order.)
    const std::string wrong = rs[i - 1].start <= rs[i].last && rs[i].start <= rs[i - 1].last
                                  ? str(rs[i - 1]) + " overlaps " + str(rs[i])
                                  : str(rs[i - 1]) + " comes before " + str(rs[i]) + ", which starts lower";
    b.add(Invariant::kSorted, io, what + " " + wrong, b.k(rs[i - 1].last) < s,
          b.in(b.x(), rs[i - 1]) && b.in(b.x(), rs[i]), rs[i].start);
  }
}

Report check_terms(const state::StateDump& d);

}  // namespace

Report check_state(const state::StateDump& d) {
  t_z3_out_of_memory = false;
  try {
    return check_terms(d);
  } catch (const z3::exception&) {
    if (t_z3_out_of_memory) throw std::bad_alloc();
    throw;
  }
}

namespace {

using Sources = std::map<std::string, const MemoryInfo*>;

// 1. sorted: areas, allowed, each owner's reserved ranges; 2. area-reserved;
// 3. allowed-reserved; 4. zero-iova, under the zero-page policy in force
// (kernel mode: the kernel's, whatever the state file's zero_page says).
void ranges_apart(Builder& b, const IoasState& s) {
  const std::string& io = s.name;
  std::vector<Range> areas;
  for (const auto& a : s.areas) areas.push_back(a.iova);
  sorted_list(b, io, "areas:", areas);
  sorted_list(b, io, "allowed:", s.allowed);
  std::map<Owner, std::vector<Range>> by_owner;
  for (const auto& r : s.reserved) by_owner[r.owner].push_back(r.range);
  for (const auto& [o, rs] : by_owner) sorted_list(b, io, "reserved of " + to_string(o) + ":", rs);
  for (const auto& a : s.areas)
    for (const auto& r : s.reserved)
      b.add(Invariant::kAreaReserved, io,
            "area " + str(a.iova) + " overlaps reserved " + str(r.range) + " of " + to_string(r.owner),
            !A::overlaps(b.k(a.iova.start), b.k(a.iova.last), b.k(r.range.start), b.k(r.range.last)),
            b.in(b.x(), a.iova) && b.in(b.x(), r.range));
  for (const auto& al : s.allowed)
    for (const auto& r : s.reserved)
      b.add(Invariant::kAllowedReserved, io,
            "allowed " + str(al) + " overlaps reserved " + str(r.range) + " of " + to_string(r.owner),
            !A::overlaps(b.k(al.start), b.k(al.last), b.k(r.range.start), b.k(r.range.last)),
            b.in(b.x(), al) && b.in(b.x(), r.range));
  if (rules_for(s.options.mode).forced_zero_page.value_or(s.options.zero_page) == ZeroPage::kReserved)
    for (const auto& a : s.areas)
      b.add(Invariant::kZeroIova, io, "area " + str(a.iova) + " contains IOVA 0", !b.in(b.k(0), a.iova),
            std::nullopt, u64{0});
}

// 5. alignment: the value SPEC defines, and every area at it.
void aligned(Builder& b, const IoasState& s, const Sources& mems) {
  const std::string& io = s.name;
  Bv want = b.k(s.options.huge_pages ? 1 : kPage);
  for (const auto& dm : s.domains) {
    Bv minp = A::lowest_bit(b.k(dm.pgsize_bitmap));
    want = A::select(want < minp, minp, want);
  }
  if (!s.pins.empty()) want = A::select(want < b.k(kPage), b.k(kPage), want);
  b.add(Invariant::kAlignment, io,
        "iova_alignment is " + hex(s.iova_alignment) + ", the spec derives " + hex(derived_alignment(s)) +
            " for this state",
        b.k(s.iova_alignment) == want);
  const Bv align = b.k(s.iova_alignment);
  for (const auto& a : s.areas) {
    const std::string not_multiple = ", not a multiple of iova_alignment " + hex(s.iova_alignment);
    b.add(Invariant::kAlignment, io, "area " + str(a.iova) + " starts at " + hex(a.iova.start) + not_multiple,
          A::is_aligned(b.k(a.iova.start), align), std::nullopt, a.iova.start);
    b.add(Invariant::kAlignment, io, "area " + str(a.iova) + " has length " + hex(a.iova.length()) + not_multiple,
          A::is_aligned(b.k(a.iova.last) - b.k(a.iova.start) + b.k(1), align), std::nullopt, a.iova.start);
    auto m = mems.find(a.source);
    if (m != mems.end())
      b.add(Invariant::kAlignment, io,
            "area " + str(a.iova) + " has uaddr mod PAGE " + hex((m->second->source.va + a.offset) % kPage) +
                not_multiple,
            A::is_aligned((b.k(m->second->source.va) + b.k(a.offset)) & b.k(kPage - 1), align), std::nullopt,
            a.iova.start);
  }
}

// 6. aperture, and the mappability part of 7: each domain has a device,
// and holds every area inside its aperture, mappable with its page sizes.
void in_domains(Builder& b, const IoasState& s, const Sources& mems) {
  const std::string& io = s.name;
  for (const auto& dm : s.domains) {
    b.add(Invariant::kTranslation, io, "domain " + dm.name + " has no device", b.b(!dm.devices.empty()));
    const Bv minp = A::lowest_bit(b.k(dm.pgsize_bitmap));
    for (const auto& a : s.areas) {
      b.add(Invariant::kAperture, io,
            "area " + str(a.iova) + " lies outside the aperture " + str(dm.aperture) + " of domain " + dm.name,
            A::contains(b.k(dm.aperture.start), b.k(dm.aperture.last), b.k(a.iova.start), b.k(a.iova.last)),
            b.in(b.x(), a.iova) && !b.in(b.x(), dm.aperture));
      auto m = mems.find(a.source);
      if (m == mems.end()) continue;
      const Bv pa = b.k(m->second->source.pa) + b.k(a.offset);
      b.add(Invariant::kTranslation, io,
            "area " + str(a.iova) + " at pa " + hex(m->second->source.pa + a.offset) +
                " cannot be mapped with the page sizes of domain " + dm.name + " (smallest " +
                hex(A::lowest_bit(dm.pgsize_bitmap)) + ")",
            A::is_aligned(b.k(a.iova.start), minp) && A::is_aligned(b.k(a.iova.last) + b.k(1), minp) &&
                A::is_aligned(pa, minp),
            std::nullopt, a.iova.start);
    }
  }
}

// For 8: every area uses its source once; every pin each distinct source of
// the areas it covers once.
void count_uses(const IoasState& s, std::map<std::string, u64>& uses) {
  for (const auto& a : s.areas) uses[a.source]++;
  for (const auto& p : s.pins) {
    std::set<std::string> srcs;
    for (const auto& a : s.areas)
      if (a.iova.overlaps(p.iova)) srcs.insert(a.source);
    for (const auto& src : srcs) uses[src]++;
  }
}

// 7. translation: the sample gives the area's physical address and
// permission, or faults outside every area.
void translates(Builder& b, const state::TranslationSample& t, const std::map<std::string, const IoasState*>& ioas_of_domain,
                const Sources& mems) {
  auto it = ioas_of_domain.find(t.domain);
  if (it == ioas_of_domain.end()) {
    b.add(Invariant::kTranslation, "", "a translation sample names domain " + t.domain + ", which no IOAS has",
          b.b(false), std::nullopt, t.iova);
    return;
  }
  const IoasState& s = *it->second;
  const AreaInfo* area = nullptr;
  for (const auto& a : s.areas)
    if (a.iova.contains(t.iova)) area = &a;
  const std::string where = "domain " + t.domain + " at " + hex(t.iova);
  if (!area) {
    b.add(Invariant::kTranslation, s.name,
          where + " translates to " + (t.result ? hex(t.result->pa) : std::string("?")) + ", but no area is there",
          b.b(!t.result), std::nullopt, t.iova);
    return;
  }
  auto m = mems.find(area->source);
  if (m == mems.end()) return;  // use-count reports the unknown source
  const Bv want_pa = b.k(m->second->source.pa) + b.k(area->offset) + (b.k(t.iova) - b.k(area->iova.start));
  // The permission the domain's format gives the area's prot (a write-only
  // area is rw in an x86-64 or arm-lpae leaf: leaf_prot).
  Prot want_prot = area->prot;
  for (const auto& dom : s.domains)
    if (dom.name == t.domain) want_prot = leaf_prot(dom.fmt, area->prot);
  const Bool got = t.result ? (b.k(t.result->pa) == want_pa && b.b(t.result->prot == want_prot)) : b.b(false);
  b.add(Invariant::kTranslation, s.name,
        where + (t.result ? " translates to " + hex(t.result->pa) + " " + to_string(t.result->prot) : " faults") +
            ", the area gives " + hex(m->second->source.pa + area->offset + (t.iova - area->iova.start)) + " " +
            to_string(want_prot),
        got, std::nullopt, t.iova);
}

// 8. use-count: each source counts the uses its areas and pins make, and
// no area or pin uses a source that is not registered.
void use_counts(Builder& b, const state::StateDump& d, std::map<std::string, u64> uses) {
  for (const auto& m : d.memories) {
    const u64 n = uses.count(m.source.name) ? uses[m.source.name] : 0;
    b.add(Invariant::kUseCount, "",
          "memory source " + m.source.name + " counts " + std::to_string(m.use_count) +
              " uses, its areas and pins make " + std::to_string(n),
          b.k(m.use_count) == b.k(n));
    uses.erase(m.source.name);
  }
  for (const auto& [n, c] : uses)
    b.add(Invariant::kUseCount, "", "areas or pins use memory source " + n + ", which is not registered", b.b(false));
}

// The clauses, in the order the report lists a kind's violations: per IOAS,
// then the translation samples, then the use counts.
Report check_terms(const state::StateDump& d) {
  Builder b;
  Sources mems;
  for (const auto& m : d.memories) mems[m.source.name] = &m;
  std::map<std::string, u64> uses;
  std::map<std::string, const IoasState*> ioas_of_domain;
  for (const IoasState& s : d.ioases) {
    ranges_apart(b, s);
    aligned(b, s, mems);
    in_domains(b, s, mems);
    for (const auto& dm : s.domains) ioas_of_domain[dm.name] = &s;
    count_uses(s, uses);
  }
  for (const auto& t : d.translations) translates(b, t, ioas_of_domain, mems);
  use_counts(b, d, std::move(uses));
  return b.run();
}

}  // namespace

std::vector<Violation> check_engine(const Engine& e) { return check_state(state::dump_engine(e)).violations; }

}  // namespace ioas::checker
