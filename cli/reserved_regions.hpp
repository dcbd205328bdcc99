// cli/reserved_regions.hpp: Linux's /sys/kernel/iommu_groups/*/reserved_regions
// and the valid IOVA ranges VFIO type1 and iommufd compute from them.
//
// The parser and both computations live in hw/vfio/reserved_regions.hpp
// (header-only), shared with the VFIO back end, which reads the live sysfs
// file; the `ioas ranges` command keeps using them under these names.
#pragma once

#include "../hw/vfio/reserved_regions.hpp"

namespace ioas::cli {

using resv::RegionLine;
using resv::parse_reserved_regions;
using resv::vfio_valid_ranges;
using resv::iommufd_valid_ranges;

}  // namespace ioas::cli
