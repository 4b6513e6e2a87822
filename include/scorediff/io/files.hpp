// File helpers: atomic writes (temporary file, fsync, rename) so nothing already written is lost,
// and reads that fail with one line naming the file.
#pragma once
#include <filesystem>
#include <string>

namespace scorediff {

namespace fs = std::filesystem;

// Collects the bytes of a file and publishes them at `path` only on commit(); a writer that throws
// leaves no partial file behind. Also usable by libraries that insist on writing a file themselves
// (PLplot): let them write temp_path(), then commit().
class AtomicFile {
 public:
  explicit AtomicFile(fs::path path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  const fs::path& temp_path() const { return temp_; }
  void write(const void* data, size_t size);
  void commit();  // fsync the temporary file, rename it over `path`, fsync the directory

 private:
  fs::path path_, temp_;
  int fd_ = -1;
  bool committed_ = false;
};

void write_file_atomic(const fs::path& path, const std::string& bytes);
std::string read_file(const fs::path& path, const std::string& what = "file");
// The whole content of a gzipped or plain file (zlib tells them apart); a corrupt or cut-off stream
// fails with one line naming the file.
std::string read_maybe_gzipped(const fs::path& path, const std::string& what = "file");

// Checks, before any work is done, that a file can be written at `path`: its directory exists and is
// writable and `path` is not a directory.
void check_output_file(const fs::path& path);

// Creates `dir` (and parents) and checks it is writable, or fails naming it.
void ensure_output_dir(const fs::path& dir);

}  // namespace scorediff
