// The `ioas` command line: `ioas replay [--engine E] [--rewrite] [--json]
// [--dump-state FILE] FILE...`, `ioas check`, `ioas ranges` (check_commands.cpp).
//
// Every file is parsed before anything runs, so a malformed line anywhere
// stops the replay before any engine has been touched (TRACE.md: "nothing is
// guessed"). Then each file runs from an empty state on every selected engine.
#include "cli.hpp"

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <optional>

#include "checker.hpp"
#include "show.hpp"
#include "commands.hpp"
#include "json.hpp"
#include "state.hpp"

namespace ioas::cli {
namespace {

std::string engine_list(const trace::EngineRegistry& registry) {
  std::string s;
  for (const auto& f : registry.built()) {
    if (!s.empty()) s += ", ";
    s += f.name;
  }
  return s.empty() ? "none" : s;
}

void main_help(std::ostream& out) {
  out << "usage: ioas <command> [options]\n"
         "\n"
         "commands:\n"
         "  replay    run .trace files (TRACE.md) on the engines and check their expectations\n"
         "  check     check the SPEC invariants of a trace's states or a state file with Z3\n"
         "  ranges    valid IOVA ranges from Linux reserved_regions files (VFIO/iommufd)\n"
         "  show      draw a trace's final address space as an SVG picture\n"
         "\n"
         "Run 'ioas replay --help', 'ioas check --help', 'ioas ranges --help' or\n"
         "'ioas show --help' for the options of each command. replay, check and ranges\n"
         "take --json for machine-readable output. Exit status: 0 ok, 1 failed (an\n"
         "expectation or invariant), 2 bad usage or input.\n";
}

void replay_help(std::ostream& out, const trace::EngineRegistry& registry) {
  out << "usage: ioas replay [--engine model|impl|both] [--rewrite] [--json] [--dump-state FILE] FILE...\n"
         "\n"
         "Runs each trace file from an empty state and prints every line's result as\n"
         "'file:line: <operation> => <result>'; a failed expectation is marked MISMATCH\n"
         "with the expected and the actual result, and a disagreement between engines\n"
         "is marked DISAGREE with every engine's answer.\n"
         "\n"
         "options:\n"
         "  --engine E   model, impl or both (model and impl on every line, any\n"
         "               disagreement is a failure). Default: every engine built\n"
         "               into this binary (now: "
      << engine_list(registry)
      << "), which is\n"
         "               TRACE.md's both when impl/ is built.\n"
         "  --rewrite    rewrite each FILE with every expectation filled in from the\n"
         "               model (comments, blank lines and the text before '=>' are\n"
         "               kept; successful ioas and mem lines stay bare)\n"
         "  --json       print one JSON object (every line's results and the summary)\n"
         "               instead of the text lines\n"
         "  --dump-state FILE\n"
         "               write the final state of the (last) trace, as the first\n"
         "               engine sees it, to FILE as a state file (README \"State\n"
         "               files\"; `ioas check FILE` checks it)\n"
         "  -h, --help   this help\n"
         "\n"
         "Every `check` line also runs the Z3 invariant checker (proofs/) on each\n"
         "engine; its findings join the engine's own.\n"
         "\n"
         "exit status: 0 every expectation held (and the engines agreed);\n"
         "             1 an expectation failed or the engines disagreed;\n"
         "             2 bad usage, a malformed or unreadable file, or an engine that\n"
         "               is not built or cannot run.\n";
}

std::string with_note(const trace::EngineAnswer& a) {
  std::string s = to_string(a.outcome);
  if (!a.note.empty()) s += "  -- " + a.note;
  return s;
}

void print_line(std::ostream& out, const trace::LineReport& lr) {
  const trace::Line& l = *lr.line;
  std::string where = l.pos.file + ":" + std::to_string(l.pos.line) + ": ";
  // The operation as the author wrote it (without the old expectation).
  std::string op = l.arrow == std::string::npos ? l.text : l.text.substr(0, l.arrow);
  op.erase(0, op.find_first_not_of(" \t"));
  op.erase(op.find_last_not_of(" \t") + 1);
  if (!lr.agree) {
    out << where << op << " => DISAGREE\n";
    for (const auto& a : lr.answers) out << where << "  " << a.engine << ": " << with_note(a) << "\n";
    if (l.expect) out << where << "  expected: " << to_string(*l.expect) << "\n";
    return;
  }
  out << where << op << " => " << with_note(lr.answers[0]) << "\n";
  if (lr.held && !*lr.held) {
    out << where << "MISMATCH\n"
        << where << "  expected: " << to_string(*l.expect) << "\n"
        << where << "  got:      " << to_string(lr.answers[0].outcome) << "\n";
  }
}

// Writes `text` to `path` through a temporary file, so an interrupted rewrite
// never leaves a half-written trace.
Status write_file(const std::string& path, const std::string& text) {
  std::string tmp = path + ".rewrite.tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) return make_error(EIO, tmp + ": cannot open for writing");
    f << text;
    f.flush();
    if (!f) return make_error(EIO, tmp + ": write failed");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    return make_error(EIO, path + ": cannot replace it with the rewritten trace");
  }
  return ok_status();
}

int replay_command(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
                   const trace::EngineRegistry& registry) {
  std::string engine;  // "" = every built engine
  bool engine_given = false;
  bool rewrite = false;
  bool as_json = false;
  std::string dump_path;
  std::vector<std::string> files;
  bool options_done = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (!options_done && (a == "-h" || a == "--help")) {
      replay_help(out, registry);
      return kExitOk;
    }
    if (!options_done && a == "--") {
      options_done = true;
    } else if (!options_done && a == "--rewrite") {
      rewrite = true;
    } else if (!options_done && a == "--json") {
      as_json = true;
    } else if (!options_done && (a == "--dump-state" || a.rfind("--dump-state=", 0) == 0)) {
      if (a == "--dump-state") {
        if (i + 1 == args.size()) {
          err << "ioas replay: --dump-state needs a file name\n";
          return kExitUsage;
        }
        dump_path = args[++i];
      } else {
        dump_path = a.substr(13);
      }
      if (dump_path.empty()) {
        err << "ioas replay: --dump-state needs a file name\n";
        return kExitUsage;
      }
    } else if (!options_done && (a == "--engine" || a.rfind("--engine=", 0) == 0)) {
      if (a == "--engine") {
        if (i + 1 == args.size()) {
          err << "ioas replay: --engine needs a value (model, impl or both)\n";
          return kExitUsage;
        }
        engine = args[++i];
      } else {
        engine = a.substr(9);
      }
      engine_given = true;
      if (engine.empty()) {
        err << "ioas replay: --engine needs a value (model, impl or both)\n";
        return kExitUsage;
      }
    } else if (!options_done && a.size() > 1 && a[0] == '-') {
      err << "ioas replay: unknown option '" << a << "' (see ioas replay --help)\n";
      return kExitUsage;
    } else {
      files.push_back(a);
    }
  }
  if (files.empty()) {
    err << "ioas replay: no trace file given (usage: ioas replay [--engine model|impl|both] "
           "[--rewrite] FILE...)\n";
    return kExitUsage;
  }
  auto selected = registry.select(engine_given ? engine : "");
  if (!selected.ok()) {
    err << "ioas replay: " << selected.error().message << "\n";
    return kExitUsage;
  }
  const std::vector<trace::EngineFactory>& engines = selected.value();
  std::size_t model_index = engines.size();
  for (std::size_t i = 0; i < engines.size(); ++i)
    if (engines[i].name == "model") model_index = i;
  if (rewrite && model_index == engines.size()) {
    err << "ioas replay: --rewrite fills expectations from the model; select it (--engine model or both)\n";
    return kExitUsage;
  }

