// The arguments the SPEC rule tests (spec_rules*.cpp) share: the values of
// SPEC.md that their expectations are written in.
#pragma once

#include "spec_rules.hpp"

namespace ioas::testing::rule_args {

inline constexpr u64 kMax = kMaxIova;
inline constexpr Prot R = Prot::kRead;
inline constexpr Prot RW = Prot::kReadWrite;
inline constexpr u64 k2Pow63 = u64{1} << 63;
inline constexpr u64 kX86Sizes = k4K | k2M | k1G;  // 0x40201000

inline ResvRegion Region(u64 start, u64 last, ResvType type = ResvType::kReserved) {
  return ResvRegion{Range{start, last}, type};
}
inline IoasOptions HugePagesOff() { return IoasOptions{ZeroPage::kReserved, false}; }
inline IoasOptions ZeroPageAllowed() { return IoasOptions{ZeroPage::kAllowed, true}; }

}  // namespace ioas::testing::rule_args
