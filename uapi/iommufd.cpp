// The iommufd uAPI over an ioas engine (include/ioas/iommufd.h).
//
// One Context is one open /dev/iommu. It keeps the kernel's object table
// (drivers/iommu/iommufd/main.c: an xarray allocating the lowest free id from
// 1, every object with a count of users) and turns each ioctl into engine
// calls. The order of the checks is the kernel's:
//   1. the request: a number outside iommufd's range, or one whose encoding
//      differs from the table's, gives ENOTTY;
//   2. the struct: `size` is read first (EFAULT if unreadable); a size below
//      the end of the struct's last mandatory field gives EINVAL; a larger
//      struct whose extra bytes are not all zero gives E2BIG
//      (copy_struct_from_user); a shorter one is zero-extended;
//   3. the ioctl's own checks (reserved fields, flags, overflow), in the
//      order of its handler in ioas.c, main.c or selftest.c;
//   4. the objects it names (ENOENT for a missing id or one of another type);
//   5. the engine, whose IOASes are created in kernel mode;
//   6. the answer written back, no more than `size` bytes of it.
// User memory is reached with process_vm_readv/writev on this process, so a
// bad user pointer gives EFAULT as copy_from_user does, never a crash.
//
// Names in the engine: IOAS "ioas.<n>", domain "hwpt.<n>", device "dev.<n>",
// memory source "mem.<n>", reserved owner "test.<n>", each <n> from one
// counter of the context, never reused (the engine has no destroy for an
// IOAS: a destroyed IOAS is emptied and left unnamed in the table).
//
// Requests outside iommufd's numbers go, as in the kernel, to the VFIO type1
// container ioctls (vfio_compat.c), which act on the compatibility IOAS of
// IOMMU_VFIO_IOAS; VFIO_GET_API_VERSION and VFIO_CHECK_EXTENSION answer with
// the ioctl's return value.
//
// Each IOMMU_IOAS_MAP registers its user range as one memory source (the
// kernel's iopt_pages) with pa = va; sources that no area or pin uses any
// more are removed after every unmap or destroy.
#include "ioas/iommufd.h"

#include <linux/capability.h>
#include <linux/vfio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <set>
#include <string>
#include <vector>

#include "ioas/arith.hpp"
#include "ioas/engine.hpp"
#include "ioas/impl.hpp"
#include "ioas/uapi/iommufd.h"
#include "ioas/uapi/iommufd_test.h"
#include "iommufd_testing.hpp"

namespace ioas::uapi {
namespace {

using u32 = std::uint32_t;
constexpr u64 kPage = 4096;
constexpr u64 kUlongMax = ~u64{0};

thread_local std::string t_last_error;

// Every IOAS follows the kernel's rules (SPEC "Kernel mode").
IoasOptions kernel_ioas_options() {
  IoasOptions options;
  options.mode = IoasMode::kKernel;
  options.zero_page = ZeroPage::kAllowed;
  return options;
}

// A mock domain as the kernel selftest's mock IOMMU makes it: 2 KiB pages,
// and 1 MiB ones too for a MOCK_FLAGS_DEVICE_HUGE_IOVA device.
void set_mock_domain(AttachArgs& args, bool huge) {
  args.fmt = Format::kMock;
  args.pgsize_bitmap = huge ? (kMockPage | kMockHugePage) : kMockPage;
}

// A refusal: the errno and what was wrong.
struct Refusal {
  int code = 0;
  std::string why;
};
using Rc = std::optional<Refusal>;  // nullopt: success
Rc refuse(int code, std::string why) { return Refusal{code, std::move(why)}; }
Rc from(const Status& s) {
  if (s.ok()) return std::nullopt;
  return refuse(s.error().code, s.error().message);
}
template <typename T>
Rc from(const Result<T>& r) {
  if (r.ok()) return std::nullopt;
  return refuse(r.error().code, r.error().message);
}

// ---- user memory, as copy_from_user / copy_to_user ----
bool read_user(void* dst, u64 uptr, size_t len) {
  if (len == 0) return true;
  iovec local{dst, len};
  iovec remote{reinterpret_cast<void*>(uptr), len};
  return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}
bool write_user(u64 uptr, const void* src, size_t len) {
  if (len == 0) return true;
  iovec local{const_cast<void*>(src), len};
  iovec remote{reinterpret_cast<void*>(uptr), len};
  return process_vm_writev(getpid(), &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len);
}

// Whether every page of [va, va+len) is mapped in this process: what
// pin_user_pages needs, so its EFAULT where it is not. (The kernel pins when
// it fills a domain: at map time into an IOAS with a domain, and at attach
// for the areas already there.)
bool user_range_mapped(u64 va, u64 len) {
  if (len == 0) return true;
  u64 first = va & ~(kPage - 1);
  u64 end = va + len;
  if (end < va) return false;
  if (end > ~(kPage - 1)) return false;  // reaches the last page of the address space
  u64 span = ((end + kPage - 1) & ~(kPage - 1)) - first;
  // A chunk at a time: a length may be far larger than any memory there is,
  // and mincore stops at the first unmapped page of a chunk.
  constexpr u64 kChunkPages = 1024;
  unsigned char vec[kChunkPages];
  for (u64 at = first; span;) {
    const u64 n = std::min(span, kChunkPages * kPage);
    if (mincore(reinterpret_cast<void*>(at), n, vec) != 0) return false;
    at += n;
    span -= n;
  }
  return true;
}

// ---- the object table ----
enum class ObjType { kIoas, kHwpt, kDevice, kSelftest, kAccess };
const char* to_string(ObjType t) {
  switch (t) {
    case ObjType::kIoas: return "IOAS";
    case ObjType::kHwpt: return "HWPT";
    case ObjType::kDevice: return "device";
    case ObjType::kSelftest: return "selftest device";
    case ObjType::kAccess: return "access";
  }
  return "?";
}

struct Object {
  ObjType type = ObjType::kIoas;
  u32 users = 1;        // 1 for the table, +1 for each object that uses this one
  std::string name;     // engine name (IOAS, domain, device)
  u32 ioas_id = 0;      // HWPT: its IOAS
  bool auto_domain = false;
  u32 hwpt_id = 0;      // device: the HWPT it is attached to
  u32 idev_id = 0;      // selftest device: its device
  u32 dev_flags = 0;    // device: MOCK_FLAGS_DEVICE_*
  bool huge = false;    // HWPT: a mock domain with 1 MiB pages too
  bool dirty = false;   // HWPT: allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING
  std::string holder;   // HWPT from HWPT_ALLOC: the engine device that keeps its domain in the IOAS
  std::vector<std::string> owners;  // IOAS: reserved owners added by ADD_RESERVED
};

// A selftest access (selftest.c's selftest_access): an object of the table
// (ioas_id its IOAS) named to userspace by a descriptor of its own. Its items
// are its pins, from id 0; an item whose engine pin an unmap released is
// gone, as the kernel's unmap callback drops it.
struct Access {
  u32 obj_id = 0;
  bool needs_pin = false;  // MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES
  u32 next_item = 0;
  std::map<u32, u32> items;  // item id -> engine pin id in the IOAS
};

class Context;
std::mutex g_lock;
std::map<int, std::unique_ptr<Context>> g_contexts;
int g_next_handle = 0;

class Context {
 public:
  explicit Context(std::unique_ptr<Engine> engine) : engine_(std::move(engine)) {}
  Rc ioctl(unsigned long request, u64 arg);
  // Pages of [va, va+len) pinned by this context's pinned sources (a page
  // counted once per source), as the kernel's page refcount sees them.
  void count_pins(u64 va, u64 len, std::vector<u32>& refs) const;

 private:
  struct Op;
  static const Op* find_op(unsigned long request);

  // Handlers; cmd is the kernel-side copy, already size-checked.
  Rc destroy(void* cmd);
  Rc ioas_alloc(void* cmd);
  Rc iova_ranges(void* cmd);
  Rc allow_iovas(void* cmd);
  Rc ioas_map(void* cmd);
  Rc ioas_copy(void* cmd);
  Rc ioas_unmap(void* cmd);
  Rc option(void* cmd);
  Rc vfio_ioas(void* cmd);
  Rc get_hw_info(void* cmd);
  Rc hwpt_alloc(void* cmd);
  Rc hwpt_set_dirty_tracking(void* cmd);
  Rc hwpt_get_dirty_bitmap(void* cmd);
  Rc test_dirty(iommu_test_cmd& cmd);
  // Dirty tracking of a HWPT: whether the engine's domain tracks now.
  Rc dirty_tracking_on(const Object& hwpt, bool& on) const;
  struct DirtyBitmap;
  Rc read_and_clear_dirty(const Object& hwpt, Range piece, bool keep, DirtyBitmap& bitmap);
  Rc test_cmd(void* cmd);
  // The VFIO type1 container ioctls (vfio_compat.c); `arg` is the ioctl's
  // argument: a pointer, or for SET_IOMMU and CHECK_EXTENSION a number.
  Rc vfio_ioctl(u32 request, u64 arg);
  Object* compat_ioas(Rc& rc);
  Rc vfio_check_extension(u64 type);
  Rc vfio_set_iommu(u64 type);
  Rc vfio_get_info(u64 arg);
  Rc vfio_map_dma(u64 arg);
  Rc vfio_unmap_dma(u64 arg);
  // Maps [uva, uva+len) into IOAS ioas_id at *iova (fixed) or where the
  // engine places it (nullopt), as iopt_map_user_pages: the range becomes one
  // memory source. out_iova gets the area's IOVA.
  Rc map_user(u32 ioas_id, u64 uva, u64 len, std::optional<u64> iova, Prot prot, u64& out_iova);
  Rc add_reserved(iommu_test_cmd& cmd);
  Rc mock_domain(iommu_test_cmd& cmd);
  Rc mock_domain_replace(iommu_test_cmd& cmd);
  struct AttachTarget {
    u32 ioas_id = 0;
    u32 hwpt_id = 0;
  };
  Rc resolve_pt(u32 pt_id, AttachTarget& t) const;
  Rc engine_attach(const std::string& dev, u32 dev_flags, const AttachTarget& t, std::string* dom);
  void drop_hwpt(u32 hwpt_id);
  Rc md_check_map(iommu_test_cmd& cmd);
  Rc md_check_refs(iommu_test_cmd& cmd);
  Rc create_access(iommu_test_cmd& cmd);
  bool areas_page_aligned(const std::string& ioas) const;
  Rc access_replace_ioas(iommu_test_cmd& cmd);
  Rc access_pages(iommu_test_cmd& cmd);
  Rc check_access_uptr(const std::string& ioas, u64 iova, u64 length, u64 uptr) const;
  Rc destroy_access_pages(iommu_test_cmd& cmd);
  Rc access_rw(iommu_test_cmd& cmd);
  Access* get_access(u32 fd, Rc& rc);
  Rc prune_items(Access& a);
  void unpin_all(Access& a);
  // The user address behind each byte run of [iova, iova+len) in IOAS
  // ioas_id: ENOENT where no area covers it, EPERM for a write to a
  // read-only area (iopt_access_* checks).
  struct Piece {
    u64 uva = 0;
    u64 len = 0;
  };
  Rc user_pieces(u32 ioas_id, u64 iova, u64 len, bool write, std::vector<Piece>& out, bool pin = false) const;

 public:
  bool owns_access(int fd) const { return accesses_.count(fd) != 0; }
  // What the last successful ioctl returns: 0, or a VFIO query's answer.
  int value() const { return value_; }
  void release_access(int fd);
  // For uapi/iommufd_testing.hpp.
  Engine& engine() { return *engine_; }
  std::string describe_table() const;

 private:

  Object* get(u32 id, ObjType type);
  bool has_domain(u32 ioas_id) const {
    for (const auto& [id, obj] : objects_)
      if (obj.type == ObjType::kHwpt && obj.ioas_id == ioas_id) return true;
    return false;
  }
  // A first domain pins every area's user memory: EFAULT where it is gone.
  Rc check_areas_pinnable(u32 ioas_id) const {
    auto s = engine_->snapshot(objects_.at(ioas_id).name);
    if (Rc rc = from(s)) return rc;
    for (const AreaInfo& a : s.value().areas)
      if (!user_range_mapped(source_va(a.source) + a.offset, a.iova.length()))
        return refuse(EFAULT, "attach: the user memory of an area is not mapped any more");
    return std::nullopt;
  }
  // A table entry made ahead (all its allocation done), and its insertion
  // under the lowest free id, which allocates nothing.
  using Slot = std::map<u32, Object>::node_type;
  static Slot make_slot(Object obj);
  u32 insert_slot(Slot slot);
  // The device attached to t's domain `dom` uses its HWPT; a new automatic
  // domain (t.hwpt_id 0) gets `spare`, made ahead by auto_hwpt_slot.
  u32 take_hwpt(const AttachTarget& t, std::string dom, Slot& spare);
  static Slot auto_hwpt_slot(const AttachTarget& t, u32 dev_flags);
  // The user address of a memory source this context registered (0 for
  // none); sources_ answers without allocating (Engine::memories cannot
  // answer ENOMEM).
  u64 source_va(const std::string& name) const {
    auto it = sources_.find(name);
    return it == sources_.end() ? 0 : it->second;
  }
  std::string fresh(const char* kind) { return std::string(kind) + "." + std::to_string(++counter_); }
  Rc remove_object(u32 id);
  void release_unused_sources();

