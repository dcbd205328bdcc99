// The `.trace` reader and writer (TRACE.md version 1).
//
// The reader works line by line: split into whitespace-separated tokens (each
// with its column), cut at the `=>` token, read the operation word, sort the
// arguments into positionals, key=value pairs and bare flags against that
// operation's row of the syntax table (OpSyntax), then read each argument
// into the Operation as the row says. Every rejection
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
#include <optional>
#include <sstream>
#include <type_traits>

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

// What reading a piece of a line gives: its value, or the error (a plain
// pair rather than a std::variant: the reader's many result types would each
// bring a variant's copy, move and destroy tables).
template <typename T>
struct Lex {
  Lex(T v) : value(std::move(v)) {}
  Lex(LexError e) : error(std::move(e)) {}
  T value{};
  std::optional<LexError> error;
};

template <typename T>
bool failed(const Lex<T>& l) {
  return l.error.has_value();
}

std::string quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// ---- numbers and ranges (ioas/core/text.hpp), at their column ----

Lex<u64> number_at(std::string_view s, int column) {
  auto n = read_number(s);
  if (auto* e = std::get_if<TextError>(&n)) return LexError{column + static_cast<int>(e->offset), e->message};
  return Lex<u64>(std::get<u64>(n));
}

Lex<Range> range_at(std::string_view s, int column) {
  auto r = read_range(s);
  if (auto* e = std::get_if<TextError>(&r)) return LexError{column + static_cast<int>(e->offset), e->message};
  return Lex<Range>(std::get<Range>(r));
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
  return Lex<std::string>(std::string(s));
}

// The words a value may be, each with the enumerator it stands for.
struct Word {
  const char* text;
  int value;
};
template <typename E>
constexpr Word word(const char* text, E value) {
  return Word{text, static_cast<int>(value)};
}
// A list of the words of one type E.
template <typename E, std::size_t N>
struct Words {
  std::array<Word, N> list;
};

// The value of word `s` among `words`, as an int.
Lex<int> word_index(std::string_view s, int column, const char* what, const Word* words, std::size_t n) {
  std::string choices;
  for (std::size_t i = 0; i < n; ++i) {
    if (s == words[i].text) return Lex<int>(words[i].value);
    if (!choices.empty()) choices += '|';
    choices += words[i].text;
  }
  return LexError{column, std::string(what) + " " + quoted(s) + " is not one of " + choices};
}

template <typename E, std::size_t N>
Lex<E> word_at(std::string_view s, int column, const char* what, const Words<E, N>& words) {
  Lex<int> i = word_index(s, column, what, words.list.data(), N);
  if (failed(i)) return *i.error;
  return Lex<E>(static_cast<E>(i.value));
}

constexpr Words<Prot, 3> kProts{{word("r", Prot::kRead), word("w", Prot::kWrite), word("rw", Prot::kReadWrite)}};
constexpr Words<Format, 4> kFormats{{word("x86-64", Format::kX86_64), word("arm-lpae", Format::kArmLpae),
                                     word("tce", Format::kTce), word("mock", Format::kMock)}};
constexpr Words<IoasMode, 2> kModes{{word("default", IoasMode::kDefault), word("kernel", IoasMode::kKernel)}};
constexpr Words<ResvType, 4> kResvTypes{{word("direct", ResvType::kDirect),
                                         word("direct-relaxable", ResvType::kDirectRelaxable),
                                         word("reserved", ResvType::kReserved), word("msi", ResvType::kMsi)}};
constexpr Words<ZeroPage, 2> kZeroPages{{word("reserved", ZeroPage::kReserved), word("allowed", ZeroPage::kAllowed)}};
constexpr Words<bool, 2> kOnOff{{word("on", true), word("off", false)}};
constexpr Words<bool, 2> kYesNo{{word("yes", true), word("no", false)}};
constexpr Words<Invariant, 8> kInvariants{{word("sorted", Invariant::kSorted),
                                           word("area-reserved", Invariant::kAreaReserved),
                                           word("allowed-reserved", Invariant::kAllowedReserved),
                                           word("zero-iova", Invariant::kZeroIova),
                                           word("alignment", Invariant::kAlignment),
                                           word("aperture", Invariant::kAperture),
                                           word("translation", Invariant::kTranslation),
                                           word("use-count", Invariant::kUseCount)}};

