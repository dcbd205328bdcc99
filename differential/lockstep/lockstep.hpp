// differential/lockstep: the model and an engine under test, side by side.
//
// The shape is Abseil's btree lockstep checker (every call goes to the real
// thing and to the reference, and their answers and states are compared) and
// ShardStore's reference-model testing: the alphabet is every operation of
// TRACE.md, arguments are biased toward what finds bugs (existing boundaries
// +-1, exact fits, 0, PAGE, the top of the space, overflowing lengths), and a
// failure comes out short (delta debugging over the recorded steps) and is
// kept forever as a .trace in differential/corpus/.
//
// Pieces:
//   - Rng and draw_operation(context, rng): one trace operation whose
//     arguments are drawn from a state's GenContext with a small
//     deterministic generator (no shrink tree per operation: a campaign
//     shrinks whole sequences itself); gen_operation(model) is the same as a
//     RapidCheck generator, for properties that are not the campaign;
//   - SpecModel: the executable spec's state as a value (a cloned model
//     engine plus the trace's current IOAS);
//   - lockstep_step(): runs one operation on both sides and returns what
//     differs (answer, or any part of the observable state), empty if none;
//     diff_states compares whole states, diff_focused the parts one
//     operation can have changed (focus_of);
//   - run_campaign(): generated sequences run on both engines in place
//     (focused comparisons after each step, whole ones on a sample and at
//     each sequence's end), with a fixed seed and case count, coverage
//     counting, the shrinker (replays from scratch with whole comparisons
//     after every step: cut after the failing step, drop chunks, then single
//     steps, then simpler arguments) and the counterexample writer.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ioas/engine.hpp"
#include "trace.hpp"

// gen_operation's type, declared only: rapidcheck.h is a large header, and
// most users of this one never call gen_operation (its callers include
// rapidcheck.h themselves).
namespace rc {
template <typename T>
class Gen;
}  // namespace rc

