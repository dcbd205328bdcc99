// hw/vfio/vfio_backend.cpp: see vfio_backend.hpp for what each call does in
// the kernel and why.
#include "vfio_backend.hpp"

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <utility>

#include "ioas/arith.hpp"
#include "ioas/core/check.hpp"
#include "ioas/core/text.hpp"

namespace ioas::vfio {
namespace {

// The state the tables of one factory share: the log, and which container
// backs which live domain.
struct Shared {
  std::shared_ptr<KernelLog> log;
  std::map<const DmaMapper*, std::string> busy;  // container -> its domain
};

// One kernel mapping (a vfio_dma): IOVA range, user address of its first
// byte, access.
struct Piece {
  Range iova;
  u64 uaddr = 0;
  Prot prot = Prot::kNone;
};

// A domain's table: the mirror (the engine's built-in table) plus the kernel
// mappings that carry it out.
//
// Invariant (verify()): `pieces_` (what the kernel holds) and `lost_` (what
// it lost in a failed cut) are disjoint and together tile the mirror's
// mappings exactly: every piece lies inside one mirror mapping, with that
// mapping's prot and the user address at the same offset, and every byte of
// every mirror mapping is in exactly one piece or lost range. A mirror
// mapping is one piece, or several after a cut that was undone (unsplit, or
// the mirror's own split failing after the kernel's: the kernel keeps its
// pieces). `leaked_` holds kernel mappings whose unmap the kernel refused:
// the mirror no longer has them.
class VfioTable final : public IoPageTable {
 public:
  VfioTable(std::shared_ptr<Shared> shared, std::shared_ptr<DmaMapper> kernel, std::string dom,
            std::unique_ptr<IoPageTable> mirror)
      : shared_(std::move(shared)), k_(std::move(kernel)), dom_(std::move(dom)), mirror_(std::move(mirror)) {}

  ~VfioTable() override {
    // One unmap per run of adjacent pieces: each covers whole kernel
    // mappings only, which type1v2 accepts.
    auto it = pieces_.begin();
    while (it != pieces_.end()) {
      Range run = it->second.iova;
      for (++it; it != pieces_.end() && run.precedes_adjacent(it->second.iova); ++it) run.last = it->second.iova.last;
      unmap_or_report(run, "when the domain went");
    }
    for (const Piece& p : leaked_) unmap_or_report(p.iova, "again (its first unmap was refused)");
    shared_->busy.erase(k_.get());
  }

  Status map(Range iova, u64 pa, u64 uaddr, Prot prot, u64 pgsizes) override {
    // The mirror first: its refusals cost no ioctl, and its undo cannot fail.
    if (Status st = mirror_->map(iova, pa, uaddr, prot, pgsizes); !st.ok()) return st;
    const Piece p{iova, uaddr, prot};
    if (Status st = kmap(p); !st.ok()) {
      mirror_->unmap(iova);
      mirror_->flush_iotlb();
      return st;
    }
    pieces_.emplace(iova.start, p);
    return ok_status();
  }

  void unmap(Range iova) override {
    u64 held = 0;
    std::vector<Piece> gone;
    for (auto it = pieces_.lower_bound(iova.start); it != pieces_.end() && it->first <= iova.last;) {
      IOAS_CHECK(iova.contains(it->second.iova),
                 "unmap " + to_string(iova) + ": kernel piece " + to_string(it->second.iova) + " sticks out");
      held += it->second.iova.length();
      gone.push_back(it->second);
      it = pieces_.erase(it);
    }
    for (auto it = lost_.lower_bound(iova.start); it != lost_.end() && it->first <= iova.last;) it = lost_.erase(it);
    if (held) {
      auto n = kunmap(iova);
      if (!n.ok()) {
        report("unmap " + to_string(iova) + ": the kernel refused (" + to_string(n.error()) +
               "); the device may still reach it");
        leaked_.insert(leaked_.end(), gone.begin(), gone.end());
      } else if (*n != held) {
        report("unmap " + to_string(iova) + ": the kernel unmapped " + hex(*n) + " bytes, not " + hex(held));
      }
    }
    mirror_->unmap(iova);
  }

  Status split(u64 last) override {
    // The kernel first: its refusal leaves the mirror untouched, and when the
    // mirror then fails (ENOMEM) the kernel may keep its two pieces, which
    // give the device exactly the translations of the whole.
    const Piece* held = holding(pieces_, last);
    IOAS_CHECK(held || holding(lost_, last),
               "cut at " + hex(arith::range_after(last).next) + ": domain " + dom_ + " has no mapping there");
    if (held && held->iova.last != last) {
      if (Status st = kernel_cut(*held, last); !st.ok()) return st;
    }
    if (Status st = mirror_->split(last); !st.ok()) return st;
    if (const Piece* l = holding(lost_, last); l && l->iova.last != last) {
      // The kernel holds nothing here: only the bookkeeping is cut.
      const auto [left, right] = cut(*l, last);
      lost_[left.iova.start] = left;
      lost_.emplace(right.iova.start, right);
    }
    return ok_status();
  }

