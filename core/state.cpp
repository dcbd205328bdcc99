#include "ioas/core/state.hpp"

#include <algorithm>
#include <cerrno>
#include <map>
#include <set>

#include "ioas/core/text.hpp"

namespace ioas::state {
namespace {

using json::Value;

Value hexv(u64 v) { return Value::of(hex(v)); }
Value rangev(const Range& r) { return Value::of(hex(r.start) + "-" + hex(r.last)); }

const char* dirty_name(DirtyMode m) {
  switch (m) {
    case DirtyMode::kOff: return "off";
    case DirtyMode::kOn: return "on";
    case DirtyMode::kOnSplit: return "on-split";
  }
  return "?";
}

// ---- reading, with positions ----

struct Reader {
  std::string file;
  std::string error;

  bool fail(const Value& at, const std::string& path, const std::string& what) {
    if (error.empty())
      error = file + ":" + std::to_string(at.line) + ":" + std::to_string(at.column) + ": " + path + ": " + what;
    return false;
  }
  const Value* member(const Value& obj, const std::string& path, std::string_view key, bool required = true) {
    const Value* v = obj.find(key);
    if (!v && required) fail(obj, path, "missing key \"" + std::string(key) + "\"");
    return v;
  }
  bool is(const Value& v, Value::Kind k, const std::string& path, const char* want) {
    if (v.kind == k) return true;
    return fail(v, path, std::string("expected ") + want + ", found " + v.kind_name());
  }
  bool number(const Value& v, const std::string& path, u64& out) {
    if (v.kind == Value::Kind::kNumber) {
      out = v.number;
      return true;
    }
    if (v.kind != Value::Kind::kString) return fail(v, path, std::string("expected a number or \"0x...\" string, found ") + v.kind_name());
    auto n = parse_number(v.string);
    if (!n.ok()) return fail(v, path, "bad number \"" + v.string + "\": " + n.error().message);
    out = *n;
    return true;
  }
  // Pin ids are 32 bits, as the engines count them; a wider value is an
  // error, not a silently truncated id.
  bool pin_id(const Value& v, const std::string& path, std::uint32_t& out) {
    u64 n = 0;
    if (!number(v, path, n)) return false;
    if (n > 0xffffffffu) return fail(v, path, "pin id " + hex(n) + " is above 2^32-1");
    out = static_cast<std::uint32_t>(n);
    return true;
  }
  bool range(const Value& v, const std::string& path, Range& out) {
    if (!is(v, Value::Kind::kString, path, "a range string \"START-LAST\"")) return false;
    auto r = parse_range(v.string);
    if (!r.ok()) return fail(v, path, "bad range \"" + v.string + "\": " + r.error().message);
    out = *r;
    return true;
  }
  bool string(const Value& v, const std::string& path, std::string& out) {
    if (!is(v, Value::Kind::kString, path, "a string")) return false;
    out = v.string;
    return true;
  }
  bool boolean(const Value& v, const std::string& path, bool& out) {
    if (!is(v, Value::Kind::kBool, path, "true or false")) return false;
    out = v.boolean;
    return true;
  }
  template <typename E>
  bool choice(const Value& v, const std::string& path, const std::vector<std::pair<const char*, E>>& names, E& out) {
    if (!is(v, Value::Kind::kString, path, "a string")) return false;
    for (const auto& [n, e] : names)
      if (v.string == n) {
        out = e;
        return true;
      }
    std::string all;
    for (const auto& [n, e] : names) all += (all.empty() ? "" : ", ") + std::string(n);
    return fail(v, path, "\"" + v.string + "\" is not one of " + all);
  }
  // Applies f(item, path) to each element of the array member `key`.
  template <typename F>
  bool each(const Value& obj, const std::string& path, std::string_view key, F f, bool required = true) {
    const Value* a = member(obj, path, key, required);
    if (!a) return !required;
    const std::string p = path + "." + std::string(key);
    if (!is(*a, Value::Kind::kArray, p, "an array")) return false;
    for (std::size_t i = 0; i < a->array.size(); ++i)
      if (!f(a->array[i], p + "[" + std::to_string(i) + "]")) return false;
    return true;
  }
  bool object(const Value& v, const std::string& path) { return is(v, Value::Kind::kObject, path, "an object"); }
};

const std::vector<std::pair<const char*, Prot>> kProts = {
    {"r", Prot::kRead}, {"rw", Prot::kReadWrite}, {"w", Prot::kWrite}, {"none", Prot::kNone}};
const std::vector<std::pair<const char*, Format>> kFormats = {
    {"x86-64", Format::kX86_64}, {"arm-lpae", Format::kArmLpae}, {"tce", Format::kTce}, {"mock", Format::kMock}};
const std::vector<std::pair<const char*, IoasMode>> kModes = {
    {"default", IoasMode::kDefault}, {"kernel", IoasMode::kKernel}};
const std::vector<std::pair<const char*, DirtyMode>> kDirty = {
    {"off", DirtyMode::kOff}, {"on", DirtyMode::kOn}, {"on-split", DirtyMode::kOnSplit}};
const std::vector<std::pair<const char*, OwnerKind>> kOwnerKinds = {
    {"zero-page", OwnerKind::kZeroPage}, {"user", OwnerKind::kUser},
    {"device", OwnerKind::kDevice},     {"domain", OwnerKind::kDomain}};
const std::vector<std::pair<const char*, ZeroPage>> kZero = {
    {"reserved", ZeroPage::kReserved}, {"allowed", ZeroPage::kAllowed}};

}  // namespace

std::vector<u64> sample_points(const IoasState& s) {
  std::vector<u64> pts;
  for (const auto& a : s.areas) {
    if (a.iova.start > 0) pts.push_back(a.iova.start - 1);
    pts.push_back(a.iova.start);
    pts.push_back(a.iova.last);
    if (a.iova.last < kMaxIova) pts.push_back(a.iova.last + 1);
  }
  std::sort(pts.begin(), pts.end());
  pts.erase(std::unique(pts.begin(), pts.end()), pts.end());
  return pts;
}

StateDump dump_engine(const Engine& e) {
  StateDump d;
  d.memories = e.memories();
  for (const auto& name : e.ioas_names()) {
    auto s = e.snapshot(name);
    if (!s.ok()) continue;
    for (const auto& dom : s->domains)
      for (u64 x : sample_points(*s)) {
        auto t = e.translate(dom.name, x);
        if (t.ok()) d.translations.push_back(TranslationSample{dom.name, x, *t});
      }
    d.ioases.push_back(std::move(s).value());
  }
  return d;
}

json::Value to_json(const StateDump& d) {
  Value root = Value::obj();
  root.set("ioas-state", Value::of(std::uint64_t{1}));
  Value mems = Value::arr();
  for (const auto& m : d.memories) {
    mems.push(Value::obj()
                  .set("name", Value::of(m.source.name))
                  .set("va", hexv(m.source.va))
                  .set("len", hexv(m.source.len))
                  .set("pa", hexv(m.source.pa))
                  .set("writable", Value::of(m.source.writable))
                  .set("use_count", Value::of(m.use_count)));
  }
  root.set("memories", std::move(mems));
  Value ioases = Value::arr();
  for (const auto& s : d.ioases) {
    Value io = Value::obj();
    io.set("name", Value::of(s.name))
        .set("mode", Value::of(to_string(s.options.mode)))
        .set("zero_page", Value::of(s.options.zero_page == ZeroPage::kReserved ? "reserved" : "allowed"))
        .set("huge_pages", Value::of(s.options.huge_pages))
        .set("iova_alignment", hexv(s.iova_alignment))
        .set("next_pin_id", Value::of(std::uint64_t{s.next_pin_id}));
    Value areas = Value::arr();
    for (const auto& a : s.areas)
      areas.push(Value::obj()
                     .set("iova", rangev(a.iova))
                     .set("prot", Value::of(to_string(a.prot)))
                     .set("source", Value::of(a.source))
                     .set("offset", hexv(a.offset))
                     .set("pins", Value::of(a.pins)));
    io.set("areas", std::move(areas));
    Value resv = Value::arr();
    for (const auto& r : s.reserved) {
      Value owner = Value::obj().set("kind", Value::of(to_string(r.owner.kind)));
      if (r.owner.kind != OwnerKind::kZeroPage) owner.set("name", Value::of(r.owner.name));
      resv.push(Value::obj().set("range", rangev(r.range)).set("owner", std::move(owner)));
    }
    io.set("reserved", std::move(resv));
    Value allowed = Value::arr();
    for (const auto& r : s.allowed) allowed.push(rangev(r));
    io.set("allowed", std::move(allowed));
    Value pins = Value::arr();
    for (const auto& p : s.pins)
      pins.push(Value::obj()
                    .set("id", Value::of(std::uint64_t{p.id}))
                    .set("iova", rangev(p.iova))
                    .set("write", Value::of(p.write))
                    .set("release", Value::of(p.release)));
    io.set("pins", std::move(pins));
    Value doms = Value::arr();
    for (const auto& dm : s.domains) {
      Value devs = Value::arr();
      for (const auto& dv : dm.devices) devs.push(Value::of(dv));
      Value tr = Value::arr();
      for (const auto& t : d.translations) {
        if (t.domain != dm.name) continue;
        Value one = Value::obj().set("iova", hexv(t.iova));
        if (t.result) one.set("pa", hexv(t.result->pa)).set("prot", Value::of(to_string(t.result->prot)));
        else one.set("fault", Value::of(true));
        tr.push(std::move(one));
      }
      doms.push(Value::obj()
                    .set("name", Value::of(dm.name))
                    .set("format", Value::of(to_string(dm.fmt)))
                    .set("aperture", rangev(dm.aperture))
                    .set("pgsize_bitmap", hexv(dm.pgsize_bitmap))
                    .set("devices", std::move(devs))
                    .set("dirty", Value::of(dirty_name(dm.dirty)))
                    .set("translations", std::move(tr)));
    }
    io.set("domains", std::move(doms));
    ioases.push(std::move(io));
  }
  root.set("ioases", std::move(ioases));
  return root;
}

std::string to_json_text(const StateDump& d) { return json::write(to_json(d)) + "\n"; }

namespace {

// One reader per kind of JSON object: each reads the object at path p into
// its out-parameter, or records the first error in rd and answers false.

bool read_memory(Reader& rd, const Value& m, const std::string& p, MemoryInfo& mi) {
  if (!rd.object(m, p)) return false;
  const Value *n, *va, *len, *pa, *w, *uc;
  if (!(n = rd.member(m, p, "name")) || !(va = rd.member(m, p, "va")) || !(len = rd.member(m, p, "len")) ||
      !(w = rd.member(m, p, "writable")) || !(uc = rd.member(m, p, "use_count")))
    return false;
  pa = m.find("pa");
  if (!rd.string(*n, p + ".name", mi.source.name) || !rd.number(*va, p + ".va", mi.source.va) ||
      !rd.number(*len, p + ".len", mi.source.len) || !rd.boolean(*w, p + ".writable", mi.source.writable) ||
      !rd.number(*uc, p + ".use_count", mi.use_count))
    return false;
  mi.source.pa = mi.source.va;
  return !pa || rd.number(*pa, p + ".pa", mi.source.pa);
}

bool read_area(Reader& rd, const Value& a, const std::string& q, AreaInfo& ai) {
  const Value* f;
  if (!rd.object(a, q)) return false;
  if (!(f = rd.member(a, q, "iova")) || !rd.range(*f, q + ".iova", ai.iova)) return false;
  if (!(f = rd.member(a, q, "prot")) || !rd.choice(*f, q + ".prot", kProts, ai.prot)) return false;
  if (!(f = rd.member(a, q, "source")) || !rd.string(*f, q + ".source", ai.source)) return false;
  if ((f = a.find("offset")) && !rd.number(*f, q + ".offset", ai.offset)) return false;
  return !(f = a.find("pins")) || rd.number(*f, q + ".pins", ai.pins);
}

bool read_reserved(Reader& rd, const Value& r, const std::string& q, ReservedInfo& ri) {
  const Value *f, *g;
  if (!rd.object(r, q)) return false;
  if (!(f = rd.member(r, q, "range")) || !rd.range(*f, q + ".range", ri.range)) return false;
  if (!(f = rd.member(r, q, "owner")) || !rd.object(*f, q + ".owner")) return false;
  if (!(g = rd.member(*f, q + ".owner", "kind")) || !rd.choice(*g, q + ".owner.kind", kOwnerKinds, ri.owner.kind))
    return false;
  return ri.owner.kind == OwnerKind::kZeroPage ||
         ((g = rd.member(*f, q + ".owner", "name")) && rd.string(*g, q + ".owner.name", ri.owner.name));
}

bool read_pin(Reader& rd, const Value& r, const std::string& q, PinInfo& pi) {
  const Value* f;
  if (!rd.object(r, q)) return false;
  if (!(f = rd.member(r, q, "id")) || !rd.pin_id(*f, q + ".id", pi.id)) return false;
  if (!(f = rd.member(r, q, "iova")) || !rd.range(*f, q + ".iova", pi.iova)) return false;
  if ((f = r.find("write")) && !rd.boolean(*f, q + ".write", pi.write)) return false;
  return !(f = r.find("release")) || rd.boolean(*f, q + ".release", pi.release);
}

// A translation sample of domain `domain`.
bool read_sample(Reader& rd, const Value& t, const std::string& w, const std::string& domain,
                 TranslationSample& ts) {
  ts = TranslationSample{domain, 0, std::nullopt};
  const Value* g;
  if (!rd.object(t, w)) return false;
  if (!(g = rd.member(t, w, "iova")) || !rd.number(*g, w + ".iova", ts.iova)) return false;
  bool fault = false;
  if ((g = t.find("fault")) && !rd.boolean(*g, w + ".fault", fault)) return false;
  if (fault) return true;
  Translation tr;
  if (!(g = rd.member(t, w, "pa")) || !rd.number(*g, w + ".pa", tr.pa)) return false;
  if (!(g = rd.member(t, w, "prot")) || !rd.choice(*g, w + ".prot", kProts, tr.prot)) return false;
  ts.result = tr;
  return true;
}

// A domain, and its translation samples into `samples`. Domain names are
// unique across IOASes (`names` holds those read so far): a translation
// sample names only its domain, so a second domain of the same name would
// make it ambiguous.
bool read_domain(Reader& rd, const Value& r, const std::string& q, std::set<std::string>& names, DomainInfo& di,
                 std::vector<TranslationSample>& samples) {
  const Value* f;
  if (!rd.object(r, q)) return false;
  if (!(f = rd.member(r, q, "name")) || !rd.string(*f, q + ".name", di.name)) return false;
  if (!names.insert(di.name).second)
    return rd.fail(*f, q + ".name", "domain \"" + di.name + "\" appears twice (domain names are unique)");
  if (!(f = rd.member(r, q, "format")) || !rd.choice(*f, q + ".format", kFormats, di.fmt)) return false;
  if (!(f = rd.member(r, q, "aperture")) || !rd.range(*f, q + ".aperture", di.aperture)) return false;
  if (!(f = rd.member(r, q, "pgsize_bitmap")) || !rd.number(*f, q + ".pgsize_bitmap", di.pgsize_bitmap))
    return false;
  if ((f = r.find("dirty")) && !rd.choice(*f, q + ".dirty", kDirty, di.dirty)) return false;
  if (!rd.each(r, q, "devices", [&](const Value& dv, const std::string& w) {
        std::string n;
        if (!rd.string(dv, w, n)) return false;
        di.devices.push_back(n);
        return true;
      }))
    return false;
  return rd.each(r, q, "translations", [&](const Value& t, const std::string& w) {
    TranslationSample ts;
    if (!read_sample(rd, t, w, di.name, ts)) return false;
    samples.push_back(std::move(ts));
    return true;
  }, false);
}

// The elements of the array `key` of obj, each read by read(rd, value, path,
// element) into a new element of out.
template <typename T, typename Read>
bool read_list(Reader& rd, const Value& obj, const std::string& p, std::string_view key, std::vector<T>& out,
               Read read, bool required = true) {
  return rd.each(obj, p, key, [&](const Value& v, const std::string& q) {
    T x{};
    if (!read(rd, v, q, x)) return false;
    out.push_back(std::move(x));
    return true;
  }, required);
}

bool read_range(Reader& rd, const Value& r, const std::string& q, Range& x) { return rd.range(r, q, x); }

bool read_ioas(Reader& rd, const Value& io, const std::string& p, std::set<std::string>& domain_names,
               StateDump& d, IoasState& s) {
  if (!rd.object(io, p)) return false;
  const Value* v;
  if (!(v = rd.member(io, p, "name")) || !rd.string(*v, p + ".name", s.name)) return false;
  if ((v = io.find("mode")) && !rd.choice(*v, p + ".mode", kModes, s.options.mode)) return false;
  if ((v = io.find("zero_page")) && !rd.choice(*v, p + ".zero_page", kZero, s.options.zero_page)) return false;
  if ((v = io.find("huge_pages")) && !rd.boolean(*v, p + ".huge_pages", s.options.huge_pages)) return false;
  if (!(v = rd.member(io, p, "iova_alignment")) || !rd.number(*v, p + ".iova_alignment", s.iova_alignment))
    return false;
  if ((v = io.find("next_pin_id")) && !rd.pin_id(*v, p + ".next_pin_id", s.next_pin_id)) return false;
  auto domain = [&](Reader& r, const Value& x, const std::string& q, DomainInfo& di) {
    return read_domain(r, x, q, domain_names, di, d.translations);
  };
  return read_list(rd, io, p, "areas", s.areas, read_area) &&
         read_list(rd, io, p, "reserved", s.reserved, read_reserved) &&
         read_list(rd, io, p, "allowed", s.allowed, read_range, false) &&
         read_list(rd, io, p, "pins", s.pins, read_pin, false) &&
         read_list(rd, io, p, "domains", s.domains, domain, false);
}

}  // namespace

Result<StateDump> from_json_text(std::string_view text, std::string_view file) {
  auto doc = json::parse(text, file);
  if (!doc.ok()) return doc.error();
  const Value& root = *doc;
  Reader rd{std::string(file), {}};
  StateDump d;
  auto bad = [&]() -> Result<StateDump> { return make_error(EINVAL, rd.error); };
  if (!rd.object(root, "$")) return bad();
  const Value* ver = rd.member(root, "$", "ioas-state");
  if (!ver) return bad();
  if (ver->kind != Value::Kind::kNumber || ver->number != 1) {
    rd.fail(*ver, "$.ioas-state", "unsupported version (this reader knows version 1)");
    return bad();
  }
  std::set<std::string> domain_names;
  auto ioas = [&](Reader& r, const Value& x, const std::string& q, IoasState& s) {
    return read_ioas(r, x, q, domain_names, d, s);
  };
  if (!read_list(rd, root, "$", "memories", d.memories, read_memory) ||
      !read_list(rd, root, "$", "ioases", d.ioases, ioas))
    return bad();
  return d;
}

}  // namespace ioas::state
