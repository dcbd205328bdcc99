// ioas/rules.hpp: what differs between SPEC's default mode and kernel mode.
//
// Every rule SPEC.md marks **beyond** gives way to Linux iommufd in kernel
// mode (SPEC "Kernel mode"). Each difference is one named field here, and
// each engine consults that field at the one place the rule is decided; no
// other code asks which mode an IOAS is in. docs/kernel-mode.md lists the
// same rows with the tests that show them on both engines.
//
// Kernel references are Linux 6.12, drivers/iommu/iommufd/.
#pragma once

#include <cerrno>
#include <initializer_list>
#include <optional>

#include "ioas/engine.hpp"

namespace ioas {

struct ModeRules {
  // The zero-page policy the mode imposes, whatever IoasOptions says.
  // Kernel: io_pagetable.c:iopt_init_table reserves nothing, iopt_check_iova
  // has no test for IOVA 0 (a fixed map at 0 succeeds), and iopt_alloc_iova
  // searches [PAGE_SIZE, ULONG_MAX - PAGE_SIZE] (automatic placement never
  // returns 0): ZeroPage::kAllowed. Default: nullopt (the option decides).
  std::optional<ZeroPage> forced_zero_page;

  // Unmap removes nothing unless it can remove everything it touches.
  // Kernel: io_pagetable.c:iopt_unmap_iova_range walks the areas in IOVA
  // order and removes each before looking at the next; an area only partly
  // inside the range stops it with ENOENT, and the areas already removed
  // stay removed (ioas.c:iommufd_ioas_unmap then reports the error alone).
  bool unmap_all_or_nothing = true;

  // The errno of an unmap that meets a pin whose access does not release.
  // Default: EBUSY, nothing removed. Kernel: iopt_unmap_iova_range notifies
  // the access and retries; after 100 tries it gives up with EDEADLOCK
  // (WARN_ON(tries > 100)), the areas before it removed.
  int unmap_stuck_pin_errno = EBUSY;

  // Cut splits an area held by a domain, splitting a large page if one
  // crosses the new boundary. Kernel: io_pagetable.c:iopt_area_split refuses
  // (EINVAL) to split an area that has a storage domain while large pages
  // are enabled ("a domain could have been mapped with huge pages"),
  // whatever page size the domain actually used there.
  bool cut_splits_domain_areas = true;

  // Map and copy accept a write-only prot (Prot::kWrite). Default: no, only
  // r and rw (EINVAL), since x86-64 and arm-lpae leaves cannot enforce it.
  // Kernel: ioas.c:iommufd_ioas_map and iommufd_ioas_copy refuse only a
  // request with neither IOMMU_IOAS_MAP_READABLE nor _WRITEABLE, and
  // conv_iommu_prot gives IOMMU_WRITE alone; io_pagetable.c:iopt_insert_area
  // stores it as the area's iommu_prot. What a domain then holds is the
  // format's (leaf_prot below); pins and accesses ask the area
  // (device.c:check_area_prot: a read needs IOMMU_READ, a write
  // IOMMU_WRITE, else EPERM).
  bool write_only_maps = false;

  // A fixed IOVA's alignment (EINVAL) is checked before iova + length
  // passing 2^64-1 (EOVERFLOW). Default: no, the overflow is an argument
  // check, made before the memory source is looked at. Kernel:
  // io_pagetable.c:iopt_check_iova tests the alignment, then
  // check_add_overflow, after the user memory was taken (iopt_alloc_pages)
  // and the length's alignment checked (iopt_alloc_area_pages).
  bool fixed_iova_alignment_before_overflow = false;

  // The user address's page offset is checked against the alignment
  // (EINVAL) once the IOVA is settled: after a fixed IOVA's checks (its
  // reserved ranges, EINVAL, and areas, EEXIST) or the automatic choice.
  // Default: no, with the IOVA's and the length's alignment. Kernel:
  // io_pagetable.c:iopt_insert_area (`area->page_offset & (iova_alignment
  // - 1)` → -EINVAL) runs after iopt_check_iova or iopt_alloc_iova.
  bool page_offset_after_iova = false;

  // A copy takes the source's areas (ENOENT where they do not cover it)
  // before it checks the destination, the overflow of a fixed destination
  // included (then in the order of fixed_iova_alignment_before_overflow).
  // Default: no, the destination's overflow is an argument check. Kernel:
  // ioas.c:iommufd_ioas_copy calls iopt_get_pages on the source, then
  // iopt_map_pages (iopt_check_iova) on the destination.
  bool copy_source_before_destination = false;

  // An IOVA or length of 2^64-1 (ULONG_MAX on 64-bit Linux) in map, copy
  // (source, fixed destination, length) and unmap (but unmap all) is
  // EOVERFLOW, before the prot or any other check of the arguments.
  // Default: no, 2^64-1 is a value like any other. Kernel:
  // ioas.c:iommufd_ioas_map and iommufd_ioas_copy (`>= ULONG_MAX` →
  // -EOVERFLOW, before the flags' READABLE/WRITEABLE test),
  // iommufd_ioas_unmap (the same, unless iova 0 and length U64_MAX).
  bool ulong_max_overflows = false;

