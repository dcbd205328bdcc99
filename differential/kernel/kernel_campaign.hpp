// differential/kernel: random traces on the model, the engine and an iommufd
// (the kernel engine), compared answer by answer.
//
// Operations come from the lockstep harness's generator (gen_operation, with
// its biased arguments: boundaries +-1, exact fits, the top of the space,
// alignments around each page size), drawn against the model's state and
// restricted to what iommufd has (to_kernel_subset): kernel-mode IOASes,
// memory with pa = va, mem, unmem, map, unmap, copy, reserve, allow, ranges,
// attach of the mock domain, detach, pin, unpin. Each operation runs first on
// the kernel engine; one it refuses as not expressible (kNotExpressible, or
// kAddressUnavailable for a buffer it cannot place) is counted by reason and
// runs nowhere. Otherwise it runs on the model and the engine (both in
// kernel mode), and the three answers (errno, chosen IOVA, ranges, bytes
// unmapped, pin id) must be equal, as must every IOAS's IOVA ranges and
// alignment afterwards (the kernel's IOMMU_IOAS_IOVA_RANGES).
//
// A disagreement is shrunk (chunks of operations removed while a
// disagreement remains, each candidate replayed on fresh engines) and
// written as a .trace whose first line creates `default` in kernel mode, so
// `ioas replay --engine model,impl,kernel` replays it.
#pragma once

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ioas/engine.hpp"
#include "trace.hpp"

namespace ioas::kernel_campaign {

// The operation as the kernel can be asked it, or nullopt for an operation
// iommufd has no uAPI for (cut, unreserve, translate, dma, dirty tracking,
// uva, check). IOASes become kernel mode; memory gets pa = va, writable,
// at most 16 MiB; attach becomes the mock domain (2K, or 2K|1M when the
// generator asked for page sizes with a larger one), with no reserved
// regions; pins release.
std::optional<trace::Operation> to_kernel_subset(const trace::Operation& op);

using KernelFactory = std::function<Result<std::unique_ptr<Engine>>()>;

struct Config {
  std::uint64_t seed = 1;
  std::uint64_t cases = 100;       // traces
  std::uint64_t max_ops = 0;       // stop after this many compared operations (0: no limit)
  double minutes = 0;              // stop after this long (0: no limit)
  int max_size = 40;               // operations drawn per trace
  KernelFactory make_kernel;
  std::string out_dir = ".";       // where a shrunk disagreement is written
  bool progress = false;           // a progress line per 10 traces
};

struct Report {
  std::uint64_t traces = 0;
  std::uint64_t compared = 0;      // operations run on all three and compared
  std::map<std::string, std::uint64_t> dropped;   // "not in the subset: cut", "refused: map", ...
  std::map<std::string, std::uint64_t> coverage;  // outcome classes, as the lockstep's
  std::map<std::string, std::uint64_t> known;     // steps that showed a known, reported difference
  std::string failure;             // "" when all agreed
  std::string trace_path;          // the shrunk trace, when one was written
  std::string trace_text;
};

// Runs traces until cases, max_ops or minutes is reached, or the first
// disagreement (shrunk and written). Errors (EIO): the kernel engine cannot
// be made, or refuses the kernel-mode `default` IOAS.
Result<Report> run(const Config& cfg, std::ostream& progress);

}  // namespace ioas::kernel_campaign
