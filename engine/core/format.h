// QKLab engine — how numbers and names from files are shown to people (torch-free; the CLI and the GUI share it).
#pragma once
#include <string>

namespace qk {

// "m:ss", or "h:mm:ss" from an hour on; "--:--" for a negative or non-finite time.
std::string format_duration(double seconds);
// Invalid UTF-8 and control bytes as \xNN, the rest as is: safe to put a name read from a file
// into a one-line message (never raw bytes).
std::string escape_name(const std::string& s);

}  // namespace qk
