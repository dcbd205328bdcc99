// The trace replayer: TRACE.md's trace-level semantics on top of ioas::Engine.
#include "replay.hpp"

#include <algorithm>
#include <cerrno>

#include "ioas/impl.hpp"
#include "ioas/rules.hpp"

namespace ioas::trace {
namespace {

// Every engine name the project defines; "both" means the first two.
constexpr const char* kModel = "model";
constexpr const char* kImpl = "impl";

EngineAnswer answer_of(const Status& s) {
  if (s.ok()) return EngineAnswer{{}, Outcome::ok(), {}};
  return EngineAnswer{{}, Outcome::err(s.code()), s.error().message};
}

template <typename T>
EngineAnswer answer_of(const Result<T>& r, OutcomeKind kind) {
  if (!r.ok()) return EngineAnswer{{}, Outcome::err(r.code()), r.error().message};
  return EngineAnswer{{}, Outcome::with_value(kind, static_cast<u64>(r.value())), {}};
}

std::string describe(const IoasOptions& o) {
  return std::string("mode=") + to_string(o.mode) + " zero-page=" + (o.zero_page == ZeroPage::kReserved ? "reserved" : "allowed") +
         " huge-pages=" + (o.huge_pages ? "on" : "off");
}

// `ioas NAME [options]`: select NAME, creating it when missing. Options only
// apply at creation; one that differs from an existing IOAS's own is EINVAL
// (TRACE.md), so a trace cannot silently run with options it did not get.
EngineAnswer select_ioas(Engine& e, std::string& current, const IoasOp& o) {
  auto existing = e.ioas_options(o.name);
  if (existing.ok()) {
    const IoasOptions& have = existing.value();
    bool differs = (o.mode && *o.mode != have.mode) || (o.zero_page && *o.zero_page != have.zero_page) ||
                   (o.huge_pages && *o.huge_pages != have.huge_pages);
    if (differs)
      return EngineAnswer{{}, Outcome::err(EINVAL),
                          "ioas " + o.name + " exists with " + describe(have) +
                              "; options apply only when an IOAS is created"};
    current = o.name;
    return EngineAnswer{{}, Outcome::ok(), {}};
  }
  if (existing.code() != ENOENT) return EngineAnswer{{}, Outcome::err(existing.code()), existing.error().message};
  IoasOptions opts;
  if (o.mode) opts.mode = *o.mode;
  // Kernel mode's zero page is the kernel's (ModeRules::forced_zero_page):
  // asking for another is a wrong value, refused as the option it is.
  const auto forced = rules_for(opts.mode).forced_zero_page;
  if (o.zero_page && forced && *o.zero_page != *forced)
    return EngineAnswer{{}, Outcome::err(EINVAL),
                        "ioas " + o.name + ": mode=" + to_string(opts.mode) + " has the kernel's zero page (allowed)"};
  if (o.zero_page) opts.zero_page = *o.zero_page;
  if (o.huge_pages) opts.huge_pages = *o.huge_pages;
  Status s = e.create_ioas(o.name, opts);
  if (s.ok()) current = o.name;
  return answer_of(s);
}

StateChecker& state_checker() {
  static StateChecker checker;
  return checker;
}

struct Executor {
  Engine& e;
  std::string& current;

