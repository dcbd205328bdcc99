// ioas/core/cmdline.hpp: command lines (options, flags, subcommands,
// generated --help) over CLI11, for the `ioas` tool and the campaign programs.
// CLI11 is a large header-only library whose code every including source
// compiles again; core/cmdline.cpp is the one source that includes it, and
// this header names none of its types.
//
// A Parser owns the grammar; a Command is a handle to the program's top level
// or to one of its subcommands, valid while its Parser lives. The bound
// variables must outlive the parse.
#pragma once

#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace CLI {
class App;
}  // namespace CLI

namespace ioas::cmdline {

// The values a number option accepts, [min, max]; --help shows `name` after
// the option ("" shows the range).
struct Bounds {
  std::uint64_t min = 0;
  std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
  std::string name;
};
inline Bounds positive() { return Bounds{1, std::numeric_limits<std::uint64_t>::max(), "POSITIVE"}; }

class Command {
 public:
  // `flag` ("--cases") sets `value`; --help shows `help` and, with
  // `show_default`, the value `value` holds when the option is declared.
  void number(const std::string& flag, std::uint64_t& value, const std::string& help, bool show_default = false,
              std::optional<Bounds> bounds = std::nullopt);
  // A text option; when `choices` is not empty, only those words.
  void text(const std::string& flag, std::string& value, const std::string& help, bool show_default = false,
            const std::vector<std::string>& choices = {});
  // A flag without a value ("--json"): present, `value` is true.
  void flag(const std::string& flag, bool& value, const std::string& help);
  // The positional words ("FILE"), each appended to `values`.
  void words(const std::string& name, std::vector<std::string>& values, const std::string& help);
  // The text --help prints after the options.
  void footer(const std::string& text);
  // A subcommand (`ioas replay`) with its own options.
  Command subcommand(const std::string& name, const std::string& description);

  const std::string& name() const;
  // After a parse: whether the option was given on the command line.
  bool given(const std::string& flag) const;

 private:
  friend class Parser;
  explicit Command(CLI::App* app) : app_(app) {}
  CLI::App* app_;
};

// The outcome of Parser::parse(words).
struct Parsed {
  enum Kind { kOk, kHelp, kError } kind = kOk;
  std::string error;  // kError: what was wrong, as CLI11 words it
};

class Parser {
 public:
  // `description` heads --help; `program` is the name it shows. With
  // `last_wins`, an option given twice takes its last value (else it is bad
  // usage).
  Parser(std::string description, std::string program, bool last_wins = false);
  ~Parser();
  Parser(const Parser&) = delete;
  Parser& operator=(const Parser&) = delete;

  // The top level, where options and subcommands are declared.
  Command& top() { return top_; }
  // --help's look: the word that heads the usage line, and the width of the
  // options' column.
  void help_layout(const std::string& usage_label, std::size_t column_width);
  // Exactly one subcommand must be given.
  void require_subcommand();
  bool has_subcommand(const std::string& name) const;

  // Parses argv into the options' values. nullopt: go on; else the program's
  // exit status: 0 after --help (printed), 2 after bad usage (the error
  // printed to stderr).
  std::optional<int> parse(int argc, char** argv);
  // Parses `words`, the arguments in reverse order (CLI11's own order),
  // printing nothing.
  Parsed parse(std::vector<std::string> words_last_first);
  // The subcommands the parse selected, in order.
  std::vector<Command> selected() const;
  // The --help text (of the selected subcommand, after a parse that chose one).
  std::string help() const;

 private:
  std::unique_ptr<CLI::App> app_;
  Command top_;
};

}  // namespace ioas::cmdline
