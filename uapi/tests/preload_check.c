/* Run with LD_PRELOAD=libioas-iommufd.so (ctest uapi.preload.<engine>):
 * /dev/iommu opens as a real descriptor whose ioctls reach the layer; dup,
 * dup2 and fcntl(F_DUPFD) name the same context, which lives until its last
 * descriptor is closed; other files are untouched. Every entry point libc
 * has for opening a file (open, open64, openat, openat64 and the fortified
 * __open_2, __open64_2, __openat_2) opens the device, and passes other
 * paths on. Exit 0 when every check holds; otherwise the failed check is
 * printed. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ioas/uapi/iommufd.h"

static int failures;
#define CHECK(cond)                                                       \
	do {                                                              \
		if (!(cond)) {                                            \
			fprintf(stderr, "%s:%d: failed: %s (errno %s)\n", \
				__FILE__, __LINE__, #cond, strerror(errno));  \
			failures++;                                       \
		}                                                         \
	} while (0)

static int ioas_alloc(int fd, unsigned *id)
{
	struct iommu_ioas_alloc cmd = {.size = sizeof(cmd)};
	int rc = ioctl(fd, IOMMU_IOAS_ALLOC, &cmd);
	*id = cmd.out_ioas_id;
	return rc;
}

/* The fortified variants are declared by glibc only under _FORTIFY_SOURCE. */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);

#define OPEN_ENTRY_POINTS 7

/* Opens `path` through entry point `k` (0 .. OPEN_ENTRY_POINTS - 1). */
static int open_via(int k, const char *path, int flags)
{
	switch (k) {
	case 0: return open(path, flags);
	case 1: return open64(path, flags);
	case 2: return openat(AT_FDCWD, path, flags);
	case 3: return openat64(AT_FDCWD, path, flags);
	case 4: return __open_2(path, flags);
	case 5: return __open64_2(path, flags);
	case 6: return __openat_2(AT_FDCWD, path, flags);
	default: errno = EINVAL; return -1;
	}
}

static void every_open_entry_point(void)
{
	for (int k = 0; k < OPEN_ENTRY_POINTS; k++) {
		unsigned id = 0;
		int fd = open_via(k, "/dev/iommu", O_RDWR);
		if (fd < 0)
			fprintf(stderr, "entry point %d did not open /dev/iommu\n", k);
		CHECK(fd >= 0);
		CHECK(ioas_alloc(fd, &id) == 0 && id == 1); /* a fresh context */
		CHECK(close(fd) == 0);
		int other = open_via(k, "/dev/null", O_RDONLY); /* passed on to libc */
		CHECK(other >= 0);
		CHECK(ioctl(other, IOMMU_IOAS_ALLOC, &id) == -1 && errno == ENOTTY);
		CHECK(close(other) == 0);
	}
}

int main(void)
{
	unsigned id = 0;
	int fd = open("/dev/iommu", O_RDWR);
	CHECK(fd >= 0);
	CHECK(fcntl(fd, F_GETFD) >= 0); /* a real descriptor */
	CHECK(ioas_alloc(fd, &id) == 0 && id == 1);

	int copy = dup(fd);
	CHECK(copy >= 0 && copy != fd);
	CHECK(ioas_alloc(copy, &id) == 0 && id == 2); /* the same context */
	CHECK(close(fd) == 0);
	CHECK(ioas_alloc(copy, &id) == 0 && id == 3); /* alive while a copy is open */

	int third = fcntl(copy, F_DUPFD_CLOEXEC, 100);
	CHECK(third >= 100);
	CHECK(dup2(third, 200) == 200);
	CHECK(close(copy) == 0 && close(third) == 0);
	CHECK(ioas_alloc(200, &id) == 0 && id == 4);
	CHECK(close(200) == 0);
	CHECK(ioas_alloc(200, &id) == -1 && errno == EBADF); /* closed: libc's EBADF */

	int other = open("/dev/iommu", O_RDWR | O_CLOEXEC);
	CHECK(other >= 0);
	CHECK(ioas_alloc(other, &id) == 0 && id == 1); /* a fresh context */
	struct iommu_destroy bad = {.size = 4, .id = 1};
	CHECK(ioctl(other, IOMMU_DESTROY, &bad) == -1 && errno == EINVAL);
	CHECK(close(other) == 0);

	int devnull = open("/dev/null", O_RDONLY);
	CHECK(devnull >= 0);
	CHECK(ioctl(devnull, IOMMU_IOAS_ALLOC, &bad) == -1 && errno == ENOTTY);
	CHECK(close(devnull) == 0);

	/* Other paths reach libc with the mode that follows O_CREAT. */
	char dir[] = "/tmp/ioas-preload-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	umask(0);
	char path[64];
	snprintf(path, sizeof(path), "%s/by-open", dir);
	int created = open(path, O_CREAT | O_WRONLY, 0604);
	struct stat st;
	CHECK(created >= 0 && fstat(created, &st) == 0 && (st.st_mode & 0777) == 0604);
	CHECK(close(created) == 0 && unlink(path) == 0);
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	CHECK(dirfd >= 0);
	created = openat(dirfd, "by-openat", O_CREAT | O_WRONLY, 0640);
	CHECK(created >= 0 && fstat(created, &st) == 0 && (st.st_mode & 0777) == 0640);
	CHECK(close(created) == 0 && unlinkat(dirfd, "by-openat", 0) == 0);
	CHECK(close(dirfd) == 0 && rmdir(dir) == 0);

	every_open_entry_point();

	if (failures)
		return 1;
	printf("preload: all checks hold\n");
	return 0;
}
