// ioas_map_loop: only the timed loop of ioas_bench's AutoMapUnmap (an
// automatic 4K map into the middle hole among N contiguous 4K areas, and its
// unmap), for profilers that take the whole process (perf record, valgrind
// --tool=callgrind): the setup is the same few copies as the benchmark's,
// and the loop runs a fixed number of times, so that the instructions per
// iteration are the difference of two runs.
//   ioas_map_loop AREAS ITERATIONS [domain] [locked]
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ioas/engine.hpp"
#include "ioas/impl.hpp"

namespace {
using namespace ioas;
constexpr u64 kVa = u64{1} << 40;

void die(const char* what, int code) {
  std::fprintf(stderr, "ioas_map_loop: %s failed: %s\n", what, errno_name(code));
  std::exit(1);
}
}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: ioas_map_loop AREAS ITERATIONS [domain] [locked]\n");
    return 2;
  }
  const u64 n = std::strtoull(argv[1], nullptr, 0), iters = std::strtoull(argv[2], nullptr, 0);
  bool domain = false, locked = false;
  for (int i = 3; i < argc; ++i) {
    domain = domain || std::strcmp(argv[i], "domain") == 0;
    locked = locked || std::strcmp(argv[i], "locked") == 0;
  }
  ImplOptions o;
  o.thread_safe = locked;
  auto e = make_engine(o);
  if (auto s = e->create_ioas("a", IoasOptions{}); !s.ok()) die("create_ioas", s.code());
  if (auto s = e->add_memory(MemorySource{"m", kVa, (n + 16) * kPage, kVa, true}); !s.ok()) die("mem", s.code());
  if (auto r = e->map("a", MapArgs{kPage, kPage, "m", 0, Prot::kReadWrite}); !r.ok()) die("map", r.code());
  for (u64 count = 1; count < n;) {
    const u64 k = std::min({count, n - count, u64{4096}});
    if (auto r = e->copy("a", CopyArgs{"a", kPage, k * kPage, kPage + count * kPage, Prot::kReadWrite}); !r.ok())
      die("copy", r.code());
    count += k;
  }
  const u64 hole = kPage + (n / 2) * kPage;
  if (auto r = e->unmap("a", hole, kPage); !r.ok()) die("unmap", r.code());
  if (domain)
    if (auto s = e->attach("a", AttachArgs{"dev", "d", Format::kX86_64, {}, {}, {}, {}}); !s.ok()) die("attach", s.code());
  const MapArgs args{std::nullopt, kPage, "m", 0, Prot::kReadWrite};
  for (u64 i = 0; i < iters; ++i) {
    auto r = e->map("a", args);
    if (!r.ok() || r.value() != hole) die("automatic map into the middle hole", r.ok() ? 0 : r.code());
    if (auto u = e->unmap("a", hole, kPage); !u.ok()) die("unmap", u.code());
  }
  return 0;
}
