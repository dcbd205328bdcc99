/* ioas/uapi/iommufd.h: the Linux iommufd uAPI (include/uapi/linux/iommufd.h),
 * written from its published numbers and layouts.
 *
 * Debian 12's linux-libc-dev (6.1) has no linux/iommufd.h. This header gives
 * the ioctls of Linux 6.12 with the layouts the 6.12 kernel accepts, plus the
 * additions that the selftest shipped in linux-source-6.12 already uses
 * (IOMMU_HW_INFO_TYPE_DEFAULT, IOMMU_HW_INFO_FLAG_INPUT_TYPE and the
 * in_data_type/out_data_type union of struct iommu_hw_info, all from later
 * kernels). It is plain C (C99 with anonymous unions, as the kernel's own) and
 * compiles as C++; it declares no flexible array member, so sizeof is the same
 * in both languages. Every struct's size and field offsets are pinned below to
 * the kernel's values for x86-64 (and every LP64 target: the kernel's
 * __aligned_u64 makes each u64 8-aligned on 32-bit targets too).
 *
 * Every ioctl struct starts with `size`: the caller's sizeof, which lets the
 * kernel accept older (shorter) and newer (longer, zero-tailed) callers.
 */
#ifndef IOAS_UAPI_IOMMUFD_H
#define IOAS_UAPI_IOMMUFD_H

#include <linux/ioctl.h>
#include <linux/types.h>
#ifdef __cplusplus
#include <cstddef>
#else
#include <stddef.h>
#endif

#define IOMMUFD_TYPE (';')

enum {
	IOMMUFD_CMD_BASE = 0x80,
	IOMMUFD_CMD_DESTROY = IOMMUFD_CMD_BASE,
	IOMMUFD_CMD_IOAS_ALLOC = 0x81,
	IOMMUFD_CMD_IOAS_ALLOW_IOVAS = 0x82,
	IOMMUFD_CMD_IOAS_COPY = 0x83,
	IOMMUFD_CMD_IOAS_IOVA_RANGES = 0x84,
	IOMMUFD_CMD_IOAS_MAP = 0x85,
	IOMMUFD_CMD_IOAS_UNMAP = 0x86,
	IOMMUFD_CMD_OPTION = 0x87,
	IOMMUFD_CMD_VFIO_IOAS = 0x88,
	IOMMUFD_CMD_HWPT_ALLOC = 0x89,
	IOMMUFD_CMD_GET_HW_INFO = 0x8a,
	IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING = 0x8b,
	IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP = 0x8c,
	IOMMUFD_CMD_HWPT_INVALIDATE = 0x8d,
	IOMMUFD_CMD_FAULT_QUEUE_ALLOC = 0x8e,
};

/* Destroy any object by id. */
struct iommu_destroy {
	__u32 size;
	__u32 id;
};
#define IOMMU_DESTROY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_DESTROY)

/* A new, empty IOAS. */
struct iommu_ioas_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_ioas_id;
};
#define IOMMU_IOAS_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC)

/* An inclusive IOVA range [start, last]. */
struct iommu_iova_range {
	__aligned_u64 start;
	__aligned_u64 last;
};

/* The IOVA ranges usable for mapping, into allowed_iovas (an array of
 * num_iovas iommu_iova_range); num_iovas returns the total count, and EMSGSIZE
 * when the array was too short. */
struct iommu_ioas_iova_ranges {
	__u32 size;
	__u32 ioas_id;
	__u32 num_iovas;
	__u32 __reserved;
	__aligned_u64 allowed_iovas;
	__aligned_u64 out_iova_alignment;
};
#define IOMMU_IOAS_IOVA_RANGES _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_IOVA_RANGES)

/* Replace the IOAS's allowed set with num_iovas ranges at allowed_iovas. */
struct iommu_ioas_allow_iovas {
	__u32 size;
	__u32 ioas_id;
	__u32 num_iovas;
	__u32 __reserved;
	__aligned_u64 allowed_iovas;
};
#define IOMMU_IOAS_ALLOW_IOVAS _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOW_IOVAS)

