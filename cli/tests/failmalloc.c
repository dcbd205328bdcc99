/* cli/tests/failmalloc.c: an LD_PRELOAD library that makes one heap
 * allocation fail, for the out-of-memory sweep of `ioas`
 * (cli/tests/oom-sweep).
 *
 * Environment:
 *   IOAS_FAILMALLOC_AFTER_OPEN  counting starts when a file whose path
 *                               contains this text is opened (open, openat,
 *                               fopen and their 64-bit forms)
 *   IOAS_FAILMALLOC_NTH         the nth allocation after that (1-based)
 *                               returns NULL with ENOMEM; 0 or unset: none
 *   IOAS_FAILMALLOC_REPORT      a file the allocations counted are written to
 *                               at exit (one decimal number), by the process
 *                               that opened the file
 * Allocations are malloc, calloc, realloc, memalign, posix_memalign,
 * aligned_alloc, valloc and pvalloc (operator new calls malloc). The count
 * lives in a shared page, so a child made by fork counts on the same
 * sequence: the nth allocation fails in whichever process makes it.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);

struct shared {
	atomic_int armed;
	atomic_ulong count;
};

static struct shared* g;
static unsigned long nth;
static const char* trigger;

__attribute__((constructor)) static void failmalloc_init(void)
{
	void* p = mmap(NULL, sizeof(struct shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return;
	g = p;
	const char* n = getenv("IOAS_FAILMALLOC_NTH");
	nth = n ? strtoul(n, NULL, 10) : 0;
	trigger = getenv("IOAS_FAILMALLOC_AFTER_OPEN");
}

__attribute__((destructor)) static void failmalloc_report(void)
{
	const char* path = getenv("IOAS_FAILMALLOC_REPORT");
	/* Only the process that opened the file reports (not, say, a timeout(1)
	 * that runs it). */
	if (!g || !path || !atomic_load(&g->armed))
		return;
	int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	char buf[32];
	int len = snprintf(buf, sizeof buf, "%lu\n", atomic_load(&g->count));
	if (write(fd, buf, (size_t)len) != len)
		(void)0;
	close(fd);
}

/* Whether this allocation is the one that fails. */
static int failing(void)
{
	if (!g || !atomic_load(&g->armed))
		return 0;
	unsigned long k = atomic_fetch_add(&g->count, 1) + 1;
	return nth != 0 && k == nth;
}

static void opened(const char* path)
{
	if (g && trigger && path && strstr(path, trigger))
		atomic_store(&g->armed, 1);
}

void* malloc(size_t n)
{
	if (failing()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_malloc(n);
}

void* calloc(size_t a, size_t b)
{
	if (failing()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_calloc(a, b);
}

void* realloc(void* p, size_t n)
{
	if (failing()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_realloc(p, n);
}

void* memalign(size_t align, size_t n)
{
	if (failing()) {
		errno = ENOMEM;
		return NULL;
	}
	return __libc_memalign(align, n);
}

void* aligned_alloc(size_t align, size_t n) { return memalign(align, n); }
void* valloc(size_t n) { return memalign((size_t)sysconf(_SC_PAGESIZE), n); }
void* pvalloc(size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	return memalign(page, (n + page - 1) / page * page);
}

int posix_memalign(void** out, size_t align, size_t n)
{
	void* p = memalign(align, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

/* The trigger: opening the file. */
static int open_any(int dirfd, const char* path, int flags, va_list ap)
{
	mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
	opened(path);
	return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

int open(const char* path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int fd = open_any(AT_FDCWD, path, flags, ap);
	va_end(ap);
	return fd;
}
int open64(const char* path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int fd = open_any(AT_FDCWD, path, flags, ap);
	va_end(ap);
	return fd;
}
int openat(int dirfd, const char* path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int fd = open_any(dirfd, path, flags, ap);
	va_end(ap);
	return fd;
}
int openat64(int dirfd, const char* path, int flags, ...)
{
	va_list ap;
	va_start(ap, flags);
	int fd = open_any(dirfd, path, flags, ap);
	va_end(ap);
	return fd;
}

typedef FILE* (*fopen_fn)(const char*, const char*);

static FILE* fopen_next(const char* name, const char* path, const char* mode)
{
	fopen_fn next = (fopen_fn)dlsym(RTLD_NEXT, name);
	opened(path);
	if (!next) {
		errno = ENOSYS;
		return NULL;
	}
	return next(path, mode);
}

FILE* fopen(const char* path, const char* mode) { return fopen_next("fopen", path, mode); }
FILE* fopen64(const char* path, const char* mode) { return fopen_next("fopen64", path, mode); }
