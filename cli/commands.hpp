// cli/commands.hpp: the subcommands beyond replay (internal to cli/).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "replay.hpp"

namespace ioas::cli {

// `ioas check [--json] [--engine E] FILE.trace|STATE.json...`
int check_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                  const trace::EngineRegistry& registry);
// `ioas ranges [--json] [--aperture RANGE] [FILE...]`; `sysfs_root` is where
// iommu_groups/ is looked for when no file is given.
int ranges_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                   const std::string& sysfs_root);

// Reads a whole file; EIO/ENOENT with "path: why" when it cannot.
Result<std::string> read_file(const std::string& path);

}  // namespace ioas::cli
