// The iommufd layer (include/ioas/iommufd.h) through its C entry points, on
// both engines: each ioctl's argument checks with the kernel's errnos in the
// kernel's order, and a refused call changes nothing.
#include "ioas/iommufd.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "ioas/uapi/iommufd_test.h"

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kU64Max = ~uint64_t{0};

// User memory for maps: page aligned, released at the end of the test.
// linux/capability.h's CAP_SYS_RESOURCE, and whether this process has it,
// read from /proc/self/status (CapEff, hexadecimal), not through capget.
constexpr int kCapSysResource = 24;
bool effective_capability(int bit) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("CapEff:", 0) == 0) return (std::stoull(line.substr(7), nullptr, 16) >> bit) & 1;
  ADD_FAILURE() << "/proc/self/status has no CapEff line";
  return false;
}

struct Buffer {
  explicit Buffer(size_t len) : len(len) {
    ptr = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  }
  ~Buffer() { munmap(ptr, len); }
  uint64_t va() const { return reinterpret_cast<uint64_t>(ptr); }
  void* ptr;
  size_t len;
};

class Iommufd : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    fd = ioas_iommufd_open_engine(GetParam());
    ASSERT_GE(fd, 0) << ioas_iommufd_last_error();
  }
  void TearDown() override {
    if (fd >= 0) {
      EXPECT_EQ(ioas_iommufd_close(fd), 0);
    }
  }

  // 0, or the errno of a refused call.
  template <typename T>
  int call(unsigned long request, T& cmd) {
    return call_raw(request, &cmd);
  }
  int call_raw(unsigned long request, void* arg) {
    errno = 0;
    int rc = ioas_iommufd_ioctl(fd, request, arg);
    if (rc == 0) return 0;
    EXPECT_EQ(rc, -1);
    EXPECT_NE(std::string(ioas_iommufd_last_error()), "") << "a refusal says why";
    return errno;
  }

  uint32_t ioas_alloc() {
    iommu_ioas_alloc cmd{sizeof(cmd), 0, 0};
    EXPECT_EQ(call(IOMMU_IOAS_ALLOC, cmd), 0);
    return cmd.out_ioas_id;
  }
  int map(uint32_t ioas, const Buffer& b, uint64_t* iova, uint32_t flags) {
    iommu_ioas_map cmd{};
    cmd.size = sizeof(cmd);
    cmd.flags = flags;
    cmd.ioas_id = ioas;
    cmd.user_va = b.va();
    cmd.length = b.len;
    cmd.iova = *iova;
    int rc = call(IOMMU_IOAS_MAP, cmd);
    *iova = cmd.iova;
    return rc;
  }
  int unmap(uint32_t ioas, uint64_t iova, uint64_t length, uint64_t* unmapped = nullptr) {
    iommu_ioas_unmap cmd{sizeof(cmd), ioas, iova, length};
    int rc = call(IOMMU_IOAS_UNMAP, cmd);
    if (unmapped) *unmapped = cmd.length;
    return rc;
  }
  std::vector<iommu_iova_range> ranges(uint32_t ioas, uint64_t* alignment = nullptr) {
    std::vector<iommu_iova_range> out(16);
    iommu_ioas_iova_ranges cmd{};
    cmd.size = sizeof(cmd);
    cmd.ioas_id = ioas;
    cmd.num_iovas = out.size();
    cmd.allowed_iovas = reinterpret_cast<uint64_t>(out.data());
    EXPECT_EQ(call(IOMMU_IOAS_IOVA_RANGES, cmd), 0);
    out.resize(cmd.num_iovas);
    if (alignment) *alignment = cmd.out_iova_alignment;
    return out;
  }
  iommu_test_cmd test_cmd(uint32_t op, uint32_t id) {
    iommu_test_cmd cmd{};
    cmd.size = sizeof(cmd);
    cmd.op = op;
    cmd.id = id;
    return cmd;
  }
  int destroy(uint32_t id) {
    iommu_destroy cmd{sizeof(cmd), id};
    return call(IOMMU_DESTROY, cmd);
  }

  int fd = -1;
};

constexpr uint32_t kRW = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_WRITEABLE;

// ---- the request and the struct (main.c's iommufd_fops_ioctl) ----

TEST_P(Iommufd, RequestOutsideIommufdIsENOTTY) {
  iommu_destroy cmd{sizeof(cmd), 1};
  EXPECT_EQ(call(_IO(IOMMUFD_TYPE, 0x7f), cmd), ENOTTY);
  EXPECT_EQ(call(_IO(IOMMUFD_TYPE, 0xa1), cmd), ENOTTY);
}

TEST_P(Iommufd, RequestWithTheRightNumberButAnotherEncodingIsENOTTY) {
  iommu_ioas_alloc cmd{sizeof(cmd), 0, 0};
  EXPECT_EQ(call(_IOWR(IOMMUFD_TYPE, IOMMUFD_CMD_IOAS_ALLOC, iommu_ioas_alloc), cmd), ENOTTY);
  EXPECT_EQ(call(_IO('x', IOMMUFD_CMD_IOAS_ALLOC), cmd), ENOTTY);
}

TEST_P(Iommufd, UnreadableStructIsEFAULT) { EXPECT_EQ(call_raw(IOMMU_IOAS_ALLOC, nullptr), EFAULT); }

TEST_P(Iommufd, SizeBelowTheLastMandatoryFieldIsEINVALAndChangesNothing) {
  iommu_ioas_alloc cmd{offsetof(iommu_ioas_alloc, out_ioas_id), 0, 0};
  EXPECT_EQ(call(IOMMU_IOAS_ALLOC, cmd), EINVAL);
  EXPECT_EQ(ioas_alloc(), 1u) << "the refused call allocated no id";
}

TEST_P(Iommufd, LongerStructWithZeroTailIsAccepted) {
  struct {
    iommu_ioas_alloc cmd;
    uint32_t tail[3];
  } big{};
  big.cmd.size = sizeof(big);
  EXPECT_EQ(call(IOMMU_IOAS_ALLOC, big), 0);
  EXPECT_EQ(big.cmd.out_ioas_id, 1u);
}

TEST_P(Iommufd, LongerStructWithNonZeroTailIsE2BIGAndChangesNothing) {
  struct {
    iommu_ioas_alloc cmd;
    uint32_t tail[3];
  } big{};
  big.cmd.size = sizeof(big);
  big.tail[2] = 1;
  EXPECT_EQ(call(IOMMU_IOAS_ALLOC, big), E2BIG);
  EXPECT_EQ(ioas_alloc(), 1u);
}

TEST_P(Iommufd, ShorterAnswerWritesOnlyTheCallersSize) {
  // IOMMU_IOAS_IOVA_RANGES' mandatory part is the whole struct; ALLOC's too.
  // A struct given as exactly its size gets exactly its size back.
  struct {
    iommu_ioas_alloc cmd;
    uint32_t guard;
  } s{};
  s.cmd.size = sizeof(s.cmd);
  s.guard = 0xabcdabcd;
  EXPECT_EQ(call(IOMMU_IOAS_ALLOC, s), 0);
  EXPECT_EQ(s.guard, 0xabcdabcdu);
}

// ---- IOMMU_IOAS_ALLOC and IOMMU_DESTROY ----

TEST_P(Iommufd, IoasAllocWithFlagsIsEOPNOTSUPP) {
  iommu_ioas_alloc cmd{sizeof(cmd), 1, 0};
  EXPECT_EQ(call(IOMMU_IOAS_ALLOC, cmd), EOPNOTSUPP);
}

TEST_P(Iommufd, IdsAreTheLowestFreeFromOne) {
  EXPECT_EQ(ioas_alloc(), 1u);
  EXPECT_EQ(ioas_alloc(), 2u);
  EXPECT_EQ(ioas_alloc(), 3u);
  EXPECT_EQ(destroy(2), 0);
  EXPECT_EQ(ioas_alloc(), 2u);
  EXPECT_EQ(ioas_alloc(), 4u);
}

TEST_P(Iommufd, DestroyOfAMissingIdIsENOENT) {
  EXPECT_EQ(destroy(1), ENOENT);
  uint32_t ioas = ioas_alloc();
  EXPECT_EQ(destroy(ioas), 0);
  EXPECT_EQ(destroy(ioas), ENOENT);
}

TEST_P(Iommufd, ADestroyedIoasIsGoneForEveryIoctl) {
  uint32_t ioas = ioas_alloc();
  ASSERT_EQ(destroy(ioas), 0);
  Buffer b(kPage);
  uint64_t iova = 0;
  EXPECT_EQ(map(ioas, b, &iova, kRW), ENOENT);
  EXPECT_EQ(unmap(ioas, 0, kU64Max), ENOENT);
}

// ---- IOMMU_IOAS_IOVA_RANGES ----

TEST_P(Iommufd, IovaRangesOfANewIoasIsTheWholeSpace) {
  uint32_t ioas = ioas_alloc();
  uint64_t alignment = 0;
  auto r = ranges(ioas, &alignment);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].start, 0u);
  EXPECT_EQ(r[0].last, kU64Max);
  EXPECT_EQ(alignment, 1u);
}

TEST_P(Iommufd, IovaRangesTooShortIsEMSGSIZEWithTheCount) {
  uint32_t ioas = ioas_alloc();
  iommu_test_cmd res = test_cmd(IOMMU_TEST_OP_ADD_RESERVED, ioas);
  res.add_reserved.start = 0x100000;
  res.add_reserved.length = kPage;
  ASSERT_EQ(call(IOMMU_TEST_CMD, res), 0);
  iommu_ioas_iova_ranges cmd{};
  cmd.size = sizeof(cmd);
  cmd.ioas_id = ioas;
  cmd.num_iovas = 0;
  EXPECT_EQ(call(IOMMU_IOAS_IOVA_RANGES, cmd), EMSGSIZE);
  EXPECT_EQ(cmd.num_iovas, 2u) << "the count is written back with EMSGSIZE";
  iommu_iova_range one{};
  cmd.num_iovas = 1;
  cmd.allowed_iovas = reinterpret_cast<uint64_t>(&one);
  EXPECT_EQ(call(IOMMU_IOAS_IOVA_RANGES, cmd), EMSGSIZE);
  EXPECT_EQ(one.start, 0u);
  EXPECT_EQ(one.last, 0xfffffu);
}

