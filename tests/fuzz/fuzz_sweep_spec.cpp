// Fuzz target: a sweep spec (JSON text): parse, expand into runs (validating every run's config,
// budget matching included), and the run folder names.
#include "fuzz_common.h"
#include "sweep.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = qkf::parts(data, size, 1);
  qkf::expect_only_qk_errors([&] {
    const auto spec = qk::parse_sweep_spec(p[0], "fuzz-sweep.json");
    for (const auto& r : qk::expand_sweep(spec)) (void)qk::sweep_run_dir("/nonexistent", r);
  });
  return 0;
}
