// core/testing/heap_hook.cpp: the replaced global operator new and delete of
// heap_hook.hpp.
#include "heap_hook.hpp"

#include <cstddef>
#include <cstdlib>
#include <new>

namespace {

struct HeapHook {
  bool active = false;
  std::uint64_t count = 0;    // allocations made while active
  std::uint64_t fail_at = 0;  // 0: never fail
  bool failed = false;        // an allocation was refused
};
HeapHook g_hook;

// nullptr: this allocation is refused.
void* hooked_alloc(std::size_t n, std::size_t align) noexcept {
  if (g_hook.active) {
    ++g_hook.count;
    if (g_hook.fail_at != 0 && g_hook.count >= g_hook.fail_at) {
      g_hook.failed = true;
      return nullptr;
    }
  }
  if (n == 0) n = 1;
  if (align <= alignof(std::max_align_t)) return std::malloc(n);
  void* p = nullptr;
  return posix_memalign(&p, align, n) == 0 ? p : nullptr;
}

void* throwing_alloc(std::size_t n, std::size_t align) {
  void* p = hooked_alloc(n, align);
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace

namespace ioas::testing {

HeapExhaustion::HeapExhaustion(std::uint64_t nth) {
  g_hook.count = 0;
  g_hook.fail_at = nth;
  g_hook.failed = false;
  g_hook.active = true;
}
HeapExhaustion::~HeapExhaustion() { g_hook.active = false; }
bool HeapExhaustion::failed() const { return g_hook.failed; }
std::uint64_t HeapExhaustion::count() const { return g_hook.count; }

}  // namespace ioas::testing

void* operator new(std::size_t n) { return throwing_alloc(n, 0); }
void* operator new[](std::size_t n) { return throwing_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a) { return throwing_alloc(n, static_cast<std::size_t>(a)); }
void* operator new[](std::size_t n, std::align_val_t a) { return throwing_alloc(n, static_cast<std::size_t>(a)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return hooked_alloc(n, 0); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return hooked_alloc(n, 0); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return hooked_alloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return hooked_alloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
