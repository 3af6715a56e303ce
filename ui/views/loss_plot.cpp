// QKLab ui — loss curves (see loss_plot.h).
#include "loss_plot.h"

#include "variants.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QSlider>
#include <QTimer>
#include <QToolTip>
#include <QVBoxLayout>
#include <cmath>
#include <map>
#include <qcustomplot.h>

#include "run_dir.h"

namespace qkui {

LossPlot::LossPlot(QWidget* parent)
    : QWidget(parent), plot_(make_plot(this, tr("step"), tr("cross-entropy loss"))), replot_timer_(new QTimer(this)) {
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
  xmode_ = new QComboBox(this);
  xmode_->setObjectName("xAxis");
  xmode_->addItems({tr("step"), tr("tokens seen"), tr("wall time (s)")});
  bar->addWidget(new QLabel(tr("<b>Loss</b>  x:"), this));
  bar->addWidget(xmode_);
  bar->addStretch();
  bar->addWidget(slabel);
  bar->addWidget(slider);
  bar->addWidget(logy);
  layout->addLayout(bar);
  layout->addWidget(plot_, 1);
  plot_->legend->setVisible(true);
  plot_->setMinimumSize(400, 250);
  connect(logy, &QCheckBox::toggled, this, &LossPlot::setLogY);
  connect(slider, &QSlider::valueChanged, this, [this, slabel](int v) {
    slabel->setText(tr("Smoothing %1").arg(v / 100.0, 0, 'f', 2));
    setSmoothing(v / 100.0);
  });
  connect(xmode_, qOverload<int>(&QComboBox::currentIndexChanged), this, &LossPlot::setXAxis);
  connect(plot_, &QCustomPlot::legendClick, this, [this](QCPLegend*, QCPAbstractLegendItem* item, QMouseEvent*) {
    if (auto* pi = qobject_cast<QCPPlottableLegendItem*>(item)) {
      pi->plottable()->setVisible(!pi->plottable()->visible());
      pi->setTextColor(pi->plottable()->visible() ? plot_->legend->textColor() : Qt::gray);
      plot_->replot();
    }
  });
  connect(plot_, &QCustomPlot::mouseMove, this, &LossPlot::hover);
  replot_timer_->setInterval(40);  // <= 25 replots per second
  replot_timer_->setSingleShot(true);
  connect(replot_timer_, &QTimer::timeout, this, [this] {
    if (!dirty_) return;
    dirty_ = false;
    ++replots_;
    plot_->rescaleAxes(true);
    fit_loss_start(plot_, rows_, static_cast<LossX>(xaxis_));
    for (const auto* item : halt_items_)  // keep the halt marks inside the x range
      if (auto* line = dynamic_cast<const QCPItemLine*>(item)) {
        const double x = line->start->coords().x();
        if (x >= plot_->xAxis->range().upper) plot_->xAxis->setRangeUpper(x + 0.05 * std::max(1.0, x));
      }
    plot_->replot(QCustomPlot::rpQueuedReplot);
  });
}

int LossPlot::curveCount() const { return plot_->graphCount(); }

void LossPlot::clear() {
  rows_.clear();
  halts_.clear();
  rebuild();
}

void LossPlot::takeSnapshot(const TrainingSnapshot& s) {
  halts_.insert(halts_.end(), s.halts.begin(), s.halts.end());
  if (!s.halts.empty() && s.evals.empty()) rebuild();
  addEvals(s.evals);
}

void LossPlot::addEvals(const std::vector<qk::EvalRecord>& evals) {
  if (evals.empty()) return;
  rows_.insert(rows_.end(), evals.begin(), evals.end());
  rebuild();
}

void LossPlot::setExperiment(const ExperimentInfo&) { clear(); }

void LossPlot::rebuild() {
  draw_loss(plot_, rows_, smoothing_, static_cast<LossX>(xaxis_));
  for (auto* item : halt_items_) plot_->removeItem(item);
  halt_items_.clear();
  for (size_t i = 0; i < halts_.size(); ++i) {
    const auto& h = halts_[i];
    // At the halt's step (or the variant's last evaluation's tokens / time), labelled near the top.
    const qk::EvalRecord* last = nullptr;
    for (const auto& r : rows_)
      if (r.variant == h.variant && r.seed == h.seed && r.step < h.step) last = &r;
    const double x = xaxis_ == Step || !last ? double(h.step) : xaxis_ == Tokens ? double(last->tokens_seen) : last->wall_time_s;
    const QColor color(QString::fromStdString(qk::variant_info(qk::parse_variant(h.variant)).color));
    auto* line = new QCPItemLine(plot_);  // from the bottom to the top of the axes, whatever the y range
    for (auto* p : {line->start, line->end}) {
      p->setTypeX(QCPItemPosition::ptPlotCoords);
      p->setTypeY(QCPItemPosition::ptAxisRectRatio);
    }
    line->start->setCoords(x, 1);
    line->end->setCoords(x, 0);
    line->setPen(QPen(color, 1.5, Qt::DashLine));
    auto* label = new QCPItemText(plot_);
    label->position->setTypeX(QCPItemPosition::ptPlotCoords);
    label->position->setTypeY(QCPItemPosition::ptAxisRectRatio);
    label->position->setCoords(x, 0.4 + 0.07 * double(i));  // below the legend
    label->setPositionAlignment(Qt::AlignRight | Qt::AlignVCenter);
    label->setColor(color);
    label->setText(QString("%1 halted at step %2 (%3 %4) ✕").arg(QString::fromStdString(h.variant)).arg(h.step)
                       .arg(QString::fromStdString(h.quantity)).arg(std::isnan(h.value) ? QString("nan") : QString("inf")));
    halt_items_ << line << label;
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

void LossPlot::setXAxis(int mode) {
  xaxis_ = mode;
  if (xmode_->currentIndex() != mode) xmode_->setCurrentIndex(mode);
  rebuild();
}

void LossPlot::hover(QMouseEvent* e) {
  const double x = plot_->xAxis->pixelToCoord(e->position().x());
  QStringList lines;
  for (int i = 0; i < plot_->graphCount(); ++i) {
    auto* g = plot_->graph(i);
    if (!g->visible() || g->name().isEmpty() || g->data()->isEmpty() || g->name().contains("min–max")) continue;
    auto it = g->data()->findBegin(x, true);
    if (it == g->data()->constEnd()) continue;
    lines << QString("%1: %2 at %3").arg(g->name()).arg(it->value, 0, 'f', 4).arg(it->key, 0, 'g', 6);
  }
  if (!lines.isEmpty()) QToolTip::showText(e->globalPosition().toPoint(), lines.join("\n"), plot_);
}

Figure loss_figure(const std::vector<qk::EvalRecord>& rows, double smoothing, LossX x, const QString& caption) {
  Figure f;
  f.name = "loss";
  f.title = QObject::tr("Train (dashed) and validation (solid) loss per variant");
  f.caption = caption;
  f.draw = [rows, smoothing, x](QCustomPlot* p) { draw_loss(p, rows, smoothing, x); };
  f.csv = [rows] { return QString::fromStdString(qk::metrics_csv(rows)); };
  return f;
}

QList<Figure> LossPlot::figures() const {
  if (rows_.empty()) return {};
  return {loss_figure(rows_, smoothing_, static_cast<LossX>(xaxis_),
                      tr("Loss curves, EMA smoothing %1").arg(smoothing_, 0, 'f', 2))};
}

}  // namespace qkui
