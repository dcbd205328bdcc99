// proofs/prover.hpp: proving a conjunction of claims about the shared
// templates for all 64-bit inputs, and explaining a failure.
//
// A proof declares its inputs (symbolic 64-bit words), the preconditions the
// callers of the template guarantee, and the claims, each a named conjunct.
// prove() asks Z3 whether the preconditions and the negated conjunction are
// satisfiable: unsat is a proof. When it is not, the counterexample is
// printed (every input and every observed term, in hex), then each conjunct
// is re-proved alone (the Hyperkernel habit) and the smallest failing clause
// is named, so a planted off-by-one reads as "clause X fails at these
// inputs" rather than as a 200-node formula.
#pragma once

#include <z3++.h>

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include "bv.hpp"

namespace ioas::proofs {

struct ProofResult {
  bool proved = false;
  std::vector<std::string> failing;  // conjuncts that fail alone
  std::string smallest;              // the smallest of them ("" when proved)
  double seconds = 0;
};

class Prover {
 public:
  explicit Prover(std::string name);
  Prover(const Prover&) = delete;
  Prover& operator=(const Prover&) = delete;

  z3::context& ctx() { return ctx_; }
  // A fresh symbolic 64-bit input, printed in counterexamples.
  Bv var(const std::string& name);
  // A symbolic Boolean input.
  Bool flag(const std::string& name);
  Bv k(std::uint64_t v) { return Bv{ctx_.bv_val(v, 64)}; }
  Bool yes() { return Bool{ctx_.bool_val(true)}; }
  // A precondition (what the template's callers guarantee).
  void assume(const Bool& b);
  // One named conjunct of what is proved.
  void claim(const std::string& name, const Bool& b);
  // A term printed with the counterexample (an output of the template).
  void observe(const std::string& name, const Bv& v);
  void observe(const std::string& name, const Bool& b);

  // Proves the conjunction of the claims under the preconditions; writes the
  // verdict (and, on failure, the counterexample and the failing clauses) to
  // `out`.
  ProofResult prove(std::ostream& out);

 private:
  void print_model(std::ostream& out, const z3::model& m);
  std::string name_;
  z3::context ctx_;
  std::vector<std::pair<std::string, z3::expr>> inputs_;
  std::vector<std::pair<std::string, z3::expr>> observed_;
  std::vector<z3::expr> assumptions_;
  std::vector<std::pair<std::string, z3::expr>> claims_;
};

// The number of distinct AST nodes of e (the size used to pick the smallest
// failing clause).
unsigned term_size(const z3::expr& e);

}  // namespace ioas::proofs
