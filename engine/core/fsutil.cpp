// QKLab engine — atomic file writes and reads.
#include "fsutil.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "error.h"

namespace qk {

namespace fs = std::filesystem;

std::string free_space_text(const std::string& path) {
  std::error_code ec;
  fs::path p(path);
  while (!p.empty() && !fs::exists(p, ec)) p = p.parent_path();
  const auto sp = fs::space(p.empty() ? fs::path(".") : p, ec);
  if (ec) return "free space unknown";
  const double b = static_cast<double>(sp.available);
  char buf[64];
  if (b < 1e6) std::snprintf(buf, sizeof buf, "%.0f kB", b / 1e3);
  else if (b < 1e9) std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  else std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  return std::string(buf) + " free on its file system";
}

uint32_t crc32_of(const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {  // zlib takes uInt lengths
    const uInt part = static_cast<uInt>(std::min<size_t>(n, size_t{1} << 30));
    crc = static_cast<uint32_t>(::crc32(crc, p, part));
    p += part;
    n -= part;
  }
  return crc;
}

std::string crc32_hex(uint32_t crc) {
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", crc);
  return hex;
}

namespace {

[[noreturn]] void write_failed(const std::string& path, int why) {
  std::string msg = path + ": write failed: " + std::strerror(why);
  if (why == ENOSPC || why == EDQUOT || why == EFBIG) msg += " (" + free_space_text(path) + ")";
  throw Error(msg + "; the previous file, if any, is kept");
}

}  // namespace

AtomicFileWriter::AtomicFileWriter(const std::string& path)
    : path_(path), tmp_(path + ".partial." + std::to_string(::getpid())) {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    const int why = errno;
    if (why == ENOSPC || why == EDQUOT) write_failed(path_, why);
    throw Error(path + ": cannot write (" + std::strerror(why) + ")");
  }
}

AtomicFileWriter::~AtomicFileWriter() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t n) {
  buf_.append(static_cast<const char*>(data), n);
  bytes_ += static_cast<int64_t>(n);
  if (buf_.size() >= (size_t{4} << 20)) flush();
}

void AtomicFileWriter::flush() {
  size_t done = 0;
  while (done < buf_.size()) {
    const ssize_t w = ::write(fd_, buf_.data() + done, buf_.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int why = w < 0 ? errno : ENOSPC;
      ::close(fd_);
      fd_ = -1;
      ::unlink(tmp_.c_str());
      write_failed(path_, why);
    }
    done += static_cast<size_t>(w);
  }
  buf_.clear();
}

void AtomicFileWriter::sync() {
  if (synced_) return;
  flush();
  int why = 0;
  if (::fsync(fd_) != 0) why = errno;  // delayed allocation: a full disk may show only here
  if (::close(fd_) != 0 && why == 0) why = errno;
  fd_ = -1;
  if (why != 0) {
    ::unlink(tmp_.c_str());
    write_failed(path_, why);
  }
  synced_ = true;
}

void AtomicFileWriter::commit() {
  sync();
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int why = errno;
    ::unlink(tmp_.c_str());
    throw Error(path_ + ": cannot replace the file (" + std::strerror(why) + ")");
  }
  committed_ = true;
}

void write_file_atomic(const std::string& path, const std::string& data) {
  AtomicFileWriter w(path);
  w.write(data.data(), data.size());
  w.commit();
}

std::string read_file_bytes(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open " + what);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void make_dirs(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) throw Error(path + ": cannot create directory: " + ec.message());
}

namespace {

// This process's command line, spaces between the arguments (for the lock file).
std::string own_command() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (auto& c : raw)
    if (c == '\0') c = ' ';
  while (!raw.empty() && raw.back() == ' ') raw.pop_back();
  return raw.size() > 300 ? raw.substr(0, 300) + "…" : raw;
}

}  // namespace

FolderLock::FolderLock(const std::string& dir) {
  const std::string path = dir + "/.qklab.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw Error(path + ": cannot create the folder's lock file (" + std::strerror(errno) + ")");
  if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const int why = errno;
    std::string owner = read_file_bytes(path, "lock file");
    while (!owner.empty() && (owner.back() == '\n' || owner.back() == ' ')) owner.pop_back();
    ::close(fd_);
    fd_ = -1;
    if (why != EWOULDBLOCK) throw Error(path + ": cannot lock the folder (" + std::strerror(why) + ")");
    throw Error(dir + ": in use by " + (owner.empty() ? std::string("another process") : owner) +
                "; wait for it to end or stop it (a killed process's lock goes with it)");
  }
  // Ours: record who holds it (the file is only read by a refused writer).
  const std::time_t now = std::time(nullptr);
  char when[32];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  const std::string who = "process " + std::to_string(::getpid()) + " (" + own_command() + ", since " + when + ")\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, who.data(), who.size(), 0) != static_cast<ssize_t>(who.size())) {
    // The lock itself holds; only the owner's description could not be written (disk full).
  }
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);  // closing releases the lock
}

}  // namespace qk
