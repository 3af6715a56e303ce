// QKLab ui — figure export (see figure_export.h).
#include "figure_export.h"

#include <QBuffer>
#include <QFile>
#include <QSaveFile>
#include <algorithm>

#include "fsutil.h"

#include <QFileInfo>
#include <QFontMetrics>
#include <QSvgGenerator>
#include <memory>
#include <qcustomplot.h>

#include "plot_util.h"

namespace qkui {

namespace {

// Whether the file at `path` ends as a complete file of its type does (see the export loop).
bool ends_complete(const QString& path, const QString& suffix) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly) || f.size() < 8) return false;
  f.seek(std::max<qint64>(0, f.size() - 64));
  const QByteArray tail = f.readAll();
  if (suffix == "png") return tail.endsWith(QByteArray::fromHex("49454e44ae426082"));
  if (suffix == "svg") return tail.trimmed().endsWith("</svg>");
  if (suffix == "pdf") return tail.trimmed().endsWith("%%EOF");
  return true;
}

}  // namespace

QSize figure_points(const Figure& f, const ExportOptions& o) {
  const double s = o.png_scale > 0 ? o.png_scale : 1.0;
  return QSize(int(o.size.width() / s + 0.5), int(o.size.height() * f.height_factor / s + 0.5));
}

namespace {

// The title split over as many lines as it needs at the largest font size (11 pt down to 8 pt)
// that lets every line fit `width` points.
QString fit_title(const QString& title, QFont* font, int width, int* widest) {
  QString text = title;
  for (int pt = 12; pt >= 8; --pt) {
    font->setPointSize(pt);
    QFontMetrics fm(*font);
    if (fm.horizontalAdvance(title) <= width) {
      *widest = fm.horizontalAdvance(title);
      return title;
    }
  }
  // Wrap at spaces (font stays at 8 pt).
  QFontMetrics fm(*font);
  QStringList lines;
  QString line;
  for (const QString& word : title.split(' ')) {
    const QString next = line.isEmpty() ? word : line + ' ' + word;
    if (!line.isEmpty() && fm.horizontalAdvance(next) > width) {
      lines << line;
      line = word;
    } else {
      line = next;
    }
  }
  lines << line;
  *widest = 0;
  for (auto& l : lines) {
    if (fm.horizontalAdvance(l) > width) l = fm.elidedText(l, Qt::ElideMiddle, width);  // one unbroken word
    *widest = std::max(*widest, fm.horizontalAdvance(l));
  }
  return lines.join('\n');
}

// A legend in the default axis rect's corner moves into its own row under the plot.
void legend_outside(QCustomPlot* plot) {
  if (!plot->legend || !plot->legend->visible() || !plot->axisRect()) return;
  auto* inset = plot->axisRect()->insetLayout();
  bool inside = false;
  for (int i = 0; i < inset->elementCount(); ++i) inside = inside || inset->elementAt(i) == plot->legend;
  if (!inside) return;
  if (plot->legend->itemCount() == 0) {
    plot->legend->setVisible(false);
    return;
  }
  inset->take(plot->legend);
  const int row = plot->plotLayout()->rowCount();
  plot->plotLayout()->addElement(row, 0, plot->legend);
  plot->plotLayout()->setRowStretchFactor(row, 0.001);
  // As many columns as the widest entry allows across the plot, then rows. The wrap is set before
  // the fill order, whose rearrangement applies it (set after, it left every entry in one row,
  // and long entries were cut off at the figure's edge).
  const QFontMetrics fm(plot->legend->font());
  int widest = 0;
  for (int i = 0; i < plot->legend->itemCount(); ++i)
    if (auto* item = qobject_cast<QCPPlottableLegendItem*>(plot->legend->item(i)))
      widest = std::max(widest, fm.horizontalAdvance(item->plottable()->name()));
  const int entry = widest + plot->legend->iconSize().width() + plot->legend->iconTextPadding() + 24;
  const int columns = std::clamp((plot->width() - 24) / std::max(1, entry), 1, std::max(1, plot->legend->itemCount()));
  plot->legend->setWrap(columns);
  plot->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst, true);
  plot->legend->setBorderPen(Qt::NoPen);
  plot->legend->setBrush(Qt::NoBrush);
}

}  // namespace

