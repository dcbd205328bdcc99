// The .trace reader and writer, one TEST per rule of TRACE.md.
#include <gtest/gtest.h>

#include <cerrno>
#include <string>

#include "trace.hpp"

namespace ioas::trace {
namespace {

Result<Trace> parse(std::string_view text) { return parse_trace(text, "t.trace"); }

// The one operation of a one-line trace.
Operation op_of(std::string_view text) {
  auto t = parse(text);
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
  if (!t.ok() || t->lines.size() != 1) return CheckOp{};
  return t->lines[0].op;
}

Outcome expect_of(std::string_view text) {
  auto t = parse(text);
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.error().message);
  if (!t.ok() || t->lines.size() != 1 || !t->lines[0].expect) return Outcome::err(EIO);
  return *t->lines[0].expect;
}

// Asserts `text` is malformed at `where` ("t.trace:L:C") with a message
// containing `what`.
void expect_malformed(std::string_view text, const std::string& where, const std::string& what) {
  auto t = parse(text);
  ASSERT_FALSE(t.ok()) << "parsed: " << text;
  EXPECT_EQ(t.error().code, EINVAL);
  EXPECT_EQ(t.error().message.rfind(where + ": ", 0), 0u) << t.error().message;
  EXPECT_NE(t.error().message.find(what), std::string::npos) << t.error().message;
}

// ---- numbers ----

TEST(Numbers, MalformedNumberInALineNamesItsColumn) {
  // "map len=" is 8 bytes: the value starts at column 9, the bad digit at 10.
  expect_malformed("map len=1z src=buf prot=rw", "t.trace:1:10", "not a number");
  expect_malformed("map len=0x10000000000000000 src=buf prot=rw", "t.trace:1:9", "above 2^64-1");
}

// ---- ranges ----

TEST(Ranges, MalformedRangeInALineNamesItsColumn) {
  expect_malformed("reserve 0x1000+0 owner=u", "t.trace:1:16", "LEN is 0");
  expect_malformed("allow 2+0xffffffffffffffff", "t.trace:1:9", "passes 2^64-1");
  expect_malformed("allow 0x1000", "t.trace:1:7", "expected a range");
  expect_malformed("allow 0x1000-0x2z", "t.trace:1:17", "not a number");
}

TEST(Ranges, StartAboveLastParsesAndTheOperationDecides) {
  EXPECT_EQ(std::get<ReserveOp>(op_of("reserve 0x2000-0x1000 owner=u")).range, (Range{0x2000, 0x1000}));
}

// ---- arguments ----

TEST(Arguments, KeyValuePairsInAnyOrder) {
  EXPECT_EQ(op_of("map iova=0x1000 len=8K src=buf+4K prot=rw"),
            op_of("map prot=rw src=buf+4K len=8K iova=0x1000"));
  MapOp m = std::get<MapOp>(op_of("map prot=r src=buf+4K len=8K iova=0x1000"));
  EXPECT_EQ(m.iova, std::optional<u64>{0x1000});
  EXPECT_EQ(m.len, 8192u);
  EXPECT_EQ(m.src, "buf");
  EXPECT_EQ(m.offset, 4096u);
  EXPECT_EQ(m.prot, Prot::kRead);
}

TEST(Arguments, BareFlagsAnywhere) {
  EXPECT_TRUE(std::get<PinOp>(op_of("pin write iova=0x1000 len=4K")).write);
  EXPECT_FALSE(std::get<PinOp>(op_of("pin iova=0x1000 len=4K")).write);
  EXPECT_TRUE(std::get<MemOp>(op_of("mem b va=0 len=4K ro")).ro);
  EXPECT_TRUE(std::get<ReadDirtyOp>(op_of("read-dirty keep dom=d iova=0 len=4K pgsize=4K")).keep);
  EXPECT_EQ(std::get<DmaOp>(op_of("dma dom=d iova=0 len=1 write")).dir, DmaDir::kWrite);
  EXPECT_EQ(std::get<DmaOp>(op_of("dma read dom=d iova=0 len=1")).dir, DmaDir::kRead);
  EXPECT_EQ(std::get<DirtyOp>(op_of("dirty dom=d on split")).mode, DirtyMode::kOnSplit);
  EXPECT_EQ(std::get<DirtyOp>(op_of("dirty dom=d on")).mode, DirtyMode::kOn);
  EXPECT_EQ(std::get<DirtyOp>(op_of("dirty off dom=d")).mode, DirtyMode::kOff);
  EXPECT_TRUE(std::get<UnmapOp>(op_of("unmap all")).all);
}

TEST(Arguments, UnknownKeyIsMalformed) {
  expect_malformed("map len=4K src=b prot=r color=red", "t.trace:1:25", "unknown key 'color'");
  expect_malformed("map =4K", "t.trace:1:5", "no key");
}

TEST(Arguments, UnknownFlagIsMalformed) {
  expect_malformed("pin iova=0 len=4K wirte", "t.trace:1:19", "unknown flag 'wirte'");
  expect_malformed("map len=4K src=b prot=r keep", "t.trace:1:25", "unknown flag 'keep'");
}

TEST(Arguments, KeyWrittenTwiceIsMalformed) {
  expect_malformed("map len=4K src=b len=8K prot=r", "t.trace:1:18", "key 'len' written twice");
}

TEST(Arguments, FlagWrittenTwiceIsMalformed) {
  expect_malformed("pin iova=0 len=4K write write", "t.trace:1:25", "flag 'write' written twice");
}

TEST(Arguments, MissingRequiredKeyIsMalformed) {
  expect_malformed("map len=4K src=b", "t.trace:1:17", "missing prot=");
  expect_malformed("map len=4K src=b => ok", "t.trace:1:18", "missing prot=");
  expect_malformed("translate iova=0", "t.trace:1:17", "missing dom=");
  expect_malformed("ioas", "t.trace:1:5", "missing NAME");
  expect_malformed("reserve owner=u", "t.trace:1:9", "missing RANGE");
  expect_malformed("unpin", "t.trace:1:6", "missing ID");
}

TEST(Arguments, EmptyValueIsMalformed) {
  expect_malformed("map len= src=b prot=r", "t.trace:1:9", "has no value");
}

TEST(Arguments, ValueOutsideItsSetIsMalformed) {
  expect_malformed("map len=4K src=b prot=x", "t.trace:1:23", "prot 'x' is not one of r|w|rw");
  expect_malformed("attach dev=a dom=b fmt=mips", "t.trace:1:24", "fmt 'mips'");
  expect_malformed("ioas x zero-page=maybe", "t.trace:1:18", "zero-page 'maybe'");
  expect_malformed("ioas x huge-pages=yes", "t.trace:1:19", "huge-pages 'yes'");
  expect_malformed("pin iova=0 len=1 release=maybe", "t.trace:1:26", "release 'maybe'");
  expect_malformed("attach dev=a dom=b resv=0-0xfff:io", "t.trace:1:33", "resv type 'io'");
  expect_malformed("attach dev=a dom=b resv=0-0xfff", "t.trace:1:25", "expected RANGE:TYPE");
}

TEST(Arguments, ProtWriteOnlyParses) {
  EXPECT_EQ(std::get<MapOp>(op_of("map len=4K src=b prot=w")).prot, Prot::kWrite);
  EXPECT_EQ(std::get<CopyOp>(op_of("copy from=a iova=0 len=4K prot=w")).prot, Prot::kWrite);
}

TEST(Arguments, BadNamesAreMalformed) {
  expect_malformed("mem b@d va=0 len=1", "t.trace:1:6", "outside [A-Za-z0-9_.-]");
  expect_malformed("map len=4K src=+4K prot=r", "t.trace:1:16", "expected a memory source name");
}

TEST(Arguments, PageSizesAreASetOfPowersOfTwo) {
  EXPECT_EQ(std::get<AttachOp>(op_of("attach dev=a dom=b pgsizes=4K,2M,4K")).pgsize_bitmap,
            std::optional<u64>{k4K | k2M});
  // A size that parses but is no power of two is no lexical error: it is kept
  // for attach, which refuses it (EINVAL), and written back as given.
  const auto odd = std::get<AttachOp>(op_of("attach dev=a dom=b fmt=tce pgsizes=4K,3K"));
  EXPECT_EQ(odd.pgsize_bitmap, std::optional<u64>{k4K});
  EXPECT_EQ(odd.pgsizes_not_pow2, std::vector<u64>{3 * 1024});
  EXPECT_EQ(to_string(Operation{odd}), "attach dev=a dom=b fmt=tce pgsizes=0x1000,0xc00");
  expect_malformed("attach dev=a dom=b pgsizes=4K,", "t.trace:1:31", "expected a number");
}

TEST(Arguments, ExclusiveFlagsAreMalformedTogether) {
  expect_malformed("dma dom=d read write iova=0 len=1", "t.trace:1:16", "both read and write");
  expect_malformed("dma dom=d iova=0 len=1", "t.trace:1:23", "missing read or write");
  expect_malformed("dirty dom=d off split", "t.trace:1:17", "split goes with on only");
  expect_malformed("dirty dom=d", "t.trace:1:12", "missing on or off");
  expect_malformed("unmap all iova=0", "t.trace:1:11", "'all' takes no iova= or len=");
}

TEST(Arguments, UnknownOperationIsMalformed) {
  expect_malformed("  frobnicate x=1", "t.trace:1:3", "unknown operation 'frobnicate'");
}

TEST(Arguments, PinIdAboveThirtyTwoBitsIsMalformed) {
  EXPECT_EQ(std::get<UnpinOp>(op_of("unpin 4294967295")).id, 4294967295u);
  expect_malformed("unpin 4294967296", "t.trace:1:7", "above 2^32-1");
}

// ---- comments, blank lines, positions ----

TEST(Lines, CommentsAndBlankLinesAreIgnoredButCounted) {
  auto t = parse("# header\n\n   \t\n  # indented comment\nranges\n");
  ASSERT_TRUE(t.ok());
  ASSERT_EQ(t->lines.size(), 1u);
  EXPECT_EQ(t->lines[0].pos.line, 5);
  EXPECT_EQ(t->lines[0].pos.column, 1);
  EXPECT_EQ(t->raw.size(), 5u);
}

TEST(Lines, HashElsewhereIsNotAComment) {
  expect_malformed("ranges # not a comment", "t.trace:1:8", "unknown flag '#'");
  expect_malformed("mem a#b va=0 len=1", "t.trace:1:6", "outside");
}

TEST(Lines, ErrorsNameTheRightLine) {
  expect_malformed("ranges\n# c\n\ncheck\nmap len=4K src=b prot=q\n", "t.trace:5:23", "prot 'q'");
}

TEST(Lines, CrLfLineEndingsAreAccepted) {
  auto t = parse("ranges\r\ncheck => ok\r\n");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->lines.size(), 2u);
  EXPECT_EQ(t->lines[1].expect, Outcome::ok());
}

