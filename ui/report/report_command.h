// QKLab ui — `qklab-cli report RUN_DIR --out DIR`: the GUI's report, rendered headless from a run
// folder (Qt's offscreen platform; no display needed). Lives in ui/ because drawing needs Qt;
// qklab-cli links it when the GUI is built.
#pragma once
#include <iosfwd>
#include <string>

namespace qkui {

struct ReportCommandOptions {
  std::string run_dir;
  std::string out_dir;  // default RUN_DIR/report
  std::string prompt;   // attention prompt (text), or validation sequence number (tasks)
  int seed = -1;        // the seed whose checkpoints are analysed (-1: the first)
  int width = 1600, height = 1000;  // PNG pixels
  double scale = 2.0;               // pixels per point
};

// Returns the exit code; user errors throw qk::Error (one line).
int cmd_report(const ReportCommandOptions& o, std::ostream& out, std::ostream& err);

}  // namespace qkui
