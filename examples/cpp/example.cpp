// A C++ program using ioas (ioas/engine.hpp), built against an installed ioas
// with find_package(ioas). It runs the same steps on the production engine
// and on the executable spec and checks they agree: what a user's own
// differential test looks like. Exits 0 only if every answer is the expected one.
#include <cstdio>
#include <memory>

#include <ioas/engine.hpp>
#include <ioas/impl.hpp>

namespace {

int failures = 0;

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL %s\n", what);
    ++failures;
  }
}

// Returns the automatic IOVA and the valid ranges after a VMM-like setup.
std::pair<ioas::u64, ioas::IovaRanges> run(ioas::Engine& e) {
  check(e.create_ioas("vm0", {}).ok(), "create");
  check(e.add_memory({.name = "ram", .va = 0x7f0000000000, .len = 16 << 20, .pa = 0x7f0000000000, .writable = true}).ok(),
        "mem");
  check(e.attach("vm0", {.dev = "nic", .dom = "d0", .resv = {{{0xfee00000, 0xfeefffff}, ioas::ResvType::kMsi}}}).ok(),
        "attach");
  auto iova = e.map("vm0", {.len = 2 << 20, .source = "ram", .offset = 2 << 20, .prot = ioas::Prot::kReadWrite});
  check(iova.ok(), "map");
  auto bad = e.map("vm0", {.iova = 0xfee00000, .len = 4096, .source = "ram", .prot = ioas::Prot::kRead});
  check(!bad.ok() && bad.code() == EINVAL, "map into the MSI window is EINVAL");
  if (!bad.ok()) std::printf("%s: %s\n", e.kind(), ioas::to_string(bad.error()).c_str());
  auto ranges = e.ranges("vm0");
  check(ranges.ok(), "ranges");
  check(e.check().empty(), "invariants hold");
  return {iova.ok() ? *iova : 0, ranges.ok() ? *ranges : ioas::IovaRanges{}};
}

}  // namespace

int main() {
  auto engine = ioas::make_engine();
  auto spec = ioas::make_model_engine();
  auto [iova, ranges] = run(*engine);
  auto [spec_iova, spec_ranges] = run(*spec);
  std::printf("impl chose 0x%llx, the spec 0x%llx; valid ranges: %s, alignment 0x%llx\n",
              static_cast<unsigned long long>(iova), static_cast<unsigned long long>(spec_iova),
              ioas::to_string(ranges.ranges).c_str(), static_cast<unsigned long long>(ranges.alignment));
  check(iova == 0x200000, "a 2 MiB map from a 2 MiB-aligned address lands 2 MiB-aligned");
  check(iova == spec_iova && ranges == spec_ranges, "engine and spec agree");
  std::printf("%s\n", failures ? "C++ example: FAILED" : "C++ example: ok");
  return failures ? 1 : 0;
}
