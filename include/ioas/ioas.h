/*
 * ioas.h: the C API of ioas, for VMMs and drivers written in C.
 *
 * One `struct ioas_engine` holds a whole world, as one iommufd context does:
 * IO address spaces (IOASes, by name), the memory sources they map, and the
 * devices and domains attached to them. Semantics, errnos and their order are
 * those of SPEC.md (the same as the C++ interface in ioas/engine.hpp).
 *
 * Conventions
 *  - Every function that can fail returns 0 on success or a negative errno
 *    (-EINVAL, -ENOENT, -EEXIST, -EBUSY, -EPERM, -ENOSPC, -EOVERFLOW,
 *    -EADDRINUSE, -ENOMEM). A failed call changes nothing.
 *  - After a failure, ioas_last_error(e) returns a message naming what was
 *    wrong (the range, the owner); it stays valid until the next call on e.
 *  - Names are NUL-terminated strings; the engine copies what it keeps.
 *  - Ranges are inclusive: [start, last]. Lengths are byte counts.
 *  - An engine is not thread-safe: use one from one thread at a time.
 *  - No C++ exception or type crosses this API.
 */
#ifndef IOAS_IOAS_H
#define IOAS_IOAS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ioas_engine;

struct ioas_range {
  uint64_t start;
  uint64_t last; /* inclusive */
};

/* Access rights of a mapping: IOAS_PROT_READ or IOAS_PROT_READ|IOAS_PROT_WRITE. */
enum { IOAS_PROT_READ = 1, IOAS_PROT_WRITE = 2 };

/* Options of a new IOAS (ioas_create's flags). */
enum {
  IOAS_CREATE_ZERO_PAGE_ALLOWED = 1, /* the kernel's policy: fixed maps at IOVA 0 allowed */
  IOAS_CREATE_NO_HUGE_PAGES = 2,     /* alignment >= PAGE, PAGE-sized leaves only */
};

/* Page-table formats of a domain. */
enum ioas_format { IOAS_FMT_X86_64 = 0, IOAS_FMT_ARM_LPAE = 1, IOAS_FMT_TCE = 2 };

/* Types of a device's reserved region, as in Linux reserved_regions. */
enum ioas_resv_type {
  IOAS_RESV_DIRECT = 0,
  IOAS_RESV_DIRECT_RELAXABLE = 1, /* not reserved (skipped), as the kernel does */
  IOAS_RESV_RESERVED = 2,
  IOAS_RESV_MSI = 3,
};

struct ioas_resv_region {
  struct ioas_range range;
  int type; /* an enum ioas_resv_type; anything else is -EINVAL */
};

/*
 * Attach arguments. fmt/aperture/pgsize_bitmap are used only when their
 * has_ flag is set; unset ones take the format's defaults for a new domain
 * (x86-64; aperture 0-0xffffffffffff and 4K|2M|1G; tce: 0-0x7fffffff and 4K),
 * and for an existing domain must, when set, equal its own (else -EINVAL).
 */
struct ioas_attach_args {
  const char* dev;
  const char* dom;
  int has_fmt;
  int fmt; /* an enum ioas_format; anything else is -EINVAL */
  int has_aperture;
  struct ioas_range aperture;
  int has_pgsize_bitmap;
  uint64_t pgsize_bitmap;
  const struct ioas_resv_region* resv; /* the device's reserved regions */
  size_t num_resv;
};

/* ---- engines ---- */

/* The production engine; NULL only when out of memory. */
struct ioas_engine* ioas_engine_new(void);
/* The executable spec (slow, obviously correct), for differential tests. */
struct ioas_engine* ioas_engine_new_model(void);
/* Frees the engine and everything in it. NULL is allowed. */
void ioas_engine_free(struct ioas_engine* e);
/* The message of the last failed call on e ("" after a success). */
const char* ioas_last_error(const struct ioas_engine* e);
/* "EINVAL" for -EINVAL or EINVAL, ... */
const char* ioas_errno_name(int err);

