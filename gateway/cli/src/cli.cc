#include "caregate/cli/cli.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "caregate/core/text.h"

namespace caregate::cli {

void Error(const std::string& input, const std::string& message) {
  std::string line = "caregate: ";
  if (!input.empty()) line += input + ": ";
  line += message;
  line = OneLine(std::move(line));
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

std::string RecordPlace(const std::string& input, std::size_t index, std::size_t line) {
  std::string where = input + ": record " + std::to_string(index);
  if (line) where += " (line " + std::to_string(line) + ")";
  return where;
}

std::string CliUser() {
  if (const char* u = std::getenv("USER"); u && *u) return u;
  return "uid-" + std::to_string(::getuid());
}

audit::AuditEvent CommandEvent(const std::string& user, std::string action) {
  audit::AuditEvent e;
  e.user = user;
  e.role = "service";
  e.organisation = "caregate";
  e.action = std::move(action);
  return e;
}

CLI::Validator WholeNumber(std::uint64_t max) {
  return CLI::Validator(
      [max](std::string& value) -> std::string {
        std::uint64_t n = 0;
        const char* end = value.data() + value.size();
        const bool digits = !value.empty() && value.find_first_not_of("0123456789") == std::string::npos;
        if (digits) {
          const auto [at, ec] = std::from_chars(value.data(), end, n);
          if (ec == std::errc() && at == end && n <= max) {
            value = std::to_string(n);  // CLI11 reads a leading 0 as octal: 010 would be 8
            return {};
          }
        }
        return "must be a whole number from 0 to " + std::to_string(max) + ", not '" + OneLine(value) + "'";
      },
      "UINT", "whole number");
}

bool InputReadable(const std::string& path) {
  if (path == "-") return true;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    Error(path, std::string("cannot open the input: ") + std::strerror(errno));
    return false;
  }
  struct stat st {};
  const bool directory = ::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
  ::close(fd);
  if (directory) Error(path, "cannot read the input: it is a directory");
  return !directory;
}

int RunCli(int argc, char** argv) {
  CLI::App app{"caregate: interoperability gateway between SystmOne-style and CIS-style care records"};
  app.require_subcommand(1);
  std::string mappings_dir;
  app.add_option("--mappings", mappings_dir, "Directory of mapping tables (default: the shipped tables)");
  // ...before or after the command's name: an option a command does not know falls
  // through to this one (README: every command takes --mappings DIR).
  app.fallthrough();
  std::vector<Command> commands;
  commands.push_back(AddTranslateCommand(app, mappings_dir));
  commands.push_back(AddMappingsCommand(app, mappings_dir));
  commands.push_back(AddSynthCommand(app, mappings_dir));
  commands.push_back(AddExportCommand(app, mappings_dir));
  commands.push_back(AddIngestCommand(app, mappings_dir));
  commands.push_back(AddServeCommand(app, mappings_dir));
  commands.push_back(AddAuditCommand(app, mappings_dir));
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    Error("", std::string("usage: ") + e.what() + " (see caregate --help)");
    return kExitUsage;
  }
  try {
    for (auto& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const FatalError& e) {
    // A message of several lines (refused mapping tables: a heading, then one problem a
    // line) stays one stderr line per problem (spec 6).
    const std::string msg = e.what();
    for (std::size_t start = 0; start <= msg.size();) {
      std::size_t end = msg.find('\n', start);
      if (end == std::string::npos) end = msg.size();
      const std::string_view line = Trim(std::string_view(msg).substr(start, end - start));
      if (!line.empty() || start == 0) Error("", std::string(line));
      start = end + 1;
    }
    return Describe(e.problem()).exit_code;  // the problem table's exit column (problems.def)
  } catch (const std::exception& e) {
    Error("", std::string("internal error: ") + e.what());
    return kExitSoftware;
  }
  return kExitUsage;
}

}  // namespace caregate::cli
