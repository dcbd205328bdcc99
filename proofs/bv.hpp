// proofs/bv.hpp: the Z3 word type the shared templates of ioas/arith.hpp are
// instantiated with.
//
// `Bv` is a 64-bit bit-vector term and `Bool` a Boolean term. Their operators
// are the unsigned machine operations, so a template written for uint64_t
// means the same thing here: < is bvult (z3::expr's own < is signed, which
// is why the templates do not see z3::expr directly), >> is a logical shift, / is bvudiv,
// + and - wrap modulo 2^64. `select` becomes an `ite`. Nothing else is
// needed: the templates only use these operations (see arith.hpp).
#pragma once

#include <z3++.h>

#include <cstdint>

#include "ioas/arith.hpp"

namespace ioas::proofs {

struct Bool {
  z3::expr e;
};
struct Bv {
  z3::expr e;
};

inline Bool operator!(const Bool& a) { return {!a.e}; }
inline Bool operator&&(const Bool& a, const Bool& b) { return {a.e && b.e}; }
inline Bool operator||(const Bool& a, const Bool& b) { return {a.e || b.e}; }
inline Bool operator==(const Bool& a, const Bool& b) { return {a.e == b.e}; }
inline Bool implies(const Bool& a, const Bool& b) { return {z3::implies(a.e, b.e)}; }

inline Bv operator+(const Bv& a, const Bv& b) { return {a.e + b.e}; }
inline Bv operator-(const Bv& a, const Bv& b) { return {a.e - b.e}; }
inline Bv operator&(const Bv& a, const Bv& b) { return {a.e & b.e}; }
inline Bv operator|(const Bv& a, const Bv& b) { return {a.e | b.e}; }
inline Bv operator^(const Bv& a, const Bv& b) { return {a.e ^ b.e}; }
inline Bv operator~(const Bv& a) { return {~a.e}; }
inline Bv operator/(const Bv& a, const Bv& b) { return {z3::udiv(a.e, b.e)}; }
// For claims only (the templates do not multiply): bvmul, mod 2^64.
inline Bv operator*(const Bv& a, const Bv& b) { return {a.e * b.e}; }
inline Bv operator>>(const Bv& a, unsigned k) { return {z3::lshr(a.e, a.e.ctx().bv_val(k, 64))}; }
inline Bv operator>>(const Bv& a, int k) { return a >> static_cast<unsigned>(k); }
inline Bv operator<<(const Bv& a, unsigned k) { return {z3::shl(a.e, a.e.ctx().bv_val(k, 64))}; }
inline Bv operator<<(const Bv& a, int k) { return a << static_cast<unsigned>(k); }
inline Bool operator==(const Bv& a, const Bv& b) { return {a.e == b.e}; }
inline Bool operator!=(const Bv& a, const Bv& b) { return {a.e != b.e}; }
inline Bool operator<(const Bv& a, const Bv& b) { return {z3::ult(a.e, b.e)}; }
inline Bool operator<=(const Bv& a, const Bv& b) { return {z3::ule(a.e, b.e)}; }
inline Bool operator>(const Bv& a, const Bv& b) { return {z3::ugt(a.e, b.e)}; }
inline Bool operator>=(const Bv& a, const Bv& b) { return {z3::uge(a.e, b.e)}; }

}  // namespace ioas::proofs

namespace ioas::arith {
template <>
struct WordTraits<proofs::Bv> {
  using Bool = proofs::Bool;
  static proofs::Bv constant(const proofs::Bv& like, std::uint64_t v) {
    return {like.e.ctx().bv_val(v, 64)};
  }
  static proofs::Bv select(const Bool& c, const proofs::Bv& a, const proofs::Bv& b) {
    return {z3::ite(c.e, a.e, b.e)};
  }
};
template <>
struct WordTraits<proofs::Bool> {
  using Bool = proofs::Bool;
  static proofs::Bool constant(const proofs::Bool& like, std::uint64_t v) {
    return {like.e.ctx().bool_val(v != 0)};
  }
  static proofs::Bool select(const Bool& c, const proofs::Bool& a, const proofs::Bool& b) {
    return {z3::ite(c.e, a.e, b.e)};
  }
};
}  // namespace ioas::arith