/* ---- IOASes ---- */

/* A new, empty IOAS. -EEXIST if the name is taken. */
int ioas_create(struct ioas_engine* e, const char* ioas, unsigned flags);

/* ---- memory sources ---- */

/*
 * Registers len bytes at user address va, physical address pa (same offset
 * within a page as va), writable or read-only. -EEXIST, -EINVAL (len 0,
 * page offsets differ), -EOVERFLOW.
 */
int ioas_mem_register(struct ioas_engine* e, const char* name, uint64_t va, uint64_t len,
                      uint64_t pa, int writable);
/* -ENOENT, -EBUSY while any area or pin uses it. */
int ioas_mem_unregister(struct ioas_engine* e, const char* name);

/* ---- mapping ---- */

/*
 * Maps len bytes of source `src` from byte `offset`, with prot. When
 * `fixed` is non-zero, at *iova; otherwise at the lowest fitting IOVA the
 * allocator finds, written to *iova.
 */
int ioas_map(struct ioas_engine* e, const char* ioas, const char* src, uint64_t offset,
             uint64_t len, int prot, int fixed, uint64_t* iova);
/*
 * Unmaps every area inside [iova, iova+len-1] (areas are removed whole;
 * all or nothing); *unmapped gets the bytes removed. iova 0 with len
 * UINT64_MAX unmaps everything.
 */
int ioas_unmap(struct ioas_engine* e, const char* ioas, uint64_t iova, uint64_t len,
               uint64_t* unmapped);
/* Splits the area holding iova so iova is the last byte of the left piece. */
int ioas_cut(struct ioas_engine* e, const char* ioas, uint64_t iova);
/*
 * Maps [src_iova, src_iova+len-1] of IOAS `from` into `ioas` again, sharing
 * its memory: at *iova when fixed, else at the chosen IOVA written to *iova.
 */
int ioas_copy(struct ioas_engine* e, const char* ioas, const char* from, uint64_t src_iova,
              uint64_t len, int prot, int fixed, uint64_t* iova);

/* ---- reserved and allowed ---- */

int ioas_reserve(struct ioas_engine* e, const char* ioas, struct ioas_range range,
                 const char* owner);
int ioas_unreserve(struct ioas_engine* e, const char* ioas, const char* owner);
/* Replaces the allowed list (n == 0 clears it). */
int ioas_allow(struct ioas_engine* e, const char* ioas, const struct ioas_range* ranges,
               size_t n);
/*
 * The valid IOVA ranges (the complement of the reserved set) and the IOVA
 * alignment. Writes up to `cap` ranges, sets *n to how many there are, and
 * returns -EMSGSIZE when cap < *n (as IOMMU_IOAS_IOVA_RANGES does).
 * `alignment` may be NULL.
 */
int ioas_ranges(struct ioas_engine* e, const char* ioas, struct ioas_range* out, size_t cap,
                size_t* n, uint64_t* alignment);

/* ---- devices and domains ---- */

int ioas_attach(struct ioas_engine* e, const char* ioas, const struct ioas_attach_args* args);
int ioas_detach(struct ioas_engine* e, const char* dev);

/* ---- what the hardware sees ---- */

/*
 * The physical address and prot (IOAS_PROT_*) of IOVA `iova` in domain
 * `dom`; -EFAULT when the IOVA is not mapped there.
 */
int ioas_translate(struct ioas_engine* e, const char* dom, uint64_t iova, uint64_t* pa,
                   int* prot);

/* ---- accesses (emulated devices pinning pages) ---- */

/* Pins [iova, iova+len-1]; *id gets the pin id (ids count from 1 per IOAS). */
int ioas_pin(struct ioas_engine* e, const char* ioas, uint64_t iova, uint64_t len, int write,
             int release_on_unmap, uint32_t* id);
int ioas_unpin(struct ioas_engine* e, const char* ioas, uint32_t id);

#ifdef __cplusplus
}
#endif

#endif /* IOAS_IOAS_H */
