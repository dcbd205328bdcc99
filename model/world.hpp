// model/world.hpp: the model's state, for the model and its own tests only
// (not a public header). Plain records; every relation is by name.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "ioas/engine.hpp"

namespace ioas::model {

struct MemRec {
  MemorySource src;
  u64 use_count = 0;  // maintained by every operation; invariant 8 recounts it
};

struct AreaRec {
  Range iova;
  Prot prot = Prot::kRead;
  std::string source;
  u64 offset = 0;  // byte offset of iova.start in the source
  // Whether the area's pages are writable: the map that made them asked for
  // write; copy and cut carry it (ModeRules::copy_write_needs_writable_pages).
  bool pages_writable = false;
};

struct PinRec {
  std::uint32_t id = 0;
  Range iova;
  bool write = false;
  bool release = true;
  std::vector<std::string> sources;  // distinct sources of the covered areas
};

struct ResvRec {
  Range range;
  Owner owner;
};

struct DomainRec {
  std::string name;
  std::string ioas;
  Format fmt = Format::kX86_64;
  Range aperture;
  u64 pgsize_bitmap = 0;
  std::set<std::string> devices;
  DirtyMode dirty = DirtyMode::kOff;
  // The dirty bytes: sorted, non-overlapping, a union of whole leaves, all
  // inside areas of the IOAS.
  std::vector<Range> dirty_bytes;
};

struct DeviceRec {
  std::string name;
  std::string domain;
};

struct IoasRec {
  std::string name;
  IoasOptions options;
  u64 iova_alignment = 1;
  std::vector<AreaRec> areas;      // sorted by iova.start, non-overlapping
  std::vector<ResvRec> reserved;   // per owner sorted and merged
  std::vector<Range> allowed;      // sorted, non-overlapping
  std::vector<PinRec> pins;        // sorted by id
  std::uint32_t next_pin_id = 1;
};

struct World {
  std::map<std::string, IoasRec, std::less<>> ioases;
  std::map<std::string, MemRec, std::less<>> memories;
  std::map<std::string, DomainRec, std::less<>> domains;
  std::map<std::string, DeviceRec, std::less<>> devices;
};

// The SPEC invariants over a whole world, in SPEC order; empty when all hold.
std::vector<Violation> verify(const World& w);

// The leaf of domain `d` that holds byte `y` of area `a` (see model.cpp).
Range leaf_of(const World& w, const DomainRec& d, const AreaRec& a, u64 y);

}  // namespace ioas::model
