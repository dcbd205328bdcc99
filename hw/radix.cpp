// hw/radix.cpp: the 4-level, 512-entry radix table shared by x86-64 and
// arm-lpae (4 KiB granule, 48-bit input, 4K/2M/1G leaves). Only the
// descriptor encoding differs; it comes from the format's Fmt (formats.hpp).
//
// Invariants (verify()):
//   - the top table (level 3) holds only table entries; a table entry points
//     at a page of the table's PageMemory; no page is reachable twice;
//   - a leaf at level l maps an output address aligned to its size
//     (4K << 9l), and its size is one of the table's page sizes;
//   - every operation either completes or leaves all table bytes as they
//     were (the Journal below records every overwritten entry and every page
//     the operation allocated; rollback restores and frees them).
//
// One operation at a time (the engine holds the IOAS's lock); a walker
// running meanwhile (the software walker, or a KVM guest while KVM_RUN has
// the thread) only sets A/D bits, which an operation never races with here.
// A real driver would use cmpxchg for both. translate() may run beside an
// operation on another thread (the thread-safe engine's readers take no
// lock): every write to a word of a reachable table is an atomic store and
// translate's loads are atomic (memory.hpp's table words), and a page the
// operation unlinks is reused only after such readers left it
// (HeapPageMemory). Such a translate answers the entry as it was before or
// after each store; a run of leaves appears leaf by leaf.
#include <absl/container/inlined_vector.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <set>

#include "formats.hpp"
#include "ioas/boundary.hpp"
#include "ioas/core/check.hpp"
#include "ioas/core/text.hpp"
#include "ioas/rules.hpp"
#include "pagetable.hpp"
#include "ioas/arith.hpp"
#include "radix.hpp"

namespace ioas::hw {
namespace {

constexpr int kTop = formats::kRadixTopLevel;
constexpr int kEntries = static_cast<int>(formats::kRadixEntries);
constexpr u64 kIasMax = formats::kRadixIasLast;

u64 level_size(int l) { return arith::pt_block_size(u64{0}, static_cast<unsigned>(l)); }
inline unsigned index_at(u64 iova, int l) {
  return static_cast<unsigned>(arith::pt_index(iova, static_cast<unsigned>(l)));
}
// The bytes of k consecutive entries at level l (k <= 512).
u64 entries_bytes(u64 k, int l) { return arith::pt_index_base(k, static_cast<unsigned>(l)); }
// The address entry i covers in a table (or a run of leaves) at level l whose
// entry 0 is at `base`: the byte entries_bytes(i, l) into the run.
u64 entry_addr(u64 base, u64 i, int l) { return arith::page_advance(base, i, arith::pt_shift(static_cast<unsigned>(l))); }
// A map step of `bytes`: the IOVA and the physical address move on, the
// remaining length shrinks.
void advance(u64& iova, u64& pa, u64& rem, u64 bytes) {
  iova = arith::run_addr(iova, u64{0}, bytes);
  pa = arith::run_addr(pa, u64{0}, bytes);
  rem = arith::run_rest(rem, bytes);
}
// r clipped to the addressable inputs [0, kIasMax] (invalid when r lies above).
Range clip_to_ias(Range r) { return r.intersect(Range{0, kIasMax}); }
int level_of(u64 size) {
  for (int l = 0; l < kTop; ++l)
    if (size == level_size(l)) return l;
  return -1;
}

// Undo log of one operation.
struct Journal {
  struct Write {
    u64* p;
    u64 n;    // entries p[0..n) all held `old`
    u64 old;
  };
  // Inline room for what a map of one run or a small unmap records, so
  // that they do not go to the heap.
  absl::InlinedVector<Write, 8> writes;
  absl::InlinedVector<u64, 4> allocated;  // pages this operation allocated
  absl::InlinedVector<u64, 4> unlinked;   // pages this operation made unreachable
  // false: an operation that cannot fail (an unmap that splits no leaf)
  // records nothing and so allocates nothing.
  bool record = true;
};

template <class F>
class RadixTable final : public PageTable {
 public:
  RadixTable(const TableConfig& cfg, PageMemory& mem, u64 root)
      : PageTable(cfg, mem),
        heap_(dynamic_cast<const HeapPageMemory*>(&mem)),
        fast_(heap_ ? &heap_->fast_pages() : &HeapPageMemory::kNoFastPages),
        root_(root),
        root_host_(mem.page(root)) {}
  ~RadixTable() override {
    for_each_page(root_, kTop, [this](u64 pa) { mem_.free_page(pa); });
  }

  u64 root() const override { return root_; }

  std::unique_ptr<PageTable> clone_onto(PageMemory& mem) const override {
    auto t = std::make_unique<RadixTable>(cfg_, mem, root_);
    t->stats_ = stats_;
    return t;
  }