enum iommufd_ioas_map_flags {
	IOMMU_IOAS_MAP_FIXED_IOVA = 1 << 0,
	IOMMU_IOAS_MAP_WRITEABLE = 1 << 1,
	IOMMU_IOAS_MAP_READABLE = 1 << 2,
};

/* Map user memory [user_va, user_va+length) at iova (FIXED_IOVA) or at an
 * IOVA the kernel chooses and returns in iova. */
struct iommu_ioas_map {
	__u32 size;
	__u32 flags;
	__u32 ioas_id;
	__u32 __reserved;
	__aligned_u64 user_va;
	__aligned_u64 length;
	__aligned_u64 iova;
};
#define IOMMU_IOAS_MAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_MAP)

/* Map in dst_ioas_id the memory mapped in src_ioas_id at src_iova. Flags are
 * those of iommu_ioas_map. */
struct iommu_ioas_copy {
	__u32 size;
	__u32 flags;
	__u32 dst_ioas_id;
	__u32 src_ioas_id;
	__aligned_u64 length;
	__aligned_u64 dst_iova;
	__aligned_u64 src_iova;
};
#define IOMMU_IOAS_COPY _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_COPY)

/* Unmap the whole areas in [iova, iova+length); iova 0 with length
 * U64_MAX unmaps everything. length returns the bytes unmapped. */
struct iommu_ioas_unmap {
	__u32 size;
	__u32 ioas_id;
	__aligned_u64 iova;
	__aligned_u64 length;
};
#define IOMMU_IOAS_UNMAP _IO(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_UNMAP)

enum iommufd_option {
	IOMMU_OPTION_RLIMIT_MODE = 0,
	IOMMU_OPTION_HUGE_PAGES = 1,
};

enum iommufd_option_ops {
	IOMMU_OPTION_OP_SET = 0,
	IOMMU_OPTION_OP_GET = 1,
};

/* Set or get a global (object_id 0) or per-object option in val64. */
struct iommu_option {
	__u32 size;
	__u32 option_id;
	__u16 op;
	__u16 __reserved;
	__u32 object_id;
	__aligned_u64 val64;
};
#define IOMMU_OPTION _IO(IOMMUFD_TYPE, IOMMUFD_CMD_OPTION)

enum iommufd_vfio_ioas_op {
	IOMMU_VFIO_IOAS_GET = 0,
	IOMMU_VFIO_IOAS_SET = 1,
	IOMMU_VFIO_IOAS_CLEAR = 2,
};

/* The IOAS that the VFIO container compatibility layer uses. */
struct iommu_vfio_ioas {
	__u32 size;
	__u32 ioas_id;
	__u16 op;
	__u16 __reserved;
};
#define IOMMU_VFIO_IOAS _IO(IOMMUFD_TYPE, IOMMUFD_CMD_VFIO_IOAS)

enum iommufd_hwpt_alloc_flags {
	IOMMU_HWPT_ALLOC_NEST_PARENT = 1 << 0,
	IOMMU_HWPT_ALLOC_DIRTY_TRACKING = 1 << 1,
	IOMMU_HWPT_FAULT_ID_VALID = 1 << 2,
};

enum iommu_hwpt_vtd_s1_flags {
	IOMMU_VTD_S1_SRE = 1 << 0,
	IOMMU_VTD_S1_EAFE = 1 << 1,
	IOMMU_VTD_S1_WPE = 1 << 2,
};

struct iommu_hwpt_vtd_s1 {
	__aligned_u64 flags;
	__aligned_u64 pgtbl_addr;
	__u32 addr_width;
	__u32 __reserved;
};

enum iommu_hwpt_data_type {
	IOMMU_HWPT_DATA_NONE = 0,
	IOMMU_HWPT_DATA_VTD_S1 = 1,
};

/* A hardware page table (domain) for device dev_id, on the IOAS or parent
 * HWPT pt_id. */
struct iommu_hwpt_alloc {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 pt_id;
	__u32 out_hwpt_id;
	__u32 __reserved;
	__u32 data_type;
	__u32 data_len;
	__aligned_u64 data_uptr;
	__u32 fault_id;
	__u32 __reserved2;
};
#define IOMMU_HWPT_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_ALLOC)

