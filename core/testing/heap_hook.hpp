// core/testing/heap_hook.hpp: heap exhaustion on demand, for tests. A binary
// that links the ioas_heap_hook object library gets heap_hook.cpp's global
// operator new and delete (every form: plain, array, aligned, nothrow),
// defined once per binary. While a HeapExhaustion scope is open, the nth
// allocation (1-based) and every later one fail: the heap is exhausted from
// there on, so an undo path that allocates fails too.
#pragma once

#include <cstdint>

namespace ioas::testing {

class HeapExhaustion {
 public:
  // nth = 0 counts the allocations without failing any.
  explicit HeapExhaustion(std::uint64_t nth);
  ~HeapExhaustion();
  HeapExhaustion(const HeapExhaustion&) = delete;
  HeapExhaustion& operator=(const HeapExhaustion&) = delete;
  // An allocation was refused.
  bool failed() const;
  // Allocations made since the scope opened (refused ones included).
  std::uint64_t count() const;
};

}  // namespace ioas::testing