  // Parse everything first: a malformed line stops the replay before it starts.
  std::vector<trace::Trace> traces;
  for (const auto& f : files) {
    auto t = trace::read_trace_file(f);
    if (!t.ok()) {
      err << (t.code() == EINVAL ? "malformed trace: " : "ioas replay: ") << t.error().message << "\n";
      return kExitUsage;
    }
    traces.push_back(std::move(t).value());
  }

  std::string names;
  for (const auto& e : engines) names += (names.empty() ? "" : ", ") + e.name;
  if (!as_json) out << "engines: " << names << "\n";
  json::Value jlines = json::Value::arr();
  auto on_line = [&](const trace::LineReport& lr) {
    if (!as_json) {
      print_line(out, lr);
      return;
    }
    json::Value jl = json::Value::obj()
                         .set("file", json::Value::of(lr.line->pos.file))
                         .set("line", json::Value::of(static_cast<std::uint64_t>(lr.line->pos.line)))
                         .set("op", json::Value::of(trace::to_string(lr.line->op)));
    json::Value ja = json::Value::obj();
    for (const auto& a : lr.answers) ja.set(a.engine, json::Value::of(trace::to_string(a.outcome)));
    jl.set("results", std::move(ja)).set("agree", json::Value::of(lr.agree));
    if (lr.line->expect)
      jl.set("expected", json::Value::of(trace::to_string(*lr.line->expect))).set("held", json::Value::of(*lr.held));
    jlines.push(std::move(jl));
  };
  std::optional<state::StateDump> final_state;
  auto on_end = [&](const std::string&, const Engine& e) {
    if (!dump_path.empty() && !final_state) final_state = state::dump_engine(e);
  };

