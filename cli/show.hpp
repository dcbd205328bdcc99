// cli/show.hpp: the address-space picture (`ioas show`).
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "ioas/engine.hpp"
#include "replay.hpp"

namespace ioas::cli {

// The SVG picture of one IOAS's state: lanes for allowed ranges, each
// reserved owner, areas and free holes on a segmented axis (see show.cpp).
std::string render_svg(const IoasState& s);

// `ioas show FILE.trace --svg OUT [--ioas NAME] [--engine model|impl]`
// (parsed by cli.cpp's parser).
int show_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                 const trace::EngineRegistry& registry);

}  // namespace ioas::cli