// ---- `=>` ----

TEST(Arrow, BareArrowIsMalformed) {
  expect_malformed("=>", "t.trace:1:1", "bare '=>'");
  expect_malformed("  => ok", "t.trace:1:3", "no operation before it");
  expect_malformed("check =>", "t.trace:1:7", "no result after it");
  expect_malformed("check =>   ", "t.trace:1:7", "no result after it");
}

TEST(Arrow, TwoArrowsAreMalformed) {
  expect_malformed("check => ok => ok", "t.trace:1:13", "second '=>'");
}

TEST(Arrow, NoExpectationMeansJustRun) {
  auto t = parse("check");
  ASSERT_TRUE(t.ok());
  EXPECT_FALSE(t->lines[0].expect.has_value());
}

// ---- expectations ----

TEST(Expectations, NumbersComparedByValue) {
  Outcome a = expect_of("map len=4K src=b prot=r => iova 4096");
  EXPECT_EQ(a, expect_of("map len=4K src=b prot=r => iova 0x1000"));
  EXPECT_EQ(a, expect_of("map len=4K src=b prot=r => iova 4K"));
  EXPECT_NE(a, expect_of("map len=4K src=b prot=r => iova 0x2000"));
}

TEST(Expectations, RangesInEitherForm) {
  Outcome a = expect_of("ranges => ranges 0x1000-0x1fff 0x3000+4K align 1");
  EXPECT_EQ(a, expect_of("ranges => ranges 0x1000+0x1000 0x3000-0x3fff align 0x1"));
  EXPECT_NE(a, expect_of("ranges => ranges 0x1000-0x1fff align 1"));
  EXPECT_EQ(expect_of("read-dirty dom=d iova=0 len=8K pgsize=4K => dirty 0+4K"),
            expect_of("read-dirty dom=d iova=0 len=8K pgsize=4K => dirty 0-0xfff"));
}

