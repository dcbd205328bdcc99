// uapi/fuzz/iommufd_fuzz.cpp: libFuzzer target for the userspace iommufd
// layer (ioas/iommufd.h) through its C entry points.
//
// An input is a sequence of calls on a fresh context. Each call is an ioctl
// (a request number of the table mostly, else a neighbour of one (another
// number, direction or size encoding) or garbage; a struct whose size,
// flags, reserved bytes, ids, IOVAs, lengths and user pointers are drawn
// from the input, ids from those the context returned, user pointers into
// an arena the input controls or to addresses that are never mapped), a
// write into the arena, or the release of an access descriptor.
//
// Every call runs on two contexts in lockstep, A then B, from the same arena
// contents. Besides "no crash, no sanitizer report, no leak, no hang":
//   - a refused call answers -1 with errno, and a message;
//   - its errno is the kernel's for what is wrong, where the argument checks
//     that come first decide it (the request, the struct's size and tail,
//     reserved fields, unknown flags, overflow; see expected_errno), and one
//     of the errnos that ioctl can return otherwise;
//   - a refused call changes nothing: the digest of the context (the layer's
//     object table, and the engine's snapshots, ranges and memories) is the
//     same before and after. The one exception is the kernel's own: an
//     IOMMU_IOAS_UNMAP that stops part way keeps the whole areas before the
//     stop unmapped (SPEC "Kernel mode"), and nothing else changes;
//   - every call is deterministic: B answers as A did, writes the same bytes
//     into the arena, and ends in the same digest.
// A breach prints what broke and aborts, so libFuzzer keeps the input.
//
// The same entry point runs in the ordinary build on every kept input of
// uapi/fuzz/regressions and every seed (uapi/tests/fuzz_regressions_test.cpp).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "ioas/iommufd.h"
#include "ioas/uapi/iommufd.h"
#include "ioas/uapi/iommufd_test.h"
#include "context_state.hpp"
#include "property.hpp"

namespace ioas::uapi::fuzz {
namespace {

using u8 = std::uint8_t;
using u32 = std::uint32_t;
using u64 = std::uint64_t;

constexpr u64 kPage = 4096;
constexpr u64 kUlongMax = ~u64{0};

[[noreturn]] void broken(const std::string& what) { ::ioas::fuzz::property_broken("iommufd_fuzz", what); }

// The input, read front to back; zeros once it is used up.
class Input {
 public:
  Input(const u8* data, size_t size) : p_(data), n_(size) {}
  bool empty() const { return n_ == 0; }
  u8 byte() {
    if (!n_) return 0;
    --n_;
    return *p_++;
  }
  u64 bytes(int count) {
    u64 v = 0;
    for (int i = 0; i != count; ++i) v |= u64{byte()} << (8 * i);
    return v;
  }
  u32 u32v() { return static_cast<u32>(bytes(4)); }
  u64 u64v() { return bytes(8); }

