// hw/radix.hpp: the x86-64 and arm-lpae radix tables (radix.cpp).
#pragma once

#include <memory>

#include "pagetable.hpp"

namespace ioas::hw {

// cfg.format is kX86_64 or kArmLpae. EINVAL: page sizes not a non-empty
// subset of 4K|2M|1G, aperture beyond 48 bits. ENOMEM: no top table.
Result<std::unique_ptr<PageTable>> make_radix_table(const TableConfig& cfg, PageMemory& mem);

}  // namespace ioas::hw
