// QKLab ui — Detectors view (see detectors_view.h).
#include "detectors_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
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
  heat_plot_ = make_plot(this, tr("head"), tr("layer"));
  body()->addWidget(heat_plot_, 1);
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
  draw_detectors(heat_plot_, views_, kind_->currentData().toString(), on_->currentData().toString());
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
