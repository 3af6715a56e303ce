// QKLab ui — the Sweep view (see sweep_view.h).
#include "sweep_view.h"

#include <numeric>

#include <set>

#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <QVBoxLayout>
#include <cmath>
#include <map>
#include <qcustomplot.h>

#include "error.h"
#include "plot_util.h"

namespace qkui {

namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }

constexpr double kLevel = -1e300;  // the x of a variant the key is not swept for (a level line)

// The metrics a user plots, as (summary column, axis label).
const std::vector<std::pair<QString, QString>>& metrics() {
  static const std::vector<std::pair<QString, QString>> m = {
      {"final_val_loss", QObject::tr("final validation loss (nats/token)")},
      {"final_val_ppl", QObject::tr("final validation perplexity")},
      {"best_val_loss", QObject::tr("best validation loss (nats/token)")},
      {"final_val_acc", QObject::tr("final validation accuracy")},
      {"best_val_acc", QObject::tr("best validation accuracy")},
      {"wall_s", QObject::tr("wall time (s)")},
      {"steps_to_target", QObject::tr("steps to the target loss")},
  };
  return m;
}

double metric_of(const qk::SweepRow& r, const QString& m) {
  if (m == "final_val_loss") return r.final_val_loss;
  if (m == "final_val_ppl") return std::exp(r.final_val_loss);
  if (m == "best_val_loss") return r.best_val_loss;
  if (m == "final_val_acc") return r.final_val_acc;
  if (m == "best_val_acc") return r.best_val_acc;
  if (m == "wall_s") return r.wall_s;
  if (m == "steps_to_target") return r.steps_to_target >= 0 ? r.steps_to_target : std::nan("");
  return std::nan("");
}

QString metric_label(const QString& m) {
  if (m == "val_loss") return QObject::tr("validation loss (nats/token)");
  if (m == "val_ppl") return QObject::tr("validation perplexity");
  if (m == "val_acc") return QObject::tr("validation accuracy");
  for (const auto& [k, label] : metrics())
    if (k == m) return label;
  return m;
}

}  // namespace

SweepPlot sweep_plot(const std::vector<qk::SweepRow>& rows, const qk::SweepSpec& spec, const QString& x_key,
                     const QString& metric, bool log_x, const QString& dir) {
  SweepPlot p;
  p.x_key = x_key;
  p.metric = metric;
  p.log_x = log_x && !x_key.isEmpty();
  // A text-valued key (data.kind: "enc-copy", ...) is categorical: its values at 0, 1, ... in the
  // spec's order. JSON strings come quoted in the spec; numbers parse.
  std::vector<std::string> x_values;
  for (const auto& [key, values] : spec.grid)
    if (q(key) == x_key) x_values = values;
  for (const auto& v : x_values) {
    bool ok = false;
    QString::fromStdString(v).toDouble(&ok);
    if (!ok) {
      for (const auto& w : x_values) p.categories << QString::fromStdString(w).remove('"');
      p.log_x = false;
      break;
    }
  }
  auto x_of = [&](const std::string& v) {
    if (v.empty()) return kLevel;
    if (p.categories.isEmpty()) return QString::fromStdString(v).toDouble();
    return double(p.categories.indexOf(QString::fromStdString(v).remove('"')));  // values come quoted or not
  };
  // Series key: variant + the values of the other swept keys; point key: the x value.
  auto others = [&](const qk::SweepRow& r) {
    QString label;
    for (const auto& [key, _] : spec.grid)
      if (q(key) != x_key && !r.values.at(key).empty())
        label += QString(" %1=%2").arg(q(key).section('.', -1), q(r.values.at(key)));
    return label;
  };
  std::vector<QString> rest;  // each row's other keys, once
  std::set<QString> labels;
  for (const auto& r : rows) {
    rest.push_back(others(r));
    labels.insert(q(r.variant) + rest.back());
  }
  p.pooled = labels.size() > size_t(kMaxSweepSeries);
  p.title = QObject::tr("Sweep '%1': %2 against %3, mean over seeds with min–max band%4")
                .arg(q(spec.name), metric_label(metric), x_key.isEmpty() ? QObject::tr("variant") : x_key,
                     p.pooled ? QObject::tr(" (each seed: mean over the other swept keys)") : QString());
  std::map<QString, std::map<double, std::vector<const qk::SweepRow*>>> groups;
  std::vector<QString> order;
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const QString label = q(r.variant) + (p.pooled ? QString() : rest[i]);
    const double x = x_key.isEmpty() ? 0.0 : x_of(r.values.at(x_key.toStdString()));  // "": categories set below
    if (!groups.count(label)) order.push_back(label);
    groups[label][x].push_back(&r);
  }
  for (const auto& label : order) {
    if (x_key.isEmpty()) {  // categories: series i at x = i
      auto pts = groups[label];
      groups[label].clear();
      for (auto& [_, rs] : pts) groups[label][double(p.series.size())] = rs;
    }
    SweepSeries s;
    s.label = label;
    s.variant = label.section(' ', 0, 0);
    for (const auto& [x, rs] : groups[label]) {
      std::vector<double> v;
      if (p.pooled) {  // per seed, the mean over the other keys' points
        std::map<int, std::vector<double>> by_seed;
        for (const auto* r : rs)
          if (!std::isnan(metric_of(*r, metric))) by_seed[r->seed].push_back(metric_of(*r, metric));
        for (const auto& [_, xs] : by_seed) v.push_back(std::accumulate(xs.begin(), xs.end(), 0.0) / double(xs.size()));
      } else {
        for (const auto* r : rs)
          if (!std::isnan(metric_of(*r, metric))) v.push_back(metric_of(*r, metric));
      }
      if (v.empty()) continue;
      double sum = 0;
      for (double a : v) sum += a;
      s.level = s.level || x == kLevel;
      s.x.push_back(x);
      s.mean.push_back(sum / double(v.size()));
      s.lo.push_back(*std::min_element(v.begin(), v.end()));
      s.hi.push_back(*std::max_element(v.begin(), v.end()));
      s.run.push_back(QDir(dir).filePath("runs/" + q(rs.front()->run)));
      s.seeds.push_back(static_cast<int>(v.size()));
    }
    if (!s.x.empty()) p.series.push_back(s);
  }
  return p;
}