  // map and unmap of one 4K leaf in the level-0 table the last map or
  // unmap walked to (the streaming pattern: a buffer mapped and unmapped
  // again and again), with the caller's gather: one entry to write, done
  // here in a frame of its own; anything else, a refusal included, goes to
  // the general path (map_walk, unmap_walk), which decides it as ever.
  Status map(const MapArgs& a, IotlbGather* g) override {
    if (g && a.len == level_size(0) && a.prot != Prot::kNone) {
      // Each condition is one the general path refuses without it (in its
      // order there: the page sizes, their alignment, the aperture and the
      // input size, the output size), and then the cached table.
      const u64 sizes = a.pgsizes ? a.pgsizes : cfg_.pgsize_bitmap;
      const auto end = ioas::arith::range_last(a.iova, a.len);
      const auto pend = ioas::arith::range_last(a.pa, a.len);
      if ((sizes & ~cfg_.pgsize_bitmap) == 0 && arith::is_aligned(a.iova | a.pa | a.len, arith::lowest_bit(sizes)) &&
          !end.overflow && cfg_.aperture.contains(Range{a.iova, end.last}) && end.last <= kIasMax &&
          !pend.overflow && pend.last <= F::kMaxOa)
        if (u64* t = cached_leaf_table(a.iova)) {
          u64* e = &t[index_at(a.iova, 0)];
          if (!F::present(*e)) {
            put_cached_leaf(e, a, *g);
            return ok_status();
          }
        }
    }
    return map_walk(a, g);
  }

  Result<u64> unmap(u64 iova, u64 len, IotlbGather* g) override {
    if (g && len == level_size(0) && iova <= kIasMax && arith::is_aligned(iova | len, min_pgsize())) {
      // Inside the cached table and short of its span (len is 4K): see
      // unmap_walk's use of the cache.
      const u64 last = ioas::arith::range_last(iova, len).last;  // no overflow: iova <= kIasMax
      if (u64* t = cached_leaf_table(iova); t && short_of_cached_span(iova, last))
        return clear_cached_leaf(t, iova, *g);
    }
    return unmap_walk(iova, len, g);
  }

