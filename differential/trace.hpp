// differential/trace.hpp: the `.trace` format, version 1 (TRACE.md).
//
// A trace is a list of operations, each optionally followed by `=> result`,
// the answer it must give. This header has the three pieces every user of the
// format needs:
//   - the parsed form: one `Operation` (a variant, one struct per row of
//     TRACE.md's table) and an optional `Outcome` per line, with positions;
//   - the reader: parse_trace(text, file) / read_trace_file(path), which
//     return the whole trace or the first malformed line as an Error whose
//     message starts with "file:line:column: ";
//   - the writer: to_string(Operation) and to_string(Outcome), the canonical
//     text (numbers in lowercase hex, pin ids in decimal, ranges START-LAST).
//     Parsing the canonical text gives back an equal value (round trip).
//
// Nothing here runs an engine; replay.hpp does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "ioas/core/text.hpp"
#include "ioas/engine.hpp"
#include "ioas/range.hpp"
#include "ioas/result.hpp"

namespace ioas::trace {

// ---- Operations: one struct per row of TRACE.md's table ----
// Optional fields are the ones a line may leave out; the engine (or the
// replayer, for `mem`'s pa) supplies the default, so the writer prints back
// exactly what was given.

// `ioas NAME [mode=default|kernel] [zero-page=reserved|allowed] [huge-pages=on|off]`
struct IoasOp {
  std::string name;
  std::optional<IoasMode> mode;
  std::optional<ZeroPage> zero_page;
  std::optional<bool> huge_pages;
  friend bool operator==(const IoasOp&, const IoasOp&) = default;
};
// `mem NAME va=V len=L [pa=P] [ro]`
struct MemOp {
  std::string name;
  u64 va = 0;
  u64 len = 0;
  std::optional<u64> pa;  // defaults to va when replayed
  bool ro = false;
  friend bool operator==(const MemOp&, const MemOp&) = default;
};
// `unmem NAME`
struct UnmemOp {
  std::string name;
  friend bool operator==(const UnmemOp&, const UnmemOp&) = default;
};
// `map [iova=I] len=L src=NAME[+OFF] prot=r|w|rw`
struct MapOp {
  std::optional<u64> iova;  // fixed when set
  u64 len = 0;
  std::string src;
  u64 offset = 0;
  Prot prot = Prot::kReadWrite;
  friend bool operator==(const MapOp&, const MapOp&) = default;
};
// `unmap iova=I len=L` or `unmap all` (iova and len are 0 when all).
struct UnmapOp {
  bool all = false;
  u64 iova = 0;
  u64 len = 0;
  friend bool operator==(const UnmapOp&, const UnmapOp&) = default;
};
// `cut iova=I`
struct CutOp {
  u64 iova = 0;
  friend bool operator==(const CutOp&, const CutOp&) = default;
};
// `reserve RANGE owner=NAME` (the range may have start > last: EINVAL is
// the engine's answer, not a parse error).
struct ReserveOp {
  Range range;
  std::string owner;
  friend bool operator==(const ReserveOp&, const ReserveOp&) = default;
};
// `unreserve owner=NAME`
struct UnreserveOp {
  std::string owner;
  friend bool operator==(const UnreserveOp&, const UnreserveOp&) = default;
};
// `allow [RANGE ...]`; no range clears the list.
struct AllowOp {
  std::vector<Range> ranges;
  friend bool operator==(const AllowOp&, const AllowOp&) = default;
};
// `ranges`
struct RangesOp {
  friend bool operator==(const RangesOp&, const RangesOp&) = default;
};
// `attach dev=NAME dom=NAME [fmt=..] [aperture=RANGE] [pgsizes=S,...]
//  [resv=RANGE:TYPE,...]`, fmt one of x86-64, arm-lpae, tce, mock.
// pgsize_bitmap has one bit per page size (a size written twice counts
// once); a size that is no power of two has no bit and is kept in
// pgsizes_not_pow2 for attach to refuse (EINVAL), not rejected as malformed.
struct AttachOp {
  std::string dev;
  std::string dom;
  std::optional<Format> fmt;
  std::optional<Range> aperture;
  std::optional<u64> pgsize_bitmap;
  std::vector<ResvRegion> resv;
  std::vector<u64> pgsizes_not_pow2;  // sizes written that are not powers of two (attach: EINVAL)
  friend bool operator==(const AttachOp&, const AttachOp&) = default;
};
// `detach dev=NAME`
struct DetachOp {
  std::string dev;
  friend bool operator==(const DetachOp&, const DetachOp&) = default;
};
// `pin iova=I len=L [write] [release=yes|no]`
struct PinOp {
  u64 iova = 0;
  u64 len = 0;
  bool write = false;
  bool release = true;
  friend bool operator==(const PinOp&, const PinOp&) = default;
};
// `unpin ID`
struct UnpinOp {
  std::uint32_t id = 0;
  friend bool operator==(const UnpinOp&, const UnpinOp&) = default;
};
// `copy from=IOAS iova=I len=L [to=I2] prot=...`
struct CopyOp {
  std::string from;
  u64 iova = 0;
  u64 len = 0;
  std::optional<u64> to;  // fixed destination when set
  Prot prot = Prot::kReadWrite;
  friend bool operator==(const CopyOp&, const CopyOp&) = default;
};
// `translate dom=NAME iova=I`
struct TranslateOp {
  std::string dom;
  u64 iova = 0;
  friend bool operator==(const TranslateOp&, const TranslateOp&) = default;
};
// `dma dom=NAME read|write iova=I len=L`
struct DmaOp {
  std::string dom;
  DmaDir dir = DmaDir::kRead;
  u64 iova = 0;
  u64 len = 0;
  friend bool operator==(const DmaOp&, const DmaOp&) = default;
};
// `dirty dom=NAME on [split]` / `dirty dom=NAME off`
struct DirtyOp {
  std::string dom;
  DirtyMode mode = DirtyMode::kOff;
  friend bool operator==(const DirtyOp&, const DirtyOp&) = default;
};
// `read-dirty dom=NAME iova=I len=L pgsize=P [keep]`
struct ReadDirtyOp {
  std::string dom;
  u64 iova = 0;
  u64 len = 0;
  u64 pgsize = 0;
  bool keep = false;
  friend bool operator==(const ReadDirtyOp&, const ReadDirtyOp&) = default;
};
// `uva iova=I`
struct UvaOp {
  u64 iova = 0;
  friend bool operator==(const UvaOp&, const UvaOp&) = default;
};
// `check`
struct CheckOp {
  friend bool operator==(const CheckOp&, const CheckOp&) = default;
};

using Operation =
    std::variant<IoasOp, MemOp, UnmemOp, MapOp, UnmapOp, CutOp, ReserveOp, UnreserveOp,
                 AllowOp, RangesOp, AttachOp, DetachOp, PinOp, UnpinOp, CopyOp, TranslateOp,
                 DmaOp, DirtyOp, ReadDirtyOp, UvaOp, CheckOp>;

// The operation's word as written in a trace ("map", "read-dirty", ...).
const char* op_name(const Operation& op);

// ---- Results ----

enum class OutcomeKind : std::uint8_t {
  kOk,        // `ok`
  kError,     // `error ENAME`            (error)
  kIova,      // `iova X`                 (value)
  kUnmapped,  // `unmapped N`             (value)
  kRanges,    // `ranges R... align A`    (ranges, value = A)
  kPin,       // `pin ID`, ID in decimal  (value)
  kPa,        // `pa P PROT`              (value, prot)
  kFault,     // `fault` (translate)
  kFaultAt,   // `fault IOVA` (dma)       (value)
  kDirty,     // `dirty R...` / `dirty none` (ranges, empty for none)
  kVa,        // `va V`                   (value)
  kViolated,  // `violated NAME...`       (violated: sorted, no duplicates)
};

// One line's result, as a value: the replayer produces it from an engine's
// answer and the reader from an expectation, and they are compared with ==,
// so `4096`, `0x1000` and `4K`, or `0-0xfff` and `0+4K`, are equal.
// Invariant: only the fields named for `kind` above may be non-default, so
// the defaulted == compares exactly what the text says.
struct Outcome {
  OutcomeKind kind = OutcomeKind::kOk;
  int error = 0;
  u64 value = 0;
  Prot prot = Prot::kNone;
  std::vector<Range> ranges;
  std::vector<Invariant> violated;
  friend bool operator==(const Outcome&, const Outcome&) = default;

