/* ioas/uapi/iommufd_test.h: the iommufd selftest's test-op interface
 * (the kernel's drivers/iommu/iommufd/iommufd_test.h), written from its
 * published numbers and layouts.
 *
 * IOMMU_TEST_CMD is one ioctl whose `op` selects a test operation of the
 * kernel's mock IOMMU (CONFIG_IOMMUFD_TEST): reserve IOVA, create a mock
 * device with its mock domain, inspect a mock domain's mappings, create an
 * in-kernel access and pin or read through it. The layout is that of Linux
 * 6.12 with the constants that the selftest shipped in linux-source-6.12 uses
 * from later kernels (MOCK_FLAGS_DEVICE_PASID, MOCK_PASID_WIDTH). Plain C,
 * compiles as C++, no flexible array member; sizes and offsets pinned below.
 */
#ifndef IOAS_UAPI_IOMMUFD_TEST_H
#define IOAS_UAPI_IOMMUFD_TEST_H

#include "ioas/uapi/iommufd.h"

enum {
	IOMMU_TEST_OP_ADD_RESERVED = 1,
	IOMMU_TEST_OP_MOCK_DOMAIN,
	IOMMU_TEST_OP_MD_CHECK_MAP,
	IOMMU_TEST_OP_MD_CHECK_REFS,
	IOMMU_TEST_OP_CREATE_ACCESS,
	IOMMU_TEST_OP_DESTROY_ACCESS_PAGES,
	IOMMU_TEST_OP_ACCESS_PAGES,
	IOMMU_TEST_OP_ACCESS_RW,
	IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT,
	IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE,
	IOMMU_TEST_OP_ACCESS_REPLACE_IOAS,
	IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS,
	IOMMU_TEST_OP_DIRTY,
	IOMMU_TEST_OP_MD_CHECK_IOTLB,
	IOMMU_TEST_OP_TRIGGER_IOPF,
};

/* The mock domain's default aperture. */
enum {
	MOCK_APERTURE_START = 1UL << 24,
	MOCK_APERTURE_LAST = (1UL << 31) - 1,
};

/* access_pages.flags */
enum {
	MOCK_FLAGS_ACCESS_WRITE = 1 << 0,
	MOCK_FLAGS_ACCESS_SYZ = 1 << 16,
};

/* access_rw.flags */
enum {
	MOCK_ACCESS_RW_WRITE = 1 << 0,
	MOCK_ACCESS_RW_SLOW_PATH = 1 << 2,
};

/* create_access.flags */
enum {
	MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES = 1 << 0,
};

/* mock_domain_flags.dev_flags */
enum {
	MOCK_FLAGS_DEVICE_NO_DIRTY = 1 << 0,
	MOCK_FLAGS_DEVICE_HUGE_IOVA = 1 << 1,
	MOCK_FLAGS_DEVICE_PASID = 1 << 2,
};

enum {
	MOCK_NESTED_DOMAIN_IOTLB_ID_MAX = 3,
	MOCK_NESTED_DOMAIN_IOTLB_NUM = 4,
};

struct iommu_test_cmd {
	__u32 size;
	__u32 op;
	__u32 id;
	__u32 __reserved;
	union {
		struct {
			__aligned_u64 start;
			__aligned_u64 length;
		} add_reserved;
		struct {
			__u32 out_stdev_id;
			__u32 out_hwpt_id;
			__u32 out_idev_id;
		} mock_domain;
		struct {
			__u32 out_stdev_id;
			__u32 out_hwpt_id;
			__u32 out_idev_id;
			__u32 dev_flags;
		} mock_domain_flags;
		struct {
			__u32 pt_id;
		} mock_domain_replace;
		struct {
			__aligned_u64 iova;
			__aligned_u64 length;
			__aligned_u64 uptr;
		} check_map;
		struct {
			__aligned_u64 length;
			__aligned_u64 uptr;
			__u32 refs;
		} check_refs;
		struct {
			__u32 out_access_fd;
			__u32 flags;
		} create_access;
		struct {
			__u32 access_pages_id;
		} destroy_access_pages;
		struct {
			__u32 flags;
			__u32 out_access_pages_id;
			__aligned_u64 iova;
			__aligned_u64 length;
			__aligned_u64 uptr;
		} access_pages;
		struct {
			__aligned_u64 iova;
			__aligned_u64 length;
			__aligned_u64 uptr;
			__u32 flags;
		} access_rw;
		struct {
			__u32 limit;
		} memory_limit;
		struct {
			__u32 ioas_id;
		} access_replace_ioas;
		struct {
			__u32 flags;
			__aligned_u64 iova;
			__aligned_u64 length;
			__aligned_u64 page_size;
			__aligned_u64 uptr;
			__aligned_u64 out_nr_dirty;
		} dirty;
		struct {
			__u32 id;
			__u32 iotlb;
		} check_iotlb;
		struct {
			__u32 dev_id;
			__u32 pasid;
			__u32 grpid;
			__u32 perm;
			__u64 addr;
		} trigger_iopf;
	};
	__u32 last;
};
#define IOMMU_TEST_CMD _IO(IOMMUFD_TYPE, IOMMUFD_CMD_BASE + 32)

/* The mock device's PASID width (out_max_pasid_log2 of a PASID-capable
 * mock device). */
#define MOCK_PASID_WIDTH 20

/* IOMMU_GET_HW_INFO of a mock device. */
#define IOMMU_HW_INFO_TYPE_SELFTEST 0xfeedbeef
#define IOMMU_HW_INFO_SELFTEST_REGVAL 0xdeadbeef

struct iommu_test_hw_info {
	__u32 flags;
	__u32 test_reg;
};

