// ioas/arith.hpp: the small pure arithmetic every part of ioas relies on.
//
// Each function is a template over the word type W so that the same code runs
// on concrete values (W = uint64_t: model, engine, hw) and, later, on Z3
// bit-vector terms (proofs/). For that reason:
//   - only +, -, &, |, ~, <, <=, ==, != and shifts by constants are used;
//   - a value-dependent choice is written `select(cond, a, b)`, never `if`;
//   - a function returns every result it has (for example the end of a range
//     and whether computing it overflowed) instead of branching on it.
// The uint64_t overloads of `select` and `bit` live here; proofs/ supplies
// the Z3 ones.
#pragma once

#include <cstdint>

namespace ioas::arith {

inline std::uint64_t select(bool c, std::uint64_t a, std::uint64_t b) {
  return c ? a : b;
}
inline bool select(bool c, bool a, bool b) { return c ? a : b; }

// The word constant `v` in W.
template <typename W>
W word(const W& like, std::uint64_t v);
template <>
inline std::uint64_t word<std::uint64_t>(const std::uint64_t&, std::uint64_t v) {
  return v;
}

// Last byte of [start, start+len-1]. `overflow` is true exactly when the true
// sum start+len-1 exceeds 2^64-1 (len == 0 is the caller's to reject; here it
// yields last = start-1 and overflow = (start == 0)... so callers check len
// first).
template <typename W, typename B = bool>
struct LastOf {
  W last;
  B overflow;
};
template <typename W>
auto range_last(const W& start, const W& len) {
  W one = word(start, 1);
  W lm1 = len - one;              // len >= 1 is the caller's precondition
  W last = start + lm1;
  auto overflow = last < start;   // wrapped iff the sum exceeded 2^64-1
  return LastOf<W, decltype(overflow)>{last, overflow};
}

// Inclusive ranges [s1,l1] and [s2,l2] share at least one byte.
// Cond1: s1 <= l2, Cond2: s2 <= l1 (the interval-tree overlap test).
template <typename W>
auto overlaps(const W& s1, const W& l1, const W& s2, const W& l2) {
  return (s1 <= l2) && (s2 <= l1);
}

// [s2,l2] lies wholly inside [s1,l1].
template <typename W>
auto contains(const W& s1, const W& l1, const W& s2, const W& l2) {
  return (s1 <= s2) && (l2 <= l1);
}

// x is a multiple of the power of two a.
template <typename W>
auto is_aligned(const W& x, const W& a) {
  return (x & (a - word(x, 1))) == word(x, 0);
}

// Round x up to the power of two a; `wrapped` is true when the result does not
// fit in 64 bits (then `value` is meaningless).
template <typename W, typename B = bool>
struct Aligned {
  W value;
  B wrapped;
};
template <typename W>
auto align_up(const W& x, const W& a) {
  W mask = a - word(x, 1);
  W v = (x + mask) & ~mask;
  auto wrapped = v < x;
  return Aligned<W, decltype(wrapped)>{v, wrapped};
}

// The lowest set bit of x (0 for x == 0).
template <typename W>
W lowest_bit(const W& x) {
  return x & (~x + word(x, 1));
}

// The smallest power of two >= x, for 1 <= x <= 2^63 (callers guarantee it).
template <typename W>
W roundup_pow2(const W& x) {
  W v = x - word(x, 1);
  v = v | (v >> 1);
  v = v | (v >> 2);
  v = v | (v >> 4);
  v = v | (v >> 8);
  v = v | (v >> 16);
  v = v | (v >> 32);
  return v + word(x, 1);
}

// The alignment an automatic map wants (SPEC "automatic"): len rounded up to a
// power of two, lowered to the lowest set bit of uaddr when uaddr != 0, capped
// at `cap` (2 MiB). Precondition: 1 <= len < 2^63.
template <typename W>
W auto_alignment(const W& len, const W& uaddr, const W& cap) {
  W a = roundup_pow2(len);
  W lb = lowest_bit(uaddr);
  W zero = word(len, 0);
  a = select(!(uaddr == zero) && lb < a, lb, a);
  a = select(cap < a, cap, a);
  return a;
}

// The automatic-allocation candidate in the hole [hole_start, hole_last]:
// align_up(hole_start, a) | page_offset (the kernel's formula), and whether a
// mapping of `len` bytes there fits in the hole without wrapping.
// Preconditions: a is a power of two, len >= 1.
template <typename W, typename B = bool>
struct Candidate {
  W iova;
  B fits;
};
template <typename W>
auto hole_candidate(const W& hole_start, const W& hole_last, const W& a,
                    const W& page_offset, const W& len) {
  auto up = align_up(hole_start, a);
  W cand = up.value | page_offset;
  auto end = range_last(cand, len);
  auto fits = !up.wrapped && !end.overflow && (hole_start <= cand) &&
              (end.last <= hole_last);
  return Candidate<W, decltype(fits)>{cand, fits};
}

}  // namespace ioas::arith