TEST(Expectations, ErrorByErrnoName) {
  Outcome e = expect_of("unmem b => error EBUSY");
  EXPECT_EQ(e, Outcome::err(EBUSY));
  expect_malformed("unmem b => error EWHAT", "t.trace:1:18", "unknown errno name 'EWHAT'");
  expect_malformed("unmem b => error", "t.trace:1:17", "missing the errno name");
  expect_malformed("unmem b => error EBUSY EINVAL", "t.trace:1:24", "unexpected 'EINVAL'");
}

TEST(Expectations, EveryResultSyntaxParses) {
  EXPECT_EQ(expect_of("mem b va=0 len=1 => ok").kind, OutcomeKind::kOk);
  EXPECT_EQ(expect_of("map len=1 src=b prot=r => iova 0x2000"), Outcome::with_value(OutcomeKind::kIova, 0x2000));
  EXPECT_EQ(expect_of("map iova=0 len=1 src=b prot=r => ok"), Outcome::ok());
  EXPECT_EQ(expect_of("unmap all => unmapped 0"), Outcome::with_value(OutcomeKind::kUnmapped, 0));
  Outcome r = expect_of("ranges => ranges align 0x1000");
  EXPECT_EQ(r.kind, OutcomeKind::kRanges);
  EXPECT_TRUE(r.ranges.empty());
  EXPECT_EQ(r.value, 0x1000u);
  EXPECT_EQ(expect_of("pin iova=0 len=1 => pin 12"), Outcome::with_value(OutcomeKind::kPin, 12));
  Outcome pa = expect_of("translate dom=d iova=0 => pa 0x7000 r");
  EXPECT_EQ(pa.kind, OutcomeKind::kPa);
  EXPECT_EQ(pa.value, 0x7000u);
  EXPECT_EQ(pa.prot, Prot::kRead);
  EXPECT_EQ(expect_of("translate dom=d iova=0 => fault").kind, OutcomeKind::kFault);
  EXPECT_EQ(expect_of("dma dom=d read iova=0 len=1 => ok"), Outcome::ok());
  EXPECT_EQ(expect_of("dma dom=d read iova=0 len=1 => fault 0x1000"),
            Outcome::with_value(OutcomeKind::kFaultAt, 0x1000));
  Outcome d = expect_of("read-dirty dom=d iova=0 len=1 pgsize=1 => dirty none");
  EXPECT_EQ(d.kind, OutcomeKind::kDirty);
  EXPECT_TRUE(d.ranges.empty());
  EXPECT_EQ(expect_of("uva iova=0 => va 0x7f00"), Outcome::with_value(OutcomeKind::kVa, 0x7f00));
  Outcome v = expect_of("check => violated use-count sorted use-count");
  EXPECT_EQ(v.violated, (std::vector<Invariant>{Invariant::kSorted, Invariant::kUseCount}));
}

