// QKLab engine — how numbers are shown to people (torch-free; the CLI and the GUI share it).
#pragma once
#include <string>

namespace qk {

// "m:ss", or "h:mm:ss" from an hour on; "--:--" for a negative or non-finite time.
std::string format_duration(double seconds);

}  // namespace qk