 private:
  const u8* p_;
  size_t n_;
};

// ---- user memory ----
// kArenaPages pages between two PROT_NONE guard pages, mapped once for the
// process; every input starts from the same contents: zeros, and at
// kRangesOff an array of valid, sorted, disjoint iommu_iova_range (for
// IOMMU_IOAS_ALLOW_IOVAS). Page kReadOnlyPage is read-only while the layer
// runs (an answer written there fails as copy_to_user does). The struct of
// each ioctl is written at kArgOff (room for a 4 KiB struct), in the
// read-only page, or where it runs into the guard page.
constexpr size_t kArenaPages = 16;
constexpr size_t kArenaSize = kArenaPages * kPage;
constexpr size_t kRangesOff = 0;
constexpr size_t kReadOnlyPage = kArenaPages - 2;
constexpr size_t kArgOff = kArenaSize - kPage;

struct Arena {
  Arena() {
    void* p = mmap(nullptr, kArenaSize + 2 * kPage, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) broken("cannot map the arena");
    base = static_cast<u8*>(p) + kPage;
    if (mprotect(base, kArenaSize, PROT_READ | PROT_WRITE) != 0) broken("cannot open the arena");
  }
  void reset() {
    std::memset(base, 0, kArenaSize);
    for (u64 i = 0; i != 64; ++i) {
      iommu_iova_range r{(i + 1) << 24, ((i + 1) << 24) + (u64{1} << 23) - 1};
      std::memcpy(base + kRangesOff + i * sizeof(r), &r, sizeof(r));
    }
  }
  // The read-only page while the layer runs; writable for the fuzzer.
  void seal(bool on) {
    if (mprotect(base + kReadOnlyPage * kPage, kPage, on ? PROT_READ : PROT_READ | PROT_WRITE) != 0)
      broken("cannot change the read-only page");
  }
  u64 va(size_t off) const { return reinterpret_cast<u64>(base) + off; }
  u64 guard() const { return va(kArenaSize); }
  u8* base = nullptr;
};

Arena& arena() {
  static Arena a;  // never unmapped: the layer may keep user addresses into it
  return a;
}

// A user pointer: mostly into the arena (page aligned or not, or so that
// the object runs into the guard page), else one that is never readable:
// 0, below mmap_min_addr, a kernel address, the guard page, garbage.
u64 user_pointer(Input& in, const Arena& a) {
  u8 sel = in.byte();
  switch (sel % 16) {
    case 0: return 0;
    case 1: return 0x1000;
    case 2: return 0xffff800000000000ull;
    case 3: return a.guard();
    case 4: return a.guard() - 1 - (in.byte() % 64);
    case 5: return in.u64v();
    case 6: case 7: case 8: return a.va((in.byte() % kArenaPages) * kPage);
    default: return a.va(in.bytes(2) % kArenaSize);
  }
}

// ---- what a context returned, to draw ids from ----
struct Known {
  std::vector<u32> ids;      // object ids the layer answered with
  std::vector<u64> iovas;    // IOVAs it placed at
  std::vector<u32> items;    // access item ids
  std::vector<int> fds[2];   // access descriptors, per context
};

void remember(std::vector<u32>& v, u32 x) {
  if (std::find(v.begin(), v.end(), x) == v.end() && v.size() < 64) v.push_back(x);
}

// ---- the structs, as the kernel's ioctl table (main.c) states them ----
enum class Kind : u8 {
  kId,        // an object id
  kFd,        // an access descriptor (IOMMU_TEST_CMD's id for the access ops)
  kFlags,     // a flags word
  kReserved,  // must be 0
  kUptr,      // a user pointer
  kIova,
  kLen,
  kNum,       // a count, option, op, item id, type
  kOut,       // an output field
};
struct Field {
  u32 off;
  u32 width;
  Kind kind;
};
#define F(st, field, kind) Field{offsetof(st, field), sizeof(st::field), Kind::kind}

struct Layout {
  unsigned long request;
  const char* name;
  u32 size;      // sizeof the struct (Linux 6.12)
  u32 min_size;  // offsetofend of its last mandatory field (main.c's IOCTL_OP)
  std::vector<Field> fields;
  // What the ioctl may answer once the generic checks pass (ENOMEM and
  // EFAULT always may); empty: anything.
  std::vector<int> errnos;
};

const std::vector<Layout>& layouts() {
  static const std::vector<Layout> table = {
      {IOMMU_DESTROY, "IOMMU_DESTROY", 8, 8, {F(iommu_destroy, id, kId)}, {ENOENT, EBUSY}},
      {IOMMU_IOAS_ALLOC, "IOMMU_IOAS_ALLOC", 12, 12,
       {F(iommu_ioas_alloc, flags, kFlags), F(iommu_ioas_alloc, out_ioas_id, kOut)}, {EOPNOTSUPP}},
      {IOMMU_IOAS_ALLOW_IOVAS, "IOMMU_IOAS_ALLOW_IOVAS", 24, 24,
       {F(iommu_ioas_allow_iovas, ioas_id, kId), F(iommu_ioas_allow_iovas, num_iovas, kNum),
        F(iommu_ioas_allow_iovas, __reserved, kReserved), F(iommu_ioas_allow_iovas, allowed_iovas, kUptr)},
       {EOPNOTSUPP, ENOENT, EINVAL, EBUSY, EADDRINUSE}},
      {IOMMU_IOAS_COPY, "IOMMU_IOAS_COPY", 40, 40,
       {F(iommu_ioas_copy, flags, kFlags), F(iommu_ioas_copy, dst_ioas_id, kId), F(iommu_ioas_copy, src_ioas_id, kId),
        F(iommu_ioas_copy, length, kLen), F(iommu_ioas_copy, dst_iova, kIova), F(iommu_ioas_copy, src_iova, kIova)},
       {EOPNOTSUPP, EOVERFLOW, EINVAL, ENOENT, EEXIST, ENOSPC, EPERM}},
      {IOMMU_IOAS_IOVA_RANGES, "IOMMU_IOAS_IOVA_RANGES", 32, 32,
       {F(iommu_ioas_iova_ranges, ioas_id, kId), F(iommu_ioas_iova_ranges, num_iovas, kNum),
        F(iommu_ioas_iova_ranges, __reserved, kReserved), F(iommu_ioas_iova_ranges, allowed_iovas, kUptr),
        F(iommu_ioas_iova_ranges, out_iova_alignment, kOut)},
       {EOPNOTSUPP, ENOENT, EMSGSIZE}},
      {IOMMU_IOAS_MAP, "IOMMU_IOAS_MAP", 40, 40,
       {F(iommu_ioas_map, flags, kFlags), F(iommu_ioas_map, ioas_id, kId), F(iommu_ioas_map, __reserved, kReserved),
        F(iommu_ioas_map, user_va, kUptr), F(iommu_ioas_map, length, kLen), F(iommu_ioas_map, iova, kIova)},
       {EOPNOTSUPP, EOVERFLOW, EINVAL, ENOENT, EEXIST, ENOSPC}},
      {IOMMU_IOAS_UNMAP, "IOMMU_IOAS_UNMAP", 24, 24,
       {F(iommu_ioas_unmap, ioas_id, kId), F(iommu_ioas_unmap, iova, kIova), F(iommu_ioas_unmap, length, kLen)},
       {ENOENT, EOVERFLOW, EINVAL, EBUSY}},
      {IOMMU_OPTION, "IOMMU_OPTION", 24, 24,
       {F(iommu_option, option_id, kNum), F(iommu_option, op, kNum), F(iommu_option, __reserved, kReserved),
        F(iommu_option, object_id, kId), F(iommu_option, val64, kNum)},
       {EOPNOTSUPP, EPERM, EBUSY, EINVAL, ENOENT, ENOTTY}},
      {IOMMU_VFIO_IOAS, "IOMMU_VFIO_IOAS", 12, 12,
       {F(iommu_vfio_ioas, ioas_id, kId), F(iommu_vfio_ioas, op, kNum), F(iommu_vfio_ioas, __reserved, kReserved)},
       {EOPNOTSUPP, ENODEV, ENOENT}},
      {IOMMU_HWPT_ALLOC, "IOMMU_HWPT_ALLOC", 48, 24,
       {F(iommu_hwpt_alloc, flags, kFlags), F(iommu_hwpt_alloc, dev_id, kId), F(iommu_hwpt_alloc, pt_id, kId),
        F(iommu_hwpt_alloc, out_hwpt_id, kOut), F(iommu_hwpt_alloc, __reserved, kReserved),
        F(iommu_hwpt_alloc, data_type, kNum), F(iommu_hwpt_alloc, data_len, kNum),
        F(iommu_hwpt_alloc, data_uptr, kUptr), F(iommu_hwpt_alloc, fault_id, kId),
        F(iommu_hwpt_alloc, __reserved2, kReserved)},
       {}},
      {IOMMU_GET_HW_INFO, "IOMMU_GET_HW_INFO", 40, 32,
       {F(iommu_hw_info, flags, kFlags), F(iommu_hw_info, dev_id, kId), F(iommu_hw_info, data_len, kNum),
        F(iommu_hw_info, data_uptr, kUptr), F(iommu_hw_info, in_data_type, kNum),
        Field{offsetof(iommu_hw_info, __reserved), 1, Kind::kReserved},
        Field{offsetof(iommu_hw_info, __reserved) + 2, 1, Kind::kReserved}},
       {EOPNOTSUPP, ENOENT}},
      {IOMMU_HWPT_SET_DIRTY_TRACKING, "IOMMU_HWPT_SET_DIRTY_TRACKING", 16, 16,
       {F(iommu_hwpt_set_dirty_tracking, flags, kFlags), F(iommu_hwpt_set_dirty_tracking, hwpt_id, kId),
        F(iommu_hwpt_set_dirty_tracking, __reserved, kReserved)},
       {}},
      {IOMMU_HWPT_GET_DIRTY_BITMAP, "IOMMU_HWPT_GET_DIRTY_BITMAP", 48, 48,
       {F(iommu_hwpt_get_dirty_bitmap, hwpt_id, kId), F(iommu_hwpt_get_dirty_bitmap, flags, kFlags),
        F(iommu_hwpt_get_dirty_bitmap, __reserved, kReserved), F(iommu_hwpt_get_dirty_bitmap, iova, kIova),
        F(iommu_hwpt_get_dirty_bitmap, length, kLen), F(iommu_hwpt_get_dirty_bitmap, page_size, kLen),
        F(iommu_hwpt_get_dirty_bitmap, data, kUptr)},
       {}},
      {IOMMU_HWPT_INVALIDATE, "IOMMU_HWPT_INVALIDATE", 32, 32,
       {F(iommu_hwpt_invalidate, hwpt_id, kId), F(iommu_hwpt_invalidate, data_uptr, kUptr),
        F(iommu_hwpt_invalidate, data_type, kNum), F(iommu_hwpt_invalidate, entry_len, kNum),
        F(iommu_hwpt_invalidate, entry_num, kNum), F(iommu_hwpt_invalidate, __reserved, kReserved)},
       {}},
      {IOMMU_FAULT_QUEUE_ALLOC, "IOMMU_FAULT_QUEUE_ALLOC", 16, 16,
       {F(iommu_fault_alloc, flags, kFlags), F(iommu_fault_alloc, out_fault_id, kOut),
        F(iommu_fault_alloc, out_fault_fd, kOut)},
       {}},
      // The variant fields of IOMMU_TEST_CMD are those of test_fields(op).
      {IOMMU_TEST_CMD, "IOMMU_TEST_CMD", 72, 68, {}, {}},
  };
  return table;
}

const Layout* layout_of(unsigned long request) {
  for (const Layout& l : layouts())
    if (l.request == request) return &l;
  return nullptr;
}

// IOMMU_TEST_CMD's fields after op: id (an access descriptor for the access
// ops), __reserved, and the op's member of the union.
std::vector<Field> test_fields(u32 op) {
  using C = iommu_test_cmd;
  const bool access = op == IOMMU_TEST_OP_DESTROY_ACCESS_PAGES || op == IOMMU_TEST_OP_ACCESS_PAGES ||
                      op == IOMMU_TEST_OP_ACCESS_RW || op == IOMMU_TEST_OP_ACCESS_REPLACE_IOAS;
  std::vector<Field> f{Field{offsetof(C, id), 4, access ? Kind::kFd : Kind::kId}, F(C, __reserved, kReserved)};
  auto add = [&](std::initializer_list<Field> more) { f.insert(f.end(), more); };
  switch (op) {
    case IOMMU_TEST_OP_ADD_RESERVED: add({F(C, add_reserved.start, kIova), F(C, add_reserved.length, kLen)}); break;
    case IOMMU_TEST_OP_MOCK_DOMAIN: break;
    case IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS: add({F(C, mock_domain_flags.dev_flags, kFlags)}); break;
    case IOMMU_TEST_OP_MD_CHECK_MAP:
      add({F(C, check_map.iova, kIova), F(C, check_map.length, kLen), F(C, check_map.uptr, kUptr)});
      break;
    case IOMMU_TEST_OP_MD_CHECK_REFS:
      add({F(C, check_refs.length, kLen), F(C, check_refs.uptr, kUptr), F(C, check_refs.refs, kNum)});
      break;
    case IOMMU_TEST_OP_CREATE_ACCESS: add({F(C, create_access.flags, kFlags)}); break;
    case IOMMU_TEST_OP_DESTROY_ACCESS_PAGES: add({F(C, destroy_access_pages.access_pages_id, kNum)}); break;
    case IOMMU_TEST_OP_ACCESS_PAGES:
      add({F(C, access_pages.flags, kFlags), F(C, access_pages.iova, kIova), F(C, access_pages.length, kLen),
           F(C, access_pages.uptr, kUptr)});
      break;
    case IOMMU_TEST_OP_ACCESS_RW:
      add({F(C, access_rw.iova, kIova), F(C, access_rw.length, kLen), F(C, access_rw.uptr, kUptr),
           F(C, access_rw.flags, kFlags)});
      break;
    case IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT: add({F(C, memory_limit.limit, kNum)}); break;
    case IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: add({F(C, mock_domain_replace.pt_id, kId)}); break;
    case IOMMU_TEST_OP_ACCESS_REPLACE_IOAS: add({F(C, access_replace_ioas.ioas_id, kId)}); break;
    default:
      add({F(C, dirty.flags, kFlags), F(C, dirty.iova, kIova), F(C, dirty.length, kLen), F(C, dirty.page_size, kLen),
           F(C, dirty.uptr, kUptr)});
      break;
  }
  return f;
}
#undef F

// A value for a field, biased toward what the layer can accept: ids it
// returned, page-aligned IOVAs in the mock aperture, short page multiples.
u64 draw(Input& in, Kind kind, u32 width, const Known& k, const Arena& a) {
  const u64 mask = width >= 8 ? kUlongMax : (u64{1} << (8 * width)) - 1;
  if (kind == Kind::kUptr) return user_pointer(in, a) & mask;
  const u8 sel = in.byte();
  switch (kind) {
    case Kind::kId:
    case Kind::kFd:  // a descriptor is drawn by draw_fd; this is its raw form
      if (sel % 8 < 5 && !k.ids.empty()) return k.ids[in.byte() % k.ids.size()];
      if (sel % 8 < 7) return (sel >> 3) & 15;
      return in.bytes(width);
    case Kind::kFlags:
      if (sel % 8 < 6) return in.byte() & 7;
      if (sel % 8 == 6) return (u64{1} << (in.byte() % (8 * width))) & mask;
      return in.bytes(width);
    case Kind::kReserved:
      return sel % 16 == 0 ? (in.bytes(width) | 1) & mask : 0;
    case Kind::kUptr:
      break;  // above
    case Kind::kIova:
      switch (sel % 8) {
        case 0: return 0;
        case 1:
        case 2: return k.iovas.empty() ? u64{MOCK_APERTURE_START} : k.iovas[in.byte() % k.iovas.size()];
        case 3:
        case 4: return MOCK_APERTURE_START + u64{in.byte()} * kPage;
        case 5: return u64{in.byte()} * (kPage / 2);
        case 6: return kUlongMax - in.byte();
        default: return in.u64v();
      }
    case Kind::kLen:
      switch (sel % 8) {
        case 0: return 0;
        case 1: case 2: case 3: case 4: return (in.byte() % 16u + 1u) * kPage;
        case 5: return in.bytes(2) + 1;
        case 6: return kUlongMax - in.byte();
        default: return in.u64v();
      }
    case Kind::kNum:
      if (sel % 4 < 3) return (sel >> 2) & 15;
      if (!k.items.empty() && sel % 8 == 3) return k.items[in.byte() % k.items.size()];
      return in.bytes(width);
    case Kind::kOut:
      return sel % 8 == 0 ? in.bytes(width) : 0;
  }
  return 0;
}

// ---- one ioctl as the input asks for it ----
struct FdSlot {
  u32 off;
  int index;  // into Known::fds[context], or -1 for `raw`
  u32 raw;    // never one of the contexts' access descriptors
};

struct Call {
  unsigned long request = 0;
  const Layout* layout = nullptr;  // the table's entry for the request's low 32 bits, if any
  const Layout* shape = nullptr;   // the struct the bytes follow (layout, or another entry's)
  u32 usize = 0;
  std::vector<u8> image;  // what is written at arg: the struct (shape->size bytes) and a tail
  std::vector<FdSlot> fds;
  u64 arg = 0;
  bool in_arena = false;
  size_t arg_off = 0;  // when in_arena
};

void put(std::vector<u8>& s, u32 off, u32 width, u64 v) {
  for (u32 i = 0; i != width && off + i < s.size(); ++i) s[off + i] = static_cast<u8>(v >> (8 * i));
}
u64 get(const std::vector<u8>& s, u32 off, u32 width) {
  u64 v = 0;
  for (u32 i = 0; i != width && off + i < s.size(); ++i) v |= u64{s[off + i]} << (8 * i);
  return v;
}

bool is_access_fd(const Known& k, u32 fd) {
  for (const auto& list : k.fds)
    if (std::find(list.begin(), list.end(), static_cast<int>(fd)) != list.end()) return true;
  return false;
}

FdSlot draw_fd(Input& in, u32 off, const Known& k, const Arena& a) {
  FdSlot slot{off, -1, 0};
  if (in.byte() % 4 != 0) {
    slot.index = in.byte() % 8;
    return slot;
  }
  slot.raw = static_cast<u32>(draw(in, Kind::kFd, 4, k, a));
  if (is_access_fd(k, slot.raw)) slot.raw = 0x7fffffff;
  return slot;
}

int fd_of(const FdSlot& slot, const Known& k, int context) {
  const auto& list = k.fds[context];
  if (slot.index < 0) return static_cast<int>(slot.raw);
  return static_cast<size_t>(slot.index) < list.size() ? list[slot.index] : 0x7ffffffe;
}

unsigned long pick_request(Input& in, const Layout& base) {
  const u8 sel = in.byte();
  const unsigned long nr = _IOC_NR(base.request);
  switch (sel % 16) {
    case 11: {  // another number of the same type
      const int delta = static_cast<int>(in.byte() % 5) - 2;
      return (base.request & ~0xfful) | ((nr + delta) & 0xff);
    }
    case 12:  // the _IOWR encoding of the same number
      return base.request | (u64{_IOC_READ | _IOC_WRITE} << _IOC_DIRSHIFT) | (u64{base.size} << _IOC_SIZESHIFT);
    case 13:  // another type
      return base.request ^ (u64{1 + in.byte() % 255u} << _IOC_TYPESHIFT);
    case 14:  // bits above 32: the kernel's ioctl takes an unsigned int
      return base.request | (u64{in.u32v() | 1u} << 32);
    case 15: return in.u64v();
    default: return base.request;
  }
}

Call make_call(Input& in, const Known& k, const Arena& a) {
  Call c;
  const auto& table = layouts();
  const Layout& base = table[in.byte() % table.size()];
  c.request = pick_request(in, base);
  c.layout = layout_of(static_cast<u32>(c.request));
  c.shape = c.layout ? c.layout : &base;
  const Layout& l = *c.shape;
  std::vector<u8> s(l.size, 0);
  std::vector<Field> fields = l.fields;
  if (l.request == IOMMU_TEST_CMD) {
    const u32 op = static_cast<u32>(draw(in, Kind::kNum, 4, k, a));
    put(s, offsetof(iommu_test_cmd, op), 4, op);
    fields = test_fields(op);
  }
  for (const Field& f : fields) {
    if (f.kind == Kind::kFd)
      c.fds.push_back(draw_fd(in, f.off, k, a));
    else
      put(s, f.off, f.width, draw(in, f.kind, f.width, k, a));
  }
  // The size: mostly the struct's; else its mandatory part, less, more with
  // a zero or non-zero tail, or anything.
  const u8 z = in.byte();
  bool dirty_tail = false;
  switch (z % 16) {
    case 10: c.usize = l.min_size; break;
    case 11: c.usize = in.byte() % l.min_size; break;
    case 12: c.usize = l.size + 8 * (1 + in.byte() % 4u); break;
    case 13: c.usize = l.size + 1 + in.byte() % 64u; dirty_tail = true; break;
    case 14: c.usize = in.byte(); break;
    case 15: c.usize = in.u32v(); break;
    default: c.usize = l.size; break;
  }
  put(s, 0, 4, c.usize);
  c.image = s;
  if (c.usize > l.size) {
    c.image.resize(std::min<u64>(c.usize, 2 * kPage), 0);
    if (dirty_tail && c.image.size() > l.size)
      c.image[l.size + in.byte() % (c.image.size() - l.size)] = static_cast<u8>(1 + in.byte() % 255);
  }
  // Where the struct is: mostly the arena's slot for it; else an address
  // that is never readable, or so that it runs into the guard page (its
  // size word still readable).
  const u8 w = in.byte();
  switch (w % 16) {
    case 0: c.arg = 0; break;
    case 1: c.arg = a.guard(); break;
    case 2: c.arg = 0x1000; break;
    case 3: c.in_arena = true; c.arg_off = kArenaSize - 4 - in.byte() % l.size; break;
    case 4: c.in_arena = true; c.arg_off = kReadOnlyPage * kPage; break;
    default: c.in_arena = true; c.arg_off = kArgOff; break;
  }
  if (c.in_arena) c.arg = a.va(c.arg_off);
  return c;
}

// Whether [addr, addr+len) is readable: inside the arena. (Every pointer
// the fuzzer draws outside it is one that is never mapped, or the guard.)
bool readable(const Arena& a, u64 addr, u64 len) {
  if (len == 0) return true;
  return addr >= a.va(0) && addr <= a.va(kArenaSize) && len <= a.va(kArenaSize) - addr;
}

// Writes the access descriptors of `context` into the call's struct.
void patch_fds(const Call& c, const Known& k, int context, Arena& a) {
  for (const FdSlot& slot : c.fds) {
    const u32 fd = static_cast<u32>(fd_of(slot, k, context));
    if (c.in_arena && c.arg_off + slot.off + 4 <= kArenaSize) std::memcpy(a.base + c.arg_off + slot.off, &fd, 4);
  }
}

// Writes the call's struct for `context`.
void write_call(const Call& c, const Known& k, int context, Arena& a) {
  if (!c.in_arena) return;
  std::memcpy(a.base + c.arg_off, c.image.data(), std::min(kArenaSize - c.arg_off, c.image.size()));
  patch_fds(c, k, context, a);
}

u64 read_arena(const Arena& a, const Call& c, u32 off, u32 width) {
  if (!c.in_arena || c.arg_off + off + width > kArenaSize || off + width > c.usize) return 0;
  u64 v = 0;
  std::memcpy(&v, a.base + c.arg_off + off, width);
  return v;
}

// ---- the kernel's answers where its first checks decide them ----

// The errno of the checks every ioctl goes through (main.c's
// iommufd_fops_ioctl and copy_struct_from_user): 0 when they pass, -1 when
// this call cannot be judged (a VFIO compatibility number).
int generic_errno(const Call& c, const Arena& a) {
  if (!c.layout) {
    const u32 req = static_cast<u32>(c.request);
    if (_IOC_TYPE(req) == IOMMUFD_TYPE && _IOC_NR(req) < IOMMUFD_CMD_BASE) return -1;
    return ENOTTY;
  }
  const Layout& l = *c.layout;
  if (!readable(a, c.arg, 4)) return EFAULT;
  if (c.usize < l.min_size) return EINVAL;
  if (c.usize > l.size) {
    // check_zeroed_user: the first non-zero byte, unless an unreadable one comes first.
    for (size_t i = l.size; i < c.usize; ++i) {
      if (!readable(a, c.arg + i, 1)) return EFAULT;
      if (i < c.image.size() && c.image[i]) return E2BIG;
    }
  }
  if (!readable(a, c.arg, std::min(c.usize, l.size))) return EFAULT;
  return 0;
}

// The errno of the ioctl's own first checks, in its handler's order, on the
// kernel's copy of the struct (zero past the caller's size): 0 when they
// pass.
int handler_errno(const Call& c) {
  std::vector<u8> k(c.image.begin(), c.image.begin() + c.layout->size);
  for (size_t i = c.usize; i < k.size(); ++i) k[i] = 0;
  constexpr u64 kMapFlags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
  constexpr u64 kRw = IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;
#define V(st, field) get(k, offsetof(st, field), sizeof(st::field))
  switch (c.layout->request) {
    case IOMMU_IOAS_ALLOC:
      return V(iommu_ioas_alloc, flags) ? EOPNOTSUPP : 0;
    case IOMMU_IOAS_IOVA_RANGES:
      return V(iommu_ioas_iova_ranges, __reserved) ? EOPNOTSUPP : 0;
    case IOMMU_IOAS_ALLOW_IOVAS:
      return V(iommu_ioas_allow_iovas, __reserved) ? EOPNOTSUPP : 0;
    case IOMMU_IOAS_MAP: {
      const u64 flags = V(iommu_ioas_map, flags);
      if ((flags & ~kMapFlags) || V(iommu_ioas_map, __reserved)) return EOPNOTSUPP;
      if (V(iommu_ioas_map, iova) >= kUlongMax || V(iommu_ioas_map, length) >= kUlongMax) return EOVERFLOW;
      return flags & kRw ? 0 : EINVAL;
    }
    case IOMMU_IOAS_COPY: {
      const u64 flags = V(iommu_ioas_copy, flags);
      if (flags & ~kMapFlags) return EOPNOTSUPP;
      if (V(iommu_ioas_copy, length) >= kUlongMax || V(iommu_ioas_copy, src_iova) >= kUlongMax ||
          V(iommu_ioas_copy, dst_iova) >= kUlongMax)
        return EOVERFLOW;
      return flags & kRw ? 0 : EINVAL;
    }
    case IOMMU_OPTION:
      return V(iommu_option, __reserved) ? EOPNOTSUPP : 0;
    case IOMMU_VFIO_IOAS:
      return V(iommu_vfio_ioas, __reserved) ? EOPNOTSUPP : 0;
    case IOMMU_HWPT_ALLOC:
      if (V(iommu_hwpt_alloc, __reserved)) return EOPNOTSUPP;
      return (V(iommu_hwpt_alloc, data_type) == IOMMU_HWPT_DATA_NONE) != (V(iommu_hwpt_alloc, data_len) == 0) ? EINVAL
                                                                                                             : 0;
    case IOMMU_GET_HW_INFO:
      // Bit 0 is IOMMU_HW_INFO_FLAG_INPUT_TYPE, which the layer takes from later kernels.
      if ((V(iommu_hw_info, flags) & ~u64{IOMMU_HW_INFO_FLAG_INPUT_TYPE}) ||
          get(k, offsetof(iommu_hw_info, __reserved), 3))
        return EOPNOTSUPP;
      return 0;
    default:
      return 0;
  }
#undef V
}

// ---- the observable state of a context ----
struct World {
  std::string table;
  std::vector<IoasState> ioases;
  std::vector<MemoryInfo> memories;
  std::string text;  // context_state
};

World world_of(int handle) {
  World w;
  w.table = ::ioas::uapi::testing::table_of(handle);
  const Engine* e = ::ioas::uapi::testing::engine_of(handle);
  if (!e) broken("no engine behind handle " + std::to_string(handle));
  for (const std::string& name : e->ioas_names()) {
    auto s = e->snapshot(name);
    if (!s.ok()) broken("snapshot of " + name + ": " + s.error().message);
    w.ioases.push_back(s.value());
  }
  w.memories = e->memories();
  w.text = ::ioas::uapi::testing::context_state(handle);
  return w;
}

template <typename T>
bool subset(const std::vector<T>& small, const std::vector<T>& big) {
  return std::all_of(small.begin(), small.end(),
                     [&](const T& x) { return std::find(big.begin(), big.end(), x) != big.end(); });
}

// The kernel's partial unmap (iopt_unmap_iova_range stops at an area it
// cannot remove): one IOAS lost some of its areas, each inside
// [iova, iova+length) (with the pins on them), memories only went away, and
// nothing else changed.
bool partial_unmap(const World& before, const World& after, u64 iova, u64 length) {
  if (before.table != after.table || before.ioases.size() != after.ioases.size() || !length) return false;
  const u64 last = iova + std::min(length - 1, kUlongMax - iova);
  int changed = 0;
  for (size_t i = 0; i != before.ioases.size(); ++i) {
    const IoasState& b = before.ioases[i];
    const IoasState& f = after.ioases[i];
    if (b == f) continue;
    ++changed;
    if (b.name != f.name || b.options != f.options || b.reserved != f.reserved || b.allowed != f.allowed ||
        b.domains != f.domains || b.next_pin_id != f.next_pin_id || !subset(f.areas, b.areas) ||
        !subset(f.pins, b.pins) || f.areas.size() == b.areas.size())
      return false;
    for (const AreaInfo& area : b.areas)
      if (std::find(f.areas.begin(), f.areas.end(), area) == f.areas.end() &&
          !(area.iova.start >= iova && area.iova.last <= last))
        return false;
  }
  std::vector<std::string> names_before, names_after;
  for (const MemoryInfo& m : before.memories) names_before.push_back(m.source.name);
  for (const MemoryInfo& m : after.memories) names_after.push_back(m.source.name);
  return changed == 1 && subset(names_after, names_before);
}

struct Answer {
  int rc = 0;
  int err = 0;
  std::string why;
};

// The ioctls whose effect the kernel keeps when it cannot write the answer
// back (EFAULT from copy_to_user after the work is done): map, copy and
// unmap (ioas.c), IOMMU_OPTION, and MOCK_DOMAIN_REPLACE (selftest.c). The
// others undo their work.
bool kept_without_answer(const Call& c, const Answer& r) {
  if (r.err != EFAULT || !c.in_arena || c.arg_off / kPage != kReadOnlyPage || !c.layout) return false;
  switch (c.layout->request) {
    case IOMMU_IOAS_MAP:
    case IOMMU_IOAS_COPY:
    case IOMMU_IOAS_UNMAP:
    case IOMMU_OPTION:
      return true;
    case IOMMU_TEST_CMD:
      return get(c.image, offsetof(iommu_test_cmd, op), 4) == IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE;
    default:
      return false;
  }
}

// ---- the two contexts in lockstep ----
Answer ioctl_on(int handle, unsigned long request, u64 arg) {
  errno = 0;
  Answer r;
  arena().seal(true);
  r.rc = ioas_iommufd_ioctl(handle, request, reinterpret_cast<void*>(arg));
  arena().seal(false);
  r.err = r.rc ? errno : 0;
  r.why = ioas_iommufd_last_error();
  return r;
}

bool one_of(int e, const std::vector<int>& set) { return std::find(set.begin(), set.end(), e) != set.end(); }

std::string describe_call(const Call& c) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "ioctl 0x%lx (%s) size %u at 0x%llx", c.request, c.layout ? c.layout->name : "unknown",
                c.usize, static_cast<unsigned long long>(c.arg));
  return buf;
}

