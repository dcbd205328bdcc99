// A scripted Engine for the replayer's own tests: it answers every operation
// with a fixed, configurable value, so two of them can be made to disagree on
// purpose (the `--engine both` path, before impl exists) and `check` can be
// made to report violations (the model never does).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ioas/engine.hpp"

namespace ioas::trace::testing {

struct FakeEngine final : Engine {
  u64 map_iova = 0x1000;                // what every automatic map returns
  std::vector<Violation> violations;    // what check() reports
  std::vector<std::string> ioases{"default"};

  const char* kind() const override { return "fake"; }
  Status create_ioas(std::string_view name, const IoasOptions&) override {
    ioases.emplace_back(name);
    return ok_status();
  }
  Result<IoasOptions> ioas_options(std::string_view ioas) const override {
    for (const auto& n : ioases)
      if (n == ioas) return IoasOptions{};
    return make_error(ENOENT, "no such ioas");
  }
  std::vector<std::string> ioas_names() const override { return ioases; }
  Status add_memory(const MemorySource&) override { return ok_status(); }
  Status remove_memory(std::string_view) override { return ok_status(); }
  std::vector<MemoryInfo> memories() const override { return {}; }
  Result<u64> map(std::string_view, const MapArgs& a) override { return a.iova.value_or(map_iova); }
  Result<u64> unmap(std::string_view, u64, u64 len) override { return len; }
  Status cut(std::string_view, u64) override { return ok_status(); }
  Result<u64> copy(std::string_view, const CopyArgs& a) override { return a.dst_iova.value_or(map_iova); }
  Status reserve(std::string_view, Range, std::string_view) override { return ok_status(); }
  Status unreserve(std::string_view, std::string_view) override { return ok_status(); }
  Status allow(std::string_view, std::span<const Range>) override { return ok_status(); }
  Result<IovaRanges> ranges(std::string_view) const override { return IovaRanges{{Range::all()}, 1}; }
  Status attach(std::string_view, const AttachArgs&) override { return ok_status(); }
  Status detach(std::string_view) override { return ok_status(); }
  Result<std::uint32_t> pin(std::string_view, const PinArgs&) override { return std::uint32_t{7}; }
  Status unpin(std::string_view, std::uint32_t) override { return ok_status(); }
  Result<std::optional<Translation>> translate(std::string_view, u64) const override {
    return std::optional<Translation>{};
  }
  Result<DmaOutcome> dma(std::string_view, DmaDir, u64, u64) override { return DmaOutcome{}; }
  Status set_dirty_tracking(std::string_view, DirtyMode) override { return ok_status(); }
  Result<std::vector<Range>> read_dirty(std::string_view, u64, u64, u64, bool) override {
    return std::vector<Range>{};
  }
  Result<u64> uva(std::string_view, u64) const override { return make_error(ENOENT, "nothing mapped"); }
  Result<std::vector<LeafInfo>> leaves(std::string_view, Range) const override {
    return make_error(ENOENT, "no domain");
  }
  Result<IoasState> snapshot(std::string_view) const override { return IoasState{}; }
  std::vector<Violation> check() const override { return violations; }
};

}  // namespace ioas::trace::testing