SweepPlot sweep_curve_plot(const std::vector<qk::SweepCurve>& curves, const qk::SweepSpec& spec, const QString& x_axis,
                           const QString& metric, bool log_x, const QString& dir, bool best_only) {
  SweepPlot p;
  p.curves = true;
  p.log_x = log_x;
  const bool flops = x_axis == kFlopsAxis;
  p.x_key = flops ? "training_flops" : "tokens";
  const bool acc = metric.endsWith("_acc"), ppl = metric == "final_val_ppl";
  p.metric = acc ? "val_acc" : ppl ? "val_ppl" : "val_loss";
  p.title = QObject::tr("Sweep '%1': %2 against %3, mean over seeds with min–max band")
                .arg(q(spec.name), metric_label(p.metric), flops ? QObject::tr("training FLOPs") : QObject::tr("tokens seen"));
  // best_only: each variant's curve of the lowest final mean validation loss.
  std::map<std::string, const qk::SweepCurve*> best;
  for (const auto& c : curves) {
    if (c.val_loss.mean.empty() || std::isnan(c.val_loss.mean.back())) continue;
    auto& b = best[c.variant];
    if (!b || c.val_loss.mean.back() < b->val_loss.mean.back()) b = &c;
  }
  if (best_only && !spec.grid.empty()) p.title += QObject::tr(", each variant at its best grid point");
  for (const auto& c : curves) {
    if (best_only && !spec.grid.empty() && best[c.variant] != &c) continue;
    SweepSeries s;
    s.label = q(c.label);
    s.variant = q(c.variant);
    const qk::CurveBand& b = acc ? c.val_acc : c.val_loss;
    for (size_t i = 0; i < c.step.size(); ++i) {
      if (b.seeds[i] == 0 || std::isnan(b.mean[i])) continue;
      const double x = flops ? c.flops[i] : c.tokens[i];
      if (log_x && !(x > 0)) continue;  // step 0 has seen no tokens
      s.x.push_back(x);
      // Perplexity: exp of the mean loss (the geometric mean of the seeds' perplexities); exp is
      // monotone, so the band is exp of the loss band.
      s.mean.push_back(ppl ? std::exp(b.mean[i]) : b.mean[i]);
      s.lo.push_back(ppl ? std::exp(b.min[i]) : b.min[i]);
      s.hi.push_back(ppl ? std::exp(b.max[i]) : b.max[i]);
      s.run.push_back(QDir(dir).filePath("runs/" + q(c.first_run)));
      s.seeds.push_back(b.seeds[i]);
    }
    if (!s.x.empty()) p.series.push_back(s);
  }
  return p;
}

