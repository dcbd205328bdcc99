// The C API (include/ioas/ioas.h) over the C++ Engine interface.
//
// Each call converts its arguments, calls the engine, and turns a failed
// Result into a negative errno, keeping the message for ioas_last_error().
// No exception leaves the engine (ioas/engine.hpp); the allocations of this
// file (the argument conversions before the engine is called, and messages
// of queries) may throw std::bad_alloc, which guarded() reports as -ENOMEM:
// the engine has then changed nothing. After a mutating call nothing here
// allocates (fail() keeps the engine's errno even when its message cannot
// be copied). Any other exception is a bug: guarded() aborts.
#include "ioas/ioas.h"

#include <cerrno>
#include <memory>
#include <new>
#include <string>
#include <vector>

#include "ioas/boundary.hpp"
#include "ioas/engine.hpp"
#include "ioas/impl.hpp"

struct ioas_engine {
  std::unique_ptr<ioas::Engine> engine;
  std::string last_error;
};

namespace {

using ioas::Result;
using ioas::Status;

int fail(ioas_engine* e, const ioas::Error& err) {
  try {
    e->last_error = err.message;
  } catch (const std::bad_alloc&) {
    e->last_error = "out of memory";  // fits the string's inline buffer: no allocation
  }
  return -err.code;
}

int finish(ioas_engine* e, const Status& s) {
  if (!s.ok()) return fail(e, s.error());
  e->last_error.clear();
  return 0;
}

template <typename T, typename Out>
int finish(ioas_engine* e, const Result<T>& r, Out* out) {
  if (!r.ok()) return fail(e, r.error());
  e->last_error.clear();
  if (out) *out = static_cast<Out>(r.value());
  return 0;
}

// Runs f. A std::bad_alloc can only come from this file's own conversions
// and messages (see the top): -ENOMEM, nothing changed. Any other exception
// is a bug and aborts loudly.
template <typename F>
int guarded(ioas_engine* e, F&& f) {
  if (!e) return -EINVAL;
  try {
    return f();
  } catch (const std::bad_alloc&) {
    e->last_error = "out of memory";
    return -ENOMEM;
  } catch (...) {
    ioas::boundary_abort("the C API", "an exception escaped");
  }
}

bool bad_name(const char* s) { return s == nullptr; }

int null_arg(ioas_engine* e, const char* what) {
  e->last_error = std::string(what) + " is NULL";
  return -EINVAL;
}

ioas::Prot prot_of(int p) {
  switch (p) {
    case IOAS_PROT_READ: return ioas::Prot::kRead;
    case IOAS_PROT_WRITE: return ioas::Prot::kWrite;
    case IOAS_PROT_READ | IOAS_PROT_WRITE: return ioas::Prot::kReadWrite;
    default: return ioas::Prot::kNone;
  }
}

ioas_engine* wrap(std::unique_ptr<ioas::Engine> engine) {
  if (!engine) return nullptr;
  auto* e = new (std::nothrow) ioas_engine;
  if (!e) return nullptr;
  e->engine = std::move(engine);
  return e;
}

}  // namespace

