// QKLab GUI — the OpenMP wait policy of a process that trains beside a GUI thread.
// LibTorch's intra-op threads (GNU OpenMP) spin-wait between parallel regions by default. In the
// GUI the training worker runs them on every core while the GUI thread paints, so one of them is
// always descheduled; a spinning barrier then waits for it a whole time slice. Measured on this
// 2-core machine, two default runs at once: 25.5 s each spinning, 8.3 s each with passive waiting
// (one run alone: 5.6 s vs 6.5 s). libgomp reads OMP_WAIT_POLICY once, when it is loaded, so the
// GUI (and its tests) re-execute themselves with OMP_WAIT_POLICY=PASSIVE first, unless the user
// set a policy. The CLI keeps the default (its runs own the cores).
#pragma once
#include <unistd.h>

#include <cstdlib>

namespace qkui {

// Call first thing in main(); returns only when the policy is set (or the re-exec failed).
inline void ensure_passive_openmp(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  ::setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
  ::execv("/proc/self/exe", argv);  // returns only on failure: then go on with the default policy
}

}  // namespace qkui
