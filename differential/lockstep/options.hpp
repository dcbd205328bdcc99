// The command line of the campaign programs (ioas_campaign,
// ioas_kernel_campaign): --name VALUE options and --help, parsed by CLI11.
// CLI11 is a large header library; options.cpp is the only source of these
// programs that includes it.
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

namespace ioas::lockstep {

class CommandLine {
 public:
  // `description` heads --help; `program` is the name it shows. With
  // `last_wins`, an option given twice takes its last value (else it is bad
  // usage).
  CommandLine(std::string description, std::string program, bool last_wins = false);
  ~CommandLine();
  CommandLine(const CommandLine&) = delete;
  CommandLine& operator=(const CommandLine&) = delete;

  // The values a number option accepts, [min, max]; --help shows `name`
  // after the option ("" shows the range).
  struct Bounds {
    std::uint64_t min = 0;
    std::uint64_t max = std::numeric_limits<std::uint64_t>::max();
    std::string name;
  };
  static Bounds positive() { return Bounds{1, std::numeric_limits<std::uint64_t>::max(), "POSITIVE"}; }

  // `flag` ("--cases") sets `value`; --help shows `help` and, with
  // `show_default`, the value `value` holds when the option is declared.
  void number(const std::string& flag, std::uint64_t& value, const std::string& help, bool show_default,
              std::optional<Bounds> bounds = std::nullopt);
  // A text option; when `choices` is not empty, only those words.
  void text(const std::string& flag, std::string& value, const std::string& help, bool show_default,
            const std::vector<std::string>& choices = {});

  // Parses argv into the options' values. nullopt: go on; else the program's
  // exit status: 0 after --help (printed), 2 after bad usage (the error
  // printed to stderr).
  std::optional<int> parse(int argc, char** argv);

 private:
  std::unique_ptr<CLI::App> app_;
};

}  // namespace ioas::lockstep
