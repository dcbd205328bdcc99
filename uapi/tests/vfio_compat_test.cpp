// The VFIO type1 container ioctls on an iommufd (drivers/iommu/iommufd/
// vfio_compat.c, Linux 6.12) and IOMMU_OPTION_HUGE_PAGES set, through the
// layer's C entry points on both engines: each ioctl's checks in the kernel's
// order with its errnos, what each writes back (the bytes of the
// VFIO_IOMMU_GET_INFO capability chain exactly), and the compatibility IOAS.
#include "ioas/iommufd.h"

#include <gtest/gtest.h>
#include <linux/vfio.h>
#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "ioas/uapi/iommufd_test.h"

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint32_t kRW = VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE;
constexpr uint64_t kAperture = 0x1000000;  // MOCK_APERTURE_START
constexpr uint64_t kApertureLast = 0x7fffffff;
constexpr unsigned char kUntouched = 0xAA;

// Anonymous memory, page aligned, with the page after it unmapped (a guard
// for structs that end at the edge of readable memory).
struct Buffer {
  explicit Buffer(size_t len) : len(len) {
    void* p = mmap(nullptr, len + kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ptr = static_cast<unsigned char*>(p);
    munmap(ptr + len, kPage);
  }
  ~Buffer() { munmap(ptr, len); }
  uint64_t va() const { return reinterpret_cast<uint64_t>(ptr); }
  unsigned char* ptr;
  size_t len;
};

class VfioCompat : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    fd = ioas_iommufd_open_engine(GetParam());
    ASSERT_GE(fd, 0) << ioas_iommufd_last_error();
  }
  void TearDown() override { EXPECT_EQ(ioas_iommufd_close(fd), 0); }

  // The ioctl's return value, or -errno.
  int call(unsigned long request, void* arg) {
    errno = 0;
    int rc = ioas_iommufd_ioctl(fd, request, arg);
    if (rc >= 0) return rc;
    EXPECT_EQ(rc, -1);
    EXPECT_NE(std::string(ioas_iommufd_last_error()), "") << "a refusal says why";
    return -errno;
  }
  int call_value(unsigned long request, unsigned long value) { return call(request, reinterpret_cast<void*>(value)); }

  uint32_t ioas_alloc() {
    iommu_ioas_alloc cmd{sizeof(cmd), 0, 0};
    EXPECT_EQ(call(IOMMU_IOAS_ALLOC, &cmd), 0);
    return cmd.out_ioas_id;
  }
  int set_compat(uint32_t ioas) {
    iommu_vfio_ioas cmd{sizeof(cmd), ioas, IOMMU_VFIO_IOAS_SET, 0};
    return call(IOMMU_VFIO_IOAS, &cmd);
  }
  void mock_domain(uint32_t ioas, uint32_t dev_flags = 0) {
    iommu_test_cmd cmd{};
    cmd.size = sizeof(cmd);
    cmd.op = IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS;
    cmd.id = ioas;
    cmd.mock_domain_flags.dev_flags = dev_flags;
    ASSERT_EQ(call(IOMMU_TEST_CMD, &cmd), 0);
  }
  // The compatibility IOAS, set, with a mock domain (what VFIO sees as a
  // group), and the container's type.
  uint32_t container(unsigned long type = VFIO_TYPE1v2_IOMMU) {
    uint32_t ioas = ioas_alloc();
    mock_domain(ioas);
    EXPECT_EQ(set_compat(ioas), 0);
    EXPECT_EQ(call_value(VFIO_SET_IOMMU, type), 0);
    return ioas;
  }
  int huge_pages(uint32_t ioas, uint32_t op, uint64_t* val) {
    iommu_option cmd{};
    cmd.size = sizeof(cmd);
    cmd.option_id = IOMMU_OPTION_HUGE_PAGES;
    cmd.op = op;
    cmd.object_id = ioas;
    cmd.val64 = *val;
    int rc = call(IOMMU_OPTION, &cmd);
    *val = cmd.val64;
    return rc;
  }
  uint64_t huge_pages_of(uint32_t ioas) {
    uint64_t v = 7;
    EXPECT_EQ(huge_pages(ioas, IOMMU_OPTION_OP_GET, &v), 0);
    return v;
  }
  uint64_t alignment_of(uint32_t ioas) {
    iommu_ioas_iova_ranges cmd{};
    cmd.size = sizeof(cmd);
    cmd.ioas_id = ioas;
    int rc = call(IOMMU_IOAS_IOVA_RANGES, &cmd);
    EXPECT_TRUE(rc == 0 || rc == -EMSGSIZE) << rc;
    return cmd.out_iova_alignment;
  }
  int ioas_map(uint32_t ioas, uint64_t va, uint64_t len, uint64_t iova) {
    iommu_ioas_map cmd{};
    cmd.size = sizeof(cmd);
    cmd.flags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;
    cmd.ioas_id = ioas;
    cmd.user_va = va;
    cmd.length = len;
    cmd.iova = iova;
    return call(IOMMU_IOAS_MAP, &cmd);
  }
  int map_dma(uint64_t va, uint64_t len, uint64_t iova, uint32_t flags = kRW) {
    vfio_iommu_type1_dma_map cmd{sizeof(cmd), flags, va, iova, len};
    return call(VFIO_IOMMU_MAP_DMA, &cmd);
  }
  // -errno or 0; *size gets what the ioctl wrote back.
  int unmap_dma(uint64_t iova, uint64_t len, uint64_t* size = nullptr, uint32_t flags = 0) {
    vfio_iommu_type1_dma_unmap cmd{};
    cmd.argsz = sizeof(cmd);
    cmd.flags = flags;
    cmd.iova = iova;
    cmd.size = len;
    int rc = call(VFIO_IOMMU_UNMAP_DMA, &cmd);
    if (size) *size = cmd.size;
    return rc;
  }
  // Whether [iova, iova+len) is one whole area of the IOAS (IOMMU_IOAS_UNMAP
  // of exactly it succeeds, and removes it).
  bool take_area(uint32_t ioas, uint64_t iova, uint64_t len) {
    iommu_ioas_unmap cmd{sizeof(cmd), ioas, iova, len};
    return call(IOMMU_IOAS_UNMAP, &cmd) == 0 && cmd.length == len;
  }

  int fd = -1;
};

