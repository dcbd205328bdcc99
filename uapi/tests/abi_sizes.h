/* tests/abi_sizes.h: what tests/abi_sizes.c (compiled as C) measured. */
#ifndef IOAS_UAPI_TESTS_ABI_SIZES_H
#define IOAS_UAPI_TESTS_ABI_SIZES_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
/* The structs measured in both languages: X(name) for each. */
#define IOAS_ABI_STRUCTS(X)                                                        \
	X(iommu_destroy), X(iommu_ioas_alloc), X(iommu_iova_range),                \
	X(iommu_ioas_iova_ranges), X(iommu_ioas_allow_iovas),                      \
	X(iommu_ioas_map), X(iommu_ioas_copy), X(iommu_ioas_unmap),                \
	X(iommu_option), X(iommu_vfio_ioas), X(iommu_hwpt_vtd_s1),                 \
	X(iommu_hwpt_alloc), X(iommu_hw_info_vtd), X(iommu_hw_info),               \
	X(iommu_hwpt_set_dirty_tracking), X(iommu_hwpt_get_dirty_bitmap),          \
	X(iommu_hwpt_vtd_s1_invalidate), X(iommu_hwpt_invalidate),                 \
	X(iommu_hwpt_pgfault), X(iommu_hwpt_page_response),                        \
	X(iommu_fault_alloc), X(iommu_test_cmd), X(iommu_test_hw_info),            \
	X(iommu_hwpt_selftest), X(iommu_hwpt_invalidate_selftest),
struct ioas_abi_size {
	const char* name;  /* NULL ends the table */
	size_t size;
};
const struct ioas_abi_size* ioas_abi_c_sizes(void);
unsigned ioas_abi_c_hw_info_type_alias(unsigned in_type);
#ifdef __cplusplus
}
#endif
#endif
