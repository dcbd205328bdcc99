// impl/published_ranges.hpp: what `ranges` answers for an IOAS (the
// complement of its reserved union, and its iova_alignment), published by
// the IOAS's writer so that readers copy it without the IOAS's lock.
//
// One atomic word holds both: the address of an immutable version of the
// ranges (64-byte aligned) with log2 of the alignment in its low six bits.
// A reader loads the word once, so it sees the ranges and the alignment of
// one state. A change of the ranges publishes a new version, made before
// the change commits (it may throw; publishing cannot); a change of the
// alignment alone rewrites the low bits over the same version. A replaced
// version is freed once no reader may still be copying it (hw's
// ReaderEpochs, as for table pages).
//
// Writers: one at a time (the IOAS's lock, or the engine's world lock).
#pragma once

#include <atomic>
#include <bit>
#include <cstdint>
#include <memory>
#include <vector>

#include "ioas/arith.hpp"
#include "ioas/core/check.hpp"
#include "ioas/engine.hpp"
#include "memory.hpp"

namespace ioas::impl {

class PublishedRanges {
 public:
  struct alignas(64) Version {
    std::vector<Range> ranges;
    u64 retired_at = 0;
    Version* next = nullptr;  // in the retired list
  };

  // Publishes `first`, with alignment 1.
  explicit PublishedRanges(std::vector<Range> first) : word_(pack(new Version{std::move(first)}, 0)) {}
  // The writer's view of o (a copy is made with no reader of it).
  PublishedRanges(const PublishedRanges& o) : PublishedRanges(o.version().ranges) {
    publish_alignment(o.alignment());
  }
  PublishedRanges& operator=(const PublishedRanges&) = delete;
  ~PublishedRanges() {
    delete version_of(word());
    free_retired(true);
  }

  // A version holding `ranges`, for publish(): may throw std::bad_alloc.
  static std::unique_ptr<Version> make(std::vector<Range> ranges) {
    return std::unique_ptr<Version>(new Version{std::move(ranges)});
  }
  // The writer's side; neither allocates.
  void publish(std::unique_ptr<Version> v, u64 alignment) noexcept {
    IOAS_CHECK(std::has_single_bit(alignment), "iova_alignment is not a power of two");
    const std::uintptr_t old = word();
    word_.store(pack(v.release(), static_cast<unsigned>(arith::log2_pow2(alignment))),
                std::memory_order_release);
    Version* gone = version_of(old);
    gone->retired_at = epochs_.epoch();
    gone->next = retired_;
    retired_ = gone;
    reclaim();
  }
  void publish_alignment(u64 alignment) noexcept {
    IOAS_CHECK(std::has_single_bit(alignment), "iova_alignment is not a power of two");
    word_.store(pack(version_of(word()), static_cast<unsigned>(arith::log2_pow2(alignment))),
                std::memory_order_release);
  }
  const Version& version() const { return *version_of(word()); }
  u64 alignment() const { return arith::page_size(u64{0}, shift_of(word())); }

  // A reader's copy, beside the writer.
  IovaRanges read() const {
    const unsigned token = epochs_.enter();
    struct Exit {
      hw::ReaderEpochs& e;
      unsigned t;
      ~Exit() { e.exit(t); }
    } exit{epochs_, token};
    const std::uintptr_t w = word_.load(std::memory_order_acquire);
    return IovaRanges{version_of(w)->ranges, arith::page_size(u64{0}, shift_of(w))};
  }

 private:
  static constexpr std::uintptr_t kShiftBits = 63;  // the low six bits
  static_assert(alignof(Version) > kShiftBits);
  static std::uintptr_t pack(Version* v, unsigned shift) { return reinterpret_cast<std::uintptr_t>(v) | shift; }
  static Version* version_of(std::uintptr_t w) { return reinterpret_cast<Version*>(w & ~kShiftBits); }
  static unsigned shift_of(std::uintptr_t w) { return static_cast<unsigned>(w & kShiftBits); }
  std::uintptr_t word() const { return word_.load(std::memory_order_relaxed); }

  // Frees the retired versions no reader can be copying.
  void reclaim() noexcept {
    if (retired_) epochs_.advance_for(retired_->retired_at);
    free_retired(false);
  }
  void free_retired(bool all) noexcept {
    for (Version** p = &retired_; *p;) {
      if (all || epochs_.reusable((*p)->retired_at)) {
        Version* v = *p;
        *p = v->next;
        delete v;
      } else {
        p = &(*p)->next;
      }
    }
  }

  std::atomic<std::uintptr_t> word_;
  Version* retired_ = nullptr;  // newest first
  mutable hw::ReaderEpochs epochs_;
};

}  // namespace ioas::impl