// ---- the requests ----

TEST_P(VfioCompat, ApiVersionIsVfios) {
  EXPECT_EQ(VFIO_API_VERSION, 0);
  EXPECT_EQ(call(VFIO_GET_API_VERSION, nullptr), VFIO_API_VERSION);
}

TEST_P(VfioCompat, RequestsOutsideIommufdThatVfioCompatDoesNotServeAreENOTTY) {
  vfio_iommu_type1_dirty_bitmap dirty{};
  dirty.argsz = sizeof(dirty);
  EXPECT_EQ(call(VFIO_IOMMU_DIRTY_PAGES, &dirty), -ENOTTY);
  EXPECT_EQ(call(VFIO_GROUP_GET_STATUS, &dirty), -ENOTTY);
  EXPECT_EQ(call(_IO(VFIO_TYPE, VFIO_BASE + 99), nullptr), -ENOTTY);
  // VFIO's numbers with another type byte are not VFIO's either.
  EXPECT_EQ(call(_IO('x', VFIO_BASE + 0), nullptr), -ENOTTY);
}

TEST_P(VfioCompat, CheckExtensionAnswersWithTheIoctlsValue) {
  EXPECT_EQ(call_value(VFIO_CHECK_EXTENSION, VFIO_TYPE1_IOMMU), 1);
  EXPECT_EQ(call_value(VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU), 1);
  EXPECT_EQ(call_value(VFIO_CHECK_EXTENSION, VFIO_UNMAP_ALL), 1);
  EXPECT_EQ(call_value(VFIO_CHECK_EXTENSION, VFIO_TYPE1_NESTING_IOMMU), 0);
  EXPECT_EQ(call_value(VFIO_CHECK_EXTENSION, VFIO_UPDATE_VADDR), 0);
  EXPECT_EQ(call_value(VFIO_CHECK_EXTENSION, VFIO_NOIOMMU_IOMMU), 0) << "no no-IOMMU mode";
  EXPECT_EQ(call_value(VFIO_CHECK_EXTENSION, 12345), 0);
}

TEST_P(VfioCompat, CacheCoherencyNeedsTheCompatIoasAndNoMockDomain) {
  EXPECT_EQ(call_value(VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU), -ENODEV);
  uint32_t ioas = ioas_alloc();
  ASSERT_EQ(set_compat(ioas), 0);
  EXPECT_EQ(call_value(VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU), 1) << "no HWPT: nothing fails to enforce";
  mock_domain(ioas);
  EXPECT_EQ(call_value(VFIO_CHECK_EXTENSION, VFIO_DMA_CC_IOMMU), 0) << "the mock domain does not enforce it";
}

