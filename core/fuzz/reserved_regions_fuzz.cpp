// core/fuzz/reserved_regions_fuzz.cpp: libFuzzer target for the reader of
// Linux reserved_regions files (reserved_regions.hpp) and, on what it reads,
// the two valid-range computations `ioas ranges` compares.
//
// Besides "no crash, no sanitizer report, no leak, no hang", every input must
// keep these properties; a breach prints what broke and aborts, so libFuzzer
// keeps the input:
//   - parse_reserved_regions returns regions or EINVAL "fuzz.rr:LINE: what",
//     LINE a line of the input;
//   - the regions it returns are valid (start <= last), in input order, each
//     on a line of the input, and written back in the kernel's format
//     ("0x%016llx 0x%016llx %s\n") they read back equal;
//   - VFIO's and iommufd's valid ranges agree (both are proved equal to the
//     set difference; `ioas ranges` reports a difference as an internal
//     error) for the whole space and for an aperture taken from the input.
//
// The same function runs in the ordinary build on every file of
// core/fuzz/reserved_regions_regressions
// (core/tests/reserved_regions_fuzz_regressions_test.cpp).
#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "ioas/core/reserved_regions.hpp"
#include "property.hpp"

namespace ioas::resv {
namespace {

const std::string kFile = "fuzz.rr";

[[noreturn]] void broken(const std::string& what) { fuzz::property_broken("reserved_regions_fuzz", what); }

// The number of lines parse_reserved_regions sees in `text`.
long count_lines(std::string_view text) {
  long n = static_cast<long>(std::count(text.begin(), text.end(), '\n'));
  return text.empty() || text.back() == '\n' ? n : n + 1;
}

void check_error(const Error& e, long lines) {
  if (e.code != EINVAL) broken("failed with errno " + std::to_string(e.code) + ": " + e.message);
  std::string_view m = e.message;
  if (m.rfind(kFile + ":", 0) != 0) broken("error without the file name: " + e.message);
  m.remove_prefix(kFile.size() + 1);
  long line = 0;
  std::size_t n = 0;
  while (n < m.size() && n < 9 && m[n] >= '0' && m[n] <= '9') line = line * 10 + (m[n++] - '0');
  m.remove_prefix(n);
  if (n == 0 || m.rfind(": ", 0) != 0 || m.size() <= 2) broken("error without a line or a message: " + e.message);
  if (line < 1 || line > lines)
    broken("error names line " + std::to_string(line) + " of " + std::to_string(lines) + ": " + e.message);
}

std::string kernel_format(const std::vector<RegionLine>& regions) {
  std::string out;
  for (const auto& r : regions) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "0x%016llx 0x%016llx ", static_cast<unsigned long long>(r.region.range.start),
                  static_cast<unsigned long long>(r.region.range.last));
    out += buf;
    out += to_string(r.region.type);
    out += '\n';
  }
  return out;
}

void check_regions(const std::vector<RegionLine>& regions, long lines) {
  int previous = 0;
  for (const auto& r : regions) {
    if (r.file != kFile) broken("a region lost its file name");
    if (r.line <= previous || r.line > lines) broken("region line " + std::to_string(r.line) + " out of order");
    previous = r.line;
    if (!r.region.range.valid()) broken("a region with start > last: " + to_string(r.region.range));
  }
  const std::string text = kernel_format(regions);
  auto back = parse_reserved_regions(text, "kernel.rr");
  if (!back.ok()) broken("the kernel's format does not read back: " + back.error().message + "\n" + text);
  if (back->size() != regions.size()) broken("the kernel's format reads back to another number of regions");
  for (std::size_t i = 0; i < regions.size(); ++i) {
    const ResvRegion& a = regions[i].region;
    const ResvRegion& b = (*back)[i].region;
    if (!(a.range == b.range) || a.type != b.type || (*back)[i].line != static_cast<int>(i) + 1)
      broken("region " + std::to_string(i) + " reads back as another region:\n" + text);
  }
}

void check_valid_ranges(const std::vector<RegionLine>& regions) {
  std::vector<ResvRegion> plain;
  for (const auto& r : regions) plain.push_back(r.region);
  std::vector<Range> apertures{Range::all()};
  if (!regions.empty()) apertures.push_back(regions.front().region.range);
  for (const Range& aperture : apertures) {
    const std::vector<Range> vfio = vfio_valid_ranges(aperture, plain);
    const std::vector<Range> iommufd = iommufd_valid_ranges(aperture, plain);
    if (vfio != iommufd)
      broken("aperture " + to_string(aperture) + ": VFIO's " + to_string(vfio) + " differs from iommufd's " +
             to_string(iommufd));
  }
}

}  // namespace
}  // namespace ioas::resv

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ioas::resv;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const long lines = count_lines(text);
  auto r = parse_reserved_regions(text, kFile);
  if (!r.ok()) {
    check_error(r.error(), lines);
    return 0;
  }
  check_regions(*r, lines);
  check_valid_ranges(*r);
  return 0;
}