TEST_P(Iommufd, IovaRangesWithReservedIsEOPNOTSUPP) {
  uint32_t ioas = ioas_alloc();
  iommu_ioas_iova_ranges cmd{};
  cmd.size = sizeof(cmd);
  cmd.ioas_id = ioas;
  cmd.__reserved = 1;
  EXPECT_EQ(call(IOMMU_IOAS_IOVA_RANGES, cmd), EOPNOTSUPP);
  cmd.__reserved = 0;
  cmd.ioas_id = ioas + 1;
  EXPECT_EQ(call(IOMMU_IOAS_IOVA_RANGES, cmd), ENOENT);
}

// ---- IOMMU_IOAS_ALLOW_IOVAS ----

TEST_P(Iommufd, AllowIovasRefusesEmptyAndOverlappingRanges) {
  uint32_t ioas = ioas_alloc();
  iommu_iova_range r[2] = {{0x1000, 0x1000}, {0, 0}};
  iommu_ioas_allow_iovas cmd{};
  cmd.size = sizeof(cmd);
  cmd.ioas_id = ioas;
  cmd.num_iovas = 1;
  cmd.allowed_iovas = reinterpret_cast<uint64_t>(r);
  EXPECT_EQ(call(IOMMU_IOAS_ALLOW_IOVAS, cmd), EINVAL) << "start == last";
  r[0] = {0x1000, 0x1fff};
  r[1] = {0x1800, 0x2fff};
  cmd.num_iovas = 2;
  EXPECT_EQ(call(IOMMU_IOAS_ALLOW_IOVAS, cmd), EINVAL) << "overlap";
  cmd.__reserved = 1;
  EXPECT_EQ(call(IOMMU_IOAS_ALLOW_IOVAS, cmd), EOPNOTSUPP) << "reserved is checked first";
  cmd.__reserved = 0;
  r[1] = {0x2000, 0x2fff};
  EXPECT_EQ(call(IOMMU_IOAS_ALLOW_IOVAS, cmd), 0);
  cmd.allowed_iovas = 8;
  EXPECT_EQ(call(IOMMU_IOAS_ALLOW_IOVAS, cmd), EFAULT);
}

TEST_P(Iommufd, AllowedIovasCannotBeReserved) {
  uint32_t ioas = ioas_alloc();
  iommu_iova_range r = {0x100000, 0x1fffff};
  iommu_ioas_allow_iovas cmd{};
  cmd.size = sizeof(cmd);
  cmd.ioas_id = ioas;
  cmd.num_iovas = 1;
  cmd.allowed_iovas = reinterpret_cast<uint64_t>(&r);
  ASSERT_EQ(call(IOMMU_IOAS_ALLOW_IOVAS, cmd), 0);
  iommu_test_cmd res = test_cmd(IOMMU_TEST_OP_ADD_RESERVED, ioas);
  res.add_reserved.start = 0x180000;
  res.add_reserved.length = kPage;
  EXPECT_EQ(call(IOMMU_TEST_CMD, res), EADDRINUSE);
}

// ---- IOMMU_IOAS_MAP and IOMMU_IOAS_UNMAP ----

TEST_P(Iommufd, MapChecksFlagsThenOverflowThenProtThenIoas) {
  Buffer b(kPage);
  uint64_t iova = 0;
  EXPECT_EQ(map(99, b, &iova, kRW | (1u << 3)), EOPNOTSUPP);
  iova = kU64Max;
  EXPECT_EQ(map(99, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), EOVERFLOW);
  iova = 0;
  EXPECT_EQ(map(99, b, &iova, IOMMU_IOAS_MAP_FIXED_IOVA), EINVAL);
  EXPECT_EQ(map(99, b, &iova, kRW), ENOENT);
}

TEST_P(Iommufd, AutomaticMapChoosesANonZeroIovaAndUnmapReturnsTheLength) {
  uint32_t ioas = ioas_alloc();
  Buffer b(4 * kPage);
  uint64_t iova = 0;
  ASSERT_EQ(map(ioas, b, &iova, kRW), 0);
  EXPECT_NE(iova, 0u);
  uint64_t unmapped = 0;
  EXPECT_EQ(unmap(ioas, iova, b.len, &unmapped), 0);
  EXPECT_EQ(unmapped, b.len);
  EXPECT_EQ(unmap(ioas, iova, b.len), ENOENT) << "nothing left there";
}

