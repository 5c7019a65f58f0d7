#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "caregate/cli/cli.h"
#include "caregate/engine/engine.h"

namespace caregate::cli {

namespace {

// Where translate's output goes: stdout, or --out FILE through a temporary file beside it
// that is renamed into place only when everything was written (a failed or interrupted
// run never leaves half a file under the name asked for).
//
// --out naming something that is not a regular file (/dev/null, a FIFO a job reads from)
// is written straight into: a rename would replace the device or the FIFO with a regular
// file (as root, /dev/null itself). --out naming the file this process's stdout or stderr
// already writes to (/dev/stdout, /dev/fd/1 or /proc/self/fd/2, whatever they are
// redirected to) is written through that descriptor, at its offset, so that nothing the
// shell wrote there before or after is truncated or replaced. --out naming a symbolic link
// to a file replaces the file it points to, and the link stays. The temporary file is
// created afresh (O_EXCL, O_NOFOLLOW): never through a link left under its name.
class Output {
 public:
  explicit Output(std::string path) : path_(std::move(path)) {
    if (path_.empty()) {
      file_ = stdout;
      borrowed_ = true;
      return;
    }
    struct stat st {};
    std::string target = path_;
    if (::stat(path_.c_str(), &st) == 0) {
      if (S_ISDIR(st.st_mode)) {
        errno_ = EISDIR;
        return;
      }
      for (int fd : {STDOUT_FILENO, STDERR_FILENO}) {
        struct stat own {};
        if (::fstat(fd, &own) == 0 && own.st_dev == st.st_dev && own.st_ino == st.st_ino) {
          file_ = fd == STDOUT_FILENO ? stdout : stderr;
          borrowed_ = direct_ = true;
          return;
        }
      }
      if (!S_ISREG(st.st_mode)) {
        direct_ = true;
        file_ = std::fopen(path_.c_str(), "wb");
        if (!file_) errno_ = errno;
        return;
      }
      if (char* real = ::realpath(path_.c_str(), nullptr)) {
        target = real;
        std::free(real);
      }
    }
    target_ = target;
    partial_ = target + ".partial";
    ::unlink(partial_.c_str());  // a leftover of a killed run, or a link: gone, not followed
    const int fd = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
      errno_ = errno;
      partial_.clear();  // not ours to remove
      return;
    }
    file_ = ::fdopen(fd, "wb");
    if (!file_) {
      errno_ = errno;
      ::close(fd);
    }
  }
  ~Output() {
    if (!borrowed_ && !committed_) {
      if (file_) std::fclose(file_);
      if (!direct_ && !partial_.empty()) std::remove(partial_.c_str());
    }
  }
  Output(const Output&) = delete;
  Output& operator=(const Output&) = delete;

  const std::string& name() const { return path_.empty() ? kStdout : path_; }
  // Whether the output could be opened at all (Failure() says why not): checked before
  // any input is read, so that a run never translates a whole file for nowhere.
  bool opened() const { return file_ != nullptr; }
  bool Write(std::string_view s) {
    if (!ok_ || !file_) return ok_ = false;
    errno = 0;
    if (std::fwrite(s.data(), 1, s.size(), file_) != s.size()) {
      ok_ = false;
      if (errno_ == 0) errno_ = errno != 0 ? errno : EIO;
    }
    return ok_;
  }
  // "write failed", with the reason when one is known ("write failed: No space left on
  // device", "write failed: Is a directory").
  std::string Failure() const {
    return errno_ != 0 ? std::string("write failed: ") + std::strerror(errno_) : std::string("write failed");
  }
  bool Commit() {
    if (!file_) return false;
    if (borrowed_) {
      errno = 0;
      if (std::fflush(file_) != 0 && errno_ == 0) errno_ = errno != 0 ? errno : EIO;
      committed_ = ok_ && errno_ == 0;
      return committed_;
    }
    errno = 0;
    const bool closed = std::fclose(file_) == 0;
    if (!closed && errno_ == 0) errno_ = errno != 0 ? errno : EIO;
    file_ = nullptr;
    if (direct_) {
      committed_ = ok_ && closed;
      return committed_;
    }
    if (!(ok_ && closed)) return false;
    if (std::rename(partial_.c_str(), target_.c_str()) != 0) {
      errno_ = errno;
      return false;
    }
    committed_ = true;
    return true;
  }

 private:
  inline static const std::string kStdout = "stdout";
  std::string path_, target_, partial_;
  std::FILE* file_ = nullptr;
  bool ok_ = true, committed_ = false;
  bool direct_ = false;    // --out is a device or a FIFO: written in place
  bool borrowed_ = false;  // file_ is stdout or stderr: flushed, never closed
  int errno_ = 0;          // why the output failed, when the system said
};

}  // namespace

bool WriteOutput(const std::string& path, const std::string& data) {
  Output out(path);
  if (out.Write(data) && out.Commit()) return true;
  Error(out.name(), out.Failure());
  return false;
}

