// The `.trace` reader and writer (TRACE.md version 1).
//
// The reader works line by line: split into whitespace-separated tokens (each
// with its column), cut at the `=>` token, read the operation word, sort the
// arguments into positionals, key=value pairs and bare flags against that
// operation's table (OpSyntax), then build the Operation. Every rejection
// names the column of the offending token (or of its value), because the
// point of the format is that a person can fix a line from the message alone.
// No std:: call here throws on valid input except allocation, and the CLI
// catches that at its boundary.
#include "trace.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <new>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace ioas::trace {
namespace {

// A whitespace-separated word of a line and the 1-based column of its first byte.
struct Token {
  std::string_view text;
  int column = 0;
};

std::vector<Token> tokenize(std::string_view line) {
  std::vector<Token> out;
  std::size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    if (i >= line.size()) break;
    std::size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    out.push_back(Token{line.substr(start, i - start), static_cast<int>(start) + 1});
  }
  return out;
}

// An error at one column of the current line. The reader turns it into
// "file:line:column: message".
struct LexError {
  int column = 0;
  std::string message;
};

template <typename T>
using Lex = std::variant<T, LexError>;

template <typename T>
bool failed(const Lex<T>& l) {
  return l.index() == 1;
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// ---- numbers and ranges (ioas/core/text.hpp), at their column ----

Lex<u64> number_at(std::string_view s, int column) {
  auto n = read_number(s);
  if (auto* e = std::get_if<TextError>(&n)) return LexError{column + static_cast<int>(e->offset), e->message};
  return std::get<u64>(n);
}

Lex<Range> range_at(std::string_view s, int column) {
  auto r = read_range(s);
  if (auto* e = std::get_if<TextError>(&r)) return LexError{column + static_cast<int>(e->offset), e->message};
  return std::get<Range>(r);
}

// Names of IOASes, memory sources, devices, domains and owners. Restricted to
// a plain alphabet so that `+OFF`, `:TYPE`, `,` and `=` stay unambiguous.
Lex<std::string> name_at(std::string_view s, int column, const char* what) {
  if (s.empty()) return LexError{column, std::string("expected a ") + what + " name"};
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool good = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-' || c == '.';
    if (!good)
      return LexError{column + static_cast<int>(i),
                      std::string(what) + " name " + quoted(s) +
                          " has a character outside [A-Za-z0-9_.-]"};
  }
  return std::string(s);
}

template <typename E>
struct Word {
  const char* text;
  E value;
};

template <typename E, std::size_t N>
Lex<E> word_at(std::string_view s, int column, const char* what,
               const std::array<Word<E>, N>& words) {
  std::string choices;
  for (const auto& w : words) {
    if (s == w.text) return w.value;
    if (!choices.empty()) choices += '|';
    choices += w.text;
  }
  return LexError{column, std::string(what) + " " + quoted(s) + " is not one of " + choices};
}

constexpr std::array<Word<Prot>, 3> kProts{{
    {"r", Prot::kRead}, {"w", Prot::kWrite}, {"rw", Prot::kReadWrite}}};
constexpr std::array<Word<Format>, 4> kFormats{{
    {"x86-64", Format::kX86_64}, {"arm-lpae", Format::kArmLpae}, {"tce", Format::kTce}, {"mock", Format::kMock}}};
constexpr std::array<Word<IoasMode>, 2> kModes{{
    {"default", IoasMode::kDefault}, {"kernel", IoasMode::kKernel}}};
constexpr std::array<Word<ResvType>, 4> kResvTypes{{
    {"direct", ResvType::kDirect},
    {"direct-relaxable", ResvType::kDirectRelaxable},
    {"reserved", ResvType::kReserved},
    {"msi", ResvType::kMsi}}};
constexpr std::array<Word<ZeroPage>, 2> kZeroPages{{
    {"reserved", ZeroPage::kReserved}, {"allowed", ZeroPage::kAllowed}}};
constexpr std::array<Word<bool>, 2> kOnOff{{{"on", true}, {"off", false}}};
constexpr std::array<Word<bool>, 2> kYesNo{{{"yes", true}, {"no", false}}};
constexpr std::array<Word<Invariant>, 8> kInvariants{{
    {"sorted", Invariant::kSorted},
    {"area-reserved", Invariant::kAreaReserved},
    {"allowed-reserved", Invariant::kAllowedReserved},
    {"zero-iova", Invariant::kZeroIova},
    {"alignment", Invariant::kAlignment},
    {"aperture", Invariant::kAperture},
    {"translation", Invariant::kTranslation},
    {"use-count", Invariant::kUseCount}}};

// ---- the syntax table: which arguments each operation takes ----

// Positionals come first (`ioas NAME`, `reserve RANGE`, `allow RANGE...`),
// then key=value pairs and bare flags in any order.
struct OpSyntax {
  const char* name;
  int min_positional;
  int max_positional;  // -1: any number
  std::vector<std::string_view> keys;
  std::vector<std::string_view> flags;
};