TEST(Expectations, MalformedResults) {
  expect_malformed("ranges => ranges 0x1000-0x1fff", "t.trace:1:31", "missing 'align A'");
  expect_malformed("ranges => ranges align", "t.trace:1:23", "missing the alignment");
  expect_malformed("translate dom=d iova=0 => pa 0x1000", "t.trace:1:36", "expected pa P PROT");
  expect_malformed("translate dom=d iova=0 => pa 0x1000 x", "t.trace:1:37", "prot 'x'");
  expect_malformed("read-dirty dom=d iova=0 len=1 pgsize=1 => dirty", "t.trace:1:48", "'none'");
  expect_malformed("check => violated fine", "t.trace:1:19", "invariant 'fine'");
  expect_malformed("check => okay", "t.trace:1:10", "unknown result 'okay'");
  expect_malformed("check => ok now", "t.trace:1:13", "unexpected 'now'");
  expect_malformed("uva iova=0 => va", "t.trace:1:17", "missing its number");
}

TEST(Expectations, AResultTheOperationCannotGiveIsMalformed) {
  expect_malformed("map iova=0x1000 len=4K src=b prot=r => iova 0x1000", "t.trace:1:40",
                   "a fixed map gives ok");
  expect_malformed("map len=4K src=b prot=r => ok", "t.trace:1:28", "cannot give a result 'ok'");
  expect_malformed("copy from=a iova=0 len=1 to=0 prot=r => iova 0", "t.trace:1:41", "cannot give");
  expect_malformed("unmap all => ok", "t.trace:1:14", "cannot give");
  expect_malformed("translate dom=d iova=0 => fault 0x10", "t.trace:1:27", "'fault IOVA'");
  expect_malformed("dma dom=d read iova=0 len=1 => fault", "t.trace:1:32", "'fault'");
  expect_malformed("cut iova=0 => unmapped 0", "t.trace:1:15", "cannot give");
  // Every operation may fail.
  EXPECT_EQ(expect_of("ranges => error ENOENT"), Outcome::err(ENOENT));
}

