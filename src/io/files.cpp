#include "scorediff/io/files.hpp"

#include <fcntl.h>
#include <zlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "scorediff/core/error.hpp"

namespace scorediff {
namespace {

void fsync_directory(const fs::path& dir) {
  int fd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
}

}  // namespace

AtomicFile::AtomicFile(fs::path path) : path_(std::move(path)) {
  fs::path dir = path_.parent_path();
  std::error_code ec;
  if (!dir.empty() && !fs::is_directory(dir, ec)) fail("cannot write '{}': directory '{}' does not exist", path_.string(), dir.string());
  temp_ = path_;
  temp_ += fmt::format(".tmp-{}", ::getpid());
  fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) fail("cannot write '{}': {}", path_.string(), std::strerror(errno));
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

void AtomicFile::write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd_, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write '{}': {}", path_.string(), std::strerror(errno));
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) fail("cannot write '{}': {}", path_.string(), std::strerror(errno));
  ::close(fd_);
  fd_ = -1;
  if (std::rename(temp_.c_str(), path_.c_str()) != 0) fail("cannot write '{}': {}", path_.string(), std::strerror(errno));
  committed_ = true;
  fsync_directory(path_.parent_path());
}

void write_file_atomic(const fs::path& path, const std::string& bytes) {
  AtomicFile file(path);
  file.write(bytes.data(), bytes.size());
  file.commit();
}

namespace {

void require_readable(const fs::path& path, const std::string& what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) fail("{} '{}' not found", what, path.string());
  if (fs::is_directory(path, ec)) fail("{} '{}' is a directory", what, path.string());
}

class GzFile {
 public:
  explicit GzFile(const fs::path& path) : file_(gzopen(path.c_str(), "rb")) {}
  ~GzFile() {
    if (file_ != nullptr) gzclose(file_);
  }
  GzFile(const GzFile&) = delete;
  GzFile& operator=(const GzFile&) = delete;
  gzFile get() const { return file_; }

 private:
  gzFile file_;
};

}  // namespace

std::string read_maybe_gzipped(const fs::path& path, const std::string& what) {
  require_readable(path, what);
  GzFile file(path);
  if (file.get() == nullptr) fail("cannot read {} '{}': {}", what, path.string(), std::strerror(errno));
  constexpr unsigned kChunk = 1u << 20;
  std::string bytes;
  int status = Z_OK;
  for (;;) {
    const size_t old = bytes.size();
    bytes.resize(old + kChunk);
    const int got = gzread(file.get(), bytes.data() + old, kChunk);
    bytes.resize(old + static_cast<size_t>(std::max(got, 0)));
    std::string message = gzerror(file.get(), &status);
    if (got < 0 || (status != Z_OK && status != Z_STREAM_END)) {
      const std::string prefix = path.string() + ": ";  // zlib names the file itself
      if (message.compare(0, prefix.size(), prefix) == 0) message.erase(0, prefix.size());
      fail("cannot read {} '{}': {}", what, path.string(), status == Z_ERRNO ? std::strerror(errno) : message);
    }
    if (got == 0) return bytes;
  }
}

std::string read_file(const fs::path& path, const std::string& what) {
  require_readable(path, what);
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read {} '{}': {}", what, path.string(), std::strerror(errno));
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

void check_output_file(const fs::path& path) {
  std::error_code ec;
  fs::path dir = path.parent_path();
  if (!dir.empty() && !fs::is_directory(dir, ec))
    fail("cannot write '{}': directory '{}' does not exist", path.string(), dir.string());
  if (fs::is_directory(path, ec)) fail("cannot write '{}': it is a directory", path.string());
  if (::access(dir.empty() ? "." : dir.c_str(), W_OK) != 0)
    fail("cannot write '{}': directory '{}' is not writable", path.string(), dir.empty() ? "." : dir.string());
}

void ensure_output_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create output directory '{}': {}", dir.string(), ec.message());
  if (::access(dir.c_str(), W_OK) != 0) fail("output directory '{}' is not writable", dir.string());
}

}  // namespace scorediff
