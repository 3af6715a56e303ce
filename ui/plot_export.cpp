// QKLab ui — plot exports (see plot_export.h).
#include "plot_export.h"

#include <QDir>
#include <QFileInfo>
#include <QSaveFile>
#include <QSvgGenerator>
#include <QTextStream>
#include <qcustomplot.h>

namespace qkui {

QString export_plot(QCustomPlot* plot, const QString& path, const QString& title) {
  const QString suffix = QFileInfo(path).suffix().toLower();
  // A title row for the exported picture only.
  auto* titleEl = new QCPTextElement(plot, title, QFont(plot->font().family(), 11, QFont::Bold));
  plot->plotLayout()->insertRow(0);
  plot->plotLayout()->addElement(0, 0, titleEl);
  bool ok = false;
  const int w = plot->width() > 0 ? plot->width() : 800, h = plot->height() > 0 ? plot->height() : 500;
  if (suffix == "png") {
    ok = plot->savePng(path, w, h, 2.0);
  } else if (suffix == "pdf") {
    ok = plot->savePdf(path, w, h);
  } else if (suffix == "svg") {
    QSvgGenerator gen;
    gen.setFileName(path);
    gen.setSize(QSize(w, h));
    gen.setViewBox(QRect(0, 0, w, h));
    gen.setTitle(title);
    QCPPainter painter;
    ok = painter.begin(&gen);
    if (ok) {
      plot->toPainter(&painter, w, h);
      painter.end();
    }
  }
  plot->plotLayout()->remove(titleEl);
  plot->plotLayout()->simplify();
  plot->replot();
  if (suffix != "png" && suffix != "pdf" && suffix != "svg")
    return QString("%1: unknown image type '%2' (expected .png, .svg or .pdf)").arg(path, suffix);
  return ok ? QString() : QString("%1: could not write the %2 file").arg(path, suffix.toUpper());
}

QString export_report(const QString& dir, const QList<Exportable>& items, const QString& config_json,
                      const QString& summary_html) {
  if (!QDir().mkpath(dir)) return QString("%1: cannot create the report folder").arg(dir);
  QString html = "<!DOCTYPE html><html><head><meta charset='utf-8'><title>QKLab report</title>"
                 "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}img{max-width:100%;"
                 "border:1px solid #ccc}figure{margin:2em 0}</style></head><body><h1>QKLab report</h1>" +
                 summary_html;
  for (const auto& item : items) {
    for (const char* ext : {"png", "svg", "pdf"}) {
      QString err = export_plot(item.plot, dir + "/" + item.name + "." + ext, item.title);
      if (!err.isEmpty()) return err;
    }
    QString err = item.write_csv(dir + "/" + item.name + ".csv");
    if (!err.isEmpty()) return err;
    html += QString("<figure><h2>%1</h2><img src='%2.png'><figcaption><a href='%2.svg'>SVG</a> · "
                    "<a href='%2.pdf'>PDF</a> · <a href='%2.csv'>data (CSV)</a></figcaption></figure>")
                .arg(item.title.toHtmlEscaped(), item.name);
  }
  html += "<h2>Configuration</h2><pre>" + config_json.toHtmlEscaped() + "</pre></body></html>\n";
  QString err = save_text(dir + "/config.json", config_json + "\n");
  if (!err.isEmpty()) return err;
  return save_text(dir + "/index.html", html);
}

}  // namespace qkui