 private:
  // The 4K leaf of a map in the cached level-0 table, at its free entry e.
  [[gnu::always_inline]] void put_cached_leaf(u64* e, const MapArgs& a, IotlbGather& gather) {
    store_leaf(e, arith::desc_make(a.pa, F::leaf_entry(0, 0, a.prot, cfg_.preset_accessed, false)));
    ++stats_.leaf_writes;
    gather.add_range(a.iova, level_size(0));
  }
  // Whether [iova, last], which starts in the cached level-0 table, ends
  // there short of its whole span (which would unlink the table itself).
  [[gnu::always_inline]] bool short_of_cached_span(u64 iova, u64 last) const {
    return last <= leaf_table_last_ && (iova != leaf_table_first_ || last != leaf_table_last_);
  }
  // The unmap of the one 4K entry of iova in the cached level-0 table t:
  // the bytes unmapped.
  [[gnu::always_inline]] u64 clear_cached_leaf(u64* t, u64 iova, IotlbGather& gather) {
    u64* e = &t[index_at(iova, 0)];
    if (!F::present(*e)) return 0;
    store_link(e, 0);
    gather.add_range(iova, level_size(0));
    return level_size(0);
  }
  [[gnu::noinline]] Status map_walk(const MapArgs& a, IotlbGather* g) {
    auto what = [&] { return "map " + hex(a.iova) + "+" + hex(a.len); };
    const u64 sizes = a.pgsizes ? a.pgsizes : cfg_.pgsize_bitmap;
    if (a.len == 0) return make_error(EINVAL, what() + ": length 0");
    // w is written as the format's rw (F::leaf_entry): no write-only encoding.
    if (a.prot == Prot::kNone) return make_error(EINVAL, what() + ": permission must be r, w or rw");
    if ((sizes & ~cfg_.pgsize_bitmap) != 0)
      return make_error(EINVAL, what() + ": page sizes " + hex(sizes) + " not a subset of the table's " +
                                    hex(cfg_.pgsize_bitmap));
    const u64 minp = arith::lowest_bit(sizes);
    if (!arith::is_aligned(a.iova | a.pa | a.len, minp))
      return make_error(EINVAL, what() + " pa " + hex(a.pa) + ": not aligned to the smallest page size " +
                                    hex(minp));
    auto end = ioas::arith::range_last(a.iova, a.len);
    auto pend = ioas::arith::range_last(a.pa, a.len);
    if (end.overflow || !cfg_.aperture.contains(Range{a.iova, end.last}) || end.last > kIasMax)
      return make_error(ERANGE, what() + ": outside the aperture " + to_string(cfg_.aperture));
    if (pend.overflow || pend.last > F::kMaxOa)
      return make_error(ERANGE, what() + ": physical address " + hex(a.pa) + " beyond the output size");

    std::optional<IotlbGather> local;  // made only when the caller passes no gather
    IotlbGather& gather = g ? *g : local.emplace(tlb_, mem_);
    // One 4K leaf (len 4K can only be that: it is the smallest size) in
    // the level-0 table the last map or unmap walked to: one entry to
    // write, no table to link, nothing to undo, so no journal.
    if (a.len == level_size(0)) {
      if (u64* t = cached_leaf_table(a.iova)) {
        u64* e = &t[index_at(a.iova, 0)];
        if (F::present(*e)) {
          forget_leaf_table();  // as the rollback of the general path does
          return make_error(EEXIST, what() + ": " + hex(a.iova) + " is already mapped");
        }
        put_cached_leaf(e, a, gather);
        return ok_status();
      }
    }
    Journal j;
    // Heap exhaustion (the journal's growth) undoes what was written: every
    // write is journaled before it is made.
    try {
    u64 iova = a.iova, pa = a.pa, rem = a.len;
    while (rem != 0) {
      const u64 s = arith::iommu_pgsize(sizes, iova, pa, rem);
      u64 n = arith::pgsize_count(sizes, s, iova, pa, rem);
      const int lvl = level_of(s);
      while (n != 0) {
        u64* t = lvl == 0 ? cached_leaf_table(iova) : nullptr;
        if (!t) {
          if (Status st = walk_alloc(j, iova, lvl, &t); !st.ok()) return rollback(j, gather, st);
          if (lvl == 0) remember_leaf_table(iova, t);
        }
        j.writes.reserve(j.writes.size() + 2);  // the records of this step's writes
        const unsigned i = index_at(iova, lvl);
        const u64 k = arith::run_in_block(u64{i}, n, u64{kEntries});
        // The free slots from i: all k of them in the common case (one
        // branch-free pass finds out), else up to the first present one.
        const u64 tmpl = F::leaf_entry(0, lvl, a.prot, cfg_.preset_accessed, false);
        u64 x = k;
        if (!none_present(t + i, k))
          for (x = 0; !F::present(t[i + x]); ++x) {
          }
        store_leaves(t + i, x, pa, lvl, tmpl);
        if (x < k) {
          const u64 e = t[i + x];
          if (!(lvl > 0 && F::is_table(e, lvl) && subtree_empty(F::table_pa(e), lvl - 1))) {
            j.writes.push_back({t + i, x, 0});
            if (x != 0) gather.add_range(iova, entries_bytes(x, lvl));  // briefly present: flushed with the undo
            return rollback(j, gather,
                            make_error(EEXIST, what() + ": " + hex(entry_addr(iova, x, lvl)) + " is already mapped"));
          }
          // An empty table where a large leaf goes: unlink it (freed after the flush).
          forget_leaf_table();
          j.writes.push_back({t + i, x, 0});
          j.writes.push_back({t + i + x, 1, e});
          store_link(t + i + x, 0);
          collect_pages(F::table_pa(e), lvl - 1, j.unlinked);
          // The run continues after this slot (a fresh journal record).
          store_leaf(t + i + x, arith::desc_make(entry_addr(pa, x, lvl), tmpl));
          const u64 through = arith::range_after(x).next;  // the leaves before it and it
          stats_.leaf_writes += through;
          gather.add_range(iova, entries_bytes(through, lvl));
          advance(iova, pa, rem, entries_bytes(through, lvl));
          n = arith::run_rest(n, through);
          continue;
        }
        j.writes.push_back({t + i, k, 0});
        stats_.leaf_writes += k;
        gather.add_range(iova, entries_bytes(k, lvl));
        advance(iova, pa, rem, entries_bytes(k, lvl));
        n = arith::run_rest(n, k);
      }
    }
    } catch (const std::bad_alloc&) {
      return rollback(j, gather, out_of_memory());
    }
    commit(j, gather);
    return ok_status();
  }

