// QKLab ui — writing a Figure to a file (PNG, SVG or PDF by suffix) at a size of its own: the
// figure is drawn into a fresh off-screen plot (never the on-screen widget), its full title goes
// on top (the font shrinks, then the title wraps, until it fits), and a legend that would sit in
// the plot's corner is moved into a row below the axes, where it covers no data.
#pragma once
#include <QList>
#include <QSize>
#include <QStringList>
#include <QString>

#include "figures.h"

namespace qkui {

struct ExportOptions {
  QSize size{1600, 1000};   // PNG size in pixels (the default figure; grids scale the height)
  double png_scale = 2.0;   // device pixels per point: the figure is laid out at size / scale
};

struct ExportResult {
  QString error;           // "" on success, else one line naming the file
  QSize image_size;        // PNG: pixels; SVG/PDF: points
  int title_width = 0;     // widest line of the title as drawn, in points
  int plot_width = 0;      // the figure's width in points
  int legend_overlaps = 0; // legend items drawn inside an axis rect (0: none covers data)
};

// The figure's layout size in points for these options.
QSize figure_points(const Figure& f, const ExportOptions& o);
ExportResult export_figure(const Figure& f, const QString& path, const ExportOptions& o = {});
// The figure drawn once and written to every path (e.g. .png, .svg, .pdf): one result per file
// written, ending at the first error.
QList<ExportResult> export_figure(const Figure& f, const QStringList& paths, const ExportOptions& o = {});

}  // namespace qkui