  // The kernel keeps its pieces (see the header).
  void unsplit(u64 last) override { mirror_->unsplit(last); }

  Status relayout(u64 pgsizes) override { return mirror_->relayout(pgsizes); }
  std::optional<Translation> translate(u64 iova) const override { return mirror_->translate(iova); }
  DmaOutcome dma(DmaDir dir, Range iova) override { return mirror_->dma(dir, iova); }
  std::vector<Range> read_dirty(Range iova, u64 pgsize, bool keep) override {
    return mirror_->read_dirty(iova, pgsize, keep);
  }
  void clear_dirty() override { mirror_->clear_dirty(); }
  void leaves(Range r, const std::function<void(const LeafInfo&)>& f) const override { mirror_->leaves(r, f); }
  void flush_iotlb() override { mirror_->flush_iotlb(); }
  u64 flushes() const override { return mirror_->flushes(); }
  u64 table_pages() const override { return mirror_->table_pages(); }
  std::size_t mapping_count() const override { return mirror_->mapping_count(); }
  void for_each_mapping(const std::function<void(const PtMapping&)>& f) const override {
    mirror_->for_each_mapping(f);
  }

  std::size_t verify() const override {
    const std::size_t n = mirror_->verify();
    std::map<u64, std::pair<Piece, bool>> all;  // start -> (piece, lost)
    for (const auto& [s, p] : pieces_) all.emplace(s, std::pair{p, false});
    for (const auto& [s, p] : lost_)
      IOAS_CHECK(all.emplace(s, std::pair{p, true}).second, "verify: " + to_string(p.iova) + " both held and lost");
    auto it = all.begin();
    mirror_->for_each_mapping([&](const PtMapping& m) {
      u64 at = m.iova.start;
      for (;;) {
        IOAS_CHECK(it != all.end() && it->first == at,
                   "verify: domain " + dom_ + ": the kernel holds nothing at " + hex(at) + " of mapping " +
                 to_string(m.iova));
        const Piece& p = it->second.first;
        IOAS_CHECK(m.iova.contains(p.iova) && p.prot == m.prot && p.uaddr == arith::run_addr(m.uaddr, m.iova.start, p.iova.start),
                   "verify: domain " + dom_ + ": kernel piece " + to_string(p.iova) + " (uaddr " + hex(p.uaddr) + " " +
                 ioas::to_string(p.prot) + ") does not match mapping " + to_string(m.iova) + " (uaddr " +
                 hex(m.uaddr) + " " + ioas::to_string(m.prot) + ")");
        ++it;
        if (p.iova.last == m.iova.last) break;
        at = arith::range_after(p.iova.last).next;
      }
    });
    IOAS_CHECK(it == all.end(),
               "verify: domain " + dom_ + ": kernel piece " + to_string(it->second.first.iova) + " has no mapping");
    return n;
  }

 private:
  Status kmap(const Piece& p) {
    ++shared_->log->map_calls;
    Status st = k_->map_dma(p.iova.start, p.uaddr, p.iova.length(), p.prot);
    if (!st.ok()) {
      ++shared_->log->refused;
      return make_error(st.code(), "kernel: " + st.error().message);
    }
    return ok_status();
  }

  Result<u64> kunmap(Range r) {
    ++shared_->log->unmap_calls;
    auto n = k_->unmap_dma(r.start, r.length());
    if (!n.ok()) {
      ++shared_->log->refused;
      return make_error(n.code(), "kernel: " + n.error().message);
    }
    return *n;
  }

  // Replaces the kernel mapping `whole` by its pieces ending at `last` and
  // starting after it: unmap, map, map. From the first ioctl to the last,
  // DMA to `whole` faults. On a failure the original is mapped again and the
  // errno returned; pieces_/lost_ say what the kernel holds in every case.
  Status kernel_cut(Piece whole, u64 last) {
    const auto [left, right] = cut(whole, last);
    auto fail = [&](Error e) -> Status {
      e.message = "cut at " + hex(arith::range_after(last).next) + ": " + e.message;
      return e;
    };
    auto n = kunmap(whole.iova);
    if (!n.ok()) return fail(n.error());  // type1 checks before it removes anything: unchanged
    pieces_.erase(whole.iova.start);
    if (*n != whole.iova.length()) {
      lost_.emplace(whole.iova.start, whole);
      report("cut: unmap of " + to_string(whole.iova) + " took " + hex(*n) + " bytes; the range is lost in the kernel");
      return fail(make_error(EIO, "the kernel unmapped " + hex(*n) + " bytes of " + to_string(whole.iova)));
    }
    if (Status st = kmap(left); !st.ok()) {
      restore(whole);
      return fail(st.error());
    }
    if (Status st = kmap(right); !st.ok()) {
      auto u = kunmap(left.iova);
      if (!u.ok() || *u != left.iova.length()) {
        // The kernel keeps (some of) the left piece: say so, and keep the
        // bookkeeping true (left held, right lost).
        pieces_.emplace(left.iova.start, left);
        lost_.emplace(right.iova.start, right);
        report("cut: undoing the left piece " + to_string(left.iova) + " failed" +
               (u.ok() ? "" : " (" + to_string(u.error()) + ")") + "; " + to_string(right.iova) +
               " is lost in the kernel");
        return fail(st.error());
      }
      restore(whole);
      return fail(st.error());
    }
    pieces_.emplace(left.iova.start, left);
    pieces_.emplace(right.iova.start, right);
    return ok_status();
  }

