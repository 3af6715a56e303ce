// Fuzz target: a checkpoint file — the safetensors reader, then (when it parses) the checkpoint
// loader's metadata, config and weight checks.
#include "checkpoint.h"
#include "fuzz_common.h"
#include "safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = qkf::write("in.safetensors", std::string(reinterpret_cast<const char*>(data), size));
  qkf::expect_only_qk_errors([&] {
    qk::load_safetensors(path);
    qk::load_model(path);
  });
  return 0;
}
