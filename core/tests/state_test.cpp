// The state file's reader and writer (ioas/core/state.hpp) agree on every
// field: a state whose every field differs from its default reads back as
// it was written. A field the reader skips (or the writer leaves out) would
// come back as its default and break the equality.
#include <gtest/gtest.h>

#include "ioas/core/state.hpp"

namespace ioas::state {
namespace {

StateDump nothing_at_its_default() {
  StateDump d;
  d.memories.push_back(MemoryInfo{MemorySource{"ram", 0x7f0000000000, 0x400000, 0x80000000, false}, 3});

  IoasState s;
  s.name = "io";
  s.options = IoasOptions{ZeroPage::kAllowed, false, IoasMode::kKernel};
  s.iova_alignment = 0x2000;
  s.areas.push_back(AreaInfo{Range{0x10000, 0x13fff}, Prot::kRead, "ram", 0x3000, 2});
  s.reserved.push_back(ReservedInfo{Range{0x0, 0xfff}, Owner{OwnerKind::kZeroPage, ""}});
  s.reserved.push_back(ReservedInfo{Range{0xfee00000, 0xfeefffff}, Owner{OwnerKind::kDevice, "dev0"}});
  s.allowed.push_back(Range{0x1000, 0xffffff});
  s.pins.push_back(PinInfo{7, Range{0x10000, 0x10fff}, true, false});
  DomainInfo dm;
  dm.name = "dom";
  dm.fmt = Format::kArmLpae;
  dm.aperture = Range{0x1000, 0xffffffffff};
  dm.pgsize_bitmap = 0x40201000;
  dm.devices = {"dev0", "dev1"};
  dm.dirty = DirtyMode::kOnSplit;
  s.domains.push_back(dm);
  s.next_pin_id = 9;
  d.ioases.push_back(s);

  d.translations.push_back(TranslationSample{"dom", 0x10000, Translation{0x80003000, Prot::kRead}});
  d.translations.push_back(TranslationSample{"dom", 0x14000, std::nullopt});
  return d;
}

TEST(StateFile, EveryFieldOffItsDefaultReadsBackAsWritten) {
  const StateDump d = nothing_at_its_default();
  // The fields with a default really are off it (a default would read back
  // even if nothing read it).
  const IoasState& s = d.ioases[0];
  EXPECT_NE(d.memories[0].source.writable, MemorySource{}.writable);
  EXPECT_NE(d.memories[0].source.pa, d.memories[0].source.va);  // pa defaults to va
  EXPECT_NE(s.options.zero_page, IoasOptions{}.zero_page);
  EXPECT_NE(s.options.huge_pages, IoasOptions{}.huge_pages);
  EXPECT_NE(s.options.mode, IoasOptions{}.mode);
  EXPECT_NE(s.areas[0].offset, AreaInfo{}.offset);
  EXPECT_NE(s.areas[0].pins, AreaInfo{}.pins);
  EXPECT_NE(s.pins[0].write, PinInfo{}.write);
  EXPECT_NE(s.pins[0].release, PinInfo{}.release);
  EXPECT_NE(s.domains[0].dirty, DomainInfo{}.dirty);
  EXPECT_NE(s.next_pin_id, IoasState{}.next_pin_id);

  const std::string text = to_json_text(d);
  auto back = from_json_text(text, "every-field.json");
  ASSERT_TRUE(back.ok()) << back.error().message << "\n" << text;
  EXPECT_EQ(*back, d) << text;
}

TEST(StateFile, AFieldOfTheWrongKindIsNamedByItsPath) {
  std::string text = to_json_text(nothing_at_its_default());
  const std::string release = "\"release\": false";
  const auto at = text.find(release);
  ASSERT_NE(at, std::string::npos) << text;
  text.replace(at, release.size(), "\"release\": \"no\"");
  auto back = from_json_text(text, "bad.json");
  ASSERT_FALSE(back.ok());
  EXPECT_NE(back.error().message.find("bad.json:"), std::string::npos) << back.error().message;
  EXPECT_NE(back.error().message.find("$.ioases[0].pins[0].release"), std::string::npos) << back.error().message;
}

}  // namespace
}  // namespace ioas::state