  std::unique_ptr<Engine> engine_;
  std::map<u32, Object> objects_;
  std::map<std::string, u64, std::less<>> sources_;  // the engine's memory sources: name -> user address
  std::map<int, Access> accesses_;  // by descriptor
  u64 counter_ = 0;
  bool account_mm_ = false;  // IOMMU_OPTION_RLIMIT_MODE
  u32 vfio_ioas_ = 0;        // IOMMU_VFIO_IOAS: the VFIO compatibility IOAS, 0 for none
  int value_ = 0;            // what a successful ioctl returns (VFIO's queries answer with it)
  // Where the current ioctl's struct came from and how much of it the caller has.
  u64 ubuf_ = 0;
  u32 usize_ = 0;
  Rc respond(const void* cmd, size_t ksize) {
    if (!write_user(ubuf_, cmd, std::min<size_t>(ksize, usize_)))
      return refuse(EFAULT, "cannot write the answer back to the caller's struct");
    return std::nullopt;
  }
  // Where the kernel undoes an ioctl whose answer cannot be written, and
  // the engine cannot undo its step (a pin id consumed, an IOAS created):
  // the caller's own bytes written back before that step (an unchanged
  // `cmd`), so an unwritable struct is refused with nothing done.
  Rc answer_writable(const void* cmd, size_t ksize) { return respond(cmd, ksize); }
};

u32 g_memory_limit = 65536;  // IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT (kept, unused by the engine)

// ---- the ioctl table (main.c's iommufd_ioctl_ops) ----
struct Context::Op {
  unsigned long request;
  u32 size;      // sizeof the struct
  u32 min_size;  // offsetofend of its last mandatory field
  Rc (Context::*handler)(void*);
  const char* name;
};

#define IOAS_OP(req, st, last, fn) \
  {req, sizeof(st), offsetof(st, last) + sizeof(st::last), fn, #req}
#define IOAS_OP_TODO(req, st, last) \
  {req, sizeof(st), offsetof(st, last) + sizeof(st::last), nullptr, #req}

const Context::Op* Context::find_op(unsigned long request) {
  static const Op ops[] = {
      IOAS_OP(IOMMU_DESTROY, iommu_destroy, id, &Context::destroy),
      IOAS_OP(IOMMU_IOAS_ALLOC, iommu_ioas_alloc, out_ioas_id, &Context::ioas_alloc),
      IOAS_OP(IOMMU_IOAS_ALLOW_IOVAS, iommu_ioas_allow_iovas, allowed_iovas, &Context::allow_iovas),
      IOAS_OP(IOMMU_IOAS_COPY, iommu_ioas_copy, src_iova, &Context::ioas_copy),
      IOAS_OP(IOMMU_IOAS_IOVA_RANGES, iommu_ioas_iova_ranges, out_iova_alignment, &Context::iova_ranges),
      IOAS_OP(IOMMU_IOAS_MAP, iommu_ioas_map, iova, &Context::ioas_map),
      IOAS_OP(IOMMU_IOAS_UNMAP, iommu_ioas_unmap, length, &Context::ioas_unmap),
      IOAS_OP(IOMMU_OPTION, iommu_option, val64, &Context::option),
      IOAS_OP(IOMMU_VFIO_IOAS, iommu_vfio_ioas, __reserved, &Context::vfio_ioas),
      IOAS_OP(IOMMU_HWPT_ALLOC, iommu_hwpt_alloc, __reserved, &Context::hwpt_alloc),
      IOAS_OP(IOMMU_GET_HW_INFO, iommu_hw_info, __reserved, &Context::get_hw_info),
      IOAS_OP(IOMMU_HWPT_SET_DIRTY_TRACKING, iommu_hwpt_set_dirty_tracking, __reserved,
              &Context::hwpt_set_dirty_tracking),
      IOAS_OP(IOMMU_HWPT_GET_DIRTY_BITMAP, iommu_hwpt_get_dirty_bitmap, data, &Context::hwpt_get_dirty_bitmap),
      IOAS_OP_TODO(IOMMU_HWPT_INVALIDATE, iommu_hwpt_invalidate, __reserved),
      IOAS_OP_TODO(IOMMU_FAULT_QUEUE_ALLOC, iommu_fault_alloc, out_fault_fd),
      IOAS_OP(IOMMU_TEST_CMD, iommu_test_cmd, last, &Context::test_cmd),
  };
  for (const Op& op : ops)
    if (_IOC_NR(op.request) == _IOC_NR(request)) return op.request == request ? &op : nullptr;
  return nullptr;
}

// The largest struct of the table, the kernel's union ucmd_buffer.
constexpr size_t kMaxCmd = 128;
static_assert(sizeof(iommu_test_cmd) <= kMaxCmd && sizeof(iommu_hwpt_alloc) <= kMaxCmd);

Rc Context::ioctl(unsigned long request, u64 arg) {
  value_ = 0;
  if (_IOC_NR(request) < IOMMUFD_CMD_BASE || _IOC_NR(request) > _IOC_NR(IOMMU_TEST_CMD))
    return vfio_ioctl(static_cast<u32>(request), arg);
  const Op* op = find_op(request);
  if (!op) return refuse(ENOTTY, "not an iommufd request");
  u32 usize = 0;
  if (!read_user(&usize, arg, sizeof(usize))) return refuse(EFAULT, "cannot read the struct's size");
  if (usize < op->min_size)
    return refuse(EINVAL, std::string(op->name) + ": size " + std::to_string(usize) +
                              " is below the struct's mandatory part (" + std::to_string(op->min_size) + ")");
  alignas(8) unsigned char buf[kMaxCmd] = {};
  // copy_struct_from_user: a longer struct must be zero past what we know.
  // As check_zeroed_user, front to back a page at a time: a non-zero byte
  // before an unreadable page is E2BIG, and no buffer as large as the tail.
  for (u64 at = arg + op->size, end = arg + usize; at < end && usize > op->size;) {
    unsigned char chunk[kPage];
    const size_t n = std::min<u64>(end - at, kPage - at % kPage);
    if (!read_user(chunk, at, n)) return refuse(EFAULT, "cannot read the struct");
    if (std::any_of(chunk, chunk + n, [](unsigned char c) { return c != 0; }))
      return refuse(E2BIG, std::string(op->name) + ": non-zero bytes past the end of the known struct");
    at += n;
  }
  if (!read_user(buf, arg, std::min<u32>(usize, op->size))) return refuse(EFAULT, "cannot read the struct");
  if (!op->handler) return refuse(ENOTTY, std::string(op->name) + " is not served by ioas yet");
  ubuf_ = arg;
  usize_ = usize;
  return (this->*op->handler)(buf);
}

Object* Context::get(u32 id, ObjType type) {
  auto it = objects_.find(id);
  if (it == objects_.end() || it->second.type != type) return nullptr;
  return &it->second;
}


Context::Slot Context::make_slot(Object obj) {
  std::map<u32, Object> aside;
  aside.emplace(0, std::move(obj));
  return aside.extract(aside.begin());
}

u32 Context::insert_slot(Slot slot) {
  u32 id = 1;
  for (const auto& [k, v] : objects_) {
    if (k != id) break;
    ++id;
  }
  slot.key() = id;
  objects_.insert(std::move(slot));
  return id;
}

Rc no_object(const char* what, u32 id) {
  return refuse(ENOENT, std::string("no ") + what + " with id " + std::to_string(id));
}

// ---- IOMMU_DESTROY (iommufd_object_remove) ----
Rc Context::destroy(void* p) {
  auto& cmd = *static_cast<iommu_destroy*>(p);
  return remove_object(cmd.id);
}

Rc Context::remove_object(u32 id) {
  auto it = objects_.find(id);
  if (it == objects_.end()) return no_object("object", id);
  Object& obj = it->second;
  if (obj.users != 1)
    return refuse(EBUSY, std::string(to_string(obj.type)) + " " + std::to_string(id) + " is in use by " +
                             std::to_string(obj.users - 1) + " other object(s)");
  switch (obj.type) {
    case ObjType::kIoas: {
      (void)engine_->unmap_all(obj.name);
      for (const std::string& owner : obj.owners) (void)engine_->unreserve(obj.name, owner);
      break;
    }
    case ObjType::kSelftest: {
      // The selftest device owns its device: detach it, unbind it, and
      // destroy an automatic domain that no device uses any more.
      // A detach the engine refuses (no memory) leaves everything as it was.
      Object& idev = objects_.at(obj.idev_id);
      u32 hwpt_id = idev.hwpt_id;
      if (Rc rc = from(engine_->detach(idev.name))) return rc;
      objects_.erase(obj.idev_id);
      drop_hwpt(hwpt_id);
      break;
    }
    case ObjType::kHwpt:
      if (!obj.holder.empty())
        if (Rc rc = from(engine_->detach(obj.holder))) return rc;
      --objects_.at(obj.ioas_id).users;
      break;
    case ObjType::kDevice:
    case ObjType::kAccess:
      break;  // held by a selftest device or an access descriptor: never here
  }
  objects_.erase(id);
  if (vfio_ioas_ == id) vfio_ioas_ = 0;
  release_unused_sources();
  return std::nullopt;
}

// A source still in use answers EBUSY; one that cannot be removed now (no
// memory) stays for the next call. Nothing here allocates but the engine's
// removal, which fails changing nothing.
void Context::release_unused_sources() {
  for (auto it = sources_.begin(); it != sources_.end();)
    it = engine_->remove_memory(it->first).ok() ? sources_.erase(it) : std::next(it);
}

// ---- IOMMU_IOAS_ALLOC ----
Rc Context::ioas_alloc(void* p) {
  auto& cmd = *static_cast<iommu_ioas_alloc*>(p);
  if (cmd.flags) return refuse(EOPNOTSUPP, "IOMMU_IOAS_ALLOC: flags must be 0");
  Object obj;
  obj.type = ObjType::kIoas;
  if (Rc rc = answer_writable(&cmd, sizeof(cmd))) return rc;
  obj.name = fresh("ioas");
  const std::string name = obj.name;
  Slot slot = make_slot(std::move(obj));
  if (Rc rc = from(engine_->create_ioas(name, kernel_ioas_options()))) return rc;
  u32 id = insert_slot(std::move(slot));
  cmd.out_ioas_id = id;
  if (Rc rc = respond(&cmd, sizeof(cmd))) {
    objects_.erase(id);
    return rc;
  }
  return std::nullopt;
}

// ---- IOMMU_IOAS_IOVA_RANGES ----
Rc Context::iova_ranges(void* p) {
  auto& cmd = *static_cast<iommu_ioas_iova_ranges*>(p);
  if (cmd.__reserved) return refuse(EOPNOTSUPP, "IOMMU_IOAS_IOVA_RANGES: __reserved must be 0");
  Object* ioas = get(cmd.ioas_id, ObjType::kIoas);
  if (!ioas) return no_object("IOAS", cmd.ioas_id);
  auto r = engine_->ranges(ioas->name);
  if (Rc rc = from(r)) return rc;
  u32 max_iovas = cmd.num_iovas;
  cmd.num_iovas = 0;
  cmd.out_iova_alignment = r.value().alignment;
  for (const Range& range : r.value().ranges) {
    if (cmd.num_iovas < max_iovas) {
      iommu_iova_range elm{range.start, range.last};
      if (!write_user(cmd.allowed_iovas + u64{cmd.num_iovas} * sizeof(elm), &elm, sizeof(elm)))
        return refuse(EFAULT, "cannot write allowed_iovas");
    }
    ++cmd.num_iovas;
  }
  if (Rc rc = respond(&cmd, sizeof(cmd))) return rc;
  if (cmd.num_iovas > max_iovas)
    return refuse(EMSGSIZE, "IOMMU_IOAS_IOVA_RANGES: " + std::to_string(cmd.num_iovas) +
                                " ranges, room for " + std::to_string(max_iovas));
  return std::nullopt;
}

// ---- IOMMU_IOAS_ALLOW_IOVAS ----
Rc Context::allow_iovas(void* p) {
  auto& cmd = *static_cast<iommu_ioas_allow_iovas*>(p);
  if (cmd.__reserved) return refuse(EOPNOTSUPP, "IOMMU_IOAS_ALLOW_IOVAS: __reserved must be 0");
  Object* ioas = get(cmd.ioas_id, ObjType::kIoas);
  if (!ioas) return no_object("IOAS", cmd.ioas_id);
  std::vector<Range> ranges;
  for (u32 i = 0; i != cmd.num_iovas; ++i) {
    iommu_iova_range r;
    if (!read_user(&r, cmd.allowed_iovas + u64{i} * sizeof(r), sizeof(r)))
      return refuse(EFAULT, "cannot read allowed_iovas[" + std::to_string(i) + "]");
    // The kernel refuses start == last too (a one-byte range).
    if (r.start >= r.last) return refuse(EINVAL, "allowed_iovas[" + std::to_string(i) + "]: start >= last");
    Range range{r.start, r.last};
    for (const Range& other : ranges)
      if (other.overlaps(range))
        return refuse(EINVAL, "allowed_iovas[" + std::to_string(i) + "] overlaps an earlier range");
    ranges.push_back(range);
  }
  return from(engine_->allow(ioas->name, ranges));
}

// ---- IOMMU_IOAS_MAP and IOMMU_IOAS_COPY ----
constexpr u32 kMapFlags = IOMMU_IOAS_MAP_FIXED_IOVA | IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE;

Prot prot_of(u32 flags) {
  bool r = flags & IOMMU_IOAS_MAP_READABLE, w = flags & IOMMU_IOAS_MAP_WRITEABLE;
  return r && w ? Prot::kReadWrite : r ? Prot::kRead : Prot::kWrite;
}

Rc Context::ioas_map(void* p) {
  auto& cmd = *static_cast<iommu_ioas_map*>(p);
  if ((cmd.flags & ~kMapFlags) || cmd.__reserved)
    return refuse(EOPNOTSUPP, "IOMMU_IOAS_MAP: unknown flags or non-zero __reserved");
  if (cmd.iova >= kUlongMax || cmd.length >= kUlongMax) return refuse(EOVERFLOW, "IOMMU_IOAS_MAP: iova or length too large");
  if (!(cmd.flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)))
    return refuse(EINVAL, "IOMMU_IOAS_MAP: neither READABLE nor WRITEABLE");
  if (!get(cmd.ioas_id, ObjType::kIoas)) return no_object("IOAS", cmd.ioas_id);
  std::optional<u64> fixed;
  if (cmd.flags & IOMMU_IOAS_MAP_FIXED_IOVA) fixed = cmd.iova;
  u64 iova = 0;
  if (Rc rc = map_user(cmd.ioas_id, cmd.user_va, cmd.length, fixed, prot_of(cmd.flags), iova)) return rc;
  cmd.iova = iova;
  return respond(&cmd, sizeof(cmd));
}

Rc Context::map_user(u32 ioas_id, u64 uva, u64 len, std::optional<u64> iova, Prot prot, u64& out_iova) {
  // iopt_alloc_pages: the length the iommu API can take, and uptr + length.
  if (!len || len > kUlongMax - kPage) return refuse(EINVAL, "map: length 0, or above ULONG_MAX - PAGE_SIZE");
  if (uva + len < uva) return refuse(EOVERFLOW, "map: user address + length passes 2^64");
  if (has_domain(ioas_id) && !user_range_mapped(uva, len))
    return refuse(EFAULT, "map: user memory is not mapped (the IOAS has a domain: pages are pinned)");
  MemorySource source;
  source.name = fresh("mem");
  source.va = uva;
  source.len = len;
  source.pa = uva;
  auto entry = sources_.try_emplace(source.name, uva).first;
  if (Rc rc = from(engine_->add_memory(source))) {
    sources_.erase(entry);
    return rc;
  }
  MapArgs args;
  args.iova = iova;
  args.len = len;
  args.source = source.name;
  args.prot = prot;
  auto mapped = engine_->map(objects_.at(ioas_id).name, args);
  if (Rc rc = from(mapped)) {
    if (engine_->remove_memory(source.name).ok()) sources_.erase(entry);
    return rc;
  }
  out_iova = mapped.value();
  return std::nullopt;
}

Rc Context::ioas_copy(void* p) {
  auto& cmd = *static_cast<iommu_ioas_copy*>(p);
  if (cmd.flags & ~kMapFlags) return refuse(EOPNOTSUPP, "IOMMU_IOAS_COPY: unknown flags");
  if (cmd.length >= kUlongMax || cmd.src_iova >= kUlongMax || cmd.dst_iova >= kUlongMax)
    return refuse(EOVERFLOW, "IOMMU_IOAS_COPY: iova or length too large");
  if (!(cmd.flags & (IOMMU_IOAS_MAP_WRITEABLE | IOMMU_IOAS_MAP_READABLE)))
    return refuse(EINVAL, "IOMMU_IOAS_COPY: neither READABLE nor WRITEABLE");
  Object* src = get(cmd.src_ioas_id, ObjType::kIoas);
  if (!src) return no_object("IOAS", cmd.src_ioas_id);
  Object* dst = get(cmd.dst_ioas_id, ObjType::kIoas);
  if (!dst) return no_object("IOAS", cmd.dst_ioas_id);
  CopyArgs args;
  args.from = src->name;
  args.src_iova = cmd.src_iova;
  args.len = cmd.length;
  if (cmd.flags & IOMMU_IOAS_MAP_FIXED_IOVA) args.dst_iova = cmd.dst_iova;
  args.prot = prot_of(cmd.flags);
  auto copied = engine_->copy(dst->name, args);
  if (Rc rc = from(copied)) return rc;
  cmd.dst_iova = copied.value();
  return respond(&cmd, sizeof(cmd));
}

// ---- IOMMU_IOAS_UNMAP ----
Rc Context::ioas_unmap(void* p) {
  auto& cmd = *static_cast<iommu_ioas_unmap*>(p);
  Object* ioas = get(cmd.ioas_id, ObjType::kIoas);
  if (!ioas) return no_object("IOAS", cmd.ioas_id);
  Result<u64> unmapped = u64{0};
  if (cmd.iova == 0 && cmd.length == ~u64{0}) {
    unmapped = engine_->unmap_all(ioas->name);
  } else {
    if (cmd.iova >= kUlongMax || cmd.length >= kUlongMax)
      return refuse(EOVERFLOW, "IOMMU_IOAS_UNMAP: iova or length too large");
    unmapped = engine_->unmap(ioas->name, cmd.iova, cmd.length);
    if (unmapped.ok() && unmapped.value() == 0) return refuse(ENOENT, "IOMMU_IOAS_UNMAP: nothing mapped there");
  }
  release_unused_sources();
  if (Rc rc = from(unmapped)) return rc;
  cmd.length = unmapped.value();
  return respond(&cmd, sizeof(cmd));
}

// ---- IOMMU_OPTION ----
bool has_cap_sys_resource() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  return data[CAP_SYS_RESOURCE / 32].effective & (1u << (CAP_SYS_RESOURCE % 32));
}

Rc Context::option(void* p) {
  auto& cmd = *static_cast<iommu_option*>(p);
  if (cmd.__reserved) return refuse(EOPNOTSUPP, "IOMMU_OPTION: __reserved must be 0");
  Rc rc;
  switch (cmd.option_id) {
    case IOMMU_OPTION_RLIMIT_MODE:
      if (cmd.object_id) return refuse(EOPNOTSUPP, "IOMMU_OPTION_RLIMIT_MODE is global: object_id must be 0");
      if (cmd.op == IOMMU_OPTION_OP_GET) {
        cmd.val64 = account_mm_;
      } else if (cmd.op == IOMMU_OPTION_OP_SET) {
        if (!has_cap_sys_resource()) return refuse(EPERM, "IOMMU_OPTION_RLIMIT_MODE: needs CAP_SYS_RESOURCE");
        if (!objects_.empty()) return refuse(EBUSY, "IOMMU_OPTION_RLIMIT_MODE: objects exist");
        if (cmd.val64 > 1) return refuse(EINVAL, "IOMMU_OPTION_RLIMIT_MODE: val64 must be 0 or 1");
        account_mm_ = cmd.val64 == 1;
      } else {
        return refuse(EOPNOTSUPP, "IOMMU_OPTION: unknown op");
      }
      break;
    case IOMMU_OPTION_HUGE_PAGES: {
      Object* ioas = get(cmd.object_id, ObjType::kIoas);
      if (!ioas) return no_object("IOAS", cmd.object_id);
      auto opts = engine_->ioas_options(ioas->name);
      if (Rc e = from(opts)) return e;
      if (cmd.op == IOMMU_OPTION_OP_GET) {
        cmd.val64 = opts.value().huge_pages;
      } else if (cmd.op == IOMMU_OPTION_OP_SET) {
        if (cmd.val64 > 1) return refuse(EINVAL, "IOMMU_OPTION_HUGE_PAGES: val64 must be 0 or 1");
        if (Rc e = from(engine_->set_huge_pages(ioas->name, cmd.val64 == 1))) return e;
      } else {
        return refuse(EOPNOTSUPP, "IOMMU_OPTION: unknown op");
      }
      break;
    }
    default:
      return refuse(EOPNOTSUPP, "IOMMU_OPTION: unknown option_id " + std::to_string(cmd.option_id));
  }
  if (!write_user(ubuf_ + offsetof(iommu_option, val64), &cmd.val64, sizeof(cmd.val64)))
    return refuse(EFAULT, "cannot write val64");
  return rc;
}

// ---- IOMMU_VFIO_IOAS (vfio_compat.c's iommufd_vfio_ioas) ----
Rc Context::vfio_ioas(void* p) {
  auto& cmd = *static_cast<iommu_vfio_ioas*>(p);
  if (cmd.__reserved) return refuse(EOPNOTSUPP, "IOMMU_VFIO_IOAS: __reserved must be 0");
  switch (cmd.op) {
    case IOMMU_VFIO_IOAS_GET:
      if (!vfio_ioas_) return refuse(ENODEV, "IOMMU_VFIO_IOAS get: no compatibility IOAS is set");
      cmd.ioas_id = vfio_ioas_;
      return respond(&cmd, sizeof(cmd));
    case IOMMU_VFIO_IOAS_SET:
      if (!get(cmd.ioas_id, ObjType::kIoas)) return no_object("IOAS", cmd.ioas_id);
      vfio_ioas_ = cmd.ioas_id;
      return std::nullopt;
    case IOMMU_VFIO_IOAS_CLEAR:
      vfio_ioas_ = 0;
      return std::nullopt;
    default:
      return refuse(EOPNOTSUPP, "IOMMU_VFIO_IOAS: unknown op " + std::to_string(cmd.op));
  }
}

// ---- the VFIO type1 container ioctls on /dev/iommu (vfio_compat.c) ----
//
// They act on the compatibility IOAS (ENODEV without one). This layer has no
// no-IOMMU mode: it answers as a kernel built without CONFIG_VFIO_NOIOMMU.

constexpr u64 kU32Max = 0xffffffffu;

Rc Context::vfio_ioctl(u32 request, u64 arg) {
  switch (request) {
    case VFIO_GET_API_VERSION: value_ = VFIO_API_VERSION; return std::nullopt;
    case VFIO_SET_IOMMU: return vfio_set_iommu(arg);
    case VFIO_CHECK_EXTENSION: return vfio_check_extension(arg);
    case VFIO_IOMMU_GET_INFO: return vfio_get_info(arg);
    case VFIO_IOMMU_MAP_DMA: return vfio_map_dma(arg);
    case VFIO_IOMMU_UNMAP_DMA: return vfio_unmap_dma(arg);
    default: return refuse(ENOTTY, "not an iommufd request, nor a VFIO container request it serves");
  }
}

Object* Context::compat_ioas(Rc& rc) {
  Object* ioas = vfio_ioas_ ? get(vfio_ioas_, ObjType::kIoas) : nullptr;
  if (!ioas) rc = refuse(ENODEV, "VFIO compatibility: no compatibility IOAS (IOMMU_VFIO_IOAS set)");
  return ioas;
}

// iommufd_vfio_check_extension: the type1 flavours and UNMAP_ALL are there;
// DMA_CC_IOMMU holds while no HWPT of the compatibility IOAS fails to enforce
// cache coherency, and no mock domain enforces it.
Rc Context::vfio_check_extension(u64 type) {
  switch (type) {
    case VFIO_TYPE1_IOMMU:
    case VFIO_TYPE1v2_IOMMU:
    case VFIO_UNMAP_ALL:
      value_ = 1;
      return std::nullopt;
    case VFIO_DMA_CC_IOMMU: {
      Rc rc;
      if (!compat_ioas(rc)) return rc;
      value_ = has_domain(vfio_ioas_) ? 0 : 1;
      return std::nullopt;
    }
    default:  // VFIO_NOIOMMU_IOMMU, VFIO_TYPE1_NESTING_IOMMU, VFIO_UPDATE_VADDR, unknown
      value_ = 0;
      return std::nullopt;
  }
}

// iommufd_vfio_set_iommu: TYPE1 (no unmap inside a mapping) is emulated by
// turning large pages off on the compatibility IOAS; TYPE1v2 changes nothing.
Rc Context::vfio_set_iommu(u64 type) {
  if (type != VFIO_TYPE1_IOMMU && type != VFIO_TYPE1v2_IOMMU)
    return refuse(EINVAL, "VFIO_SET_IOMMU: type " + std::to_string(type) + " is neither TYPE1 nor TYPE1v2");
  Rc rc;
  Object* ioas = compat_ioas(rc);
  if (!ioas) return rc;
  if (type == VFIO_TYPE1_IOMMU) return from(engine_->set_huge_pages(ioas->name, false));
  return std::nullopt;
}

// iommufd_get_pagesizes: the page sizes every domain takes, with sub-PAGE
// sizes folded into PAGE (vfio_update_pgsize_bitmap), at least iova_alignment.
u64 compat_pgsizes(const IoasState& s) {
  u64 bitmap = ~u64{0};
  for (const DomainInfo& d : s.domains) bitmap &= d.pgsize_bitmap;
  if (bitmap & (kPage - 1)) bitmap = (bitmap & ~(kPage - 1)) | kPage;
  return std::max(bitmap, s.iova_alignment);
}

// iommufd_vfio_iommu_get_info. The capability chain after the 24-byte info:
// DMA_AVAIL (12 bytes, padded to 16), then IOVA_RANGE (16 + 16 per hole of
// the reserved ranges). Each capability, and each range of IOVA_RANGE, is
// written only when the caller's argsz holds it whole; a capability's `next`
// is written when argsz reaches the end of the chain so far; cap_offset is
// set only when the whole chain fits. argsz comes back as the chain's size.
Rc Context::vfio_get_info(u64 arg) {
  constexpr u32 kMinsz = offsetof(vfio_iommu_type1_info, iova_pgsizes) + sizeof(u64);
  vfio_iommu_type1_info info{};
  if (!read_user(&info, arg, kMinsz)) return refuse(EFAULT, "VFIO_IOMMU_GET_INFO: cannot read the struct");
  if (info.argsz < kMinsz)
    return refuse(EINVAL, "VFIO_IOMMU_GET_INFO: argsz " + std::to_string(info.argsz) + " is below " +
                              std::to_string(kMinsz));
  const u32 copy = std::min<u32>(info.argsz, sizeof(info));
  Rc rc;
  Object* ioas = compat_ioas(rc);
  if (!ioas) return rc;
  auto state = engine_->snapshot(ioas->name);
  if (Rc e = from(state)) return e;
  auto holes = engine_->ranges(ioas->name);
  if (Rc e = from(holes)) return e;
  info.flags = VFIO_IOMMU_INFO_PGSIZES;
  info.iova_pgsizes = compat_pgsizes(state.value());
  info.cap_offset = 0;

  auto cant_write = [] { return refuse(EFAULT, "VFIO_IOMMU_GET_INFO: cannot write the capability chain"); };
  // Each writes its capability at `at` as far as `avail` bytes allow and
  // returns its size.
  auto fill_dma_avail = [&](u64 at, u64 avail, u64& size) -> Rc {
    vfio_iommu_type1_info_dma_avail cap{};
    cap.header.id = VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL;
    cap.header.version = 1;
    cap.avail = static_cast<u32>(kU32Max);  // iommufd's limit is the cgroup's, not a count of maps
    if (avail >= sizeof(cap) && !write_user(at, &cap, sizeof(cap))) return cant_write();
    size = sizeof(cap);
    return std::nullopt;
  };
  auto fill_iova_range = [&](u64 at, u64 avail, u64& size) -> Rc {
    vfio_iommu_type1_info_cap_iova_range cap{};
    cap.header.id = VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE;
    cap.header.version = 1;
    auto size_with = [](u64 n) { return sizeof(vfio_iommu_type1_info_cap_iova_range) + n * sizeof(vfio_iova_range); };
    for (const Range& r : holes.value().ranges) {
      const vfio_iova_range range{r.start, r.last};
      if (avail >= size_with(cap.nr_iovas + 1) &&
          !write_user(at + size_with(cap.nr_iovas), &range, sizeof(range)))
        return cant_write();
      ++cap.nr_iovas;
    }
    if (avail >= size_with(cap.nr_iovas) && !write_user(at, &cap, sizeof(cap))) return cant_write();
    size = size_with(cap.nr_iovas);
    return std::nullopt;
  };
  u64 total = sizeof(info);
  std::optional<u64> last_cap;
  for (int cap = 0; cap != 2; ++cap) {
    u64 size = 0;
    const u64 avail = info.argsz > total ? info.argsz - total : 0;
    Rc e = cap == 0 ? fill_dma_avail(arg + total, avail, size) : fill_iova_range(arg + total, avail, size);
    if (e) return e;
    size = (size + 7) & ~u64{7};
    if (last_cap && info.argsz >= total) {
      const u32 next = static_cast<u32>(total);
      if (!write_user(*last_cap + offsetof(vfio_info_cap_header, next), &next, sizeof(next))) return cant_write();
    }
    last_cap = arg + total;
    total += size;
  }
  if (info.argsz >= total) info.cap_offset = sizeof(info);
  info.argsz = static_cast<u32>(total);
  info.flags |= VFIO_IOMMU_INFO_CAPS;
  if (!write_user(arg, &info, copy)) return refuse(EFAULT, "VFIO_IOMMU_GET_INFO: cannot write the struct back");
  return std::nullopt;
}

Prot vfio_prot(u32 flags) {
  const bool r = flags & VFIO_DMA_MAP_FLAG_READ, w = flags & VFIO_DMA_MAP_FLAG_WRITE;
  return r && w ? Prot::kReadWrite : r ? Prot::kRead : w ? Prot::kWrite : Prot::kNone;
}

// iommufd_vfio_map_dma: a fixed map of vaddr at iova in the compatibility IOAS.
Rc Context::vfio_map_dma(u64 arg) {
  constexpr u32 kMinsz = sizeof(vfio_iommu_type1_dma_map);
  static_assert(kMinsz == offsetof(vfio_iommu_type1_dma_map, size) + sizeof(u64));
  vfio_iommu_type1_dma_map map{};
  if (!read_user(&map, arg, kMinsz)) return refuse(EFAULT, "VFIO_IOMMU_MAP_DMA: cannot read the struct");
  if (map.argsz < kMinsz || (map.flags & ~u32{VFIO_DMA_MAP_FLAG_READ | VFIO_DMA_MAP_FLAG_WRITE}))
    return refuse(EINVAL, "VFIO_IOMMU_MAP_DMA: argsz below " + std::to_string(kMinsz) + ", or flags other than "
                          "READ and WRITE");
  Rc rc;
  if (!compat_ioas(rc)) return rc;
  u64 iova = 0;
  return map_user(vfio_ioas_, map.vaddr, map.size, map.iova, vfio_prot(map.flags), iova);
}

// iommufd_vfio_unmap_dma. With large pages off (TYPE1) the range is first cut
// out of the areas around it, so an unmap inside a mapping works; nothing
// mapped in the range is a success of 0 bytes. `size` comes back as the bytes
// unmapped, on failure too (what a partial unmap removed).
Rc Context::vfio_unmap_dma(u64 arg) {
  constexpr u32 kMinsz = offsetof(vfio_iommu_type1_dma_unmap, size) + sizeof(u64);
  vfio_iommu_type1_dma_unmap unmap{};
  if (!read_user(&unmap, arg, kMinsz)) return refuse(EFAULT, "VFIO_IOMMU_UNMAP_DMA: cannot read the struct");
  if (unmap.argsz < kMinsz || (unmap.flags & ~u32{VFIO_DMA_UNMAP_FLAG_ALL}))
    return refuse(EINVAL, "VFIO_IOMMU_UNMAP_DMA: argsz below " + std::to_string(kMinsz) + ", or flags other than "
                          "UNMAP_FLAG_ALL");
  Rc rc;
  Object* ioas = compat_ioas(rc);
  if (!ioas) return rc;
  const std::string name = ioas->name;
  auto mapped_bytes = [&] {
    u64 n = 0;
    if (auto s = engine_->snapshot(name); s.ok())
      for (const AreaInfo& a : s.value().areas) n += a.iova.length();
    return n;
  };
  const u64 before = mapped_bytes();
  Result<u64> done = u64{0};
  if (unmap.flags & VFIO_DMA_UNMAP_FLAG_ALL) {
    if (unmap.iova || unmap.size)
      return refuse(EINVAL, "VFIO_IOMMU_UNMAP_DMA: UNMAP_FLAG_ALL takes iova 0 and size 0");
    done = engine_->unmap_all(name);
  } else {
    auto opts = engine_->ioas_options(name);
    if (Rc e = from(opts)) return e;
    if (!opts.value().huge_pages) {
      // iopt_cut_iova at the range's last byte, then before its first (none before 0).
      if (Rc e = from(engine_->cut(name, unmap.iova + unmap.size - 1))) return e;
      if (unmap.iova)
        if (Rc e = from(engine_->cut(name, unmap.iova - 1))) return e;
    }
    // (The struct has a flexible array member: a lambda may not capture it.)
    const u64 first = unmap.iova, size = unmap.size;
    const bool touches = [&] {
      auto r = Range::from_len(first, size);
      auto s = engine_->snapshot(name);
      if (!r || !s.ok()) return true;
      return std::any_of(s.value().areas.begin(), s.value().areas.end(),
                         [&](const AreaInfo& a) { return a.iova.overlaps(*r); });
    }();
    done = engine_->unmap(name, unmap.iova, unmap.size);
    if (!done.ok() && done.error().code == ENOENT && !touches) done = u64{0};
  }
  release_unused_sources();
  unmap.size = before - mapped_bytes();
  if (!write_user(arg, &unmap, kMinsz)) return refuse(EFAULT, "VFIO_IOMMU_UNMAP_DMA: cannot write the struct back");
  return from(done);
}

// ---- IOMMU_GET_HW_INFO (device.c's iommufd_get_hw_info, with the input
// type of later kernels; the mock IOMMU's hw_info and capabilities) ----
Rc Context::get_hw_info(void* p) {
  auto& cmd = *static_cast<iommu_hw_info*>(p);
  if ((cmd.flags & ~u32{IOMMU_HW_INFO_FLAG_INPUT_TYPE}) || cmd.__reserved[0] || cmd.__reserved[1] ||
      cmd.__reserved[2])
    return refuse(EOPNOTSUPP, "IOMMU_GET_HW_INFO: unknown flags or non-zero __reserved");
  Object* idev = get(cmd.dev_id, ObjType::kDevice);
  if (!idev) return no_object("device", cmd.dev_id);
  if (!(cmd.flags & IOMMU_HW_INFO_FLAG_INPUT_TYPE)) cmd.in_data_type = IOMMU_HW_INFO_TYPE_DEFAULT;
  if (cmd.in_data_type != IOMMU_HW_INFO_TYPE_DEFAULT && cmd.in_data_type != IOMMU_HW_INFO_TYPE_SELFTEST)
    return refuse(EOPNOTSUPP, "IOMMU_GET_HW_INFO: the mock IOMMU has no data of type " +
                                  std::to_string(cmd.in_data_type));
  const iommu_test_hw_info data{0, IOMMU_HW_INFO_SELFTEST_REGVAL};
  cmd.out_data_type = IOMMU_HW_INFO_TYPE_SELFTEST;
  u32 copy_len = std::min<u32>(cmd.data_len, sizeof(data));
  if (!write_user(cmd.data_uptr, &data, copy_len)) return refuse(EFAULT, "cannot write data_uptr");
  // clear_user of the rest, a page at a time (data_len may be 4 GiB).
  static const unsigned char kZeros[kPage] = {};
  for (u64 at = copy_len; at < cmd.data_len;) {
    const u64 n = std::min<u64>(cmd.data_len - at, kPage);
    if (!write_user(cmd.data_uptr + at, kZeros, n)) return refuse(EFAULT, "cannot clear the rest of data_uptr");
    at += n;
  }
  cmd.data_len = sizeof(data);
  cmd.out_capabilities = (idev->dev_flags & MOCK_FLAGS_DEVICE_NO_DIRTY) ? 0 : IOMMU_HW_CAP_DIRTY_TRACKING;
  cmd.out_max_pasid_log2 = (idev->dev_flags & MOCK_FLAGS_DEVICE_PASID) ? MOCK_PASID_WIDTH : 0;
  return respond(&cmd, sizeof(cmd));
}

// ---- IOMMU_HWPT_ALLOC (hw_pagetable.c's iommufd_hwpt_alloc; the mock
// IOMMU's domain_alloc_user). A paging HWPT on an IOAS is a mock domain in
// that IOAS before any device joins it: an engine device of its own (its
// holder) keeps the domain attached. Nested HWPTs are not served. ----
Rc Context::hwpt_alloc(void* p) {
  auto& cmd = *static_cast<iommu_hwpt_alloc*>(p);
  if (cmd.__reserved) return refuse(EOPNOTSUPP, "IOMMU_HWPT_ALLOC: __reserved must be 0");
  if ((cmd.data_type == IOMMU_HWPT_DATA_NONE) != (cmd.data_len == 0))
    return refuse(EINVAL, "IOMMU_HWPT_ALLOC: data_len must be 0 exactly when data_type is NONE");
  Object* idev = get(cmd.dev_id, ObjType::kDevice);
  if (!idev) return no_object("device", cmd.dev_id);
  auto pt = objects_.find(cmd.pt_id);
  if (pt == objects_.end()) return refuse(EINVAL, "IOMMU_HWPT_ALLOC: no object with id " + std::to_string(cmd.pt_id));
  if (pt->second.type == ObjType::kHwpt)
    return refuse(ENOTTY, "IOMMU_HWPT_ALLOC of a nested HWPT is not served by ioas yet");
  if (pt->second.type != ObjType::kIoas) return refuse(EINVAL, "IOMMU_HWPT_ALLOC: pt_id is neither an IOAS nor a HWPT");
  constexpr u32 kValid = IOMMU_HWPT_ALLOC_NEST_PARENT | IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
  if (cmd.flags & ~kValid) return refuse(EOPNOTSUPP, "IOMMU_HWPT_ALLOC: unknown flags for a paging HWPT");
  bool dirty = cmd.flags & IOMMU_HWPT_ALLOC_DIRTY_TRACKING;
  if (cmd.data_len || (dirty && (idev->dev_flags & MOCK_FLAGS_DEVICE_NO_DIRTY)))
    return refuse(EOPNOTSUPP, "IOMMU_HWPT_ALLOC: the mock IOMMU takes no data for a paging domain, and no "
                              "dirty tracking for a MOCK_FLAGS_DEVICE_NO_DIRTY device");
  AttachTarget t{cmd.pt_id, 0};
  if (Rc rc = answer_writable(&cmd, sizeof(cmd))) return rc;
  std::string holder = fresh("holder"), dom;
  // The table entry first: after the attach nothing allocates.
  Object hwpt;
  hwpt.type = ObjType::kHwpt;
  hwpt.ioas_id = cmd.pt_id;
  hwpt.huge = (idev->dev_flags & MOCK_FLAGS_DEVICE_HUGE_IOVA) != 0;
  hwpt.dirty = dirty;
  hwpt.holder = holder;
  Slot slot = make_slot(std::move(hwpt));
  if (Rc rc = engine_attach(holder, idev->dev_flags, t, &dom)) return rc;
  slot.mapped().name = std::move(dom);
  u32 id = insert_slot(std::move(slot));
  ++objects_.at(cmd.pt_id).users;
  cmd.out_hwpt_id = id;
  return respond(&cmd, sizeof(cmd));
}

// ---- dirty tracking (hw_pagetable.c's iommufd_hwpt_set_dirty_tracking and
// iommufd_hwpt_get_dirty_bitmap, io_pagetable.c, iova_bitmap.c; the mock
// IOMMU's dirty_ops and selftest.c's iommufd_test_dirty). A HWPT allocated
// with IOMMU_HWPT_ALLOC_DIRTY_TRACKING has the mock's dirty ops; any other
// HWPT has none (EOPNOTSUPP). The engine's domain keeps the dirty state, as
// the mock's xarray does: a device write marks its 2 KiB slot, and a leaf
// (a slot, or a whole 1 MiB page) reads dirty when any of its slots is. ----

Rc Context::dirty_tracking_on(const Object& hwpt, bool& on) const {
  auto s = engine_->snapshot(objects_.at(hwpt.ioas_id).name);
  if (Rc rc = from(s)) return rc;
  for (const DomainInfo& d : s.value().domains)
    if (d.name == hwpt.name) {
      on = d.dirty != DirtyMode::kOff;
      return std::nullopt;
    }
  return refuse(ENOENT, "the domain of HWPT " + hwpt.name + " is not in its IOAS");
}

Rc Context::hwpt_set_dirty_tracking(void* p) {
  auto& cmd = *static_cast<iommu_hwpt_set_dirty_tracking*>(p);
  // The kernel reads no __reserved here.
  if (cmd.flags & ~u32{IOMMU_HWPT_DIRTY_TRACKING_ENABLE})
    return refuse(EOPNOTSUPP, "IOMMU_HWPT_SET_DIRTY_TRACKING: unknown flags");
  Object* hwpt = get(cmd.hwpt_id, ObjType::kHwpt);
  if (!hwpt) return no_object("HWPT", cmd.hwpt_id);
  if (!hwpt->dirty)
    return refuse(EOPNOTSUPP, "IOMMU_HWPT_SET_DIRTY_TRACKING: HWPT " + std::to_string(cmd.hwpt_id) +
                                  " was not allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING");
  // Enabling clears every dirty bit first (iopt_clear_dirty_data); the
  // engine's every mode change starts from a clean slate, and nothing can
  // read the bits while tracking is off.
  bool enable = cmd.flags & IOMMU_HWPT_DIRTY_TRACKING_ENABLE;
  return from(engine_->set_dirty_tracking(hwpt->name, enable ? DirtyMode::kOn : DirtyMode::kOff));
}

// The caller's bitmap as iova_bitmap.c writes it. Bit n stands for the
// 2^pgshift bytes at iova + (n << pgshift) (pgshift = __ffs(page_size)) and
// lives at byte data + n / 8, bit n % 8 (bitmap_set on little-endian longs).
// Bits are only ever set. A record not inside [iova, iova + length) sets
// nothing and makes the call's answer EPROTO (the first such one), after the
// walk. A record's bits go page of the bitmap by page; a page that cannot be
// pinned for writing ends that record without an error, as
// iova_bitmap_set does when iova_bitmap_advance_to fails.
struct Context::DirtyBitmap {
  u64 data = 0;
  u64 iova = 0;
  u64 length = 0;
  unsigned pgshift = 0;
  int err = 0;