// ---- VFIO_SET_IOMMU ----

TEST_P(VfioCompat, SetIommuChecksTheTypeBeforeTheCompatIoas) {
  EXPECT_EQ(call_value(VFIO_SET_IOMMU, VFIO_NOIOMMU_IOMMU), -EINVAL);
  EXPECT_EQ(call_value(VFIO_SET_IOMMU, 2), -EINVAL);
  EXPECT_EQ(call_value(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), -ENODEV);
  EXPECT_EQ(call_value(VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), -ENODEV);
}

TEST_P(VfioCompat, SetIommuType1v2KeepsLargePagesAndType1TurnsThemOff) {
  uint32_t ioas = container(VFIO_TYPE1v2_IOMMU);
  EXPECT_EQ(huge_pages_of(ioas), 1u);
  EXPECT_EQ(alignment_of(ioas), 0x800u) << "the mock domain's 2K";
  EXPECT_EQ(call_value(VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), 0);
  EXPECT_EQ(huge_pages_of(ioas), 0u);
  EXPECT_EQ(alignment_of(ioas), kPage);
  EXPECT_EQ(call_value(VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU), 0);
  EXPECT_EQ(huge_pages_of(ioas), 0u) << "TYPE1v2 does not turn them back on";
}

TEST_P(VfioCompat, SetIommuType1IsRefusedWhenADomainHoldsAMapping) {
  uint32_t ioas = container(VFIO_TYPE1v2_IOMMU);
  Buffer b(kPage);
  ASSERT_EQ(map_dma(b.va(), kPage, kAperture), 0);
  EXPECT_EQ(call_value(VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), -EINVAL);
  EXPECT_EQ(huge_pages_of(ioas), 1u);
}

TEST_P(VfioCompat, SetIommuType1RefusesAMappingBelowPageAlignment) {
  uint32_t ioas = ioas_alloc();  // no domain: alignment 1
  ASSERT_EQ(set_compat(ioas), 0);
  Buffer b(2 * kPage);
  ASSERT_EQ(ioas_map(ioas, b.va() + 0x800, kPage, 0x10000), 0);
  EXPECT_EQ(call_value(VFIO_SET_IOMMU, VFIO_TYPE1_IOMMU), -EADDRINUSE);
  EXPECT_EQ(huge_pages_of(ioas), 1u);
  EXPECT_EQ(alignment_of(ioas), 1u);
}

// ---- IOMMU_OPTION_HUGE_PAGES set ----

TEST_P(VfioCompat, HugePagesOptionSetFollowsTheKernelsRules) {
  uint32_t ioas = ioas_alloc();
  uint64_t v = 0;
  EXPECT_EQ(huge_pages(ioas, IOMMU_OPTION_OP_SET, &v), 0);
  EXPECT_EQ(huge_pages_of(ioas), 0u);
  EXPECT_EQ(alignment_of(ioas), kPage);
  Buffer b(2 * kPage);
  EXPECT_EQ(ioas_map(ioas, b.va() + 0x800, kPage, kAperture), -EINVAL) << "below the alignment";
  v = 1;
  EXPECT_EQ(huge_pages(ioas, IOMMU_OPTION_OP_SET, &v), 0);
  EXPECT_EQ(alignment_of(ioas), 1u);
  ASSERT_EQ(ioas_map(ioas, b.va() + 0x800, kPage, kAperture), 0);
  v = 0;
  EXPECT_EQ(huge_pages(ioas, IOMMU_OPTION_OP_SET, &v), -EADDRINUSE);
  EXPECT_EQ(huge_pages_of(ioas), 1u);
  mock_domain(ioas);  // a domain holding the area
  v = 0;
  EXPECT_EQ(huge_pages(ioas, IOMMU_OPTION_OP_SET, &v), -EINVAL) << "a domain holds areas: checked first";
  v = 2;
  EXPECT_EQ(huge_pages(ioas, IOMMU_OPTION_OP_SET, &v), -EINVAL);
}

// ---- VFIO_IOMMU_MAP_DMA ----

