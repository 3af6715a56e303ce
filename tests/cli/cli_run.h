// QKLab tests — runs qklab-cli as a user would (a shell command) and captures its exit code,
// stdout and stderr; shared by the CLI tests.
#pragma once
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace qkt {

struct CliResult {
  int code;
  std::string out, err;
};

inline std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `args` after qklab-cli; stdout/stderr go through files in `dir`.
inline CliResult cli(const std::string& args, const std::string& dir) {
  const std::string o = dir + "/stdout.txt", e = dir + "/stderr.txt";
  std::string cmd = std::string(QKLAB_CLI) + " " + args + " > " + o + " 2> " + e;
  int rc = std::system(cmd.c_str());
  return {WEXITSTATUS(rc), slurp(o), slurp(e)};
}

inline bool exists(const std::string& p) { return std::filesystem::exists(p); }

}  // namespace qkt
