/* The uAPI structs as C lays them out: sizes and a few offsets measured by
 * the C compiler, for tests/abi_test.cpp to compare with C++'s. Including
 * the headers here also runs their static_asserts in C. */
#include "tests/abi_sizes.h"

#include "ioas/uapi/iommufd_test.h"

#define ROW(type) {#type, sizeof(struct type)}

static const struct ioas_abi_size kSizes[] = {
	ROW(iommu_destroy), ROW(iommu_ioas_alloc), ROW(iommu_iova_range),
	ROW(iommu_ioas_iova_ranges), ROW(iommu_ioas_allow_iovas),
	ROW(iommu_ioas_map), ROW(iommu_ioas_copy), ROW(iommu_ioas_unmap),
	ROW(iommu_option), ROW(iommu_vfio_ioas), ROW(iommu_hwpt_vtd_s1),
	ROW(iommu_hwpt_alloc), ROW(iommu_hw_info_vtd), ROW(iommu_hw_info),
	ROW(iommu_hwpt_set_dirty_tracking), ROW(iommu_hwpt_get_dirty_bitmap),
	ROW(iommu_hwpt_vtd_s1_invalidate), ROW(iommu_hwpt_invalidate),
	ROW(iommu_hwpt_pgfault), ROW(iommu_hwpt_page_response),
	ROW(iommu_fault_alloc), ROW(iommu_test_cmd), ROW(iommu_test_hw_info),
	ROW(iommu_hwpt_selftest), ROW(iommu_hwpt_invalidate_selftest),
	{0, 0},
};

const struct ioas_abi_size* ioas_abi_c_sizes(void) { return kSizes; }

/* The selftest writes in_data_type and reads out_data_type: one field. */
unsigned ioas_abi_c_hw_info_type_alias(unsigned in_type) {
	struct iommu_hw_info cmd = {.size = sizeof(cmd), .in_data_type = in_type};
	return cmd.out_data_type;
}