void draw_sweep(QCustomPlot* plot, const SweepPlot& p) {
  plot->clearGraphs();
  plot->clearItems();
  const QString x_label = p.curves ? (p.x_key == "tokens" ? QObject::tr("tokens seen")
                                                          : QObject::tr("training FLOPs (tokens × FLOPs per token)"))
                                   : p.x_key.isEmpty() ? QObject::tr("variant") : p.x_key;
  plot->xAxis->setLabel(x_label + (p.log_x ? QObject::tr(" (log scale)") : ""));
  plot->yAxis->setLabel(metric_label(p.metric));
  if (p.curves) {
    plot->xAxis->setScaleType(p.log_x ? QCPAxis::stLogarithmic : QCPAxis::stLinear);
    if (p.log_x) plot->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTickerLog));
    else plot->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    plot->xAxis->ticker()->setTickCount(6);
    plot->xAxis->setNumberFormat("gb");  // 1.6·10^6 rather than 1600000
  } else if (p.log_x) {
    plot->xAxis->setScaleType(QCPAxis::stLogarithmic);
    // A tick at each swept value, labelled as given (0.00125, 16): powers of two would read
    // "0" for learning rates.
    QSharedPointer<QCPAxisTickerText> t(new QCPAxisTickerText);
    std::set<double> xs;
    for (const auto& s : p.series)
      if (!s.level) xs.insert(s.x.begin(), s.x.end());
    for (double x : xs) t->addTick(x, QString::number(x, 'g', 6));
    plot->xAxis->setTicker(t);
  } else {
    plot->xAxis->setScaleType(QCPAxis::stLinear);
    if (!p.categories.isEmpty()) {
      QSharedPointer<QCPAxisTickerText> t(new QCPAxisTickerText);
      for (int i = 0; i < p.categories.size(); ++i) t->addTick(i, p.categories[i]);
      plot->xAxis->setTicker(t);
    } else if (p.x_key.isEmpty()) {
      QSharedPointer<QCPAxisTickerText> t(new QCPAxisTickerText);
      for (size_t i = 0; i < p.series.size(); ++i) t->addTick(p.series[i].x.front(), p.series[i].label);
      plot->xAxis->setTicker(t);
    } else {
      plot->xAxis->setTicker(QSharedPointer<QCPAxisTicker>(new QCPAxisTicker));
    }
  }
  // x range from the swept points (levels span it).
  double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
  for (const auto& s : p.series)
    for (size_t i = 0; i < s.x.size(); ++i) {
      if (s.x[i] != kLevel) {
        xmin = std::min(xmin, s.x[i]);
        xmax = std::max(xmax, s.x[i]);
      }
      ymin = std::min(ymin, s.lo[i]);
      ymax = std::max(ymax, s.hi[i]);
    }
  if (!(xmin <= xmax)) xmin = 0, xmax = 1;
  if (p.curves) {  // learning curves: the y range of the last 90% of x, where the variants differ
    // (the first evaluations' losses, far above, would flatten every later difference)
    ymax = -INFINITY;
    for (const auto& s : p.series)
      for (size_t i = 0; i < s.x.size(); ++i)
        if (s.x[i] >= xmin + 0.1 * (xmax - xmin)) ymax = std::max(ymax, s.hi[i]);
    if (!(ymax >= ymin)) ymax = ymin + 1;
  }
  std::map<QString, int> seen;  // curves of one variant at several grid points: one line style each
  for (const auto& s : p.series) {
    const QColor c = variant_color(s.variant);
    const int k = seen[s.variant]++;
    auto* lo = plot->addGraph();
    auto* hi = plot->addGraph();
    auto* mean = plot->addGraph();
    for (auto* g : {lo, hi}) {
      g->setPen(Qt::NoPen);
      g->removeFromLegend();
      g->setSelectable(QCP::stNone);
    }
    QColor band = c;
    band.setAlpha(50);
    hi->setBrush(band);
    hi->setChannelFillGraph(lo);
    QPen pen(c, 2);
    static const Qt::PenStyle styles[] = {Qt::SolidLine, Qt::DashLine, Qt::DotLine, Qt::DashDotLine, Qt::DashDotDotLine};
    if (p.curves) pen.setStyle(styles[k % 5]);
    if (s.level) {
      pen.setStyle(Qt::DashLine);
      for (double x : {xmin, xmax}) {
        lo->addData(x, s.lo[0]);
        hi->addData(x, s.hi[0]);
        mean->addData(x, s.mean[0]);
      }
      mean->setName(s.label + QObject::tr(" (not swept: %1 seeds)").arg(s.seeds[0]));
    } else {
      for (size_t i = 0; i < s.x.size(); ++i) {
        lo->addData(s.x[i], s.lo[i]);
        hi->addData(s.x[i], s.hi[i]);
        mean->addData(s.x[i], s.mean[i]);
      }
      mean->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, p.curves ? 4 : 7));
      mean->setName(s.label);
    }
    mean->setPen(pen);
    mean->setSelectable(QCP::stSingleData);
  }
  if (p.curves) {
    if (p.log_x) plot->xAxis->setRange(xmin / 1.2, xmax * 1.2);
    else plot->xAxis->setRange(std::min(0.0, xmin), xmax * 1.03);
  } else if (p.log_x) plot->xAxis->setRange(xmin / 1.4, xmax * 1.4);
  else {
    const double pad = std::max(0.5, 0.05 * (xmax - xmin));
    plot->xAxis->setRange(xmin - pad, xmax + pad);
  }
  if (ymin <= ymax) {
    const double pad = std::max(1e-3, 0.08 * (ymax - ymin));
    plot->yAxis->setRange(ymin - pad, ymax + pad);
  }
  plot->legend->setVisible(true);
}

