// hw/vfio/tests/qemu_vtd.hpp: what the VFIO tests assume of QEMU's emulated
// Intel IOMMU (intel-iommu, the guest of hw/vm): the type1 IOMMU info it
// reports and its MSI window, a reserved region of every device.
#pragma once

#include <vector>

#include "vfio.hpp"

namespace ioas::vfio {

inline IommuInfo qemu_vtd() {
  IommuInfo i;
  i.pgsizes = k4K | k2M | k1G;
  i.has_iova_ranges = true;
  i.iova_ranges = {{0, 0xfedfffff}, {0xfef00000, 0x7fffffffff}};
  i.dma_avail = 65535;
  return i;
}

inline const std::vector<ResvRegion> kMsi = {{{0xfee00000, 0xfeefffff}, ResvType::kMsi}};

}  // namespace ioas::vfio