QList<ExportResult> export_figure(const Figure& f, const QStringList& paths, const ExportOptions& o) {
  QList<ExportResult> out;
  for (const QString& path : paths) {
    const QString suffix = QFileInfo(path).suffix().toLower();
    if (suffix != "png" && suffix != "pdf" && suffix != "svg") {
      ExportResult bad;
      bad.error = QString("%1: unknown image type '%2' (expected .png, .svg or .pdf)").arg(path, suffix);
      return {bad};
    }
  }
  // Drawn and laid out once; each file is a rendering of the same plot.
  ExportResult laid;
  const QSize pts = figure_points(f, o);
  auto plot = std::make_unique<QCustomPlot>();
  plot->setAttribute(Qt::WA_DontShowOnScreen);
  plot->resize(pts);
  style_plot(plot.get());
  plot->setAntialiasedElements(QCP::aeAll);
  if (f.draw) f.draw(plot.get());
  legend_outside(plot.get());
  // Full title on top.
  QFont tf(plot->font().family(), 12, QFont::Bold);
  // The title sits over the first column; a colour-scale column beside it takes ~90 pt.
  const int avail = pts.width() - 24 - (plot->plotLayout()->columnCount() > 1 ? 90 : 0);
  const QString title = fit_title(f.title, &tf, avail, &laid.title_width);
  auto* title_el = new QCPTextElement(plot.get(), title, tf);
  title_el->setTextColor(plot->palette().color(QPalette::WindowText));
  plot->plotLayout()->insertRow(0);
  plot->plotLayout()->addElement(0, 0, title_el);
  plot->plotLayout()->setRowStretchFactor(0, 0.001);
  laid.plot_width = avail + 24;
  plot->replot(QCustomPlot::rpImmediateRefresh);
  if (plot->legend && plot->legend->visible())
    for (auto* rect : plot->axisRects())
      for (int i = 0; i < plot->legend->itemCount(); ++i) {
        // A wrapped legend's grid has empty cells (6 variants in rows of 4): item() is null there.
        const auto* item = plot->legend->item(i);
        if (item && rect->rect().intersects(item->outerRect())) ++laid.legend_overlaps;
      }
  for (const QString& path : paths) {
    ExportResult res = laid;
    const QString suffix = QFileInfo(path).suffix().toLower();
    bool ok = false;
    QString why;
    // PNG and SVG are made in memory and written by QSaveFile (whole, or not at all: a full disk
    // is an error with the file's name, never a truncated picture nor libpng's own line).
    auto write_bytes = [&](const QByteArray& bytes) {
      QSaveFile file(path);
      if (file.open(QIODevice::WriteOnly) && file.write(bytes) == bytes.size() && file.commit()) return true;
      why = file.errorString();
      return false;
    };
    if (suffix == "png") {
      QBuffer buf;
      buf.open(QIODevice::WriteOnly);
      ok = plot->toPixmap(pts.width(), pts.height(), o.png_scale).save(&buf, "PNG") && write_bytes(buf.data());
      res.image_size = QSize(int(pts.width() * o.png_scale + 0.5), int(pts.height() * o.png_scale + 0.5));
    } else if (suffix == "pdf") {
      ok = plot->savePdf(path, pts.width(), pts.height(), QCP::epNoCosmetic, "QKLab", f.title);
      res.image_size = pts;
    } else {
      QBuffer svg;
      svg.open(QIODevice::WriteOnly);
      QSvgGenerator gen;
      gen.setOutputDevice(&svg);
      gen.setSize(pts);
      gen.setViewBox(QRect(QPoint(0, 0), pts));
      gen.setTitle(f.title);
      gen.setDescription(f.caption);
      QCPPainter painter;
      ok = painter.begin(&gen);
      if (ok) {
        plot->toPainter(&painter, pts.width(), pts.height());
        painter.end();
        ok = write_bytes(svg.data());
      }
      res.image_size = pts;
    }
    // Qt's image, SVG and PDF writers do not all report a short write (a full disk): a file is
    // complete when it ends as its format ends (PNG's IEND chunk, SVG's </svg>, PDF's %%EOF).
    if (ok && !ends_complete(path, suffix)) ok = false;
    if (!ok)
      res.error = QString("%1: could not write the %2 file%3 (%4)")
                      .arg(path, suffix.toUpper(), why.isEmpty() || why == "Unknown error" ? QString() : ": " + why,
                           QString::fromStdString(qk::free_space_text(path.toStdString())));
    out << res;
    if (!ok) break;
  }
  return out;
}

ExportResult export_figure(const Figure& f, const QString& path, const ExportOptions& o) {
  return export_figure(f, QStringList{path}, o).value(0);
}

}  // namespace qkui