// A refused call's errno against the kernel's for what is wrong.
void check_refusal(const Call& c, const Answer& r, const Arena& a) {
  const std::string what = describe_call(c) + ": refused with " + strerrorname_np(r.err) + " (" + r.why + ")";
  if (r.rc != -1 || r.err == 0) broken(describe_call(c) + ": answered " + std::to_string(r.rc) + " errno " + std::to_string(r.err));
  if (r.why.empty()) broken(what + ": no message");
  const int g = generic_errno(c, a);
  if (g > 0 && r.err != g) broken(what + ", the kernel answers " + strerrorname_np(g));
  if (g != 0) return;
  const int h = handler_errno(c);
  if (h > 0 && r.err != h) broken(what + ", the kernel answers " + strerrorname_np(h));
  if (h == 0 && !c.layout->errnos.empty() && r.err != ENOMEM && r.err != EFAULT && !one_of(r.err, c.layout->errnos))
    broken(what + ": not an errno this ioctl answers");
}

void check_success(const Call& c, const Answer& r, const Arena& a) {
  if (r.rc != 0) broken(describe_call(c) + ": answered " + std::to_string(r.rc));
  const int g = generic_errno(c, a);
  if (g > 0) broken(describe_call(c) + ": accepted, the kernel answers " + strerrorname_np(g));
  if (g == 0 && handler_errno(c) > 0)
    broken(describe_call(c) + ": accepted, the kernel answers " + strerrorname_np(handler_errno(c)));
}