TEST_P(Iommufd, FixedMapAtZeroIsAllowed) {
  uint32_t ioas = ioas_alloc();
  Buffer b(kPage);
  uint64_t iova = 0;
  EXPECT_EQ(map(ioas, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
  EXPECT_EQ(iova, 0u);
}

TEST_P(Iommufd, FixedMapOverAnAreaIsEEXIST) {
  uint32_t ioas = ioas_alloc();
  Buffer b(2 * kPage);
  uint64_t iova = 0x100000;
  ASSERT_EQ(map(ioas, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
  iova = 0x101000;
  EXPECT_EQ(map(ioas, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), EEXIST);
}

TEST_P(Iommufd, UnmapAllIsIovaZeroLengthU64Max) {
  uint32_t ioas = ioas_alloc();
  Buffer b(kPage);
  uint64_t a = 0x100000, c = 0x200000;
  ASSERT_EQ(map(ioas, b, &a, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
  ASSERT_EQ(map(ioas, b, &c, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
  uint64_t unmapped = 0;
  EXPECT_EQ(unmap(ioas, 0, kU64Max, &unmapped), 0);
  EXPECT_EQ(unmapped, 2 * kPage);
  EXPECT_EQ(unmap(ioas, 0, kU64Max, &unmapped), 0) << "unmap all of nothing succeeds";
  EXPECT_EQ(unmapped, 0u);
  EXPECT_EQ(unmap(ioas, 1, kU64Max), EOVERFLOW);
}

// ---- IOMMU_IOAS_COPY ----

TEST_P(Iommufd, CopyMapsTheSameMemoryInAnotherIoas) {
  uint32_t src = ioas_alloc(), dst = ioas_alloc();
  Buffer b(2 * kPage);
  uint64_t iova = 0x100000;
  ASSERT_EQ(map(src, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
  iommu_ioas_copy cmd{};
  cmd.size = sizeof(cmd);
  cmd.flags = kRW;
  cmd.dst_ioas_id = dst;
  cmd.src_ioas_id = src;
  cmd.length = b.len;
  cmd.src_iova = iova;
  ASSERT_EQ(call(IOMMU_IOAS_COPY, cmd), 0);
  uint64_t unmapped = 0;
  EXPECT_EQ(unmap(dst, cmd.dst_iova, b.len, &unmapped), 0);
  EXPECT_EQ(unmapped, b.len);
  // Without FIXED_IOVA the copy is placed automatically: a dst_iova given in
  // is not used, only written back.
  uint64_t taken = 0x200000;
  ASSERT_EQ(map(dst, b, &taken, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
  cmd.dst_iova = taken;
  ASSERT_EQ(call(IOMMU_IOAS_COPY, cmd), 0) << ioas_iommufd_last_error();
  EXPECT_NE(cmd.dst_iova, taken);
  EXPECT_EQ(unmap(dst, cmd.dst_iova, b.len, &unmapped), 0);
  cmd.flags = 0;
  EXPECT_EQ(call(IOMMU_IOAS_COPY, cmd), EINVAL);
  cmd.flags = kRW | 8;
  EXPECT_EQ(call(IOMMU_IOAS_COPY, cmd), EOPNOTSUPP);
  cmd.flags = kRW;
  cmd.src_ioas_id = 77;
  EXPECT_EQ(call(IOMMU_IOAS_COPY, cmd), ENOENT);
}

// ---- IOMMU_OPTION ----

TEST_P(Iommufd, OptionGetsRlimitModeAndHugePages) {
  iommu_option cmd{};
  cmd.size = sizeof(cmd);
  cmd.option_id = IOMMU_OPTION_RLIMIT_MODE;
  cmd.op = IOMMU_OPTION_OP_GET;
  cmd.val64 = 7;
  EXPECT_EQ(call(IOMMU_OPTION, cmd), 0);
  EXPECT_EQ(cmd.val64, 0u);
  cmd.object_id = 1;
  EXPECT_EQ(call(IOMMU_OPTION, cmd), EOPNOTSUPP) << "RLIMIT_MODE is global";
  cmd.option_id = IOMMU_OPTION_HUGE_PAGES;
  EXPECT_EQ(call(IOMMU_OPTION, cmd), ENOENT);
  cmd.object_id = ioas_alloc();
  EXPECT_EQ(call(IOMMU_OPTION, cmd), 0);
  EXPECT_EQ(cmd.val64, 1u);
  cmd.op = IOMMU_OPTION_OP_SET;
  cmd.val64 = 2;
  EXPECT_EQ(call(IOMMU_OPTION, cmd), EINVAL);
  cmd.op = 9;
  EXPECT_EQ(call(IOMMU_OPTION, cmd), EOPNOTSUPP);
  cmd.option_id = 5;
  EXPECT_EQ(call(IOMMU_OPTION, cmd), EOPNOTSUPP);
}

TEST_P(Iommufd, RlimitModeSetNeedsNoObjects) {
  uint32_t ioas = ioas_alloc();
  iommu_option cmd{};
  cmd.size = sizeof(cmd);
  cmd.option_id = IOMMU_OPTION_RLIMIT_MODE;
  cmd.op = IOMMU_OPTION_OP_SET;
  cmd.val64 = 1;
  int rc = call(IOMMU_OPTION, cmd);
  if (!effective_capability(kCapSysResource)) {
    // Refused before any other check, with or without objects.
    EXPECT_EQ(rc, EPERM) << "CapEff lacks CAP_SYS_RESOURCE";
    ASSERT_EQ(destroy(ioas), 0);
    EXPECT_EQ(call(IOMMU_OPTION, cmd), EPERM);
    return;
  }
  EXPECT_EQ(rc, EBUSY);
  ASSERT_EQ(destroy(ioas), 0);
  EXPECT_EQ(call(IOMMU_OPTION, cmd), 0);
  cmd.op = IOMMU_OPTION_OP_GET;
  cmd.val64 = 0;
  EXPECT_EQ(call(IOMMU_OPTION, cmd), 0);
  EXPECT_EQ(cmd.val64, 1u);
}

// ---- IOMMU_VFIO_IOAS ----

TEST_P(Iommufd, VfioIoasIsSetGotAndClearedAndGoesWithItsIoas) {
  iommu_vfio_ioas cmd{sizeof(cmd), 0, IOMMU_VFIO_IOAS_GET, 0};
  EXPECT_EQ(call(IOMMU_VFIO_IOAS, cmd), ENODEV);
  cmd.op = IOMMU_VFIO_IOAS_SET;
  EXPECT_EQ(call(IOMMU_VFIO_IOAS, cmd), ENOENT);
  uint32_t ioas = ioas_alloc();
  cmd.ioas_id = ioas;
  cmd.__reserved = 1;
  EXPECT_EQ(call(IOMMU_VFIO_IOAS, cmd), EOPNOTSUPP);
  cmd.__reserved = 0;
  EXPECT_EQ(call(IOMMU_VFIO_IOAS, cmd), 0);
  cmd = {sizeof(cmd), 0, IOMMU_VFIO_IOAS_GET, 0};
  EXPECT_EQ(call(IOMMU_VFIO_IOAS, cmd), 0);
  EXPECT_EQ(cmd.ioas_id, ioas);
  cmd.op = 3;
  EXPECT_EQ(call(IOMMU_VFIO_IOAS, cmd), EOPNOTSUPP);
  ASSERT_EQ(destroy(ioas), 0);
  cmd.op = IOMMU_VFIO_IOAS_GET;
  EXPECT_EQ(call(IOMMU_VFIO_IOAS, cmd), ENODEV) << "destroying the IOAS unsets it";
  cmd = {sizeof(cmd), ioas_alloc(), IOMMU_VFIO_IOAS_SET, 0};
  ASSERT_EQ(call(IOMMU_VFIO_IOAS, cmd), 0);
  cmd.op = IOMMU_VFIO_IOAS_CLEAR;
  EXPECT_EQ(call(IOMMU_VFIO_IOAS, cmd), 0);
  cmd.op = IOMMU_VFIO_IOAS_GET;
  EXPECT_EQ(call(IOMMU_VFIO_IOAS, cmd), ENODEV);
}

// ---- IOMMU_TEST_CMD ----

TEST_P(Iommufd, UnknownTestOpIsEOPNOTSUPP) {
  iommu_test_cmd cmd = test_cmd(0x7777, 0);
  EXPECT_EQ(call(IOMMU_TEST_CMD, cmd), EOPNOTSUPP);
}

TEST_P(Iommufd, AddReservedChecksLengthThenOverflowThenIoas) {
  iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_ADD_RESERVED, 42);
  EXPECT_EQ(call(IOMMU_TEST_CMD, cmd), EINVAL);
  cmd.add_reserved.start = kU64Max;
  cmd.add_reserved.length = 2;
  EXPECT_EQ(call(IOMMU_TEST_CMD, cmd), EOVERFLOW);
  cmd.add_reserved.length = 1;
  EXPECT_EQ(call(IOMMU_TEST_CMD, cmd), ENOENT);
}

TEST_P(Iommufd, ReservedIovaIsNeverMapped) {
  uint32_t ioas = ioas_alloc();
  iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_ADD_RESERVED, ioas);
  cmd.add_reserved.start = 0x100000;
  cmd.add_reserved.length = 0x1000;
  ASSERT_EQ(call(IOMMU_TEST_CMD, cmd), 0);
  Buffer b(kPage);
  uint64_t iova = 0x100000;
  EXPECT_EQ(map(ioas, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), EINVAL) << "iopt_check_iova: EINVAL";
  iova = 0;
  EXPECT_EQ(map(ioas, b, &iova, kRW), 0);
  EXPECT_TRUE(iova + b.len <= 0x100000 || iova > 0x100fff) << "automatic placement avoids it";
}

TEST_P(Iommufd, MockDomainIdsFollowTheKernelsOrderAndHoldTheIoas) {
  uint32_t ioas = ioas_alloc();
  iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, ioas);
  ASSERT_EQ(call(IOMMU_TEST_CMD, cmd), 0) << ioas_iommufd_last_error();
  EXPECT_EQ(cmd.mock_domain.out_stdev_id, 2u);
  EXPECT_EQ(cmd.mock_domain.out_idev_id, 3u);
  EXPECT_EQ(cmd.mock_domain.out_hwpt_id, 4u);
  EXPECT_EQ(destroy(ioas), EBUSY);
  EXPECT_EQ(destroy(cmd.mock_domain.out_hwpt_id), EBUSY) << "a device is attached";
  EXPECT_EQ(destroy(cmd.mock_domain.out_idev_id), EBUSY) << "the selftest device owns it";
  EXPECT_EQ(destroy(cmd.mock_domain.out_stdev_id), 0);
  EXPECT_EQ(destroy(cmd.mock_domain.out_hwpt_id), ENOENT) << "the automatic domain went with its last device";
  EXPECT_EQ(destroy(ioas), 0);
}

TEST_P(Iommufd, AMockDomainBringsItsApertureAndTheMockPageAlignment) {
  uint32_t ioas = ioas_alloc();
  iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, ioas);
  ASSERT_EQ(call(IOMMU_TEST_CMD, cmd), 0) << ioas_iommufd_last_error();
  uint64_t alignment = 0;
  auto r = ranges(ioas, &alignment);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].start, uint64_t{MOCK_APERTURE_START});
  EXPECT_EQ(r[0].last, uint64_t{MOCK_APERTURE_LAST});
  EXPECT_EQ(alignment, kPage / 2) << "MOCK_IO_PAGE_SIZE";
}

TEST_P(Iommufd, HwInfoOfAMockDeviceIsTheSelftestData) {
  uint32_t ioas = ioas_alloc();
  iommu_test_cmd md = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, ioas);
  md.mock_domain_flags.dev_flags = MOCK_FLAGS_DEVICE_PASID | MOCK_FLAGS_DEVICE_NO_DIRTY;
  ASSERT_EQ(call(IOMMU_TEST_CMD, md), 0) << ioas_iommufd_last_error();
  struct {
    iommu_test_hw_info info;
    uint64_t tail;
  } data;
  std::memset(&data, 0xff, sizeof(data));
  iommu_hw_info cmd{};
  cmd.size = sizeof(cmd);
  cmd.dev_id = md.mock_domain_flags.out_idev_id;
  cmd.data_len = sizeof(data);
  cmd.data_uptr = reinterpret_cast<uint64_t>(&data);
  ASSERT_EQ(call(IOMMU_GET_HW_INFO, cmd), 0);
  EXPECT_EQ(cmd.out_data_type, IOMMU_HW_INFO_TYPE_SELFTEST);
  EXPECT_EQ(cmd.data_len, sizeof(iommu_test_hw_info));
  EXPECT_EQ(data.info.test_reg, IOMMU_HW_INFO_SELFTEST_REGVAL);
  EXPECT_EQ(data.info.flags, 0u);
  EXPECT_EQ(data.tail, 0u) << "the rest of a longer buffer is cleared";
  EXPECT_EQ(cmd.out_max_pasid_log2, MOCK_PASID_WIDTH);
  EXPECT_EQ(cmd.out_capabilities, 0u) << "a NO_DIRTY device";
  cmd.flags = IOMMU_HW_INFO_FLAG_INPUT_TYPE;
  cmd.in_data_type = IOMMU_HW_INFO_TYPE_SELFTEST + 1;
  EXPECT_EQ(call(IOMMU_GET_HW_INFO, cmd), EOPNOTSUPP);
  cmd.flags = 2;
  EXPECT_EQ(call(IOMMU_GET_HW_INFO, cmd), EOPNOTSUPP);
  cmd.flags = 0;
  cmd.dev_id = ioas;
  EXPECT_EQ(call(IOMMU_GET_HW_INFO, cmd), ENOENT) << "not a device";
}

TEST_P(Iommufd, ReplaceMovesTheDeviceAndTheEmptyAutomaticDomainGoes) {
  uint32_t ioas = ioas_alloc();
  iommu_test_cmd md = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, ioas);
  ASSERT_EQ(call(IOMMU_TEST_CMD, md), 0) << ioas_iommufd_last_error();
  uint32_t old_hwpt = md.mock_domain.out_hwpt_id;
  uint32_t other = ioas_alloc();
  iommu_test_cmd rep = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, md.mock_domain.out_stdev_id);
  rep.mock_domain_replace.pt_id = other;
  ASSERT_EQ(call(IOMMU_TEST_CMD, rep), 0) << ioas_iommufd_last_error();
  uint32_t new_hwpt = rep.mock_domain_replace.pt_id;
  EXPECT_NE(new_hwpt, old_hwpt);
  EXPECT_EQ(destroy(old_hwpt), ENOENT) << "the old automatic domain went with its only device";
  EXPECT_EQ(destroy(ioas), 0) << "nothing holds the first IOAS any more";
  EXPECT_EQ(destroy(other), EBUSY);
  rep.mock_domain_replace.pt_id = other;
  ASSERT_EQ(call(IOMMU_TEST_CMD, rep), 0) << "replacing with the same domain changes nothing";
  EXPECT_EQ(rep.mock_domain_replace.pt_id, new_hwpt);
  rep.mock_domain_replace.pt_id = 999;
  EXPECT_EQ(call(IOMMU_TEST_CMD, rep), ENOENT);
  rep.id = other;
  EXPECT_EQ(call(IOMMU_TEST_CMD, rep), ENOENT) << "not a selftest device";
}

TEST_P(Iommufd, HwptAllocChecksInTheKernelsOrderAndPutsADomainInTheIoas) {
  uint32_t ioas = ioas_alloc();
  iommu_test_cmd md = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, ioas);
  md.mock_domain_flags.dev_flags = MOCK_FLAGS_DEVICE_NO_DIRTY;
  ASSERT_EQ(call(IOMMU_TEST_CMD, md), 0) << ioas_iommufd_last_error();
  uint32_t no_dirty_dev = md.mock_domain_flags.out_idev_id;
  uint32_t other = ioas_alloc();
  iommu_hwpt_alloc cmd{};
  cmd.size = sizeof(cmd);
  cmd.dev_id = no_dirty_dev;
  cmd.pt_id = other;
  cmd.__reserved = 1;
  EXPECT_EQ(call(IOMMU_HWPT_ALLOC, cmd), EOPNOTSUPP);
  cmd.__reserved = 0;
  cmd.data_len = 4;
  EXPECT_EQ(call(IOMMU_HWPT_ALLOC, cmd), EINVAL) << "data without a type";
  cmd.data_len = 0;
  cmd.dev_id = ioas;
  EXPECT_EQ(call(IOMMU_HWPT_ALLOC, cmd), ENOENT) << "not a device";
  cmd.dev_id = no_dirty_dev;
  cmd.pt_id = 999;
  EXPECT_EQ(call(IOMMU_HWPT_ALLOC, cmd), EINVAL) << "pt_id: no such object";
  cmd.pt_id = other;
  cmd.flags = IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
  EXPECT_EQ(call(IOMMU_HWPT_ALLOC, cmd), EOPNOTSUPP) << "a NO_DIRTY device";
  cmd.flags = 1u << 7;
  EXPECT_EQ(call(IOMMU_HWPT_ALLOC, cmd), EOPNOTSUPP);
  cmd.flags = 0;
  ASSERT_EQ(call(IOMMU_HWPT_ALLOC, cmd), 0) << ioas_iommufd_last_error();
  uint32_t hwpt = cmd.out_hwpt_id;
  uint64_t alignment = 0;
  ranges(other, &alignment);
  EXPECT_EQ(alignment, kPage / 2) << "the HWPT's domain is in the IOAS before any device joins";
  EXPECT_EQ(destroy(other), EBUSY);
  iommu_test_cmd join = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, hwpt);
  ASSERT_EQ(call(IOMMU_TEST_CMD, join), 0) << ioas_iommufd_last_error();
  EXPECT_EQ(join.mock_domain.out_hwpt_id, hwpt);
  EXPECT_EQ(destroy(hwpt), EBUSY);
  ASSERT_EQ(destroy(join.mock_domain.out_stdev_id), 0);
  EXPECT_EQ(destroy(hwpt), 0) << "an allocated HWPT outlives its devices until destroyed";
  EXPECT_EQ(destroy(other), 0);
}

// ---- dirty tracking: IOMMU_HWPT_SET_DIRTY_TRACKING, IOMMU_HWPT_GET_DIRTY_BITMAP
// and IOMMU_TEST_OP_DIRTY (hw_pagetable.c, io_pagetable.c, iova_bitmap.c,
// selftest.c) ----

constexpr uint64_t kSlot = kPage / 2;           // MOCK_IO_PAGE_SIZE
constexpr uint64_t kHugeSlot = 512 * kSlot;     // MOCK_HUGE_PAGE_SIZE
constexpr uint64_t kStart = MOCK_APERTURE_START;

class IommufdDirty : public Iommufd {
 protected:
  // A device (huge: MOCK_FLAGS_DEVICE_HUGE_IOVA) in an IOAS of its own, and
  // a second IOAS `ioas` with `len` bytes of `mem` mapped at kStart and a
  // HWPT allocated for the device with IOMMU_HWPT_ALLOC_DIRTY_TRACKING, as
  // the selftest's get_dirty_bitmap does.
  void setup(bool huge, uint64_t va, uint64_t len) {
    dev_ioas = ioas_alloc();
    iommu_test_cmd md = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, dev_ioas);
    md.mock_domain_flags.dev_flags = huge ? MOCK_FLAGS_DEVICE_HUGE_IOVA : 0;
    ASSERT_EQ(call(IOMMU_TEST_CMD, md), 0) << ioas_iommufd_last_error();
    idev = md.mock_domain_flags.out_idev_id;
    auto_hwpt = md.mock_domain_flags.out_hwpt_id;
    ioas = ioas_alloc();
    ASSERT_EQ(map_at(ioas, va, len, kStart), 0) << ioas_iommufd_last_error();
    ASSERT_EQ(hwpt_alloc(idev, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &hwpt), 0) << ioas_iommufd_last_error();
  }
  int map_at(uint32_t to, uint64_t va, uint64_t len, uint64_t iova) {
    iommu_ioas_map cmd{};
    cmd.size = sizeof(cmd);
    cmd.flags = kRW | IOMMU_IOAS_MAP_FIXED_IOVA;
    cmd.ioas_id = to;
    cmd.user_va = va;
    cmd.length = len;
    cmd.iova = iova;
    return call(IOMMU_IOAS_MAP, cmd);
  }
  int hwpt_alloc(uint32_t dev, uint32_t pt, uint32_t flags, uint32_t* out) {
    iommu_hwpt_alloc cmd{};
    cmd.size = sizeof(cmd);
    cmd.flags = flags;
    cmd.dev_id = dev;
    cmd.pt_id = pt;
    int rc = call(IOMMU_HWPT_ALLOC, cmd);
    *out = cmd.out_hwpt_id;
    return rc;
  }
  int tracking(uint32_t id, uint32_t flags, uint32_t reserved = 0) {
    iommu_hwpt_set_dirty_tracking cmd{sizeof(cmd), flags, id, reserved};
    return call(IOMMU_HWPT_SET_DIRTY_TRACKING, cmd);
  }
  // IOMMU_TEST_OP_DIRTY: the slots named by `bits` become dirty.
  int mark(uint32_t id, uint64_t iova, uint64_t length, uint64_t page_size, const void* bits,
           uint64_t* nr_dirty = nullptr) {
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_DIRTY, id);
    cmd.dirty.iova = iova;
    cmd.dirty.length = length;
    cmd.dirty.page_size = page_size;
    cmd.dirty.uptr = reinterpret_cast<uint64_t>(bits);
    int rc = call(IOMMU_TEST_CMD, cmd);
    if (nr_dirty) *nr_dirty = cmd.dirty.out_nr_dirty;
    return rc;
  }
  // Marks the slots at these byte offsets from kStart.
  void mark_slots(std::initializer_list<uint64_t> offsets, uint64_t span) {
    std::vector<uint8_t> bits(span / kSlot / 8 + 1, 0);
    for (uint64_t off : offsets) bits[off / kSlot / 8] |= uint8_t(1u << (off / kSlot % 8));
    uint64_t nr = 0;
    ASSERT_EQ(mark(hwpt, kStart, span, kSlot, bits.data(), &nr), 0) << ioas_iommufd_last_error();
    EXPECT_EQ(nr, offsets.size());
  }
  int get(uint32_t id, uint64_t iova, uint64_t length, uint64_t page_size, void* data, uint32_t flags = 0,
          uint32_t reserved = 0) {
    iommu_hwpt_get_dirty_bitmap cmd{};
    cmd.size = sizeof(cmd);
    cmd.hwpt_id = id;
    cmd.flags = flags;
    cmd.__reserved = reserved;
    cmd.iova = iova;
    cmd.length = length;
    cmd.page_size = page_size;
    cmd.data = reinterpret_cast<uint64_t>(data);
    return call(IOMMU_HWPT_GET_DIRTY_BITMAP, cmd);
  }
  // The set bits of a bitmap of nbits bits.
  static std::vector<uint64_t> set_bits(const std::vector<uint8_t>& bitmap, uint64_t nbits) {
    std::vector<uint64_t> out;
    for (uint64_t i = 0; i != nbits; ++i)
      if (bitmap[i / 8] & (1u << (i % 8))) out.push_back(i);
    return out;
  }
  // The bits the walk over [kStart, kStart + span) reports at page size kSlot.
  std::vector<uint64_t> read(uint64_t span, uint32_t flags = 0) {
    std::vector<uint8_t> bitmap(span / kSlot / 8 + 1, 0);
    EXPECT_EQ(get(hwpt, kStart, span, kSlot, bitmap.data(), flags), 0) << ioas_iommufd_last_error();
    return set_bits(bitmap, span / kSlot);
  }

  uint32_t dev_ioas = 0, idev = 0, auto_hwpt = 0, ioas = 0, hwpt = 0;
};