namespace ioas::lockstep {

// A small deterministic random generator (splitmix64): a campaign's
// operations depend on its seed and the states alone, so a sequence replays.
class Rng {
 public:
  explicit Rng(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next();
  // Uniform in [0, n) (0 when n is 0), and in [lo, hi).
  std::uint64_t below(std::uint64_t n);
  std::uint64_t range(std::uint64_t lo, std::uint64_t hi) { return lo + below(hi - lo); }
  // Any 64-bit value, small ones as often as large ones.
  std::uint64_t any();
  // An index into `weights`, drawn in proportion to them.
  std::size_t weighted(std::initializer_list<unsigned> weights);
  template <typename T>
  const T& pick(const std::vector<T>& xs) {
    return xs[below(xs.size())];
  }

 private:
  std::uint64_t state_;
};

// What the generator draws from: the names, boundaries, areas, domains and
// pins of a state. fill() reuses the vectors' memory from call to call.
struct GenContext {
  std::vector<u64> points;           // boundaries of areas, reserved, allowed
  std::vector<Range> areas;          // areas of every IOAS (current first)
  std::vector<Range> current_areas;  // areas of the current IOAS
  std::vector<std::string> ioases;
  std::vector<std::string> memories;
  std::vector<std::string> domains;  // of the current IOAS first, then others
  std::vector<std::string> devices;
  std::vector<std::string> tracking;  // domains of the current IOAS with dirty tracking on
  std::vector<std::uint32_t> pins;    // of the current IOAS
  // Adjacent page sizes {small, large} of the current IOAS's domains.
  std::vector<std::pair<u64, u64>> fits;
  bool kernel = false;  // the current IOAS is in kernel mode
  void fill(const Engine& e, const std::string& current);
};

// One trace operation whose arguments are biased by the state `c` describes.
trace::Operation draw_operation(const GenContext& c, Rng& r);

// The spec's state, copyable (copies clone the engine).
struct SpecModel {
  SpecModel();
  SpecModel(const SpecModel& o);
  SpecModel& operator=(const SpecModel& o);
  SpecModel(SpecModel&&) = default;
  SpecModel& operator=(SpecModel&&) = default;
  std::unique_ptr<Engine> engine;
  std::string current = "default";
};

// draw_operation on `m`'s state as a RapidCheck generator (the Rng's seed
// drawn by RapidCheck), for properties that are not the campaign.
rc::Gen<trace::Operation> gen_operation(const SpecModel& m);

// Everything observable of `spec` and `sut` compared: IOAS names, memory
// sources with use counts, each IOAS's snapshot (areas, reserved per owner,
// allowed, pins, domains, alignment) and ranges, translations and the
// userspace view at sampled bytes of every area and just outside it, dirty
// state of every tracking domain (read with keep), and both check()s empty
// (the engine's on a sample: set_sut_check_every).
// Returns "" when equal, else a description of the first difference.
std::string diff_states(Engine& spec, Engine& sut);

// The parts of the state one operation can have changed, for diff_focused:
// the IOASes whose snapshot and ranges are compared, and per IOAS (or per the
// IOAS that holds a domain) ranges whose areas get the per-area comparison;
// `whole` is diff_states.
struct Focus {
  struct Part {
    std::string ioas;  // this IOAS, when dom is empty
    std::string dom;   // else the IOAS that holds this domain
    Range range;       // areas overlapping it
  };
  bool whole = false;
  std::vector<Part> parts;
  // IOASes compared (snapshot, ranges) beside those a part names; every
  // IOAS when `every_ioas` (and whenever a part names a domain: which IOAS
  // holds it is not known before the snapshots are read).
  std::vector<std::string> ioases;
  bool every_ioas = false;
  // Whether the IOAS names (only an `ioas` step creates one) and the memory
  // sources with their use counts (only mem, unmem and the steps that add or
  // drop areas or pins: map, copy, unmap, cut, pin, unpin) are compared.
  bool names = false;
  bool memories = false;
  static Focus everything() { return Focus{true, {}, {}, true, true, true}; }
  // Whether IOAS `ioas`'s snapshot and ranges are compared.
  bool covers(const std::string& ioas) const;
  // The part of `area` (of IOAS `ioas`, state `s`) to compare: the hull of
  // the parts overlapping it, the whole area when `whole`; none if no part
  // overlaps it.
  std::optional<Range> clip(const std::string& ioas, const IoasState& s, const Range& area) const;
};

// What `op`, run on IOAS `ioas` (the current one before it ran) with the
// spec's answer `outcome`, can have changed. Always the snapshot and ranges
// of `ioas` (after a step that cannot have changed them too: that it did
// not is checked at once). Nothing more when the spec says it failed (SPEC:
// a failed operation changes nothing; but a kernel-mode unmap keeps the
// areas it removed before the one that stopped it) or when it only looks
// (ranges, translate, uva, check); else the IOAS an `ioas` line names, every
// IOAS after a detach or an operation on a domain, and the areas a map or
// copy placed, an unmap's or a pin's range, both sides of a cut, a DMA's or
// a dirty read's range, every area of an IOAS that a domain was attached to
// or whose domain's dirty tracking changed; the IOAS names after an `ioas`
// line, the memory sources after a step that adds or drops a source, an
// area or a pin.
Focus focus_of(const trace::Operation& op, const std::string& ioas, const trace::Outcome& outcome);

// diff_states narrowed: IOAS names and memory sources with use counts when
// the focus says the step can have changed them; the snapshot and ranges of the IOASes `focus` covers; the per-area
// part (translations and the userspace view at the sampled bytes, page-table
// leaves, dirty state) only on the areas `focus` covers; and no check() nor
// Z3 unless `focus.whole`. Every difference it reports diff_states reports
// too; one it misses lies where the operation cannot have acted (another
// IOAS, an area it did not touch, anything at all for an operation that
// failed), and the next diff_states finds it (unless a later step undoes it).
std::string diff_focused(Engine& spec, Engine& sut, const Focus& focus);

// diff_states also runs the Z3 invariant checker (proofs/) on both engines,
// once in every `n` calls (default 64; 0 turns it off); diff_focused never
// does. A Z3 check costs about as much as a thousand whole comparisons: the
// exhaustive test, with millions of steps, samples more sparsely.
void set_z3_check_every(std::uint64_t n);

// diff_states runs the spec's check() every time, and the engine under
// test's on one call in `n` (default 1: every one; 0 is taken as 1). The
// engine's check() is most of a whole comparison's cost after the leaf
// lists (sut.hpp: it verifies every tree and table); a campaign samples it.
// A `check` step of a trace runs both engines' check() whatever `n` is.
void set_sut_check_every(std::uint64_t n);

// Keeps freed heap blocks in the process: each whole comparison builds and
// drops leaf lists of megabytes, which glibc's defaults hand back to the
// kernel and fault in again on the next one (a campaign's peak is tens of
// megabytes). For a program that runs a campaign; ASan's allocator ignores it.
void keep_heap_blocks();

// Runs `op` on both sides (each with its own current IOAS), then compares the
// answers and the states: with diff_states (kWhole), or with diff_focused on
// focus_of(op) (kTouched). `failure` is "" when they agree.
struct StepResult {
  trace::Outcome outcome;  // the spec's answer
  std::string failure;
};
enum class Compare { kWhole, kTouched };
StepResult lockstep_step(Engine& spec, std::string& spec_current, Engine& sut,
                         std::string& sut_current, const trace::Operation& op, Compare how = Compare::kWhole);

// "map EINVAL", "translate fault", "unmap ok", ...: the path an operation
// took, for the coverage table.
std::string outcome_class(const trace::Operation& op, const trace::Outcome& o);

// The generator's biases that a campaign must reach, counted as
// "bias: ..." in the coverage table: a map that ends exactly one larger page
// after a boundary (small pages up to it, then one large page), per pair of
// neighbouring sizes in a domain's bitmap (4K/2M, 2M/1G, 4K/1G of x86-64 and
// arm-lpae, 2K/1M of a huge mock); and an automatic byte-granular map (IOVA
// alignment 1, odd user address) placed right after an interval, where a
// hole's first byte decides the answer. `spec` is the model after `op`.
std::vector<std::string> bias_classes(const Engine& spec, const std::string& ioas, const trace::Operation& op,
                                      const trace::Outcome& o);
const std::vector<std::string>& required_biases();

struct CampaignConfig {
  std::uint64_t seed = 1;
  int cases = 200;       // operation sequences, each from its own seed
  // A sequence's length is uniform in [1, n], n growing from 1 to max_size
  // over the cases (short sequences first, as RapidCheck sizes them).
  int max_size = 60;
  // After each step the parts it touched are compared (diff_focused), and
  // whole states (diff_states) after every `whole_every`th step and after
  // the last step of each sequence. There, the leaves of an area of more
  // than 1024 smallest pages are listed in full (64K at each end) on the
  // sequence's first whole comparison and one in 4 after it, and wherever a
  // step acted since the last; elsewhere at its ends (512 leaves each), as
  // a focused comparison lists them. The shrinker's replays list them in
  // full every time.
  std::uint64_t whole_every = 32;
  // Makes the engine under test; must return a fresh, empty engine.
  std::function<std::unique_ptr<Engine>()> make_sut;
  // Where a shrunk counterexample is written ("" = do not write).
  std::string corpus_dir;
  // When set, about one step in 16 makes the nth (1..6) allocation (a
  // table page or one of the engine's objects) of its operation fail in the engine under test (inject(e, n);
  // inject(e, 0) turns it off). An ENOMEM answer must leave the engine equal
  // to the model that did not run the operation; any other answer must
  // agree with the model as usual. Counted as "<op> ENOMEM (injected)".
  std::function<bool(Engine&, std::uint64_t)> inject;
};

struct CampaignResult {
  bool passed = false;
  std::string message;          // on failure: the shrunk steps and the difference
  std::string counterexample;   // path of the written .trace, if any
  std::uint64_t operations = 0; // operations checked
  std::map<std::string, std::uint64_t> coverage;  // outcome_class -> count
};

CampaignResult run_campaign(const CampaignConfig& cfg);

// The outcome classes a campaign must reach: every errno path of SPEC.md.
const std::vector<std::string>& required_coverage();

// Writes `ops` as a trace with every expectation filled in from the model,
// to `dir/<stem>.trace`; returns the path, or "" when it could not write.
std::string write_counterexample(const std::vector<trace::Operation>& ops, const std::string& dir,
                                 const std::string& stem);

}  // namespace ioas::lockstep
