// QKLab ui — loss curves (see loss_plot.h).
#include "loss_plot.h"

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
    plot_->replot(QCustomPlot::rpQueuedReplot);
  });
}

int LossPlot::curveCount() const { return plot_->graphCount(); }

void LossPlot::clear() {
  rows_.clear();
  rebuild();
}

void LossPlot::addEvals(const std::vector<qk::EvalRecord>& evals) {
  if (evals.empty()) return;
  rows_.insert(rows_.end(), evals.begin(), evals.end());
  rebuild();
}

void LossPlot::rebuild() {
  plot_->clearGraphs();
  // variant -> seed -> rows (in step order)
  std::map<std::string, std::map<int, std::vector<const qk::EvalRecord*>>> by;
  for (const auto& r : rows_) by[r.variant][r.seed].push_back(&r);
  auto xof = [this](const qk::EvalRecord& r) {
    return xaxis_ == Tokens ? double(r.tokens_seen) : xaxis_ == WallTime ? r.wall_time_s : double(r.step + 1);
  };
  for (auto& [variant, seeds] : by) {
    const QString v = QString::fromStdString(variant);
    for (int split = 0; split < 2; ++split) {
      // Smoothed curve per seed, then mean / min / max across seeds at each evaluation index.
      std::vector<std::vector<double>> ys;
      std::vector<double> xs;
      for (auto& [seed, rows] : seeds) {
        std::vector<double> y;
        double ema = NAN;
        for (auto* r : rows) {
          const double val = split == 0 ? r->train_loss : r->val_loss;
          ema = std::isnan(ema) ? val : smoothing_ * ema + (1 - smoothing_) * val;
          y.push_back(ema);
        }
        if (xs.empty())
          for (auto* r : rows) xs.push_back(xof(*r));
        ys.push_back(y);
      }
      size_t n = xs.size();
      for (auto& y : ys) n = std::min(n, y.size());
      QVector<double> x, mean, lo, hi;
      for (size_t i = 0; i < n; ++i) {
        double s = 0, mn = 1e300, mx = -1e300;
        for (auto& y : ys) { s += y[i]; mn = std::min(mn, y[i]); mx = std::max(mx, y[i]); }
        x << xs[i];
        mean << s / ys.size();
        lo << mn;
        hi << mx;
      }
      QColor color = variant_color(v);
      auto* g = plot_->addGraph();
      g->setName(QString("%1 %2%3").arg(v, split == 0 ? "train" : "val", ys.size() > 1 ? QString(" (mean of %1 seeds)").arg(ys.size()) : ""));
      g->setPen(QPen(color, split == 0 ? 1.5 : 2.2, split == 0 ? Qt::DashLine : Qt::SolidLine));
      g->setData(x, mean, true);
      if (ys.size() > 1) {
        auto* gl = plot_->addGraph();
        auto* gh = plot_->addGraph();
        QColor band = color;
        band.setAlpha(40);
        gl->setPen(Qt::NoPen);
        gh->setPen(Qt::NoPen);
        gh->setBrush(band);
        gh->setChannelFillGraph(gl);
        gl->setData(x, lo, true);
        gh->setData(x, hi, true);
        gl->removeFromLegend();
        gh->setName(QString("%1 %2 min–max").arg(v, split == 0 ? "train" : "val"));
      }
    }
  }
  plot_->xAxis->setLabel(xaxis_ == Tokens ? tr("tokens seen") : xaxis_ == WallTime ? tr("wall time (s)") : tr("step"));
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

QString loss_csv(const std::vector<qk::EvalRecord>& rows) {
  QString out = "step,tokens_seen,wall_time_s,variant,train_loss,val_loss,train_acc,val_acc,seed\n";
  auto num = [](double v) { return std::isnan(v) ? QString() : QString::number(v, 'g', 9); };
  for (const auto& r : rows)
    out += QString("%1,%2,%3,%4,%5,%6,%7,%8,%9\n").arg(r.step).arg(r.tokens_seen).arg(num(r.wall_time_s))
               .arg(QString::fromStdString(r.variant)).arg(num(r.train_loss)).arg(num(r.val_loss))
               .arg(num(r.train_acc)).arg(num(r.val_acc)).arg(r.seed);
  return out;
}

QList<Exportable> LossPlot::exportables() const {
  return {{"loss", tr("Train and validation loss"), plot_,
           [this] { return loss_csv(rows_); }}};
}

}  // namespace qkui