  [[gnu::noinline]] Result<u64> unmap_walk(u64 iova, u64 len, IotlbGather* g) {
    auto what = [&] { return "unmap " + hex(iova) + "+" + hex(len); };
    if (len == 0) return make_error(EINVAL, what() + ": length 0");
    const u64 minp = min_pgsize();
    if (!arith::is_aligned(iova | len, minp))
      return make_error(EINVAL, what() + ": not aligned to the smallest page size " + hex(minp));
    auto end = ioas::arith::range_last(iova, len);
    if (end.overflow) return make_error(EOVERFLOW, what() + ": passes 2^64-1");
    if (iova > kIasMax) return u64{0};
    const u64 last = clip_to_ias(Range{iova, end.last}).last;

    std::optional<IotlbGather> local;  // made only when the caller passes no gather
    IotlbGather& gather = g ? *g : local.emplace(tlb_, mem_);
    // Only a split of a leaf that crosses an end can fail; without one the
    // unmap records nothing and frees unlinked tables at once (after the
    // flush), so it allocates nothing.
    // A range inside the cached level-0 table, short of its whole span
    // (which unlinks the table itself), starts there: the entries above it
    // are the tables of its path, which the walk would only pass through.
    // Nothing is split then: every entry of a level-0 table is a 4K leaf,
    // and 4K is then one of the table's sizes, so iova and last + 1 are 4K
    // aligned (the check above) and no leaf there crosses them; a leaf
    // holding last + 1 past the table's span starts there or, larger,
    // would hold the span too, which a table entry holds.
    u64* t = cached_leaf_table(iova);
    const bool from_cache = t && short_of_cached_span(iova, last);
    if (from_cache && len == level_size(0)) return clear_cached_leaf(t, iova, gather);  // no journal either
    Journal j;
    int l = 0;
    if (from_cache) {
      j.record = false;
    } else {
      t = root_table();
      l = kTop;
      j.record = last != kIasMax ? crosses_either(iova, arith::range_after(last).next) : crosses(iova);
    }
    u64 unmapped = 0;
    u64 p = iova;
    try {
    // One entry per step; the next step stays in the same table unless
    // the next IOVA starts another one (then it walks from the root again).
    for (;;) {
      u64* e = &t[index_at(p, l)];
      const u64 span = level_size(l);
      const auto block = arith::block_of(p, span);
      const u64 base = block.first, next = block.next;
      const bool inside = base >= iova && block.last <= last;
      if (F::present(*e) && F::is_table(*e, l)) {
        if (!inside) {
          t = table_at(F::table_pa(*e));
          if (--l == 0) remember_leaf_table(p, t);
          continue;
        }
        forget_leaf_table();  // it may be below this entry
        const u64 sub = F::table_pa(*e);
        unmapped += mapped_bytes(sub, l - 1);
        if (j.record) collect_pages(sub, l - 1, j.unlinked);
        put(j, e, 0);
        if (!j.record) for_each_page(sub, l - 1, [&](u64 pa) { gather.add_free(pa); });
        gather.add_range(base, span);
      } else if (F::present(*e) && inside) {
        put(j, e, 0);
        unmapped += span;
        gather.add_range(base, span);
      } else if (F::present(*e)) {
        // A leaf only partly inside: split it into the next smaller page size.
        const int to = smaller_level(l);
        if (Status st = split_leaf(j, e, l, to); !st.ok()) return rollback(j, gather, st).error();
        gather.add_range(base, span);
        t = table_at(F::table_pa(*e));
        if (--l == 0) remember_leaf_table(p, t);
        continue;
      }
      if (block.at_top || next > last) break;
      p = next;
      if (index_at(p, l) == 0) {
        t = root_table();
        l = kTop;
      }
    }
    } catch (const std::bad_alloc&) {
      return rollback(j, gather, out_of_memory()).error();
    }
    commit(j, gather);
    return unmapped;
  }

 public:
  std::optional<Translation> translate(u64 iova) const override {
    if (iova > kIasMax) return std::nullopt;
    // Over region 0 of heap pages (the engine's), each level's page is an
    // addition away (HeapPageMemory::FastLookup); any other page sends the
    // walk to translate_slow.
    return translate_in(HeapPageMemory::FastLookup(*fast_), iova);
  }

  Status split_blocks(Range r, IotlbGather* g, u64 to_size) override {
    if (!r.valid() || r.start > kIasMax) return ok_status();
    r = clip_to_ias(r);
    if (to_size == 0) to_size = min_pgsize();
    if (!(to_size & cfg_.pgsize_bitmap))
      return make_error(EINVAL, "split to " + hex(to_size) + ": not a page size of the table");
    const int to = level_of(to_size);
    forget_leaf_table();
    std::optional<IotlbGather> local;  // made only when the caller passes no gather
    IotlbGather& gather = g ? *g : local.emplace(tlb_, mem_);
    Journal j;
    u64 p = r.start;
    try {
    for (;;) {
      u64* t = root_table();
      int l = kTop;
      arith::Block<u64> block{};
      for (;;) {
        u64* e = &t[index_at(p, l)];
        const u64 span = level_size(l);
        block = arith::block_of(p, span);
        const u64 base = block.first;
        if (!F::present(*e)) break;
        if (F::is_table(*e, l)) {
          t = table_at(F::table_pa(*e));
          --l;
          continue;
        }
        if (l == to) break;
        if (Status st = split_leaf(j, e, l, to); !st.ok()) return rollback(j, gather, st);
        gather.add_range(base, span);
        t = table_at(F::table_pa(*e));
        --l;
      }
      if (block.at_top || block.next > r.last) break;
      p = block.next;
    }
    } catch (const std::bad_alloc&) {
      return rollback(j, gather, out_of_memory());
    }
    commit(j, gather);
    return ok_status();
  }

  void merge_blocks(Range r, u64 pgsizes, IotlbGather* g) override {
    if (!r.valid() || r.start > kIasMax) return;
    r = clip_to_ias(r);
    forget_leaf_table();  // merges unlink tables
    std::optional<IotlbGather> local;  // made only when the caller passes no gather
    IotlbGather& gather = g ? *g : local.emplace(tlb_, mem_);
    merge_table(root_table(), kTop, 0, r, pgsizes & cfg_.pgsize_bitmap, gather);
  }

