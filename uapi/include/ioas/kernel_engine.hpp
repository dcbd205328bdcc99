// ioas/kernel_engine.hpp: an ioas::Engine that drives an iommufd through its
// ioctls, so Linux's own iommufd can be replayed and compared with the model
// and the production engine (the "kernel" engine).
//
// It speaks the uAPI of ioas/uapi/iommufd.h and, where the kernel was built
// with CONFIG_IOMMUFD_TEST, the selftest commands of ioas/uapi/iommufd_test.h.
// The ioctls go through an IommufdPort: a descriptor on /dev/iommu with
// ioctl(2) (open_dev_iommu), or, on a machine without one, ioas's own
// userspace iommufd (open_userspace_iommufd, in libioas-iommufd), which is
// how the engine is tested where there is no kernel iommufd.
//
// What each operation becomes:
//   create_ioas    IOMMU_IOAS_ALLOC (kernel mode only), then IOMMU_OPTION
//                  HUGE_PAGES=0 for huge_pages=false
//   add_memory     a real user buffer: anonymous pages mmap'ed at exactly
//                  [va, va+len) (MAP_FIXED_NOREPLACE; sources that overlap
//                  share pages); EADDRNOTAVAIL when an address is taken
//   map            IOMMU_IOAS_MAP of user_va = va + offset (fixed or not)
//   unmap          IOMMU_IOAS_UNMAP (unmap all: iova 0, length 2^64-1)
//   copy           IOMMU_IOAS_COPY
//   allow, ranges  IOMMU_IOAS_ALLOW_IOVAS, IOMMU_IOAS_IOVA_RANGES
//   reserve        IOMMU_TEST_OP_ADD_RESERVED
//   attach         IOMMU_TEST_OP_MOCK_DOMAIN(_FLAGS): a mock device on the
//                  IOAS, whose auto domain is the kernel's mock domain
//                  (MOCK_FLAGS_DEVICE_HUGE_IOVA for pgsizes 2K|1M)
//   detach         IOMMU_DESTROY of the mock device
//   pin, unpin     a selftest access per IOAS, open exactly while the IOAS
//                  has pins (IOMMU_TEST_OP_CREATE_ACCESS, pin-pages kind;
//                  attached, it makes the IOAS's alignment PAGE), and
//                  IOMMU_TEST_OP_ACCESS_PAGES / DESTROY_ACCESS_PAGES (a pin
//                  an unmap released is ENOENT); a pin inside one area passes its
//                  user address, so the kernel also checks that the pages
//                  it pinned are the ones behind that address
//
// What the kernel cannot express is refused before anything is asked of it,
// with errno kNotExpressible (ENOSYS) and a message that says why: default
// mode, other formats and apertures, reserved regions of devices, memory
// with pa != va or read-only memory, unreserve, cut, pins that do not release,
// dirty tracking, translate, dma, uva and leaves (the uAPI observes none of
// them), and the selftest operations on a kernel without CONFIG_IOMMUFD_TEST.
// A harness tells such a refusal from an answer by that errno.
//
// What snapshot() can observe: the areas, pins and domains the engine made
// and saw succeed (the kernel's answers decide them; after a failed unmap,
// which areas went is asked of the kernel with IOMMU_IOAS_COPY of each one),
// and the reserved set as the complement of IOMMU_IOAS_IOVA_RANGES, whose
// owners the uAPI does not tell (reported as owner kind kUser, name
// "kernel"), merged with the allowed list it also hides (the allowed list
// reads back empty). Translations and leaves are not observable.
//
// The engine is not thread-safe, and cannot clone itself.
#pragma once

#include <memory>
#include <string>

#include "ioas/engine.hpp"

namespace ioas {

// The errno of a refusal "the kernel cannot express this".
inline constexpr int kNotExpressible = 38;  // ENOSYS on Linux
// The errno of a memory source whose addresses are taken in this process.
inline constexpr int kAddressUnavailable = 99;  // EADDRNOTAVAIL on Linux

// One open iommufd: where the ioctls go.
class IommufdPort {
 public:
  virtual ~IommufdPort() = default;
  // One ioctl: 0, or a negative errno.
  virtual int ioctl(unsigned long request, void* arg) = 0;
  // Closes a descriptor the iommufd handed out (a selftest access).
  virtual void close_fd(int fd) = 0;
  // "/dev/iommu" or "userspace iommufd (impl)", for messages.
  virtual std::string describe() const = 0;
};

// /dev/iommu (or `path`) opened read-write; the open's errno when it fails.
Result<std::unique_ptr<IommufdPort>> open_dev_iommu(const std::string& path = "/dev/iommu");

// ioas's userspace iommufd on engine "impl" or "model" (libioas-iommufd's
// ioas_iommufd_open_engine); defined in the ioas_iommufd library.
Result<std::unique_ptr<IommufdPort>> open_userspace_iommufd(const std::string& engine);

// A kernel engine on `port`. It probes the port once: whether the selftest
// commands answer (CONFIG_IOMMUFD_TEST) and whether huge pages can be turned
// off. Errors: EIO when the port cannot allocate an IOAS.
Result<std::unique_ptr<Engine>> make_kernel_engine(std::unique_ptr<IommufdPort> port);

}  // namespace ioas
