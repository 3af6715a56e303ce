// QKLab ui — plot helpers (see plot_util.h).
#include "plot_util.h"

#include "fsutil.h"

#include <QApplication>
#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QPalette>
#include <QSaveFile>
#include <cstring>
#include <qcustomplot.h>

#include "run_dir.h"
#include "variants.h"

namespace qkui {

QColor variant_color(const QString& variant) {
  // The longest variant name the label starts with ("merged (S_h)", "merged-seed124", …).
  const qk::VariantInfo* best = nullptr;
  for (const auto& v : qk::all_variants())
    if (variant.startsWith(QLatin1String(v.name)) && (!best || std::strlen(v.name) > std::strlen(best->name))) best = &v;
  return best ? QColor(QString::fromLatin1(best->color)) : QColor(44, 160, 44);
}

void style_axes(QCPAxisRect* rect) {
  const QColor fg = QApplication::palette().color(QPalette::WindowText);
  for (auto* axis : rect->axes()) {
    axis->setBasePen(QPen(fg));
    axis->setTickPen(QPen(fg));
    axis->setSubTickPen(QPen(fg));
    axis->setTickLabelColor(fg);
    axis->setLabelColor(fg);
    axis->grid()->setPen(QPen(QColor(fg.red(), fg.green(), fg.blue(), 40), 1, Qt::DotLine));
  }
}

void style_plot(QCustomPlot* plot) {
  const QPalette pal = QApplication::palette();
  const QColor fg = pal.color(QPalette::WindowText), bg = pal.color(QPalette::Base);
  plot->setBackground(bg);
  style_axes(plot->axisRect());
  plot->legend->setBrush(bg);
  plot->legend->setTextColor(fg);
  plot->legend->setBorderPen(QPen(fg));
}

QCustomPlot* make_plot(QWidget* parent, const QString& xlabel, const QString& ylabel) {
  auto* p = new QCustomPlot(parent);
  p->xAxis->setLabel(xlabel);
  p->yAxis->setLabel(ylabel);
  p->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom | QCP::iSelectLegend);
  p->setMinimumSize(200, 160);
  style_plot(p);
  return p;
}

QCPColorGradient diverging_gradient() {
  QCPColorGradient g;
  g.setColorStopAt(0.0, QColor(33, 102, 172));
  g.setColorStopAt(0.25, QColor(103, 169, 207));
  g.setColorStopAt(0.5, QColor(247, 247, 247));
  g.setColorStopAt(0.75, QColor(239, 138, 98));
  g.setColorStopAt(1.0, QColor(178, 24, 43));
  g.setLevelCount(64);
  return g;
}

QCPColorMap* make_heatmap(QCustomPlot* plot, bool diverging, double lo, double hi) {
  plot->setInteractions(QCP::Interactions());
  auto* map = new QCPColorMap(plot->xAxis, plot->yAxis);
  auto* scale = new QCPColorScale(plot);
  plot->plotLayout()->addElement(0, 1, scale);
  scale->setType(QCPAxis::atRight);
  map->setColorScale(scale);
  map->setGradient(diverging ? diverging_gradient() : QCPColorGradient(QCPColorGradient::gpThermal));
  map->setInterpolate(false);
  if (lo < hi) map->setDataRange(QCPRange(lo, hi));
  auto* group = new QCPMarginGroup(plot);
  plot->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  scale->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  plot->yAxis->setRangeReversed(true);  // query 0 at the top
  return map;
}

QString csv_to_json(const QString& csv) {
  auto split = [](const QString& line) {  // RFC 4180 cells: the run folder's splitter
    QStringList cells;
    for (const auto& c : qk::split_csv_line(line.toStdString())) cells << QString::fromStdString(c);
    return cells;
  };
  const QStringList lines = csv.split('\n', Qt::SkipEmptyParts);
  const QStringList head = lines.isEmpty() ? QStringList() : split(lines[0]);
  QJsonArray rows;
  for (int i = 1; i < lines.size(); ++i) {
    const QStringList cells = split(lines[i]);
    QJsonObject row;
    for (int c = 0; c < head.size(); ++c) {
      bool ok = false;
      const double v = cells.value(c).toDouble(&ok);
      row[head[c]] = ok ? QJsonValue(v) : QJsonValue(cells.value(c));
    }
    rows.append(row);
  }
  return QString::fromUtf8(QJsonDocument(rows).toJson(QJsonDocument::Indented));
}

QString save_text(const QString& path, const QString& text) {
  QSaveFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Text)) return QString("%1: cannot write").arg(path);
  f.write(text.toUtf8());
  if (f.commit()) return QString();
  return QString("%1: write failed: %2 (%3)").arg(path, f.errorString(), QString::fromStdString(qk::free_space_text(path.toStdString())));
}

bool remove_dir(const QString& path) { return !QFileInfo::exists(path) || QDir(path).removeRecursively(); }

QString move_report_into_place(const QString& tmp, const QString& target) {
  const QString old = target + ".old";
  remove_dir(old);
  if (QFileInfo::exists(target) && !QDir().rename(target, old)) {
    remove_dir(tmp);
    return QString("%1: cannot replace the earlier report").arg(target);
  }
  if (!QDir().rename(tmp, target)) {
    QDir().rename(old, target);
    return QString("%1: cannot move the report into place").arg(target);
  }
  remove_dir(old);
  return QString();
}

void show_legend(QCustomPlot* plot) {
  plot->legend->setVisible(true);
  plot->legend->setBrush(QBrush(plot->palette().color(QPalette::Base)));
  plot->legend->setTextColor(plot->palette().color(QPalette::Text));
}

QString csv_quoted(const std::string& s) {
  QString t = QString::fromStdString(s);
  t.replace('"', "\"\"");
  return "\"" + t + "\"";
}

}  // namespace qkui
