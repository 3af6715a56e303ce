// Fuzz target: a run folder's files — config.json, metrics.csv, divergence.csv,
// spectra_history.csv and state/state.json, NUL-separated — through read_run and the state reader.
#include <filesystem>

#include "fuzz_common.h"
#include "run_dir.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = qkf::parts(data, size, 5);
  const std::string dir = qkf::scratch() + "/run";
  std::filesystem::create_directories(dir + "/state");
  const char* names[] = {"run/config.json", "run/metrics.csv", "run/divergence.csv", "run/spectra_history.csv",
                         "run/state/state.json"};
  for (int i = 0; i < 5; ++i) qkf::write(names[i], p[i]);
  qkf::expect_only_qk_errors([&] {
    qk::read_run(dir);
    qk::run_state_step(dir);
  });
  return 0;
}