  u64 read_and_clear_dirty(Range r, DirtyBitmap* bitmap, bool keep, IotlbGather* g) override {
    std::optional<IotlbGather> local;  // made only when the caller passes no gather
    IotlbGather& gather = g ? *g : local.emplace(tlb_, mem_);
    u64 dirty = 0;
    visit(r, [&](u64* e, int l, u64 base) {
      if (!F::dirty(*e)) return;
      ++dirty;
      const Range leaf{base, arith::range_last(base, level_size(l)).last};
      if (bitmap) bitmap->record(leaf.intersect(r));
      if (!keep) {
        store_leaf(e, F::clean(*e));
        gather.add_range(base, level_size(l));
      }
    });
    return dirty;
  }

  void for_each_leaf(Range r, const std::function<void(const Leaf&)>& f) const override {
    const_cast<RadixTable*>(this)->visit(r, [&](u64* e, int l, u64 base) {
      f(Leaf{base, level_size(l), F::oa(*e, l), F::prot(*e), F::accessed(*e), F::dirty(*e), std::nullopt});
    });
  }

  u64 verify() const override {
    std::set<u64> seen{root_};
    return verify_table(root_, kTop, seen);
  }

  std::vector<u64> image() const override {
    std::vector<u64> out;
    image_table(root_, kTop, out);
    return out;
  }

  u64 table_pages() const override {
    std::vector<u64> pages;
    collect_pages(root_, kTop, pages);
    return pages.size();
  }

 private:
  // The host view of the table page at pa: inline over heap pages (the
  // engine's), the memory's own lookup otherwise.
  [[gnu::always_inline]] u64* table_at(u64 pa) const { return heap_ ? HeapPageMemory::Lookup(*heap_).page(pa) : mem_.page(pa); }
  u64* root_table() const { return root_host_; }
  template <class Memory>
  std::optional<Translation> translate_in(const Memory& mem, u64 iova) const {
    return translate_from<kTop>(mem, &root_host_[index_at(iova, kTop)], iova);
  }
  // The walk through the memory's own lookup, for a table page past a heap
  // Lookup's extent (a rare walk: out of line, so that the common one saves
  // no registers for calls).
  [[gnu::noinline]] std::optional<Translation> translate_slow(u64 iova) const {
    return heap_ ? translate_in(HeapPageMemory::Lookup(*heap_), iova) : translate_in(mem_, iova);
  }
  // The walk from w, the word of a table at level L that iova selects, one
  // level per instance, so that every shift, mask and level test is a
  // constant. Over heap pages the next word is pa plus a constant
  // (HeapPageMemory::FastLookup::word_at); the memory's lookup otherwise.
  template <int L, class Memory>
  std::optional<Translation> translate_from(const Memory& mem, const u64* w, u64 iova) const {
    const u64 e = load_word(w);
    if (!F::present(e)) return std::nullopt;
    if constexpr (L > 0) {
      if (F::is_table(e, L)) {
        const u64 pa = F::table_pa(e);
        const unsigned i = index_at(iova, L - 1);
        if constexpr (std::is_same_v<Memory, HeapPageMemory::FastLookup>) {
          const u64 off = mem.offset(pa);
          if (off >= mem.bytes()) [[unlikely]] return translate_slow(iova);
          return translate_from<L - 1>(mem, mem.word_at(off, i), iova);
        } else {
          return translate_from<L - 1>(mem, mem.page(pa) + i, iova);
        }
      }
    }
    return Translation{F::oa(e, L) | arith::pt_leaf_offset(iova, static_cast<unsigned>(L)), F::prot(e)};
  }
  // The loops over a run of entries go a cache line (kLine entries) at a
  // time, unrolled inside (GCC does not unroll them at -O2 by itself), the
  // scan two entries a vector (4 instructions an entry one by one, not 1),
  // the rest one by one.
  static constexpr u64 kLine = 8;
  // Two entries a vector (SSE2 on any x86-64; GCC's vector extension elsewhere).
  using Pair = u64 __attribute__((vector_size(16)));
  // Whether none of the k entries from p is present.
  static bool none_present(const u64* p, u64 k) {
    // Every line asked for first (for writing: the leaves go there next),
    // so that the misses of a cold table overlap instead of queueing.
#pragma GCC unroll 4
    for (u64 x = 0; x < k; x += kLine) __builtin_prefetch(p + x, 1);
    Pair acc = {0, 0};
    u64 x = 0;
    for (; x + kLine <= k; x += kLine)
#pragma GCC unroll 4
      for (u64 z = 0; z < kLine; z += 2) {
        Pair e;
        std::memcpy(&e, p + x + z, sizeof e);
        acc |= e;
      }
    u64 any = acc[0] | acc[1];
    for (; x < k; ++x) any |= p[x];
    return !F::present(any);
  }
  // p[y] = desc_make(entry_addr(pa, y, l), tmpl) for y < n: n leaves of
  // level l, each an atomic store (a translate may read them meanwhile),
  // which GCC does not merge into vectors: each entry is the one before
  // advanced by a leaf's worth of 4K frames (desc_advance: the address
  // field from bit 12 does not carry past the output size, which map
  // checked), two instructions an entry.
  static void store_leaves(u64* p, u64 n, u64 pa, int l, u64 tmpl) {
    const u64 frames = arith::page_number(level_size(l), kGranuleShift);
    u64 e = arith::desc_make(entry_addr(pa, 0, l), tmpl);
    u64 y = 0;
    for (; y + kLine <= n; y += kLine)
#pragma GCC unroll 8
      for (u64 z = 0; z < kLine; ++z, e = arith::desc_advance(e, frames, kGranuleShift)) store_leaf(p + y + z, e);
    for (; y < n; ++y, e = arith::desc_advance(e, frames, kGranuleShift)) store_leaf(p + y, e);
  }
  // The largest page size of the table below level l's size, as a level.
  int smaller_level(int l) const {
    const u64 s = arith::pgsize_below(cfg_.pgsize_bitmap, level_size(l));
    return s != 0 ? level_of(s) : 0;
  }