  int lines = 0, expectations = 0, held = 0, mismatched = 0, disagreements = 0;
  for (const auto& t : traces) {
    final_state.reset();
    auto report = trace::replay(t, engines, on_line, on_end);
    if (!report.ok()) {
      err << "ioas replay: " << t.file << ": " << report.error().message << "\n";
      return kExitUsage;
    }
    const trace::FileReport& r = report.value();
    lines += static_cast<int>(r.lines.size());
    disagreements += r.disagreements;
    if (rewrite) {
      std::vector<trace::Outcome> results;
      for (const auto& lr : r.lines) results.push_back(lr.answers[model_index].outcome);
      Status s = write_file(t.file, trace::rewrite(t, results));
      if (!s.ok()) {
        err << "ioas replay: " << s.error().message << "\n";
        return kExitUsage;
      }
      if (!as_json) out << t.file << ": rewrote " << r.lines.size() << " lines from the model\n";
    } else {
      expectations += r.expectations;
      held += r.held;
      mismatched += r.expectations - r.held;
    }
  }
  if (!dump_path.empty() && final_state) {
    Status s = write_file(dump_path, state::to_json_text(*final_state));
    if (!s.ok()) {
      err << "ioas replay: " << s.error().message << "\n";
      return kExitUsage;
    }
  }
  bool pass = mismatched == 0 && disagreements == 0;
  if (as_json) {
    out << json::write(json::Value::obj()
                           .set("engines", json::Value::of(names))
                           .set("lines", std::move(jlines))
                           .set("summary", json::Value::obj()
                                               .set("files", json::Value::of(static_cast<std::uint64_t>(traces.size())))
                                               .set("lines", json::Value::of(static_cast<std::uint64_t>(lines)))
                                               .set("expectations", json::Value::of(static_cast<std::uint64_t>(expectations)))
                                               .set("held", json::Value::of(static_cast<std::uint64_t>(held)))
                                               .set("failed", json::Value::of(static_cast<std::uint64_t>(mismatched)))
                                               .set("disagreements", json::Value::of(static_cast<std::uint64_t>(disagreements)))
                                               .set("pass", json::Value::of(pass))))
        << "\n";
    return pass ? kExitOk : kExitFailed;
  }
  out << "summary: " << traces.size() << " file(s), " << lines << " line(s), " << expectations
      << " expectation(s): " << held << " held, " << mismatched << " failed; " << disagreements
      << " disagreement(s) between engines => " << (pass ? "PASS" : "FAIL") << "\n";
  return pass ? kExitOk : kExitFailed;
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err,
        const trace::EngineRegistry& registry) {
  if (args.empty()) {
    main_help(err);
    return kExitUsage;
  }
  const std::string& cmd = args[0];
  // The trace `check` operation runs the Z3 invariant checker after each
  // engine's own check (differential/replay.hpp's hook).
  trace::set_state_checker([](const Engine& e) { return checker::check_engine(e); });
  if (cmd == "-h" || cmd == "--help" || cmd == "help") {
    main_help(out);
    return kExitOk;
  }
  const std::vector<std::string> rest(args.begin() + 1, args.end());
  if (cmd == "replay") return replay_command(rest, out, err, registry);
  if (cmd == "check") return check_command(rest, out, err, registry);
  if (cmd == "ranges") return ranges_command(rest, out, err, "/sys");
  if (cmd == "show") return show_command(rest, out, err, registry);
  err << "ioas: unknown command '" << cmd << "' (see ioas --help)\n";
  return kExitUsage;
}

}  // namespace ioas::cli