// The first offset where the arenas `a` and `b` differ other than by a
// descriptor pair (four bytes that read pairs[k].first in `a` and
// pairs[k].second in `b`), or kArenaSize.
size_t first_difference(const u8* a, const u8* b, const std::vector<std::pair<u32, u32>>& pairs) {
  auto holds = [](const u8* m, size_t at, u32 v) { return std::memcmp(m + at, &v, 4) == 0; };
  size_t i = 0;
  while (i != kArenaSize) {
    if (a[i] == b[i]) {
      ++i;
      continue;
    }
    size_t resume = 0;
    for (size_t s = i >= 3 ? i - 3 : 0; s <= i && s + 4 <= kArenaSize && !resume; ++s)
      for (const auto& [fa, fb] : pairs)
        if (fa != fb && holds(a, s, fa) && holds(b, s, fb)) {
          resume = s + 4;
          break;
        }
    if (!resume) return i;
    i = resume;
  }
  return kArenaSize;
}

class Twin {
 public:
  explicit Twin(const char* engine) {
    for (int& h : h_) {
      h = ioas_iommufd_open_engine(engine);
      if (h < 0) broken(std::string("cannot open a context on ") + engine + ": " + ioas_iommufd_last_error());
    }
  }
  ~Twin() {
    for (int h : h_)
      if (ioas_iommufd_close(h) != 0) broken("close of a context failed");
    for (const auto& list : known_.fds)
      for (int fd : list) {
        if (ioas_iommufd_release_fd(fd) != 0) broken("an access outlived its context");
        close(fd);
      }
  }