  void put(Journal& j, u64* p, u64 v) {
    if (j.record) j.writes.push_back({p, 1, *p});
    store_link(p, v);
  }

  Status rollback(Journal& j, IotlbGather& gather, Status why) {
    forget_leaf_table();  // it may be a page this operation allocated
    for (auto it = j.writes.rbegin(); it != j.writes.rend(); ++it)
      for (u64 k = 0; k < it->n; ++k) store_link(it->p + k, it->old);
    // Pages this operation allocated were briefly reachable: free them after
    // the flush of whatever the gather holds.
    for (u64 pa : j.allocated) gather.add_free(pa);
    stats_.table_allocs -= j.allocated.size();
    return why;
  }
  void commit(Journal& j, IotlbGather& gather) {
    for (u64 pa : j.unlinked) gather.add_free(pa);
  }

  Status alloc_table(Journal& j, u64* out) {
    j.allocated.reserve(j.allocated.size() + 1);  // before the page, which it records
    auto pa = mem_.alloc_page();
    if (!pa) return make_error(ENOMEM, "page table: out of memory for a table page");
    j.allocated.push_back(*pa);
    ++stats_.table_allocs;
    *out = *pa;
    return ok_status();
  }

  // The table at level `lvl` that holds iova, allocating missing tables.
  Status walk_alloc(Journal& j, u64 iova, int lvl, u64** out) {
    u64* t = root_table();
    for (int l = kTop; l > lvl; --l) {
      u64* e = &t[index_at(iova, l)];
      if (!F::present(*e)) {
        u64 pa = 0;
        if (Status st = alloc_table(j, &pa); !st.ok()) return st;
        put(j, e, F::table_entry(pa, cfg_.preset_accessed));
      } else if (!F::is_table(*e, l)) {
        return make_error(EEXIST, "map " + hex(iova) + ": inside a mapped " + hex(level_size(l)) + " leaf");
      }
      t = table_at(F::table_pa(*e));
    }
    *out = t;
    return ok_status();
  }

  // Replaces the leaf *e at level l by a subtree whose leaves sit at level
  // `to` (< l), with the same address, permission, accessed and dirty state.
  Status split_leaf(Journal& j, u64* e, int l, int to) {
    u64 pa = 0;
    if (Status st = build_leaves(j, F::oa(*e, l), l - 1, to, F::prot(*e), F::accessed(*e), F::dirty(*e), &pa);
        !st.ok())
      return st;
    put(j, e, F::table_entry(pa, cfg_.preset_accessed || F::accessed(*e)));
    return ok_status();
  }
  Status build_leaves(Journal& j, u64 oa, int l, int to, Prot prot, bool acc, bool dirty, u64* out) {
    u64 pa = 0;
    if (Status st = alloc_table(j, &pa); !st.ok()) return st;
    u64* t = table_at(pa);
    for (u64 i = 0; i < kEntries; ++i) {
      if (l == to) {
        t[i] = F::leaf_entry(entry_addr(oa, i, l), l, prot, acc, dirty);
        continue;
      }
      u64 sub = 0;
      if (Status st = build_leaves(j, entry_addr(oa, i, l), l - 1, to, prot, acc, dirty, &sub);
          !st.ok())
        return st;
      t[i] = F::table_entry(sub, cfg_.preset_accessed || acc);
    }
    if (l == to) stats_.leaf_writes += kEntries;
    *out = pa;
    return ok_status();
  }

