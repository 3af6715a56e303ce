// QKLab ui — loss curves (see loss_plot.h).
#include "loss_plot.h"

#include <QCheckBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSlider>
#include <QTimer>
#include <QVBoxLayout>
#include <cmath>
#include <qcustomplot.h>

namespace qkui {

QColor variant_color(const QString& variant) {
  if (variant == "standard") return QColor(31, 119, 180);
  if (variant == "merged") return QColor(214, 39, 40);
  return QColor(44, 160, 44);
}

LossPlot::LossPlot(QWidget* parent) : QWidget(parent), plot_(new QCustomPlot(this)), replot_timer_(new QTimer(this)) {
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(0, 0, 0, 0);
  auto* bar = new QHBoxLayout;
  auto* logy = new QCheckBox(tr("Log y"), this);
  logy->setObjectName("logY");
  auto* slider = new QSlider(Qt::Horizontal, this);
  slider->setObjectName("smoothing");
  slider->setRange(0, 99);
  slider->setValue(60);
  slider->setMaximumWidth(160);
  auto* slabel = new QLabel(tr("Smoothing 0.60"), this);
  bar->addWidget(new QLabel(tr("<b>Loss</b>"), this));
  bar->addStretch();
  bar->addWidget(slabel);
  bar->addWidget(slider);
  bar->addWidget(logy);
  layout->addLayout(bar);
  layout->addWidget(plot_, 1);
  plot_->xAxis->setLabel(tr("step"));
  plot_->yAxis->setLabel(tr("cross-entropy loss"));
  plot_->legend->setVisible(true);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom | QCP::iSelectLegend);
  plot_->setMinimumSize(400, 250);
  connect(logy, &QCheckBox::toggled, this, &LossPlot::setLogY);
  connect(slider, &QSlider::valueChanged, this, [this, slabel](int v) {
    slabel->setText(tr("Smoothing %1").arg(v / 100.0, 0, 'f', 2));
    setSmoothing(v / 100.0);
  });
  smoothing_ = 0.6;
  replot_timer_->setInterval(40);  // <= 25 replots per second
  replot_timer_->setSingleShot(true);
  connect(replot_timer_, &QTimer::timeout, this, [this] {
    if (!dirty_) return;
    dirty_ = false;
    plot_->rescaleAxes();
    plot_->replot(QCustomPlot::rpQueuedReplot);
  });
}

void LossPlot::clear() {
  rows_.clear();
  plot_->clearGraphs();
  train_.clear();
  val_.clear();
  dirty_ = true;
  scheduleReplot();
}

void LossPlot::addEvals(const std::vector<qk::EvalRecord>& evals) {
  if (evals.empty()) return;
  for (const auto& r : evals) rows_[QString::fromStdString(r.variant)].push_back(r);
  rebuild();
}

void LossPlot::rebuild() {
  for (auto it = rows_.begin(); it != rows_.end(); ++it) {
    const QString v = it.key();
    if (!train_.contains(v)) {
      auto* tg = plot_->addGraph();
      tg->setName(v + " train");
      tg->setPen(QPen(variant_color(v), 1.5, Qt::DashLine));
      auto* vg = plot_->addGraph();
      vg->setName(v + " val");
      vg->setPen(QPen(variant_color(v), 2.0));
      train_[v] = tg;
      val_[v] = vg;
    }
    QVector<double> x, yt, yv;
    double et = NAN, ev = NAN;
    for (const auto& r : it.value()) {
      // EMA smoothing as TensorBoard: s = a·s + (1-a)·y
      et = std::isnan(et) ? r.train_loss : smoothing_ * et + (1 - smoothing_) * r.train_loss;
      ev = std::isnan(ev) ? r.val_loss : smoothing_ * ev + (1 - smoothing_) * r.val_loss;
      x << double(r.step + 1);
      yt << et;
      yv << ev;
    }
    train_[v]->setData(x, yt, true);
    val_[v]->setData(x, yv, true);
  }
  dirty_ = true;
  scheduleReplot();
}

void LossPlot::scheduleReplot() {
  if (!replot_timer_->isActive()) replot_timer_->start();
}

void LossPlot::setLogY(bool on) {
  plot_->yAxis->setScaleType(on ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
  if (on) plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  else plot_->yAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
  dirty_ = true;
  scheduleReplot();
}

void LossPlot::setSmoothing(double alpha) {
  smoothing_ = alpha;
  rebuild();
}

}  // namespace qkui