  void step(Input& in, Arena& a) {
    const u8 what = in.byte();
    if (what % 16 == 14) return poke(in, a);
    if (what % 16 == 15) return release(in, a);
    ioctl(make_call(in, known_, a), a);
  }

 private:
  // The input writes 8 bytes into the arena.
  void poke(Input& in, Arena& a) {
    const size_t off = in.bytes(2) % kArenaSize;
    const u64 v = in.u64v();
    std::memcpy(a.base + off, &v, std::min<size_t>(8, kArenaSize - off));
  }

  // An access descriptor is closed (or a descriptor that is none).
  void release(Input& in, const Arena& a) {
    const FdSlot slot = draw_fd(in, 0, known_, a);
    int r[2];
    for (int i = 0; i != 2; ++i) {
      const int fd = fd_of(slot, known_, i);
      const std::string before = world_of(h_[i]).text;
      r[i] = ioas_iommufd_release_fd(fd);
      auto& list = known_.fds[i];
      auto it = std::find(list.begin(), list.end(), fd);
      if (r[i] != (it != list.end() ? 1 : 0))
        broken("release_fd(" + std::to_string(fd) + ") answered " + std::to_string(r[i]));
      if (it != list.end()) {
        close(fd);
        list.erase(it);
      } else if (world_of(h_[i]).text != before) {
        broken("release_fd of a descriptor that is no access changed the context");
      }
    }
    if (world_of(h_[0]).text != world_of(h_[1]).text) broken("release_fd left the two contexts different");
  }

