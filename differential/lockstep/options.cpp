// The campaign programs' command line over CLI11: see options.hpp.
#include "options.hpp"

#include <CLI/CLI.hpp>

namespace ioas::lockstep {

CommandLine::CommandLine(std::string description, std::string program, bool last_wins)
    : app_(std::make_unique<CLI::App>(std::move(description), std::move(program))) {
  if (last_wins) app_->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

CommandLine::~CommandLine() = default;

void CommandLine::number(const std::string& flag, std::uint64_t& value, const std::string& help, bool show_default,
                         std::optional<Bounds> bounds) {
  CLI::Option* o = app_->add_option(flag, value, help);
  if (bounds) {
    CLI::Validator range = CLI::Range(bounds->min, bounds->max);
    if (!bounds->name.empty()) range.description(bounds->name);
    o->check(range);
  }
  if (show_default) o->capture_default_str();
}

void CommandLine::text(const std::string& flag, std::string& value, const std::string& help, bool show_default,
                       const std::vector<std::string>& choices) {
  CLI::Option* o = app_->add_option(flag, value, help);
  if (!choices.empty()) o->check(CLI::IsMember(choices));
  if (show_default) o->capture_default_str();
}

std::optional<int> CommandLine::parse(int argc, char** argv) {
  try {
    app_->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_->exit(e) == 0 ? 0 : 2;
  }
  return std::nullopt;
}

}  // namespace ioas::lockstep
