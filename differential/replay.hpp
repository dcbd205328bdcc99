// differential/replay.hpp: runs parsed traces on one or more ioas::Engines.
//
// The trace-level semantics of TRACE.md live here, once, for every engine:
// the current-IOAS selection (`ioas NAME [options]`, with `default` created
// and current at the start), `mem`'s pa defaulting to va, `unmap all` as
// unmap(ioas, 0, 2^64-1), and turning each engine answer into an Outcome.
// Defaults of attach (format, aperture, page sizes) are the engine's: the
// replayer passes AttachArgs' optional fields through unset.
//
// Every line runs on every engine, in order, each engine from its own empty
// state. A line passes when all engines give the same Outcome and, if the
// line has an expectation, that Outcome equals it by value.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ioas/engine.hpp"
#include "trace.hpp"

namespace ioas::trace {

// A named way to make a fresh engine. make() may return nullptr (an engine
// that cannot be made here, such as the kernel engine without an iommufd);
// the replayer reports that as an error.
struct EngineFactory {
  std::string name;
  std::function<std::unique_ptr<Engine>()> make;
  // Chosen only when named (the kernel engine: it needs an iommufd and runs
  // only traces that create `default` in kernel mode), never by default.
  bool by_name_only = false;
};

// The engines a replay can choose from, by name.
// Invariant: names are unique.
class EngineRegistry {
 public:
  // "model" and "impl".
  static EngineRegistry builtin();

  void add(EngineFactory f);
  // The engines built in this binary, in registration order.
  const std::vector<EngineFactory>& built() const { return built_; }
  // "model", "impl", "both" (model and impl), or a comma-separated list of
  // engine names ("model,impl,kernel"); "" means every built engine that is
  // not by_name_only. EINVAL for a name this registry does not hold.
  Result<std::vector<EngineFactory>> select(std::string_view which) const;

 private:
  std::vector<EngineFactory> built_;
};

// One engine's answer to one line. `note` is the error message or the check
// details, for people; only `outcome` is compared.
struct EngineAnswer {
  std::string engine;
  Outcome outcome;
  std::string note;
};

// The result of one line. Invariants: answers has one entry per engine, in
// the order the engines were given; agree is true iff all their outcomes are
// equal; held is set iff the line has an expectation, and then is true iff
// agree and the (common) outcome equals it.
struct LineReport {
  const Line* line = nullptr;
  std::vector<EngineAnswer> answers;
  bool agree = true;
  std::optional<bool> held;
  bool failed() const { return !agree || (held && !*held); }
};

struct FileReport {
  std::string file;
  std::vector<LineReport> lines;
  int expectations = 0;  // lines with `=> ...`
  int held = 0;          // of which held
  int mismatched = 0;    // expectations that did not hold (engines agreeing)
  int disagreements = 0; // lines where engines gave different outcomes
  bool ok() const { return mismatched == 0 && disagreements == 0; }
};

// Runs one line on one engine; `current` is the engine's current IOAS name
// and is updated by `ioas` lines. Exposed for tests and other drivers (the
// property tests replay their shrunk counterexamples through it).
EngineAnswer execute(Engine& engine, std::string& current, const Operation& op);

// Runs a whole trace on fresh engines made by `engines`. Calls on_line after
// each line (for live output) and on_end with each engine's final state
// (for `ioas check` and `--dump-state`). Errors: EINVAL when `engines` is
// empty, EIO when a factory returns nullptr or creating the `default` IOAS
// fails.
Result<FileReport> replay(const Trace& trace, const std::vector<EngineFactory>& engines,
                          const std::function<void(const LineReport&)>& on_line = {},
                          const std::function<void(const std::string& engine, const Engine&)>& on_end = {});

// An independent invariant checker that the `check` operation runs after
// Engine::check(); its violations join the engine's own. The CLI installs
// the Z3 checker of proofs/ (so model/ and impl/ never depend on it); empty
// (the default) runs none. Set it before replaying; not thread-safe.
using StateChecker = std::function<std::vector<Violation>(const Engine&)>;
void set_state_checker(StateChecker checker);

// The trace's text with every expectation replaced by `results[i]` for
// lines[i] (comments, blank lines and the text before `=>` kept as they were;
// successful `ioas` and `mem` lines left bare). results.size() must equal
// trace.lines.size().
std::string rewrite(const Trace& trace, const std::vector<Outcome>& results);

}  // namespace ioas::trace
