// The `ioas` command line: one parser (ioas/core/cmdline.hpp, over CLI11)
// for every command (replay, check, ranges, show), with the generated --help. The commands themselves
// take the parsed CommandLine (replay_command.cpp, check_commands.cpp,
// show.cpp). Bad usage exits with kExitUsage and a message naming what was
// wrong; --help prints to `out` and exits with kExitOk.
#include "cli.hpp"

#include <algorithm>
#include <iterator>

#include "checker.hpp"
#include "checker_process.hpp"
#include "commands.hpp"
#include "ioas/core/cmdline.hpp"
#include "show.hpp"

namespace ioas::cli {
namespace {

std::string engine_list(const trace::EngineRegistry& registry) {
  std::string s;
  for (const auto& f : registry.built()) {
    if (f.by_name_only) continue;
    if (!s.empty()) s += ", ";
    s += f.name;
  }
  return s.empty() ? "none" : s;
}

// The whole grammar of `ioas`, bound to `cl`.
void define(cmdline::Parser& parser, CommandLine& cl, const trace::EngineRegistry& registry) {
  parser.help_layout("usage", 22);
  parser.require_subcommand();
  cmdline::Command& app = parser.top();
  app.footer(
      "Run 'ioas replay --help', 'ioas check --help', 'ioas ranges --help' or\n"
      "'ioas show --help' for the options of each command. replay, check and ranges\n"
      "take --json for machine-readable output. Exit status: 0 ok, 1 failed (an\n"
      "expectation or invariant), 2 bad usage or input.");
  auto json = [&](cmdline::Command& c, const char* what) { c.flag("--json", cl.json, what); };

  cmdline::Command replay = app.subcommand("replay", "run .trace files (docs/trace-format.md) on the engines and check their expectations");
  replay.text("--engine", cl.engine,
                     "model, impl, both (model and impl), or a comma-separated list\n"
                     "such as model,impl,kernel: every line runs on each, any\n"
                     "disagreement is a failure. kernel drives /dev/iommu (or ioas's\n"
                     "userspace iommufd with IOAS_KERNEL_ENGINE_IOMMUFD=userspace)\n"
                     "and needs a trace whose first line is `ioas default mode=kernel`.\n"
                     "Default: every engine built into this binary but kernel (now: " + engine_list(registry) + ").");
  replay.flag("--rewrite", cl.rewrite,
                   "rewrite each FILE with every expectation filled in from the model\n"
                   "(comments, blank lines and the text before '=>' are kept;\n"
                   "successful ioas and mem lines stay bare)");
  json(replay, "print one JSON object (every line's results and the summary)");
  replay.text("--dump-state", cl.dump_state,
                     "write the final state of the (last) trace, as the first engine\n"
                     "sees it, to this state file (README \"State files\")");
  replay.words("FILE", cl.files, "trace files");
  replay.footer(
      "Runs each trace file from an empty state and prints every line's result as\n"
      "'file:line: <operation> => <result>'; a failed expectation is marked MISMATCH\n"
      "with the expected and the actual result, and a disagreement between engines\n"
      "is marked DISAGREE with every engine's answer. Every `check` line also runs\n"
      "the Z3 invariant checker (proofs/) on each engine.\n\n"
      "exit status: 0 every expectation held (and the engines agreed);\n"
      "             1 an expectation failed or the engines disagreed;\n"
      "             2 bad usage, a malformed or unreadable file, or an engine that\n"
      "               cannot run.");

  cmdline::Command check = app.subcommand("check", "check the invariants of a trace's states or a state file with Z3");
  json(check, "one JSON object on stdout: {\"ok\", \"files\": [...]}");
  check.text("--engine", cl.engine, "for traces: model, impl or both (default: every engine built)");
  check.words("FILE", cl.files, "FILE.trace or STATE.json");
  check.footer(
      "Checks the invariants (docs/semantics.md) with the Z3 invariant checker:\n"
      "a FILE.trace is replayed and every `check` line and every engine's final\n"
      "state are checked; a STATE.json (written by `ioas replay --dump-state`) is\n"
      "loaded and checked. A file is a state file when its name ends in .json or\n"
      "its first non-blank character is '{'. Each broken invariant is printed with\n"
      "the IOAS, what is wrong and a witness IOVA where there is one.\n\n"
      "exit status: 0 every invariant holds (and the trace's expectations held);\n"
      "             1 an invariant is violated (or a trace expectation failed, or\n"
      "               the engines disagreed);\n"
      "             2 bad usage, an unreadable or malformed file.");

  cmdline::Command ranges = app.subcommand("ranges", "valid IOVA ranges from Linux reserved_regions files (VFIO/iommufd)");
  ranges.text("--aperture", cl.aperture,
                     "the domain's aperture, START-LAST or START+LEN\n"
                     "(default 0-0xffffffffffffffff)");
  json(ranges, "{\"aperture\", \"regions\": [...], \"ranges\": [...]} on stdout");
  ranges.words("FILE", cl.files, "reserved_regions files");
  ranges.footer(
      "Reads Linux reserved_regions files (one region per line,\n"
      "'0x%016llx 0x%016llx TYPE', TYPE one of direct, direct-relaxable, reserved,\n"
      "msi) and prints the valid IOVA ranges of a VFIO container / iommufd IOAS\n"
      "holding all those groups, as both compute them: the aperture minus every\n"
      "region except direct-relaxable ones. Without FILE, reads every\n"
      "/sys/kernel/iommu_groups/*/reserved_regions of this machine.\n\n"
      "exit status: 0 valid ranges printed;\n"
      "             1 no valid IOVA remains (VFIO refuses such an attach with EINVAL);\n"
      "             2 bad usage, an unreadable or malformed file, or no groups found.");

  cmdline::Command show = app.subcommand("show", "draw a trace's final address space as an SVG picture");
  show.text("--svg", cl.svg, "the picture to write (required)");
  show.text("--ioas", cl.ioas, "the IOAS to draw (default: default)");
  show.text("--engine", cl.engine, "model or impl (default: model)");
  show.words("FILE.trace", cl.files, "the trace");
  show.footer(
      "Replays FILE.trace (on the model unless --engine says otherwise) and draws the\n"
      "final state of one IOAS as an SVG picture: allowed ranges, reserved ranges by\n"
      "owner, areas (blue rw, green r) and free holes, on an axis cut at every\n"
      "boundary (segment width grows with log2 of its size). Every boundary is\n"
      "labelled in hex; every shape has a tooltip with its exact range.\n\n"
      "exit status: 0 written; 2 bad usage, a malformed trace, an unknown IOAS, or\n"
      "             the picture cannot be written.");
}

// Parses `args` and runs the command it names.
int dispatch(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
             const trace::EngineRegistry& registry, const std::string& sysfs_root) {
  CommandLine cl;
  cmdline::Parser parser("ioas manages IO virtual address spaces (docs/semantics.md).", "ioas", /*last_wins=*/true);
  define(parser, cl, registry);
  if (args.empty()) {
    err << parser.help();
    return kExitUsage;
  }
  if (args[0] == "help") {
    out << parser.help();
    return kExitOk;
  }
  if (args[0][0] != '-' && !parser.has_subcommand(args[0])) {
    err << "ioas: unknown command '" << args[0] << "' (see ioas --help)\n";
    return kExitUsage;
  }
  // Everything after `--` is a file. CLI11 itself would hand a word after
  // `--` back to the parent command once FILE has a value, so the split is
  // made here.
  const auto dashdash = std::find(args.begin(), args.end(), "--");
  // `--engine=` with nothing after '=' would make CLI11 take the next word as
  // the value (a trace file as --dump-state's target); refuse it.
  for (auto a = args.begin(); a != dashdash; ++a) {
    if (a->size() > 3 && a->rfind("--", 0) == 0 && a->back() == '=') {
      err << "ioas: " << *a << " needs a value after '='\n";
      return kExitUsage;
    }
  }
  // CLI11 takes the arguments last first.
  const cmdline::Parsed parsed = parser.parse(std::vector<std::string>(std::make_reverse_iterator(dashdash), args.rend()));
  if (parsed.kind == cmdline::Parsed::kHelp) {
    out << parser.help();
    return kExitOk;
  }
  if (parsed.kind == cmdline::Parsed::kError) {
    std::string who = "ioas";
    for (const cmdline::Command& c : parser.selected()) who += " " + c.name();
    err << who << ": " << parsed.error << " (see " << who << " --help)\n";
    return kExitUsage;
  }
  if (dashdash != args.end()) cl.files.insert(cl.files.end(), dashdash + 1, args.end());
  const cmdline::Command sub = parser.selected().at(0);
  cl.engine_given = sub.given("--engine");
  cl.dump_state_given = sub.given("--dump-state");
  cl.aperture_given = sub.given("--aperture");
  const std::string command = sub.name();
  if (command == "replay") return replay_files(cl, out, err, registry);
  if (command == "check") return check_files(cl, out, err, registry);
  if (command == "ranges") return valid_ranges(cl, out, err, sysfs_root);
  return show_picture(cl, out, err, registry);
}

std::vector<std::string> with_command(const char* command, const std::vector<std::string>& args) {
  std::vector<std::string> all{command};
  all.insert(all.end(), args.begin(), args.end());
  return all;
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
        const trace::EngineRegistry& registry) {
  // The trace `check` operation runs the Z3 invariant checker after each
  // engine's own check (differential/replay.hpp's hook), in a child process
  // (checker_process.hpp): a crash inside Z3 must not end `ioas`.
  trace::set_state_checker([](const Engine& e) { return check_engine_in_child(e); });
  return dispatch(args, out, err, registry, "/sys");
}

int check_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                  const trace::EngineRegistry& registry) {
  return dispatch(with_command("check", args), out, err, registry, "/sys");
}

int ranges_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                   const std::string& sysfs_root) {
  return dispatch(with_command("ranges", args), out, err, trace::EngineRegistry::builtin(), sysfs_root);
}

int show_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                 const trace::EngineRegistry& registry) {
  return dispatch(with_command("show", args), out, err, registry, "/sys");
}

}  // namespace ioas::cli
