// QKLab engine — versions for the About box (no torch in this header).
#pragma once
#include <string>

namespace qk {
std::string libtorch_version();
}
