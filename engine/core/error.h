// QKLab engine — error type.
// Every user-facing failure (bad config, bad file, mismatched checkpoint) throws qk::Error with a
// message that names the file or key and what was expected. The CLI prints it and exits 2; the GUI
// shows it in a message box.
#pragma once
#include <stdexcept>
#include <string>

namespace qk {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace qk
