// Fuzz target: a .pth file (zip + pickle) through the state_dict unpickler.
#include "fuzz_common.h"
#include "pth_reader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = qkf::write("in.pth", std::string(reinterpret_cast<const char*>(data), size));
  qkf::expect_only_qk_errors([&] { qk::read_torch_state_dict(path); });
  return 0;
}
