/* Run with LD_PRELOAD=libioas-iommufd.so (ctest uapi.preload.<engine>):
 * /dev/iommu opens as a real descriptor whose ioctls reach the layer; dup,
 * dup2 and fcntl(F_DUPFD) name the same context, which lives until its last
 * descriptor is closed; other files are untouched. Exit 0 when every check
 * holds; otherwise the failed check is printed. */
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

	if (failures)
		return 1;
	printf("preload: all checks hold\n");
	return 0;
}