TEST_P(VfioCompat, MapDmaReadsArgszWorthThenChecksArgszAndFlagsThenTheCompatIoas) {
  Buffer b(kPage);
  // A struct whose 32 bytes are not all readable: EFAULT before anything.
  auto* edge = reinterpret_cast<vfio_iommu_type1_dma_map*>(b.ptr + kPage - 16);
  edge->argsz = sizeof(vfio_iommu_type1_dma_map);
  EXPECT_EQ(call(VFIO_IOMMU_MAP_DMA, edge), -EFAULT);
  vfio_iommu_type1_dma_map cmd{sizeof(cmd) - 1, kRW, b.va(), kAperture, kPage};
  EXPECT_EQ(call(VFIO_IOMMU_MAP_DMA, &cmd), -EINVAL);
  cmd.argsz = sizeof(cmd);
  cmd.flags = 1u << 31;
  EXPECT_EQ(call(VFIO_IOMMU_MAP_DMA, &cmd), -EINVAL);
  cmd.flags = VFIO_DMA_MAP_FLAG_VADDR;
  EXPECT_EQ(call(VFIO_IOMMU_MAP_DMA, &cmd), -EINVAL) << "VADDR is not served by iommufd";
  cmd.flags = kRW;
  EXPECT_EQ(call(VFIO_IOMMU_MAP_DMA, &cmd), -ENODEV);
}

TEST_P(VfioCompat, MapDmaMapsAtTheFixedIova) {
  uint32_t ioas = container();
  Buffer b(4 * kPage);
  EXPECT_EQ(map_dma(b.va(), 4 * kPage, kAperture + 8 * kPage), 0);
  EXPECT_EQ(map_dma(b.va(), kPage, kAperture + 9 * kPage), -EEXIST);
  EXPECT_EQ(map_dma(b.va(), kPage, kAperture - kPage), -EINVAL) << "outside the mock aperture: reserved";
  EXPECT_EQ(map_dma(b.va(), 0, kAperture), -EINVAL) << "length 0";
  EXPECT_EQ(map_dma(~uint64_t{0} - kPage + 1, 2 * kPage, kAperture), -EOVERFLOW) << "vaddr + size passes 2^64";
  EXPECT_TRUE(take_area(ioas, kAperture + 8 * kPage, 4 * kPage));
}

// ---- VFIO_IOMMU_UNMAP_DMA ----

TEST_P(VfioCompat, UnmapDmaChecksArgszAndFlagsThenTheCompatIoasThenUnmapAll) {
  vfio_iommu_type1_dma_unmap cmd{};
  cmd.argsz = sizeof(cmd) - 1;
  cmd.iova = kAperture;
  cmd.size = kPage;
  EXPECT_EQ(call(VFIO_IOMMU_UNMAP_DMA, &cmd), -EINVAL);
  cmd.argsz = sizeof(cmd);
  cmd.flags = VFIO_DMA_UNMAP_FLAG_GET_DIRTY_BITMAP;
  EXPECT_EQ(call(VFIO_IOMMU_UNMAP_DMA, &cmd), -EINVAL) << "dirty bitmaps are not served by iommufd";
  cmd.flags = 0;
  EXPECT_EQ(call(VFIO_IOMMU_UNMAP_DMA, &cmd), -ENODEV);
  container();
  cmd.flags = VFIO_DMA_UNMAP_FLAG_ALL;
  EXPECT_EQ(call(VFIO_IOMMU_UNMAP_DMA, &cmd), -EINVAL) << "ALL takes iova 0 and size 0";
  EXPECT_EQ(cmd.size, kPage) << "refused before the unmap: nothing written back";
}

