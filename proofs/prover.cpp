#include "prover.hpp"

#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <ostream>
#include <unordered_set>

namespace ioas::proofs {
namespace {

std::string hex_of(const z3::model& m, const z3::expr& e) {
  z3::expr v = m.eval(e, true);
  if (v.is_bool()) return v.is_true() ? "true" : "false";
  std::uint64_t x = 0;
  if (!v.is_numeral_u64(x)) return v.to_string();
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, x);
  return buf;
}

}  // namespace

unsigned term_size(const z3::expr& e) {
  std::unordered_set<unsigned> seen;
  std::vector<z3::expr> todo{e};
  while (!todo.empty()) {
    z3::expr x = todo.back();
    todo.pop_back();
    if (!seen.insert(x.id()).second) continue;
    if (x.is_app())
      for (unsigned i = 0; i < x.num_args(); ++i) todo.push_back(x.arg(i));
  }
  return static_cast<unsigned>(seen.size());
}

Prover::Prover(std::string name) : name_(std::move(name)) {}

Bv Prover::var(const std::string& name) {
  z3::expr e = ctx_.bv_const(name.c_str(), 64);
  inputs_.emplace_back(name, e);
  return Bv{e};
}

Bool Prover::flag(const std::string& name) {
  z3::expr e = ctx_.bool_const(name.c_str());
  inputs_.emplace_back(name, e);
  return Bool{e};
}

void Prover::assume(const Bool& b) { assumptions_.push_back(b.e); }
void Prover::claim(const std::string& name, const Bool& b) { claims_.emplace_back(name, b.e); }
void Prover::observe(const std::string& name, const Bv& v) { observed_.emplace_back(name, v.e); }
void Prover::observe(const std::string& name, const Bool& b) { observed_.emplace_back(name, b.e); }

void Prover::print_model(std::ostream& out, const z3::model& m) {
  for (const auto& [n, e] : inputs_) out << "    " << n << " = " << hex_of(m, e) << "\n";
  for (const auto& [n, e] : observed_) out << "    " << n << " = " << hex_of(m, e) << "   (observed)\n";
}

ProofResult Prover::prove(std::ostream& out) {
  const auto t0 = std::chrono::steady_clock::now();
  ProofResult r;
  auto solver_with_assumptions = [&] {
    z3::solver s(ctx_);
    z3::params p(ctx_);
    p.set("timeout", 120000u);
    s.set(p);
    for (const auto& a : assumptions_) s.add(a);
    return s;
  };
  z3::expr all = ctx_.bool_val(true);
  for (const auto& [n, c] : claims_) all = all && c;
  z3::solver s = solver_with_assumptions();
  s.add(!all);
  const z3::check_result verdict = s.check();
  if (verdict == z3::unsat) {
    r.proved = true;
  } else {
    out << "PROOF FAILED: " << name_ << " ("
        << (verdict == z3::sat ? "counterexample found" : "solver gave up: " + s.reason_unknown()) << ")\n";
    if (verdict == z3::sat) {
      out << "  counterexample:\n";
      print_model(out, s.get_model());
    }
    out << "  re-proving each of the " << claims_.size() << " clauses alone:\n";
    unsigned best = ~0u;
    for (const auto& [n, c] : claims_) {
      z3::solver one = solver_with_assumptions();
      one.add(!c);
      const z3::check_result v = one.check();
      if (v == z3::unsat) {
        out << "    holds: " << n << "\n";
        continue;
      }
      r.failing.push_back(n);
      out << "    FAILS: " << n << (v == z3::unknown ? " (unknown)" : "") << "\n";
      if (v == z3::sat) print_model(out, one.get_model());
      const unsigned size = term_size(c);
      if (size < best) {
        best = size;
        r.smallest = n;
      }
    }
    if (!r.smallest.empty())
      out << "  smallest failing clause: " << r.smallest << " (" << best << " term nodes)\n";
  }
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (r.proved)
    out << "proved: " << name_ << " (" << claims_.size() << " clauses, " << r.seconds << " s)\n";
  return r;
}

}  // namespace ioas::proofs
