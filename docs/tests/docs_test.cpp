// The project's documents against the code: every operation, key, flag,
// result word and value word the trace reader accepts is in
// docs/trace-format.md; every errno name the engines can report, every
// operation and every invariant is in docs/semantics.md; every relative link
// of README.md and docs/*.md names a file of the repository. The lists come
// from the code (the reader's tables, the errno table behind errno_name),
// so a new operation or errno without documentation fails here.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "ioas/result.hpp"
#include "trace.hpp"

namespace ioas {
namespace {

namespace fs = std::filesystem;
const fs::path kRoot = IOAS_SOURCE_DIR;

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  EXPECT_TRUE(f) << p << " cannot be opened";
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

// Every errno name the engines can report: the names errno_name knows (it
// answers "E?N" for the others).
std::vector<std::string> errno_names() {
  std::vector<std::string> out;
  for (int code = 1; code < 4096; ++code) {
    std::string n = errno_name(code);
    if (n.rfind("E?", 0) != 0) out.push_back(n);
  }
  return out;
}

// The code of a Markdown document: its fenced blocks and its `inline` spans,
// one per line. Words are looked up there, not in the prose.
std::string code_of(const std::string& markdown) {
  std::istringstream in(markdown);
  std::string code, line;
  bool fenced = false;
  while (std::getline(in, line)) {
    if (line.rfind("```", 0) == 0) {
      fenced = !fenced;
      continue;
    }
    if (fenced) {
      code += line + "\n";
      continue;
    }
    for (std::size_t open = line.find('`'); open != std::string::npos;) {
      std::size_t close = line.find('`', open + 1);
      if (close == std::string::npos) break;
      code += line.substr(open + 1, close - open - 1) + "\n";
      open = line.find('`', close + 1);
    }
  }
  return code;
}

// `word` appears in the document's code as a whole word: `word`, `word ...`,
// `key=word`, `a|word`, `[word]`, `word,...`, `RANGE:word`. A key (`key=`)
// may be followed by anything.
bool documented(const std::string& markdown, const std::string& word) {
  const bool key = !word.empty() && word.back() == '=';
  static const std::string kBoundary = " \n=|[],:+()";
  const std::string code = code_of(markdown);
  for (std::size_t at = code.find(word); at != std::string::npos; at = code.find(word, at + 1)) {
    bool left = at == 0 || kBoundary.find(code[at - 1]) != std::string::npos;
    std::size_t end = at + word.size();
    bool right = key || end == code.size() || kBoundary.find(code[end]) != std::string::npos;
    if (left && right) return true;
  }
  return false;
}

TEST(Docs, TraceFormatNamesEveryOperationKeyAndFlagOfTheReader) {
  const std::string doc = slurp(kRoot / "docs/trace-format.md");
  auto ops = trace::operation_syntax();
  ASSERT_GT(ops.size(), 10u) << "the reader's operation table came back nearly empty";
  for (const auto& op : ops) {
    EXPECT_TRUE(documented(doc, std::string(op.name))) << "operation " << op.name;
    for (auto k : op.keys)
      EXPECT_TRUE(documented(doc, std::string(k) + "=")) << op.name << " key " << k << "=";
    for (auto f : op.flags) EXPECT_TRUE(documented(doc, std::string(f))) << op.name << " flag " << f;
  }
}

TEST(Docs, TraceFormatNamesEveryResultAndValueWord) {
  const std::string doc = slurp(kRoot / "docs/trace-format.md");
  for (auto w : trace::result_words()) EXPECT_TRUE(documented(doc, std::string(w))) << "result " << w;
  for (const auto& v : trace::value_words())
    for (auto w : v.words) EXPECT_TRUE(documented(doc, std::string(w))) << v.what << " " << w;
}

TEST(Docs, SemanticsNamesEveryErrnoOperationAndInvariant) {
  const std::string doc = slurp(kRoot / "docs/semantics.md");
  auto names = errno_names();
  ASSERT_GT(names.size(), 5u) << "errno_name knows almost no errno";
  for (const auto& n : names) EXPECT_TRUE(documented(doc, n)) << "errno " << n;
  for (const auto& op : trace::operation_syntax())
    EXPECT_TRUE(documented(doc, std::string(op.name))) << "operation " << op.name;
  for (const auto& v : trace::value_words()) {
    if (v.what != "invariant" && v.what != "fmt") continue;
    for (auto w : v.words) EXPECT_TRUE(documented(doc, std::string(w))) << v.what << " " << w;
  }
}

// The targets of the Markdown links and images of one document that point
// into the repository (not http:, mailto: or a bare #anchor).
std::vector<std::string> relative_links(const std::string& text) {
  std::vector<std::string> out;
  for (std::size_t at = text.find("]("); at != std::string::npos; at = text.find("](", at + 2)) {
    std::size_t close = text.find(')', at + 2);
    if (close == std::string::npos) break;
    std::string target = text.substr(at + 2, close - at - 2);
    if (target.empty() || target.find_first_of(" \n") != std::string::npos) continue;  // not a link
    if (target.find("://") != std::string::npos || target.rfind("mailto:", 0) == 0 || target[0] == '#') continue;
    out.push_back(target.substr(0, target.find('#')));
  }
  return out;
}

TEST(Docs, EveryRelativeLinkResolvesInsideTheRepository) {
  std::vector<fs::path> docs{kRoot / "README.md"};
  for (const auto& e : fs::directory_iterator(kRoot / "docs"))
    if (e.path().extension() == ".md") docs.push_back(e.path());
  ASSERT_GE(docs.size(), 3u) << "README.md, docs/semantics.md and docs/trace-format.md";
  const fs::path root = fs::weakly_canonical(kRoot);
  int links = 0;
  for (const auto& d : docs) {
    for (const auto& target : relative_links(slurp(d))) {
      ++links;
      fs::path p = fs::weakly_canonical(d.parent_path() / target);
      EXPECT_TRUE(fs::exists(p)) << d.filename() << " links " << target << ": no such file";
      auto rel = p.lexically_relative(root);
      EXPECT_FALSE(rel.empty() || *rel.begin() == "..") << d.filename() << " links " << target
                                                         << " outside the repository";
    }
  }
  EXPECT_GT(links, 5) << "the documents link each other; no link was found";
}

}  // namespace
}  // namespace ioas