  void set(u64 rec_iova, u64 rec_len) {
    if (!rec_len || rec_len > length || rec_iova < iova || rec_iova - iova > length - rec_len) {
      if (!err) err = EPROTO;
      return;
    }
    const u64 last_bit = (rec_iova - iova + (rec_len - 1)) >> pgshift;
    for (u64 bit = (rec_iova - iova) >> pgshift; bit <= last_bit;) {
      const u64 first_byte = data + bit / 8;
      const u64 page_end = (first_byte & ~(kPage - 1)) + kPage;  // first byte past its page
      const u64 upto = std::min(last_bit, (page_end - data) * 8 - 1);
      const u64 last_byte = data + upto / 8;
      std::vector<unsigned char> bytes(last_byte - first_byte + 1);
      if (!read_user(bytes.data(), first_byte, bytes.size())) return;
      for (u64 b = bit; b <= upto; ++b) bytes[(data + b / 8) - first_byte] |= static_cast<unsigned char>(1u << (b % 8));
      if (!write_user(first_byte, bytes.data(), bytes.size())) return;
      bit = upto + 1;
    }
  }
};

// The mock's read_and_clear_dirty over one piece of one area: from the
// piece's first IOVA it steps slot by slot, and at a slot of a 1 MiB page by
// the whole page: a dirty leaf is cleaned (unless `keep`) and recorded from
// the IOVA the step stood at, for the leaf's length. (A walk that starts
// inside a 1 MiB page so records past its end, and steps over the first slots
// of the leaves after it.) The leaves it stood on are cleaned in the engine
// one contiguous run at a time.
Rc Context::read_and_clear_dirty(const Object& hwpt, Range piece, bool keep, DirtyBitmap& bitmap) {
  auto leaves = engine_->leaves(hwpt.name, piece);
  if (Rc rc = from(leaves)) return rc;
  const std::vector<LeafInfo>& ls = leaves.value();
  std::optional<Range> run;  // visited leaves not yet cleaned
  bool run_dirty = false;
  auto clean_run = [&]() -> Rc {
    Rc rc;
    if (run && run_dirty && !keep) rc = from(engine_->read_dirty(hwpt.name, run->start, run->length(), kMockPage, false));
    run.reset();
    run_dirty = false;
    return rc;
  };
  size_t k = 0;
  for (u64 iova = piece.start;;) {
    while (k < ls.size() && ls[k].iova.last < iova) ++k;
    u64 step = kMockPage;
    if (k < ls.size() && ls[k].iova.start <= iova) {
      const LeafInfo& leaf = ls[k];
      step = leaf.iova.length();
      if (leaf.dirty) bitmap.set(iova, step);
      if (!run || run->last + 1 != leaf.iova.start)
        if (Rc rc = clean_run()) return rc;
      run = run ? Range{run->start, leaf.iova.last} : leaf.iova;
      run_dirty = run_dirty || leaf.dirty;
    }
    if (piece.last - iova < step) break;
    iova += step;
  }
  return clean_run();
}

Rc Context::hwpt_get_dirty_bitmap(void* p) {
  auto& cmd = *static_cast<iommu_hwpt_get_dirty_bitmap*>(p);
  if ((cmd.flags & ~u32{IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR}) || cmd.__reserved)
    return refuse(EOPNOTSUPP, "IOMMU_HWPT_GET_DIRTY_BITMAP: unknown flags or non-zero __reserved");
  Object* hwpt = get(cmd.hwpt_id, ObjType::kHwpt);
  if (!hwpt) return no_object("HWPT", cmd.hwpt_id);
  // iommufd_check_iova_range: the range against the IOAS's iova_alignment,
  // then against page_size (which the kernel takes as a mask: only its
  // lowest set bit decides the bitmap's granule).
  const std::string what = "IOMMU_HWPT_GET_DIRTY_BITMAP";
  if (!cmd.length) return refuse(EINVAL, what + ": length 0");
  auto range = Range::from_len(cmd.iova, cmd.length);
  if (!range) return refuse(EOVERFLOW, what + ": iova + length - 1 overflows");
  const std::string& ioas = objects_.at(hwpt->ioas_id).name;
  auto ranges = engine_->ranges(ioas);
  if (Rc rc = from(ranges)) return rc;
  const u64 alignment = ranges.value().alignment;
  const u64 end = range->last + 1;  // 0 when the range ends at 2^64-1, aligned to anything
  if ((cmd.iova & (alignment - 1)) || (end & (alignment - 1)))
    return refuse(EINVAL, what + ": iova and iova + length must be multiples of the IOAS's iova_alignment " +
                              std::to_string(alignment));
  if (!cmd.page_size) return refuse(EINVAL, what + ": page_size 0");
  if ((cmd.iova & (cmd.page_size - 1)) || (end & (cmd.page_size - 1)))
    return refuse(EINVAL, what + ": iova and iova + length must be multiples of page_size");
  if (!hwpt->dirty)
    return refuse(EOPNOTSUPP, what + ": HWPT " + std::to_string(cmd.hwpt_id) +
                                  " was not allocated with IOMMU_HWPT_ALLOC_DIRTY_TRACKING");
  bool on = false;
  if (Rc rc = dirty_tracking_on(*hwpt, on)) return rc;
  auto s = engine_->snapshot(ioas);
  if (Rc rc = from(s)) return rc;
  DirtyBitmap bitmap;
  bitmap.data = cmd.data;
  bitmap.iova = cmd.iova;
  bitmap.length = cmd.length;
  bitmap.pgshift = static_cast<unsigned>(std::countr_zero(cmd.page_size));
  // iopt_for_each_contig_area: areas back to back from iova to the end; a
  // hole stops the walk with EINVAL, after the areas before it were read.
  u64 cur = range->start;
  for (const AreaInfo& a : s.value().areas) {
    if (a.iova.last < cur) continue;
    if (a.iova.start > cur) break;
    if (!on) return refuse(EINVAL, what + ": dirty tracking is off");
    const Range piece{cur, std::min(a.iova.last, range->last)};
    if (Rc rc = read_and_clear_dirty(*hwpt, piece, cmd.flags & IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR, bitmap))
      return rc;
    if (piece.last == range->last) {
      if (bitmap.err) return refuse(bitmap.err, what + ": a dirty leaf reaches past the range asked for");
      return std::nullopt;
    }
    cur = piece.last + 1;
  }
  return refuse(EINVAL, what + ": " + std::to_string(cur) + " is in no area (the range must be mapped throughout)");
}

// IOMMU_TEST_OP_DIRTY: each set bit i of the bitmap at uptr marks one slot of
// the mock domain dirty, a device write to it, and is counted when that slot
// is mapped. The kernel finds the slot at xarray index (iova + i * page_size)
// / page_size, whose slots are MOCK_IO_PAGE_SIZE apart: for page_size 2 KiB
// that is the slot of iova + i * page_size. (A read-only slot is counted but
// stays clean here: the engines record dirty only where a device can write.)
Rc Context::test_dirty(iommu_test_cmd& cmd) {
  const u64 iova = cmd.dirty.iova, length = cmd.dirty.length, page_size = cmd.dirty.page_size;
  if (!page_size || !length || iova % page_size || length % page_size || !cmd.dirty.uptr)
    return refuse(EINVAL, "TEST_OP_DIRTY: page_size and length must be non-zero, iova and length multiples "
                          "of page_size, uptr set");
  const u64 max = length / page_size;
  constexpr u64 kMaxBits = (u64{16} << 20) * 8;
  if (max > kMaxBits) return refuse(EOVERFLOW, "TEST_OP_DIRTY: more than 16M * 8 pages");
  Object* hwpt = get(cmd.id, ObjType::kHwpt);
  if (!hwpt) return no_object("HWPT", cmd.id);
  bool on = false;
  if (Rc rc = dirty_tracking_on(*hwpt, on)) return rc;
  if (!on) return refuse(EINVAL, "TEST_OP_DIRTY: dirty tracking is off");
  std::vector<unsigned char> bits((max + 7) / 8);
  if (!read_user(bits.data(), cmd.dirty.uptr, bits.size())) return refuse(EFAULT, "TEST_OP_DIRTY: cannot read uptr");
  u64 count = 0;
  for (u64 i = 0; i != max; ++i) {
    if (!(bits[i / 8] & (1u << (i % 8)))) continue;
    const u64 index = (iova + i * page_size) / page_size;
    if (index > kMaxIova / kMockPage) continue;  // no slot has that index
    const u64 slot = index * kMockPage;
    auto t = engine_->translate(hwpt->name, slot);
    if (Rc rc = from(t)) return rc;
    if (!t.value()) continue;
    ++count;
    if (Rc rc = from(engine_->dma(hwpt->name, DmaDir::kWrite, slot, kMockPage))) return rc;
  }
  cmd.dirty.out_nr_dirty = count;
  return respond(&cmd, sizeof(cmd));
}

// ---- IOMMU_TEST_CMD (selftest.c's iommufd_test) ----
Rc Context::test_cmd(void* p) {
  auto& cmd = *static_cast<iommu_test_cmd*>(p);
  switch (cmd.op) {
    case IOMMU_TEST_OP_ADD_RESERVED: return add_reserved(cmd);
    case IOMMU_TEST_OP_MOCK_DOMAIN:
    case IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS: return mock_domain(cmd);
    case IOMMU_TEST_OP_MD_CHECK_MAP: return md_check_map(cmd);
    case IOMMU_TEST_OP_MD_CHECK_REFS: return md_check_refs(cmd);
    case IOMMU_TEST_OP_SET_TEMP_MEMORY_LIMIT:
      if (cmd.memory_limit.limit < sizeof(unsigned long) + sizeof(u32))
        return refuse(EINVAL, "SET_TEMP_MEMORY_LIMIT: below the batch element size");
      g_memory_limit = cmd.memory_limit.limit;
      return std::nullopt;
    case IOMMU_TEST_OP_MOCK_DOMAIN_REPLACE: return mock_domain_replace(cmd);
    case IOMMU_TEST_OP_CREATE_ACCESS: return create_access(cmd);
    case IOMMU_TEST_OP_DESTROY_ACCESS_PAGES: return destroy_access_pages(cmd);
    case IOMMU_TEST_OP_ACCESS_PAGES: return access_pages(cmd);
    case IOMMU_TEST_OP_ACCESS_RW: return access_rw(cmd);
    case IOMMU_TEST_OP_ACCESS_REPLACE_IOAS: return access_replace_ioas(cmd);
    case IOMMU_TEST_OP_DIRTY: return test_dirty(cmd);
    case IOMMU_TEST_OP_MD_CHECK_IOTLB:
    case IOMMU_TEST_OP_TRIGGER_IOPF:
      return refuse(ENOTTY, "IOMMU_TEST_CMD op " + std::to_string(cmd.op) + " is not served by ioas yet");
    default:
      return refuse(EOPNOTSUPP, "IOMMU_TEST_CMD: unknown op " + std::to_string(cmd.op));
  }
}

Rc Context::add_reserved(iommu_test_cmd& cmd) {
  u64 start = cmd.add_reserved.start, length = cmd.add_reserved.length;
  if (!length) return refuse(EINVAL, "ADD_RESERVED: length 0");
  if (start + (length - 1) < start) return refuse(EOVERFLOW, "ADD_RESERVED: start + length - 1 overflows");
  Object* ioas = get(cmd.id, ObjType::kIoas);
  if (!ioas) return no_object("IOAS", cmd.id);
  std::string owner = fresh("test");
  ioas->owners.reserve(ioas->owners.size() + 1);  // the push below then allocates nothing
  if (Rc rc = from(engine_->reserve(ioas->name, Range{start, start + (length - 1)}, owner))) return rc;
  ioas->owners.push_back(std::move(owner));
  return std::nullopt;
}

// Where a device attaching to pt_id goes (device.c's iommufd_device_attach):
// the HWPT pt_id, or for an IOAS its first automatic domain, or a new one
// (hwpt_id 0). ENOENT when pt_id is neither.
Rc Context::resolve_pt(u32 pt_id, AttachTarget& t) const {
  auto target = objects_.find(pt_id);
  if (target == objects_.end() ||
      (target->second.type != ObjType::kIoas && target->second.type != ObjType::kHwpt))
    return no_object("IOAS or HWPT", pt_id);
  t.ioas_id = target->second.type == ObjType::kIoas ? pt_id : target->second.ioas_id;
  t.hwpt_id = target->second.type == ObjType::kHwpt ? pt_id : 0;
  if (!t.hwpt_id)
    for (const auto& [id, obj] : objects_)
      if (obj.type == ObjType::kHwpt && obj.auto_domain && obj.ioas_id == t.ioas_id) {
        t.hwpt_id = id;
        break;
      }
  return std::nullopt;
}

// Attaches engine device `dev` to the target's domain; a new automatic domain
// (a huge one for a MOCK_FLAGS_DEVICE_HUGE_IOVA device) gets the engine name
// *dom. A new domain pins the IOAS's areas first: EFAULT where they are gone.
Rc Context::engine_attach(const std::string& dev, u32 dev_flags, const AttachTarget& t, std::string* dom) {
  if (!t.hwpt_id)
    if (Rc rc = check_areas_pinnable(t.ioas_id)) return rc;
  if (t.hwpt_id && objects_.at(t.hwpt_id).dirty && (dev_flags & MOCK_FLAGS_DEVICE_NO_DIRTY))
    return refuse(EINVAL, "attach: a MOCK_FLAGS_DEVICE_NO_DIRTY device cannot join a dirty-tracking domain");
  *dom = t.hwpt_id ? objects_.at(t.hwpt_id).name : fresh("hwpt");
  bool huge = t.hwpt_id ? objects_.at(t.hwpt_id).huge : (dev_flags & MOCK_FLAGS_DEVICE_HUGE_IOVA) != 0;
  AttachArgs args;
  args.dev = dev;
  args.dom = *dom;
  set_mock_domain(args, huge);
  return from(engine_->attach(objects_.at(t.ioas_id).name, args));
}

// The HWPT a device attached to: the target's, or a new automatic one (its id
// allocated now, after the objects the caller allocated first).
Context::Slot Context::auto_hwpt_slot(const AttachTarget& t, u32 dev_flags) {
  Object hwpt;
  hwpt.type = ObjType::kHwpt;
  hwpt.ioas_id = t.ioas_id;
  hwpt.auto_domain = true;
  hwpt.huge = (dev_flags & MOCK_FLAGS_DEVICE_HUGE_IOVA) != 0;
  return make_slot(std::move(hwpt));
}

u32 Context::take_hwpt(const AttachTarget& t, std::string dom, Slot& spare) {
  u32 hwpt_id = t.hwpt_id;
  if (!hwpt_id) {
    spare.mapped().name = std::move(dom);
    hwpt_id = insert_slot(std::move(spare));
    ++objects_.at(t.ioas_id).users;
  }
  ++objects_.at(hwpt_id).users;
  return hwpt_id;
}

// A device left HWPT hwpt_id: an automatic domain with no device left goes.
void Context::drop_hwpt(u32 hwpt_id) {
  Object& hwpt = objects_.at(hwpt_id);
  --hwpt.users;
  if (hwpt.auto_domain && hwpt.users == 1) {
    --objects_.at(hwpt.ioas_id).users;
    objects_.erase(hwpt_id);
  }
}

// A selftest device (stdev), its device (idev) attached to pt_id. Ids in the
// kernel's order: stdev, idev, then a new automatic domain.
Rc Context::mock_domain(iommu_test_cmd& cmd) {
  constexpr u32 kValidDevFlags = MOCK_FLAGS_DEVICE_NO_DIRTY | MOCK_FLAGS_DEVICE_HUGE_IOVA | MOCK_FLAGS_DEVICE_PASID;
  u32 dev_flags = cmd.op == IOMMU_TEST_OP_MOCK_DOMAIN_FLAGS ? cmd.mock_domain_flags.dev_flags : 0;
  if (dev_flags & ~kValidDevFlags) return refuse(EINVAL, "MOCK_DOMAIN_FLAGS: unknown dev_flags");
  AttachTarget t;
  if (Rc rc = resolve_pt(cmd.id, t)) return rc;
  if (Rc rc = answer_writable(&cmd, sizeof(cmd))) return rc;
  std::string dev = fresh("dev"), dom;
  // The table entries first: after the attach nothing allocates.
  Object stdev;
  stdev.type = ObjType::kSelftest;
  Slot stdev_slot = make_slot(std::move(stdev));
  Object idev;
  idev.type = ObjType::kDevice;
  idev.name = dev;
  idev.dev_flags = dev_flags;
  idev.users = 2;  // the table's and its selftest device's
  Slot idev_slot = make_slot(std::move(idev));
  Slot hwpt_slot = auto_hwpt_slot(t, dev_flags);
  if (Rc rc = engine_attach(dev, dev_flags, t, &dom)) return rc;

  u32 stdev_id = insert_slot(std::move(stdev_slot));
  u32 idev_id = insert_slot(std::move(idev_slot));
  u32 hwpt_id = take_hwpt(t, std::move(dom), hwpt_slot);
  objects_.at(idev_id).hwpt_id = hwpt_id;
  objects_.at(stdev_id).idev_id = idev_id;

  cmd.mock_domain.out_stdev_id = stdev_id;
  cmd.mock_domain.out_hwpt_id = hwpt_id;
  cmd.mock_domain.out_idev_id = idev_id;
  return respond(&cmd, sizeof(cmd));
}

// Moves a selftest device's device to pt_id (iommufd_device_replace): a no-op
// when it resolves to the device's own HWPT; otherwise the device leaves its
// HWPT, which goes when it was automatic and had no other device.
Rc Context::mock_domain_replace(iommu_test_cmd& cmd) {
  Object* sobj = get(cmd.id, ObjType::kSelftest);
  if (!sobj) return no_object("selftest device", cmd.id);
  AttachTarget t;
  if (Rc rc = resolve_pt(cmd.mock_domain_replace.pt_id, t)) return rc;
  u32 idev_id = sobj->idev_id;
  Object& idev = objects_.at(idev_id);
  u32 old = idev.hwpt_id;
  if (t.hwpt_id != old) {
    if (!t.hwpt_id)
      if (Rc rc = check_areas_pinnable(t.ioas_id)) return rc;
    const std::string dev = idev.name;
    const u32 dev_flags = idev.dev_flags;
    Slot hwpt_slot = auto_hwpt_slot(t, dev_flags);
    if (Rc rc = from(engine_->detach(dev))) return rc;
    std::string dom;
    if (Rc rc = engine_attach(dev, dev_flags, t, &dom)) {
      // Back to where it was; the old domain accepted this device before.
      AttachTarget back{objects_.at(old).ioas_id, old};
      std::string old_dom;
      (void)engine_attach(dev, dev_flags, back, &old_dom);
      return rc;
    }
    u32 hwpt_id = take_hwpt(t, std::move(dom), hwpt_slot);
    objects_.at(idev_id).hwpt_id = hwpt_id;
    drop_hwpt(old);
    t.hwpt_id = hwpt_id;
  }
  cmd.mock_domain_replace.pt_id = t.hwpt_id;
  return respond(&cmd, sizeof(cmd));
}

// Every MOCK_IO_PAGE_SIZE slot of [iova, iova+length) translates to the
// matching byte of uptr (pa = va for user memory).
Rc Context::md_check_map(iommu_test_cmd& cmd) {
  u64 iova = cmd.check_map.iova, length = cmd.check_map.length, uptr = cmd.check_map.uptr;
  if (iova % kMockPage || length % kMockPage || uptr % kMockPage || uptr + length < uptr)
    return refuse(EINVAL, "MD_CHECK_MAP: iova, length and uptr must be MOCK_IO_PAGE_SIZE aligned");
  Object* hwpt = get(cmd.id, ObjType::kHwpt);
  if (!hwpt) return no_object("HWPT", cmd.id);
  for (; length; length -= kMockPage, iova += kMockPage, uptr += kMockPage) {
    auto t = engine_->translate(hwpt->name, iova);
    if (Rc rc = from(t)) return rc;
    if (!t.value() || t.value()->pa != uptr)
      return refuse(EINVAL, "MD_CHECK_MAP: iova " + std::to_string(iova) + " does not map uptr");
  }
  return std::nullopt;
}

void Context::count_pins(u64 va, u64 len, std::vector<u32>& refs) const {
  // A source is pinned where an area of an IOAS with a domain maps it, and
  // where an access pinned it.
  std::map<std::string, std::vector<Range>> pinned;  // source -> user ranges
  for (const std::string& name : engine_->ioas_names()) {
    auto s = engine_->snapshot(name);
    if (!s.ok()) continue;
    for (const AreaInfo& a : s.value().areas) {
      u64 start = source_va(a.source) + a.offset;
      if (!s.value().domains.empty()) pinned[a.source].push_back(Range{start, start + (a.iova.length() - 1)});
      // An access pins what it pinned, domain or not.
      for (const PinInfo& p : s.value().pins) {
        if (!p.iova.overlaps(a.iova)) continue;
        u64 first = std::max(p.iova.start, a.iova.start), last = std::min(p.iova.last, a.iova.last);
        pinned[a.source].push_back(Range{start + (first - a.iova.start), start + (last - a.iova.start)});
      }
    }
  }
  for (const auto& [source, ranges] : pinned)
    for (size_t i = 0; i != refs.size(); ++i) {
      Range page{va + i * kPage, va + i * kPage + (kPage - 1)};
      if (std::any_of(ranges.begin(), ranges.end(), [&](const Range& r) { return r.overlaps(page); })) ++refs[i];
    }
  (void)len;
}

// Every page of [uptr, uptr+length) is pinned `refs` times by iommufd, over
// every open context of this process (the kernel's page refcount is global).
Rc Context::md_check_refs(iommu_test_cmd& cmd) {
  u64 uptr = cmd.check_refs.uptr, length = cmd.check_refs.length;
  if (length % kPage || uptr % kPage || uptr + length < uptr)
    return refuse(EINVAL, "MD_CHECK_REFS: uptr and length must be page aligned");
  // Page by page, as the kernel pins each to read its count: EFAULT at the
  // first page that is not mapped, and no buffer as large as the range.
  for (u64 i = 0; i != length / kPage; ++i) {
    const u64 page = uptr + i * kPage;
    if (!user_range_mapped(page, kPage)) return refuse(EFAULT, "MD_CHECK_REFS: page " + std::to_string(i) + " is not mapped");
    std::vector<u32> refs(1, 0);
    for (const auto& [h, ctx] : g_contexts) ctx->count_pins(page, kPage, refs);
    if (refs[0] != cmd.check_refs.refs)
      return refuse(EIO, "MD_CHECK_REFS: page " + std::to_string(i) + " is pinned " + std::to_string(refs[0]) +
                             " times, expected " + std::to_string(cmd.check_refs.refs));
  }
  return std::nullopt;
}

// ---- accesses (selftest.c's selftest_access over iommufd_access) ----

// The kernel caps ACCESS_PAGES and ACCESS_RW at 16 MiB (a kvzalloc limit).
constexpr u64 kAccessMaxLen = 16ull << 20;

Access* Context::get_access(u32 fd, Rc& rc) {
  auto it = accesses_.find(static_cast<int>(fd));
  if (it == accesses_.end()) {
    rc = refuse(EBADFD, "no access descriptor " + std::to_string(fd));
    return nullptr;
  }
  if ((rc = prune_items(it->second))) return nullptr;
  return &it->second;
}

// Items whose pin an unmap released are gone (the unmap callback). When the
// pins cannot be listed (no memory) nothing is pruned: the refusal.
Rc Context::prune_items(Access& a) {
  auto s = engine_->snapshot(objects_.at(objects_.at(a.obj_id).ioas_id).name);
  if (Rc rc = from(s)) return rc;
  std::set<u32> live;
  for (const PinInfo& p : s.value().pins) live.insert(p.id);
  std::erase_if(a.items, [&](const auto& item) { return !live.count(item.second); });
  return std::nullopt;
}

// The unmap callback over everything: every item is unpinned.
void Context::unpin_all(Access& a) {
  const std::string& ioas = objects_.at(objects_.at(a.obj_id).ioas_id).name;
  for (const auto& [item, pin] : a.items) (void)engine_->unpin(ioas, pin);
  a.items.clear();
}

Rc Context::create_access(iommu_test_cmd& cmd) {
  u32 flags = cmd.create_access.flags;
  if (flags & ~u32{MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES})
    return refuse(EOPNOTSUPP, "CREATE_ACCESS: unknown flags");
  // The table entry and the access record first: after the descriptor
  // nothing allocates.
  Object obj;
  obj.type = ObjType::kAccess;
  obj.users = 2;  // the table's and the descriptor's
  Slot slot = make_slot(std::move(obj));
  std::map<int, Access> aside;
  auto record = aside.extract(aside.emplace(0, Access{}).first);
  int fd = memfd_create("ioas-iommufd-access", MFD_CLOEXEC);
  if (fd < 0) return refuse(ENOMEM, "CREATE_ACCESS: no descriptor for the access");
  // iommufd_access_create allocates the object, then it attaches to the IOAS.
  u32 id = insert_slot(std::move(slot));
  Object* ioas = get(cmd.id, ObjType::kIoas);
  if (!ioas) {
    objects_.erase(id);
    syscall(SYS_close, fd);  // not close(): the preload library would come back here
    return no_object("IOAS", cmd.id);
  }
  // iopt_add_access: an access that pins raises the IOAS's alignment to
  // PAGE (iopt_calculate_iova_alignment), EADDRINUSE where an area is not
  // aligned to it (iopt_check_iova_alignment); the access is then freed.
  if ((flags & MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) && !areas_page_aligned(ioas->name)) {
    objects_.erase(id);
    syscall(SYS_close, fd);  // not close(): the preload library would come back here
    return refuse(EADDRINUSE, "CREATE_ACCESS: an area of the IOAS is not PAGE aligned");
  }
  ++ioas->users;
  objects_.at(id).ioas_id = cmd.id;
  cmd.create_access.out_access_fd = static_cast<u32>(fd);
  if (Rc rc = respond(&cmd, sizeof(cmd))) {
    --ioas->users;
    objects_.erase(id);
    syscall(SYS_close, fd);  // not close(): the preload library would come back here
    return rc;
  }
  record.key() = fd;
  record.mapped().obj_id = id;
  record.mapped().needs_pin = (flags & MOCK_FLAGS_ACCESS_CREATE_NEEDS_PIN_PAGES) != 0;
  accesses_.insert(std::move(record));
  return std::nullopt;
}

// Whether every area of the IOAS starts, ends and has its user address's
// page offset on a PAGE boundary.
bool Context::areas_page_aligned(const std::string& ioas) const {
  auto st = engine_->snapshot(ioas);
  if (!st.ok()) return true;
  std::map<std::string, u64> va;
  for (const auto& m : engine_->memories()) va[m.source.name] = m.source.va;
  return std::all_of(st.value().areas.begin(), st.value().areas.end(), [&](const AreaInfo& a) {
    return arith::is_aligned(a.iova.start, kPage) && arith::is_aligned(a.iova.length(), kPage) &&
           (va[a.source] + a.offset) % kPage == 0;
  });
}

// iommufd_access_replace: the access lets go of everything it pinned (the
// unmap callback over all IOVA) and moves; the same IOAS is a no-op.
Rc Context::access_replace_ioas(iommu_test_cmd& cmd) {
  Rc rc;
  Access* a = get_access(cmd.id, rc);
  if (!a) return rc;
  u32 new_id = cmd.access_replace_ioas.ioas_id;
  Object* ioas = get(new_id, ObjType::kIoas);
  if (!ioas) return no_object("IOAS", new_id);
  Object& obj = objects_.at(a->obj_id);
  if (obj.ioas_id == new_id) return std::nullopt;
  unpin_all(*a);
  ++ioas->users;
  --objects_.at(obj.ioas_id).users;
  obj.ioas_id = new_id;
  release_unused_sources();
  return std::nullopt;
}

// The user address runs behind [iova, iova+len) of an IOAS's areas, area by
// area in IOVA order. A read or write through the access (iommufd_access_rw)
// stops at the first byte in no area (ENOENT), or at an area without the
// permission (device.c:check_area_prot: a write needs IOMMU_WRITE, a read
// IOMMU_READ). A pin (iommufd_access_pin_pages) first needs its start at a
// page boundary of the first area's user memory (EINVAL), then each area's
// permission; a byte in no area is ENOENT only after the walk.
Rc Context::user_pieces(u32 ioas_id, u64 iova, u64 len, bool write, std::vector<Piece>& out, bool pin) const {
  if (!len) return refuse(EINVAL, "access: length 0");
  auto range = Range::from_len(iova, len);
  if (!range) return refuse(EOVERFLOW, "access: iova + length - 1 overflows");
  auto s = engine_->snapshot(objects_.at(ioas_id).name);
  if (Rc rc = from(s)) return rc;
  u64 cur = range->start;
  for (;;) {
    const AreaInfo* hit = nullptr;
    for (const AreaInfo& a : s.value().areas)
      if (a.iova.start <= cur && cur <= a.iova.last) hit = &a;
    if (!hit) return refuse(ENOENT, "access: iova " + std::to_string(cur) + " is in no area");
    const u64 uva = source_va(hit->source) + hit->offset + (cur - hit->iova.start);
    if (pin && cur == range->start && uva % kPage)
      return refuse(EINVAL, "access: the pin does not start at a page boundary of its area's user memory");
    if (write && !prot_writes(hit->prot)) return refuse(EPERM, "access: write to a read-only area");
    if (!write && !prot_reads(hit->prot)) return refuse(EPERM, "access: read of a write-only area");
    u64 last = std::min(hit->iova.last, range->last);
    out.push_back(Piece{uva, last - cur + 1});
    if (last == range->last) return std::nullopt;
    cur = last + 1;
  }
}

// Pins [iova, iova+length) for an access created with NEEDS_PIN_PAGES, then
// checks that the pinned pages are those of uptr (EBADE where not), as
// iommufd_test_access_pages does.
// Page by page from the page holding iova: the page an access would pin
// against the page of uptr at the same offset (selftest.c compares what it
// pinned with uptr's pages). The page count is the kernel's modular one, so a
// range ending at 2^64-1 (iova + length wraps to 0) has its pages too.
Rc Context::check_access_uptr(const std::string& ioas, u64 iova, u64 length, u64 uptr) const {
  u64 user_page = uptr - (iova % kPage);
  u64 first_page = arith::align_down(iova, kPage);
  u64 npages = (arith::align_up(iova + length, kPage).value - first_page) / kPage;
  for (u64 i = 0; i != npages; ++i, user_page += kPage) {
    u64 at = std::max(iova, first_page + i * kPage);
    auto where = engine_->uva(ioas, at);
    if (Rc bad = from(where)) return bad;
    if (!user_range_mapped(user_page, kPage)) return refuse(EFAULT, "ACCESS_PAGES: uptr is not mapped");
    if ((where.value() & ~(kPage - 1)) != user_page)
      return refuse(EBADE, "ACCESS_PAGES: a pinned page is not the page of uptr");
  }
  return std::nullopt;
}

Rc Context::access_pages(iommu_test_cmd& cmd) {
  u64 iova = cmd.access_pages.iova, length = cmd.access_pages.length, uptr = cmd.access_pages.uptr;
  u32 flags = cmd.access_pages.flags;
  if (length > kAccessMaxLen) return refuse(ENOMEM, "ACCESS_PAGES: length above 16 MiB");
  if (flags & ~u32{MOCK_FLAGS_ACCESS_WRITE}) return refuse(EOPNOTSUPP, "ACCESS_PAGES: unknown flags");
  Rc rc;
  Access* a = get_access(cmd.id, rc);
  if (!a) return rc;
  if (!a->needs_pin) return refuse(EOPNOTSUPP, "ACCESS_PAGES: the access was created without NEEDS_PIN_PAGES");
  bool write = flags & MOCK_FLAGS_ACCESS_WRITE;
  u32 ioas_id = objects_.at(a->obj_id).ioas_id;
  std::vector<Piece> pieces;
  if (Rc bad = user_pieces(ioas_id, iova, length, write, pieces, /*pin=*/true)) return bad;
  if (Rc bad = answer_writable(&cmd, sizeof(cmd))) return bad;
  const std::string& ioas = objects_.at(ioas_id).name;
  if (uptr) {
    if (Rc bad = check_access_uptr(ioas, iova, length, uptr)) {
      // The kernel pins first and compares after: the pin's own refusal
      // comes first. Asked of a copy of the engine, so that a refused call
      // leaves no trace (such as a consumed pin id).
      auto trial = engine_->clone();
      if (trial) {
        auto pin = trial->pin(ioas, PinArgs{iova, length, write, true});
        if (Rc first = from(pin)) return first;
      }
      return bad;
    }
  }
  // The item's entry first: after the pin nothing allocates.
  std::map<u32, u32> aside;
  auto entry = aside.extract(aside.emplace(0, 0).first);
  auto pin = engine_->pin(ioas, PinArgs{iova, length, write, true});
  if (Rc bad = from(pin)) return bad;
  auto undo = [&](Rc why) {
    (void)engine_->unpin(ioas, pin.value());
    return why;
  };
  u32 item = a->next_item++;
  entry.key() = item;
  entry.mapped() = pin.value();
  a->items.insert(std::move(entry));
  cmd.access_pages.out_access_pages_id = item;
  if (Rc bad = respond(&cmd, sizeof(cmd))) {
    a->items.erase(item);
    return undo(bad);
  }
  return std::nullopt;
}

Rc Context::destroy_access_pages(iommu_test_cmd& cmd) {
  Rc rc;
  Access* a = get_access(cmd.id, rc);
  if (!a) return rc;
  auto it = a->items.find(cmd.destroy_access_pages.access_pages_id);
  if (it == a->items.end())
    return refuse(ENOENT, "DESTROY_ACCESS_PAGES: no item " + std::to_string(cmd.destroy_access_pages.access_pages_id));
  (void)engine_->unpin(objects_.at(objects_.at(a->obj_id).ioas_id).name, it->second);
  a->items.erase(it);
  release_unused_sources();
  return std::nullopt;
}

// Reads or writes the user memory behind [iova, iova+length) through a
// buffer, as iommufd_test_access_rw and iommufd_access_rw do.
Rc Context::access_rw(iommu_test_cmd& cmd) {
  u64 iova = cmd.access_rw.iova, length = cmd.access_rw.length, uptr = cmd.access_rw.uptr;
  u32 flags = cmd.access_rw.flags;
  if (length > kAccessMaxLen) return refuse(ENOMEM, "ACCESS_RW: length above 16 MiB");
  if (flags & ~u32{MOCK_ACCESS_RW_WRITE | MOCK_ACCESS_RW_SLOW_PATH})
    return refuse(EOPNOTSUPP, "ACCESS_RW: unknown flags");
  Rc rc;
  Access* a = get_access(cmd.id, rc);
  if (!a) return rc;
  bool write = flags & MOCK_ACCESS_RW_WRITE;
  std::vector<unsigned char> tmp(length);
  if (write && !read_user(tmp.data(), uptr, length)) return refuse(EFAULT, "ACCESS_RW: cannot read uptr");
  std::vector<Piece> pieces;
  if (Rc bad = user_pieces(objects_.at(a->obj_id).ioas_id, iova, length, write, pieces)) return bad;
  u64 done = 0;
  for (const Piece& p : pieces) {
    bool ok = write ? write_user(p.uva, tmp.data() + done, p.len) : read_user(tmp.data() + done, p.uva, p.len);
    if (!ok) return refuse(EFAULT, "ACCESS_RW: the user memory of an area is not mapped any more");
    done += p.len;
  }
  if (!write && !write_user(uptr, tmp.data(), length)) return refuse(EFAULT, "ACCESS_RW: cannot write uptr");
  return std::nullopt;
}

// The access descriptor is closing (the file's release): the access unpins
// everything, leaves its IOAS and its object goes.
void Context::release_access(int fd) {
  auto it = accesses_.find(fd);
  if (it == accesses_.end()) return;
  Access& a = it->second;
  (void)prune_items(a);  // unpin_all lets go of every item anyway
  unpin_all(a);
  Object& obj = objects_.at(a.obj_id);
  --objects_.at(obj.ioas_id).users;
  objects_.erase(a.obj_id);
  accesses_.erase(it);
  release_unused_sources();
}

std::string Context::describe_table() const {
  std::string s;
  for (const auto& [id, o] : objects_) {
    s += "object " + std::to_string(id) + " " + to_string(o.type) + " users=" + std::to_string(o.users) + " name=" +
         o.name + " ioas=" + std::to_string(o.ioas_id) + " hwpt=" + std::to_string(o.hwpt_id) +
         " idev=" + std::to_string(o.idev_id) + " dev_flags=" + std::to_string(o.dev_flags) +
         (o.auto_domain ? " auto" : "") + (o.huge ? " huge" : "") + (o.dirty ? " dirty" : "") + " holder=" + o.holder;
    for (const std::string& owner : o.owners) s += " owner=" + owner;
    s += "\n";
  }
  // By object id: descriptor numbers are the process's, not the context's.
  std::map<u32, std::string> accesses;
  for (const auto& [fd, a] : accesses_) {
    std::string& line = accesses[a.obj_id];
    line = "access object=" + std::to_string(a.obj_id) + (a.needs_pin ? " needs_pin" : "") +
           " next_item=" + std::to_string(a.next_item);
    for (const auto& [item, pin] : a.items) line += " item" + std::to_string(item) + "=pin" + std::to_string(pin);
    line += "\n";
  }
  for (const auto& [id, line] : accesses) s += line;
  s += "vfio_ioas=" + std::to_string(vfio_ioas_) + " account_mm=" + std::to_string(account_mm_) +
       " memory_limit=" + std::to_string(g_memory_limit) + "\n";
  return s;
}

std::unique_ptr<Engine> make_named_engine(const char* name) {
  std::string n = name ? name : "impl";
  if (n == "impl" || n.empty()) return make_engine();
  if (n == "model") return make_model_engine();
  return nullptr;
}

int open_on(std::unique_ptr<Engine> engine, const char* name) {
  if (!engine) {
    t_last_error = std::string("unknown engine '") + (name ? name : "") + "' (impl or model)";
    errno = EINVAL;
    return -1;
  }
  std::lock_guard lock(g_lock);
  int h = g_next_handle++;
  g_contexts.emplace(h, std::make_unique<Context>(std::move(engine)));
  t_last_error.clear();
  return h;
}

}  // namespace
}  // namespace ioas::uapi

