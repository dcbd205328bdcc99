// ioas/impl.hpp: the production engine (impl/).
//
// Same interface and same answers as the executable spec (make_model_engine);
// built for size: automatic map and unmap in O(log n) over interval trees,
// compact per-area nodes. See impl/engine_impl.hpp for the layout and the
// file each job lives in.
#pragma once

#include <cstdint>
#include <memory>

#include "ioas/backend.hpp"
#include "ioas/engine.hpp"

namespace ioas {

// Threads (make_engine's engines are thread-safe unless thread_safe=false):
// a readers-writer lock per IOAS, and one for the engine-wide objects whose
// readers share no cache line (impl/make_engine.cpp). Calls on different
// IOASes (or on domains of different IOASes) run in parallel, writers
// included: map, unmap, cut, copy (which locks its two IOASes), pins,
// reserve/allow, huge pages, dma, dirty tracking. Calls on one IOAS that
// change nothing run concurrently with each other (uva, leaves, snapshot,
// ioas_options); a change to it (dma and read_dirty too: they
// set or clear accessed/dirty bits) runs alone in that IOAS, so these
// readers wait for a change in progress and never see half of one: they
// read what a writer changes in place (the IOAS's space tree, reserved and
// allowed sets and pins; for leaves, the domain's list of mappings, which
// gives each leaf's user address, a tce table's dirty set and its user
// addresses beside the entries, and the domain's dirty mode).
// ranges takes no IOAS lock: the IOAS's writer publishes what it answers
// (the valid ranges and iova_alignment, one atomic word naming an immutable
// copy) when a reserve, unreserve, attach, detach, pin, unpin or huge-pages
// change commits, so a ranges beside it answers the state before or after
// that change, never a mix, and never waits.
// translate takes no IOAS lock: it never waits for a writer of its IOAS,
// and walks the domain's table while a writer changes it, as an IOMMU
// does (the built-in x86-64, arm-lpae and tce tables: their entries are
// written and read atomically, and a table page a writer frees is reused
// only after the translations that may be inside it have finished,
// hw/memory.hpp). So a translate beside a map, unmap, split, merge or
// relayout of the same IOVA answers that page as it was before the change
// or as it is after it (not mapped, or the whole pa and prot of one of the
// two states), never a mix; pages of one map may appear one by one. A
// mock table or a back end's own table (ImplOptions::tables) is read under
// the IOAS's lock as before. create_ioas, the memory sources, attach,
// detach, check and clone run alone in the engine (so a domain and its
// table stay while a translate reads them); ioas_names and memories
// beside anything.
// Page-table splits and merges (cut, dirty tracking, huge pages) happen
// inside such calls, so they never overlap a map or unmap of the same IOAS.
// With verify_each_op every change runs alone in the engine (verification
// reads everything).
struct ImplOptions {
  // After every mutating call (success or failure), run the trees' verify()
  // and the SPEC invariants (check()), aborting with a message on a breach
  // (a decorator around the engine, inside its lock: impl/make_engine.cpp).
  // O(size of the world) per call: for tests and the differential harness,
  // never for production or benchmarks.
  bool verify_each_op = false;
  // check() first runs the trees' and page tables' verify() (what
  // verify_each_op runs after each call, less the SPEC invariants that check()
  // reports anyway), aborting with a message on a breach: for a harness that
  // compares whole states now and then and calls check() there
  // (differential/lockstep). O(size of the world) per check().
  bool verify_on_check = false;
  // Makes each new domain's page table (ioas/backend.hpp); empty: the
  // built-in table in the domain's hardware format.
  TableFactory tables;
  // false: no lock (one thread at a time, the caller's business); for
  // single-threaded users and the benchmarks' raw figure.
  bool thread_safe = true;
};

// The production engine with default options: no per-call verification,
// unless the environment has IOAS_IMPL_VERIFY=1.
std::unique_ptr<Engine> make_engine();
// The same, under the name the trace replayer registers.
std::unique_ptr<Engine> make_impl_engine();
std::unique_ptr<Engine> make_engine(const ImplOptions& options);
// make_engine with verify_each_op: for test factories.
std::unique_ptr<Engine> make_checked_engine();

// ---- Fault injection, for tests (the kernel's fail_nth) ----
// An impl engine counts its allocations: every page-table page of every
// domain (a page memory per IOAS, counted as one), and every object of its
// own that an operation creates (an IOAS, a memory source, an area node, a
// domain, a pin, a reserved or allowed set). fail_nth_alloc makes the nth allocation
// from now fail (1-based; 0 turns injection off): the operation that makes
// it fails with ENOMEM and changes nothing. Returns false for an engine that
// is not impl. (The containers' own growth is not counted here; a real
// heap exhaustion there gives ENOMEM with nothing changed too: see "Heap
// exhaustion" in ioas/engine.hpp; impl/tests/heap_fail_nth_test.cpp fails
// every heap allocation of every operation in turn.)
bool fail_nth_alloc(Engine& engine, std::uint64_t nth);
// Allocations counted so far (failed ones included; call it while no other
// thread uses the engine), table pages in use, and
// pages reachable from the domains' roots: in use == reachable means no
// page leaked (empty intermediate tables stay reachable after an unmap, as
// the kernel's io-pgtable keeps them).
std::uint64_t alloc_calls(const Engine& engine);
std::uint64_t table_pages_in_use(const Engine& engine);
std::uint64_t table_pages_reachable(const Engine& engine);

}  // namespace ioas
