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

}  // namespace