  struct Summary {
    bool uniform = false;  // every entry a present leaf (or uniform subtree), contiguous
    u64 oa = 0;
    Prot prot = Prot::kNone;
    bool acc = false;
    bool dirty = false;
  };
  // Merges inside r below table t (entries at level l, t[0] at iova base)
  // and describes the whole table afterwards.
  Summary merge_table(u64* t, int l, u64 base, Range r, u64 sizes, IotlbGather& gather) {
    Summary s;
    s.uniform = true;
    const u64 span = level_size(l);
    for (u64 i = 0; i < kEntries; ++i) {
      const u64 cb = entry_addr(base, i, l);
      const Range cr{cb, arith::range_last(cb, span).last};
      u64& e = t[i];
      if (!cr.overlaps(r) || !F::present(e)) {
        s.uniform = false;
        continue;
      }
      Summary c;
      if (F::is_table(e, l)) {
        c = merge_table(table_at(F::table_pa(e)), l - 1, cb, r, sizes, gather);
        if (c.uniform && l < kTop && r.contains(cr) && (sizes & span) && arith::is_aligned(c.oa, span)) {
          const u64 sub = F::table_pa(e);
          store_link(&e, F::leaf_entry(c.oa, l, c.prot, c.acc, c.dirty));
          for_each_page(sub, l - 1, [&](u64 pa) { gather.add_free(pa); });
          ++stats_.leaf_writes;
          gather.add_range(cb, span);
        }
      } else {
        c = Summary{true, F::oa(e, l), F::prot(e), F::accessed(e), F::dirty(e)};
      }
      if (i == 0) {
        s.oa = c.oa;
        s.prot = c.prot;
      }
      s.uniform = s.uniform && c.uniform && c.oa == entry_addr(s.oa, i, l) &&
                  c.prot == s.prot;
      s.acc = s.acc || c.acc;
      s.dirty = s.dirty || c.dirty;
    }
    return s;
  }

  // Calls f(entry, level, iova) for every leaf intersecting r.
  template <class Fn>
  void visit(Range r, Fn&& f) {
    if (!r.valid() || r.start > kIasMax) return;
    r = clip_to_ias(r);
    visit_table(root_table(), kTop, 0, r, f);
  }
  template <class Fn>
  void visit_table(u64* t, int l, u64 base, Range r, Fn& f) {
    // r.start past base lies in this table: its index here.
    const u64 first = r.start <= base ? 0 : arith::pt_index(r.start, static_cast<unsigned>(l));
    for (u64 i = first; i < kEntries; ++i) {
      const u64 cb = entry_addr(base, i, l);
      if (cb > r.last) break;
      u64* e = &t[i];
      if (!F::present(*e)) continue;
      if (F::is_table(*e, l))
        visit_table(table_at(F::table_pa(*e)), l - 1, cb, r, f);
      else
        f(e, l, cb);
    }
  }

  // Bytes mapped by the leaves below the table at pa (entries at level l).
  u64 mapped_bytes(u64 pa, int l) const {
    const u64* t = table_at(pa);
    u64 sum = 0;
    for (int i = 0; i < kEntries; ++i) {
      if (!F::present(t[i])) continue;
      sum += F::is_table(t[i], l) ? mapped_bytes(F::table_pa(t[i]), l - 1) : level_size(l);
    }
    return sum;
  }
  bool subtree_empty(u64 pa, int l) const {
    const u64* t = table_at(pa);
    for (int i = 0; i < kEntries; ++i) {
      if (!F::present(t[i])) continue;
      if (!F::is_table(t[i], l) || !subtree_empty(F::table_pa(t[i]), l - 1)) return false;
    }
    return true;
  }
  template <class Pages>
  void collect_pages(u64 pa, int l, Pages& out) const {
    out.push_back(pa);
    const u64* t = table_at(pa);
    if (l == 0) return;
    for (int i = 0; i < kEntries; ++i)
      if (F::present(t[i]) && F::is_table(t[i], l)) collect_pages(F::table_pa(t[i]), l - 1, out);
  }
  // f(pa) for every table page of the subtree at pa (entries at level l),
  // children before their parent; allocates nothing.
  template <class Fn>
  void for_each_page(u64 pa, int l, Fn&& f) const {
    const u64* t = table_at(pa);
    if (l > 0)
      for (int i = 0; i < kEntries; ++i)
        if (F::present(t[i]) && F::is_table(t[i], l)) for_each_page(F::table_pa(t[i]), l - 1, f);
    f(pa);
  }
  // Whether a leaf holds x without starting at x (unmapping from x, or up
  // to x - 1, would split it).
  bool crosses(u64 x) const { return x <= kIasMax && crosses_from(root_table(), kTop, x); }
  // The same below the table t at level l that holds x.
  bool crosses_from(const u64* t, int l, u64 x) const {
    for (;; --l) {
      const u64 e = t[index_at(x, l)];
      if (!F::present(e)) return false;
      if (!F::is_table(e, l)) return arith::pt_leaf_offset(x, static_cast<unsigned>(l)) != 0;
      t = table_at(F::table_pa(e));
    }
  }
  // crosses(x) || crosses(y), x and y <= kIasMax, in one walk down to the
  // table where their paths part (the two ends of an unmap mostly share all
  // but the last table).
  bool crosses_either(u64 x, u64 y) const {
    const u64* t = root_table();
    for (int l = kTop;; --l) {
      if (index_at(x, l) != index_at(y, l)) return crosses_from(t, l, x) || crosses_from(t, l, y);
      const u64 e = t[index_at(x, l)];
      if (!F::present(e)) return false;
      if (!F::is_table(e, l))
        return arith::pt_leaf_offset(x, static_cast<unsigned>(l)) != 0 ||
               arith::pt_leaf_offset(y, static_cast<unsigned>(l)) != 0;
      t = table_at(F::table_pa(e));
    }
  }

