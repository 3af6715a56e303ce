// QKLab ui — the exported report: every figure of a ReportData (loss, spectra of every head,
// effective ranks, spectra over training, truncation curve, KL, attention maps of every layer) as
// PNG + SVG + PDF with the CSV behind it, the summary and rank-metrics tables, samples, the config,
// and an index.html that captions every figure. Used by the GUI's "Export report…" and by
// `qklab-cli report` (offscreen). The folder is written beside the target and renamed into place,
// so an earlier report is never left half-overwritten.
#pragma once
#include <QList>
#include <QString>
#include <functional>

#include "figure_export.h"
#include "report_data.h"

namespace qkui {

// The report's figures, in the order index.html shows them.
QList<Figure> report_figures(const qk::ReportData& d);

struct ReportResult {
  QString error;  // "" on success, else one line naming the file
  QList<QPair<QString, ExportResult>> pngs;  // every PNG written (file name, result)
  QStringList files;                         // every file written (relative names)
};

ReportResult write_report(const qk::ReportData& d, const QString& dir, const ExportOptions& opt = {},
                          const std::function<void(int done, int total)>& progress = {});

}  // namespace qkui