QString sweep_csv(const SweepPlot& p) {
  QString out = QString("%1,series,seeds,%2_mean,%2_min,%2_max\n").arg(p.x_key.isEmpty() ? "x" : p.x_key, p.metric);
  for (const auto& s : p.series)
    for (size_t i = 0; i < s.x.size(); ++i)
      out += QString("%1,%2,%3,%4,%5,%6\n")
                 .arg(s.x[i] == kLevel           ? QString()
                      : p.categories.isEmpty() ? QString::number(s.x[i], 'g', 9)
                                               : p.categories.value(int(s.x[i])),
                      s.label)
                 .arg(s.seeds[i])
                 .arg(s.mean[i], 0, 'g', 9)
                 .arg(s.lo[i], 0, 'g', 9)
                 .arg(s.hi[i], 0, 'g', 9);
  return out;
}

SweepView::SweepView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel(tr("<b>Sweep</b>"), this));
  bar->addWidget(new QLabel(tr("metric"), this));
  metric_ = new QComboBox(this);
  metric_->setObjectName("sweepMetric");
  for (const auto& [k, label] : metrics()) metric_->addItem(label, k);
  bar->addWidget(metric_);
  bar->addWidget(new QLabel(tr("against"), this));
  xkey_ = new QComboBox(this);
  xkey_->setObjectName("sweepKey");
  bar->addWidget(xkey_);
  logx_ = new QCheckBox(tr("log x"), this);
  bar->addWidget(logx_);
  auto* reload = new QPushButton(tr("Reload"), this);
  bar->addWidget(reload);
  bar->addStretch();
  layout->addLayout(bar);
  status_ = new QLabel(tr("No sweep open. Run one with <tt>qklab-cli sweep SWEEP.json --out DIR</tt>, then open DIR "
                          "(File → Open run folder… or <tt>qklab DIR</tt>)."),
                       this);
  status_->setWordWrap(true);
  status_->setObjectName("sweepStatus");
  layout->addWidget(status_);
  plot_ = make_plot(this, tr("swept key"), tr("final validation loss"));
  // The legend in its own row under the plot: inside, it covered the last variant's point.
  plot_->axisRect()->insetLayout()->take(plot_->legend);
  plot_->plotLayout()->addElement(1, 0, plot_->legend);
  plot_->plotLayout()->setRowStretchFactor(1, 0.001);
  plot_->legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
  plot_->legend->setWrap(4);
  plot_->legend->setBorderPen(Qt::NoPen);
  layout->addWidget(plot_, 1);
  connect(metric_, &QComboBox::currentIndexChanged, this, [this] { redraw(); });
  connect(xkey_, &QComboBox::currentIndexChanged, this, [this] { redraw(); });
  connect(logx_, &QCheckBox::toggled, this, [this] { redraw(); });
  connect(reload, &QPushButton::clicked, this, [this] {
    if (!dir_.isEmpty()) openSweep(dir_);
  });
  connect(plot_, &QCustomPlot::plottableClick, this, &SweepView::onClick);
}

