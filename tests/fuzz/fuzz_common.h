// QKLab fuzz targets — shared: inputs that name files are written to a private temp folder, and
// every target accepts exactly one outcome besides success: a qk::Error (one clear line). Any
// other exception, a crash, a leak of raw bytes into a message or a sanitizer report is a finding.
#pragma once
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <cstdio>
#include <vector>

#include "error.h"
#include "format.h"

namespace qkf {

inline const std::string& scratch() {
  static const std::string dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("qklab-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    // Removed when the fuzzer exits normally (a crash keeps it, with the input that caused it).
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(std::filesystem::temp_directory_path() / ("qklab-fuzz-" + std::to_string(::getpid())), ec);
    });
    return d.string();
  }();
  return dir;
}

inline std::string write(const std::string& name, const std::string& bytes) {
  const std::string path = scratch() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

// Splits the input at the first occurrences of a separator byte into up to n parts.
inline std::vector<std::string> parts(const uint8_t* data, size_t size, size_t n, char sep = '\0') {
  std::vector<std::string> out;
  std::string cur;
  for (size_t i = 0; i < size; ++i) {
    if (static_cast<char>(data[i]) == sep && out.size() + 1 < n) {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += static_cast<char>(data[i]);
    }
  }
  out.push_back(cur);
  while (out.size() < n) out.emplace_back();
  return out;
}

// A message must be one line of UTF-8 without control bytes (what escape_name leaves unchanged).
inline void check_message(const qk::Error& e) {
  const std::string m = e.what();
  if (qk::escape_name(m) != m) {
    std::fprintf(stderr, "qk::Error message with raw bytes: %s\n", qk::escape_name(m).c_str());
    std::abort();
  }
}

// Runs `f`; a qk::Error (with a clean message) is an accepted answer, anything else propagates.
template <class F> void expect_only_qk_errors(F&& f) {
  try {
    f();
  } catch (const qk::Error& e) {
    check_message(e);
  }
}

}  // namespace qkf
