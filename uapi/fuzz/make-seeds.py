#!/usr/bin/env python3
# Writes iommufd_fuzz's seeds: every ioctl the layer serves, once, in an
# order where each succeeds (on each engine), and the same calls with every
# struct one byte short. With a second folder, also the kept input that
# puts each ioctl the kernel undoes on an unwritable answer into the
# read-only page. The bytes follow iommufd_fuzz.cpp's reading of an input
# (Twin::step, make_call, draw).
#   python3 uapi/fuzz/make-seeds.py uapi/fuzz/seeds [uapi/fuzz/regressions]
import sys, os
out = sys.argv[1]
def idv(n): return [5 | (n << 3)]
def flags(f): return [0, f]
R0 = [1]
OUT = [1]
def uptr_page(p): return [6, p]
def iova_ap(k): return [3, k]
def len_pages(n): return [1, n - 1]
def num(n): return [n << 2]
TAIL = [0, 5]  # size: the struct's; arg: the arena's slot for it
ALLONES = [7] + [0xff] * 8
def ioctl(idx, fields): return [0, idx, 0] + fields + TAIL
def test(op, fields): return ioctl(15, num(op) + fields)
FD0 = [1, 0]
calls = [
  ioctl(1, flags(0) + OUT),                                       # IOAS_ALLOC -> 1
  test(2, idv(1) + R0),                                           # MOCK_DOMAIN -> stdev 2, idev 3, hwpt 4
  ioctl(5, flags(7) + idv(1) + R0 + uptr_page(0) + len_pages(4) + iova_ap(0)),  # fixed map
  ioctl(5, flags(6) + idv(1) + R0 + uptr_page(4) + len_pages(2) + [0]),          # automatic map
  ioctl(4, idv(1) + num(4) + R0 + uptr_page(8) + OUT),            # IOVA_RANGES
  test(5, idv(1) + R0 + flags(1)),                                # CREATE_ACCESS (needs pin) -> 5
  test(7, FD0 + R0 + flags(1) + iova_ap(0) + len_pages(1) + uptr_page(0)),  # ACCESS_PAGES
  test(8, FD0 + R0 + iova_ap(0) + len_pages(1) + uptr_page(9) + flags(0)),  # ACCESS_RW read
  ioctl(1, flags(0) + OUT),                                       # IOAS_ALLOC -> 6
  ioctl(3, flags(7) + idv(6) + idv(1) + len_pages(4) + iova_ap(16) + iova_ap(0)),  # COPY 1 -> 6
  test(1, idv(6) + R0 + iova_ap(64) + len_pages(2)),              # ADD_RESERVED
  ioctl(9, flags(0) + idv(3) + idv(6) + OUT + R0 + num(0) + num(0) + [0] + idv(0) + R0),  # HWPT_ALLOC
  test(10, idv(2) + R0 + idv(6)),                                 # MOCK_DOMAIN_REPLACE to 6
  ioctl(2, idv(6) + num(2) + R0 + uptr_page(0)),                  # ALLOW_IOVAS
  ioctl(7, num(1) + num(1) + R0 + idv(1) + num(0)),               # OPTION huge pages get
  ioctl(8, idv(1) + num(1) + R0),                                 # VFIO_IOAS set
  ioctl(10, flags(0) + idv(3) + num(8) + uptr_page(10) + num(0) + R0 + R0),  # GET_HW_INFO
  test(3, idv(4) + R0 + iova_ap(0) + len_pages(4) + uptr_page(0)),  # MD_CHECK_MAP
  test(4, idv(0) + R0 + len_pages(4) + uptr_page(0) + num(1)),    # MD_CHECK_REFS
  ioctl(6, idv(1) + [0] + ALLONES),                               # UNMAP all
  [15, 1, 0],                                                     # release access 0
  ioctl(0, idv(2)),                                               # DESTROY stdev
]
os.makedirs(out, exist_ok=True)
for engine, name in ((0, "impl"), (1, "model")):
  data = bytes([engine] + [b for c in calls for b in c])
  open(os.path.join(out, "every-ioctl-once-" + name), "wb").write(data)
  # the same calls, each struct one byte short of its size
  short = []
  for c in calls:
    if c[0] == 0: c = c[:-2] + [11, 0, 5]
    short += c
  open(os.path.join(out, "short-structs-" + name), "wb").write(bytes([engine] + short))
# Every ioctl whose answer the kernel undoes when it cannot write it back,
# with its struct in the read-only page, then again where it can be written.
RO = [0, 4]
def ro(c): return c[:-2] + RO
reg = [
  ro(ioctl(1, flags(0) + OUT)), ioctl(1, flags(0) + OUT),                # IOAS_ALLOC -> 1
  ro(test(2, idv(1) + R0)), test(2, idv(1) + R0),                        # MOCK_DOMAIN -> 2, 3, 4
  ro(ioctl(9, flags(0) + idv(3) + idv(1) + OUT + R0 + num(0) + num(0) + [0] + idv(0) + R0)),  # HWPT_ALLOC
  ioctl(5, flags(7) + idv(1) + R0 + uptr_page(0) + len_pages(4) + iova_ap(0)),
  ro(test(5, idv(1) + R0 + flags(1))), test(5, idv(1) + R0 + flags(1)),  # CREATE_ACCESS
  ro(test(7, FD0 + R0 + flags(1) + iova_ap(0) + len_pages(1) + uptr_page(0))),  # ACCESS_PAGES
  test(7, FD0 + R0 + flags(1) + iova_ap(0) + len_pages(1) + uptr_page(0)),
]
if len(sys.argv) > 2:
  open(os.path.join(sys.argv[2], "unwritable-answer-undoes-alloc-hwpt-mock-domain-access-pages"), "wb").write(
      bytes([0] + [b for c in reg for b in c]))
# Lengths far beyond memory where the layer once allocated a buffer of their
# size: GET_HW_INFO's data_len (4 GiB - 1) and MD_CHECK_REFS's length (2^44).
big = [
  ioctl(1, flags(0) + OUT), test(2, idv(1) + R0),
  ioctl(10, flags(0) + idv(3) + [3, 0xff, 0xff, 0xff, 0xff] + uptr_page(10) + num(0) + R0 + R0),
  test(4, idv(0) + R0 + [7] + list((1 << 44).to_bytes(8, "little")) + uptr_page(0) + num(0)),
]
if len(sys.argv) > 2:
  open(os.path.join(sys.argv[2], "hw-info-and-check-refs-of-huge-lengths-allocate-nothing-of-that-size"), "wb").write(
      bytes([0] + [b for c in big for b in c]))
