// QKLab engine — file helpers: atomic writes (temporary file + rename) so that nothing already
// saved is ever half-overwritten, and whole-file reads with errors that name the file.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace qk {

// Writes `data` to `path` atomically (a temporary file, fsync, rename); throws qk::Error naming the
// path on failure — a full disk with the space left: "PATH: write failed: No space left on device
// (12 kB free on its file system)" — and the file that was there stays as it was.
void write_file_atomic(const std::string& path, const std::string& data);

// A file written piece by piece and put in place whole: the bytes go to PATH.partial, commit()
// flushes, fsyncs and renames it over PATH; destroyed uncommitted (an error, a stop), the partial
// file is removed and PATH is untouched. Errors as write_file_atomic's.
class AtomicFileWriter {
 public:
  explicit AtomicFileWriter(const std::string& path);
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;
  void write(const void* data, size_t n);
  void sync();    // every byte on the disk (flush, fsync, close): the step that meets a full disk
  void commit();  // sync, then rename over PATH
  int64_t bytes() const { return bytes_; }
  const std::string& path() const { return path_; }

 private:
  void flush();
  std::string path_, tmp_;
  int fd_ = -1;
  std::string buf_;
  int64_t bytes_ = 0;
  bool synced_ = false, committed_ = false;
};

// "12 kB free on its file system" for the file system holding `path` (or its folder).
std::string free_space_text(const std::string& path);
// CRC-32 of a buffer, continuing from `crc` (zlib's crc32, the checksum of gzip and zip).
uint32_t crc32_of(const void* data, size_t n, uint32_t crc = 0);
std::string crc32_hex(uint32_t crc);  // 8 lowercase hex digits
std::string read_file_bytes(const std::string& path, const std::string& what);
void make_dirs(const std::string& path);  // mkdir -p; throws naming the path

// One writer per run or sweep folder: an exclusive flock on DIR/.qklab.lock, held while the object
// lives. A second writer is refused at once with one line naming the owner's process id and
// command. The kernel drops the lock when its process ends — killed with -9 too — so a stale lock
// file is taken over by the next writer; the descriptor is close-on-exec, so child processes (a
// sweep's runs) do not keep their parent's lock alive.
class FolderLock {
 public:
  explicit FolderLock(const std::string& dir);  // throws qk::Error naming the folder and the owner
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace qk
