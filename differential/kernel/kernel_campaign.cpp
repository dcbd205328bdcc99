// The kernel campaign: see kernel_campaign.hpp.
#include "kernel_campaign.hpp"

#include <rapidcheck.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <ostream>
#include <sstream>

#include "ioas/impl.hpp"
#include "ioas/kernel_engine.hpp"
#include "lockstep.hpp"
#include "replay.hpp"

namespace ioas::kernel_campaign {

using trace::Operation;

namespace {

constexpr u64 kMaxKernelMem = u64{16} << 20;

IoasOptions kernel_options() {
  IoasOptions o;
  o.mode = IoasMode::kKernel;
  o.zero_page = ZeroPage::kAllowed;
  return o;
}

// The first line of every campaign trace: `default` in kernel mode.
Operation default_line() { return trace::IoasOp{"default", IoasMode::kKernel, std::nullopt, std::nullopt}; }

struct Subset {
  std::optional<Operation> operator()(trace::IoasOp o) const {
    o.mode = IoasMode::kKernel;
    if (o.zero_page == ZeroPage::kReserved) o.zero_page.reset();
    return o;
  }
  std::optional<Operation> operator()(trace::MemOp o) const {
    o.pa.reset();
    o.ro = false;
    o.len = std::min(o.len, kMaxKernelMem);
    return o;
  }
  std::optional<Operation> operator()(trace::AttachOp o) const {
    const bool huge = o.pgsize_bitmap && (*o.pgsize_bitmap & ~(kMockPage | k4K)) != 0;
    o.fmt = Format::kMock;
    o.aperture.reset();
    o.pgsize_bitmap = huge ? std::optional<u64>(kMockPage | kMockHugePage) : std::nullopt;
    o.resv.clear();
    o.pgsizes_not_pow2.clear();
    return o;
  }
  std::optional<Operation> operator()(trace::PinOp o) const {
    o.release = true;
    return o;
  }
  std::optional<Operation> operator()(const trace::CutOp&) const { return std::nullopt; }
  std::optional<Operation> operator()(const trace::UnreserveOp&) const { return std::nullopt; }
  std::optional<Operation> operator()(const trace::TranslateOp&) const { return std::nullopt; }
  std::optional<Operation> operator()(const trace::DmaOp&) const { return std::nullopt; }
  std::optional<Operation> operator()(const trace::DirtyOp&) const { return std::nullopt; }
  std::optional<Operation> operator()(const trace::ReadDirtyOp&) const { return std::nullopt; }
  std::optional<Operation> operator()(const trace::UvaOp&) const { return std::nullopt; }
  std::optional<Operation> operator()(const trace::CheckOp&) const { return std::nullopt; }
  template <typename T>
  std::optional<Operation> operator()(const T& o) const {
    return o;
  }
};

bool not_expressible(const trace::EngineAnswer& a) {
  return a.outcome.kind == trace::OutcomeKind::kError &&
         (a.outcome.error == kNotExpressible || a.outcome.error == kAddressUnavailable);
}

// The three columns, each from an empty state with `default` in kernel mode.
struct Columns {
  std::unique_ptr<Engine> model, impl, kernel;
  std::string cur_model = "default", cur_impl = "default", cur_kernel = "default";

