// Fuzz target: a Hugging Face GPT-2 folder — config.json, then after a NUL byte model.safetensors.
#include "fuzz_common.h"
#include "interchange.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = qkf::parts(data, size, 2);
  qkf::write("config.json", p[0]);
  const std::string model = qkf::write("model.safetensors", p[1]);
  qkf::expect_only_qk_errors([&] { qk::import_hf_gpt2(model); });
  return 0;
}