TEST_P(VfioCompat, UnmapDmaWritesBackTheBytesUnmapped) {
  uint32_t ioas = container();
  Buffer b(4 * kPage);
  ASSERT_EQ(map_dma(b.va(), kPage, kAperture), 0);
  ASSERT_EQ(map_dma(b.va() + kPage, 2 * kPage, kAperture + kPage), 0);
  ASSERT_EQ(map_dma(b.va(), kPage, kAperture + 8 * kPage), 0);
  uint64_t size = 0;
  EXPECT_EQ(unmap_dma(kAperture, 3 * kPage, &size), 0);
  EXPECT_EQ(size, 3 * kPage);
  EXPECT_EQ(unmap_dma(kAperture, 3 * kPage, &size), 0) << "nothing mapped there: a success";
  EXPECT_EQ(size, 0u);
  EXPECT_EQ(unmap_dma(kAperture, 0, &size), -EINVAL);
  EXPECT_EQ(unmap_dma(~uint64_t{0} - kPage + 1, 2 * kPage, &size), -EOVERFLOW);
  EXPECT_EQ(size, 0u) << "written back on failure too";
  ASSERT_EQ(map_dma(b.va(), 2 * kPage, kAperture), 0);
  EXPECT_EQ(unmap_dma(0, 0, &size, VFIO_DMA_UNMAP_FLAG_ALL), 0);
  EXPECT_EQ(size, 3 * kPage);
  EXPECT_FALSE(take_area(ioas, kAperture + 8 * kPage, kPage));
}

TEST_P(VfioCompat, Type1v2UnmapInsideAMappingIsENOENTAfterTheAreasBeforeIt) {
  uint32_t ioas = container(VFIO_TYPE1v2_IOMMU);
  Buffer b(4 * kPage);
  ASSERT_EQ(map_dma(b.va(), kPage, kAperture), 0);
  ASSERT_EQ(map_dma(b.va() + kPage, 2 * kPage, kAperture + kPage), 0);
  uint64_t size = 77;
  EXPECT_EQ(unmap_dma(kAperture, 2 * kPage, &size), -ENOENT);
  EXPECT_EQ(size, kPage) << "the first area went before the unmap stopped";
  EXPECT_TRUE(take_area(ioas, kAperture + kPage, 2 * kPage));
}

TEST_P(VfioCompat, Type1UnmapCutsTheMappingAtBothEnds) {
  uint32_t ioas = container(VFIO_TYPE1_IOMMU);
  Buffer b(4 * kPage);
  ASSERT_EQ(map_dma(b.va(), 4 * kPage, kAperture), 0);
  uint64_t size = 0;
  EXPECT_EQ(unmap_dma(kAperture + kPage, kPage, &size), 0);
  EXPECT_EQ(size, kPage);
  EXPECT_TRUE(take_area(ioas, kAperture, kPage));
  EXPECT_TRUE(take_area(ioas, kAperture + 2 * kPage, 2 * kPage));
}

TEST_P(VfioCompat, Type1UnmapWhoseCutIsRefusedWritesNothingBack) {
  container(VFIO_TYPE1_IOMMU);
  Buffer b(4 * kPage);
  ASSERT_EQ(map_dma(b.va(), 4 * kPage, kAperture), 0);
  uint64_t size = 0;
  // The cut before iova + 2K would put a boundary off the PAGE alignment.
  vfio_iommu_type1_dma_unmap cmd{sizeof(cmd), 0, kAperture + 0x800, kPage};
  EXPECT_EQ(call(VFIO_IOMMU_UNMAP_DMA, &cmd), -EINVAL);
  EXPECT_EQ(cmd.size, kPage);
  EXPECT_EQ(unmap_dma(0, 0, &size, VFIO_DMA_UNMAP_FLAG_ALL), 0);
  EXPECT_EQ(size, 4 * kPage) << "still one area";
}

TEST_P(VfioCompat, ClearedOrDestroyedCompatIoasIsENODEV) {
  uint32_t ioas = container();
  Buffer b(kPage);
  ASSERT_EQ(map_dma(b.va(), kPage, kAperture), 0);
  iommu_vfio_ioas clear{sizeof(clear), 0, IOMMU_VFIO_IOAS_CLEAR, 0};
  ASSERT_EQ(call(IOMMU_VFIO_IOAS, &clear), 0);
  EXPECT_EQ(unmap_dma(kAperture, kPage), -ENODEV);
  ASSERT_EQ(set_compat(ioas), 0);
  EXPECT_EQ(unmap_dma(kAperture, kPage), 0);
  uint32_t other = ioas_alloc();
  ASSERT_EQ(set_compat(other), 0);
  iommu_destroy destroy{sizeof(destroy), other};
  ASSERT_EQ(call(IOMMU_DESTROY, &destroy), 0);
  EXPECT_EQ(map_dma(b.va(), kPage, kAperture), -ENODEV);
}

// ---- VFIO_IOMMU_GET_INFO ----

