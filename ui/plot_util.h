// QKLab ui — shared plot helpers: palette-aware styling (light/dark), variant colours, heatmaps,
// and the Exportable record every view offers for PNG/SVG/PDF + CSV exports and the report.
#pragma once
#include <QColor>
#include <QList>
#include <QString>
#include <functional>

class QCustomPlot;
class QCPColorMap;
class QWidget;

namespace qkui {

QColor variant_color(const QString& variant);
QCustomPlot* make_plot(QWidget* parent, const QString& xlabel, const QString& ylabel);
void style_plot(QCustomPlot* plot);  // follows the application palette (light or dark)
// A colour map filling the plot, with a colour scale on the right; range fixed when lo < hi.
QCPColorMap* make_heatmap(QCustomPlot* plot, bool diverging, double lo, double hi);

// Writes text atomically (QSaveFile); returns "" or an error naming the file.
QString save_text(const QString& path, const QString& text);

struct Exportable {
  QString name;        // file stem, e.g. "loss"
  QString title;       // shown in the picture
  QCustomPlot* plot = nullptr;
  std::function<QString()> csv;  // the data behind the plot, header first
  QString write_csv(const QString& path) const { return save_text(path, csv()); }  // "" or the error
};

// CSV text (header + rows, RFC 4180 quoting) as a JSON array of objects, one per row.
QString csv_to_json(const QString& csv);

}  // namespace qkui
