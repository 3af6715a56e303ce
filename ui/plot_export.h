// QKLab ui — exporting plots (PNG, SVG, PDF by file suffix) and their data (CSV).
#pragma once
#include <QString>

#include "loss_plot.h"

class QCustomPlot;

namespace qkui {

// Returns an empty string on success, else a message naming the file.
QString export_plot(QCustomPlot* plot, const QString& path, const QString& title);
QString export_loss_csv(const LossPlot& plot, const QString& path);

}  // namespace qkui