  void ioctl(const Call& c, Arena& a) {
    const std::vector<u8> start(a.base, a.base + kArenaSize);
    const World before = world_of(h_[0]);

    write_call(c, known_, 0, a);
    const Answer ra = ioctl_on(h_[0], c.request, c.arg);
    const World after = world_of(h_[0]);
    if (ra.rc == 0) {
      check_success(c, ra, a);
    } else {
      check_refusal(c, ra, a);
      const bool unmap = c.layout && c.layout->request == IOMMU_IOAS_UNMAP && c.usize >= c.layout->min_size;
      if (after.text != before.text && !kept_without_answer(c, ra) &&
          !(unmap && partial_unmap(before, after, get(c.image, offsetof(iommu_ioas_unmap, iova), 8),
                                   get(c.image, offsetof(iommu_ioas_unmap, length), 8))))
        broken(describe_call(c) + ": refused (" + ra.why + ") but the context changed:\n--- before\n" + before.text +
               "--- after\n" + after.text);
    }
    const int fd_a = created_fd(c, ra, a);
    const std::vector<u8> out_a(a.base, a.base + kArenaSize);

    std::memcpy(a.base, start.data(), kArenaSize);
    write_call(c, known_, 1, a);
    const Answer rb = ioctl_on(h_[1], c.request, c.arg);
    if (rb.rc != ra.rc || rb.err != ra.err)
      broken(describe_call(c) + ": the twin answered " + std::to_string(rb.rc) + "/" + strerrorname_np(rb.err) +
             " (" + rb.why + "), the first " + std::to_string(ra.rc) + "/" + strerrorname_np(ra.err) + " (" + ra.why +
             ")");
    const int fd_b = created_fd(c, rb, a);
    // The twin's descriptors are its own. The call may have moved them
    // anywhere in user memory (it may have written over the struct, or
    // copied it), so a byte that differs is forgiven only inside four bytes
    // that hold a descriptor of the first context in its arena and the
    // matching one of the twin in the twin's.
    std::vector<std::pair<u32, u32>> pairs;
    for (const FdSlot& slot : c.fds)
      pairs.emplace_back(static_cast<u32>(fd_of(slot, known_, 0)), static_cast<u32>(fd_of(slot, known_, 1)));
    if (fd_a >= 0) {
      pairs.emplace_back(static_cast<u32>(fd_a), static_cast<u32>(fd_b));
      known_.fds[0].push_back(fd_a);
      known_.fds[1].push_back(fd_b);
    }
    if (const size_t i = first_difference(out_a.data(), a.base, pairs); i != kArenaSize)
      broken(describe_call(c) + ": the twin wrote other bytes into user memory (arena offset " + std::to_string(i) + ")");
    // User memory goes on as the first context left it.
    std::memcpy(a.base, out_a.data(), kArenaSize);
    const World twin = world_of(h_[1]);
    if (twin.text != after.text)
      broken(describe_call(c) + ": the twin ended in another state:\n--- first\n" + after.text + "--- twin\n" + twin.text);
    if (ra.rc == 0) remember_outputs(c, a);
  }

