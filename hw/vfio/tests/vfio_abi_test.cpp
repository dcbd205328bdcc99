// hw/vfio/tests/vfio_abi_test.cpp: the VFIO request numbers and struct sizes
// the layer passes to the kernel, pinned to the values of a C program built
// against <linux/vfio.h> (x86-64). VFIO's requests carry no size (_IO), but
// the structs' argsz fields do: a struct that C++ lays out differently from
// C (as happens to KVM's flexible-array structs) would change argsz.
#include <gtest/gtest.h>
#include <linux/vfio.h>

namespace {

TEST(VfioAbi, RequestNumbersAreTheKernels) {
  EXPECT_EQ(VFIO_GET_API_VERSION, 0x3b64u);
  EXPECT_EQ(VFIO_CHECK_EXTENSION, 0x3b65u);
  EXPECT_EQ(VFIO_SET_IOMMU, 0x3b66u);
  EXPECT_EQ(VFIO_GROUP_GET_STATUS, 0x3b67u);
  EXPECT_EQ(VFIO_GROUP_SET_CONTAINER, 0x3b68u);
  EXPECT_EQ(VFIO_GROUP_UNSET_CONTAINER, 0x3b69u);
  EXPECT_EQ(VFIO_GROUP_GET_DEVICE_FD, 0x3b6au);
  EXPECT_EQ(VFIO_DEVICE_GET_REGION_INFO, 0x3b6cu);
  EXPECT_EQ(VFIO_IOMMU_GET_INFO, 0x3b70u);
  EXPECT_EQ(VFIO_IOMMU_MAP_DMA, 0x3b71u);
  EXPECT_EQ(VFIO_IOMMU_UNMAP_DMA, 0x3b72u);
}

TEST(VfioAbi, StructSizesAreCs) {
  EXPECT_EQ(sizeof(vfio_group_status), 8u);
  EXPECT_EQ(sizeof(vfio_region_info), 32u);
  EXPECT_EQ(sizeof(vfio_iommu_type1_info), 24u);
  EXPECT_EQ(sizeof(vfio_info_cap_header), 8u);
  EXPECT_EQ(sizeof(vfio_iommu_type1_info_cap_iova_range), 16u);
  EXPECT_EQ(sizeof(vfio_iova_range), 16u);
  EXPECT_EQ(sizeof(vfio_iommu_type1_info_dma_avail), 12u);
  EXPECT_EQ(sizeof(vfio_iommu_type1_dma_map), 32u);
  EXPECT_EQ(sizeof(vfio_iommu_type1_dma_unmap), 24u);
}

}  // namespace
