// The uAPI headers compile as C++ with the same layouts as in C: every struct
// of IOAS_ABI_STRUCTS (tests/abi_sizes.h) has the size C gave it. (Both
// languages also ran the headers' static_asserts, which pin the kernel's
// published layouts.)
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "ioas/uapi/iommufd_test.h"
#include "tests/abi_sizes.h"

namespace {

#define ROW(type) {#type, sizeof(struct type)}

const std::map<std::string, size_t> kCxxSizes = {
    IOAS_ABI_STRUCTS(ROW)
};

TEST(UapiAbi, EveryStructHasTheSameSizeInCAndCxx) {
  size_t rows = 0;
  for (const ioas_abi_size* r = ioas_abi_c_sizes(); r->name; ++r, ++rows) {
    auto it = kCxxSizes.find(r->name);
    ASSERT_NE(it, kCxxSizes.end()) << r->name << " is measured in C but not in C++";
    EXPECT_EQ(it->second, r->size) << r->name;
  }
  EXPECT_EQ(rows, kCxxSizes.size());
}

TEST(UapiAbi, HwInfoInAndOutDataTypeAreOneField) {
  EXPECT_EQ(ioas_abi_c_hw_info_type_alias(IOMMU_HW_INFO_TYPE_SELFTEST), IOMMU_HW_INFO_TYPE_SELFTEST);
  iommu_hw_info cmd{};
  cmd.in_data_type = 7;
  EXPECT_EQ(cmd.out_data_type, 7u);
}

TEST(UapiAbi, RequestsEncodeTypeSemicolonAndNoDirectionOrSize) {
  for (unsigned long req : {IOMMU_DESTROY, IOMMU_IOAS_MAP, IOMMU_TEST_CMD}) {
    EXPECT_EQ(_IOC_TYPE(req), unsigned(';'));
    EXPECT_EQ(_IOC_DIR(req), unsigned(_IOC_NONE));
    EXPECT_EQ(_IOC_SIZE(req), 0u);
  }
}

// Every enumerator of the two uAPI headers has the value Linux gives it:
// include/uapi/linux/iommufd.h and drivers/iommu/iommufd/iommufd_test.h of
// Linux 6.12 (values printed by compiling those headers), and the two
// enumerators added after 6.12 (the hw_info input type, upstream since 6.17).
TEST(UapiAbi, EveryEnumeratorHasTheKernelsValue) {
  struct Pin {
    const char* name;
    unsigned long long ours, kernels;
  };
#define PIN(name, value) Pin{#name, static_cast<unsigned long long>(name), value##ull}
  const Pin pins[] = {
    PIN(IOMMUFD_CMD_BASE, 128),
    PIN(IOMMUFD_CMD_DESTROY, 128),
    PIN(IOMMUFD_CMD_IOAS_ALLOC, 129),
    PIN(IOMMUFD_CMD_IOAS_ALLOW_IOVAS, 130),
    PIN(IOMMUFD_CMD_IOAS_COPY, 131),
    PIN(IOMMUFD_CMD_IOAS_IOVA_RANGES, 132),
    PIN(IOMMUFD_CMD_IOAS_MAP, 133),
    PIN(IOMMUFD_CMD_IOAS_UNMAP, 134),
    PIN(IOMMUFD_CMD_OPTION, 135),
    PIN(IOMMUFD_CMD_VFIO_IOAS, 136),
    PIN(IOMMUFD_CMD_HWPT_ALLOC, 137),
    PIN(IOMMUFD_CMD_GET_HW_INFO, 138),
    PIN(IOMMUFD_CMD_HWPT_SET_DIRTY_TRACKING, 139),
    PIN(IOMMUFD_CMD_HWPT_GET_DIRTY_BITMAP, 140),
    PIN(IOMMUFD_CMD_HWPT_INVALIDATE, 141),
    PIN(IOMMUFD_CMD_FAULT_QUEUE_ALLOC, 142),
    PIN(IOMMU_IOAS_MAP_FIXED_IOVA, 1),
    PIN(IOMMU_IOAS_MAP_WRITEABLE, 2),
    PIN(IOMMU_IOAS_MAP_READABLE, 4),
    PIN(IOMMU_OPTION_RLIMIT_MODE, 0),
    PIN(IOMMU_OPTION_HUGE_PAGES, 1),
    PIN(IOMMU_OPTION_OP_SET, 0),
    PIN(IOMMU_OPTION_OP_GET, 1),
    PIN(IOMMU_VFIO_IOAS_GET, 0),
    PIN(IOMMU_VFIO_IOAS_SET, 1),
    PIN(IOMMU_VFIO_IOAS_CLEAR, 2),
    PIN(IOMMU_HWPT_ALLOC_NEST_PARENT, 1),
    PIN(IOMMU_HWPT_ALLOC_DIRTY_TRACKING, 2),
    PIN(IOMMU_HWPT_FAULT_ID_VALID, 4),
    PIN(IOMMU_VTD_S1_SRE, 1),
    PIN(IOMMU_VTD_S1_EAFE, 2),
    PIN(IOMMU_VTD_S1_WPE, 4),
    PIN(IOMMU_HWPT_DATA_NONE, 0),
    PIN(IOMMU_HWPT_DATA_VTD_S1, 1),
    PIN(IOMMU_HW_INFO_VTD_ERRATA_772415_SPR17, 1),
    PIN(IOMMU_HW_INFO_TYPE_NONE, 0),
    PIN(IOMMU_HW_INFO_TYPE_INTEL_VTD, 1),
    PIN(IOMMU_HW_CAP_DIRTY_TRACKING, 1),
    PIN(IOMMU_HW_CAP_PCI_PASID_EXEC, 2),
    PIN(IOMMU_HW_CAP_PCI_PASID_PRIV, 4),
    PIN(IOMMU_HWPT_DIRTY_TRACKING_ENABLE, 1),
    PIN(IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, 1),
    PIN(IOMMU_HWPT_INVALIDATE_DATA_VTD_S1, 0),
    PIN(IOMMU_VTD_INV_FLAGS_LEAF, 1),
    PIN(IOMMU_PGFAULT_FLAGS_PASID_VALID, 1),
    PIN(IOMMU_PGFAULT_FLAGS_LAST_PAGE, 2),
    PIN(IOMMU_PGFAULT_PERM_READ, 1),
    PIN(IOMMU_PGFAULT_PERM_WRITE, 2),
    PIN(IOMMU_PGFAULT_PERM_EXEC, 4),
    PIN(IOMMU_PGFAULT_PERM_PRIV, 8),
    PIN(IOMMUFD_PAGE_RESP_SUCCESS, 0),
    PIN(IOMMUFD_PAGE_RESP_INVALID, 1),
    PIN(IOMMU_TEST_OP_ADD_RESERVED, 1),
    PIN(IOMMU_TEST_OP_MOCK_DOMAIN, 2),
    PIN(IOMMU_TEST_OP_MD_CHECK_MAP, 3),
    PIN(IOMMU_TEST_OP_MD_CHECK_REFS, 4),
    PIN(IOMMU_TEST_OP_CREATE_ACCESS, 5),
    PIN(IOMMU_TEST_OP_DESTROY_ACCESS_PAGES, 6),
    PIN(IOMMU_TEST_OP_ACCESS_PAGES, 7),
    PIN(IOMMU_TEST_OP_ACCESS_RW, 8),
    PIN(IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT, 9),
    PIN(IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE, 10),
    PIN(IOMMU_TEST_OP_ACCESS_REPLACE_IOAS, 11),
    PIN(IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS, 12),
    PIN(IOMMU_TEST_OP_DIRTY, 13),
    PIN(IOMMU_TEST_OP_MD_CHECK_IOTLB, 14),
    PIN(IOMMU_TEST_OP_TRIGGER_IOPF, 15),
    PIN(MOCK_APERTURE_START, 16777216),
    PIN(MOCK_APERTURE_LAST, 2147483647),
    PIN(MOCK_FLAGS_ACCESS_WRITE, 1),
    PIN(MOCK_FLAGS_ACCESS_SYZ, 65536),
    PIN(MOCK_ACCESS_RW_WRITE, 1),
    PIN(MOCK_ACCESS_RW_SLOW_PATH, 4),
    PIN(MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES, 1),
    PIN(MOCK_FLAGS_DEVICE_NO_DIRTY, 1),
    PIN(MOCK_FLAGS_DEVICE_HUGE_IOVA, 2),
    PIN(MOCK_NESTED_DOMAIN_IOTLB_ID_MAX, 3),
    PIN(MOCK_NESTED_DOMAIN_IOTLB_NUM, 4),
    PIN(IOMMU_HW_INFO_TYPE_DEFAULT, 0),
    PIN(IOMMU_HW_INFO_FLAG_INPUT_TYPE, 1),
  };
#undef PIN
  for (const Pin& p : pins) EXPECT_EQ(p.ours, p.kernels) << p.name;
}

}  // namespace
