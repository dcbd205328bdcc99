// libioas-iommufd.so: /dev/iommu for a program that runs with
// LD_PRELOAD=libioas-iommufd.so, on a machine that may have no iommufd.
//
// open/open64/openat/openat64 (and glibc's fortified __open_2 family) of
// "/dev/iommu" open a context of the iommufd layer (include/ioas/iommufd.h)
// on the engine named by IOAS_IOMMUFD_ENGINE (impl, the default, or model),
// and return a real descriptor the program owns (a memfd named
// "ioas-iommufd"), so that the number is never reused under us. ioctl on such
// a descriptor goes to the layer; close, dup, dup2, dup3 and
// fcntl(F_DUPFD, F_DUPFD_CLOEXEC) keep the table of descriptors: a context
// lives while one of its descriptors is open, as the kernel's file does.
// Closing an access descriptor (IOMMU_TEST_OP_CREATE_ACCESS) ends its access.
// Everything else goes to the next definition (libc's) through
// dlsym(RTLD_NEXT).
//
// Processes: the table and the contexts are memory of this process. A forked
// child starts with a copy of them, as a fresh process image would with
// copies of the files' state: from then on the child's ioctls change only
// its copy and the parent's only the parent's. The kernel shares one context
// between the two (a forked descriptor is the same open file); programs that
// rely on that, a child mapping into its parent's IOAS, see a difference.
// After exec the descriptors remain open but are plain memfds: ioctl on them
// gives ENOTTY.
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstring>
#include <map>
#include <mutex>

#include "ioas/iommufd.h"

namespace {

constexpr const char* kDevice = "/dev/iommu";

template <typename F>
F next(const char* name) {
  return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

using open_fn = int (*)(const char*, int, ...);
using openat_fn = int (*)(int, const char*, int, ...);
using open2_fn = int (*)(const char*, int);
using openat2_fn = int (*)(int, const char*, int);
using close_fn = int (*)(int);
using ioctl_fn = int (*)(int, unsigned long, ...);
using dup_fn = int (*)(int);
using dup2_fn = int (*)(int, int);
using dup3_fn = int (*)(int, int, int);
using fcntl_fn = int (*)(int, int, ...);

// Descriptor -> layer handle, and the count of descriptors of each handle.
std::mutex g_fds_lock;
std::map<int, int> g_fds;
std::map<int, int> g_open_count;

bool is_device(const char* path) { return path && std::strcmp(path, kDevice) == 0; }

int open_device(int flags) {
  int handle = ioas_iommufd_open();
  if (handle < 0) return -1;
  int fd = memfd_create("ioas-iommufd", (flags & O_CLOEXEC) ? MFD_CLOEXEC : 0);
  if (fd < 0) {
    int e = errno;
    ioas_iommufd_close(handle);
    errno = e;
    return -1;
  }
  std::lock_guard lock(g_fds_lock);
  g_fds[fd] = handle;
  g_open_count[handle] = 1;
  return fd;
}

// The descriptor `fd` stops naming its context (closed or replaced).
void forget(int fd) {
  int handle = -1;
  {
    std::lock_guard lock(g_fds_lock);
    auto it = g_fds.find(fd);
    if (it == g_fds.end()) return;
    handle = it->second;
    g_fds.erase(it);
    if (--g_open_count[handle] > 0) return;
    g_open_count.erase(handle);
  }
  ioas_iommufd_close(handle);
}

// `copy` now names the same context as `fd` (a dup), when fd names one.
void duplicated(int fd, int copy) {
  if (copy < 0) return;
  std::lock_guard lock(g_fds_lock);
  auto it = g_fds.find(fd);
  if (it == g_fds.end()) return;
  g_fds[copy] = it->second;
  ++g_open_count[it->second];
}

int handle_of(int fd) {
  std::lock_guard lock(g_fds_lock);
  auto it = g_fds.find(fd);
  return it == g_fds.end() ? -1 : it->second;
}

// An open-like function of libc: /dev/iommu opens a context, any other path
// goes to libc's definition, with the mode argument when the flags say one
// follows (O_CREAT, O_TMPFILE), as libc reads it.
#define IOAS_OPEN_WITH_MODE(name, fn_type, params, args)                 \
  int name params {                                                       \
    if (is_device(path)) return open_device(flags);                       \
    mode_t mode = 0;                                                      \
    if (flags & (O_CREAT | O_TMPFILE)) {                                  \
      va_list ap;                                                         \
      va_start(ap, flags);                                                \
      mode = static_cast<mode_t>(va_arg(ap, int));                        \
      va_end(ap);                                                         \
    }                                                                     \
    static auto real = next<fn_type>(#name);                              \
    return real args;                                                     \
  }
// glibc's fortified variants (_FORTIFY_SOURCE), which take no mode.
#define IOAS_OPEN_FORTIFIED(name, fn_type, params, args) \
  int name params {                                     \
    if (is_device(path)) return open_device(flags);     \
    static auto real = next<fn_type>(#name);            \
    return real args;                                   \
  }

}  // namespace

extern "C" {

IOAS_OPEN_WITH_MODE(open, open_fn, (const char* path, int flags, ...), (path, flags, mode))
IOAS_OPEN_WITH_MODE(open64, open_fn, (const char* path, int flags, ...), (path, flags, mode))
IOAS_OPEN_WITH_MODE(openat, openat_fn, (int dirfd, const char* path, int flags, ...),
                    (dirfd, path, flags, mode))
IOAS_OPEN_WITH_MODE(openat64, openat_fn, (int dirfd, const char* path, int flags, ...),
                    (dirfd, path, flags, mode))
IOAS_OPEN_FORTIFIED(__open_2, open2_fn, (const char* path, int flags), (path, flags))
IOAS_OPEN_FORTIFIED(__open64_2, open2_fn, (const char* path, int flags), (path, flags))
IOAS_OPEN_FORTIFIED(__openat_2, openat2_fn, (int dirfd, const char* path, int flags),
                    (dirfd, path, flags))

int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  int handle = handle_of(fd);
  if (handle >= 0) return ioas_iommufd_ioctl(handle, request, arg);
  static auto real = next<ioctl_fn>("ioctl");
  return real(fd, request, arg);
}

int close(int fd) {
  forget(fd);
  ioas_iommufd_release_fd(fd);
  static auto real = next<close_fn>("close");
  return real(fd);
}

int dup(int fd) {
  static auto real = next<dup_fn>("dup");
  int copy = real(fd);
  duplicated(fd, copy);
  return copy;
}

int dup2(int fd, int copy) {
  static auto real = next<dup2_fn>("dup2");
  if (fd == copy) return real(fd, copy);
  int rc = real(fd, copy);
  if (rc >= 0) {
    forget(copy);
    duplicated(fd, copy);
  }
  return rc;
}

int dup3(int fd, int copy, int flags) {
  static auto real = next<dup3_fn>("dup3");
  int rc = real(fd, copy, flags);
  if (rc >= 0) {
    forget(copy);
    duplicated(fd, copy);
  }
  return rc;
}

static int fcntl_common(fcntl_fn real, int fd, int cmd, void* arg) {
  int rc = real(fd, cmd, arg);
  if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) duplicated(fd, rc);
  return rc;
}

int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  static auto real = next<fcntl_fn>("fcntl");
  return fcntl_common(real, fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  static auto real = next<fcntl_fn>("fcntl64");
  return fcntl_common(real, fd, cmd, arg);
}

}  // extern "C"
