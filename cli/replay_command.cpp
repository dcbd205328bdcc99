// `ioas replay`: runs .trace files on the engines and prints every line's result.
//
// Every file is parsed before anything runs, so a malformed line anywhere
// stops the replay before any engine has been touched (TRACE.md: "nothing is
// guessed"). Then each file runs from an empty state on every selected engine.
#include <cerrno>
#include <cstdio>
#include <fstream>
#include <new>
#include <optional>

#include "checker_process.hpp"
#include "cli.hpp"
#include "commands.hpp"
#include "ioas/core/json.hpp"
#include "ioas/core/state.hpp"

namespace ioas::cli {
namespace {

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

// The usage errors of replay: a message for err, or the selected engines
// and the index of the model among them (engines.size() when absent).
struct Selection {
  std::vector<trace::EngineFactory> engines;
  std::size_t model_index = 0;
};
Result<Selection> select_engines(const CommandLine& cl, const trace::EngineRegistry& registry) {
  if (cl.files.empty())
    return make_error(EINVAL, "no trace file given (usage: ioas replay [--engine model|impl|both] "
                              "[--rewrite] FILE...)");
  if (cl.engine_given && cl.engine.empty()) return make_error(EINVAL, "--engine needs a value (model, impl or both)");
  if (cl.dump_state_given && cl.dump_state.empty()) return make_error(EINVAL, "--dump-state needs a file name");
  auto selected = registry.select(cl.engine);
  if (!selected.ok()) return selected.error();
  Selection sel{std::move(selected).value(), 0};
  sel.model_index = sel.engines.size();
  for (std::size_t i = 0; i < sel.engines.size(); ++i)
    if (sel.engines[i].name == "model") sel.model_index = i;
  if (cl.rewrite && sel.model_index == sel.engines.size())
    return make_error(EINVAL, "--rewrite fills expectations from the model; select it (--engine model or both)");
  return sel;
}

json::Value json_line(const trace::LineReport& lr) {
  json::Value jl = json::Value::obj()
                       .set("file", json::Value::of(lr.line->pos.file))
                       .set("line", json::Value::of(static_cast<std::uint64_t>(lr.line->pos.line)))
                       .set("op", json::Value::of(trace::to_string(lr.line->op)));
  json::Value ja = json::Value::obj();
  for (const auto& a : lr.answers) ja.set(a.engine, json::Value::of(trace::to_string(a.outcome)));
  jl.set("results", std::move(ja)).set("agree", json::Value::of(lr.agree));
  if (lr.line->expect)
    jl.set("expected", json::Value::of(trace::to_string(*lr.line->expect))).set("held", json::Value::of(*lr.held));
  return jl;
}

// An engine that answered ENOMEM where no line expects it ran out of memory
// (an engine turns a failed allocation into that answer).
void throw_unexpected_enomem(const trace::FileReport& r) {
  for (const auto& lr : r.lines)
    for (const auto& a : lr.answers)
      if (a.outcome.kind == trace::OutcomeKind::kError && a.outcome.error == ENOMEM &&
          !(lr.line->expect && *lr.line->expect == a.outcome))
        throw OutOfMemory(lr.line->pos.file + ":" + std::to_string(lr.line->pos.line) + ": engine " + a.engine +
                          " answered ENOMEM");
}

struct Totals {
  std::size_t files = 0;
  int lines = 0, expectations = 0, held = 0, mismatched = 0, disagreements = 0;
  bool pass() const { return mismatched == 0 && disagreements == 0; }
};

int print_summary(const CommandLine& cl, std::ostream& out, const std::string& names, json::Value jlines,
                  const Totals& n) {
  auto num = [](auto v) { return json::Value::of(static_cast<std::uint64_t>(v)); };
  if (cl.json) {
    out << json::write(json::Value::obj()
                           .set("engines", json::Value::of(names))
                           .set("lines", std::move(jlines))
                           .set("summary", json::Value::obj()
                                               .set("files", num(n.files))
                                               .set("lines", num(n.lines))
                                               .set("expectations", num(n.expectations))
                                               .set("held", num(n.held))
                                               .set("failed", num(n.mismatched))
                                               .set("disagreements", num(n.disagreements))
                                               .set("pass", json::Value::of(n.pass()))))
        << "\n";
  } else {
    out << "summary: " << n.files << " file(s), " << n.lines << " line(s), " << n.expectations
        << " expectation(s): " << n.held << " held, " << n.mismatched << " failed; " << n.disagreements
        << " disagreement(s) between engines => " << (n.pass() ? "PASS" : "FAIL") << "\n";
  }
  return n.pass() ? kExitOk : kExitFailed;
}

}  // namespace

int replay_files(const CommandLine& cl, std::ostream& out, std::ostream& err,
                 const trace::EngineRegistry& registry) {
  auto sel = select_engines(cl, registry);
  if (!sel.ok()) {
    err << "ioas replay: " << sel.error().message << "\n";
    return kExitUsage;
  }
  const std::vector<trace::EngineFactory>& engines = sel->engines;

  // Parse everything first: a malformed line stops the replay before it starts.
  std::vector<trace::Trace> traces;
  for (const auto& f : cl.files) {
    auto t = trace::read_trace_file(f);
    if (!t.ok()) {
      err << (t.code() == EINVAL ? "malformed trace: " : "ioas replay: ") << t.error().message << "\n";
      return kExitUsage;
    }
    traces.push_back(std::move(t).value());
  }

  std::string names;
  for (const auto& e : engines) names += (names.empty() ? "" : ", ") + e.name;
  if (!cl.json) out << "engines: " << names << "\n";
  json::Value jlines = json::Value::arr();
  std::optional<state::StateDump> final_state;
  auto on_end = [&](const std::string&, const Engine& e) {
    if (!cl.dump_state.empty() && !final_state) final_state = state::dump_engine(e);
  };

  Totals n;
  n.files = traces.size();
  for (const auto& t : traces) {
    final_state.reset();
    int last_line = 0;  // the last line reported, to say where memory ran out
    auto on_line = [&](const trace::LineReport& lr) {
      last_line = lr.line->pos.line;
      if (cl.json)
        jlines.push(json_line(lr));
      else
        print_line(out, lr);
    };
    auto report = [&] {
      try {
        return trace::replay(t, engines, on_line, on_end);
      } catch (const std::bad_alloc&) {
        throw OutOfMemory("replaying " + t.file + (last_line ? " after line " + std::to_string(last_line) : ""));
      }
    }();
    if (!report.ok()) {
      err << "ioas replay: " << t.file << ": " << report.error().message << "\n";
      return kExitUsage;
    }
    const trace::FileReport& r = report.value();
    throw_unexpected_enomem(r);
    n.lines += static_cast<int>(r.lines.size());
    n.disagreements += r.disagreements;
    if (cl.rewrite) {
      std::vector<trace::Outcome> results;
      for (const auto& lr : r.lines) results.push_back(lr.answers[sel->model_index].outcome);
      Status s = write_file(t.file, trace::rewrite(t, results));
      if (!s.ok()) {
        err << "ioas replay: " << s.error().message << "\n";
        return kExitUsage;
      }
      if (!cl.json) out << t.file << ": rewrote " << r.lines.size() << " lines from the model\n";
    } else {
      n.expectations += r.expectations;
      n.held += r.held;
      n.mismatched += r.expectations - r.held;
    }
  }
  if (!cl.dump_state.empty() && final_state) {
    Status s = write_file(cl.dump_state, state::to_json_text(*final_state));
    if (!s.ok()) {
      err << "ioas replay: " << s.error().message << "\n";
      return kExitUsage;
    }
  }
  return print_summary(cl, out, names, std::move(jlines), n);
}

}  // namespace ioas::cli