  static Result<Columns> make(const KernelFactory& make_kernel) {
    Columns c;
    c.model = make_model_engine();
    c.impl = make_checked_engine();
    auto k = make_kernel();
    if (!k.ok()) return make_error(EIO, "the kernel engine: " + k.error().message);
    c.kernel = std::move(k).value();
    for (Engine* e : {c.model.get(), c.impl.get(), c.kernel.get()})
      if (Status s = e->create_ioas("default", kernel_options()); !s.ok())
        return make_error(EIO, std::string(e->kind()) + ": the kernel-mode default IOAS: " + to_string(s.error()));
    return c;
  }
};

struct StepResult {
  bool expressible = true;
  std::string refusal;       // the kernel engine's reason, when not expressible
  trace::Outcome outcome;    // the model's answer
  std::vector<trace::EngineAnswer> answers;  // model, impl, kernel
  std::string failure;       // "" when they agree
};

std::string show_answer(const trace::EngineAnswer& a) {
  return trace::to_string(a.outcome) + (a.note.empty() ? "" : "  -- " + a.note);
}

StepResult step(Columns& c, const Operation& op) {
  StepResult r;
  auto k = trace::execute(*c.kernel, c.cur_kernel, op);
  if (not_expressible(k)) {
    r.expressible = false;
    r.refusal = k.note;
    return r;
  }
  auto m = trace::execute(*c.model, c.cur_model, op);
  auto i = trace::execute(*c.impl, c.cur_impl, op);
  r.outcome = m.outcome;
  r.answers = {m, i, k};
  if (!(m.outcome == i.outcome) || !(m.outcome == k.outcome)) {
    r.failure = "`" + trace::to_string(op) + "`: model => " + show_answer(m) + "; impl => " + show_answer(i) +
                "; kernel => " + show_answer(k);
    return r;
  }
  // Afterwards, every IOAS's ranges and alignment as the kernel reports them.
  for (const auto& name : c.model->ioas_names()) {
    auto rm = c.model->ranges(name), ri = c.impl->ranges(name), rk = c.kernel->ranges(name);
    auto show = [](const Result<IovaRanges>& x) {
      return x.ok() ? to_string(x->ranges) + " align " + hex(x->alignment) : std::string(errno_name(x.code()));
    };
    if (show(rm) != show(ri) || show(rm) != show(rk)) {
      r.failure = "after `" + trace::to_string(op) + "` => " + trace::to_string(m.outcome) + ", ranges of " + name +
                  ": model " + show(rm) + "; impl " + show(ri) + "; kernel " + show(rk);
      return r;
    }
  }
  return r;
}

// Differences between kernel mode and the iommufd that are known and
// reported, each with its shrunk trace in differential/kernel/differences/
// (differential/kernel-findings/ for what looks like a kernel bug).
// A step that shows one is counted under its name and not reported again;
// when every column failed (nothing changed anywhere) the trace goes on,
// otherwise their states may differ from there on and the trace ends.
struct KnownDifference {
  const char* name;
  bool (*matches)(const Operation& op, const StepResult& r);
};

bool is_error(const trace::EngineAnswer& a, int code) {
  return a.outcome.kind == trace::OutcomeKind::kError && a.outcome.error == code;
}

const KnownDifference kKnownDifferences[] = {
    // A kernel finding (differential/kernel-findings/): the kernel's
    // __alloc_iova_check_range refuses a candidate equal to the hole's last
    // byte (`aligned_start >= last`), so an automatic one-byte map never
    // takes a one-byte hole, or the last byte of a hole; the engines do.
    {"auto-one-byte-at-hole-end",
     [](const Operation& op, const StepResult& r) {
       bool one_byte_auto = false;
       if (const auto* m = std::get_if<trace::MapOp>(&op)) one_byte_auto = !m->iova && m->len == 1;
       if (const auto* c = std::get_if<trace::CopyOp>(&op)) one_byte_auto = !c->to && c->len == 1;
       return one_byte_auto && r.answers[0].outcome.kind == trace::OutcomeKind::kIova &&
              (r.answers[2].outcome.kind == trace::OutcomeKind::kIova || is_error(r.answers[2], ENOSPC)) &&
              !(r.answers[0].outcome == r.answers[2].outcome);
     }},
};

const KnownDifference* known_difference(const Operation& op, const StepResult& r) {
  if (r.answers.size() != 3) return nullptr;
  for (const auto& k : kKnownDifferences)
    if (k.matches(op, r)) return &k;
  return nullptr;
}

bool all_failed(const StepResult& r) {
  return std::all_of(r.answers.begin(), r.answers.end(),
                     [](const trace::EngineAnswer& a) { return a.outcome.kind == trace::OutcomeKind::kError; });
}

// Replays `ops` (without the default line) on fresh columns: the index of
// the first disagreeing operation, or -1; `last` gets that step's result.
Result<long> first_failure(const KernelFactory& make_kernel, const std::vector<Operation>& ops, StepResult* last) {
  auto c = Columns::make(make_kernel);
  if (!c.ok()) return c.error();
  for (std::size_t i = 0; i < ops.size(); ++i) {
    StepResult r = step(c.value(), ops[i]);
    if (r.failure.empty()) continue;
    if (known_difference(ops[i], r)) {
      if (all_failed(r)) continue;
      return -1L;
    }
    if (last) *last = std::move(r);
    return static_cast<long>(i);
  }
  return -1L;
}

// Delta debugging: drop chunks (halving their size) while a disagreement
// remains; the prefix up to the failure is all that is kept each time.
std::vector<Operation> shrink(const KernelFactory& make_kernel, std::vector<Operation> ops, int budget) {
  const std::string kind = trace::op_name(ops.back());
  for (std::size_t chunk = std::max<std::size_t>(ops.size() / 2, 1); chunk >= 1 && budget > 0;) {
    bool progress = false;
    for (std::size_t start = 0; start < ops.size() && budget > 0;) {
      std::vector<Operation> cand(ops.begin(), ops.begin() + static_cast<long>(start));
      cand.insert(cand.end(), ops.begin() + static_cast<long>(std::min(ops.size(), start + chunk)), ops.end());
      --budget;
      auto f = first_failure(make_kernel, cand, nullptr);
      if (f.ok() && *f >= 0 && trace::op_name(cand[static_cast<std::size_t>(*f)]) == kind) {
        cand.resize(static_cast<std::size_t>(*f) + 1);
        ops = std::move(cand);
        progress = true;
      } else {
        start += chunk;
      }
    }
    if (!progress) {
      if (chunk == 1) break;
      chunk /= 2;
    }
  }
  return ops;
}

std::string trace_text(const std::vector<Operation>& ops, const StepResult& last, std::uint64_t seed) {
  std::ostringstream out;
  out << "# Found by the kernel campaign (differential/kernel, seed " << seed
      << "), shrunk: the model, the engine\n"
         "# and an iommufd disagree at the last line. Expectations are the model's.\n";
  out << trace::format_line(default_line(), std::nullopt) << "\n";
  auto model = make_model_engine();
  (void)model->create_ioas("default", kernel_options());
  std::string cur = "default";
  for (std::size_t i = 0; i < ops.size(); ++i) {
    auto a = trace::execute(*model, cur, ops[i]);
    if (i + 1 == ops.size())
      for (const auto& ans : last.answers) out << "# " << ans.engine << ": " << show_answer(ans) << "\n";
    const bool bare = (std::holds_alternative<trace::IoasOp>(ops[i]) || std::holds_alternative<trace::MemOp>(ops[i])) &&
                      a.outcome.kind == trace::OutcomeKind::kOk;
    out << trace::format_line(ops[i], bare ? std::nullopt : std::optional<trace::Outcome>(a.outcome)) << "\n";
  }
  if (last.answers.empty()) out << "# " << last.failure << "\n";
  return out.str();
}

}  // namespace

std::optional<Operation> to_kernel_subset(const Operation& op) { return std::visit(Subset{}, op); }

Result<Report> run(const Config& cfg, std::ostream& progress) {
  Report rep;
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  rc::Random random(cfg.seed);
  for (std::uint64_t t = 0; t < cfg.cases; ++t) {
    if (cfg.max_ops && rep.compared >= cfg.max_ops) break;
    if (cfg.minutes > 0 && elapsed() > cfg.minutes * 60) break;
    auto cols = Columns::make(cfg.make_kernel);
    if (!cols.ok()) return cols.error();
    Columns& c = cols.value();
    // The generator reads the model's state; it is the model column itself.
    lockstep::SpecModel spec;
    std::vector<Operation> history;
    for (int i = 0; i < cfg.max_size; ++i) {
      spec.engine = c.model->clone();
      spec.current = c.cur_model;
      const Operation drawn = lockstep::gen_operation(spec)(random.split(), std::min(100, 10 + i * 3)).value();
      auto op = to_kernel_subset(drawn);
      if (!op) {
        ++rep.dropped["not in the subset: " + std::string(trace::op_name(drawn))];
        continue;
      }
      StepResult r = step(c, *op);
      if (!r.expressible) {
        ++rep.dropped["refused by the kernel engine: " + std::string(trace::op_name(*op))];
        continue;
      }
      history.push_back(*op);
      ++rep.compared;
      ++rep.coverage[lockstep::outcome_class(*op, r.outcome)];
      if (!r.failure.empty()) {
        if (const KnownDifference* k = known_difference(*op, r)) {
          ++rep.known[k->name];
          if (all_failed(r)) continue;
          break;
        }
        rep.failure = r.failure;
        // The columns hold the buffers at the trace's addresses: free them first.
        c.kernel.reset();
        c.impl.reset();
        auto small = shrink(cfg.make_kernel, history, 400);
        StepResult last;
        auto f = first_failure(cfg.make_kernel, small, &last);
        if (!f.ok() || *f < 0) {
          small = history;  // the disagreement did not come back on fresh engines: keep it all
          last = r;
        }
        rep.trace_text = trace_text(small, last, cfg.seed);
        std::error_code ec;
        std::filesystem::create_directories(cfg.out_dir, ec);
        const std::string path = cfg.out_dir + "/kernel-seed" + std::to_string(cfg.seed) + "-trace" +
                                 std::to_string(t) + ".trace";
        std::ofstream(path) << rep.trace_text;
        rep.trace_path = path;
        rep.traces = t + 1;
        return rep;
      }
      if (cfg.max_ops && rep.compared >= cfg.max_ops) break;
    }
    rep.traces = t + 1;
    if (cfg.progress && rep.traces % 10 == 0) {
      const double s = elapsed();
      progress << "traces " << rep.traces << "  ops compared " << rep.compared << "  ops/s "
               << static_cast<std::uint64_t>(rep.compared / std::max(s, 1e-9)) << "  elapsed " << static_cast<int>(s)
               << "s  seed " << cfg.seed << std::endl;
    }
  }
  return rep;
}

}  // namespace ioas::kernel_campaign
