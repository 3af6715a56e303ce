// QKLab ui — Ablation view (see ablation_view.h).
#include "ablation_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <qcustomplot.h>

#include "mechanism_figures.h"
#include "plot_util.h"

namespace qkui {

AblationView::AblationView(QWidget* parent)
    : MechanismTab("ablation", tr("Ablation"), tr("Ablation and patching"), parent) {
  what_ = new QComboBox(this);
  what_->setObjectName("ablationKind");
  what_->addItem(tr("zero ablation: Δ loss"), "zero");
  what_->addItem(tr("mean ablation: Δ loss"), "mean");
  what_->addItem(tr("activation patching: restored"), "patch");
  bar()->addWidget(what_);
  finishBar(tr("rank curve of layer"));
  pair_ = new QLabel(this);
  pair_->setObjectName("patchPair");
  pair_->setWordWrap(true);
  body()->addWidget(pair_);
  auto* split = new QSplitter(Qt::Vertical, this);
  heat_plot_ = make_plot(split, tr("head"), tr("layer"));
  rank_plot_ = make_plot(split, tr("rank"), tr("Δ loss"));
  split->addWidget(heat_plot_);
  split->addWidget(rank_plot_);
  body()->addWidget(split, 1);
  connect(what_, &QComboBox::currentIndexChanged, this, [this] { redraw(); });
  redraw();
}





void AblationView::clear() { views_.clear(); }

bool AblationView::take(const AnalysisResult& r) {
  if (r.ablation.empty()) return false;
  views_ = r.ablation;
  return true;
}

void AblationView::redraw() {
  showStatus();
  if (!views_.empty() && views_[0].patch_pairs > 0)
    pair_->setText(tr("Patching pairs differ in one token, e.g. clean «%1» vs corrupted «%2»; logit difference %3 "
                      "(clean) vs %4 (corrupted), %5 pairs whose answer changed.")
                       .arg(QString::fromStdString(views_[0].patch_clean).left(160),
                            QString::fromStdString(views_[0].patch_corrupt).left(160))
                       .arg(views_[0].clean_logit_diff, 0, 'f', 2).arg(views_[0].corrupt_logit_diff, 0, 'f', 2)
                       .arg(views_[0].patch_pairs));
  else
    pair_->setText(views_.empty() ? QString() : tr("Patching: no pair changed the model's answer (nothing to restore)."));
  draw_ablation(heat_plot_, views_, what_->currentData().toString());
  heat_plot_->replot(QCustomPlot::rpQueuedReplot);
  draw_rank_ablation(rank_plot_, views_, layer_->value(), head_->value());
  rank_plot_->replot(QCustomPlot::rpQueuedReplot);
}

QList<Figure> AblationView::figures() const {
  QList<Figure> out;
  if (views_.empty()) return out;
  const QString when = stamp_.suffix(), caption = stamp_.stale() ? status() : QString();
  for (const char* what : {"zero", "mean", "patch"}) out << ablation_figure(views_, what, stamp_.seed, when, caption);
  out << rank_ablation_figure(views_, layer_->value(), head_->value(), stamp_.seed, when, caption);
  return out;
}

}  // namespace qkui