  // The first pin's need for PAGE-aligned areas (EADDRINUSE) is checked
  // before its range (length, overflow, areas, permission). Default: no,
  // after them. Kernel: a pin is an access (device.c:iommufd_access_create,
  // iommufd_access_attach → io_pagetable.c:iopt_add_access, which raises
  // the alignment to PAGE: iopt_calculate_iova_alignment,
  // iopt_check_iova_alignment → -EADDRINUSE), made before
  // iommufd_access_pin_pages looks at the range.
  bool pin_alignment_before_range = false;

  // A pin checks the areas it covers one at a time, in IOVA order, and a
  // byte in no area is ENOENT only once the areas before it passed: first
  // that the pin starts at a page boundary of the user memory of the area
  // holding its first byte (EINVAL), then each area's permission (EPERM).
  // Default: a byte in no area (ENOENT) before any area's permission, and a
  // pin may start at any byte. Kernel: device.c:iommufd_access_pin_pages
  // walks iopt_for_each_contig_area and fails an area on
  // !iopt_area_contig_is_aligned (-EINVAL), then on !check_area_prot
  // (-EPERM); !iopt_area_contig_done after the walk is -ENOENT.
  // iopt_area_contig_is_aligned also wants each later area to start at a
  // page boundary and an area the pin goes on past to end at a page end:
  // those always hold here, since every area is PAGE aligned before a pin
  // looks at its range (pin_alignment_before_range; the kernel's access).
  bool pin_checks_each_area_in_turn = false;

  // Whether a copy may ask write of an area depends on the area's pages:
  // they are writable only when the map that made them asked for write, and
  // a copy or cut carries them as they are. A copy asking write of pages
  // that are not is EPERM once the destination is settled, per piece before
  // its page offset (page_offset_after_iova). Default: the memory source
  // decides, with the source's checks, before the destination. Kernel:
  // io_pagetable.c:iopt_map_user_pages (iopt_alloc_pages(uptr, length,
  // iommu_prot & IOMMU_WRITE)), iopt_get_pages (the copy takes the source
  // areas' pages), iopt_area_split (both halves keep them),
  // iopt_insert_area (`(iommu_prot & IOMMU_WRITE) && !pages->writable` →
  // -EPERM, before `area->page_offset & (iova_alignment - 1)`), called per
  // piece by iopt_alloc_area_pages after iopt_check_iova or iopt_alloc_iova.
  bool copy_write_needs_writable_pages = false;

  // Automatic placement moves each allowed span's start (the window's,
  // PAGE, when there is no allowed range) to the candidate formula's
  // ALIGN_UP(start, a) | page_offset, skipping a span where nothing fits
  // from there, and then applies the formula to each hole from that start.
  // Default: once, to each hole of the span. Kernel:
  // io_pagetable.c:iopt_alloc_iova (__alloc_iova_check_used updates
  // allowed_span.start_used, then interval_tree_for_each_double_span from
  // it, __alloc_iova_check_hole per hole). Only a user address that is not
  // page aligned (a page offset other than 0) tells them apart: the
  // window's start PAGE becomes PAGE | page_offset, where a hole that
  // starts a little above PAGE would give its own start | page_offset.
  bool auto_aligns_span_start = false;

  friend bool operator==(const ModeRules&, const ModeRules&) = default;
};

// The rules of a mode (one table; tests pin each field).
ModeRules rules_for(IoasMode mode);

// Whether the rules refuse any of `values` as 2^64-1 (ulong_max_overflows).
bool refuses_ulong_max(const ModeRules& rules, std::initializer_list<u64> values);

// What a leaf of format f holds for an area mapped with `area` (r, w or
// rw): the permission the walker enforces, translate reports and check()
// compares (invariant 7). x86-64 and arm-lpae have no write-only encoding
// and make it read-write, as Linux does: VT-d's first stage writes P (bit 0,
// DMA_FL_PTE_PRESENT, set whatever the prot) and R/W for IOMMU_WRITE
// (intel/iommu.c:__domain_mapping), AMD v2 PRESENT and RW
// (amd/io_pgtable_v2.c:set_pte_attr), arm stage 1 leaves AP[2] (RDONLY)
// clear unless the prot is IOMMU_READ without IOMMU_WRITE
// (io-pgtable-arm.c:arm_lpae_prot_to_pte). tce holds it as given (TCE_PCI_WRITE
// without TCE_PCI_READ: a read faults), and so does the mock, whose slots
// record read and write apart (the kernel's mock stores no permission).
Prot leaf_prot(Format f, Prot area);

// A format's facts that attach checks (SPEC "attach", "Kernel mode"), one
// table for both engines: the defaults of a new domain and the page-size
// sets it accepts.
//   x86-64, arm-lpae: a non-empty subset of 4K|2M|1G; aperture 0-2^48-1.
//   tce: exactly one power of two; aperture 0-0x7fffffff.
//   mock: 2K, or 2K|1M (selftest.c:mock_domain_alloc_paging: pgsize_bitmap
//   = MOCK_IO_PAGE_SIZE, | MOCK_HUGE_PAGE_SIZE for a huge device);
//   aperture MOCK_APERTURE_START-MOCK_APERTURE_LAST (iommufd_test.h:
//   1UL << 24 .. (1UL << 31) - 1).
Range default_aperture(Format f);
u64 default_pgsizes(Format f);
// Whether `pgsizes` is a page-size set a new domain of format f may have.
bool pgsizes_allowed(Format f, u64 pgsizes);
// What pgsizes_allowed accepts, for messages ("a non-empty subset of ...").
const char* pgsizes_rule(Format f);

}  // namespace ioas