  static Outcome ok() { return Outcome{}; }
  static Outcome err(int code) { return Outcome{OutcomeKind::kError, code, 0, Prot::kNone, {}, {}}; }
  static Outcome with_value(OutcomeKind k, u64 v) { return Outcome{k, 0, v, Prot::kNone, {}, {}}; }
};

// ---- A parsed trace ----

// 1-based line and column (columns count bytes; a tab is one column).
struct Position {
  std::string file;
  int line = 0;
  int column = 0;
};
// "file:line:column".
std::string to_string(const Position& p);

// One operation line.
// Invariant: expect_pos is meaningful only when expect is set; `text` is the
// line exactly as written (without its newline).
struct Line {
  Position pos;  // of the operation word
  std::string text;
  Operation op;
  std::optional<Outcome> expect;
  Position expect_pos;  // of the first word after `=>`
  // Byte offset in `text` of `=>` when the line has an expectation; the
  // rewriter keeps everything before it as written.
  std::size_t arrow = std::string::npos;
};

// A whole file: every raw line (comments and blank lines included, for
// --rewrite) and the operation lines in order.
// Invariant: for every l in lines, raw[l.pos.line - 1] == l.text.
struct Trace {
  std::string file;
  std::vector<std::string> raw;
  std::vector<Line> lines;
  bool final_newline = true;  // the text ended with '\n' (or was empty)
};

// ---- Reader ----

// Parses TRACE.md version 1. On the first malformed line, returns EINVAL with
// the message "file:line:column: what was wrong"; nothing is guessed.
Result<Trace> parse_trace(std::string_view text, std::string_view file);
// Reads and parses a file; ENOENT (or the open's errno) if it cannot be read.
Result<Trace> read_trace_file(const std::string& path);

// ---- Writer ----

// The reader's grammar, from its own tables: every operation with the keys
// and bare flags it accepts, every result word, and the words each
// enumerated value may take (docs/trace-format.md documents all of them;
// docs/tests checks that it does).
struct OperationSyntax {
  std::string_view name;
  std::vector<std::string_view> keys;
  std::vector<std::string_view> flags;
};
std::vector<OperationSyntax> operation_syntax();
std::vector<std::string_view> result_words();  // "ok", "error", "iova", ...
struct ValueWords {
  std::string_view what;  // "prot", "fmt", "resv type", ...
  std::vector<std::string_view> words;
};
std::vector<ValueWords> value_words();

std::string to_string(const Operation& op);  // canonical operation text
std::string to_string(const Outcome& o);     // canonical result text
// "OP => RESULT", or just OP without an expectation.
std::string format_line(const Operation& op, const std::optional<Outcome>& expect);

}  // namespace ioas::trace