QString SweepView::openSweep(const QString& dir) {
  try {
    auto spec = qk::load_sweep_spec(QDir(dir).filePath("sweep.json").toStdString());
    const auto runs = qk::expand_sweep(spec);
    rows_ = qk::summarize_sweep(dir.toStdString(), spec, runs);
    curves_ = qk::sweep_curves(dir.toStdString(), spec, runs);
    spec_ = spec;
    n_runs_ = runs.size();
  } catch (const std::exception& e) {
    return QString::fromStdString(e.what());
  }
  const QSignalBlocker b1(xkey_), b2(logx_);
  const QString before = dir == dir_ ? xkey_->currentData().toString() : QString("\x1f");
  xkey_->clear();
  for (const auto& [key, values] : spec_.grid) {
    xkey_->addItem(q(key), q(key));
    (void)values;
  }
  xkey_->addItem(tr("variant"), QString());
  xkey_->addItem(tr("tokens seen (learning curves)"), kTokensAxis);
  xkey_->addItem(tr("training FLOPs (learning curves)"), kFlopsAxis);
  const int keep = xkey_->findData(before);
  dir_ = dir;
  xkey_->setCurrentIndex(keep >= 0 ? keep : 0);
  // Log-x by default for ranks, head counts and the like: positive values spanning 4× or more.
  bool log = false;
  if (!spec_.grid.empty()) {
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& v : spec_.grid.front().second) {
      const double x = QString::fromStdString(v).toDouble();
      lo = std::min(lo, x);
      hi = std::max(hi, x);
    }
    log = lo > 0 && hi / lo >= 4;
  }
  logx_->setChecked(log);
  status_->setText(tr("%1 — %2 of %3 runs finished (%4). Click a point to open its run.")
                       .arg(QDir::toNativeSeparators(dir))
                       .arg(rows_.size())
                       .arg(n_runs_)
                       .arg(rows_.size() < n_runs_ ? tr("rerun <tt>qklab-cli sweep --out DIR</tt> to finish it, then Reload")
                                                   : tr("complete")));
  redraw();
  return {};
}

void SweepView::redraw() {
  const QString x = xkey_->currentData().toString();
  plot_data_ = x == kTokensAxis || x == kFlopsAxis
                   ? sweep_curve_plot(curves_, spec_, x, metric_->currentData().toString(), logx_->isChecked(), dir_)
                   : sweep_plot(rows_, spec_, x, metric_->currentData().toString(), logx_->isChecked(), dir_);
  draw_sweep(plot_, plot_data_);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

void SweepView::onClick(QCPAbstractPlottable* p, int index, QMouseEvent*) {
  // Every third graph is a series' mean line (lo, hi, mean per series).
  for (int g = 0; g < plot_->graphCount(); ++g)
    if (plot_->graph(g) == p && g % 3 == 2) {
      const auto& s = plot_data_.series[g / 3];
      const size_t i = s.level ? 0 : static_cast<size_t>(index);
      if (i < s.run.size()) Q_EMIT openRunRequested(s.run[i]);
    }
}

QList<Figure> SweepView::figures() const {
  if (dir_.isEmpty()) return {};
  Figure f;
  f.name = "sweep";
  f.title = plot_data_.title;
  f.caption = tr("%1 of %2 runs; %3").arg(rows_.size()).arg(n_runs_).arg(QDir::toNativeSeparators(dir_));
  const SweepPlot data = plot_data_;
  f.draw = [data](QCustomPlot* p) { draw_sweep(p, data); };
  f.csv = [data] { return sweep_csv(data); };
  return {f};
}

}  // namespace qkui