using Bits = std::vector<uint64_t>;

TEST_P(IommufdDirty, HwptAllocDirtyIsRefusedForANoDirtyDeviceWhichCannotJoinADirtyHwpt) {
  Buffer b(4 * kPage);
  setup(false, b.va(), b.len);
  iommu_test_cmd join = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, hwpt);
  join.mock_domain_flags.dev_flags = MOCK_FLAGS_DEVICE_NO_DIRTY;
  EXPECT_EQ(call(IOMMU_TEST_CMD, join), EINVAL) << "mock_domain_nop_attach: dirty ops and a NO_DIRTY device";
  join.mock_domain_flags.dev_flags = 0;
  ASSERT_EQ(call(IOMMU_TEST_CMD, join), 0) << "a device with dirty support joins";
  EXPECT_EQ(join.mock_domain_flags.out_hwpt_id, hwpt);
  EXPECT_EQ(join.mock_domain_flags.out_stdev_id, hwpt + 1) << "the refused join used no id";

  iommu_test_cmd nd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, dev_ioas);
  nd.mock_domain_flags.dev_flags = MOCK_FLAGS_DEVICE_NO_DIRTY;
  ASSERT_EQ(call(IOMMU_TEST_CMD, nd), 0) << ioas_iommufd_last_error();
  uint32_t other = 0;
  EXPECT_EQ(hwpt_alloc(nd.mock_domain_flags.out_idev_id, ioas, IOMMU_HWPT_ALLOC_DIRTY_TRACKING, &other), EOPNOTSUPP);
  EXPECT_EQ(hwpt_alloc(nd.mock_domain_flags.out_idev_id, ioas, 0, &other), 0) << "without the flag it may";
  EXPECT_EQ(tracking(other, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), EOPNOTSUPP) << "that HWPT has no dirty ops";
}

