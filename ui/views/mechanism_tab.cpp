// QKLab ui — the shared part of the mechanism tabs (see mechanism_tab.h).
#include "mechanism_tab.h"

#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>

namespace qkui {

MechanismTab::MechanismTab(const QString& kind, const QString& title, const QString& heading, QWidget* parent)
    : QWidget(parent), kind_(kind), title_(title) {
  layout_ = new QVBoxLayout(this);
  bar_ = new QHBoxLayout;
  bar_->addWidget(new QLabel(QString("<b>%1</b>").arg(heading), this));
  status_ = new QLabel(this);
  status_->setObjectName(kind + "Status");
  bar_->addWidget(status_, 1);
}

void MechanismTab::finishBar(const QString& picker_label) {
  layer_ = new QSpinBox(this);
  head_ = new QSpinBox(this);
  if (picker_label.isEmpty()) {
    layer_->hide();
    head_->hide();
  } else {
    bar_->addWidget(new QLabel(picker_label, this));
    bar_->addWidget(layer_);
    bar_->addWidget(new QLabel(tr("head"), this));
    bar_->addWidget(head_);
  }
  auto* go = new QPushButton(tr("Compute"), this);
  go->setObjectName("compute_" + kind_);
  bar_->addWidget(go);
  layout_->insertLayout(0, bar_);
  connect(go, &QPushButton::clicked, this, [this] { request(); });
  for (auto* s : {layer_, head_}) connect(s, &QSpinBox::valueChanged, this, [this] { redraw(); });
}

QString MechanismTab::status() const {
  return heavy_ && !stamp_.have ? tr("%1: a model of this size takes minutes — press Compute").arg(title_)
                                : stamp_.text(title_);
}

void MechanismTab::showStatus() {
  status_->setText(status());
  status_->setStyleSheet(stamp_.stale() ? "color: #d35400; font-weight: bold" : "");
}

void MechanismTab::request() {
  pending_ = true;
  Q_EMIT mechanismsRequested(kind_, requestArguments());
}

void MechanismTab::setExperiment(const ExperimentInfo& info) {
  heavy_ = qk::heavy_mechanisms(info.layers, info.heads, info.emb_dim);
  pending_ = false;
  stamp_ = {};
  clear();
  layer_->setRange(0, std::max(0, info.layers - 1));
  head_->setRange(0, std::max(0, info.heads - 1));
  redraw();
}

void MechanismTab::takeSnapshot(const TrainingSnapshot& s) {
  if (s.steps_done == stamp_.current) return;
  stamp_.current = s.steps_done;
  showStatus();
}

void MechanismTab::takeAnalysis(const AnalysisResult& r) {
  if (!take(r)) return;
  pending_ = false;
  stamp_.computed(r.step, r.seed);
  redraw();
}

void MechanismTab::refreshView(bool requested) {
  // Once per step: a result that is not stale, or one on its way, is not asked for again.
  if (!requested || pending_ || heavy_ || (stamp_.have && !stamp_.stale())) return;
  request();
}

}  // namespace qkui
