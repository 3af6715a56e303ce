// QKLab engine — error type.
// Every user-facing failure (bad config, bad file, mismatched checkpoint) throws qk::Error with a
// message that names the file or key and what was expected. The CLI prints it and exits 2; the GUI
// shows it in a message box. The message is made safe here, in one place: bytes that are not
// UTF-8 and control characters (a newline too) appear escaped as \xNN, and a message quoting a huge
// line from a file is cut to 1,000 characters — whatever a corrupt file holds.
#pragma once
#include <stdexcept>
#include <string>

#include "format.h"

namespace qk {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(safe(what)) {}

 private:
  static std::string safe(const std::string& what) {
    std::string s = escape_name(what);
    if (s.size() > 1000) {
      size_t cut = 1000;
      while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a code point
      s = s.substr(0, cut) + "… (" + std::to_string(what.size()) + " characters)";
    }
    return s;
  }
};

}  // namespace qk