TEST_P(IommufdDirty, SetDirtyTrackingChecksFlagsThenHwptThenDirtyOps) {
  Buffer b(4 * kPage);
  setup(false, b.va(), b.len);
  EXPECT_EQ(tracking(999, 2), EOPNOTSUPP) << "flags first";
  EXPECT_EQ(tracking(999, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), ENOENT);
  EXPECT_EQ(tracking(ioas, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), ENOENT) << "an IOAS is no HWPT";
  EXPECT_EQ(tracking(auto_hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), EOPNOTSUPP) << "allocated without the flag";
  EXPECT_EQ(tracking(auto_hwpt, 0), EOPNOTSUPP) << "disabling too needs dirty ops";
  EXPECT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE, 7), 0) << "the kernel reads no __reserved here";
  EXPECT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0) << "enabling twice is fine";
  EXPECT_EQ(tracking(hwpt, 0), 0);
  EXPECT_EQ(tracking(hwpt, 0), 0) << "disabling twice is fine";
}

TEST_P(IommufdDirty, TestOpDirtyChecksArgumentsThenHwptThenTracking) {
  Buffer b(4 * kPage);
  setup(false, b.va(), b.len);
  uint64_t bits = ~uint64_t{0};
  EXPECT_EQ(mark(999, kStart, b.len, 0, &bits), EINVAL) << "page_size 0, before the HWPT";
  EXPECT_EQ(mark(999, kStart, 0, kSlot, &bits), EINVAL) << "length 0";
  EXPECT_EQ(mark(999, kStart + 1, b.len, kSlot, &bits), EINVAL) << "iova % page_size";
  EXPECT_EQ(mark(999, kStart, b.len + 1, kSlot, &bits), EINVAL) << "length % page_size";
  EXPECT_EQ(mark(999, kStart, b.len, kSlot, nullptr), EINVAL) << "no uptr";
  EXPECT_EQ(mark(999, 0, (uint64_t{16} << 20) * 8 + 1, 1, &bits), EOVERFLOW) << "more than 16M * 8 bits";
  EXPECT_EQ(mark(999, kStart, b.len, kSlot, &bits), ENOENT);
  EXPECT_EQ(mark(ioas, kStart, b.len, kSlot, &bits), ENOENT) << "an IOAS is no HWPT";
  EXPECT_EQ(mark(hwpt, kStart, b.len, kSlot, &bits), EINVAL) << "tracking is off";
  ASSERT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0);
  EXPECT_EQ(mark(hwpt, kStart, b.len, kSlot, reinterpret_cast<void*>(8)), EFAULT);
  EXPECT_EQ(read(b.len), Bits{}) << "refused marks marked nothing";
  uint64_t nr = 0;
  ASSERT_EQ(mark(hwpt, kStart - 2 * kSlot, b.len + 4 * kSlot, kSlot, &bits, &nr), 0);
  EXPECT_EQ(nr, b.len / kSlot) << "only mapped slots count";
  EXPECT_EQ(read(b.len).size(), b.len / kSlot);
}

TEST_P(IommufdDirty, TestOpDirtyFindsItsSlotByIovaOverPageSize) {
  // selftest.c (6.12) looks the slot up at xarray index cur / page_size,
  // whose entries are MOCK_IO_PAGE_SIZE apart: with page_size 4K, bit i of
  // a mark at 2 * kStart is the slot at kStart + i * 2K.
  Buffer b(4 * kPage);
  setup(false, b.va(), b.len);
  ASSERT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0);
  uint8_t bits = 0b101;
  uint64_t nr = 0;
  ASSERT_EQ(mark(hwpt, 2 * kStart, 8 * kPage, kPage, &bits, &nr), 0) << ioas_iommufd_last_error();
  EXPECT_EQ(nr, 2u);
  EXPECT_EQ(read(b.len), (Bits{0, 2}));
}

TEST_P(IommufdDirty, AReadOnlySlotIsCountedButStaysClean) {
  // The kernel's mock marks any mapped slot; the engines keep dirty bits
  // only where a device can write (uapi/README.md, "Dirty tracking").
  Buffer b(4 * kPage);
  setup(false, b.va(), b.len);
  Buffer ro(4 * kPage);
  iommu_ioas_map cmd{};
  cmd.size = sizeof(cmd);
  cmd.flags = IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_FIXED_IOVA;
  cmd.ioas_id = ioas;
  cmd.user_va = ro.va();
  cmd.length = ro.len;
  cmd.iova = kStart + b.len;
  ASSERT_EQ(call(IOMMU_IOAS_MAP, cmd), 0) << ioas_iommufd_last_error();
  ASSERT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0);
  mark_slots({kSlot, b.len + kSlot}, 2 * b.len);
  EXPECT_EQ(read(2 * b.len), Bits{1});
}

TEST_P(IommufdDirty, GetDirtyBitmapChecksInTheKernelsOrder) {
  Buffer b(8 * kPage);
  setup(false, b.va(), b.len);
  uint64_t bitmap = 0;
  EXPECT_EQ(get(999, kStart, b.len, kSlot, &bitmap, 2), EOPNOTSUPP) << "flags, before the HWPT";
  EXPECT_EQ(get(999, kStart, b.len, kSlot, &bitmap, 0, 1), EOPNOTSUPP) << "__reserved";
  EXPECT_EQ(get(999, kStart, b.len, kSlot, &bitmap), ENOENT);
  EXPECT_EQ(get(ioas, kStart, b.len, kSlot, &bitmap), ENOENT) << "an IOAS is no HWPT";
  // iommufd_check_iova_range, before the dirty ops: a HWPT without them
  // answers its errors first.
  for (uint32_t id : {hwpt, auto_hwpt}) {
    EXPECT_EQ(get(id, kStart, 0, 0, &bitmap), EINVAL) << "length 0";
    EXPECT_EQ(get(id, kU64Max - kSlot + 1, 2 * kSlot, 0, &bitmap), EOVERFLOW) << "iova + length - 1, before page_size";
    EXPECT_EQ(get(id, kStart + kSlot / 2, b.len, 0, &bitmap), EINVAL) << "iova off the IOAS's 2K alignment";
    EXPECT_EQ(get(id, kStart, b.len - kSlot / 2, 0, &bitmap), EINVAL) << "end off the IOAS's 2K alignment";
    EXPECT_EQ(get(id, kStart, b.len, 0, &bitmap), EINVAL) << "page_size 0";
    EXPECT_EQ(get(id, kStart + kSlot, b.len - kSlot, kPage, &bitmap), EINVAL) << "iova off page_size";
    EXPECT_EQ(get(id, kStart, b.len - kSlot, kPage, &bitmap), EINVAL) << "end off page_size";
  }
  EXPECT_EQ(get(auto_hwpt, kStart, b.len, kSlot, &bitmap), EOPNOTSUPP) << "no dirty ops";
  EXPECT_EQ(get(hwpt, kStart, b.len, kSlot, &bitmap), EINVAL) << "tracking is off";
  ASSERT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0);
  EXPECT_EQ(get(hwpt, kStart - kSlot, b.len, kSlot, &bitmap), EINVAL) << "the range starts in a hole";
  EXPECT_EQ(get(hwpt, kStart, b.len + kSlot, kSlot, &bitmap), EINVAL) << "the range ends in a hole";
  EXPECT_EQ(get(hwpt, kStart, b.len, kSlot, &bitmap), 0);
  EXPECT_EQ(bitmap, 0u) << "nothing is dirty";
}

TEST_P(IommufdDirty, BitmapHoldsTheDirtySlotsAndReadingClearsThemUnlessNoClear) {
  Buffer b(32 * kPage);  // 64 slots, the bitmap one u64
  setup(false, b.va(), b.len);
  ASSERT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0);
  mark_slots({0, 1 * kSlot, 5 * kSlot, 17 * kSlot, 40 * kSlot, 63 * kSlot}, b.len);
  const Bits pattern{0, 1, 5, 17, 40, 63};
  EXPECT_EQ(read(b.len, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), pattern);
  EXPECT_EQ(read(b.len, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), pattern) << "NO_CLEAR kept them";
  EXPECT_EQ(read(b.len), pattern);
  EXPECT_EQ(read(b.len), Bits{}) << "the read cleared them";

  // One bit per 4K: a page is dirty when either of its slots is.
  mark_slots({0, 1 * kSlot, 5 * kSlot, 17 * kSlot, 40 * kSlot, 63 * kSlot}, b.len);
  std::vector<uint8_t> by_page(8, 0);
  ASSERT_EQ(get(hwpt, kStart, b.len, kPage, by_page.data()), 0);
  EXPECT_EQ(set_bits(by_page, 32), (Bits{0, 2, 8, 20, 31}));
  EXPECT_EQ(read(b.len), Bits{});

  // Only a part: bits from the range's start, the rest untouched and dirty.
  mark_slots({1 * kSlot, 5 * kSlot, 17 * kSlot}, b.len);
  std::vector<uint8_t> part(8, 0);
  ASSERT_EQ(get(hwpt, kStart + 4 * kSlot, 8 * kSlot, kSlot, part.data()), 0);
  EXPECT_EQ(set_bits(part, 64), Bits{1});
  EXPECT_EQ(read(b.len), (Bits{1, 17}));
  EXPECT_EQ(read(b.len), Bits{});
}

