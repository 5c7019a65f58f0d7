#pragma once
// The `caregate` command line (spec section 6). main() only calls RunCli.
#include <cstddef>
#include <cstdint>
#include <string>

#include <CLI/CLI.hpp>

#include "caregate/audit/audit_event.h"

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

// Whether the input file `path` can be opened for reading ("-", standard input, always
// can). When it cannot (missing, unreadable, a directory), writes the one error line
// "caregate: <path>: cannot open the input: <reason>" (or "cannot read the input: it is a
// directory"), worded as the export words its extract's, and returns false: the caller
// exits 1 (spec 6, other failure), not 65, since no data was read to be invalid.
bool InputReadable(const std::string& path);

// Writes `data` to `path`, or to stdout when `path` is empty (spec 6: "output goes to
// stdout unless --out is given"); a file through `path`.partial renamed into place once
// whole, so a failed run never leaves half a file under the name asked for. On failure
// writes the error line ("caregate: <path or stdout>: write failed") and returns false;
// the caller exits 1.
bool WriteOutput(const std::string& path, const std::string& data);

// The check of every count option: a whole number in decimal digits from 0 to `max`.
// CLI11's own number checks read 0x10 as 16, clamp a value past the type's range (a
// --records of 10^20 became 2^64-1) and word a refusal as a floating-point range; this
// one says "must be a whole number from 0 to MAX" and names the value. It also refuses an
// empty value (an unset variable in a script), which CLI11 would read as 0.
CLI::Validator WholeNumber(std::uint64_t max = UINT64_MAX);

// Where a record's errors and notes are: "<input>: record N (line L)", the line when known.
std::string RecordPlace(const std::string& input, std::size_t index, std::size_t line);

// Who runs the command, for its audit events: $USER, else "uid-<n>".
std::string CliUser();

// An audit event of a command run by `user` (CliUser): role service, organisation
// caregate, the given action; the caller fills in the rest.
audit::AuditEvent CommandEvent(const std::string& user, std::string action);

Command AddTranslateCommand(CLI::App& root, std::string& mappings_dir);
Command AddMappingsCommand(CLI::App& root, std::string& mappings_dir);
Command AddSynthCommand(CLI::App& root, std::string& mappings_dir);
Command AddExportCommand(CLI::App& root, std::string& mappings_dir);
Command AddIngestCommand(CLI::App& root, std::string& mappings_dir);
Command AddServeCommand(CLI::App& root, std::string& mappings_dir);
Command AddAuditCommand(CLI::App& root, std::string& mappings_dir);

}  // namespace caregate::cli
