// The fixture helpers of spec_rules.hpp that are not templates: the worlds,
// the checks each checker makes after its operation, the builders and the
// views. Out of line so that they are compiled once, not inside each of the
// checkers' instantiations (one per MUST / EXPECT_FAILS lambda).
#include <string>
#include <vector>

#include "spec_rules.hpp"

namespace ioas::testing {

void SpecRules::Basic(IoasOptions options) {
  ASSERT_TRUE(engine->create_ioas("a", options).ok());
  ASSERT_TRUE(Mem("m", kMVa, kMLen, kMPa).ok());
  ASSERT_TRUE(Mem("ro", kRoVa, kRoLen, kRoPa, false).ok());
}

void SpecRules::CopyWorld() {
  Basic();
  ASSERT_TRUE(engine->create_ioas("b", {}).ok());
  ASSERT_TRUE(MapFixed("a", 0x10000, 0x4000, "m", 0, Prot::kReadWrite).ok());
  ASSERT_TRUE(MapFixed("a", 0x14000, 0x1000, "ro", 0, Prot::kRead).ok());
  ASSERT_TRUE(MapFixed("a", 0x20000, 0x1000, "m", 0x100000, Prot::kReadWrite).ok());
}

void SpecRules::DomainWorld(IoasOptions options) {
  Basic(options);
  ASSERT_TRUE(Attach("a", "nic", "d").ok());
  ASSERT_TRUE(MapFixed("a", 0x200000, 0x200000, "m", 0, Prot::kReadWrite).ok());
  ASSERT_TRUE(MapFixed("a", 0x400000, 0x200000, "m", 0x200000, Prot::kRead).ok());
}

// ---- checkers ----

void SpecRules::ExpectClean(const char* what, const char* file, int line) {
  for (const auto& v : engine->check())
    ADD_FAILURE_AT(file, line) << "after " << what << ": invariant " << to_string(v.invariant)
                               << " violated in ioas '" << v.ioas << "': " << v.detail
                               << (v.witness ? " at " + spec_text::hex(*v.witness)
                                             : std::string());
}

std::string SpecRules::World() const { return spec_text::describe(*engine); }

void SpecRules::CheckSucceeded(const Error* err, const char* what, const char* file, int line) {
  if (err) ADD_FAILURE_AT(file, line) << what << " failed: " << to_string(*err);
  ExpectClean(what, file, line);
}

void SpecRules::CheckFailedUnchanged(int code, const Error* err, const std::string& before,
                                     const char* what, const char* file, int line,
                                     const std::vector<std::string>& names) {
  const std::string want = errno_name(code);
  if (!err) {
    ADD_FAILURE_AT(file, line) << what << " succeeded, expected " << want;
  } else {
    if (err->code != code)
      ADD_FAILURE_AT(file, line) << what << " gave " << to_string(*err) << ", expected " << want;
    if (err->message.empty())
      ADD_FAILURE_AT(file, line) << what << ": error without a message";
    for (const std::string& name : names)
      if (err->message.find(name) == std::string::npos)
        ADD_FAILURE_AT(file, line) << what << ": the message \"" << err->message
                                   << "\" does not name " << name;
  }
  const std::string after = World();
  if (before != after)
    ADD_FAILURE_AT(file, line) << what << " (" << (err ? to_string(*err) : std::string("ok"))
                               << ") changed the state:\nbefore:\n"
                               << before << "after:\n"
                               << after;
  ExpectClean(what, file, line);
}

void SpecRules::CheckFailedChanged(int code, const Error* err, const std::string& before,
                                   const char* what, const char* file, int line) {
  if (!err)
    ADD_FAILURE_AT(file, line) << what << " succeeded, expected " << errno_name(code);
  else if (err->code != code || err->message.empty())
    ADD_FAILURE_AT(file, line) << what << " gave " << to_string(*err) << ", expected "
                               << errno_name(code) << " with a message";
  if (World() == before)
    ADD_FAILURE_AT(file, line) << what << " changed nothing; the kernel's unmap removes what it reached";
  ExpectClean(what, file, line);
}

void SpecRules::CheckSucceededUnchanged(const Error* err, const std::string& before,
                                        const char* what, const char* file, int line) {
  if (err) ADD_FAILURE_AT(file, line) << what << " failed: " << to_string(*err);
  const std::string after = World();
  if (before != after)
    ADD_FAILURE_AT(file, line) << what << " should be a no-op, changed the state:\nbefore:\n"
                               << before << "after:\n"
                               << after;
  ExpectClean(what, file, line);
}

// ---- builders ----

Status SpecRules::Mem(std::string name, u64 va, u64 len, u64 pa, bool writable) {
  return engine->add_memory(MemorySource{std::move(name), va, len, pa, writable});
}
Result<u64> SpecRules::MapFixed(std::string_view ioas, u64 iova, u64 len, std::string src,
                                u64 offset, Prot prot) {
  return engine->map(ioas, MapArgs{iova, len, std::move(src), offset, prot});
}
Result<u64> SpecRules::MapAuto(std::string_view ioas, u64 len, std::string src, u64 offset,
                               Prot prot) {
  return engine->map(ioas, MapArgs{std::nullopt, len, std::move(src), offset, prot});
}
Status SpecRules::Attach(std::string_view ioas, std::string dev, std::string dom,
                         std::vector<ResvRegion> resv, std::optional<Format> fmt,
                         std::optional<Range> aperture, std::optional<u64> pgsizes) {
  return engine->attach(
      ioas, AttachArgs{std::move(dev), std::move(dom), fmt, aperture, pgsizes, std::move(resv), {}});
}
Result<std::uint32_t> SpecRules::Pin(std::string_view ioas, u64 iova, u64 len, bool write,
                                     bool release) {
  return engine->pin(ioas, PinArgs{iova, len, write, release});
}
Result<u64> SpecRules::CopyFixed(std::string_view ioas, std::string from, u64 src_iova, u64 len,
                                 u64 dst_iova, Prot prot) {
  return engine->copy(ioas, CopyArgs{std::move(from), src_iova, len, dst_iova, prot});
}
Result<u64> SpecRules::CopyAuto(std::string_view ioas, std::string from, u64 src_iova, u64 len,
                                Prot prot) {
  return engine->copy(ioas, CopyArgs{std::move(from), src_iova, len, std::nullopt, prot});
}
Status SpecRules::Allow(std::string_view ioas, std::vector<Range> ranges) {
  return engine->allow(ioas, ranges);
}

// ---- views ----

IoasState SpecRules::Snap(std::string_view ioas) {
  auto st = engine->snapshot(ioas);
  if (!st.ok()) {
    ADD_FAILURE() << "snapshot " << ioas << ": " << to_string(st.error());
    return {};
  }
  return st.value();
}
std::string SpecRules::Areas(std::string_view ioas) {
  std::string s;
  for (const auto& a : Snap(ioas).areas) s += (s.empty() ? "" : "; ") + spec_text::describe_area(a);
  return s;
}
std::string SpecRules::Reserved(std::string_view ioas) {
  std::string s;
  for (const auto& r : Snap(ioas).reserved)
    s += (s.empty() ? "" : "; ") + to_string(r.owner) + " " + to_string(r.range);
  return s;
}
std::string SpecRules::Allowed(std::string_view ioas) { return to_string(Snap(ioas).allowed); }
std::string SpecRules::Ranges(std::string_view ioas) {
  auto r = engine->ranges(ioas);
  if (!r.ok()) return to_string(r.error());
  return to_string(r.value().ranges) + " align " + spec_text::hex(r.value().alignment);
}
u64 SpecRules::Alignment(std::string_view ioas) { return Snap(ioas).iova_alignment; }
std::string SpecRules::Pins(std::string_view ioas) {
  std::string s;
  for (const auto& p : Snap(ioas).pins)
    s += (s.empty() ? "" : "; ") + std::to_string(p.id) + " " + to_string(p.iova) +
         (p.write ? " write" : " read") + (p.release ? "" : " hold");
  return s;
}
u64 SpecRules::UseCount(std::string_view mem) {
  for (const auto& m : engine->memories())
    if (m.source.name == mem) return m.use_count;
  ADD_FAILURE() << "no memory source " << mem;
  return ~u64{0};
}
std::optional<DomainInfo> SpecRules::Domain(std::string_view ioas, std::string_view dom) {
  for (const auto& d : Snap(ioas).domains)
    if (d.name == dom) return d;
  return std::nullopt;
}
std::string SpecRules::Translate(std::string_view dom, u64 iova) {
  auto t = engine->translate(dom, iova);
  if (!t.ok()) return to_string(t.error());
  if (!t.value()) return "fault";
  return "pa " + spec_text::hex(t.value()->pa) + " " + to_string(t.value()->prot);
}
std::string SpecRules::Dma(std::string_view dom, DmaDir dir, u64 iova, u64 len) {
  auto r = engine->dma(dom, dir, iova, len);
  ExpectClean("dma", __FILE__, __LINE__);
  if (!r.ok()) return to_string(r.error());
  return r.value().faulted ? "fault " + spec_text::hex(r.value().fault_iova) : "ok";
}
std::string SpecRules::Dirty(std::string_view dom, u64 iova, u64 len, u64 pgsize, bool keep) {
  auto r = engine->read_dirty(dom, iova, len, pgsize, keep);
  ExpectClean("read_dirty", __FILE__, __LINE__);
  if (!r.ok()) return to_string(r.error());
  return to_string(r.value());
}

}  // namespace ioas::testing
