// QKLab ui — shared plot helpers: palette-aware styling (light/dark), variant colours, heatmaps,
// atomic text files and CSV → JSON.
#pragma once
#include <QColor>
#include <QList>
#include <QString>
#include <string>

class QCustomPlot;
class QCPAxisRect;
class QCPColorMap;
class QCPColorGradient;
class QWidget;

namespace qkui {

QColor variant_color(const QString& variant);
QCustomPlot* make_plot(QWidget* parent, const QString& xlabel, const QString& ylabel);
void style_plot(QCustomPlot* plot);  // follows the application palette (light or dark)
void style_axes(QCPAxisRect* rect);  // one axis rect's axes, as style_plot does the main one
// Blue (negative) – white (0) – red (positive), for differences.
QCPColorGradient diverging_gradient();
// A colour map filling the plot, with a colour scale on the right; range fixed when lo < hi.
QCPColorMap* make_heatmap(QCustomPlot* plot, bool diverging, double lo, double hi);

// The plot's own legend shown, in the palette's colours.
void show_legend(QCustomPlot* plot);
// A CSV cell for free text: quoted, inner quotes doubled (RFC 4180).
QString csv_quoted(const std::string& s);

// Writes text atomically (QSaveFile); returns "" or an error naming the file.
QString save_text(const QString& path, const QString& text);
// Removes a folder and everything in it; true when it is gone (or was never there).
bool remove_dir(const QString& path);
// A report finished in `tmp` replaces `target`: the earlier one moves aside and is removed only
// once the new one is in place (restored if that fails). Returns "" or one line naming target;
// on failure `tmp` is removed.
QString move_report_into_place(const QString& tmp, const QString& target);

// CSV text (header + rows, RFC 4180 quoting) as a JSON array of objects, one per row.
QString csv_to_json(const QString& csv);

}  // namespace qkui