TEST_P(IommufdDirty, BitmapBitsAreOnlySetAtAnyByteOfTheCallersMemory) {
  Buffer b(32 * kPage);
  setup(false, b.va(), b.len);
  ASSERT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0);
  // The bitmap straddles a page boundary at an odd address; bits already
  // set stay set (iova_bitmap_set only sets).
  Buffer mem(2 * kPage);
  uint8_t* data = static_cast<uint8_t*>(mem.ptr) + kPage - 3;
  std::memset(mem.ptr, 0, mem.len);
  data[0] = 0x80;
  data[7] = 0x01;
  mark_slots({0, 23 * kSlot, 24 * kSlot, 62 * kSlot}, b.len);
  ASSERT_EQ(get(hwpt, kStart, b.len, kSlot, data), 0);
  std::vector<uint8_t> got(data, data + 8);
  EXPECT_EQ(set_bits(got, 64), (Bits{0, 7, 23, 24, 56, 62}));
  EXPECT_EQ(data[-1], 0) << "nothing before the bitmap";
  EXPECT_EQ(data[8], 0) << "nothing after it";
}

TEST_P(IommufdDirty, AnUnwritableBitmapLosesTheBitsWithoutAnError) {
  Buffer b(32 * kPage);
  setup(false, b.va(), b.len);
  ASSERT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0);
  mark_slots({3 * kSlot}, b.len);
  Buffer ro(kPage);
  ASSERT_EQ(mprotect(ro.ptr, ro.len, PROT_READ), 0);
  EXPECT_EQ(get(hwpt, kStart, b.len, kSlot, ro.ptr), 0) << "iova_bitmap_set drops a record it cannot pin";
  EXPECT_EQ(static_cast<uint8_t*>(ro.ptr)[0], 0);
  EXPECT_EQ(read(b.len), Bits{}) << "the slot was cleaned all the same";
}

TEST_P(IommufdDirty, AHoleStopsTheWalkAfterTheAreasBeforeItWereRead) {
  Buffer b(8 * kPage);  // 16 slots at kStart, then a hole of 16 slots, then 16 more
  setup(false, b.va(), b.len);
  Buffer c(8 * kPage);
  ASSERT_EQ(map_at(ioas, c.va(), c.len, kStart + 2 * b.len), 0);
  ASSERT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0);
  mark_slots({2 * kSlot, 33 * kSlot}, 3 * b.len);
  std::vector<uint8_t> bitmap(8, 0);
  EXPECT_EQ(get(hwpt, kStart, 3 * b.len, kSlot, bitmap.data()), EINVAL);
  EXPECT_EQ(set_bits(bitmap, 48), Bits{2}) << "the first area was read";
  EXPECT_EQ(read(b.len), Bits{}) << "and cleaned";
  std::fill(bitmap.begin(), bitmap.end(), 0);
  ASSERT_EQ(get(hwpt, kStart + 2 * b.len, c.len, kSlot, bitmap.data()), 0);
  EXPECT_EQ(set_bits(bitmap, 16), Bits{1}) << "the area past the hole was not";
}

TEST_P(IommufdDirty, TrackingOffAndOnAgainStartsClean) {
  Buffer b(8 * kPage);
  setup(false, b.va(), b.len);
  ASSERT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0);
  mark_slots({4 * kSlot}, b.len);
  ASSERT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0);
  EXPECT_EQ(read(b.len), Bits{}) << "enabling again clears";
  mark_slots({4 * kSlot}, b.len);
  ASSERT_EQ(tracking(hwpt, 0), 0);
  std::vector<uint8_t> bitmap(8, 0);
  EXPECT_EQ(get(hwpt, kStart, b.len, kSlot, bitmap.data()), EINVAL) << "tracking is off";
  ASSERT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0);
  EXPECT_EQ(read(b.len), Bits{});
}

// A HWPT of a MOCK_FLAGS_DEVICE_HUGE_IOVA device maps 1M-aligned memory with
// 1M leaves (pa = va: the buffer is 1M aligned in this process).
class IommufdDirtyHuge : public IommufdDirty {
 protected:
  void SetUp() override {
    IommufdDirty::SetUp();
    const uint64_t va = (mem.va() + kHugeSlot - 1) & ~(kHugeSlot - 1);
    setup(true, va, 2 * kHugeSlot);
    ASSERT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0);
  }
  static Bits range(uint64_t first, uint64_t last) {
    Bits out;
    for (uint64_t i = first; i <= last; ++i) out.push_back(i);
    return out;
  }
  Buffer mem{3 * kHugeSlot};
};

TEST_P(IommufdDirtyHuge, ALargeLeafReadsDirtyWholeAndIsCleanedWhole) {
  mark_slots({kHugeSlot + 7 * kSlot}, 2 * kHugeSlot);
  EXPECT_EQ(read(2 * kHugeSlot, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), range(512, 1023))
      << "one slot written: all 512 pages of its 1M leaf";
  std::vector<uint8_t> by_mb(1, 0);
  ASSERT_EQ(get(hwpt, kStart, 2 * kHugeSlot, kHugeSlot, by_mb.data(), IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), 0);
  EXPECT_EQ(by_mb[0], 0b10);
  // Reading a part of the leaf cleans all of it.
  std::vector<uint8_t> part(8, 0);
  ASSERT_EQ(get(hwpt, kStart + kHugeSlot, 2 * kSlot, kSlot, part.data()), EPROTO)
      << "the leaf reaches past the range: iova_bitmap_set refuses it";
  EXPECT_EQ(set_bits(part, 64), Bits{});
  EXPECT_EQ(read(2 * kHugeSlot), Bits{}) << "and the leaf was cleaned";
}

TEST_P(IommufdDirtyHuge, AWalkStartingInsideALargeLeafRecordsFromThere) {
  // The mock steps 1M from where it stands: from kStart + 2K, leaf 0 is
  // recorded as [kStart + 2K, kStart + 1M + 2K), its last bit on leaf 1,
  // and leaf 1 as [kStart + 1M + 2K, ...), past the range's end: EPROTO.
  const uint64_t from = kStart + kSlot, len = 2 * kHugeSlot - kSlot;
  mark_slots({0}, 2 * kHugeSlot);
  std::vector<uint8_t> bitmap(128, 0);
  ASSERT_EQ(get(hwpt, from, len, kSlot, bitmap.data()), 0) << ioas_iommufd_last_error();
  EXPECT_EQ(set_bits(bitmap, 1023), range(0, 511));
  mark_slots({kHugeSlot}, 2 * kHugeSlot);
  std::fill(bitmap.begin(), bitmap.end(), 0);
  EXPECT_EQ(get(hwpt, from, len, kSlot, bitmap.data()), EPROTO);
  EXPECT_EQ(set_bits(bitmap, 1023), Bits{});
  EXPECT_EQ(read(2 * kHugeSlot), Bits{}) << "leaf 1 was cleaned before its record was refused";
}

// The mock visits only the slots it stands on: a walk from kStart + 2K
// steps 1M over leaf 0 to kStart + 1M + 2K, so the slot at kStart + 1M is
// neither recorded nor cleaned, and stays dirty for the next read.
TEST_P(IommufdDirty, ASlotTheWalkStepsOverStaysDirty) {
  Buffer mem(3 * kHugeSlot);
  const uint64_t va = (mem.va() + kHugeSlot - 1) & ~(kHugeSlot - 1);
  const uint64_t span = kHugeSlot + 4 * kSlot;  // one 1M leaf, then four 2K slots
  setup(true, va, span);
  ASSERT_EQ(tracking(hwpt, IOMMU_HWPT_DIRTY_TRACKING_ENABLE), 0);
  mark_slots({0, kHugeSlot, kHugeSlot + kSlot}, span);
  std::vector<uint8_t> bitmap(span / kSlot / 8 + 1, 0);
  ASSERT_EQ(get(hwpt, kStart + kSlot, span - kSlot, kSlot, bitmap.data()), 0) << ioas_iommufd_last_error();
  Bits want;
  for (uint64_t i = 0; i <= 512; ++i) want.push_back(i);  // leaf 0 from where the walk began, then slot 513
  EXPECT_EQ(set_bits(bitmap, span / kSlot - 1), want);
  EXPECT_EQ(read(span, IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR), Bits{512}) << "only the stepped-over slot is left";
}

INSTANTIATE_TEST_SUITE_P(Engines, IommufdDirty, ::testing::Values("impl", "model"),
                         [](const auto& info) { return std::string(info.param); });
INSTANTIATE_TEST_SUITE_P(Engines, IommufdDirtyHuge, ::testing::Values("impl", "model"),
                         [](const auto& info) { return std::string(info.param); });

TEST_P(Iommufd, MockDomainFlagsRefusesUnknownFlags) {
  uint32_t ioas = ioas_alloc();
  iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, ioas);
  cmd.mock_domain_flags.dev_flags = 1u << 7;
  EXPECT_EQ(call(IOMMU_TEST_CMD, cmd), EINVAL);
  cmd = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, 99);
  EXPECT_EQ(call(IOMMU_TEST_CMD, cmd), ENOENT);
  EXPECT_EQ(ioas_alloc(), 2u) << "no id was used";
}