Command AddTranslateCommand(CLI::App& root, std::string& mappings_dir) {
  auto* app = root.add_subcommand("translate", "Translate records between SystmOne, CIS and canonical form");
  struct Opts {
    std::string from, to, input = "-", out;
  };
  auto o = std::make_shared<Opts>();
  app->add_option("--from", o->from, "Source system")->required()->check(CLI::IsMember({"systmone", "cis"}));
  app->add_option("--to", o->to, "Target")->required()->check(CLI::IsMember({"systmone", "cis", "canonical"}));
  app->add_option("--out", o->out, "Write to this file instead of stdout");
  app->add_option("input", o->input, "Input file, or - for stdin (default)");
  return {app, [o, &mappings_dir]() -> int {
            auto engine = engine::Engine::Load(mappings_dir);
            const auto& from = engine->adapter(o->from);
            std::string name = o->input == "-" ? "stdin" : o->input;
            if (!InputReadable(o->input)) return kExitFailure;
            // A file or standard input ("-"), streamed: a batch is never held whole.
            Expected<std::unique_ptr<adapters::RecordStream>> stream = from.OpenFile(o->input);
            if (!stream) {
              for (const auto& e : stream.errors()) Error(name, e.path.empty() ? e.problem : e.path + ": " + e.problem);
              return kExitDataErr;
            }
            // Streamed: one record of lookahead decides between a single document and a
            // batch (more than one record in the input, or a SystmOne batch of any size),
            // then each valid record is rendered and written as it comes, so memory stays
            // flat however long the input.
            const bool batch_form = stream.value()->batch();
            Output output(o->out);
            if (!output.opened()) {  // before any input is read: nothing to translate for
              Error(output.name(), output.Failure());
              return kExitFailure;
            }
            // A batch of SystmOne or CIS records has the target's wrapper; canonical has none.
            const adapters::Adapter* wrapper = o->to == "canonical" ? nullptr : &engine->adapter(o->to);
            std::optional<model::CareRecord> first;
            std::string out;
            bool write_failed = false;
            auto write = [&](bool force) {
              if (!write_failed && (force || out.size() >= (std::size_t{1} << 20))) {
                write_failed = !output.Write(out);
                out.clear();
              }
            };
            size_t records = 0, invalid = 0;
            bool opened = false;  // the batch wrapper is written
            bool read_failed = false;
            adapters::StreamRecord rec;
            while (stream.value()->Next(rec)) {
              if (rec.read_failed) {  // the input, not a record: spec 6's "other failure"
                read_failed = true;
                for (const auto& e : rec.tree.errors()) Error(name, e.problem);
                break;
              }
              ++records;
              Expected<model::CareRecord> cr = rec.tree.ok() ? engine->Read(o->from, rec.tree.value(), o->to == "canonical")
                                                             : Expected<model::CareRecord>(rec.tree.errors());
              if (!opened && (records == 2 || (batch_form && cr))) {  // a batch: open it once, then the first record
                opened = true;
                if (wrapper) out += wrapper->BatchBegin();
                if (first) engine->Render(out, *first, o->to, true);
                first.reset();
              }
              auto where = [&] { return RecordPlace(name, rec.index, rec.line); };  // only when there is something to say
              if (!cr) {
                ++invalid;
                for (const auto& e : cr.errors()) Error(where(), FormatError(e));
                continue;
              }
              // Spec 1 and 2: unknown data is reported, never silently dropped. A system's
              // format cannot carry it; the canonical form does (no note needed there).
              if (o->to != "canonical" && !cr.value().unmapped.empty()) {
                const auto& items = cr.value().unmapped;
                constexpr std::size_t kNamed = 10;
                for (std::size_t i = 0; i < items.size() && i < kNamed; ++i)
                  Error(where(), items[i].source_path + ": not carried to " + o->to +
                                   " (no rule maps it; --to canonical keeps it)");
                if (items.size() > kNamed)  // the record keeps kMaxUnmappedItems at most
                  Error(where(), std::string(items.size() >= mapping::kMaxUnmappedItems ? "at least " : "") +
                                   std::to_string(items.size() - kNamed) + " more items not carried to " + o->to);
              }
              if (records == 1 && !opened) {
                first = std::move(cr.value());
                continue;
              }
              engine->Render(out, cr.value(), o->to, true);
              write(false);
            }
            // What was written to stdout stays; a --out file is not published (Output
            // removes its .partial), since the input was not read to the end.
            if (read_failed) return kExitFailure;
            if (records == 0 && !batch_form) {
              Error(name, "no records found");
              return kExitDataErr;
            }
            if (records == 1 && invalid == 1) return kExitDataErr;  // nothing on stdout
            if (records == 0 && wrapper) out += wrapper->BatchBegin();  // an empty batch
            if (records == 1 && !opened) engine->Render(out, *first, o->to, false);
            if ((records > 1 || batch_form) && wrapper) out += wrapper->BatchEnd();
            write(true);
            if (write_failed || !output.Commit()) {
              Error(output.name(), output.Failure());
              return kExitFailure;
            }
            if (invalid > 0) {
              Error(name, std::to_string(invalid) + " of " + std::to_string(records) + " records rejected");
              return kExitDataErr;
            }
            return kExitOk;
          }};
}

}  // namespace caregate::cli
