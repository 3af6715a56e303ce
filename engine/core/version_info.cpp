// QKLab engine — LibTorch version string.
#include "version_info.h"

#include <torch/version.h>

namespace qk {
std::string libtorch_version() { return TORCH_VERSION; }
}  // namespace qk