TEST_P(Iommufd, MockDomainChecksMapAndCountsPins) {
  uint32_t ioas = ioas_alloc();
  iommu_test_cmd md = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, ioas);
  ASSERT_EQ(call(IOMMU_TEST_CMD, md), 0) << ioas_iommufd_last_error();
  Buffer b(4 * kPage);
  iommu_test_cmd refs = test_cmd(IOMMU_TEST_OP_MD_CHECK_REFS, 0);
  refs.check_refs.uptr = b.va();
  refs.check_refs.length = b.len;
  refs.check_refs.refs = 0;
  EXPECT_EQ(call(IOMMU_TEST_CMD, refs), 0);
  iommu_test_cmd wraps = refs;
  wraps.check_refs.uptr = ~uint64_t{0} - kPage + 1;  // the last page of the address space
  wraps.check_refs.length = 2 * kPage;                // and one past 2^64
  EXPECT_EQ(call(IOMMU_TEST_CMD, wraps), EINVAL) << "uptr + length passes 2^64";
  wraps.check_refs.length = kPage;  // the last page alone ends at 2^64: that wraps too
  EXPECT_EQ(call(IOMMU_TEST_CMD, wraps), EINVAL);
  wraps.check_refs.uptr -= kPage;  // the page before it: no wrap
  EXPECT_EQ(call(IOMMU_TEST_CMD, wraps), EFAULT) << "the page is checked, and is not mapped";
  uint64_t iova = MOCK_APERTURE_START;
  ASSERT_EQ(map(ioas, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0) << ioas_iommufd_last_error();
  EXPECT_EQ(call(IOMMU_TEST_CMD, refs), EIO) << "mapped in a domain: pinned once";
  refs.check_refs.refs = 1;
  EXPECT_EQ(call(IOMMU_TEST_CMD, refs), 0);

  iommu_test_cmd check = test_cmd(IOMMU_TEST_OP_MD_CHECK_MAP, md.mock_domain.out_hwpt_id);
  check.check_map.iova = iova;
  check.check_map.length = b.len;
  check.check_map.uptr = b.va();
  EXPECT_EQ(call(IOMMU_TEST_CMD, check), 0);
  check.check_map.uptr += kPage;
  EXPECT_EQ(call(IOMMU_TEST_CMD, check), EINVAL) << "another address";
  check.check_map.uptr = b.va() + 1;
  EXPECT_EQ(call(IOMMU_TEST_CMD, check), EINVAL) << "unaligned";
  check.check_map.uptr = b.va();
  check.id = ioas;
  EXPECT_EQ(call(IOMMU_TEST_CMD, check), ENOENT) << "not a HWPT";

  ASSERT_EQ(unmap(ioas, 0, kU64Max), 0);
  refs.check_refs.refs = 0;
  EXPECT_EQ(call(IOMMU_TEST_CMD, refs), 0);
}

TEST_P(Iommufd, UnmappedUserMemoryIsEFAULTOnceADomainPinsIt) {
  uint32_t ioas = ioas_alloc();
  Buffer b(4 * kPage);
  ASSERT_EQ(munmap(static_cast<char*>(b.ptr) + 2 * kPage, 2 * kPage), 0);
  uint64_t iova = MOCK_APERTURE_START;
  ASSERT_EQ(map(ioas, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0) << "no domain: nothing is pinned";
  iommu_test_cmd md = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, ioas);
  EXPECT_EQ(call(IOMMU_TEST_CMD, md), EFAULT) << "the first domain pins the area";
  ASSERT_EQ(unmap(ioas, 0, kU64Max), 0);
  ASSERT_EQ(call(IOMMU_TEST_CMD, md), 0) << ioas_iommufd_last_error();
  EXPECT_EQ(map(ioas, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), EFAULT);
  Buffer whole(kPage);
  EXPECT_EQ(map(ioas, whole, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
}

TEST_P(Iommufd, ClosingReleasesEveryPin) {
  uint32_t ioas = ioas_alloc();
  iommu_test_cmd md = test_cmd(IOMMU_TEST_OP_MOCK_DOMAIN, ioas);
  ASSERT_EQ(call(IOMMU_TEST_CMD, md), 0) << ioas_iommufd_last_error();
  Buffer b(kPage);
  uint64_t iova = MOCK_APERTURE_START;
  ASSERT_EQ(map(ioas, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
  int other = ioas_iommufd_open_engine(GetParam());
  ASSERT_GE(other, 0);
  iommu_test_cmd refs = test_cmd(IOMMU_TEST_OP_MD_CHECK_REFS, 0);
  refs.check_refs.uptr = b.va();
  refs.check_refs.length = b.len;
  refs.check_refs.refs = 1;
  EXPECT_EQ(ioas_iommufd_ioctl(other, IOMMU_TEST_CMD, &refs), 0) << "pins are counted over every context";
  ASSERT_EQ(ioas_iommufd_close(fd), 0);
  fd = -1;
  refs.check_refs.refs = 0;
  EXPECT_EQ(ioas_iommufd_ioctl(other, IOMMU_TEST_CMD, &refs), 0);
  EXPECT_EQ(ioas_iommufd_close(other), 0);
  EXPECT_EQ(ioas_iommufd_close(other), -1);
  EXPECT_EQ(errno, EBADF);
}

// ---- accesses (selftest.c's CREATE_ACCESS, ACCESS_PAGES, ACCESS_RW, ...) ----

// An access on `ioas`; its descriptor is closed (and the access released)
// at the end of the test.
struct AccessFd {
  int fd = -1;
  ~AccessFd() { close_now(); }
  void close_now() {
    if (fd < 0) return;
    EXPECT_EQ(ioas_iommufd_release_fd(fd), 1) << "an access descriptor";
    ::close(fd);
    fd = -1;
  }
};

class IommufdAccess : public Iommufd {
 protected:
  int create_access(uint32_t ioas, uint32_t flags, AccessFd& a) {
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_CREATE_ACCESS, ioas);
    cmd.create_access.flags = flags;
    int rc = call(IOMMU_TEST_CMD, cmd);
    if (rc == 0) a.fd = static_cast<int>(cmd.create_access.out_access_fd);
    return rc;
  }
  int pages(const AccessFd& a, uint64_t iova, uint64_t length, uint64_t uptr, uint32_t flags, uint32_t* item) {
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_ACCESS_PAGES, static_cast<uint32_t>(a.fd));
    cmd.access_pages.iova = iova;
    cmd.access_pages.length = length;
    cmd.access_pages.uptr = uptr;
    cmd.access_pages.flags = flags;
    int rc = call(IOMMU_TEST_CMD, cmd);
    if (item) *item = cmd.access_pages.out_access_pages_id;
    return rc;
  }
  int destroy_pages(const AccessFd& a, uint32_t item) {
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, static_cast<uint32_t>(a.fd));
    cmd.destroy_access_pages.access_pages_id = item;
    return call(IOMMU_TEST_CMD, cmd);
  }
  int rw(const AccessFd& a, uint64_t iova, void* buf, uint64_t length, uint32_t flags) {
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_ACCESS_RW, static_cast<uint32_t>(a.fd));
    cmd.access_rw.iova = iova;
    cmd.access_rw.length = length;
    cmd.access_rw.uptr = reinterpret_cast<uint64_t>(buf);
    cmd.access_rw.flags = flags;
    return call(IOMMU_TEST_CMD, cmd);
  }
  int check_refs(const Buffer& b, uint32_t refs) {
    iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_MD_CHECK_REFS, 0);
    cmd.check_refs.uptr = b.va();
    cmd.check_refs.length = b.len;
    cmd.check_refs.refs = refs;
    return call(IOMMU_TEST_CMD, cmd);
  }
};

TEST_P(IommufdAccess, CreateChecksFlagsThenIoasAndHoldsTheIoas) {
  uint32_t ioas = ioas_alloc();
  AccessFd a;
  EXPECT_EQ(create_access(ioas, 2, a), EOPNOTSUPP);
  EXPECT_EQ(create_access(ioas + 10, 0, a), ENOENT);
  EXPECT_EQ(ioas_alloc(), ioas + 1) << "the refused creates left no object";
  ASSERT_EQ(create_access(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, a), 0) << ioas_iommufd_last_error();
  EXPECT_GE(a.fd, 0);
  EXPECT_EQ(ioas_alloc(), ioas + 3) << "the access is an object of the table";
  EXPECT_EQ(destroy(ioas), EBUSY) << "the access holds its IOAS";
  EXPECT_EQ(destroy(ioas + 2), EBUSY) << "the access object goes with its descriptor only";
  a.close_now();
  EXPECT_EQ(destroy(ioas), 0);
  EXPECT_EQ(ioas_alloc(), ioas) << "the access's id is free again";
}

