// hw/tests/test_util.hpp: helpers shared by the hw unit tests.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "pagetable.hpp"

namespace ioas {
// gtest (and so ctest's test names) show a Format parameter by its name.
inline void PrintTo(Format f, std::ostream* os) { *os << to_string(f); }
}  // namespace ioas

namespace ioas::hw::testing {

struct Fixture {
  HeapPageMemory mem;
  std::unique_ptr<PageTable> pt;
  explicit Fixture(TableConfig cfg) {
    auto t = make_page_table(cfg, mem);
    EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
    if (t.ok()) pt = std::move(t).value();
  }
};

inline TableConfig radix_config(Format f, u64 sizes = k4K | k2M | k1G, bool preset_accessed = true) {
  TableConfig c;
  c.format = f;
  c.pgsize_bitmap = sizes;
  c.preset_accessed = preset_accessed;
  return c;
}

inline std::vector<Leaf> leaves(const PageTable& pt, Range r = Range::all()) {
  std::vector<Leaf> out;
  pt.for_each_leaf(r, [&](const Leaf& l) { out.push_back(l); });
  return out;
}

inline std::string fmt_name(const ::testing::TestParamInfo<Format>& info) {
  return info.param == Format::kX86_64 ? "x86_64" : info.param == Format::kArmLpae ? "arm_lpae" : "tce";
}

}  // namespace ioas::hw::testing