// The 24-byte info, then DMA_AVAIL at 24 (12 bytes, padded to 16), then
// IOVA_RANGE at 40 (16 bytes and 16 per range).
struct InfoImage {
  std::vector<unsigned char> bytes;
  const vfio_iommu_type1_info& info() const { return *reinterpret_cast<const vfio_iommu_type1_info*>(bytes.data()); }
  template <typename T>
  T at(size_t off) const {
    T v;
    std::memcpy(&v, bytes.data() + off, sizeof(v));
    return v;
  }
  bool untouched(size_t from, size_t to) const {
    for (size_t i = from; i < to; ++i)
      if (bytes[i] != kUntouched) return false;
    return true;
  }
};

class VfioInfo : public VfioCompat {
 protected:
  // GET_INFO with `argsz` into a buffer of kUntouched bytes; the answer's
  // image, `rc` its return.
  InfoImage get_info(uint32_t argsz, int* rc = nullptr) {
    InfoImage img;
    img.bytes.assign(512, kUntouched);
    vfio_iommu_type1_info head{};
    head.argsz = argsz;
    std::memcpy(img.bytes.data(), &head, std::min<size_t>(sizeof(head), 16));
    int r = call(VFIO_IOMMU_GET_INFO, img.bytes.data());
    if (rc) *rc = r;
    else EXPECT_EQ(r, 0);
    return img;
  }
};

TEST_P(VfioInfo, ChecksArgszThenTheCompatIoas) {
  int rc = 0;
  get_info(15, &rc);
  EXPECT_EQ(rc, -EINVAL);
  get_info(16, &rc);
  EXPECT_EQ(rc, -ENODEV);
  Buffer b(kPage);
  // A struct whose last 4 bytes fall on the unmapped page after the buffer
  // (written byte-wise: the address is not aligned for the struct).
  unsigned char* edge = b.ptr + kPage - 12;
  const uint32_t argsz = 16;
  std::memcpy(edge, &argsz, sizeof(argsz));
  EXPECT_EQ(call(VFIO_IOMMU_GET_INFO, edge), -EFAULT) << "its first 16 bytes are read first";
}

TEST_P(VfioInfo, PreCapabilityCallerGetsSixteenBytes) {
  container();
  InfoImage img = get_info(16);
  EXPECT_EQ(img.info().flags, uint32_t{VFIO_IOMMU_INFO_PGSIZES | VFIO_IOMMU_INFO_CAPS});
  EXPECT_EQ(img.info().iova_pgsizes, kPage) << "the mock's 2K folded into PAGE";
  EXPECT_EQ(img.info().argsz, 72u) << "24 + 16 (DMA_AVAIL) + 16 + 16 (one range)";
  EXPECT_TRUE(img.untouched(16, 512));
}

TEST_P(VfioInfo, ShortArgszGetsTheSizeOfTheChainAndNoCapOffset) {
  container();
  InfoImage img = get_info(24);
  EXPECT_EQ(img.info().argsz, 72u);
  EXPECT_EQ(img.info().cap_offset, 0u);
  EXPECT_EQ(img.at<uint32_t>(20), 0u) << "the pad after cap_offset is the kernel's zero";
  EXPECT_TRUE(img.untouched(24, 512));
}

TEST_P(VfioInfo, WholeChainHasTheKernelsBytes) {
  container();
  InfoImage img = get_info(72);
  EXPECT_EQ(img.info().argsz, 72u);
  EXPECT_EQ(img.info().cap_offset, 24u);
  // DMA_AVAIL: id 3, version 1, next 40, avail U32_MAX; its 4 pad bytes untouched.
  EXPECT_EQ(img.at<uint16_t>(24), 3);
  EXPECT_EQ(img.at<uint16_t>(26), 1);
  EXPECT_EQ(img.at<uint32_t>(28), 40u);
  EXPECT_EQ(img.at<uint32_t>(32), 0xffffffffu);
  EXPECT_TRUE(img.untouched(36, 40));
  // IOVA_RANGE: id 1, version 1, next 0, nr_iovas 1, reserved 0, the aperture.
  EXPECT_EQ(img.at<uint16_t>(40), 1);
  EXPECT_EQ(img.at<uint16_t>(42), 1);
  EXPECT_EQ(img.at<uint32_t>(44), 0u);
  EXPECT_EQ(img.at<uint32_t>(48), 1u);
  EXPECT_EQ(img.at<uint32_t>(52), 0u);
  EXPECT_EQ(img.at<uint64_t>(56), kAperture);
  EXPECT_EQ(img.at<uint64_t>(64), kApertureLast);
  EXPECT_TRUE(img.untouched(72, 512));
}

