// QKLab ui — Geometry view (see geometry_view.h).
#include "geometry_view.h"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>
#include <QTableWidget>
#include <cmath>
#include <qcustomplot.h>

#include "mechanism_figures.h"
#include "plot_util.h"

namespace qkui {

GeometryView::GeometryView(QWidget* parent)
    : MechanismTab("geometry", tr("Geometry"), tr("Geometry of the QK forms"), parent) {
  finishBar(tr("eigenvalues of layer"));
  auto* grid = new QGridLayout;
  table_ = new QTableWidget(this);
  table_->setObjectName("geometryTable");
  table_->setColumnCount(7);
  table_->setHorizontalHeaderLabels({tr("variant"), tr("layer"), tr("head"), tr("symmetry s"), tr("directionality"),
                                     tr("diagonal mass"), tr("uniform")});
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  eig_plot_ = make_plot(this, tr("Re λ"), tr("Im λ"));
  scores_plot_ = make_plot(this, tr("symmetry"), tr("directionality"));
  alpha_plot_ = make_plot(this, tr("step"), tr("α"));
  grid->addWidget(table_, 0, 0);
  grid->addWidget(eig_plot_, 0, 1);
  grid->addWidget(scores_plot_, 1, 0);
  grid->addWidget(alpha_plot_, 1, 1);
  grid->setColumnStretch(0, 1);
  grid->setColumnStretch(1, 1);
  grid->setRowStretch(0, 1);
  grid->setRowStretch(1, 1);
  table_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Expanding);
  body()->addLayout(grid, 1);
  redraw();
}





void GeometryView::clear() {
  geo_.clear();
  esd_.clear();
}

bool GeometryView::take(const AnalysisResult& r) {
  if (r.geometry.empty()) return false;
  geo_ = r.geometry;
  esd_ = r.esd;
  return true;
}

void GeometryView::redraw() {
  showStatus();
  int rows = 0;
  for (const auto& v : geo_) rows += int(v.rows.size());
  table_->setRowCount(rows);
  int i = 0;
  auto cell = [&](int col, const QString& text) { table_->setItem(i, col, new QTableWidgetItem(text)); };
  for (const auto& v : geo_)
    for (const auto& r : v.rows) {
      cell(0, QString::fromStdString(v.variant));
      cell(1, QString::number(r.layer));
      cell(2, r.head < 0 ? tr("all (Σ_h)") : QString::number(r.head));
      cell(3, QString::number(r.symmetry, 'f', 3));
      cell(4, QString::number(r.directionality, 'f', 3));
      cell(5, std::isfinite(r.diagonal_mass) ? QString::number(r.diagonal_mass, 'f', 3) : QString());
      cell(6, r.head < 0 ? QString() : QString::number(v.uniform_diagonal, 'f', 3));
      ++i;
    }
  draw_eigen_plane(eig_plot_, geo_, layer_->value(), head_->value());
  eig_plot_->replot(QCustomPlot::rpQueuedReplot);
  draw_geometry_scores(scores_plot_, geo_);
  scores_plot_->replot(QCustomPlot::rpQueuedReplot);
  draw_alpha_history(alpha_plot_, esd_);
  alpha_plot_->replot(QCustomPlot::rpQueuedReplot);
}

QList<Figure> GeometryView::figures() const {
  QList<Figure> out;
  if (geo_.empty()) return out;
  const QString when = stamp_.suffix(), caption = stamp_.stale() ? status() : QString();
  out << eigen_figure(geo_, layer_->value(), head_->value(), stamp_.seed, when, caption)
      << geometry_scores_figure(geo_, stamp_.seed, when, caption);
  if (!esd_.empty()) out << alpha_figure(esd_, stamp_.seed, when, caption);
  return out;
}

}  // namespace qkui