// ---- every operation of the table ----

TEST(Operations, EveryRowOfTheTableParses) {
  const char* text =
      "ioas a zero-page=allowed huge-pages=off\n"
      "mem buf va=0x7f0000000000 len=16M pa=0x100000000 ro\n"
      "unmem buf\n"
      "map iova=0x1000 len=8K src=buf+4K prot=rw\n"
      "unmap iova=0x1000 len=8K\n"
      "unmap all\n"
      "cut iova=0x1fff\n"
      "reserve 0x1000-0x1fff owner=u\n"
      "unreserve owner=u\n"
      "allow 0x1000-0x1fff 0x3000+4K\n"
      "allow\n"
      "ranges\n"
      "attach dev=nic dom=d0 fmt=tce aperture=0-0x7fffffff pgsizes=4K resv=0xfee00000-0xfeefffff:msi,0-0xfff:direct-relaxable\n"
      "detach dev=nic\n"
      "pin iova=0x1000 len=4K write release=no\n"
      "unpin 3\n"
      "copy from=a iova=0x1000 len=4K to=0x5000 prot=r\n"
      "translate dom=d0 iova=0x1000\n"
      "dma dom=d0 write iova=0x1000 len=1\n"
      "dirty dom=d0 on split\n"
      "read-dirty dom=d0 iova=0 len=2M pgsize=4K keep\n"
      "uva iova=0x1000\n"
      "check\n";
  auto t = parse(text);
  ASSERT_TRUE(t.ok()) << t.error().message;
  ASSERT_EQ(t->lines.size(), 23u);
  std::vector<std::string> names;
  for (const auto& l : t->lines) names.push_back(op_name(l.op));
  EXPECT_EQ(names, (std::vector<std::string>{
                       "ioas", "mem", "unmem", "map", "unmap", "unmap", "cut", "reserve",
                       "unreserve", "allow", "allow", "ranges", "attach", "detach", "pin", "unpin",
                       "copy", "translate", "dma", "dirty", "read-dirty", "uva", "check"}));
  AttachOp at = std::get<AttachOp>(t->lines[12].op);
  EXPECT_EQ(at.fmt, std::optional<Format>{Format::kTce});
  EXPECT_EQ(at.aperture, (std::optional<Range>{Range{0, 0x7fffffff}}));
  ASSERT_EQ(at.resv.size(), 2u);
  EXPECT_EQ(at.resv[1], (ResvRegion{Range{0, 0xfff}, ResvType::kDirectRelaxable}));
  MemOp m = std::get<MemOp>(t->lines[1].op);
  EXPECT_EQ(m.pa, std::optional<u64>{0x100000000});
  EXPECT_TRUE(std::get<AllowOp>(t->lines[10].op).ranges.empty());
}

