// QKLab tests — shared helpers: small configs, max-abs-diff, temp folders, data-folder lookup, the
// reference python3, a scoped environment variable.
#pragma once
#include <torch/torch.h>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "config.h"

namespace qkt {

inline qk::ModelConfig tiny_model(const std::string& dtype = "float32") {
  qk::ModelConfig m;
  m.vocab_size = 23;
  m.context_length = 8;
  m.emb_dim = 16;
  m.n_heads = 4;
  m.n_layers = 2;
  m.drop_rate = 0.0;
  m.dtype = dtype;
  return m;
}

inline double maxdiff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// Folders made by temp_dir(), removed when the test process exits (the book test alone writes
// 2.5 GB; left behind, a few CI runs fill the disk). QKLAB_KEEP_TEST_DIRS=1 keeps them for debugging.
struct TempDirs {
  std::vector<std::filesystem::path> dirs;
  ~TempDirs() {
    const char* keep = std::getenv("QKLAB_KEEP_TEST_DIRS");
    if (keep && std::string(keep) == "1") return;
    std::error_code ec;
    for (const auto& d : dirs) std::filesystem::remove_all(d, ec);
  }
};
inline TempDirs& temp_dirs() {
  static TempDirs t;
  return t;
}

// A fresh empty folder under the system temp dir, removed at exit.
inline std::string temp_dir(const std::string& tag) {
  auto p = std::filesystem::temp_directory_path() /
           ("qklab-test-" + tag + "-" + std::to_string(std::rand()) + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  temp_dirs().dirs.push_back(p);
  return p.string();
}

// ../shared/data (the-verdict.txt, GPT-2 files) from QKLAB_DATA_DIR; "" when the variable is unset.
// When it is set, the files must be there (CI meant to run these tests): a missing file fails.
inline std::string data_dir() {
  const char* env = std::getenv("QKLAB_DATA_DIR");
  std::string d = env ? env : "";
  if (d.empty()) return "";
  for (const char* f : {"the-verdict.txt", "gpt2-encoder.json", "gpt2-vocab.bpe"})
    if (!std::filesystem::exists(d + "/" + f))
      throw std::runtime_error("QKLAB_DATA_DIR=" + d + " is set but lacks " + f);
  return d;
}

// The python3 that has torch, for the reference scripts: Debian's (python3-torch), or QKLAB_PYTHON
// (a GPU machine's venv, tools/gpu/check.sh).
inline std::string reference_python() {
  const char* p = std::getenv("QKLAB_PYTHON");
  return p && *p ? p : "/usr/bin/python3";
}

// Sets an environment variable for one scope (unsets it when `value` is null) and restores it; child
// processes started in the scope inherit it.
struct EnvGuard {
  std::string name;
  std::optional<std::string> saved;
  EnvGuard(const char* n, const char* value) : name(n) {
    if (const char* v = std::getenv(n)) saved = v;
    if (value) setenv(n, value, 1);
    else unsetenv(n);
  }
  ~EnvGuard() {
    if (saved) setenv(name.c_str(), saved->c_str(), 1);
    else unsetenv(name.c_str());
  }
};

}  // namespace qkt

// In a test that needs ../shared/data: binds `name` to the folder, or reports the test skipped.
#define QKT_DATA_DIR_OR_SKIP(name)                                              \
  const std::string name = qkt::data_dir();                                     \
  if (name.empty()) {                                                           \
    WARN("QKLAB_DATA_DIR not set: skipped (set it to ../shared/data to run this test)"); \
    SUCCEED();                                                                  \
    return;                                                                     \
  }