/* IOMMU_HWPT_ALLOC data of a mock nested domain. */
#define IOMMU_HWPT_DATA_SELFTEST 0xdead
#define IOMMU_TEST_IOTLB_DEFAULT 0xbadbeef

struct iommu_hwpt_selftest {
	__u32 iotlb;
};

/* IOMMU_HWPT_INVALIDATE data of a mock nested domain. */
#define IOMMU_HWPT_INVALIDATE_DATA_SELFTEST 0xdeadbeef
#define IOMMU_HWPT_INVALIDATE_DATA_SELFTEST_INVALID 0xdadbeef

struct iommu_hwpt_invalidate_selftest {
#define IOMMU_TEST_INVALIDATE_FLAG_ALL (1 << 0)
	__u32 flags;
	__u32 iotlb_id;
};

/* ---- The published layouts (Linux 6.12, LP64), pinned. ---- */
IOAS_UAPI_ASSERT(IOMMU_TEST_CMD == 0x3ba0);
IOAS_UAPI_ASSERT(IOMMU_TEST_OP_TRIGGER_IOPF == 15);
IOAS_UAPI_ASSERT(MOCK_APERTURE_START == 0x1000000);
IOAS_UAPI_ASSERT(MOCK_APERTURE_LAST == 0x7fffffff);
IOAS_UAPI_ASSERT(MOCK_FLAGS_DEVICE_NO_DIRTY == 1);
IOAS_UAPI_ASSERT(MOCK_FLAGS_DEVICE_HUGE_IOVA == 2);
IOAS_UAPI_ASSERT(MOCK_FLAGS_DEVICE_PASID == 4);
IOAS_UAPI_SIZE(iommu_test_cmd, 72);
IOAS_UAPI_AT(iommu_test_cmd, op, 4);
IOAS_UAPI_AT(iommu_test_cmd, id, 8);
IOAS_UAPI_AT(iommu_test_cmd, __reserved, 12);
IOAS_UAPI_AT(iommu_test_cmd, add_reserved.start, 16);
IOAS_UAPI_AT(iommu_test_cmd, add_reserved.length, 24);
IOAS_UAPI_AT(iommu_test_cmd, mock_domain.out_stdev_id, 16);
IOAS_UAPI_AT(iommu_test_cmd, mock_domain.out_hwpt_id, 20);
IOAS_UAPI_AT(iommu_test_cmd, mock_domain.out_idev_id, 24);
IOAS_UAPI_AT(iommu_test_cmd, mock_domain_flags.dev_flags, 28);
IOAS_UAPI_AT(iommu_test_cmd, mock_domain_replace.pt_id, 16);
IOAS_UAPI_AT(iommu_test_cmd, check_map.iova, 16);
IOAS_UAPI_AT(iommu_test_cmd, check_map.length, 24);
IOAS_UAPI_AT(iommu_test_cmd, check_map.uptr, 32);
IOAS_UAPI_AT(iommu_test_cmd, check_refs.length, 16);
IOAS_UAPI_AT(iommu_test_cmd, check_refs.uptr, 24);
IOAS_UAPI_AT(iommu_test_cmd, check_refs.refs, 32);
IOAS_UAPI_AT(iommu_test_cmd, create_access.out_access_fd, 16);
IOAS_UAPI_AT(iommu_test_cmd, create_access.flags, 20);
IOAS_UAPI_AT(iommu_test_cmd, destroy_access_pages.access_pages_id, 16);
IOAS_UAPI_AT(iommu_test_cmd, access_pages.flags, 16);
IOAS_UAPI_AT(iommu_test_cmd, access_pages.out_access_pages_id, 20);
IOAS_UAPI_AT(iommu_test_cmd, access_pages.iova, 24);
IOAS_UAPI_AT(iommu_test_cmd, access_pages.length, 32);
IOAS_UAPI_AT(iommu_test_cmd, access_pages.uptr, 40);
IOAS_UAPI_AT(iommu_test_cmd, access_rw.iova, 16);
IOAS_UAPI_AT(iommu_test_cmd, access_rw.length, 24);
IOAS_UAPI_AT(iommu_test_cmd, access_rw.uptr, 32);
IOAS_UAPI_AT(iommu_test_cmd, access_rw.flags, 40);
IOAS_UAPI_AT(iommu_test_cmd, memory_limit.limit, 16);
IOAS_UAPI_AT(iommu_test_cmd, access_replace_ioas.ioas_id, 16);
IOAS_UAPI_AT(iommu_test_cmd, dirty.flags, 16);
IOAS_UAPI_AT(iommu_test_cmd, dirty.iova, 24);
IOAS_UAPI_AT(iommu_test_cmd, dirty.length, 32);
IOAS_UAPI_AT(iommu_test_cmd, dirty.page_size, 40);
IOAS_UAPI_AT(iommu_test_cmd, dirty.uptr, 48);
IOAS_UAPI_AT(iommu_test_cmd, dirty.out_nr_dirty, 56);
IOAS_UAPI_AT(iommu_test_cmd, check_iotlb.id, 16);
IOAS_UAPI_AT(iommu_test_cmd, check_iotlb.iotlb, 20);
IOAS_UAPI_AT(iommu_test_cmd, trigger_iopf.dev_id, 16);
IOAS_UAPI_AT(iommu_test_cmd, trigger_iopf.perm, 28);
IOAS_UAPI_AT(iommu_test_cmd, trigger_iopf.addr, 32);
IOAS_UAPI_AT(iommu_test_cmd, last, 64);
IOAS_UAPI_SIZE(iommu_test_hw_info, 8);
IOAS_UAPI_SIZE(iommu_hwpt_selftest, 4);
IOAS_UAPI_SIZE(iommu_hwpt_invalidate_selftest, 8);

#endif /* IOAS_UAPI_IOMMUFD_TEST_H */
