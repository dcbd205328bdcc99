/* tests/abi_sizes.h: what tests/abi_sizes.c (compiled as C) measured. */
#ifndef IOAS_UAPI_TESTS_ABI_SIZES_H
#define IOAS_UAPI_TESTS_ABI_SIZES_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif
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