enum iommu_hw_info_vtd_flags {
	IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17 = 1 << 0,
};

struct iommu_hw_info_vtd {
	__u32 flags;
	__u32 __reserved;
	__aligned_u64 cap_reg;
	__aligned_u64 ecap_reg;
};

enum iommu_hw_info_type {
	IOMMU_HW_INFO_TYPE_NONE = 0,
	IOMMU_HW_INFO_TYPE_DEFAULT = 0,
	IOMMU_HW_INFO_TYPE_INTEL_VTD = 1,
};

enum iommufd_hw_capabilities {
	IOMMU_HW_CAP_DIRTY_TRACKING = 1 << 0,
	IOMMU_HW_CAP_PCI_PASID_EXEC = 1 << 1,
	IOMMU_HW_CAP_PCI_PASID_PRIV = 1 << 2,
};

enum iommufd_hw_info_flags {
	/* in_data_type names the type asked for; without it, the default. */
	IOMMU_HW_INFO_FLAG_INPUT_TYPE = 1 << 0,
};

/* The IOMMU's hardware information for device dev_id. */
struct iommu_hw_info {
	__u32 size;
	__u32 flags;
	__u32 dev_id;
	__u32 data_len;
	__aligned_u64 data_uptr;
	union {
		__u32 in_data_type;
		__u32 out_data_type;
	};
	__u8 out_max_pasid_log2;
	__u8 __reserved[3];
	__aligned_u64 out_capabilities;
};
#define IOMMU_GET_HW_INFO _IO(IOMMUFD_TYPE, IOMMUFD_CMD_GET_HW_INFO)

enum iommufd_hwpt_set_dirty_tracking_flags {
	IOMMU_HWPT_DIRTY_TRACKING_ENABLE = 1,
};

struct iommu_hwpt_set_dirty_tracking {
	__u32 size;
	__u32 flags;
	__u32 hwpt_id;
	__u32 __reserved;
};
#define IOMMU_HWPT_SET_DIRTY_TRACKING \
	_IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING)

enum iommufd_hwpt_get_dirty_bitmap_flags {
	IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR = 1,
};

/* One bit per page_size page of [iova, iova+length) into the bitmap at
 * data. */
struct iommu_hwpt_get_dirty_bitmap {
	__u32 size;
	__u32 hwpt_id;
	__u32 flags;
	__u32 __reserved;
	__aligned_u64 iova;
	__aligned_u64 length;
	__aligned_u64 page_size;
	__aligned_u64 data;
};
#define IOMMU_HWPT_GET_DIRTY_BITMAP \
	_IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP)

enum iommu_hwpt_invalidate_data_type {
	IOMMU_HWPT_INVALIDATE_DATA_VTD_S1 = 0,
};

enum iommu_hwpt_vtd_s1_invalidate_flags {
	IOMMU_VTD_INV_FLAGS_LEAF = 1 << 0,
};

struct iommu_hwpt_vtd_s1_invalidate {
	__aligned_u64 addr;
	__aligned_u64 npages;
	__u32 flags;
	__u32 __reserved;
};

struct iommu_hwpt_invalidate {
	__u32 size;
	__u32 hwpt_id;
	__aligned_u64 data_uptr;
	__u32 data_type;
	__u32 entry_len;
	__u32 entry_num;
	__u32 __reserved;
};
#define IOMMU_HWPT_INVALIDATE _IO(IOMMUFD_TYPE, IOMMUFD_CMD_HWPT_INVALIDATE)

enum iommu_hwpt_pgfault_flags {
	IOMMU_PGFAULT_FLAGS_PASID_VALID = (1 << 0),
	IOMMU_PGFAULT_FLAGS_LAST_PAGE = (1 << 1),
};

