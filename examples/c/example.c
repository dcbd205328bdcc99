/*
 * A C program using ioas through its C API (ioas/ioas.h), built against an
 * installed ioas with pkg-config:
 *   cc example.c $(pkg-config --cflags --libs ioas) -o example
 *
 * It sets up what a VMM does for a passthrough NIC: guest RAM as a memory
 * source, the device attached with its MSI window, automatic and fixed maps,
 * a map refused inside the MSI window, the valid ranges, a translation.
 * Prints what it did and exits 0 only if every answer was the expected one.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

#include <ioas/ioas.h>

static int failures;

static void expect(int got, int want, const char* what, struct ioas_engine* e) {
  if (got != want) {
    fprintf(stderr, "FAIL %s: got %s, want %s (%s)\n", what, ioas_errno_name(got), ioas_errno_name(want),
            ioas_last_error(e));
    failures++;
  }
}

int main(void) {
  struct ioas_engine* e = ioas_engine_new();
  if (!e) return 1;
  expect(ioas_create(e, "vm0", 0), 0, "create", e);
  expect(ioas_mem_register(e, "ram", 0x7f0000000000ull, 16ull << 20, 0x7f0000000000ull, 1), 0, "mem", e);

  struct ioas_resv_region msi = {{0xfee00000ull, 0xfeefffffull}, IOAS_RESV_MSI};
  struct ioas_attach_args nic = {0};
  nic.dev = "nic";
  nic.dom = "d0";
  nic.resv = &msi;
  nic.num_resv = 1;
  expect(ioas_attach(e, "vm0", &nic), 0, "attach", e);

  uint64_t iova = 0;
  expect(ioas_map(e, "vm0", "ram", 0, 8192, IOAS_PROT_READ | IOAS_PROT_WRITE, 0, &iova), 0, "auto map", e);
  printf("automatic map of 8 KiB at 0x%" PRIx64 "\n", iova);
  if (iova != 0x2000) {
    fprintf(stderr, "FAIL auto map chose 0x%" PRIx64 ", want 0x2000\n", iova);
    failures++;
  }

  uint64_t fixed = 0xfee00000ull;
  int rc = ioas_map(e, "vm0", "ram", 8192, 4096, IOAS_PROT_READ, 1, &fixed);
  expect(rc, -EINVAL, "map into the MSI window", e);
  printf("map at 0xfee00000: %s (%s)\n", ioas_errno_name(rc), ioas_last_error(e));

  struct ioas_range r[8];
  size_t n = 0;
  uint64_t align = 0;
  expect(ioas_ranges(e, "vm0", r, 8, &n, &align), 0, "ranges", e);
  for (size_t i = 0; i < n; i++) printf("valid 0x%" PRIx64 "-0x%" PRIx64 "\n", r[i].start, r[i].last);
  printf("alignment 0x%" PRIx64 "\n", align);
  if (n != 2 || r[0].start != 0x1000 || r[0].last != 0xfedfffff || r[1].start != 0xfef00000) {
    fprintf(stderr, "FAIL ranges\n");
    failures++;
  }

  uint64_t pa = 0;
  int prot = 0;
  expect(ioas_translate(e, "d0", 0x2010, &pa, &prot), 0, "translate", e);
  printf("iova 0x2010 -> pa 0x%" PRIx64 " prot %d\n", pa, prot);
  if (pa != 0x7f0000000010ull || prot != (IOAS_PROT_READ | IOAS_PROT_WRITE)) failures++;

  uint64_t unmapped = 0;
  expect(ioas_unmap(e, "vm0", 0, UINT64_MAX, &unmapped), 0, "unmap all", e);
  expect(ioas_translate(e, "d0", 0x2010, &pa, &prot), -EFAULT, "translate after unmap", e);
  ioas_engine_free(e);
  printf("%s\n", failures ? "C example: FAILED" : "C example: ok");
  return failures ? 1 : 0;
}