// ---- writer ----

TEST(Writer, CanonicalOperationTextIsLowercaseHexInTableOrder) {
  EXPECT_EQ(to_string(op_of("map prot=rw src=buf+4096 len=8K iova=0xAB000")),
            "map iova=0xab000 len=0x2000 src=buf+0x1000 prot=rw");
  EXPECT_EQ(to_string(op_of("map len=8K src=buf+0 prot=r")), "map len=0x2000 src=buf prot=r");
  EXPECT_EQ(to_string(op_of("unpin 0x10")), "unpin 16");
  EXPECT_EQ(to_string(op_of("attach dom=d dev=n pgsizes=1G,4K resv=0+4K:msi")),
            "attach dev=n dom=d pgsizes=0x1000,0x40000000 resv=0x0-0xfff:msi");
  EXPECT_EQ(to_string(op_of("pin write release=no len=1 iova=2")),
            "pin iova=0x2 len=0x1 write release=no");
  EXPECT_EQ(to_string(op_of("dirty split on dom=d")), "dirty dom=d on split");
}

TEST(Writer, CanonicalResultText) {
  EXPECT_EQ(to_string(Outcome::ok()), "ok");
  EXPECT_EQ(to_string(Outcome::err(EADDRINUSE)), "error EADDRINUSE");
  EXPECT_EQ(to_string(Outcome::with_value(OutcomeKind::kIova, 0xABC000)), "iova 0xabc000");
  EXPECT_EQ(to_string(Outcome::with_value(OutcomeKind::kUnmapped, 8192)), "unmapped 0x2000");
  EXPECT_EQ(to_string(Outcome::with_value(OutcomeKind::kPin, 12)), "pin 12");
  EXPECT_EQ(to_string(Outcome::with_value(OutcomeKind::kVa, 0x7f00)), "va 0x7f00");
  EXPECT_EQ(to_string(Outcome::with_value(OutcomeKind::kFaultAt, 0x1000)), "fault 0x1000");
  EXPECT_EQ(to_string(expect_of("translate dom=d iova=0 => fault")), "fault");
  EXPECT_EQ(to_string(expect_of("translate dom=d iova=0 => pa 4K rw")), "pa 0x1000 rw");
  EXPECT_EQ(to_string(expect_of("ranges => ranges align 1")), "ranges align 0x1");
  EXPECT_EQ(to_string(expect_of("ranges => ranges 4K+4K 0x3000-0xffffffffffffffff align 4K")),
            "ranges 0x1000-0x1fff 0x3000-0xffffffffffffffff align 0x1000");
  EXPECT_EQ(to_string(expect_of("read-dirty dom=d iova=0 len=1 pgsize=1 => dirty none")), "dirty none");
  EXPECT_EQ(to_string(expect_of("read-dirty dom=d iova=0 len=1 pgsize=1 => dirty 0+1 2+1")),
            "dirty 0x0-0x0 0x2-0x2");
  EXPECT_EQ(to_string(expect_of("check => violated use-count zero-iova")), "violated zero-iova use-count");
}