enum iommu_hwpt_pgfault_perm {
	IOMMU_PGFAULT_PERM_READ = (1 << 0),
	IOMMU_PGFAULT_PERM_WRITE = (1 << 1),
	IOMMU_PGFAULT_PERM_EXEC = (1 << 2),
	IOMMU_PGFAULT_PERM_PRIV = (1 << 3),
};

/* One fault record read from a fault queue's fd. */
struct iommu_hwpt_pgfault {
	__u32 flags;
	__u32 dev_id;
	__u32 pasid;
	__u32 grpid;
	__u32 perm;
	__u32 __reserved;
	__aligned_u64 addr;
	__u32 length;
	__u32 cookie;
};

enum iommufd_page_response_code {
	IOMMUFD_PAGE_RESP_SUCCESS = 0,
	IOMMUFD_PAGE_RESP_INVALID = 1,
};

/* One response written to a fault queue's fd. */
struct iommu_hwpt_page_response {
	__u32 cookie;
	__u32 code;
};

struct iommu_fault_alloc {
	__u32 size;
	__u32 flags;
	__u32 out_fault_id;
	__u32 out_fault_fd;
};
#define IOMMU_FAULT_QUEUE_ALLOC _IO(IOMMUFD_TYPE, IOMMUFD_CMD_FAULT_QUEUE_ALLOC)

/* ---- The published layouts (Linux 6.12, LP64), pinned. ---- */
#ifdef __cplusplus
#define IOAS_UAPI_ASSERT(cond) static_assert(cond, #cond)
#else
#define IOAS_UAPI_ASSERT(cond) _Static_assert(cond, #cond)
#endif
#define IOAS_UAPI_AT(type, field, off) IOAS_UAPI_ASSERT(offsetof(struct type, field) == (off))
#define IOAS_UAPI_SIZE(type, n) IOAS_UAPI_ASSERT(sizeof(struct type) == (n))

IOAS_UAPI_ASSERT(IOMMU_DESTROY == 0x3b80);
IOAS_UAPI_ASSERT(IOMMU_IOAS_ALLOC == 0x3b81);
IOAS_UAPI_ASSERT(IOMMU_IOAS_ALLOW_IOVAS == 0x3b82);
IOAS_UAPI_ASSERT(IOMMU_IOAS_COPY == 0x3b83);
IOAS_UAPI_ASSERT(IOMMU_IOAS_IOVA_RANGES == 0x3b84);
IOAS_UAPI_ASSERT(IOMMU_IOAS_MAP == 0x3b85);
IOAS_UAPI_ASSERT(IOMMU_IOAS_UNMAP == 0x3b86);
IOAS_UAPI_ASSERT(IOMMU_OPTION == 0x3b87);
IOAS_UAPI_ASSERT(IOMMU_VFIO_IOAS == 0x3b88);
IOAS_UAPI_ASSERT(IOMMU_HWPT_ALLOC == 0x3b89);
IOAS_UAPI_ASSERT(IOMMU_GET_HW_INFO == 0x3b8a);
IOAS_UAPI_ASSERT(IOMMU_HWPT_SET_DIRTY_TRACKING == 0x3b8b);
IOAS_UAPI_ASSERT(IOMMU_HWPT_GET_DIRTY_BITMAP == 0x3b8c);
IOAS_UAPI_ASSERT(IOMMU_HWPT_INVALIDATE == 0x3b8d);
IOAS_UAPI_ASSERT(IOMMU_FAULT_QUEUE_ALLOC == 0x3b8e);

