// The uAPI headers compile as C++ with the same layouts as in C: every struct
// of tests/abi_sizes.c has the size C gave it. (Both languages also ran the
// headers' static_asserts, which pin the kernel's published layouts.)
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "ioas/uapi/iommufd_test.h"
#include "tests/abi_sizes.h"

namespace {

#define ROW(type) {#type, sizeof(struct type)}

const std::map<std::string, size_t> kCxxSizes = {
    ROW(iommu_destroy), ROW(iommu_ioas_alloc), ROW(iommu_iova_range),
    ROW(iommu_ioas_iova_ranges), ROW(iommu_ioas_allow_iovas),
    ROW(iommu_ioas_map), ROW(iommu_ioas_copy), ROW(iommu_ioas_unmap),
    ROW(iommu_option), ROW(iommu_vfio_ioas), ROW(iommu_hwpt_vtd_s1),
    ROW(iommu_hwpt_alloc), ROW(iommu_hw_info_vtd), ROW(iommu_hw_info),
    ROW(iommu_hwpt_set_dirty_tracking), ROW(iommu_hwpt_get_dirty_bitmap),
    ROW(iommu_hwpt_vtd_s1_invalidate), ROW(iommu_hwpt_invalidate),
    ROW(iommu_hwpt_pgfault), ROW(iommu_hwpt_page_response),
    ROW(iommu_fault_alloc), ROW(iommu_test_cmd), ROW(iommu_test_hw_info),
    ROW(iommu_hwpt_selftest), ROW(iommu_hwpt_invalidate_selftest),
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

}  // namespace
