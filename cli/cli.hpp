// cli/cli.hpp: the `ioas` command line, as a function so tests can run it in
// process with their own engines and streams. cli/main.cpp is a thin wrapper.
#pragma once

#include <ostream>
#include <string>
#include <vector>

#include "replay.hpp"

namespace ioas::cli {

// Exit statuses (TRACE.md "Replay" and the README): 0 when every expectation
// held and the engines agreed, 1 when one did not, 2 for bad usage, malformed
// input, an unreadable file or an engine that cannot run.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailed = 1;
inline constexpr int kExitUsage = 2;

// Runs `ioas ARGS...` (args excludes the program name). Line results go to
// `out`, diagnostics (usage, malformed lines) to `err`.
int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
        const trace::EngineRegistry& registry);

}  // namespace ioas::cli