using namespace ioas::uapi;

extern "C" int ioas_iommufd_open_engine(const char* engine) {
  try {
    return open_on(make_named_engine(engine), engine);
  } catch (const std::bad_alloc&) {
    errno = ENOMEM;
    return -1;
  }
}

extern "C" int ioas_iommufd_open(void) {
  return ioas_iommufd_open_engine(std::getenv("IOAS_IOMMUFD_ENGINE"));
}

// The message of a refusal; when copying it needs memory that is not there,
// "out of memory" (short enough to need none), so that no exception leaves
// the C entry points.
static void set_last_error(const std::string& why) noexcept {
  try {
    t_last_error = why;
  } catch (const std::bad_alloc&) {
    t_last_error.clear();
    t_last_error = "out of memory";
  }
}

extern "C" int ioas_iommufd_ioctl(int handle, unsigned long request, void* arg) {
  std::lock_guard lock(g_lock);
  auto it = g_contexts.find(handle);
  if (it == g_contexts.end()) {
    t_last_error = "not an iommufd handle";
    errno = EBADF;
    return -1;
  }
  // ioctl(2) passes the kernel an unsigned int: higher bits never arrive.
  request = static_cast<unsigned int>(request);
  Rc rc;
  try {
    rc = it->second->ioctl(request, reinterpret_cast<ioas::u64>(arg));
  } catch (const std::bad_alloc&) {
    rc = Refusal{ENOMEM, "out of memory"};
  }
  if (rc) {
    static const bool trace = std::getenv("IOAS_IOMMUFD_TRACE") != nullptr;
    if (trace) std::fprintf(stderr, "ioas-iommufd: ioctl 0x%lx: %s: %s\n", request, strerrorname_np(rc->code), rc->why.c_str());
    set_last_error(rc->why);
    errno = rc->code;
    return -1;
  }
  t_last_error.clear();
  return it->second->value();
}

extern "C" int ioas_iommufd_close(int handle) {
  std::unique_ptr<Context> ctx;
  {
    std::lock_guard lock(g_lock);
    auto it = g_contexts.find(handle);
    if (it == g_contexts.end()) {
      errno = EBADF;
      return -1;
    }
    ctx = std::move(it->second);
    g_contexts.erase(it);
  }
  return 0;
}

extern "C" int ioas_iommufd_release_fd(int fd) {
  std::lock_guard lock(g_lock);
  for (auto& [h, ctx] : g_contexts)
    if (ctx->owns_access(fd)) {
      ctx->release_access(fd);
      return 1;
    }
  return 0;
}

extern "C" const char* ioas_iommufd_last_error(void) { return t_last_error.c_str(); }

namespace ioas::uapi::testing {

Engine* engine_of(int handle) {
  std::lock_guard lock(g_lock);
  auto it = g_contexts.find(handle);
  return it == g_contexts.end() ? nullptr : &it->second->engine();
}

std::string table_of(int handle) {
  std::lock_guard lock(g_lock);
  auto it = g_contexts.find(handle);
  return it == g_contexts.end() ? std::string() : it->second->describe_table();
}

}  // namespace ioas::uapi::testing
