// QKLab engine — file helpers: atomic writes (temporary file + rename) so that nothing already
// saved is ever half-overwritten, and whole-file reads with errors that name the file.
#pragma once
#include <string>

namespace qk {

// Writes `data` to `path` atomically; throws qk::Error naming the path on failure.
void write_file_atomic(const std::string& path, const std::string& data);
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