  EngineAnswer operator()(const IoasOp& o) { return select_ioas(e, current, o); }
  EngineAnswer operator()(const MemOp& o) {
    return answer_of(e.add_memory(MemorySource{o.name, o.va, o.len, o.pa.value_or(o.va), !o.ro}));
  }
  EngineAnswer operator()(const UnmemOp& o) { return answer_of(e.remove_memory(o.name)); }
  EngineAnswer operator()(const MapOp& o) {
    auto r = e.map(current, MapArgs{o.iova, o.len, o.src, o.offset, o.prot});
    if (r.ok() && o.iova) return EngineAnswer{{}, Outcome::ok(), {}};
    return answer_of(r, OutcomeKind::kIova);
  }
  EngineAnswer operator()(const UnmapOp& o) {
    if (o.all) return answer_of(e.unmap_all(current), OutcomeKind::kUnmapped);
    return answer_of(e.unmap(current, o.iova, o.len), OutcomeKind::kUnmapped);
  }
  EngineAnswer operator()(const CutOp& o) { return answer_of(e.cut(current, o.iova)); }
  EngineAnswer operator()(const ReserveOp& o) { return answer_of(e.reserve(current, o.range, o.owner)); }
  EngineAnswer operator()(const UnreserveOp& o) { return answer_of(e.unreserve(current, o.owner)); }
  EngineAnswer operator()(const AllowOp& o) { return answer_of(e.allow(current, o.ranges)); }
  EngineAnswer operator()(const RangesOp&) {
    auto r = e.ranges(current);
    if (!r.ok()) return EngineAnswer{{}, Outcome::err(r.code()), r.error().message};
    Outcome out{OutcomeKind::kRanges, 0, r->alignment, Prot::kNone, r->ranges, {}};
    return EngineAnswer{{}, std::move(out), {}};
  }
  EngineAnswer operator()(const AttachOp& o) {
    return answer_of(e.attach(current, AttachArgs{o.dev, o.dom, o.fmt, o.aperture,
                                                  o.pgsize_bitmap, o.resv, o.pgsizes_not_pow2}));
  }
  EngineAnswer operator()(const DetachOp& o) { return answer_of(e.detach(o.dev)); }
  EngineAnswer operator()(const PinOp& o) {
    return answer_of(e.pin(current, PinArgs{o.iova, o.len, o.write, o.release}), OutcomeKind::kPin);
  }
  EngineAnswer operator()(const UnpinOp& o) { return answer_of(e.unpin(current, o.id)); }
  EngineAnswer operator()(const CopyOp& o) {
    auto r = e.copy(current, CopyArgs{o.from, o.iova, o.len, o.to, o.prot});
    if (r.ok() && o.to) return EngineAnswer{{}, Outcome::ok(), {}};
    return answer_of(r, OutcomeKind::kIova);
  }
  EngineAnswer operator()(const TranslateOp& o) {
    auto r = e.translate(o.dom, o.iova);
    if (!r.ok()) return EngineAnswer{{}, Outcome::err(r.code()), r.error().message};
    if (!r.value()) return EngineAnswer{{}, Outcome{OutcomeKind::kFault, 0, 0, Prot::kNone, {}, {}}, {}};
    Outcome out = Outcome::with_value(OutcomeKind::kPa, r.value()->pa);
    out.prot = r.value()->prot;
    return EngineAnswer{{}, std::move(out), {}};
  }
  EngineAnswer operator()(const DmaOp& o) {
    auto r = e.dma(o.dom, o.dir, o.iova, o.len);
    if (!r.ok()) return EngineAnswer{{}, Outcome::err(r.code()), r.error().message};
    if (!r->faulted) return EngineAnswer{{}, Outcome::ok(), {}};
    return EngineAnswer{{}, Outcome::with_value(OutcomeKind::kFaultAt, r->fault_iova), {}};
  }
  EngineAnswer operator()(const DirtyOp& o) { return answer_of(e.set_dirty_tracking(o.dom, o.mode)); }
  EngineAnswer operator()(const ReadDirtyOp& o) {
    auto r = e.read_dirty(o.dom, o.iova, o.len, o.pgsize, o.keep);
    if (!r.ok()) return EngineAnswer{{}, Outcome::err(r.code()), r.error().message};
    return EngineAnswer{{}, Outcome{OutcomeKind::kDirty, 0, 0, Prot::kNone, r.value(), {}}, {}};
  }
  EngineAnswer operator()(const UvaOp& o) { return answer_of(e.uva(current, o.iova), OutcomeKind::kVa); }
  EngineAnswer operator()(const CheckOp&) {
    std::vector<Violation> v = e.check();
    if (state_checker()) {
      std::vector<Violation> more = state_checker()(e);
      v.insert(v.end(), more.begin(), more.end());
    }
    if (v.empty()) return EngineAnswer{{}, Outcome::ok(), {}};
    Outcome out{OutcomeKind::kViolated, 0, 0, Prot::kNone, {}, {}};
    std::string note;
    for (const auto& x : v) {
      out.violated.push_back(x.invariant);
      if (!note.empty()) note += "; ";
      note += std::string(to_string(x.invariant)) + (x.ioas.empty() ? "" : " in " + x.ioas) +
              ": " + x.detail;
      if (x.witness) note += " (at " + hex(*x.witness) + ")";
    }
    // SPEC's order, each name once: the canonical `violated` result.
    std::sort(out.violated.begin(), out.violated.end());
    out.violated.erase(std::unique(out.violated.begin(), out.violated.end()), out.violated.end());
    return EngineAnswer{{}, std::move(out), std::move(note)};
  }
};

std::string rtrim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

}  // namespace

void set_state_checker(StateChecker checker) { state_checker() = std::move(checker); }

EngineRegistry EngineRegistry::builtin() {
  EngineRegistry r;
  r.add(EngineFactory{kModel, [] { return make_model_engine(); }});
  r.add(EngineFactory{kImpl, [] { return make_impl_engine(); }});
  return r;
}

void EngineRegistry::add(EngineFactory f) {
  for (auto& b : built_) {
    if (b.name == f.name) {
      b = std::move(f);
      return;
    }
  }
  built_.push_back(std::move(f));
}

Result<std::vector<EngineFactory>> EngineRegistry::select(std::string_view which) const {
  if (which.empty()) {
    std::vector<EngineFactory> out;
    for (const auto& f : built_)
      if (!f.by_name_only) out.push_back(f);
    if (out.empty()) return make_error(ENOENT, "no engine is built");
    return out;
  }
  std::vector<std::string_view> names;
  if (which == "both") {
    names = {kModel, kImpl};
  } else {
    for (std::size_t from = 0;;) {
      const std::size_t comma = which.find(',', from);
      names.push_back(which.substr(from, comma == std::string_view::npos ? std::string_view::npos : comma - from));
      if (comma == std::string_view::npos) break;
      from = comma + 1;
    }
  }
  std::vector<EngineFactory> out;
  for (auto name : names) {
    auto it = std::find_if(built_.begin(), built_.end(),
                           [&](const EngineFactory& f) { return f.name == name; });
    if (it != built_.end()) {
      out.push_back(*it);
      continue;
    }
    return make_error(EINVAL, "unknown engine '" + std::string(name) +
                                  "' (choose " + [&] {
                                    std::string all;
                                    for (const auto& f : built_) all += f.name + ", ";
                                    return all;
                                  }() + "both, or a comma-separated list)");
  }
  return out;
}

EngineAnswer execute(Engine& engine, std::string& current, const Operation& op) {
  EngineAnswer a = std::visit(Executor{engine, current}, op);
  a.engine = engine.kind();
  return a;
}

Result<FileReport> replay(const Trace& trace, const std::vector<EngineFactory>& engines,
                          const std::function<void(const LineReport&)>& on_line,
                          const std::function<void(const std::string&, const Engine&)>& on_end) {
  if (engines.empty()) return make_error(EINVAL, "replay: no engine to run");
  struct Running {
    std::string name;
    std::unique_ptr<Engine> engine;
    std::string current;
  };
  std::vector<Running> run;
  // TRACE.md: an IOAS named `default` exists from the start and is current;
  // a first line `ioas default OPTIONS` creates it with those options instead
  // (so a trace can run on an engine that has kernel mode only).
  const bool first_creates_default = !trace.lines.empty() && [&] {
    const auto* o = std::get_if<IoasOp>(&trace.lines.front().op);
    return o && o->name == "default" && (o->mode || o->zero_page || o->huge_pages);
  }();
  for (const auto& f : engines) {
    std::unique_ptr<Engine> e = f.make ? f.make() : nullptr;
    if (!e) return make_error(EIO, "engine " + f.name + " could not be created (its factory returned no engine)");
    if (!first_creates_default) {
      Status s = e->create_ioas("default", IoasOptions{});
      if (!s.ok())
        return make_error(EIO, "engine " + f.name + ": creating the default IOAS failed: " + to_string(s.error()) +
                                   (s.code() == ENOSYS ? " (begin the trace with `ioas default mode=kernel`)" : ""));
    }
    run.push_back(Running{f.name, std::move(e), "default"});
  }

  FileReport report;
  report.file = trace.file;
  report.lines.reserve(trace.lines.size());
  for (const Line& line : trace.lines) {
    LineReport lr;
    lr.line = &line;
    for (auto& r : run) {
      EngineAnswer a = execute(*r.engine, r.current, line.op);
      a.engine = r.name;
      lr.answers.push_back(std::move(a));
    }
    for (const auto& a : lr.answers)
      if (!(a.outcome == lr.answers[0].outcome)) lr.agree = false;
    if (line.expect) {
      lr.held = lr.agree && lr.answers[0].outcome == *line.expect;
      ++report.expectations;
      if (*lr.held) ++report.held;
      else if (lr.agree) ++report.mismatched;
    }
    if (!lr.agree) ++report.disagreements;
    report.lines.push_back(std::move(lr));
    if (on_line) on_line(report.lines.back());
  }
  if (on_end)
    for (const auto& r : run) on_end(r.name, *r.engine);
  return report;
}

std::string rewrite(const Trace& trace, const std::vector<Outcome>& results) {
  std::vector<std::string> out = trace.raw;
  for (std::size_t i = 0; i < trace.lines.size() && i < results.size(); ++i) {
    const Line& l = trace.lines[i];
    std::string before = l.arrow == std::string::npos ? l.text : l.text.substr(0, l.arrow);
    bool bare = results[i].kind == OutcomeKind::kOk &&
                (std::holds_alternative<IoasOp>(l.op) || std::holds_alternative<MemOp>(l.op));
    std::string& dst = out[static_cast<std::size_t>(l.pos.line - 1)];
    if (bare) {
      dst = rtrim(before);
    } else if (l.arrow != std::string::npos) {
      dst = before + "=> " + to_string(results[i]);  // keeps the author's alignment
    } else {
      dst = rtrim(before) + " => " + to_string(results[i]);
    }
  }
  std::string text;
  for (std::size_t i = 0; i < out.size(); ++i) {
    text += out[i];
    if (i + 1 < out.size() || trace.final_newline) text += '\n';
  }
  return text;
}

}  // namespace ioas::trace