extern "C" {

ioas_engine* ioas_engine_new(void) {
  try {
    return wrap(ioas::make_engine());
  } catch (...) {
    return nullptr;
  }
}

ioas_engine* ioas_engine_new_model(void) {
  try {
    return wrap(ioas::make_model_engine());
  } catch (...) {
    return nullptr;
  }
}

void ioas_engine_free(ioas_engine* e) { delete e; }

const char* ioas_last_error(const ioas_engine* e) { return e ? e->last_error.c_str() : "engine is NULL"; }

const char* ioas_errno_name(int err) { return ioas::errno_name(err < 0 ? -err : err); }

int ioas_create(ioas_engine* e, const char* name, unsigned flags) {
  return guarded(e, [&] {
    if (bad_name(name)) return null_arg(e, "ioas");
    if (flags & ~unsigned{IOAS_CREATE_ZERO_PAGE_ALLOWED | IOAS_CREATE_NO_HUGE_PAGES}) {
      e->last_error = "unknown flags " + std::to_string(flags);
      return -EINVAL;
    }
    ioas::IoasOptions o;
    o.zero_page = (flags & IOAS_CREATE_ZERO_PAGE_ALLOWED) ? ioas::ZeroPage::kAllowed : ioas::ZeroPage::kReserved;
    o.huge_pages = !(flags & IOAS_CREATE_NO_HUGE_PAGES);
    return finish(e, e->engine->create_ioas(name, o));
  });
}

int ioas_mem_register(ioas_engine* e, const char* name, uint64_t va, uint64_t len, uint64_t pa,
                      int writable) {
  return guarded(e, [&] {
    if (bad_name(name)) return null_arg(e, "name");
    return finish(e, e->engine->add_memory(ioas::MemorySource{name, va, len, pa, writable != 0}));
  });
}

int ioas_mem_unregister(ioas_engine* e, const char* name) {
  return guarded(e, [&] {
    if (bad_name(name)) return null_arg(e, "name");
    return finish(e, e->engine->remove_memory(name));
  });
}

int ioas_map(ioas_engine* e, const char* ioas, const char* src, uint64_t offset, uint64_t len, int prot,
             int fixed, uint64_t* iova) {
  return guarded(e, [&] {
    if (bad_name(ioas)) return null_arg(e, "ioas");
    if (bad_name(src)) return null_arg(e, "src");
    if (!iova) return null_arg(e, "iova");
    ioas::MapArgs a;
    if (fixed) a.iova = *iova;
    a.len = len;
    a.source = src;
    a.offset = offset;
    a.prot = prot_of(prot);
    return finish(e, e->engine->map(ioas, a), iova);
  });
}

int ioas_unmap(ioas_engine* e, const char* ioas, uint64_t iova, uint64_t len, uint64_t* unmapped) {
  return guarded(e, [&] {
    if (bad_name(ioas)) return null_arg(e, "ioas");
    return finish(e, e->engine->unmap(ioas, iova, len), unmapped);
  });
}

int ioas_cut(ioas_engine* e, const char* ioas, uint64_t iova) {
  return guarded(e, [&] {
    if (bad_name(ioas)) return null_arg(e, "ioas");
    return finish(e, e->engine->cut(ioas, iova));
  });
}

int ioas_copy(ioas_engine* e, const char* ioas, const char* from, uint64_t src_iova, uint64_t len, int prot,
              int fixed, uint64_t* iova) {
  return guarded(e, [&] {
    if (bad_name(ioas)) return null_arg(e, "ioas");
    if (bad_name(from)) return null_arg(e, "from");
    if (!iova) return null_arg(e, "iova");
    ioas::CopyArgs c;
    c.from = from;
    c.src_iova = src_iova;
    c.len = len;
    if (fixed) c.dst_iova = *iova;
    c.prot = prot_of(prot);
    return finish(e, e->engine->copy(ioas, c), iova);
  });
}

int ioas_reserve(ioas_engine* e, const char* ioas, ioas_range range, const char* owner) {
  return guarded(e, [&] {
    if (bad_name(ioas)) return null_arg(e, "ioas");
    if (bad_name(owner)) return null_arg(e, "owner");
    return finish(e, e->engine->reserve(ioas, ioas::Range{range.start, range.last}, owner));
  });
}

int ioas_unreserve(ioas_engine* e, const char* ioas, const char* owner) {
  return guarded(e, [&] {
    if (bad_name(ioas)) return null_arg(e, "ioas");
    if (bad_name(owner)) return null_arg(e, "owner");
    return finish(e, e->engine->unreserve(ioas, owner));
  });
}

int ioas_allow(ioas_engine* e, const char* ioas, const ioas_range* ranges, size_t n) {
  return guarded(e, [&] {
    if (bad_name(ioas)) return null_arg(e, "ioas");
    if (n && !ranges) return null_arg(e, "ranges");
    std::vector<ioas::Range> rs;
    for (size_t i = 0; i < n; ++i) rs.push_back(ioas::Range{ranges[i].start, ranges[i].last});
    return finish(e, e->engine->allow(ioas, rs));
  });
}

int ioas_ranges(ioas_engine* e, const char* ioas, ioas_range* out, size_t cap, size_t* n, uint64_t* alignment) {
  return guarded(e, [&] {
    if (bad_name(ioas)) return null_arg(e, "ioas");
    if (!n) return null_arg(e, "n");
    if (cap && !out) return null_arg(e, "out");
    auto r = e->engine->ranges(ioas);
    if (!r.ok()) return fail(e, r.error());
    *n = r->ranges.size();
    if (alignment) *alignment = r->alignment;
    for (size_t i = 0; i < r->ranges.size() && i < cap; ++i) out[i] = {r->ranges[i].start, r->ranges[i].last};
    if (cap < r->ranges.size()) {
      e->last_error = "ranges: " + std::to_string(r->ranges.size()) + " ranges do not fit in " + std::to_string(cap);
      return -EMSGSIZE;
    }
    e->last_error.clear();
    return 0;
  });
}

int ioas_attach(ioas_engine* e, const char* ioas, const ioas_attach_args* args) {
  return guarded(e, [&] {
    if (bad_name(ioas)) return null_arg(e, "ioas");
    if (!args) return null_arg(e, "args");
    if (bad_name(args->dev)) return null_arg(e, "args->dev");
    if (bad_name(args->dom)) return null_arg(e, "args->dom");
    if (args->num_resv && !args->resv) return null_arg(e, "args->resv");
    ioas::AttachArgs a;
    a.dev = args->dev;
    a.dom = args->dom;
    if (args->has_fmt) {
      if (args->fmt != IOAS_FMT_X86_64 && args->fmt != IOAS_FMT_ARM_LPAE && args->fmt != IOAS_FMT_TCE) {
        e->last_error = "attach: unknown format " + std::to_string(args->fmt);
        return -EINVAL;
      }
      a.fmt = static_cast<ioas::Format>(args->fmt);
    }
    if (args->has_aperture) a.aperture = ioas::Range{args->aperture.start, args->aperture.last};
    if (args->has_pgsize_bitmap) a.pgsize_bitmap = args->pgsize_bitmap;
    for (size_t i = 0; i < args->num_resv; ++i) {
      const auto& r = args->resv[i];
      if (r.type < IOAS_RESV_DIRECT || r.type > IOAS_RESV_MSI) {
        e->last_error = "attach: unknown reserved-region type " + std::to_string(r.type);
        return -EINVAL;
      }
      a.resv.push_back(ioas::ResvRegion{ioas::Range{r.range.start, r.range.last}, static_cast<ioas::ResvType>(r.type)});
    }
    return finish(e, e->engine->attach(ioas, a));
  });
}

int ioas_detach(ioas_engine* e, const char* dev) {
  return guarded(e, [&] {
    if (bad_name(dev)) return null_arg(e, "dev");
    return finish(e, e->engine->detach(dev));
  });
}

int ioas_translate(ioas_engine* e, const char* dom, uint64_t iova, uint64_t* pa, int* prot) {
  return guarded(e, [&] {
    if (bad_name(dom)) return null_arg(e, "dom");
    auto r = e->engine->translate(dom, iova);
    if (!r.ok()) return fail(e, r.error());
    if (!r->has_value()) {
      e->last_error = "translate: IOVA not mapped in domain " + std::string(dom);
      return -EFAULT;
    }
    if (pa) *pa = (*r)->pa;
    if (prot) *prot = static_cast<int>((*r)->prot);
    e->last_error.clear();
    return 0;
  });
}

int ioas_pin(ioas_engine* e, const char* ioas, uint64_t iova, uint64_t len, int write, int release_on_unmap,
             uint32_t* id) {
  return guarded(e, [&] {
    if (bad_name(ioas)) return null_arg(e, "ioas");
    return finish(e, e->engine->pin(ioas, ioas::PinArgs{iova, len, write != 0, release_on_unmap != 0}), id);
  });
}

int ioas_unpin(ioas_engine* e, const char* ioas, uint32_t id) {
  return guarded(e, [&] {
    if (bad_name(ioas)) return null_arg(e, "ioas");
    return finish(e, e->engine->unpin(ioas, id));
  });
}

}  // extern "C"
