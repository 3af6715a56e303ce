// QKLab engine — number formatting (see format.h).
#include "format.h"

#include <cmath>
#include <cstdio>

namespace qk {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0 || s > 1e9) return "--:--";
  const long t = static_cast<long>(s + 0.5);
  char buf[40];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  return buf;
}

}  // namespace qk
