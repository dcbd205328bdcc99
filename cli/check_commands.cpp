// `ioas check` and `ioas ranges`.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "checker.hpp"
#include "checker_process.hpp"
#include "cli.hpp"
#include "commands.hpp"
#include "ioas/core/json.hpp"
#include "ioas/core/reserved_regions.hpp"
#include "ioas/core/state.hpp"

namespace ioas::cli {
namespace {

using json::Value;

Value range_json(const Range& r) {
  return Value::obj().set("start", Value::of(hex(r.start))).set("last", Value::of(hex(r.last)));
}

Value violation_json(const Violation& v) {
  Value o = Value::obj()
                .set("invariant", Value::of(to_string(v.invariant)))
                .set("ioas", Value::of(v.ioas))
                .set("detail", Value::of(v.detail));
  o.set("witness", v.witness ? Value::of(hex(*v.witness)) : Value::null());
  return o;
}

std::string violation_text(const Violation& v) {
  std::string s = std::string(to_string(v.invariant)) + (v.ioas.empty() ? "" : " in " + v.ioas) + ": " + v.detail;
  if (v.witness) s += " (witness IOVA " + hex(*v.witness) + ")";
  return s;
}

bool looks_like_state(const std::string& path, const std::string& text) {
  if (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0) return true;
  auto i = text.find_first_not_of(" \t\r\n");
  return i != std::string::npos && text[i] == '{';
}

}  // namespace

Result<std::string> read_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return make_error(EISDIR, path + ": is a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(ENOENT, path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) return make_error(EIO, path + ": read failed");
  return ss.str();
}

namespace {

struct Input {
  std::string path;
  bool is_state = false;
  state::StateDump dump;
  trace::Trace trace;
};

// Reads and parses every file first, so bad input stops before any checking:
// false after the message is written to err.
bool read_inputs(const std::vector<std::string>& files, std::vector<Input>& inputs, std::ostream& err) {
  for (const auto& f : files) {
    auto text = read_file(f);
    if (!text.ok()) {
      err << "ioas check: " << text.error().message << "\n";
      return false;
    }
    Input in{f, looks_like_state(f, *text), {}, {}};
    if (in.is_state) {
      auto d = state::from_json_text(*text, f);
      if (!d.ok()) {
        err << "malformed state file: " << d.error().message << "\n";
        return false;
      }
      in.dump = std::move(d).value();
    } else {
      auto t = trace::parse_trace(*text, f);
      if (!t.ok()) {
        err << "malformed trace: " << t.error().message << "\n";
        return false;
      }
      in.trace = std::move(t).value();
    }
    inputs.push_back(std::move(in));
  }
  return true;
}

// Checks a state file: its violations into jv (and out, unless as_json), its
// clause count into jf. True when nothing is violated.
bool check_state_input(const Input& in, bool as_json, std::ostream& out, Value& jf, Value& jv) {
  checker::Report rep = check_state_in_child(in.dump);
  for (const auto& v : rep.violations) {
    if (!as_json) out << in.path << ": violated " << violation_text(v) << "\n";
    jv.push(violation_json(v));
  }
  const bool ok = rep.violations.empty();
  if (!as_json)
    out << in.path << ": " << in.dump.ioases.size() << " IOAS(es), " << rep.clauses << " tracked clauses, "
        << rep.solver_calls << " Z3 call(s) => " << (ok ? "ok" : "VIOLATED") << "\n";
  jf.set("clauses", Value::of(static_cast<std::uint64_t>(rep.clauses)));
  return ok;
}

// Replays a trace on the engines, checks each engine's final state, and
// reports violations, failed expectations and disagreements as
// check_state_input does. An error when the replay itself could not run.
Result<bool> check_trace_input(const Input& in, const std::vector<trace::EngineFactory>& engines, bool as_json,
                               std::ostream& out, Value& jf, Value& jv) {
  bool ok = true;
  int failed_lines = 0;
  auto on_line = [&](const trace::LineReport& lr) {
    const trace::Line& l = *lr.line;
    const std::string where = l.pos.file + ":" + std::to_string(l.pos.line);
    for (const auto& a : lr.answers) {
      if (a.outcome.kind != trace::OutcomeKind::kViolated) continue;
      ok = false;
      if (!as_json) out << where << ": check on " << a.engine << ": violated " << a.note << "\n";
      jv.push(Value::obj()
                  .set("line", Value::of(static_cast<std::uint64_t>(l.pos.line)))
                  .set("engine", Value::of(a.engine))
                  .set("violated", Value::of(trace::to_string(a.outcome)))
                  .set("detail", Value::of(a.note)));
    }
    if (lr.failed()) {
      ++failed_lines;
      if (!as_json) out << where << ": " << (lr.agree ? "MISMATCH" : "DISAGREE") << " at `" << l.text << "`\n";
    }
  };
  auto on_end = [&](const std::string& eng, const Engine& e) {
    checker::Report rep = check_state_in_child(state::dump_engine(e));
    for (const auto& v : rep.violations) {
      ok = false;
      if (!as_json) out << in.path << ": final state on " << eng << ": violated " << violation_text(v) << "\n";
      Value jvv = violation_json(v);
      jvv.set("engine", Value::of(eng)).set("line", Value::of("end"));
      jv.push(std::move(jvv));
    }
  };
  auto report = trace::replay(in.trace, engines, on_line, on_end);
  if (!report.ok()) return report.error();
  if (failed_lines) ok = false;
  jf.set("failed_lines", Value::of(static_cast<std::uint64_t>(failed_lines)));
  if (!as_json)
    out << in.path << ": " << report->lines.size() << " line(s) replayed, " << failed_lines
        << " failed expectation(s)/disagreement(s), final states checked => " << (ok ? "ok" : "VIOLATED") << "\n";
  return ok;
}

}  // namespace

int check_files(const CommandLine& cl, std::ostream& out, std::ostream& err,
                const trace::EngineRegistry& registry) {
  const bool as_json = cl.json;
  if (cl.files.empty()) {
    err << "ioas check: no file given (usage: ioas check [--json] FILE.trace|STATE.json...)\n";
    return kExitUsage;
  }
  std::vector<Input> inputs;
  if (!read_inputs(cl.files, inputs, err)) return kExitUsage;
  auto selected = registry.select(cl.engine);
  if (!selected.ok()) {
    err << "ioas check: " << selected.error().message << "\n";
    return kExitUsage;
  }

  bool all_ok = true;
  Value jfiles = Value::arr();
  for (auto& in : inputs) {
    Value jf = Value::obj().set("file", Value::of(in.path)).set("kind", Value::of(in.is_state ? "state" : "trace"));
    Value jv = Value::arr();
    bool ok = true;
    if (in.is_state) {
      ok = check_state_input(in, as_json, out, jf, jv);
    } else {
      auto r = check_trace_input(in, *selected, as_json, out, jf, jv);
      if (!r.ok()) {
        err << "ioas check: " << in.path << ": " << r.error().message << "\n";
        return kExitUsage;
      }
      ok = *r;
    }
    jf.set("ok", Value::of(ok)).set("violations", std::move(jv));
    jfiles.push(std::move(jf));
    all_ok = all_ok && ok;
  }
  if (as_json) out << json::write(Value::obj().set("ok", Value::of(all_ok)).set("files", std::move(jfiles))) << "\n";
  return all_ok ? kExitOk : kExitFailed;
}

int valid_ranges(const CommandLine& cl, std::ostream& out, std::ostream& err, const std::string& sysfs_root) {
  const bool as_json = cl.json;
  Range aperture = Range::all();
  if (cl.aperture_given) {
    auto r = parse_range(cl.aperture);
    if (!r.ok() || !r->valid()) {
      err << "ioas ranges: --aperture '" << cl.aperture << "': "
          << (r.ok() ? "start is above last" : r.error().message) << "\n";
      return kExitUsage;
    }
    aperture = *r;
  }
  std::vector<std::string> files = cl.files;
  if (files.empty()) {
    const std::filesystem::path groups = std::filesystem::path(sysfs_root) / "kernel/iommu_groups";
    std::error_code ec;
    for (auto it = std::filesystem::directory_iterator(groups, ec); !ec && it != std::filesystem::directory_iterator();
         it.increment(ec)) {
      auto f = it->path() / "reserved_regions";
      if (std::filesystem::exists(f, ec)) files.push_back(f.string());
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      err << "ioas ranges: no IOMMU groups found under " << groups.string()
          << " (no IOMMU, or not Linux); give reserved_regions files on the command line\n";
      return kExitUsage;
    }
  }
  std::vector<resv::RegionLine> regions;
  for (const auto& f : files) {
    auto text = read_file(f);
    if (!text.ok()) {
      err << "ioas ranges: " << text.error().message << "\n";
      return kExitUsage;
    }
    auto r = resv::parse_reserved_regions(*text, f);
    if (!r.ok()) {
      err << "malformed reserved_regions: " << r.error().message << "\n";
      return kExitUsage;
    }
    regions.insert(regions.end(), r->begin(), r->end());
  }
  std::vector<ResvRegion> plain;
  for (const auto& r : regions) plain.push_back(r.region);
  const std::vector<Range> vfio = resv::vfio_valid_ranges(aperture, plain);
  const std::vector<Range> iommufd = resv::iommufd_valid_ranges(aperture, plain);
  if (vfio != iommufd) {  // both are proved equal to the set difference; a difference is our bug
    err << "ioas ranges: internal error: VFIO's list " << to_string(vfio) << " differs from iommufd's "
        << to_string(iommufd) << "\n";
    return kExitUsage;
  }
  if (as_json) {
    Value jr = Value::arr();
    for (const auto& r : regions)
      jr.push(Value::obj()
                  .set("file", Value::of(r.file))
                  .set("line", Value::of(static_cast<std::uint64_t>(r.line)))
                  .set("start", Value::of(hex(r.region.range.start)))
                  .set("last", Value::of(hex(r.region.range.last)))
                  .set("type", Value::of(to_string(r.region.type)))
                  .set("excluded", Value::of(r.region.type != ResvType::kDirectRelaxable)));
    Value jv = Value::arr();
    for (const auto& r : vfio) jv.push(range_json(r));
    out << json::write(Value::obj()
                           .set("aperture", range_json(aperture))
                           .set("regions", std::move(jr))
                           .set("ranges", std::move(jv)))
        << "\n";
  } else {
    out << "aperture " << to_string(aperture) << "\n";
    for (const auto& r : regions)
      out << "region " << to_string(r.region.range) << " " << to_string(r.region.type)
          << (r.region.type == ResvType::kDirectRelaxable ? " (not excluded)" : "") << "   " << r.file << ":"
          << r.line << "\n";
    if (vfio.empty()) out << "valid: none\n";
    for (const auto& r : vfio) out << "valid " << to_string(r) << "\n";
  }
  if (vfio.empty()) {
    err << "ioas ranges: no valid IOVA remains; VFIO would refuse the attach (EINVAL)\n";
    return kExitFailed;
  }
  return kExitOk;
}

}  // namespace ioas::cli
