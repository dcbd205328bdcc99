// ioas/core/reserved_regions.hpp: Linux's /sys/kernel/iommu_groups/*/reserved_regions
// and the valid IOVA ranges VFIO type1 and iommufd compute from them.
//
// Header-only and portable (no Linux headers): the `ioas ranges` command
// (cli/) uses it on sample files anywhere, the VFIO back end (hw/vfio/) on
// the live sysfs file of a group. Samples of real machines with the ranges
// expected of them are in core/testdata.
//
// The kernel writes one region per line, "0x%016llx 0x%016llx %s\n": start,
// inclusive end, type (direct, direct-relaxable, reserved, msi). Both VFIO
// (vfio_iommu_resv_exclude) and iommufd (iopt_table_enforce_dev_resv_regions)
// exclude every type except direct-relaxable.
#pragma once

#include <cerrno>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ioas/arith.hpp"
#include "ioas/engine.hpp"
#include "ioas/range.hpp"
#include "ioas/result.hpp"

namespace ioas::resv {

struct RegionLine {
  ResvRegion region;
  std::string file;
  int line = 0;
};

namespace detail {

// "0x" followed by 1..16 significant hex digits (leading zeros are free).
inline bool parse_hex(std::string_view s, u64& out) {
  if (s.size() < 3 || s[0] != '0' || (s[1] != 'x' && s[1] != 'X')) return false;
  u64 v = 0;
  for (std::size_t i = 2; i < s.size(); ++i) {
    const char c = s[i];
    u64 d;
    if (c >= '0' && c <= '9') d = static_cast<u64>(c - '0');
    else if (c >= 'a' && c <= 'f') d = static_cast<u64>(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') d = static_cast<u64>(c - 'A' + 10);
    else return false;
    if (v >> 60) return false;  // a 17th significant digit
    v = v * 16 + d;
  }
  out = v;
  return true;
}

inline std::vector<std::string_view> split_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    std::size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) fields.push_back(line.substr(i, j - i));
    i = j;
  }
  return fields;
}

}  // namespace detail

// Parses one reserved_regions file. EINVAL "file:line: what" on the first
// malformed line (not three fields, a number that is not 0x-hex or does not
// fit in 64 bits, start > end, an unknown type). Blank lines are skipped.
inline Result<std::vector<RegionLine>> parse_reserved_regions(std::string_view text, const std::string& file) {
  std::vector<RegionLine> out;
  int line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    const std::vector<std::string_view> fields = detail::split_fields(line);
    if (fields.empty()) continue;
    const std::string where = file + ":" + std::to_string(line_no) + ": ";
    if (fields.size() != 3)
      return make_error(EINVAL, where + "expected 'START END TYPE' (three fields), found " +
                                    std::to_string(fields.size()) + ": '" + std::string(line) + "'");
    RegionLine r{{}, file, line_no};
    if (!detail::parse_hex(fields[0], r.region.range.start))
      return make_error(EINVAL, where + "start '" + std::string(fields[0]) + "' is not a 64-bit 0x hex number");
    if (!detail::parse_hex(fields[1], r.region.range.last))
      return make_error(EINVAL, where + "end '" + std::string(fields[1]) + "' is not a 64-bit 0x hex number");
    if (r.region.range.start > r.region.range.last)
      return make_error(EINVAL, where + "start " + std::string(fields[0]) + " is above end " + std::string(fields[1]));
    const std::string_view t = fields[2];
    if (t == "direct") r.region.type = ResvType::kDirect;
    else if (t == "direct-relaxable") r.region.type = ResvType::kDirectRelaxable;
    else if (t == "reserved") r.region.type = ResvType::kReserved;
    else if (t == "msi") r.region.type = ResvType::kMsi;
    else
      return make_error(EINVAL, where + "unknown type '" + std::string(t) +
                                    "' (expected direct, direct-relaxable, reserved or msi)");
    out.push_back(std::move(r));
  }
  return out;
}

// The regions alone, without their file and line.
inline std::vector<ResvRegion> regions_of(const std::vector<RegionLine>& lines) {
  std::vector<ResvRegion> out;
  out.reserve(lines.size());
  for (const auto& l : lines) out.push_back(l.region);
  return out;
}

// VFIO's way: start from the aperture as one node and apply the exclude step
// (arith::resv_exclude, proved in proofs/) for each non-relaxable region.
inline std::vector<Range> vfio_valid_ranges(const Range& aperture, const std::vector<ResvRegion>& regions) {
  std::vector<Range> list{aperture};
  for (const auto& reg : regions) {
    if (reg.type == ResvType::kDirectRelaxable) continue;
    std::vector<Range> next;
    for (const auto& n : list) {
      const auto e = arith::resv_exclude(n.start, n.last, reg.range.start, reg.range.last);
      if (e.below) next.push_back(Range{e.below_start, e.below_last});
      if (e.above) next.push_back(Range{e.above_start, e.above_last});
    }
    list = std::move(next);
  }
  return list;
}

// iommufd's way: the holes of the reserved set (the regions plus everything
// outside the aperture) over [0, 2^64-1].
inline std::vector<Range> iommufd_valid_ranges(const Range& aperture, const std::vector<ResvRegion>& regions) {
  std::vector<Range> reserved;
  if (aperture.start > 0) reserved.push_back(Range{0, aperture.start - 1});
  if (aperture.last < kMaxIova) reserved.push_back(Range{aperture.last + 1, kMaxIova});
  for (const auto& reg : regions)
    if (reg.type != ResvType::kDirectRelaxable) reserved.push_back(reg.range);
  return complement(reserved);  // [0, 2^64-1] when nothing is reserved
}

}  // namespace ioas::resv