  u64 verify_table(u64 pa, int l, std::set<u64>& seen) const {
    const u64* t = table_at(pa);
    IOAS_CHECK(t, "table pointer outside the page memory");
    u64 leaves = 0;
    for (int i = 0; i < kEntries; ++i) {
      const u64 e = t[i];
      if (!F::present(e)) continue;
      if (F::is_table(e, l)) {
        IOAS_CHECK(l != 0, "table entry at level 0");
        IOAS_CHECK(seen.insert(F::table_pa(e)).second, "a table page reachable twice");
        leaves += verify_table(F::table_pa(e), l - 1, seen);
        continue;
      }
      IOAS_CHECK(l != kTop, "leaf in the top table");
      IOAS_CHECK(cfg_.pgsize_bitmap & level_size(l), "leaf of a size the table does not use");
      // Bit 12 of a large x86 leaf is PAT, not an address bit.
      IOAS_CHECK(F::leaf_aligned(e, l), "leaf output address not aligned to its size");
      ++leaves;
    }
    return leaves;
  }

  void image_table(u64 pa, int l, std::vector<u64>& out) const {
    const u64* t = table_at(pa);
    out.push_back(pa);
    out.insert(out.end(), t, t + kEntries);
    for (int i = 0; i < kEntries; ++i)
      if (l > 0 && F::present(t[i]) && F::is_table(t[i], l)) image_table(F::table_pa(t[i]), l - 1, out);
  }

  // The level-0 table that holds iova when it is the one last walked to,
  // else nullptr.
  u64* cached_leaf_table(u64 iova) const {
    return leaf_table_ && iova >= leaf_table_first_ && iova <= leaf_table_last_ ? leaf_table_ : nullptr;
  }
  void remember_leaf_table(u64 iova, u64* t) {
    const auto span = arith::block_of(iova, level_size(1));
    leaf_table_first_ = span.first;
    leaf_table_last_ = span.last;
    leaf_table_ = t;
  }
  void forget_leaf_table() { leaf_table_ = nullptr; }

  // The level-0 table that map and unmap walked to last, and the IOVAs its
  // entries map [leaf_table_first_, leaf_table_last_] (one level-1 entry's
  // span), so that the next map or unmap of a small range there starts in
  // it instead of at the root. Valid while that table is linked: whatever
  // unlinks or may free a table (an unmap of a whole table's span, a large
  // leaf replacing an empty table, merge_blocks, a rollback) forgets it;
  // map, unmap and split_blocks link tables but never move one. Only
  // operations (one at a time) read and write it, never translate.
  u64* leaf_table_ = nullptr;
  u64 leaf_table_first_ = 0;
  u64 leaf_table_last_ = 0;

  // What translate reads, off the line of the counters an operation writes
  // (stats_, the IOTLB's).
  alignas(64) const HeapPageMemory* heap_;  // mem_ when it is heap pages, else nullptr
  // heap_'s FastPages, or HeapPageMemory::kNoFastPages.
  const HeapPageMemory::FastPages* fast_;
  u64 root_;
  // The host view of the top table: a page's view never moves while the
  // memory holds it (PageMemory::page), and the top table lives as long as
  // the table.
  u64* root_host_;
};

}  // namespace

Result<std::unique_ptr<PageTable>> make_radix_table(const TableConfig& cfg, PageMemory& mem) {
  if (!pgsizes_allowed(cfg.format, cfg.pgsize_bitmap))
    return make_error(EINVAL, std::string(to_string(cfg.format)) + ": page sizes " + hex(cfg.pgsize_bitmap) +
                                  " must be " + pgsizes_rule(cfg.format));
  if (!cfg.aperture.valid() || cfg.aperture.last > kIasMax)
    return make_error(EINVAL, std::string(to_string(cfg.format)) + ": aperture " + to_string(cfg.aperture) +
                                  " beyond the input address size");
  auto root = mem.alloc_page();
  if (!root) return make_error(ENOMEM, "page table: out of memory for the top table");
  std::unique_ptr<PageTable> t;
  try {
    if (cfg.format == Format::kX86_64)
      t = std::make_unique<RadixTable<x86::Fmt>>(cfg, mem, *root);
    else
      t = std::make_unique<RadixTable<arm::Fmt>>(cfg, mem, *root);
  } catch (const std::bad_alloc&) {  // no table owns the top page yet
    mem.free_page(*root);
    throw;
  }
  return t;
}

}  // namespace ioas::hw