const std::vector<OpSyntax>& syntax_table() {
  static const std::vector<OpSyntax> table = {
      {"ioas", 1, 1, {"mode", "zero-page", "huge-pages"}, {}},
      {"mem", 1, 1, {"va", "len", "pa"}, {"ro"}},
      {"unmem", 1, 1, {}, {}},
      {"map", 0, 0, {"iova", "len", "src", "prot"}, {}},
      {"unmap", 0, 0, {"iova", "len"}, {"all"}},
      {"cut", 0, 0, {"iova"}, {}},
      {"reserve", 1, 1, {"owner"}, {}},
      {"unreserve", 0, 0, {"owner"}, {}},
      {"allow", 0, -1, {}, {}},
      {"ranges", 0, 0, {}, {}},
      {"attach", 0, 0, {"dev", "dom", "fmt", "aperture", "pgsizes", "resv"}, {}},
      {"detach", 0, 0, {"dev"}, {}},
      {"pin", 0, 0, {"iova", "len", "release"}, {"write"}},
      {"unpin", 1, 1, {}, {}},
      {"copy", 0, 0, {"from", "iova", "len", "to", "prot"}, {}},
      {"translate", 0, 0, {"dom", "iova"}, {}},
      {"dma", 0, 0, {"dom", "iova", "len"}, {"read", "write"}},
      {"dirty", 0, 0, {"dom"}, {"on", "off", "split"}},
      {"read-dirty", 0, 0, {"dom", "iova", "len", "pgsize"}, {"keep"}},
      {"uva", 0, 0, {"iova"}, {}},
      {"check", 0, 0, {}, {}},
  };
  return table;
}

// The arguments of one line, sorted by kind. Invariant: every key and flag
// is one of the operation's and appears at most once.
struct Args {
  const OpSyntax* syntax = nullptr;
  Token op;
  int end_column = 0;  // one past the last argument, for "missing" errors
  std::vector<Token> positional;
  struct Kv {
    std::string_view key;
    Token value;
    int key_column;
  };
  std::vector<Kv> kvs;
  std::vector<Token> flags;

  const Kv* find(std::string_view key) const {
    for (const auto& kv : kvs)
      if (kv.key == key) return &kv;
    return nullptr;
  }
  const Token* flag(std::string_view f) const {
    for (const auto& t : flags)
      if (t.text == f) return &t;
    return nullptr;
  }
  LexError missing(std::string_view key) const {
    return LexError{end_column, std::string(syntax->name) + ": missing " + std::string(key) + "="};
  }
  Lex<u64> num(std::string_view key) const {
    const Kv* kv = find(key);
    if (!kv) return missing(key);
    return number_at(kv->value.text, kv->value.column);
  }
  Lex<std::optional<u64>> opt_num(std::string_view key) const {
    const Kv* kv = find(key);
    if (!kv) return std::optional<u64>{};
    auto n = number_at(kv->value.text, kv->value.column);
    if (failed(n)) return std::get<LexError>(n);
    return std::optional<u64>{std::get<u64>(n)};
  }
  Lex<std::string> name(std::string_view key, const char* what) const {
    const Kv* kv = find(key);
    if (!kv) return missing(key);
    return name_at(kv->value.text, kv->value.column, what);
  }
};

Lex<Args> sort_args(const std::vector<Token>& tokens, int end_column) {
  Args a;
  a.op = tokens[0];
  a.end_column = end_column;
  for (const auto& s : syntax_table())
    if (tokens[0].text == s.name) a.syntax = &s;
  if (!a.syntax) return LexError{tokens[0].column, "unknown operation " + quoted(tokens[0].text)};
  const OpSyntax& syn = *a.syntax;
  std::size_t i = 1;
  while (i < tokens.size() && tokens[i].text.find('=') == std::string_view::npos &&
         (syn.max_positional < 0 || static_cast<int>(a.positional.size()) < syn.max_positional)) {
    a.positional.push_back(tokens[i]);
    ++i;
  }
  if (static_cast<int>(a.positional.size()) < syn.min_positional)
    return LexError{i < tokens.size() ? tokens[i].column : end_column,
                    std::string(syn.name) + ": missing " +
                        (std::string_view(syn.name) == "reserve"  ? "RANGE"
                         : std::string_view(syn.name) == "unpin" ? "ID"
                                                                  : "NAME")};
  for (; i < tokens.size(); ++i) {
    const Token& t = tokens[i];
    std::size_t eq = t.text.find('=');
    if (eq == std::string_view::npos) {
      if (std::find(syn.flags.begin(), syn.flags.end(), t.text) == syn.flags.end())
        return LexError{t.column, std::string(syn.name) + ": unknown flag " + quoted(t.text)};
      if (a.flag(t.text))
        return LexError{t.column, std::string(syn.name) + ": flag " + quoted(t.text) +
                                      " written twice"};
      a.flags.push_back(t);
      continue;
    }
    std::string_view key = t.text.substr(0, eq);
    if (key.empty()) return LexError{t.column, std::string(syn.name) + ": " + quoted(t.text) + " has no key before '='"};
    if (std::find(syn.keys.begin(), syn.keys.end(), key) == syn.keys.end())
      return LexError{t.column, std::string(syn.name) + ": unknown key " + quoted(key)};
    if (a.find(key))
      return LexError{t.column, std::string(syn.name) + ": key " + quoted(key) + " written twice"};
    Token value{t.text.substr(eq + 1), t.column + static_cast<int>(eq) + 1};
    if (value.text.empty())
      return LexError{value.column, std::string(syn.name) + ": key " + quoted(key) + " has no value"};
    a.kvs.push_back(Args::Kv{key, value, t.column});
  }
  return a;
}

