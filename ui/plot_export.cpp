// QKLab ui — plot exports (see plot_export.h).
#include "plot_export.h"

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

QString export_loss_csv(const LossPlot& plot, const QString& path) {
  QSaveFile f(path);  // temporary file + rename on commit
  if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) return QString("%1: cannot write").arg(path);
  QTextStream out(&f);
  out << "step,tokens_seen,wall_time_s,variant,train_loss,val_loss,train_acc,val_acc\n";
  auto num = [](double v) { return std::isnan(v) ? QString() : QString::number(v, 'g', 9); };
  for (auto it = plot.data().begin(); it != plot.data().end(); ++it)
    for (const auto& r : it.value())
      out << r.step << "," << r.tokens_seen << "," << num(r.wall_time_s) << "," << it.key() << ","
          << num(r.train_loss) << "," << num(r.val_loss) << "," << num(r.train_acc) << ","
          << num(r.val_acc) << "\n";
  out.flush();
  return f.commit() ? QString() : QString("%1: write failed").arg(path);
}

}  // namespace qkui
