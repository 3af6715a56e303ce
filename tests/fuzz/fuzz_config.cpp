// Fuzz target: an experiment config (JSON text, then after the first NUL byte a --set override):
// parse, read into the config, apply the override, validate, list the keys.
#include <nlohmann/json.hpp>

#include "config.h"
#include "fuzz_common.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = qkf::parts(data, size, 2);
  qkf::expect_only_qk_errors([&] {
    auto cfg = qk::config_from_json(qk::parse_json(p[0], "fuzz.json"), "fuzz.json");
    if (!p[1].empty()) qk::apply_override(cfg, p[1]);
    qk::validate_config(cfg, "fuzz.json");
    qk::config_keys(cfg);
    qk::config_from_json(qk::config_to_json(cfg), "round trip");
  });
  return 0;
}