IOAS_UAPI_SIZE(iommu_destroy, 8);
IOAS_UAPI_AT(iommu_destroy, id, 4);
IOAS_UAPI_SIZE(iommu_ioas_alloc, 12);
IOAS_UAPI_AT(iommu_ioas_alloc, flags, 4);
IOAS_UAPI_AT(iommu_ioas_alloc, out_ioas_id, 8);
IOAS_UAPI_SIZE(iommu_iova_range, 16);
IOAS_UAPI_AT(iommu_iova_range, last, 8);
IOAS_UAPI_SIZE(iommu_ioas_iova_ranges, 32);
IOAS_UAPI_AT(iommu_ioas_iova_ranges, ioas_id, 4);
IOAS_UAPI_AT(iommu_ioas_iova_ranges, num_iovas, 8);
IOAS_UAPI_AT(iommu_ioas_iova_ranges, __reserved, 12);
IOAS_UAPI_AT(iommu_ioas_iova_ranges, allowed_iovas, 16);
IOAS_UAPI_AT(iommu_ioas_iova_ranges, out_iova_alignment, 24);
IOAS_UAPI_SIZE(iommu_ioas_allow_iovas, 24);
IOAS_UAPI_AT(iommu_ioas_allow_iovas, ioas_id, 4);
IOAS_UAPI_AT(iommu_ioas_allow_iovas, num_iovas, 8);
IOAS_UAPI_AT(iommu_ioas_allow_iovas, __reserved, 12);
IOAS_UAPI_AT(iommu_ioas_allow_iovas, allowed_iovas, 16);
IOAS_UAPI_SIZE(iommu_ioas_map, 40);
IOAS_UAPI_AT(iommu_ioas_map, flags, 4);
IOAS_UAPI_AT(iommu_ioas_map, ioas_id, 8);
IOAS_UAPI_AT(iommu_ioas_map, __reserved, 12);
IOAS_UAPI_AT(iommu_ioas_map, user_va, 16);
IOAS_UAPI_AT(iommu_ioas_map, length, 24);
IOAS_UAPI_AT(iommu_ioas_map, iova, 32);
IOAS_UAPI_SIZE(iommu_ioas_copy, 40);
IOAS_UAPI_AT(iommu_ioas_copy, flags, 4);
IOAS_UAPI_AT(iommu_ioas_copy, dst_ioas_id, 8);
IOAS_UAPI_AT(iommu_ioas_copy, src_ioas_id, 12);
IOAS_UAPI_AT(iommu_ioas_copy, length, 16);
IOAS_UAPI_AT(iommu_ioas_copy, dst_iova, 24);
IOAS_UAPI_AT(iommu_ioas_copy, src_iova, 32);
IOAS_UAPI_SIZE(iommu_ioas_unmap, 24);
IOAS_UAPI_AT(iommu_ioas_unmap, ioas_id, 4);
IOAS_UAPI_AT(iommu_ioas_unmap, iova, 8);
IOAS_UAPI_AT(iommu_ioas_unmap, length, 16);
IOAS_UAPI_SIZE(iommu_option, 24);
IOAS_UAPI_AT(iommu_option, option_id, 4);
IOAS_UAPI_AT(iommu_option, op, 8);
IOAS_UAPI_AT(iommu_option, __reserved, 10);
IOAS_UAPI_AT(iommu_option, object_id, 12);
IOAS_UAPI_AT(iommu_option, val64, 16);
IOAS_UAPI_SIZE(iommu_vfio_ioas, 12);
IOAS_UAPI_AT(iommu_vfio_ioas, ioas_id, 4);
IOAS_UAPI_AT(iommu_vfio_ioas, op, 8);
IOAS_UAPI_AT(iommu_vfio_ioas, __reserved, 10);
IOAS_UAPI_SIZE(iommu_hwpt_vtd_s1, 24);
IOAS_UAPI_AT(iommu_hwpt_vtd_s1, addr_width, 16);
IOAS_UAPI_SIZE(iommu_hwpt_alloc, 48);
IOAS_UAPI_AT(iommu_hwpt_alloc, flags, 4);
IOAS_UAPI_AT(iommu_hwpt_alloc, dev_id, 8);
IOAS_UAPI_AT(iommu_hwpt_alloc, pt_id, 12);
IOAS_UAPI_AT(iommu_hwpt_alloc, out_hwpt_id, 16);
IOAS_UAPI_AT(iommu_hwpt_alloc, __reserved, 20);
IOAS_UAPI_AT(iommu_hwpt_alloc, data_type, 24);
IOAS_UAPI_AT(iommu_hwpt_alloc, data_len, 28);
IOAS_UAPI_AT(iommu_hwpt_alloc, data_uptr, 32);
IOAS_UAPI_AT(iommu_hwpt_alloc, fault_id, 40);
IOAS_UAPI_AT(iommu_hwpt_alloc, __reserved2, 44);
IOAS_UAPI_SIZE(iommu_hw_info_vtd, 24);
IOAS_UAPI_AT(iommu_hw_info_vtd, cap_reg, 8);
IOAS_UAPI_AT(iommu_hw_info_vtd, ecap_reg, 16);
IOAS_UAPI_SIZE(iommu_hw_info, 40);
IOAS_UAPI_AT(iommu_hw_info, flags, 4);
IOAS_UAPI_AT(iommu_hw_info, dev_id, 8);
IOAS_UAPI_AT(iommu_hw_info, data_len, 12);
IOAS_UAPI_AT(iommu_hw_info, data_uptr, 16);
IOAS_UAPI_AT(iommu_hw_info, in_data_type, 24);
IOAS_UAPI_AT(iommu_hw_info, out_data_type, 24);
IOAS_UAPI_AT(iommu_hw_info, out_max_pasid_log2, 28);
IOAS_UAPI_AT(iommu_hw_info, __reserved, 29);
IOAS_UAPI_AT(iommu_hw_info, out_capabilities, 32);
IOAS_UAPI_SIZE(iommu_hwpt_set_dirty_tracking, 16);
IOAS_UAPI_AT(iommu_hwpt_set_dirty_tracking, flags, 4);
IOAS_UAPI_AT(iommu_hwpt_set_dirty_tracking, hwpt_id, 8);
IOAS_UAPI_AT(iommu_hwpt_set_dirty_tracking, __reserved, 12);
IOAS_UAPI_SIZE(iommu_hwpt_get_dirty_bitmap, 48);
IOAS_UAPI_AT(iommu_hwpt_get_dirty_bitmap, hwpt_id, 4);
IOAS_UAPI_AT(iommu_hwpt_get_dirty_bitmap, flags, 8);
IOAS_UAPI_AT(iommu_hwpt_get_dirty_bitmap, __reserved, 12);
IOAS_UAPI_AT(iommu_hwpt_get_dirty_bitmap, iova, 16);
IOAS_UAPI_AT(iommu_hwpt_get_dirty_bitmap, length, 24);
IOAS_UAPI_AT(iommu_hwpt_get_dirty_bitmap, page_size, 32);
IOAS_UAPI_AT(iommu_hwpt_get_dirty_bitmap, data, 40);
IOAS_UAPI_SIZE(iommu_hwpt_vtd_s1_invalidate, 24);
IOAS_UAPI_AT(iommu_hwpt_vtd_s1_invalidate, flags, 16);
IOAS_UAPI_SIZE(iommu_hwpt_invalidate, 32);
IOAS_UAPI_AT(iommu_hwpt_invalidate, hwpt_id, 4);
IOAS_UAPI_AT(iommu_hwpt_invalidate, data_uptr, 8);
IOAS_UAPI_AT(iommu_hwpt_invalidate, data_type, 16);
IOAS_UAPI_AT(iommu_hwpt_invalidate, entry_len, 20);
IOAS_UAPI_AT(iommu_hwpt_invalidate, entry_num, 24);
IOAS_UAPI_AT(iommu_hwpt_invalidate, __reserved, 28);
IOAS_UAPI_SIZE(iommu_hwpt_pgfault, 40);
IOAS_UAPI_AT(iommu_hwpt_pgfault, perm, 16);
IOAS_UAPI_AT(iommu_hwpt_pgfault, addr, 24);
IOAS_UAPI_AT(iommu_hwpt_pgfault, length, 32);
IOAS_UAPI_AT(iommu_hwpt_pgfault, cookie, 36);
IOAS_UAPI_SIZE(iommu_hwpt_page_response, 8);
IOAS_UAPI_SIZE(iommu_fault_alloc, 16);
IOAS_UAPI_AT(iommu_fault_alloc, out_fault_id, 8);
IOAS_UAPI_AT(iommu_fault_alloc, out_fault_fd, 12);

#endif /* IOAS_UAPI_IOMMUFD_H */
