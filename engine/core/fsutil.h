// QKLab engine — file helpers: atomic writes (temporary file + rename) so that nothing already
// saved is ever half-overwritten, and whole-file reads with errors that name the file.
#pragma once
#include <string>

namespace qk {

// Writes `data` to `path` atomically; throws qk::Error naming the path on failure.
void write_file_atomic(const std::string& path, const std::string& data);
std::string read_file_bytes(const std::string& path, const std::string& what);
void make_dirs(const std::string& path);  // mkdir -p; throws naming the path

}  // namespace qk
