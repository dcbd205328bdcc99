// cli/reserved_regions.hpp: Linux's /sys/kernel/iommu_groups/*/reserved_regions
// and the valid IOVA ranges VFIO type1 and iommufd compute from them.
//
// The kernel writes one region per line, "0x%016llx 0x%016llx %s\n": start,
// inclusive end, type (direct, direct-relaxable, reserved, msi). Both VFIO
// (vfio_iommu_resv_exclude) and iommufd (iopt_table_enforce_dev_resv_regions)
// exclude every type except direct-relaxable.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "ioas/engine.hpp"
#include "ioas/result.hpp"

namespace ioas::cli {

struct RegionLine {
  ResvRegion region;
  std::string file;
  int line = 0;
};

// Parses one reserved_regions file. EINVAL "file:line: what" on the first
// malformed line (not three fields, a number that is not 0x-hex or does not
// fit in 64 bits, start > end, an unknown type). Blank lines are skipped.
Result<std::vector<RegionLine>> parse_reserved_regions(std::string_view text, const std::string& file);

// VFIO's way: start from the aperture as one node and apply the exclude step
// (arith::resv_exclude, proved in proofs/) for each non-relaxable region.
std::vector<Range> vfio_valid_ranges(const Range& aperture, const std::vector<ResvRegion>& regions);
// iommufd's way: the holes of the reserved set (the regions plus everything
// outside the aperture) over [0, 2^64-1].
std::vector<Range> iommufd_valid_ranges(const Range& aperture, const std::vector<ResvRegion>& regions);

}  // namespace ioas::cli
