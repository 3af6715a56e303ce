// QKLab ui — the report of a sweep folder (`qklab-cli report SWEEP_DIR`): the Sweep view's plot for
// each metric (final and best validation loss and accuracy, steps to the target loss) against the
// first swept key, as PNG + SVG + PDF with the points as CSV, the aggregate table and an index.html.
// Written beside the target and renamed into place, as the run report.
#pragma once
#include <QString>

#include "figure_export.h"

namespace qkui {

struct SweepReportResult {
  QString error;      // "" or one line naming the file
  QStringList files;  // relative names written
  int runs = 0, finished = 0;
};
SweepReportResult write_sweep_report(const QString& sweep_dir, const QString& out_dir, const ExportOptions& opt = {});
// A study folder (study.h): each stage with a finished run as a sweep report in OUT/STAGE, and
// OUT/index.html with the stages and the tuned values (tuned.csv). runs/finished: over all stages.
SweepReportResult write_study_report(const QString& study_dir, const QString& out_dir, const ExportOptions& opt = {});

}  // namespace qkui
