// Numbers, ranges and hex as text (ioas/core/text.hpp).
#include <gtest/gtest.h>

#include <cstdio>

#include <cerrno>
#include <random>

#include "ioas/core/text.hpp"

namespace ioas {
namespace {

u64 num(std::string_view s) {
  auto r = parse_number(s);
  EXPECT_TRUE(r.ok()) << s << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? r.value() : 0xdeadbeef;
}

std::size_t error_offset_of_number(std::string_view s) {
  auto n = read_number(s);
  EXPECT_TRUE(std::holds_alternative<TextError>(n)) << s;
  return std::holds_alternative<TextError>(n) ? std::get<TextError>(n).offset : ~std::size_t{0};
}

std::size_t error_offset_of_range(std::string_view s) {
  auto r = read_range(s);
  EXPECT_TRUE(std::holds_alternative<TextError>(r)) << s;
  return std::holds_alternative<TextError>(r) ? std::get<TextError>(r).offset : ~std::size_t{0};
}

// ---- numbers ----

TEST(Numbers, DecimalAndHexAreTheSameValue) {
  EXPECT_EQ(num("4096"), 4096u);
  EXPECT_EQ(num("0x1000"), 4096u);
  EXPECT_EQ(num("0xABCdef"), 0xabcdefu);
  EXPECT_EQ(num("0"), 0u);
  EXPECT_EQ(num("007"), 7u);
}

TEST(Numbers, BinarySuffixesMultiply) {
  EXPECT_EQ(num("8K"), 8192u);
  EXPECT_EQ(num("0x10K"), 0x4000u);
  EXPECT_EQ(num("16M"), u64{16} << 20);
  EXPECT_EQ(num("1G"), u64{1} << 30);
  EXPECT_EQ(num("2T"), u64{2} << 40);
  EXPECT_EQ(num("0K"), 0u);
}

TEST(Numbers, TwoToTheSixtyFourMinusOneIsTheLargest) {
  EXPECT_EQ(num("0xffffffffffffffff"), kMaxIova);
  EXPECT_EQ(num("18446744073709551615"), kMaxIova);
  EXPECT_EQ(num("0x3fffffffffffffK"), kMaxIova - 1023);
  EXPECT_EQ(num("16777215T"), (u64{16777215} << 40));
}

TEST(Numbers, AboveTwoToTheSixtyFourIsMalformed) {
  for (const char* s : {"18446744073709551616", "0x10000000000000000", "0x40000000000000K",
                        "16777216T", "99999999999999999999999"}) {
    auto r = parse_number(s);
    ASSERT_FALSE(r.ok()) << s;
    EXPECT_EQ(r.error().code, EINVAL);
    EXPECT_NE(r.error().message.find("above 2^64-1"), std::string::npos) << r.error().message;
  }
}

TEST(Numbers, AnythingElseIsMalformed) {
  for (const char* s : {"", "0x", "K", "0xK", "12a", "-1", "+1", "0X10", "1k", "1KB", "0x1g", "1.5"}) {
    auto r = parse_number(s);
    ASSERT_FALSE(r.ok()) << s;
    EXPECT_EQ(r.error().code, EINVAL) << s;
    EXPECT_FALSE(r.error().message.empty()) << s;
  }
}

TEST(Numbers, TheErrorPointsAtTheFirstWrongByte) {
  EXPECT_EQ(error_offset_of_number("1z"), 1u);
  EXPECT_EQ(error_offset_of_number("0x12g4"), 4u);
  EXPECT_EQ(error_offset_of_number("0x"), 2u) << "no digits after the prefix";
  EXPECT_EQ(error_offset_of_number("0x10000000000000000"), 0u) << "too large: the whole number is wrong";
}

// ---- ranges ----

TEST(Ranges, StartLastIsInclusive) {
  auto r = parse_range("0x1000-0x1fff");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), (Range{0x1000, 0x1fff}));
}

TEST(Ranges, StartPlusLenCoversLenBytes) {
  auto r = parse_range("0x1000+4K");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), (Range{0x1000, 0x1fff}));
  auto top = parse_range("0xfffffffffffff000+4K");
  ASSERT_TRUE(top.ok());
  EXPECT_EQ(top.value(), (Range{0xfffffffffffff000, kMaxIova}));
}

TEST(Ranges, LenZeroIsMalformed) {
  auto r = parse_range("0x1000+0");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, EINVAL);
  EXPECT_NE(r.error().message.find("LEN is 0"), std::string::npos);
}

TEST(Ranges, LenPastTheEndIsMalformed) {
  auto r = parse_range("0xfffffffffffff000+0x1001");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("passes 2^64-1"), std::string::npos);
}

TEST(Ranges, StartAboveLastParsesAndTheOperationDecides) {
  auto r = parse_range("0x2000-0x1000");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value(), (Range{0x2000, 0x1000}));
}

TEST(Ranges, WithoutSeparatorOrWithBadNumbersIsMalformed) {
  for (const char* s : {"0x1000", "-0x10", "0x10-", "0x10+", "a-b", "1-2-3"})
    EXPECT_FALSE(parse_range(s).ok()) << s;
  auto r = parse_range("0x1000");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("expected a range"), std::string::npos) << r.error().message;
}

TEST(Ranges, TheErrorPointsIntoTheSecondNumber) {
  EXPECT_EQ(error_offset_of_range("0x1000"), 0u);
  EXPECT_EQ(error_offset_of_range("0x1z-0x2000"), 3u);
  EXPECT_EQ(error_offset_of_range("0x1000-0x2z"), 10u);
  EXPECT_EQ(error_offset_of_range("0x1000+0"), 7u) << "LEN 0: the LEN is wrong";
  EXPECT_EQ(error_offset_of_range("2+0xffffffffffffffff"), 2u);
}

// ---- hex ----

TEST(Hex, WithinATextIsTheTextAroundHex) {
  EXPECT_EQ(hex_within("uva ", 0x14000, ": not mapped"), "uva 0x14000: not mapped");
  EXPECT_EQ(hex_within("", 0, ""), "0x0");
  for (u64 v : {u64{0}, u64{1}, u64{0xfff}, u64{1} << 63, kMaxIova})
    EXPECT_EQ(hex_within("at ", v, " end"), "at " + hex(v) + " end");
}

TEST(Hex, LowercaseWithPrefixAndZeroIsZeroXZero) {
  EXPECT_EQ(hex(0), "0x0");
  EXPECT_EQ(hex(1), "0x1");
  EXPECT_EQ(hex(0xABCDEF), "0xabcdef");
  EXPECT_EQ(hex(kMaxIova), "0xffffffffffffffff");
  EXPECT_EQ(hex(u64{1} << 63), "0x8000000000000000");
  // Every length of digits, against printf's %llx.
  for (unsigned bits = 0; bits <= 64; ++bits) {
    const u64 v = bits == 64 ? kMaxIova : (u64{1} << bits) - 1 + (bits % 3);
    char want[32];
    std::snprintf(want, sizeof want, "0x%llx", static_cast<unsigned long long>(v));
    EXPECT_EQ(hex(v), want) << bits;
  }
}

TEST(Hex, ParsesBackToTheSameNumber) {
  std::mt19937_64 rng(20261206);
  for (int i = 0; i < 1000; ++i) {
    u64 v = rng() >> (rng() % 64);
    auto back = parse_number(hex(v));
    ASSERT_TRUE(back.ok()) << hex(v);
    EXPECT_EQ(*back, v);
  }
}

}  // namespace
}  // namespace ioas
