// The reserved_regions parser is header-only (hw/vfio/reserved_regions.hpp);
// this unit compiles it on its own, so the header stays self-contained.
#include "reserved_regions.hpp"
