// Command lines over CLI11: see ioas/core/cmdline.hpp. The only source of
// ioas that includes CLI11.
#include "ioas/core/cmdline.hpp"

#include <CLI/CLI.hpp>

namespace ioas::cmdline {

void Command::number(const std::string& flag, std::uint64_t& value, const std::string& help, bool show_default,
                     std::optional<Bounds> bounds) {
  CLI::Option* o = app_->add_option(flag, value, help);
  if (bounds) {
    CLI::Validator range = CLI::Range(bounds->min, bounds->max);
    if (!bounds->name.empty()) range.description(bounds->name);
    o->check(range);
  }
  if (show_default) o->capture_default_str();
}

void Command::text(const std::string& flag, std::string& value, const std::string& help, bool show_default,
                   const std::vector<std::string>& choices) {
  CLI::Option* o = app_->add_option(flag, value, help);
  if (!choices.empty()) o->check(CLI::IsMember(choices));
  if (show_default) o->capture_default_str();
}

void Command::flag(const std::string& flag, bool& value, const std::string& help) {
  app_->add_flag(flag, value, help);
}

void Command::words(const std::string& name, std::vector<std::string>& values, const std::string& help) {
  app_->add_option(name, values, help);
}

void Command::footer(const std::string& text) { app_->footer(text); }

Command Command::subcommand(const std::string& name, const std::string& description) {
  return Command(app_->add_subcommand(name, description));
}

const std::string& Command::name() const { return app_->get_name(); }

bool Command::given(const std::string& flag) const {
  const CLI::Option* o = app_->get_option_no_throw(flag);
  return o != nullptr && o->count() > 0;
}

Parser::Parser(std::string description, std::string program, bool last_wins)
    : app_(std::make_unique<CLI::App>(std::move(description), std::move(program))), top_(app_.get()) {
  if (last_wins) app_->option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
}

Parser::~Parser() = default;

void Parser::help_layout(const std::string& usage_label, std::size_t column_width) {
  app_->get_formatter()->label("Usage", usage_label);
  app_->get_formatter()->column_width(column_width);
}

void Parser::require_subcommand() { app_->require_subcommand(1); }

bool Parser::has_subcommand(const std::string& name) const {
  return !app_->get_subcommands([&](CLI::App* c) { return c->get_name() == name; }).empty();
}

std::optional<int> Parser::parse(int argc, char** argv) {
  try {
    app_->parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app_->exit(e) == 0 ? 0 : 2;
  }
  return std::nullopt;
}

Parsed Parser::parse(std::vector<std::string> words_last_first) {
  try {
    app_->parse(words_last_first);
  } catch (const CLI::CallForHelp&) {
    return Parsed{Parsed::kHelp, ""};
  } catch (const CLI::ParseError& e) {
    return Parsed{Parsed::kError, e.what()};
  }
  return Parsed{};
}

std::vector<Command> Parser::selected() const {
  std::vector<Command> out;
  for (CLI::App* c : app_->get_subcommands()) out.push_back(Command(c));
  return out;
}

std::string Parser::help() const { return app_->help(); }

}  // namespace ioas::cmdline