TEST_P(VfioInfo, PartialChainWritesOnlyWhatFitsWhole) {
  container();
  // Room for DMA_AVAIL but not its padding: the cap, no next, no cap_offset.
  InfoImage img = get_info(36);
  EXPECT_EQ(img.at<uint16_t>(24), 3);
  EXPECT_EQ(img.at<uint32_t>(28), 0u) << "next is written only once argsz reaches the chain's end so far (40)";
  EXPECT_EQ(img.info().cap_offset, 0u);
  EXPECT_TRUE(img.untouched(36, 512));
  // 40: DMA_AVAIL and its next; IOVA_RANGE's 16-byte head and range need 32.
  img = get_info(71);
  EXPECT_EQ(img.at<uint32_t>(28), 40u);
  EXPECT_EQ(img.info().cap_offset, 0u);
  EXPECT_EQ(img.info().argsz, 72u);
  EXPECT_TRUE(img.untouched(36, 40));
  EXPECT_TRUE(img.untouched(40, 512)) << "IOVA_RANGE is written whole or not at all";
  // argsz 35: not even DMA_AVAIL.
  img = get_info(35);
  EXPECT_TRUE(img.untouched(24, 512));
}

TEST_P(VfioInfo, RangesAreTheHolesOfTheReservedRanges) {
  uint32_t ioas = container();
  iommu_test_cmd res{};
  res.size = sizeof(res);
  res.op = IOMMU_TEST_OP_ADD_RESERVED;
  res.id = ioas;
  res.add_reserved.start = 0x2000000;
  res.add_reserved.length = 0x1000000;
  ASSERT_EQ(call(IOMMU_TEST_CMD, &res), 0);
  InfoImage img = get_info(24);
  ASSERT_EQ(img.info().argsz, 24u + 16 + 16 + 2 * 16);
  img = get_info(img.info().argsz);
  EXPECT_EQ(img.at<uint32_t>(48), 2u);
  EXPECT_EQ(img.at<uint64_t>(56), kAperture);
  EXPECT_EQ(img.at<uint64_t>(64), 0x1ffffffu);
  EXPECT_EQ(img.at<uint64_t>(72), 0x3000000u);
  EXPECT_EQ(img.at<uint64_t>(80), kApertureLast);
  // Room for the head and one range: the first range is written, the head
  // (which needs room for every range) is not.
  img = get_info(24 + 16 + 16 + 16);
  EXPECT_TRUE(img.untouched(40, 56)) << "the head needs room for every range";
  EXPECT_EQ(img.at<uint64_t>(56), kAperture);
  EXPECT_EQ(img.at<uint64_t>(64), 0x1ffffffu);
  EXPECT_TRUE(img.untouched(72, 512));
  EXPECT_EQ(img.info().cap_offset, 0u);
}

TEST_P(VfioInfo, PageSizesAreWhatEveryDomainTakes) {
  uint32_t ioas = ioas_alloc();
  ASSERT_EQ(set_compat(ioas), 0);
  EXPECT_EQ(get_info(16).info().iova_pgsizes, ~(kPage - 1)) << "no domain: every size from PAGE";
  mock_domain(ioas);
  EXPECT_EQ(get_info(16).info().iova_pgsizes, kPage) << "2K folded into PAGE";
  uint32_t huge = ioas_alloc();
  ASSERT_EQ(set_compat(huge), 0);
  mock_domain(huge, MOCK_FLAGS_DEVICE_HUGE_IOVA);
  EXPECT_EQ(get_info(16).info().iova_pgsizes, kPage | 0x100000) << "2K|1M: 2K folded into PAGE";
  uint64_t off = 0;
  ASSERT_EQ(huge_pages(huge, IOMMU_OPTION_OP_SET, &off), 0);
  EXPECT_EQ(get_info(16).info().iova_pgsizes, kPage | 0x100000) << "the domain's sizes, whatever the option";
}

INSTANTIATE_TEST_SUITE_P(Engines, VfioCompat, ::testing::Values("impl", "model"),
                         [](const auto& info) { return std::string(info.param); });
INSTANTIATE_TEST_SUITE_P(Engines, VfioInfo, ::testing::Values("impl", "model"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
