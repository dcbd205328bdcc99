// The shared vocabulary of ioas: errno names, to_string of the public enums,
// and the Range list helpers. Everything here is small, pure and used by
// every part (model, impl, traces, CLI).
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "ioas/boundary.hpp"
#include "ioas/core/formats.hpp"
#include "ioas/core/text.hpp"
#include "ioas/engine.hpp"
#include "ioas/range.hpp"
#include "ioas/result.hpp"
#include "ioas/rules.hpp"

namespace ioas {
namespace {

struct ErrnoName {
  int code;
  const char* name;
};
// The errnos SPEC.md uses, plus the ones a kernel back end can report.
constexpr ErrnoName kErrnoNames[] = {
    {EPERM, "EPERM"},         {ENOENT, "ENOENT"},       {EIO, "EIO"},
    {E2BIG, "E2BIG"},         {ENOMEM, "ENOMEM"},       {EACCES, "EACCES"},
    {EFAULT, "EFAULT"},       {EBUSY, "EBUSY"},         {EEXIST, "EEXIST"},
    {ENODEV, "ENODEV"},       {EINVAL, "EINVAL"},       {ENOSPC, "ENOSPC"},
    {ERANGE, "ERANGE"},       {EDEADLK, "EDEADLK"},     {ENOTTY, "ENOTTY"},
    {EOVERFLOW, "EOVERFLOW"}, {EOPNOTSUPP, "EOPNOTSUPP"}, {EADDRINUSE, "EADDRINUSE"},
    {EMSGSIZE, "EMSGSIZE"},   {ENXIO, "ENXIO"},       {ENOSYS, "ENOSYS"},
    {EADDRNOTAVAIL, "EADDRNOTAVAIL"},
};

}  // namespace

Error out_of_memory() noexcept {
  static_assert(sizeof("out of memory") <= 16, "the message must fit the string's inline buffer");
  return Error{ENOMEM, "out of memory"};
}

void boundary_abort(const char* op, const char* what) noexcept {
  std::fprintf(stderr, "ioas: %s in %s (a bug: no exception may leave an engine)\n", what, op);
  std::abort();
}

const char* errno_name(int code) {
  for (const auto& e : kErrnoNames)
    if (e.code == code) return e.name;
  thread_local char buf[16];
  std::snprintf(buf, sizeof buf, "E?%d", code);
  return buf;
}

int errno_from_name(std::string_view name) {
  for (const auto& e : kErrnoNames)
    if (name == e.name) return e.code;
  return 0;
}

std::string to_string(const Error& e) {
  return std::string(errno_name(e.code)) + ": " + e.message;
}

std::string to_string(const Range& r) { return hex(r.start) + "-" + hex(r.last); }

std::string to_string(const std::vector<Range>& rs) {
  std::string out;
  for (const auto& r : rs) {
    if (!out.empty()) out += ' ';
    out += to_string(r);
  }
  return out;
}

std::vector<Range> normalize(std::vector<Range> rs) {
  std::sort(rs.begin(), rs.end());
  std::vector<Range> out;
  for (const auto& r : rs) {
    if (!out.empty() && (out.back().overlaps(r) || out.back().precedes_adjacent(r))) {
      out.back().last = std::max(out.back().last, r.last);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

namespace {
// Each range non-empty and sorted, pairwise disjoint: the gaps between
// neighbours are the complement as the ranges stand (adjacent ones leave
// none), with no need to normalize a copy.
bool sorted_disjoint(const std::vector<Range>& rs) {
  for (std::size_t i = 0; i < rs.size(); ++i)
    if (rs[i].start > rs[i].last || (i > 0 && rs[i - 1].last >= rs[i].start)) return false;
  return true;
}
}  // namespace

std::vector<Range> complement(const std::vector<Range>& rs) {
  if (!sorted_disjoint(rs)) return complement(normalize(rs));
  std::vector<Range> out;
  out.reserve(rs.size() + 1);
  u64 next = 0;        // first byte not yet accounted for
  bool done = false;   // the space is exhausted (a range reached 2^64-1)
  for (const auto& r : rs) {
    if (r.start > next) out.push_back(Range{next, r.start - 1});
    if (r.last == kMaxIova) {
      done = true;
      break;
    }
    next = r.last + 1;
  }
  if (!done) out.push_back(Range{next, kMaxIova});
  return out;
}

const char* to_string(Prot p) {
  switch (p) {
    case Prot::kNone: return "none";
    case Prot::kRead: return "r";
    case Prot::kWrite: return "w";
    case Prot::kReadWrite: return "rw";
  }
  return "?";
}

const char* to_string(OwnerKind k) {
  switch (k) {
    case OwnerKind::kZeroPage: return "zero-page";
    case OwnerKind::kUser: return "user";
    case OwnerKind::kDevice: return "device";
    case OwnerKind::kDomain: return "domain";
  }
  return "?";
}

std::string to_string(const Owner& o) {
  if (o.kind == OwnerKind::kZeroPage) return "zero-page";
  return std::string(to_string(o.kind)) + " " + o.name;
}

const char* to_string(Format f) {
  switch (f) {
    case Format::kX86_64: return "x86-64";
    case Format::kArmLpae: return "arm-lpae";
    case Format::kTce: return "tce";
    case Format::kMock: return "mock";
  }
  return "?";
}

std::optional<Format> format_from_string(std::string_view s) {
  for (Format f : {Format::kX86_64, Format::kArmLpae, Format::kTce, Format::kMock}) {
    if (s == to_string(f)) return f;
  }
  return std::nullopt;
}

Range default_aperture(Format f) { return formats::facts(f).default_aperture; }

u64 default_pgsizes(Format f) { return formats::facts(f).default_pgsizes; }

bool pgsizes_allowed(Format f, u64 pgsizes) {
  switch (f) {
    case Format::kX86_64:
    case Format::kArmLpae: return pgsizes != 0 && (pgsizes & ~formats::kRadixPgsizes) == 0;
    case Format::kTce: return arith::is_pow2(pgsizes);
    case Format::kMock: return pgsizes == kMockPage || pgsizes == (kMockPage | kMockHugePage);
  }
  return false;
}

const char* pgsizes_rule(Format f) {
  switch (f) {
    case Format::kX86_64:
    case Format::kArmLpae: return "a non-empty subset of 4K,2M,1G";
    case Format::kTce: return "exactly one power of two";
    case Format::kMock: return "2K or 2K,1M";
  }
  return "?";
}

ModeRules rules_for(IoasMode mode) {
  ModeRules r;
  if (mode == IoasMode::kKernel) {
    r.forced_zero_page = ZeroPage::kAllowed;
    r.unmap_all_or_nothing = false;
    r.unmap_stuck_pin_errno = EDEADLOCK;
    r.cut_splits_domain_areas = false;
    r.write_only_maps = true;
    r.fixed_iova_alignment_before_overflow = true;
    r.page_offset_after_iova = true;
    r.copy_source_before_destination = true;
    r.ulong_max_overflows = true;
    r.pin_alignment_before_range = true;
    r.pin_checks_each_area_in_turn = true;
    r.copy_write_needs_writable_pages = true;
    r.auto_aligns_span_start = true;
  }
  return r;
}

bool refuses_ulong_max(const ModeRules& rules, std::initializer_list<u64> values) {
  return rules.ulong_max_overflows && std::find(values.begin(), values.end(), kMaxIova) != values.end();
}

Prot leaf_prot(Format f, Prot area) {
  switch (f) {
    case Format::kX86_64:
    case Format::kArmLpae: return area == Prot::kWrite ? Prot::kReadWrite : area;
    case Format::kTce:
    case Format::kMock: return area;
  }
  return area;
}

const char* to_string(IoasMode m) {
  switch (m) {
    case IoasMode::kDefault: return "default";
    case IoasMode::kKernel: return "kernel";
  }
  return "?";
}

// The default of an engine that cannot change the option.
Status Engine::set_huge_pages(std::string_view ioas, bool on) {
  return make_error(EOPNOTSUPP, std::string("set huge-pages ") + (on ? "on" : "off") + " in " + std::string(ioas) +
                                    ": the " + kind() + " engine cannot change an IOAS's huge_pages");
}

u64 max_output_address(Format f) { return formats::facts(f).output_last; }

const char* to_string(ResvType t) {
  switch (t) {
    case ResvType::kDirect: return "direct";
    case ResvType::kDirectRelaxable: return "direct-relaxable";
    case ResvType::kReserved: return "reserved";
    case ResvType::kMsi: return "msi";
  }
  return "?";
}

const char* to_string(Invariant i) {
  switch (i) {
    case Invariant::kSorted: return "sorted";
    case Invariant::kAreaReserved: return "area-reserved";
    case Invariant::kAllowedReserved: return "allowed-reserved";
    case Invariant::kZeroIova: return "zero-iova";
    case Invariant::kAlignment: return "alignment";
    case Invariant::kAperture: return "aperture";
    case Invariant::kTranslation: return "translation";
    case Invariant::kUseCount: return "use-count";
  }
  return "?";
}

}  // namespace ioas
