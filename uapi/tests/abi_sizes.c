/* The uAPI structs as C lays them out: sizes and a few offsets measured by
 * the C compiler, for tests/abi_test.cpp to compare with C++'s. Including
 * the headers here also runs their static_asserts in C. */
#include "tests/abi_sizes.h"

#include "ioas/uapi/iommufd_test.h"

#define ROW(type) {#type, sizeof(struct type)}

static const struct ioas_abi_size kSizes[] = {
	IOAS_ABI_STRUCTS(ROW)
	{0, 0},
};

const struct ioas_abi_size* ioas_abi_c_sizes(void) { return kSizes; }

/* The selftest writes in_data_type and reads out_data_type: one field. */
unsigned ioas_abi_c_hw_info_type_alias(unsigned in_type) {
	struct iommu_hw_info cmd = {.size = sizeof(cmd), .in_data_type = in_type};
	return cmd.out_data_type;
}
