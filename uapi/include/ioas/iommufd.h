/* ioas/iommufd.h: the Linux iommufd uAPI served in userspace by an ioas
 * engine (libioas-iommufd).
 *
 * A handle from ioas_iommufd_open() stands for one open /dev/iommu: its own
 * object table (IOAS, HWPT, device and selftest-device ids, allocated as the
 * kernel allocates them: the lowest free id from 1) over its own engine.
 * ioas_iommufd_ioctl() takes the kernel's request numbers and structs
 * (ioas/uapi/iommufd.h, and IOMMU_TEST_CMD of ioas/uapi/iommufd_test.h), and
 * outside iommufd's numbers the VFIO type1 container requests of
 * <linux/vfio.h> that the kernel serves on /dev/iommu (vfio_compat.c), and
 * answers as ioctl(2) does: 0 (VFIO_GET_API_VERSION and VFIO_CHECK_EXTENSION:
 * their value), or -1 with errno, after the kernel's argument checks in the
 * kernel's order. User pointers in the structs are addresses
 * of this process; a bad one gives EFAULT, as from the kernel.
 *
 * Handles are small integers of their own, not file descriptors (the
 * LD_PRELOAD library, libioas-iommufd.so, pairs them with real descriptors).
 * Every call is serialised by one process-wide lock. With IOAS_IOMMUFD_TRACE
 * set in the environment, every refused ioctl is printed on stderr with its
 * errno and reason.
 */
#ifndef IOAS_IOMMUFD_H
#define IOAS_IOMMUFD_H

#ifdef __cplusplus
extern "C" {
#endif

/* A new context on the engine named by IOAS_IOMMUFD_ENGINE ("impl", the
 * default, or "model"). Returns a handle >= 0, or -1 with errno (EINVAL for
 * an unknown engine name, ENOMEM). */
int ioas_iommufd_open(void);
/* The same on the named engine ("impl" or "model"). */
int ioas_iommufd_open_engine(const char* engine);
/* One ioctl on the context: 0 (or a VFIO query's value, >= 0), or -1 with
 * errno. ENOTTY for a request that is neither iommufd's nor a VFIO container
 * request the kernel serves on /dev/iommu, and for one that this layer does
 * not serve yet (the message of ioas_iommufd_last_error() says which). */
int ioas_iommufd_ioctl(int handle, unsigned long request, void* arg);
/* Destroys the context and every object in it. 0, or -1 with EBADF. */
int ioas_iommufd_close(int handle);
/* What the last failed call of this thread was refused for ("" after a
 * success). */
const char* ioas_iommufd_last_error(void);
/* Descriptor fd is about to be closed. When it is an access descriptor from
 * IOMMU_TEST_OP_CREATE_ACCESS, its access goes (it unpins everything and
 * leaves its IOAS, as the kernel's release of the file) and 1 is returned;
 * otherwise 0. The caller still closes fd. */
int ioas_iommufd_release_fd(int fd);

#ifdef __cplusplus
}
#endif

#endif /* IOAS_IOMMUFD_H */
