#pragma once
// The `caregate` command line (spec section 6). main() only calls RunCli.
#include <string>

#include <CLI/CLI.hpp>

#include "caregate/core/error.h"

namespace caregate::cli {

// Exit statuses (spec 6).
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitDataErr = 65;
inline constexpr int kExitSoftware = 70;

int RunCli(int argc, char** argv);

// Each subcommand registers its options and the function that runs it.
struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

// One line on stderr: "caregate: <input>: <what>".
void Error(const std::string& input, const std::string& message);

Command AddTranslateCommand(CLI::App& root, std::string& mappings_dir);
Command AddMappingsCommand(CLI::App& root, std::string& mappings_dir);
Command AddSynthCommand(CLI::App& root, std::string& mappings_dir);
Command AddExportCommand(CLI::App& root, std::string& mappings_dir);
Command AddIngestCommand(CLI::App& root, std::string& mappings_dir);
Command AddServeCommand(CLI::App& root, std::string& mappings_dir);
Command AddAuditCommand(CLI::App& root, std::string& mappings_dir);

}  // namespace caregate::cli