// ---- the syntax table: which arguments each operation takes ----

// Unwraps a Lex<T> into `var`, or returns its error from the enclosing function.
#define TRY_LEX(var, expr)                              \
  auto var##_lex = (expr);                              \
  if (failed(var##_lex)) return *var##_lex.error;      \
  auto var = std::move(var##_lex.value)

// What reading one argument can give: nothing (it was stored) or its error.
using Fault = std::optional<LexError>;

struct Args;
struct Arg;

// How an argument is read into its operation (the alternative of Operation
// that the row makes), and how a rule checks a line: plain functions, each
// with the row's data in its Arg, rather than a closure per argument.
using ReadFn = Fault (*)(Operation& op, const Token& t, const Arg& arg);
using CheckFn = Fault (*)(const Args& a, const Arg& arg);

// Whether a key must be given: always, never, or unless a flag stands for it.
struct Need {
  bool required;
  const char* unless = nullptr;
};
constexpr Need kRequired{true};
constexpr Need kOptional{false};
constexpr Need required_unless(const char* flag) { return Need{true, flag}; }

enum class ArgKind { kPositional, kPositionals, kKey, kFlag, kRule };

// A reader and what it needs besides the token: the kind of name it reads
// ("IOAS"), or the words a value may be, with what they choose ("prot").
struct Reader {
  ReadFn read;
  const char* what = nullptr;
  const Word* words = nullptr;
  std::size_t word_count = 0;
};

// One argument of a row: how it is found on the line and read into the
// operation, or a rule between the line's flags and keys.
struct Arg {
  ArgKind kind;
  const char* name;  // the key or flag; for positionals what they are
  Need need;
  Reader reader;              // positionals, keys (their value) and flags
  CheckFn check = nullptr;    // rules
  const char* first = nullptr;   // rules: the flags they are about
  const char* second = nullptr;
};

// One row per operation. Positionals come first (`ioas NAME`, `reserve
// RANGE`, `allow RANGE...`), then key=value pairs and bare flags in any
// order; sort_args checks a line against the row's names, then read_args
// reads the row's arguments in the row's order (so a line with two faults
// reports the first of that order).
struct OpSyntax {
  const char* name;
  const char* positional;  // what the positionals are ("NAME", "RANGE", "ID"); nullptr: none
  int min_positional;
  int max_positional;      // -1: any number
  std::vector<std::string_view> keys;
  std::vector<std::string_view> flags;
  Operation (*make)();     // the operation with its defaults
  std::vector<Arg> row;
};

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
  std::string prefix() const { return std::string(syntax->name) + ": "; }
};

// ---- how an argument is read into its operation's field ----

// The operation and the type of a field, from a pointer to it.
template <typename M>
struct FieldOf;
template <typename O, typename T>
struct FieldOf<T O::*> {
  using Op = O;
  using Type = T;
};
template <typename T>
struct Plain {
  using Type = T;
};
template <typename T>
struct Plain<std::optional<T>> {
  using Type = T;
};

// The field `Field` of `op`, which holds Field's operation (the row made it).
template <auto Field>
auto& field(Operation& op) {
  return std::get_if<typename FieldOf<decltype(Field)>::Op>(&op)->*Field;
}
template <typename O>
O& as(Operation& op) {
  return *std::get_if<O>(&op);
}

template <auto Field>
Fault read_number(Operation& op, const Token& t, const Arg&) {
  TRY_LEX(v, number_at(t.text, t.column));
  field<Field>(op) = v;
  return std::nullopt;
}

template <auto Field>
Fault read_range(Operation& op, const Token& t, const Arg&) {
  TRY_LEX(v, range_at(t.text, t.column));
  field<Field>(op) = v;
  return std::nullopt;
}

template <auto Field>
Fault read_name(Operation& op, const Token& t, const Arg& arg) {
  TRY_LEX(v, name_at(t.text, t.column, arg.reader.what));
  field<Field>(op) = std::move(v);
  return std::nullopt;
}

template <auto Field>
Fault read_word(Operation& op, const Token& t, const Arg& arg) {
  TRY_LEX(v, word_index(t.text, t.column, arg.reader.what, arg.reader.words, arg.reader.word_count));
  using T = typename Plain<typename FieldOf<decltype(Field)>::Type>::Type;
  field<Field>(op) = static_cast<T>(v);
  return std::nullopt;
}

// A bare flag: present, the field takes `Value`.
template <auto Field, auto Value>
Fault store_value(Operation& op, const Token&, const Arg&) {
  field<Field>(op) = Value;
  return std::nullopt;
}

template <auto Field>
Reader number_into() { return Reader{read_number<Field>}; }
template <auto Field>
Reader range_into() { return Reader{read_range<Field>}; }
template <auto Field>
Reader name_into(const char* what) { return Reader{read_name<Field>, what}; }
// A word of `words`, whose type must be the field's.
template <auto Field, typename E, std::size_t N>
Reader word_into(const char* what, const Words<E, N>& words) {
  static_assert(std::is_same_v<E, typename Plain<typename FieldOf<decltype(Field)>::Type>::Type>,
                "the words are of another type than the field");
  return Reader{read_word<Field>, what, words.list.data(), N};
}
template <auto Field, auto Value>
Reader store() { return Reader{store_value<Field, Value>}; }

// `allow`'s positionals: each a range, in order.
Fault append_range(Operation& op, const Token& t, const Arg&) {
  TRY_LEX(r, range_at(t.text, t.column));
  as<AllowOp>(op).ranges.push_back(r);
  return std::nullopt;
}

// `src=NAME[+OFF]`.
Fault read_source(Operation& op, const Token& t, const Arg&) {
  MapOp& o = as<MapOp>(op);
  const std::size_t plus = t.text.find('+');
  TRY_LEX(name, name_at(t.text.substr(0, plus), t.column, "memory source"));
  o.src = std::move(name);
  if (plus != std::string_view::npos) {
    TRY_LEX(off, number_at(t.text.substr(plus + 1), t.column + static_cast<int>(plus) + 1));
    o.offset = off;
  }
  return std::nullopt;
}

// Each item of a comma-separated value, as a token of its own column.
template <typename F>
Fault for_each_item(const Token& t, F&& read_item) {
  for (std::size_t at = 0;;) {
    const std::size_t comma = t.text.find(',', at);
    Token item{t.text.substr(at, comma == std::string_view::npos ? t.text.npos : comma - at),
               t.column + static_cast<int>(at)};
    if (Fault f = read_item(item)) return f;
    if (comma == std::string_view::npos) return std::nullopt;
    at = comma + 1;
  }
}

// `pgsizes=S,...`. A bitmap holds powers of two only; another size is kept
// aside for attach to refuse (a value that parses, with a wrong meaning).
Fault read_pgsizes(Operation& op, const Token& t, const Arg&) {
  AttachOp& o = as<AttachOp>(op);
  u64 bitmap = 0;
  Fault f = for_each_item(t, [&](const Token& item) -> Fault {
    TRY_LEX(size, number_at(item.text, item.column));
    if (size == 0 || (size & (size - 1)) != 0)
      o.pgsizes_not_pow2.push_back(size);
    else
      bitmap |= size;
    return std::nullopt;
  });
  if (f) return f;
  o.pgsize_bitmap = bitmap;
  return std::nullopt;
}

// `resv=RANGE:TYPE,...`.
Fault read_resv(Operation& op, const Token& t, const Arg&) {
  AttachOp& o = as<AttachOp>(op);
  return for_each_item(t, [&](const Token& item) -> Fault {
    const std::size_t colon = item.text.find(':');
    if (colon == std::string_view::npos)
      return LexError{item.column, "resv: expected RANGE:TYPE, got " + quoted(item.text)};
    TRY_LEX(r, range_at(item.text.substr(0, colon), item.column));
    TRY_LEX(type, word_at(item.text.substr(colon + 1), item.column + static_cast<int>(colon) + 1, "resv type",
                          kResvTypes));
    o.resv.push_back(ResvRegion{r, type});
    return std::nullopt;
  });
}

// `unpin ID`: pin ids are 32-bit.
Fault read_pin_id(Operation& op, const Token& t, const Arg&) {
  TRY_LEX(id, number_at(t.text, t.column));
  if (id > 0xffffffffu)
    return LexError{t.column, "unpin: pin id " + std::string(t.text) + " is above 2^32-1 (no pin can have it)"};
  as<UnpinOp>(op).id = static_cast<std::uint32_t>(id);
  return std::nullopt;
}

// ---- rules between an operation's flags and keys ----

// Exactly one of two flags (`dma ... read|write`, `dirty ... on|off`).
Fault check_exactly_one(const Args& x, const Arg& rule) {
  const char* a = rule.first;
  const char* b = rule.second;
  const Token* ta = x.flag(a);
  const Token* tb = x.flag(b);
  if (ta && tb)
    return LexError{std::max(ta->column, tb->column), x.prefix() + "both " + a + " and " + b + " given"};
  if (!ta && !tb) return LexError{x.end_column, x.prefix() + "missing " + a + " or " + b};
  return std::nullopt;
}

// `flag` only together with `with` (`dirty ... on split`).
Fault check_only_with(const Args& x, const Arg& rule) {
  const char* flag = rule.first;
  const char* with = rule.second;
  const Token* t = x.flag(flag);
  if (t && !x.flag(with)) return LexError{t->column, x.prefix() + flag + " goes with " + with + " only"};
  return std::nullopt;
}

// `flag` stands for every key (`unmap all`): no key may come with it.
Fault check_instead_of_keys(const Args& x, const Arg& rule) {
  const char* flag = rule.first;
  if (!x.flag(flag) || x.kvs.empty()) return std::nullopt;
  std::string keys;
  for (std::size_t i = 0; i < x.syntax->keys.size(); ++i)
    keys += (i == 0 ? "" : i + 1 == x.syntax->keys.size() ? " or " : ", ") + std::string(x.syntax->keys[i]) + "=";
  return LexError{x.kvs[0].key_column, x.prefix() + "'" + flag + "' takes no " + keys};
}

Arg exactly_one(const char* a, const char* b) { return Arg{ArgKind::kRule, "", kOptional, {}, check_exactly_one, a, b}; }
Arg only_with(const char* flag, const char* with) {
  return Arg{ArgKind::kRule, "", kOptional, {}, check_only_with, flag, with};
}
Arg instead_of_keys(const char* flag) {
  return Arg{ArgKind::kRule, "", kOptional, {}, check_instead_of_keys, flag, nullptr};
}

// ---- the rows ----

Arg positional(const char* what, Reader r) { return Arg{ArgKind::kPositional, what, kRequired, r}; }
Arg positionals(const char* what, Reader r) { return Arg{ArgKind::kPositionals, what, kOptional, r}; }
Arg key(const char* name, Need need, Reader r) { return Arg{ArgKind::kKey, name, need, r}; }
Arg flag(const char* name, Reader r) { return Arg{ArgKind::kFlag, name, kOptional, r}; }

Lex<Operation> read_args(const OpSyntax& syntax, const Args& a) {
  Operation o = syntax.make();
  std::size_t next = 0;  // the next positional; sort_args gave at least the row's minimum
  for (const Arg& arg : syntax.row) {
    Fault f;
    switch (arg.kind) {
      case ArgKind::kPositional: f = arg.reader.read(o, a.positional[next++], arg); break;
      case ArgKind::kPositionals:
        for (; next < a.positional.size() && !f; ++next) f = arg.reader.read(o, a.positional[next], arg);
        break;
      case ArgKind::kKey:
        if (const Args::Kv* kv = a.find(arg.name))
          f = arg.reader.read(o, kv->value, arg);
        else if (arg.need.required && !(arg.need.unless && a.flag(arg.need.unless)))
          f = a.missing(arg.name);
        break;
      case ArgKind::kFlag:
        if (const Token* t = a.flag(arg.name)) f = arg.reader.read(o, *t, arg);
        break;
      case ArgKind::kRule: f = arg.check(a, arg); break;
    }
    if (f) return *f;
  }
  return Lex<Operation>(std::move(o));
}

template <typename O>
Operation make_op() {
  return Operation(std::in_place_type<O>);
}

OpSyntax op(const char* name, Operation (*make)(), std::vector<Arg> row) {
  OpSyntax s{name, nullptr, 0, 0, {}, {}, make, std::move(row)};
  for (const Arg& arg : s.row) {
    switch (arg.kind) {
      case ArgKind::kPositional:
        s.positional = arg.name;
        ++s.min_positional;
        ++s.max_positional;
        break;
      case ArgKind::kPositionals:
        s.positional = arg.name;
        s.max_positional = -1;
        break;
      case ArgKind::kKey: s.keys.push_back(arg.name); break;
      case ArgKind::kFlag: s.flags.push_back(arg.name); break;
      case ArgKind::kRule: break;
    }
  }
  return s;
}

const std::vector<OpSyntax>& syntax_table() {
  static const std::vector<OpSyntax> table = {
      op("ioas", make_op<IoasOp>,
         {positional("NAME", name_into<&IoasOp::name>("IOAS")),
          key("mode", kOptional, word_into<&IoasOp::mode>("mode", kModes)),
          key("zero-page", kOptional, word_into<&IoasOp::zero_page>("zero-page", kZeroPages)),
          key("huge-pages", kOptional, word_into<&IoasOp::huge_pages>("huge-pages", kOnOff))}),
      op("mem", make_op<MemOp>,
         {positional("NAME", name_into<&MemOp::name>("memory source")),
          key("va", kRequired, number_into<&MemOp::va>()),
          key("len", kRequired, number_into<&MemOp::len>()),
          key("pa", kOptional, number_into<&MemOp::pa>()),
          flag("ro", store<&MemOp::ro, true>())}),
      op("unmem", make_op<UnmemOp>, {positional("NAME", name_into<&UnmemOp::name>("memory source"))}),
      op("map", make_op<MapOp>,
         {key("iova", kOptional, number_into<&MapOp::iova>()),
          key("len", kRequired, number_into<&MapOp::len>()),
          key("src", kRequired, Reader{read_source}),
          key("prot", kRequired, word_into<&MapOp::prot>("prot", kProts))}),
      op("unmap", make_op<UnmapOp>,
         {flag("all", store<&UnmapOp::all, true>()),
          instead_of_keys("all"),
          key("iova", required_unless("all"), number_into<&UnmapOp::iova>()),
          key("len", required_unless("all"), number_into<&UnmapOp::len>())}),
      op("cut", make_op<CutOp>, {key("iova", kRequired, number_into<&CutOp::iova>())}),
      op("reserve", make_op<ReserveOp>,
         {positional("RANGE", range_into<&ReserveOp::range>()),
          key("owner", kRequired, name_into<&ReserveOp::owner>("owner"))}),
      op("unreserve", make_op<UnreserveOp>, {key("owner", kRequired, name_into<&UnreserveOp::owner>("owner"))}),
      op("allow", make_op<AllowOp>, {positionals("RANGE", Reader{append_range})}),
      op("ranges", make_op<RangesOp>, {}),
      op("attach", make_op<AttachOp>,
         {key("dev", kRequired, name_into<&AttachOp::dev>("device")),
          key("dom", kRequired, name_into<&AttachOp::dom>("domain")),
          key("fmt", kOptional, word_into<&AttachOp::fmt>("fmt", kFormats)),
          key("aperture", kOptional, range_into<&AttachOp::aperture>()),
          key("pgsizes", kOptional, Reader{read_pgsizes}),
          key("resv", kOptional, Reader{read_resv})}),
      op("detach", make_op<DetachOp>, {key("dev", kRequired, name_into<&DetachOp::dev>("device"))}),
      op("pin", make_op<PinOp>,
         {key("iova", kRequired, number_into<&PinOp::iova>()),
          key("len", kRequired, number_into<&PinOp::len>()),
          flag("write", store<&PinOp::write, true>()),
          key("release", kOptional, word_into<&PinOp::release>("release", kYesNo))}),
      op("unpin", make_op<UnpinOp>, {positional("ID", Reader{read_pin_id})}),
      op("copy", make_op<CopyOp>,
         {key("from", kRequired, name_into<&CopyOp::from>("IOAS")),
          key("iova", kRequired, number_into<&CopyOp::iova>()),
          key("len", kRequired, number_into<&CopyOp::len>()),
          key("to", kOptional, number_into<&CopyOp::to>()),
          key("prot", kRequired, word_into<&CopyOp::prot>("prot", kProts))}),
      op("translate", make_op<TranslateOp>,
         {key("dom", kRequired, name_into<&TranslateOp::dom>("domain")),
          key("iova", kRequired, number_into<&TranslateOp::iova>())}),
      op("dma", make_op<DmaOp>,
         {key("dom", kRequired, name_into<&DmaOp::dom>("domain")),
          exactly_one("read", "write"),
          flag("read", store<&DmaOp::dir, DmaDir::kRead>()),
          flag("write", store<&DmaOp::dir, DmaDir::kWrite>()),
          key("iova", kRequired, number_into<&DmaOp::iova>()),
          key("len", kRequired, number_into<&DmaOp::len>())}),
      op("dirty", make_op<DirtyOp>,
         {key("dom", kRequired, name_into<&DirtyOp::dom>("domain")),
          exactly_one("on", "off"),
          only_with("split", "on"),
          flag("on", store<&DirtyOp::mode, DirtyMode::kOn>()),
          flag("off", store<&DirtyOp::mode, DirtyMode::kOff>()),
          flag("split", store<&DirtyOp::mode, DirtyMode::kOnSplit>())}),
      op("read-dirty", make_op<ReadDirtyOp>,
         {key("dom", kRequired, name_into<&ReadDirtyOp::dom>("domain")),
          key("iova", kRequired, number_into<&ReadDirtyOp::iova>()),
          key("len", kRequired, number_into<&ReadDirtyOp::len>()),
          key("pgsize", kRequired, number_into<&ReadDirtyOp::pgsize>()),
          flag("keep", store<&ReadDirtyOp::keep, true>())}),
      op("uva", make_op<UvaOp>, {key("iova", kRequired, number_into<&UvaOp::iova>())}),
      op("check", make_op<CheckOp>, {}),
  };
  return table;
}

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
                    std::string(syn.name) + ": missing " + syn.positional};
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

// The operation of a sorted line, read by its row.
Lex<Operation> build(const Args& a) { return read_args(*a.syntax, a); }

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
ValueWords words_of(std::string_view what, const Words<E, N>& words) {
  ValueWords v{what, {}};
  for (const Word& w : words.list) v.words.push_back(w.text);
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
    if (const auto& e = args.error) return fail(e->column, e->message);
    auto op = build(args.value);
    if (const auto& e = op.error) {
      // Every message names the operation it is about.
      std::string prefix = std::string(tokens[0].text) + ": ";
      return fail(e->column, e->message.rfind(prefix, 0) == 0 ? e->message : prefix + e->message);
    }

    Line line;
    line.pos = Position{trace.file, lineno, tokens[0].column};
    line.text = std::string(raw);
    line.op = std::move(op.value);
    if (arrow < tokens.size()) {
      std::vector<Token> expect(tokens.begin() + static_cast<long>(arrow) + 1, tokens.end());
      auto outcome = parse_outcome(expect, static_cast<int>(raw.size()) + 1);
      if (const auto& e = outcome.error) return fail(e->column, e->message);
      const Outcome& o = outcome.value;
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