// An access is not a domain: the IOAS still pins nothing at map time.
TEST_P(IommufdAccess, AnAccessPinsNothingAtMapOnlyADomainDoes) {
  uint32_t ioas = ioas_alloc();
  AccessFd a;
  ASSERT_EQ(create_access(ioas, 0, a), 0) << ioas_iommufd_last_error();
  Buffer b(4 * kPage);
  ASSERT_EQ(munmap(static_cast<char*>(b.ptr) + 2 * kPage, 2 * kPage), 0);
  uint64_t iova = MOCK_APERTURE_START;
  EXPECT_EQ(map(ioas, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0) << ioas_iommufd_last_error();
}

TEST_P(IommufdAccess, PagesChecksInTheKernelsOrder) {
  uint32_t ioas = ioas_alloc();
  Buffer b(4 * kPage);
  uint64_t iova = MOCK_APERTURE_START;
  ASSERT_EQ(map(ioas, b, &iova, IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
  AccessFd plain, pin;
  ASSERT_EQ(create_access(ioas, 0, plain), 0);
  ASSERT_EQ(create_access(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, pin), 0);
  uint32_t item = 0;
  EXPECT_EQ(pages(pin, iova, (16u << 20) + 1, b.va(), 0, &item), ENOMEM);
  EXPECT_EQ(pages(pin, iova, kPage, b.va(), 4, &item), EOPNOTSUPP);
  AccessFd bogus;
  bogus.fd = 9999;
  EXPECT_EQ(pages(bogus, iova, kPage, b.va(), 0, &item), EBADFD);
  bogus.fd = -1;
  EXPECT_EQ(pages(plain, iova, kPage, b.va(), 0, &item), EOPNOTSUPP) << "not created with NEEDS_PIN_PAGES";
  EXPECT_EQ(pages(pin, iova, 0, b.va(), 0, &item), EINVAL);
  EXPECT_EQ(pages(pin, kU64Max - 10, 100, b.va(), 0, &item), EOVERFLOW);
  EXPECT_EQ(pages(pin, iova + b.len, kPage, b.va(), 0, &item), ENOENT) << "past the area";
  EXPECT_EQ(pages(pin, iova, kPage, b.va(), MOCK_FLAGS_ACCESS_WRITE, &item), EPERM) << "a read-only area";
  EXPECT_EQ(pages(pin, iova + 1, kPage, 0, MOCK_FLAGS_ACCESS_WRITE, &item), EINVAL)
      << "a pin's start at a page of its area's user memory is asked before the area's permission";
  EXPECT_EQ(pages(pin, iova + 3 * kPage, 2 * kPage, 0, MOCK_FLAGS_ACCESS_WRITE, &item), EPERM)
      << "the area's permission is asked before the hole after it";
  EXPECT_EQ(pages(pin, iova, kPage, b.va() + kPage, 0, &item), EBADE) << "uptr is another page";
  EXPECT_EQ(check_refs(b, 0), 0) << "every refused pin left nothing pinned";
  ASSERT_EQ(pages(pin, iova + kPage, kPage, b.va() + kPage, 0, &item), 0) << ioas_iommufd_last_error();
  EXPECT_EQ(item, 0u) << "items count from 0";
  uint32_t second = 0;
  ASSERT_EQ(pages(pin, iova + kPage, kPage, 0, 0, &second), 0) << "uptr 0 skips the page check";
  EXPECT_EQ(second, 1u);
}

TEST_P(IommufdAccess, PinnedPagesCountAndDestroyingAnItemUnpinsIt) {
  uint32_t ioas = ioas_alloc();
  Buffer b(4 * kPage);
  uint64_t iova = MOCK_APERTURE_START;
  ASSERT_EQ(map(ioas, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
  AccessFd a;
  ASSERT_EQ(create_access(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, a), 0);
  EXPECT_EQ(check_refs(b, 0), 0) << "no domain: nothing pinned yet";
  uint32_t item = 0;
  ASSERT_EQ(pages(a, iova, b.len, b.va(), MOCK_FLAGS_ACCESS_WRITE, &item), 0) << ioas_iommufd_last_error();
  EXPECT_EQ(check_refs(b, 1), 0) << "the access pinned every page";
  EXPECT_EQ(destroy_pages(a, item + 1), ENOENT);
  EXPECT_EQ(destroy_pages(a, item), 0);
  EXPECT_EQ(check_refs(b, 0), 0);
  EXPECT_EQ(destroy_pages(a, item), ENOENT) << "already destroyed";
}

TEST_P(IommufdAccess, UnmapTellsTheAccessWhichDropsItsItems) {
  uint32_t ioas = ioas_alloc();
  Buffer b(4 * kPage);
  uint64_t iova = MOCK_APERTURE_START;
  ASSERT_EQ(map(ioas, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
  AccessFd a;
  ASSERT_EQ(create_access(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, a), 0);
  uint32_t item = 0;
  ASSERT_EQ(pages(a, iova + kPage, kPage, b.va() + kPage, 0, &item), 0);
  uint64_t unmapped = 0;
  EXPECT_EQ(unmap(ioas, iova, b.len, &unmapped), 0) << ioas_iommufd_last_error();
  EXPECT_EQ(unmapped, b.len);
  EXPECT_EQ(destroy_pages(a, item), ENOENT) << "the unmap callback removed the item";
  EXPECT_EQ(check_refs(b, 0), 0);
}

TEST_P(IommufdAccess, RwReadsAndWritesTheUserMemoryAcrossAreas) {
  uint32_t ioas = ioas_alloc();
  Buffer b1(2 * kPage), b2(2 * kPage);
  std::memset(b1.ptr, 0x11, b1.len);
  std::memset(b2.ptr, 0x22, b2.len);
  uint64_t iova = MOCK_APERTURE_START, iova2 = MOCK_APERTURE_START + b1.len;
  ASSERT_EQ(map(ioas, b1, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
  ASSERT_EQ(map(ioas, b2, &iova2, IOMMU_IOAS_MAP_READABLE | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
  AccessFd a;
  ASSERT_EQ(create_access(ioas, 0, a), 0);
  std::vector<unsigned char> tmp(100);
  uint64_t at = iova + b1.len - 50;  // 50 bytes of each area
  ASSERT_EQ(rw(a, at, tmp.data(), tmp.size(), MOCK_ACCESS_RW_SLOW_PATH), 0) << ioas_iommufd_last_error();
  EXPECT_EQ(tmp[0], 0x11);
  EXPECT_EQ(tmp[49], 0x11);
  EXPECT_EQ(tmp[50], 0x22);
  EXPECT_EQ(tmp[99], 0x22);
  std::memset(tmp.data(), 0x33, tmp.size());
  EXPECT_EQ(rw(a, at, tmp.data(), tmp.size(), MOCK_ACCESS_RW_WRITE), EPERM) << "the second area is read-only";
  EXPECT_EQ(static_cast<unsigned char*>(b1.ptr)[b1.len - 1], 0x11) << "a refused write wrote nothing";
  ASSERT_EQ(rw(a, at, tmp.data(), 50, MOCK_ACCESS_RW_WRITE), 0);
  EXPECT_EQ(static_cast<unsigned char*>(b1.ptr)[b1.len - 50], 0x33);
  EXPECT_EQ(static_cast<unsigned char*>(b1.ptr)[b1.len - 51], 0x11);

  EXPECT_EQ(rw(a, at, tmp.data(), (16u << 20) + 1, 0), ENOMEM);
  EXPECT_EQ(rw(a, at, tmp.data(), 1, 2), EOPNOTSUPP);
  EXPECT_EQ(rw(a, at, tmp.data(), 0, 0), EINVAL);
  EXPECT_EQ(rw(a, kU64Max - 10, tmp.data(), 20, 0), EOVERFLOW);
  EXPECT_EQ(rw(a, iova2 + b2.len - 1, tmp.data(), 2, 0), ENOENT) << "past the last area";
  EXPECT_EQ(rw(a, at, nullptr, 1, 0), EFAULT) << "uptr unwritable";
  EXPECT_EQ(rw(a, at, nullptr, 1, MOCK_ACCESS_RW_WRITE), EFAULT) << "uptr unreadable";
}

TEST_P(IommufdAccess, ReplaceIoasDropsTheItemsAndMovesTheHold) {
  uint32_t ioas = ioas_alloc(), other = ioas_alloc();
  Buffer b(2 * kPage);
  uint64_t iova = MOCK_APERTURE_START;
  ASSERT_EQ(map(ioas, b, &iova, kRW | IOMMU_IOAS_MAP_FIXED_IOVA), 0);
  AccessFd a;
  ASSERT_EQ(create_access(ioas, MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, a), 0);
  uint32_t item = 0;
  ASSERT_EQ(pages(a, iova, b.len, b.va(), 0, &item), 0);
  iommu_test_cmd cmd = test_cmd(IOMMU_TEST_OP_ACCESS_REPLACE_IOAS, static_cast<uint32_t>(a.fd));
  cmd.access_replace_ioas.ioas_id = other + 10;
  EXPECT_EQ(call(IOMMU_TEST_CMD, cmd), ENOENT);
  EXPECT_EQ(check_refs(b, 1), 0) << "a refused replace kept the pin";
  cmd.access_replace_ioas.ioas_id = other;
  ASSERT_EQ(call(IOMMU_TEST_CMD, cmd), 0) << ioas_iommufd_last_error();
  EXPECT_EQ(check_refs(b, 0), 0) << "the items were released";
  EXPECT_EQ(destroy_pages(a, item), ENOENT);
  EXPECT_EQ(destroy(other), EBUSY) << "the access holds its new IOAS";
  EXPECT_EQ(unmap(ioas, 0, kU64Max), 0);
  EXPECT_EQ(destroy(ioas), 0) << "and no longer the old one";
  std::vector<unsigned char> tmp(8);
  EXPECT_EQ(rw(a, iova, tmp.data(), tmp.size(), 0), ENOENT) << "the new IOAS is empty";
}

TEST_P(IommufdAccess, ReleaseFdOfAnotherDescriptorIsZero) {
  EXPECT_EQ(ioas_iommufd_release_fd(0), 0);
}

INSTANTIATE_TEST_SUITE_P(Engines, IommufdAccess, ::testing::Values("impl", "model"),
                         [](const auto& info) { return std::string(info.param); });

TEST(IommufdOpen, UnknownEngineIsEINVAL) {
  EXPECT_EQ(ioas_iommufd_open_engine("kernel"), -1);
  EXPECT_EQ(errno, EINVAL);
}

INSTANTIATE_TEST_SUITE_P(Engines, Iommufd, ::testing::Values("impl", "model"),
                         [](const auto& info) { return std::string(info.param); });

}  // namespace
