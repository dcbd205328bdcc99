// cli/commands.hpp: the subcommands beyond replay (internal to cli/).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "replay.hpp"

namespace ioas::cli {

// The parsed command line: one parser (cli.cpp) fills it for every command.
struct CommandLine {
  std::vector<std::string> files;
  bool json = false;
  std::string engine;  // --engine; "" = the command's default
  bool engine_given = false;
  bool rewrite = false;         // replay
  std::string dump_state;       // replay --dump-state
  bool dump_state_given = false;
  std::string aperture;         // ranges --aperture, as written
  bool aperture_given = false;
  std::string svg;              // show --svg
  std::string ioas = "default"; // show --ioas
};

// The commands, on a parsed command line.
int replay_files(const CommandLine& cl, std::ostream& out, std::ostream& err,
                 const trace::EngineRegistry& registry);
int check_files(const CommandLine& cl, std::ostream& out, std::ostream& err,
                const trace::EngineRegistry& registry);
int valid_ranges(const CommandLine& cl, std::ostream& out, std::ostream& err, const std::string& sysfs_root);
int show_picture(const CommandLine& cl, std::ostream& out, std::ostream& err,
                 const trace::EngineRegistry& registry);

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