  // The access descriptor a successful CREATE_ACCESS returned, else -1.
  int created_fd(const Call& c, const Answer& r, const Arena& a) const {
    if (r.rc != 0 || !c.layout || c.layout->request != IOMMU_TEST_CMD ||
        get(c.image, offsetof(iommu_test_cmd, op), 4) != IOMMU_TEST_OP_CREATE_ACCESS)
      return -1;
    const u64 fd = read_arena(a, c, offsetof(iommu_test_cmd, create_access.out_access_fd), 4);
    if (!c.in_arena || fd == 0) broken(describe_call(c) + ": CREATE_ACCESS succeeded without an answer the caller can read");
    return static_cast<int>(fd);
  }

  // Ids and IOVAs the call answered with, to draw from later.
  void remember_outputs(const Call& c, const Arena& a) {
    auto id = [&](u32 off) {
      const u64 v = read_arena(a, c, off, 4);
      if (v) remember(known_.ids, static_cast<u32>(v));
    };
    auto iova = [&](u32 off) {
      if (known_.iovas.size() < 64) known_.iovas.push_back(read_arena(a, c, off, 8));
    };
    switch (c.layout->request) {
      case IOMMU_IOAS_ALLOC: id(offsetof(iommu_ioas_alloc, out_ioas_id)); break;
      case IOMMU_HWPT_ALLOC: id(offsetof(iommu_hwpt_alloc, out_hwpt_id)); break;
      case IOMMU_IOAS_MAP: iova(offsetof(iommu_ioas_map, iova)); break;
      case IOMMU_IOAS_COPY: iova(offsetof(iommu_ioas_copy, dst_iova)); break;
      case IOMMU_TEST_CMD:
        switch (get(c.image, offsetof(iommu_test_cmd, op), 4)) {
          case IOMMU_TEST_OP_MOCK_DOMAIN:
          case IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS:
            id(offsetof(iommu_test_cmd, mock_domain.out_stdev_id));
            id(offsetof(iommu_test_cmd, mock_domain.out_hwpt_id));
            id(offsetof(iommu_test_cmd, mock_domain.out_idev_id));
            break;
          case IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: id(offsetof(iommu_test_cmd, mock_domain_replace.pt_id)); break;
          case IOMMU_TEST_OP_ACCESS_PAGES:
            remember(known_.items,
                     static_cast<u32>(read_arena(a, c, offsetof(iommu_test_cmd, access_pages.out_access_pages_id), 4)));
            break;
        }
        break;
    }
  }

  int h_[2];
  Known known_;
};

constexpr int kMaxCalls = 48;

}  // namespace
}  // namespace ioas::uapi::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace ioas::uapi::fuzz;
  Input in(data, size);
  Arena& a = arena();
  a.reset();
  // The first byte picks the engine.
  Twin twin(in.byte() & 1 ? "model" : "impl");
  for (int n = 0; n != kMaxCalls && !in.empty(); ++n) twin.step(in, a);
  return 0;
}