  static const Piece* holding(const std::map<u64, Piece>& m, u64 x) {
    auto it = m.upper_bound(x);
    if (it == m.begin()) return nullptr;
    --it;
    return it->second.iova.contains(x) ? &it->second : nullptr;
  }

  // p's pieces ending at `last` and starting after it.
  static std::pair<Piece, Piece> cut(const Piece& p, u64 last) {
    const u64 right = arith::range_after(last).next;
    return {Piece{Range{p.iova.start, last}, p.uaddr, p.prot},
            Piece{Range{right, p.iova.last}, arith::run_addr(p.uaddr, p.iova.start, right), p.prot}};
  }

  // Maps `whole` again after a failed cut; when even that fails the range
  // is lost in the kernel.
  void restore(const Piece& whole) {
    Status st = kmap(whole);
    if (st.ok()) {
      pieces_.emplace(whole.iova.start, whole);
      return;
    }
    lost_.emplace(whole.iova.start, whole);
    report("cut: restoring " + to_string(whole.iova) + " failed (" + to_string(st.error()) +
           "); the range is lost in the kernel (DMA there faults)");
  }

  void unmap_or_report(Range r, const std::string& when) {
    auto n = kunmap(r);
    if (!n.ok()) report("unmap " + to_string(r) + " " + when + ": " + to_string(n.error()));
    else if (*n != r.length())
      report("unmap " + to_string(r) + " " + when + ": the kernel unmapped " + hex(*n) + " bytes");
  }

  void report(const std::string& what) { shared_->log->problems.push_back("domain " + dom_ + ": " + what); }

  std::shared_ptr<Shared> shared_;
  std::shared_ptr<DmaMapper> k_;
  std::string dom_;
  std::unique_ptr<IoPageTable> mirror_;
  std::map<u64, Piece> pieces_;  // by iova.start
  std::map<u64, Piece> lost_;    // by iova.start
  std::vector<Piece> leaked_;
};

}  // namespace

TableFactory table_factory(MapperFor pick, std::shared_ptr<KernelLog> log) {
  auto shared = std::make_shared<Shared>();
  shared->log = log ? std::move(log) : std::make_shared<KernelLog>();
  return [shared, pick = std::move(pick)](const DomainConfig& c,
                                          const std::function<Result<std::unique_ptr<IoPageTable>>()>& builtin)
             -> Result<std::unique_ptr<IoPageTable>> {
    const std::string what = "domain " + c.name;
    std::shared_ptr<DmaMapper> k = pick ? pick(c) : nullptr;
    if (!k) return make_error(ENODEV, what + ": no VFIO container for it");
    if (auto it = shared->busy.find(k.get()); it != shared->busy.end())
      return make_error(EBUSY, what + ": its VFIO container already backs domain " + it->second +
                                   " (one container per domain)");
    auto info = k->info();
    if (!info.ok()) return make_error(info.code(), what + ": " + info.error().message);
    const u64 kmin = arith::lowest_bit(info->pgsizes);
    const u64 cmin = arith::lowest_bit(c.pgsize_bitmap);
    if (kmin && cmin < kmin)
      return make_error(EINVAL, what + ": smallest page size " + hex(cmin) + " is below the container's " + hex(kmin) +
                                    " (type1 maps only in its units)");
    if (info->has_iova_ranges && !info->iova_ranges.empty()) {
      const Range hull{info->iova_ranges.front().start, info->iova_ranges.back().last};
      if (!hull.contains(c.aperture))
        return make_error(EINVAL, what + ": aperture " + to_string(c.aperture) +
                                      " reaches beyond the container's IOVA ranges " + to_string(info->iova_ranges));
    }
    auto mirror = builtin();
    if (!mirror.ok()) return mirror.error();
    shared->busy.emplace(k.get(), c.name);
    return std::unique_ptr<IoPageTable>(new VfioTable(shared, std::move(k), c.name, std::move(mirror).value()));
  };
}

TableFactory table_factory(std::shared_ptr<DmaMapper> kernel, std::shared_ptr<KernelLog> log) {
  return table_factory([kernel = std::move(kernel)](const DomainConfig&) { return kernel; }, std::move(log));
}

TableFactory table_factory(Container& container, std::shared_ptr<KernelLog> log) {
  return table_factory(std::shared_ptr<DmaMapper>(std::make_shared<ContainerMapper>(container)), std::move(log));
}

}  // namespace ioas::vfio
