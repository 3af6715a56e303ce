// QKLab ui — exporting plots (PNG, SVG, PDF by file suffix) with a title, the data behind them
// (CSV), and the "Export report" folder: every plot, its data, the config and an HTML summary.
#pragma once
#include <QList>
#include <QString>

#include "plot_util.h"

class QCustomPlot;

namespace qkui {

// Returns an empty string on success, else a message naming the file.
QString export_plot(QCustomPlot* plot, const QString& path, const QString& title);
// Writes <dir>/<name>.png/.svg/.pdf/.csv for each exportable, config.json, and index.html.
QString export_report(const QString& dir, const QList<Exportable>& items, const QString& config_json,
                      const QString& summary_html);

}  // namespace qkui