// Parsing the writer's text gives back the same operation and result, for
// every row of the table and every result form.
TEST(Writer, RoundTrip) {
  const char* text =
      "ioas a zero-page=allowed huge-pages=off => ok\n"
      "ioas b zero-page=reserved\n"
      "ioas c huge-pages=on => error EINVAL\n"
      "ioas k mode=kernel huge-pages=off\n"
      "ioas k2 mode=default zero-page=allowed => ok\n"
      "mem buf va=0x7f0000000000 len=16M pa=0x100000000 ro => error EEXIST\n"
      "mem buf2 va=0 len=1\n"
      "unmem buf => error EBUSY\n"
      "map iova=0x1000 len=8K src=buf+4K prot=rw => ok\n"
      "map len=8K src=buf prot=w => iova 0x2000\n"
      "unmap iova=0x1000 len=8K => unmapped 8K\n"
      "unmap all => unmapped 0\n"
      "cut iova=0x1fff => error EINVAL\n"
      "reserve 0x2000-0x1000 owner=u => ok\n"
      "unreserve owner=u\n"
      "allow 0x1000-0x1fff 0x3000+4K => error EADDRINUSE\n"
      "allow\n"
      "ranges => ranges 0x1000-0xfedfffff 0xfef00000-0xffffffffffffffff align 0x1000\n"
      "ranges => ranges align 1\n"
      "attach dev=nic dom=d0 fmt=arm-lpae aperture=0-0x7fffffff pgsizes=4K,2M "
      "resv=0xfee00000-0xfeefffff:msi,0-0xfff:direct-relaxable,1-2:direct,3-4:reserved\n"
      "attach dev=n2 dom=d0 => ok\n"
      "attach dev=n3 dom=m fmt=mock aperture=0x1000000-0x7fffffff pgsizes=0x800,0x100000 => ok\n"
      "attach dev=n4 dom=t fmt=tce pgsizes=0xc00 => error EINVAL\n"
      "detach dev=nic => ok\n"
      "pin iova=0x1000 len=4K write release=no => pin 4294967295\n"
      "pin iova=0x1000 len=4K\n"
      "unpin 3 => ok\n"
      "copy from=a iova=0x1000 len=4K to=0x5000 prot=r => ok\n"
      "copy from=a iova=0x1000 len=4K prot=rw => iova 0x7000\n"
      "translate dom=d0 iova=0x1000 => pa 0x7f0000001000 r\n"
      "translate dom=d0 iova=0x1000 => fault\n"
      "dma dom=d0 write iova=0x1000 len=1 => fault 0x1000\n"
      "dma dom=d0 read iova=0x1000 len=1 => ok\n"
      "dirty dom=d0 on split\n"
      "dirty dom=d0 on\n"
      "dirty dom=d0 off\n"
      "read-dirty dom=d0 iova=0 len=2M pgsize=4K keep => dirty 0-0xfff 0x3000+8K\n"
      "read-dirty dom=d0 iova=0 len=2M pgsize=4K => dirty none\n"
      "uva iova=0x1000 => va 0x7f0000001000\n"
      "uva iova=0x1000 => error ENOENT\n"
      "check => violated sorted area-reserved allowed-reserved zero-iova alignment aperture translation use-count\n"
      "check => ok\n";
  auto first = parse(text);
  ASSERT_TRUE(first.ok()) << first.error().message;
  std::string written;
  for (const auto& l : first->lines) written += format_line(l.op, l.expect) + "\n";
  auto second = parse(written);
  ASSERT_TRUE(second.ok()) << second.error().message << "\n" << written;
  ASSERT_EQ(first->lines.size(), second->lines.size());
  for (std::size_t i = 0; i < first->lines.size(); ++i) {
    EXPECT_EQ(first->lines[i].op, second->lines[i].op) << second->lines[i].text;
    EXPECT_EQ(first->lines[i].expect, second->lines[i].expect) << second->lines[i].text;
  }
  // And the canonical text is a fixed point.
  std::string again;
  for (const auto& l : second->lines) again += format_line(l.op, l.expect) + "\n";
  EXPECT_EQ(written, again);
}

TEST(Files, MissingFileIsENOENT) {
  auto t = read_trace_file("/nonexistent/dir/x.trace");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().code, ENOENT);
  EXPECT_NE(t.error().message.find("/nonexistent/dir/x.trace"), std::string::npos);
}

}  // namespace
}  // namespace ioas::trace
