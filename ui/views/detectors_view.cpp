// QKLab ui — Detectors view (see detectors_view.h).
#include "detectors_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QSplitter>
#include <QTableWidget>
#include <qcustomplot.h>

#include "lens_figures.h"
#include "plot_util.h"

namespace qkui {

DetectorsView::DetectorsView(QWidget* parent)
    : MechanismTab("detectors", tr("Detectors"), tr("Head detectors"), parent) {
  kind_ = new QComboBox(this);
  kind_->setObjectName("detectorKind");
  kind_->addItem(tr("previous token"), "previous_token");
  kind_->addItem(tr("duplicate token"), "duplicate_token");
  kind_->addItem(tr("induction"), "induction");
  on_ = new QComboBox(this);
  on_->setObjectName("detectorSequences");
  on_->addItem(tr("on repeated random tokens"), "repeated");
  on_->addItem(tr("on validation sequences"), "validation");
  bar()->addWidget(kind_);
  bar()->addWidget(on_);
  finishBar({});
  summary_ = new QLabel(this);
  summary_->setObjectName("detectorSummary");
  summary_->setWordWrap(true);
  summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  body()->addWidget(summary_);
  auto* split = new QSplitter(Qt::Horizontal, this);
  heat_plot_ = make_plot(split, tr("head"), tr("layer"));
  table_ = new QTableWidget(split);
  table_->setObjectName("detectorTable");
  table_->setColumnCount(6);
  table_->setHorizontalHeaderLabels({tr("variant"), tr("layer"), tr("head"), tr("previous"), tr("duplicate"), tr("induction")});
  table_->verticalHeader()->setVisible(false);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  table_->setSortingEnabled(true);
  split->addWidget(heat_plot_);
  split->addWidget(table_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  body()->addWidget(split, 1);
  for (auto* c : {kind_, on_}) connect(c, &QComboBox::currentIndexChanged, this, [this] { redraw(); });
  redraw();
}

QString DetectorsView::summaryText() const { return summary_->text(); }

void DetectorsView::clear() { views_.clear(); }

bool DetectorsView::take(const AnalysisResult& r) {
  if (r.detectors.empty()) return false;
  views_ = r.detectors;
  return true;
}

void DetectorsView::redraw() {
  showStatus();
  summary_->setText(detectors_text(views_));
  const QString on = on_->currentData().toString();
  draw_detectors(heat_plot_, views_, kind_->currentData().toString(), on);
  table_->setSortingEnabled(false);
  table_->setRowCount(0);
  for (const auto& v : views_) {
    const bool rep = on == "repeated";
    const auto& p = rep ? v.prev_rep : v.prev_val;
    const auto& d = rep ? v.dup_rep : v.dup_val;
    const auto& i = rep ? v.ind_rep : v.ind_val;
    for (size_t k = 0; k < p.size(); ++k) {
      const int row = table_->rowCount();
      table_->insertRow(row);
      auto* name = new QTableWidgetItem(QString::fromStdString(v.variant));
      table_->setItem(row, 0, name);
      int c = 1;
      for (double x : {double(k / size_t(v.heads)), double(k % size_t(v.heads)), p[k], d[k], i[k]}) {
        auto* it = new QTableWidgetItem;
        it->setData(Qt::DisplayRole, c <= 2 ? QVariant(int(x)) : QVariant(QString::number(x, 'f', 3).toDouble()));
        table_->setItem(row, c++, it);
      }
    }
  }
  table_->setSortingEnabled(true);
  heat_plot_->replot(QCustomPlot::rpQueuedReplot);
}

QList<Figure> DetectorsView::figures() const {
  QList<Figure> out;
  if (views_.empty()) return out;
  const QString when = stamp_.suffix(), caption = stamp_.stale() ? status() : QString();
  for (const char* kind : {"previous_token", "duplicate_token", "induction"})
    out << detectors_figure(views_, kind, on_->currentData().toString(), stamp_.seed, when, caption);
  return out;
}

}  // namespace qkui