// Unwraps a Lex<T> into `var`, or returns its error from the enclosing function.
#define TRY_LEX(var, expr)                              \
  auto var##_lex = (expr);                              \
  if (failed(var##_lex)) return std::get<LexError>(var##_lex); \
  auto var = std::move(std::get<0>(var##_lex))

Lex<Prot> prot_of(const Args& a) {
  const Args::Kv* kv = a.find("prot");
  if (!kv) return a.missing("prot");
  return word_at(kv->value.text, kv->value.column, "prot", kProts);
}

Lex<Operation> build(const Args& a) {
  std::string_view op = a.syntax->name;
  if (op == "ioas") {
    IoasOp o;
    TRY_LEX(name, name_at(a.positional[0].text, a.positional[0].column, "IOAS"));
    o.name = name;
    if (const auto* kv = a.find("mode")) {
      TRY_LEX(m, word_at(kv->value.text, kv->value.column, "mode", kModes));
      o.mode = m;
    }
    if (const auto* kv = a.find("zero-page")) {
      TRY_LEX(z, word_at(kv->value.text, kv->value.column, "zero-page", kZeroPages));
      o.zero_page = z;
    }
    if (const auto* kv = a.find("huge-pages")) {
      TRY_LEX(h, word_at(kv->value.text, kv->value.column, "huge-pages", kOnOff));
      o.huge_pages = h;
    }
    return o;
  }
  if (op == "mem") {
    MemOp o;
    TRY_LEX(name, name_at(a.positional[0].text, a.positional[0].column, "memory source"));
    TRY_LEX(va, a.num("va"));
    TRY_LEX(len, a.num("len"));
    TRY_LEX(pa, a.opt_num("pa"));
    o.name = name;
    o.va = va;
    o.len = len;
    o.pa = pa;
    o.ro = a.flag("ro") != nullptr;
    return o;
  }
  if (op == "unmem") {
    TRY_LEX(name, name_at(a.positional[0].text, a.positional[0].column, "memory source"));
    return UnmemOp{name};
  }
  if (op == "map") {
    MapOp o;
    TRY_LEX(iova, a.opt_num("iova"));
    TRY_LEX(len, a.num("len"));
    const Args::Kv* src = a.find("src");
    if (!src) return a.missing("src");
    std::string_view s = src->value.text;
    std::size_t plus = s.find('+');
    TRY_LEX(name, name_at(s.substr(0, plus), src->value.column, "memory source"));
    if (plus != std::string_view::npos) {
      TRY_LEX(off, number_at(s.substr(plus + 1), src->value.column + static_cast<int>(plus) + 1));
      o.offset = off;
    }
    TRY_LEX(prot, prot_of(a));
    o.iova = iova;
    o.len = len;
    o.src = name;
    o.prot = prot;
    return o;
  }
  if (op == "unmap") {
    if (a.flag("all")) {
      if (!a.kvs.empty())
        return LexError{a.kvs[0].key_column, "unmap: 'all' takes no iova= or len="};
      return UnmapOp{true, 0, 0};
    }
    TRY_LEX(iova, a.num("iova"));
    TRY_LEX(len, a.num("len"));
    return UnmapOp{false, iova, len};
  }
  if (op == "cut") {
    TRY_LEX(iova, a.num("iova"));
    return CutOp{iova};
  }
  if (op == "reserve") {
    TRY_LEX(r, range_at(a.positional[0].text, a.positional[0].column));
    TRY_LEX(owner, a.name("owner", "owner"));
    return ReserveOp{r, owner};
  }
  if (op == "unreserve") {
    TRY_LEX(owner, a.name("owner", "owner"));
    return UnreserveOp{owner};
  }
  if (op == "allow") {
    AllowOp o;
    for (const auto& t : a.positional) {
      TRY_LEX(r, range_at(t.text, t.column));
      o.ranges.push_back(r);
    }
    return o;
  }
  if (op == "ranges") return RangesOp{};
  if (op == "attach") {
    AttachOp o;
    TRY_LEX(dev, a.name("dev", "device"));
    TRY_LEX(dom, a.name("dom", "domain"));
    o.dev = dev;
    o.dom = dom;
    if (const auto* kv = a.find("fmt")) {
      TRY_LEX(f, word_at(kv->value.text, kv->value.column, "fmt", kFormats));
      o.fmt = f;
    }
    if (const auto* kv = a.find("aperture")) {
      TRY_LEX(r, range_at(kv->value.text, kv->value.column));
      o.aperture = r;
    }
    if (const auto* kv = a.find("pgsizes")) {
      u64 bitmap = 0;
      std::string_view s = kv->value.text;
      std::size_t at = 0;
      while (true) {
        std::size_t comma = s.find(',', at);
        std::string_view item = s.substr(at, comma == std::string_view::npos ? s.npos : comma - at);
        int col = kv->value.column + static_cast<int>(at);
        TRY_LEX(size, number_at(item, col));
        // A bitmap holds powers of two only; another size is kept aside for
        // attach to refuse (a value that parses, with a wrong meaning).
        if (size == 0 || (size & (size - 1)) != 0)
          o.pgsizes_not_pow2.push_back(size);
        else
          bitmap |= size;
        if (comma == std::string_view::npos) break;
        at = comma + 1;
      }
      o.pgsize_bitmap = bitmap;
    }
    if (const auto* kv = a.find("resv")) {
      std::string_view s = kv->value.text;
      std::size_t at = 0;
      while (true) {
        std::size_t comma = s.find(',', at);
        std::string_view item = s.substr(at, comma == std::string_view::npos ? s.npos : comma - at);
        int col = kv->value.column + static_cast<int>(at);
        std::size_t colon = item.find(':');
        if (colon == std::string_view::npos)
          return LexError{col, "resv: expected RANGE:TYPE, got " + quoted(item)};
        TRY_LEX(r, range_at(item.substr(0, colon), col));
        TRY_LEX(type, word_at(item.substr(colon + 1), col + static_cast<int>(colon) + 1,
                              "resv type", kResvTypes));
        o.resv.push_back(ResvRegion{r, type});
        if (comma == std::string_view::npos) break;
        at = comma + 1;
      }
    }
    return o;
  }
  if (op == "detach") {
    TRY_LEX(dev, a.name("dev", "device"));
    return DetachOp{dev};
  }
  if (op == "pin") {
    PinOp o;
    TRY_LEX(iova, a.num("iova"));
    TRY_LEX(len, a.num("len"));
    o.iova = iova;
    o.len = len;
    o.write = a.flag("write") != nullptr;
    if (const auto* kv = a.find("release")) {
      TRY_LEX(r, word_at(kv->value.text, kv->value.column, "release", kYesNo));
      o.release = r;
    }
    return o;
  }
  if (op == "unpin") {
    TRY_LEX(id, number_at(a.positional[0].text, a.positional[0].column));
    if (id > 0xffffffffu)
      return LexError{a.positional[0].column, "unpin: pin id " + std::string(a.positional[0].text) +
                                                  " is above 2^32-1 (no pin can have it)"};
    return UnpinOp{static_cast<std::uint32_t>(id)};
  }
  if (op == "copy") {
    CopyOp o;
    TRY_LEX(from, a.name("from", "IOAS"));
    TRY_LEX(iova, a.num("iova"));
    TRY_LEX(len, a.num("len"));
    TRY_LEX(to, a.opt_num("to"));
    TRY_LEX(prot, prot_of(a));
    o.from = from;
    o.iova = iova;
    o.len = len;
    o.to = to;
    o.prot = prot;
    return o;
  }
  if (op == "translate") {
    TRY_LEX(dom, a.name("dom", "domain"));
    TRY_LEX(iova, a.num("iova"));
    return TranslateOp{dom, iova};
  }
  if (op == "dma") {
    DmaOp o;
    TRY_LEX(dom, a.name("dom", "domain"));
    const Token* r = a.flag("read");
    const Token* w = a.flag("write");
    if (r && w) return LexError{std::max(r->column, w->column), "dma: both read and write given"};
    if (!r && !w) return LexError{a.end_column, "dma: missing read or write"};
    TRY_LEX(iova, a.num("iova"));
    TRY_LEX(len, a.num("len"));
    o.dom = dom;
    o.dir = w ? DmaDir::kWrite : DmaDir::kRead;
    o.iova = iova;
    o.len = len;
    return o;
  }
  if (op == "dirty") {
    TRY_LEX(dom, a.name("dom", "domain"));
    const Token* on = a.flag("on");
    const Token* off = a.flag("off");
    const Token* split = a.flag("split");
    if (on && off) return LexError{std::max(on->column, off->column), "dirty: both on and off given"};
    if (!on && !off) return LexError{a.end_column, "dirty: missing on or off"};
    if (off && split) return LexError{split->column, "dirty: split goes with on only"};
    return DirtyOp{dom, off ? DirtyMode::kOff : split ? DirtyMode::kOnSplit : DirtyMode::kOn};
  }
  if (op == "read-dirty") {
    TRY_LEX(dom, a.name("dom", "domain"));
    TRY_LEX(iova, a.num("iova"));
    TRY_LEX(len, a.num("len"));
    TRY_LEX(pgsize, a.num("pgsize"));
    return ReadDirtyOp{dom, iova, len, pgsize, a.flag("keep") != nullptr};
  }
  if (op == "uva") {
    TRY_LEX(iova, a.num("iova"));
    return UvaOp{iova};
  }
  return CheckOp{};  // the table has no other operation
}

// ---- expectations ----

// The result kinds an operation can give besides `error ENAME`.
bool can_give(const Operation& op, OutcomeKind k) {
  using K = OutcomeKind;
  if (k == K::kError) return true;
  if (auto* m = std::get_if<MapOp>(&op)) return k == (m->iova ? K::kOk : K::kIova);
  if (auto* c = std::get_if<CopyOp>(&op)) return k == (c->to ? K::kOk : K::kIova);
  if (std::holds_alternative<UnmapOp>(op)) return k == K::kUnmapped;
  if (std::holds_alternative<RangesOp>(op)) return k == K::kRanges;
  if (std::holds_alternative<PinOp>(op)) return k == K::kPin;
  if (std::holds_alternative<TranslateOp>(op)) return k == K::kPa || k == K::kFault;
  if (std::holds_alternative<DmaOp>(op)) return k == K::kOk || k == K::kFaultAt;
  if (std::holds_alternative<ReadDirtyOp>(op)) return k == K::kDirty;
  if (std::holds_alternative<UvaOp>(op)) return k == K::kVa;
  if (std::holds_alternative<CheckOp>(op)) return k == K::kOk || k == K::kViolated;
  return k == K::kOk;
}

const char* kind_word(OutcomeKind k) {
  switch (k) {
    case OutcomeKind::kOk: return "ok";
    case OutcomeKind::kError: return "error";
    case OutcomeKind::kIova: return "iova";
    case OutcomeKind::kUnmapped: return "unmapped";
    case OutcomeKind::kRanges: return "ranges";
    case OutcomeKind::kPin: return "pin";
    case OutcomeKind::kPa: return "pa";
    case OutcomeKind::kFault: return "fault";
    case OutcomeKind::kFaultAt: return "fault IOVA";
    case OutcomeKind::kDirty: return "dirty";
    case OutcomeKind::kVa: return "va";
    case OutcomeKind::kViolated: return "violated";
  }
  return "?";
}

Lex<Outcome> parse_outcome(const std::vector<Token>& t, int end_column) {
  std::string_view w = t[0].text;
  auto extra = [&](std::size_t from) -> std::optional<LexError> {
    if (t.size() > from)
      return LexError{t[from].column, "result " + quoted(w) + ": unexpected " + quoted(t[from].text)};
    return std::nullopt;
  };
  auto one_number = [&](OutcomeKind k) -> Lex<Outcome> {
    if (t.size() < 2) return LexError{end_column, "result " + quoted(w) + ": missing its number"};
    if (auto e = extra(2)) return *e;
    TRY_LEX(v, number_at(t[1].text, t[1].column));
    return Outcome::with_value(k, v);
  };
  if (w == "ok") {
    if (auto e = extra(1)) return *e;
    return Outcome::ok();
  }
  if (w == "error") {
    if (t.size() < 2) return LexError{end_column, "result 'error': missing the errno name (error EINVAL)"};
    if (auto e = extra(2)) return *e;
    int code = errno_from_name(t[1].text);
    if (code == 0) return LexError{t[1].column, "unknown errno name " + quoted(t[1].text)};
    return Outcome::err(code);
  }
  if (w == "iova") return one_number(OutcomeKind::kIova);
  if (w == "unmapped") return one_number(OutcomeKind::kUnmapped);
  if (w == "pin") return one_number(OutcomeKind::kPin);
  if (w == "va") return one_number(OutcomeKind::kVa);
  if (w == "fault") {
    if (t.size() == 1) return Outcome{OutcomeKind::kFault, 0, 0, Prot::kNone, {}, {}};
    return one_number(OutcomeKind::kFaultAt);
  }
  if (w == "pa") {
    if (t.size() < 3) return LexError{end_column, "result 'pa': expected pa P PROT"};
    if (auto e = extra(3)) return *e;
    TRY_LEX(pa, number_at(t[1].text, t[1].column));
    TRY_LEX(prot, word_at(t[2].text, t[2].column, "prot", kProts));
    Outcome o = Outcome::with_value(OutcomeKind::kPa, pa);
    o.prot = prot;
    return o;
  }
  if (w == "ranges") {
    Outcome o{OutcomeKind::kRanges, 0, 0, Prot::kNone, {}, {}};
    std::size_t i = 1;
    for (; i < t.size() && t[i].text != "align"; ++i) {
      TRY_LEX(r, range_at(t[i].text, t[i].column));
      o.ranges.push_back(r);
    }
    if (i == t.size()) return LexError{end_column, "result 'ranges': missing 'align A'"};
    if (i + 1 == t.size()) return LexError{end_column, "result 'ranges': missing the alignment after 'align'"};
    if (auto e = extra(i + 2)) return *e;
    TRY_LEX(align, number_at(t[i + 1].text, t[i + 1].column));
    o.value = align;
    return o;
  }
  if (w == "dirty") {
    Outcome o{OutcomeKind::kDirty, 0, 0, Prot::kNone, {}, {}};
    if (t.size() < 2) return LexError{end_column, "result 'dirty': expected ranges or 'none'"};
    if (t[1].text == "none") {
      if (auto e = extra(2)) return *e;
      return o;
    }
    for (std::size_t i = 1; i < t.size(); ++i) {
      TRY_LEX(r, range_at(t[i].text, t[i].column));
      o.ranges.push_back(r);
    }
    return o;
  }
  if (w == "violated") {
    Outcome o{OutcomeKind::kViolated, 0, 0, Prot::kNone, {}, {}};
    if (t.size() < 2) return LexError{end_column, "result 'violated': name at least one invariant"};
    for (std::size_t i = 1; i < t.size(); ++i) {
      TRY_LEX(inv, word_at(t[i].text, t[i].column, "invariant", kInvariants));
      o.violated.push_back(inv);
    }
    // Compared as a set in SPEC order: the engine's report is sorted too.
    std::sort(o.violated.begin(), o.violated.end());
    o.violated.erase(std::unique(o.violated.begin(), o.violated.end()), o.violated.end());
    return o;
  }
  return LexError{t[0].column, "unknown result " + quoted(w)};
}

#undef TRY_LEX

}  // namespace

std::string to_string(const Position& p) {
  return p.file + ":" + std::to_string(p.line) + ":" + std::to_string(p.column);
}

std::vector<OperationSyntax> operation_syntax() {
  std::vector<OperationSyntax> out;
  for (const auto& s : syntax_table()) out.push_back(OperationSyntax{s.name, s.keys, s.flags});
  return out;
}

std::vector<std::string_view> result_words() {
  std::vector<std::string_view> out;
  for (int k = 0; k <= static_cast<int>(OutcomeKind::kViolated); ++k) {
    std::string_view w = kind_word(static_cast<OutcomeKind>(k));
    w = w.substr(0, w.find(' '));  // "fault IOVA" is the word fault
    if (std::find(out.begin(), out.end(), w) == out.end()) out.push_back(w);
  }
  return out;
}

namespace {
template <typename E, std::size_t N>
ValueWords words_of(std::string_view what, const std::array<Word<E>, N>& words) {
  ValueWords v{what, {}};
  for (const auto& w : words) v.words.push_back(w.text);
  return v;
}
}  // namespace

std::vector<ValueWords> value_words() {
  return {words_of("prot", kProts),           words_of("fmt", kFormats),
          words_of("resv type", kResvTypes),  words_of("zero-page", kZeroPages),
          words_of("huge-pages", kOnOff),     words_of("release", kYesNo),
          words_of("invariant", kInvariants)};
}

Result<Trace> parse_trace(std::string_view text, std::string_view file) {
  Trace trace;
  trace.file = std::string(file);
  trace.final_newline = text.empty() || text.back() == '\n';
  std::size_t at = 0;
  int lineno = 0;
  while (at < text.size()) {
    std::size_t nl = text.find('\n', at);
    std::string_view raw = text.substr(at, nl == std::string_view::npos ? text.npos : nl - at);
    at = nl == std::string_view::npos ? text.size() : nl + 1;
    ++lineno;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    trace.raw.emplace_back(raw);

    auto fail = [&](int column, const std::string& message) -> Result<Trace> {
      return make_error(EINVAL, to_string(Position{trace.file, lineno, column}) + ": " + message);
    };
    std::vector<Token> tokens = tokenize(raw);
    if (tokens.empty() || tokens[0].text[0] == '#') continue;  // blank or comment

    std::size_t arrow = tokens.size();
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      if (tokens[i].text != "=>") continue;
      if (arrow != tokens.size()) return fail(tokens[i].column, "a second '=>' on one line");
      arrow = i;
    }
    if (arrow == 0) return fail(tokens[0].column, "bare '=>': no operation before it");
    if (arrow + 1 == tokens.size())
      return fail(tokens[arrow].column, "bare '=>': no result after it (write '=> ok', '=> error ENAME', ...)");

    std::vector<Token> op_tokens(tokens.begin(), tokens.begin() + static_cast<long>(arrow));
    int end_column = arrow < tokens.size() ? tokens[arrow].column
                                           : static_cast<int>(raw.size()) + 1;
    auto args = sort_args(op_tokens, end_column);
    if (auto* e = std::get_if<LexError>(&args)) return fail(e->column, e->message);
    auto op = build(std::get<Args>(args));
    if (auto* e = std::get_if<LexError>(&op)) {
      // Every message names the operation it is about.
      std::string prefix = std::string(tokens[0].text) + ": ";
      return fail(e->column, e->message.rfind(prefix, 0) == 0 ? e->message : prefix + e->message);
    }

    Line line;
    line.pos = Position{trace.file, lineno, tokens[0].column};
    line.text = std::string(raw);
    line.op = std::move(std::get<Operation>(op));
    if (arrow < tokens.size()) {
      std::vector<Token> expect(tokens.begin() + static_cast<long>(arrow) + 1, tokens.end());
      auto outcome = parse_outcome(expect, static_cast<int>(raw.size()) + 1);
      if (auto* e = std::get_if<LexError>(&outcome)) return fail(e->column, e->message);
      const Outcome& o = std::get<Outcome>(outcome);
      if (!can_give(line.op, o.kind))
        return fail(expect[0].column, std::string(op_name(line.op)) + " cannot give a result '" +
                                          kind_word(o.kind) + "'" +
                                          (std::holds_alternative<MapOp>(line.op) ||
                                                   std::holds_alternative<CopyOp>(line.op)
                                               ? " (a fixed map gives ok, an automatic one iova X)"
                                               : ""));
      line.expect = o;
      line.expect_pos = Position{trace.file, lineno, expect[0].column};
      line.arrow = static_cast<std::size_t>(tokens[arrow].column - 1);
    }
    trace.lines.push_back(std::move(line));
  }
  return trace;
}

Result<Trace> read_trace_file(const std::string& path) {
  errno = 0;
  std::ifstream in(path, std::ios::binary);
  if (!in && errno == ENOMEM) return make_error(ENOMEM, path + ": out of memory opening the trace file");
  if (!in) return make_error(ENOENT, path + ": cannot open the trace file");
  // A chunk at a time into a string, whose growth throws when memory runs
  // out (a stringstream's would end the text there, silently).
  std::string text;
  try {
    char chunk[65536];
    while (in.read(chunk, sizeof chunk) || in.gcount() > 0) text.append(chunk, static_cast<std::size_t>(in.gcount()));
  } catch (const std::bad_alloc&) {
    return make_error(ENOMEM, path + ": out of memory reading the trace file");
  }
  if (in.bad()) return make_error(EIO, path + ": read error");
  return parse_trace(text, path);
}

// ---- writer ----

namespace {

struct OpNamer {
  const char* operator()(const IoasOp&) const { return "ioas"; }
  const char* operator()(const MemOp&) const { return "mem"; }
  const char* operator()(const UnmemOp&) const { return "unmem"; }
  const char* operator()(const MapOp&) const { return "map"; }
  const char* operator()(const UnmapOp&) const { return "unmap"; }
  const char* operator()(const CutOp&) const { return "cut"; }
  const char* operator()(const ReserveOp&) const { return "reserve"; }
  const char* operator()(const UnreserveOp&) const { return "unreserve"; }
  const char* operator()(const AllowOp&) const { return "allow"; }
  const char* operator()(const RangesOp&) const { return "ranges"; }
  const char* operator()(const AttachOp&) const { return "attach"; }
  const char* operator()(const DetachOp&) const { return "detach"; }
  const char* operator()(const PinOp&) const { return "pin"; }
  const char* operator()(const UnpinOp&) const { return "unpin"; }
  const char* operator()(const CopyOp&) const { return "copy"; }
  const char* operator()(const TranslateOp&) const { return "translate"; }
  const char* operator()(const DmaOp&) const { return "dma"; }
  const char* operator()(const DirtyOp&) const { return "dirty"; }
  const char* operator()(const ReadDirtyOp&) const { return "read-dirty"; }
  const char* operator()(const UvaOp&) const { return "uva"; }
  const char* operator()(const CheckOp&) const { return "check"; }
};

// Appends the arguments of each operation in the order of TRACE.md's table.
struct OpWriter {
  std::string& s;
  void kv(const char* key, const std::string& value) {
    s += ' ';
    s += key;
    s += '=';
    s += value;
  }
  void flag(const char* f) {
    s += ' ';
    s += f;
  }
  void operator()(const IoasOp& o) {
    s += ' ' + o.name;
    if (o.mode) kv("mode", ioas::to_string(*o.mode));
    if (o.zero_page) kv("zero-page", *o.zero_page == ZeroPage::kReserved ? "reserved" : "allowed");
    if (o.huge_pages) kv("huge-pages", *o.huge_pages ? "on" : "off");
  }
  void operator()(const MemOp& o) {
    s += ' ' + o.name;
    kv("va", hex(o.va));
    kv("len", hex(o.len));
    if (o.pa) kv("pa", hex(*o.pa));
    if (o.ro) flag("ro");
  }
  void operator()(const UnmemOp& o) { s += ' ' + o.name; }
  void operator()(const MapOp& o) {
    if (o.iova) kv("iova", hex(*o.iova));
    kv("len", hex(o.len));
    kv("src", o.offset ? o.src + "+" + hex(o.offset) : o.src);
    kv("prot", to_string(o.prot));
  }
  void operator()(const UnmapOp& o) {
    if (o.all) return flag("all");
    kv("iova", hex(o.iova));
    kv("len", hex(o.len));
  }
  void operator()(const CutOp& o) { kv("iova", hex(o.iova)); }
  void operator()(const ReserveOp& o) {
    s += ' ' + ioas::to_string(o.range);
    kv("owner", o.owner);
  }
  void operator()(const UnreserveOp& o) { kv("owner", o.owner); }
  void operator()(const AllowOp& o) {
    for (const auto& r : o.ranges) s += ' ' + ioas::to_string(r);
  }
  void operator()(const RangesOp&) {}
  void operator()(const AttachOp& o) {
    kv("dev", o.dev);
    kv("dom", o.dom);
    if (o.fmt) kv("fmt", ioas::to_string(*o.fmt));
    if (o.aperture) kv("aperture", ioas::to_string(*o.aperture));
    if (o.pgsize_bitmap || !o.pgsizes_not_pow2.empty()) {
      std::string list;
      for (unsigned b = 0; b < 64; ++b) {
        if (!(o.pgsize_bitmap.value_or(0) >> b & 1)) continue;
        if (!list.empty()) list += ',';
        list += hex(u64{1} << b);
      }
      for (u64 size : o.pgsizes_not_pow2) {
        if (!list.empty()) list += ',';
        list += hex(size);
      }
      kv("pgsizes", list);
    }
    if (!o.resv.empty()) {
      std::string list;
      for (const auto& r : o.resv) {
        if (!list.empty()) list += ',';
        list += ioas::to_string(r.range) + ":" + ioas::to_string(r.type);
      }
      kv("resv", list);
    }
  }
  void operator()(const DetachOp& o) { kv("dev", o.dev); }
  void operator()(const PinOp& o) {
    kv("iova", hex(o.iova));
    kv("len", hex(o.len));
    if (o.write) flag("write");
    if (!o.release) kv("release", "no");
  }
  void operator()(const UnpinOp& o) { s += ' ' + std::to_string(o.id); }
  void operator()(const CopyOp& o) {
    kv("from", o.from);
    kv("iova", hex(o.iova));
    kv("len", hex(o.len));
    if (o.to) kv("to", hex(*o.to));
    kv("prot", ioas::to_string(o.prot));
  }
  void operator()(const TranslateOp& o) {
    kv("dom", o.dom);
    kv("iova", hex(o.iova));
  }
  void operator()(const DmaOp& o) {
    kv("dom", o.dom);
    flag(o.dir == DmaDir::kWrite ? "write" : "read");
    kv("iova", hex(o.iova));
    kv("len", hex(o.len));
  }
  void operator()(const DirtyOp& o) {
    kv("dom", o.dom);
    flag(o.mode == DirtyMode::kOff ? "off" : "on");
    if (o.mode == DirtyMode::kOnSplit) flag("split");
  }
  void operator()(const ReadDirtyOp& o) {
    kv("dom", o.dom);
    kv("iova", hex(o.iova));
    kv("len", hex(o.len));
    kv("pgsize", hex(o.pgsize));
    if (o.keep) flag("keep");
  }
  void operator()(const UvaOp& o) { kv("iova", hex(o.iova)); }
  void operator()(const CheckOp&) {}
};

}  // namespace

const char* op_name(const Operation& op) { return std::visit(OpNamer{}, op); }

std::string to_string(const Operation& op) {
  std::string s = op_name(op);
  std::visit(OpWriter{s}, op);
  return s;
}

std::string to_string(const Outcome& o) {
  switch (o.kind) {
    case OutcomeKind::kOk: return "ok";
    case OutcomeKind::kError: return std::string("error ") + errno_name(o.error);
    case OutcomeKind::kIova: return "iova " + hex(o.value);
    case OutcomeKind::kUnmapped: return "unmapped " + hex(o.value);
    case OutcomeKind::kRanges: {
      std::string s = "ranges";
      for (const auto& r : o.ranges) s += ' ' + ioas::to_string(r);
      return s + " align " + hex(o.value);
    }
    case OutcomeKind::kPin: return "pin " + std::to_string(o.value);
    case OutcomeKind::kPa: return "pa " + hex(o.value) + " " + ioas::to_string(o.prot);
    case OutcomeKind::kFault: return "fault";
    case OutcomeKind::kFaultAt: return "fault " + hex(o.value);
    case OutcomeKind::kDirty: {
      if (o.ranges.empty()) return "dirty none";
      std::string s = "dirty";
      for (const auto& r : o.ranges) s += ' ' + ioas::to_string(r);
      return s;
    }
    case OutcomeKind::kVa: return "va " + hex(o.value);
    case OutcomeKind::kViolated: {
      std::string s = "violated";
      for (auto i : o.violated) s += std::string(" ") + ioas::to_string(i);
      return s;
    }
  }
  return "?";
}

std::string format_line(const Operation& op, const std::optional<Outcome>& expect) {
  std::string s = to_string(op);
  if (expect) s += " => " + to_string(*expect);
  return s;
}

}  // namespace ioas::trace
