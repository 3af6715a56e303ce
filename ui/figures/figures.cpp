// QKLab ui — figures drawn from plain values (see figures.h).
#include "figures.h"

#include <cmath>
#include <map>
#include <qcustomplot.h>

#include "plot_util.h"
#include "variants.h"

namespace qkui {
namespace {

constexpr int kMaxAttentionColumns = 4;  // panels per row in an every-head attention figure

QString q(const std::string& s) { return QString::fromStdString(s); }

QString num(double v) { return std::isnan(v) ? QString() : QString::number(v, 'g', 9); }

QString quoted(const std::string& s) {
  QString t = q(s);
  t.replace('"', "\"\"");
  return "\"" + t + "\"";
}

void log_axis(QCPAxis* axis, double base = 10) {
  axis->setScaleType(QCPAxis::stLogarithmic);
  QSharedPointer<QCPAxisTickerLog> t(new QCPAxisTickerLog);
  t->setLogBase(base);
  axis->setTicker(t);
}

}  // namespace

std::vector<QCPAxisRect*> make_panels(QCustomPlot* plot, int n, int cols, const QStringList& titles) {
  plot->plotLayout()->clear();
  auto* panels = new QCPLayoutGrid;
  plot->plotLayout()->addElement(0, 0, panels);
  std::vector<QCPAxisRect*> rects;
  // Panel titles: the largest font (down to 6 pt) at which every line fits its panel.
  QFont f = plot->font();
  f.setBold(true);
  const double avail = std::max(40.0, double(plot->width()) / std::max(cols, 1) - 12.0);
  for (double pt = plot->font().pointSizeF() * 0.9; pt >= 6; pt -= 0.5) {
    f.setPointSizeF(pt);
    QFontMetricsF fm(f);
    double widest = 0;
    for (const auto& t : titles)
      for (const auto& line : t.split('\n')) widest = std::max(widest, fm.horizontalAdvance(line));
    if (widest <= avail) break;
  }
  for (int i = 0; i < n; ++i) {
    auto* cell = new QCPLayoutGrid;
    panels->addElement(i / cols, i % cols, cell);
    auto* title = new QCPTextElement(plot, titles.value(i), f);
    title->setTextColor(plot->xAxis ? plot->xAxis->labelColor() : QColor(Qt::black));
    cell->addElement(0, 0, title);
    auto* rect = new QCPAxisRect(plot);
    cell->addElement(1, 0, rect);
    cell->setRowStretchFactor(0, 0.01);
    cell->setRowSpacing(0);
    rects.push_back(rect);
  }
  return rects;
}

namespace {

// A legend in its own row under the plot's panels (covers no data).
QCPLegend* legend_below(QCustomPlot* plot, const std::vector<QCPAbstractPlottable*>& items) {
  auto* legend = new QCPLegend;
  const int row = plot->plotLayout()->rowCount();
  plot->plotLayout()->addElement(row, 0, legend);
  plot->plotLayout()->setRowStretchFactor(row, 0.001);
  legend->setLayer(QLatin1String("legend"));
  legend->setFillOrder(QCPLayoutGrid::foColumnsFirst);
  legend->setWrap(4);
  legend->setBorderPen(Qt::NoPen);
  legend->setBrush(Qt::NoBrush);
  legend->setTextColor(plot->palette().color(QPalette::WindowText));
  for (auto* p : items) legend->addItem(new QCPPlottableLegendItem(legend, p));
  return legend;
}

// Token labels on at most `max_labels` positions (every k-th token), or plain position numbers for
// long sequences, so that labels never overlap.
QSharedPointer<QCPAxisTicker> token_ticker(const qk::AttentionView& v, int max_labels) {
  if (v.T > 3 * max_labels) return QSharedPointer<QCPAxisTicker>(new QCPAxisTicker);
  const int every = std::max(1, (v.T + max_labels - 1) / max_labels);
  QSharedPointer<QCPAxisTickerText> ticker(new QCPAxisTickerText);
  for (int i = 0; i < v.T; i += every) {
    QString t = q(v.tokens[i]).replace('\n', "\\n");
    ticker->addTick(i, t.size() > 10 ? t.left(9) + "…" : t);
  }
  return ticker;
}

// A margin of 5% of the data range on both sides of every axis (log axes: by factor).
void pad_ranges(QCustomPlot* plot) {
  for (auto* axis : {plot->xAxis, plot->yAxis}) {
    if (!axis) continue;
    QCPRange r = axis->range();
    if (axis->scaleType() == QCPAxis::stLogarithmic) {
      if (r.lower > 0 && r.upper > 0) {
        const double f = std::pow(r.upper / r.lower, 0.05);
        axis->setRange(r.lower / f, r.upper * f);
      }
    } else {
      const double m = r.size() > 0 ? 0.05 * r.size() : 0.5;
      axis->setRange(r.lower - m, r.upper + m);
    }
  }
}

const std::vector<float>* weights_of(const qk::AttentionView& v, int layer, int head) {
  const size_t idx = size_t(layer) * v.heads + head;
  return idx < v.weights.size() ? &v.weights[idx] : nullptr;
}

}  // namespace

int attention_grid_columns() { return kMaxAttentionColumns; }

QString matrix_label(const std::string& matrix) {
  for (const auto& v : qk::all_variants())
    if (matrix == v.matrix_key) return QString::fromUtf8(v.form_label);
  return QString::fromStdString(matrix);
}

void draw_loss(QCustomPlot* plot, const std::vector<qk::EvalRecord>& rows, double smoothing, LossX xmode) {
  plot->clearGraphs();
  std::map<std::string, std::map<int, std::vector<const qk::EvalRecord*>>> by;  // variant -> seed -> rows
  for (const auto& r : rows) by[r.variant][r.seed].push_back(&r);
  auto xof = [xmode](const qk::EvalRecord& r) {
    return xmode == LossX::Tokens ? double(r.tokens_seen) : xmode == LossX::WallTime ? r.wall_time_s : double(r.step + 1);
  };
  for (auto& [variant, seeds] : by) {
    const QString v = q(variant);
    for (int split = 0; split < 2; ++split) {
      // Smoothed curve per seed, then mean / min / max across seeds at each evaluation index.
      std::vector<std::vector<double>> ys;
      std::vector<double> xs;
      for (auto& [seed, rs] : seeds) {
        std::vector<double> y;
        double ema = NAN;
        for (auto* r : rs) {
          const double val = split == 0 ? r->train_loss : r->val_loss;
          ema = std::isnan(ema) ? val : smoothing * ema + (1 - smoothing) * val;
          y.push_back(ema);
        }
        if (xs.empty())
          for (auto* r : rs) xs.push_back(xof(*r));
        ys.push_back(y);
      }
      size_t n = xs.size();
      for (auto& y : ys) n = std::min(n, y.size());
      QVector<double> x, mean, lo, hi;
      for (size_t i = 0; i < n; ++i) {
        double s = 0, mn = 1e300, mx = -1e300;
        for (auto& y : ys) {
          s += y[i];
          mn = std::min(mn, y[i]);
          mx = std::max(mx, y[i]);
        }
        x << xs[i];
        mean << s / ys.size();
        lo << mn;
        hi << mx;
      }
      const QColor color = variant_color(v);
      auto* g = plot->addGraph();
      g->setName(QString("%1 %2%3").arg(v, split == 0 ? "train" : "val",
                                        ys.size() > 1 ? QString(" (mean of %1 seeds)").arg(ys.size()) : ""));
      g->setPen(QPen(color, split == 0 ? 1.5 : 2.2, split == 0 ? Qt::DashLine : Qt::SolidLine));
      if (x.size() == 1)  // only the evaluation before training: a visible point, not an empty line
        g->setScatterStyle(QCPScatterStyle(split == 0 ? QCPScatterStyle::ssCircle : QCPScatterStyle::ssDisc, 8));
      g->setData(x, mean, true);
      if (ys.size() > 1) {
        auto* gl = plot->addGraph();
        auto* gh = plot->addGraph();
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
  plot->xAxis->setLabel(xmode == LossX::Tokens ? QObject::tr("tokens seen")
                        : xmode == LossX::WallTime ? QObject::tr("wall time (s)")
                                                   : QObject::tr("step"));
  plot->yAxis->setLabel(QObject::tr("cross-entropy loss (nats/token)"));
  plot->legend->setVisible(true);
  plot->rescaleAxes(true);
  pad_ranges(plot);
  fit_loss_start(plot, rows, xmode);
}

void fit_loss_start(QCustomPlot* plot, const std::vector<qk::EvalRecord>& rows, LossX xmode) {
  // Before training every point sits at one x (step 0): show them at the left of the axis rather
  // than in the middle of a −2…2 frame.
  auto xof = [xmode](const qk::EvalRecord& r) {
    return xmode == LossX::Tokens ? double(r.tokens_seen) : xmode == LossX::WallTime ? r.wall_time_s : double(r.step + 1);
  };
  bool single = !rows.empty();
  for (const auto& r : rows) single = single && xof(r) == xof(rows.front());
  if (single) plot->xAxis->setRange(xof(rows.front()) - 0.5, xof(rows.front()) + 10);
}

namespace {

// σ of each spectrum into graphs on (x, y); returns the y range of the positive values.
std::pair<double, double> add_sigma_graphs(QCustomPlot* plot, QCPAxis* x, QCPAxis* y,
                                           const std::vector<const qk::SpectrumView*>& spectra,
                                           std::vector<QCPAbstractPlottable*>* made) {
  double lo = 1e300, hi = 0;
  for (const auto* v : spectra) {
    auto* g = plot->addGraph(x, y);
    const QString name = q(v->variant);
    g->setName(QString("%1 (%2)").arg(name, matrix_label(v->matrix)));
    g->setPen(QPen(variant_color(name), 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 4));
    QVector<double> xs, ys;
    for (size_t i = 0; i < v->sigma.size(); ++i) {
      if (v->sigma[i] <= v->sigma[0] * 1e-12) continue;  // exact zeros beyond the rank (log axis)
      xs << double(i + 1);
      ys << v->sigma[i];
      lo = std::min(lo, v->sigma[i]);
      hi = std::max(hi, v->sigma[i]);
    }
    g->setData(xs, ys);
    if (made) made->push_back(g);
  }
  return {lo, hi};
}

void mark_head_dim(QCustomPlot* plot, QCPAxisRect* rect, int head_dim, double lo, bool label) {
  if (head_dim <= 0) return;
  auto* line = new QCPItemStraightLine(plot);
  line->setClipAxisRect(rect);
  line->point1->setAxes(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
  line->point2->setAxes(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
  line->point1->setCoords(head_dim + 0.5, 1);
  line->point2->setCoords(head_dim + 0.5, 2);
  line->setPen(QPen(Qt::gray, 1, Qt::DashLine));
  if (!label) return;
  auto* text = new QCPItemText(plot);
  text->setClipAxisRect(rect);
  text->position->setAxes(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
  text->position->setType(QCPItemPosition::ptPlotCoords);
  text->position->setCoords(head_dim + 0.5, lo < 1e300 ? lo : 1);  // bottom: the spectra start high
  text->setPositionAlignment(Qt::AlignLeft | Qt::AlignBottom);
  text->setText(QString(" head_dim = %1").arg(head_dim));
  text->setColor(Qt::gray);
}

}  // namespace

void draw_spectra(QCustomPlot* plot, const std::vector<qk::SpectrumView>& spectra, int head_dim, int emb_dim) {
  plot->clearGraphs();
  plot->clearItems();
  log_axis(plot->yAxis);
  plot->xAxis->setLabel(QObject::tr("index i"));
  plot->yAxis->setLabel(QObject::tr("singular value σ_i"));
  std::vector<const qk::SpectrumView*> ptrs;
  for (const auto& s : spectra) ptrs.push_back(&s);
  auto [lo, hi] = add_sigma_graphs(plot, plot->xAxis, plot->yAxis, ptrs, nullptr);
  mark_head_dim(plot, plot->axisRect(), head_dim, lo, true);
  plot->xAxis->setRange(0, std::max(emb_dim, 1) + 1);
  if (hi > 0) plot->yAxis->setRange(lo / 2, hi * 2);
  plot->legend->setVisible(true);
}

void draw_spectra_grid(QCustomPlot* plot, const std::vector<qk::SpectrumView>& spectra, int layer, int heads,
                       int head_dim, int emb_dim) {
  plot->clearGraphs();
  plot->clearItems();
  QStringList titles;
  for (int h = 0; h < heads; ++h) titles << QObject::tr("head %1").arg(h);
  const int cols = heads <= 3 ? heads : heads <= 4 ? 2 : heads <= 9 ? 3 : 4;
  auto rects = make_panels(plot, heads, std::max(cols, 1), titles);
  std::vector<QCPAbstractPlottable*> legend_items;
  for (int h = 0; h < heads; ++h) {
    auto* rect = rects[h];
    style_axes(rect);
    auto* x = rect->axis(QCPAxis::atBottom);
    auto* y = rect->axis(QCPAxis::atLeft);
    log_axis(y);
    if (h / cols == (heads - 1) / cols) x->setLabel(QObject::tr("index i"));
    if (h % cols == 0) y->setLabel(QObject::tr("σ_i"));
    std::vector<const qk::SpectrumView*> ptrs;
    for (const auto& s : spectra)
      if (s.layer == layer && s.head == h) ptrs.push_back(&s);
    auto [lo, hi] = add_sigma_graphs(plot, x, y, ptrs, h == 0 ? &legend_items : nullptr);
    mark_head_dim(plot, rect, head_dim, lo, h == 0);
    x->setRange(0, std::max(emb_dim, 1) + 1);
    if (hi > 0) y->setRange(lo / 2, hi * 2);
  }
  legend_below(plot, legend_items);
}

void draw_rank_summary(QCustomPlot* plot, const std::vector<qk::SpectrumView>& spectra, int heads, int head_dim) {
  plot->clearGraphs();
  plot->clearItems();
  std::map<std::string, QCPGraph*> graphs;
  double top = head_dim;
  for (const auto& s : spectra) {
    auto& g = graphs[s.variant];
    if (!g) {
      g = plot->addGraph();
      const QString v = q(s.variant);
      g->setName(QString("%1 (%2)").arg(v, matrix_label(s.matrix)));
      g->setPen(QPen(variant_color(v), 1.5));
      g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 6));
    }
    g->addData(double(s.layer * heads + s.head), s.metrics.effective_rank);
    top = std::max(top, s.metrics.effective_rank);
  }
  if (head_dim > 0) {
    auto* line = new QCPItemStraightLine(plot);
    line->point1->setCoords(0, head_dim);
    line->point2->setCoords(1, head_dim);
    line->setPen(QPen(Qt::gray, 1, Qt::DashLine));
  }
  plot->xAxis->setLabel(QObject::tr("head (layer × %1 + head)").arg(heads));
  plot->yAxis->setLabel(QObject::tr("effective rank of the form (dashed: head_dim)"));
  plot->rescaleAxes();
  plot->xAxis->setRange(plot->xAxis->range().lower - 0.5, plot->xAxis->range().upper + 0.5);
  plot->yAxis->setRange(0, top * 1.1 + 1);
  plot->legend->setVisible(true);
}

int fill_spectra_history(QCPColorMap* map, const std::vector<qk::SpectraRecord>& history, const std::string& variant,
                         int layer, int head) {
  std::vector<const qk::SpectraRecord::Head*> cols;
  std::vector<int64_t> steps;
  for (const auto& r : history) {
    if (r.variant != variant) continue;
    if (!steps.empty() && r.seed != history.front().seed) continue;  // the first seed's history
    for (const auto& h : r.heads)
      if (h.layer == layer && h.head == head) {
        cols.push_back(&h);
        steps.push_back(r.step);
      }
  }
  map->data()->clear();
  if (cols.empty()) return 0;
  const int n = int(cols[0]->sigma.size());
  map->data()->setSize(int(cols.size()), n);
  map->data()->setRange(QCPRange(double(steps.front() + 1), double(std::max(steps.back(), steps.front() + 1) + 1)),
                        QCPRange(1, n));
  for (size_t c = 0; c < cols.size(); ++c)
    for (int i = 0; i < n; ++i) {
      const double s = i < int(cols[c]->sigma.size()) ? cols[c]->sigma[i] : 0.0;
      map->data()->setCell(int(c), i, s > 1e-12 ? std::log10(s) : -12);
    }
  map->setDataRange(QCPRange(-4, 1));
  return int(cols.size());
}

void draw_spectra_history(QCustomPlot* plot, const std::vector<qk::SpectraRecord>& history,
                          const std::string& variant, int layer, int head) {
  auto* map = make_heatmap(plot, false, 0, 0);
  map->colorScale()->axis()->setLabel(QObject::tr("log10 σ"));
  plot->yAxis->setRangeReversed(false);
  plot->xAxis->setLabel(QObject::tr("step"));
  plot->yAxis->setLabel(QObject::tr("index i of σ_i"));
  fill_spectra_history(map, history, variant, layer, head);
  plot->rescaleAxes();
}

void draw_truncation(QCustomPlot* plot, const std::vector<qk::TruncationView>& trunc, int emb_dim) {
  plot->clearGraphs();
  log_axis(plot->xAxis, 2);
  plot->xAxis->setLabel(QObject::tr("rank r of every head's form (log2; r = 0 drawn at 0.5)"));
  plot->yAxis->setLabel(QObject::tr("validation loss (nats/token)"));
  for (const auto& t : trunc) {
    auto* g = plot->addGraph();
    const QString v = q(t.variant);
    g->setName(v);
    g->setPen(QPen(variant_color(v), 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 6));
    for (size_t i = 0; i < t.ranks.size(); ++i)  // rank 0 drawn at 0.5 on the log axis
      g->addData(t.ranks[i] == 0 ? 0.5 : t.ranks[i], t.val_loss[i]);
  }
  plot->rescaleAxes();
  pad_ranges(plot);
  plot->xAxis->setRange(0.4, std::max(emb_dim, 2) * 1.3);
  plot->legend->setVisible(true);
}

void draw_effective_rank(QCustomPlot* plot, const std::vector<qk::SpectraRecord>& history) {
  plot->clearGraphs();
  plot->xAxis->setLabel(QObject::tr("step"));
  plot->yAxis->setLabel(QObject::tr("effective rank (mean over heads)"));
  std::map<std::pair<std::string, int>, QCPGraph*> graphs;  // (variant#seed, layer)
  for (const auto& r : history) {
    std::map<int, std::pair<double, int>> per_layer;
    for (const auto& h : r.heads) {
      per_layer[h.layer].first += h.effective_rank;
      per_layer[h.layer].second += 1;
    }
    for (auto& [layer, acc] : per_layer) {
      auto key = std::make_pair(r.variant + "#" + std::to_string(r.seed), layer);
      if (!graphs.count(key)) {
        auto* g = plot->addGraph();
        const QString v = q(r.variant);
        g->setName(QString("%1 layer %2").arg(v).arg(layer));
        QPen pen(variant_color(v), 2);
        pen.setStyle(static_cast<Qt::PenStyle>(1 + layer % 5));
        g->setPen(pen);
        if (graphs.size() >= 1 && r.seed != history.front().seed) g->removeFromLegend();  // one entry per layer
        graphs[key] = g;
      }
      graphs[key]->addData(double(r.step + 1), acc.first / acc.second);
    }
  }
  plot->rescaleAxes();
  pad_ranges(plot);
  plot->legend->setVisible(true);
}

void draw_kl(QCustomPlot* plot, const std::vector<qk::DivergenceRecord>& kl) {
  plot->clearGraphs();
  plot->xAxis->setLabel(QObject::tr("step"));
  plot->yAxis->setLabel(QObject::tr("KL(first || variant), nats/token"));
  std::map<std::string, QCPGraph*> kg;
  for (const auto& d : kl) {
    const std::string key = d.from + "→" + d.to + "#" + std::to_string(d.seed);
    if (!kg.count(key)) {
      auto* g = plot->addGraph();
      g->setName(q(d.from + " → " + d.to + " (seed " + std::to_string(d.seed) + ")"));
      g->setPen(QPen(variant_color(q(d.to)), 2));
      kg[key] = g;
    }
    kg[key]->addData(double(d.step + 1), d.kl);
  }
  plot->rescaleAxes();
  pad_ranges(plot);
  plot->legend->setVisible(true);
}

void fill_attention(QCPColorMap* map, const qk::AttentionView& a, const qk::AttentionView* b,
                    int layer, int head, int max_labels) {
  const int T = a.T;
  const auto* w = weights_of(a, layer, head);
  const auto* w2 = b ? weights_of(*b, layer, head) : nullptr;
  map->data()->setSize(T, T);
  map->data()->setRange(QCPRange(0, T - 1), QCPRange(0, T - 1));
  for (int qi = 0; qi < T; ++qi)
    for (int k = 0; k < T; ++k) {
      double v = w ? (*w)[qi * T + k] : 0.0;
      if (w2) v -= (*w2)[qi * T + k];
      map->data()->setCell(k, qi, v);
    }
  auto* x = map->keyAxis();
  auto* y = map->valueAxis();
  const auto ticker = token_ticker(a, max_labels);
  x->setTicker(ticker);
  y->setTicker(ticker);
  if (T <= 3 * max_labels) x->setTickLabelRotation(60);
  x->setRange(-0.5, T - 0.5);
  y->setRange(-0.5, T - 0.5);
  y->setRangeReversed(true);  // query 0 at the top
}

void draw_attention_grid(QCustomPlot* plot, const std::vector<qk::AttentionView>& views, int layer, int head) {
  if (views.empty()) return;
  plot->clearGraphs();
  plot->clearItems();
  const int H = views[0].heads;
  const bool diff = views.size() >= 2;
  const int nv = int(views.size()) + (diff ? 1 : 0);  // variant rows (+ the difference)
  struct Panel {
    int view;  // index into views; nv - 1 with diff: the difference
    int head;
  };
  // Every head: at most four panels a row, each variant's heads wrapping onto rows of their own.
  const int cols = head < 0 ? std::min(H, kMaxAttentionColumns) : nv;
  std::vector<Panel> panels;
  for (int r = 0; r < nv; ++r)
    for (int h = 0; h < H; ++h)
      if (head < 0 || h == head) panels.push_back({r, h});
  if (head < 0 && H % cols != 0) {  // pad each variant's block to whole rows: blocks start on a new row
    std::vector<Panel> padded;
    for (int r = 0; r < nv; ++r) {
      for (int h = 0; h < H; ++h) padded.push_back({r, h});
      for (int k = H % cols; k < cols; ++k) padded.push_back({r, -1});
    }
    panels.swap(padded);
  }
  QStringList titles;
  for (const auto& p : panels) {
    if (p.head < 0) {
      titles << QString();
      continue;
    }
    const bool is_diff = diff && p.view == nv - 1;
    titles << (is_diff ? QString("%1 − %2\nhead %3").arg(q(views[0].variant), q(views[1].variant)).arg(p.head)
                       : QString("%1 · head %2\nentropy %3").arg(q(views[size_t(p.view)].variant)).arg(p.head)
                             .arg(views[size_t(p.view)].entropy[layer][p.head], 0, 'f', 2));
  }
  auto rects = make_panels(plot, int(panels.size()), cols, titles);
  auto* scales = new QCPLayoutGrid;
  plot->plotLayout()->addElement(0, 1, scales);
  plot->plotLayout()->setColumnStretchFactor(1, 0.01);
  auto* weights_scale = new QCPColorScale(plot);
  scales->addElement(0, 0, weights_scale);
  weights_scale->axis()->setLabel(QObject::tr("attention weight"));
  QCPColorScale* diff_scale = nullptr;
  if (diff) {
    diff_scale = new QCPColorScale(plot);
    scales->addElement(1, 0, diff_scale);
    diff_scale->axis()->setLabel(QObject::tr("difference of weights"));
  }
  for (auto* s : {weights_scale, diff_scale})
    if (s) {
      s->setType(QCPAxis::atRight);
      s->setBarWidth(12);
      style_axes(s->axis()->axisRect());
    }
  const int rows = (int(panels.size()) + cols - 1) / cols;
  for (size_t i = 0; i < panels.size(); ++i) {
    auto* rect = rects[i];
    if (panels[i].head < 0) {  // padding: an empty, invisible cell
      for (auto* axis : rect->axes()) axis->setVisible(false);
      continue;
    }
    style_axes(rect);
    const bool is_diff = diff && panels[i].view == nv - 1;
    auto* map = new QCPColorMap(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
    map->setInterpolate(false);
    map->setColorScale(is_diff ? diff_scale : weights_scale);
    map->setGradient(is_diff ? diverging_gradient() : QCPColorGradient(QCPColorGradient::gpThermal));
    map->setInterpolate(false);
    map->setDataRange(is_diff ? QCPRange(-1, 1) : QCPRange(0, 1));
    fill_attention(map, is_diff ? views[0] : views[size_t(panels[i].view)], is_diff ? &views[1] : nullptr,
                   layer, panels[i].head, std::max(4, 40 / cols));  // narrower panels, fewer labels
    if (int(i) % cols == 0) rect->axis(QCPAxis::atLeft)->setLabel(QObject::tr("query"));
    if (int(i) / cols == rows - 1) rect->axis(QCPAxis::atBottom)->setLabel(QObject::tr("key"));
  }
}

QString spectra_csv(const std::vector<qk::SpectrumView>& spectra, int seed) {
  QString csv = "variant,seed,layer,head,matrix,index,sigma\n";
  for (const auto& v : spectra)
    for (size_t i = 0; i < v.sigma.size(); ++i)
      csv += QString("%1,%2,%3,%4,%5,%6,%7\n").arg(q(v.variant)).arg(seed).arg(v.layer).arg(v.head)
                 .arg(q(v.matrix)).arg(i).arg(num(v.sigma[i]));
  return csv;
}

QString rank_metrics_csv(const std::vector<qk::SpectrumView>& spectra, int seed) {
  QString csv = "variant,seed,layer,head,matrix,numerical_rank,effective_rank,stable_rank,rank90,rank99,spectral_norm,"
                "nuclear_norm\n";
  for (const auto& v : spectra) {
    const auto& m = v.metrics;
    csv += QString("%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12\n").arg(q(v.variant)).arg(seed).arg(v.layer).arg(v.head)
               .arg(q(v.matrix)).arg(m.numerical_rank).arg(num(m.effective_rank)).arg(num(m.stable_rank))
               .arg(m.rank90).arg(m.rank99).arg(num(m.spectral_norm)).arg(num(m.nuclear_norm));
  }
  return csv;
}

QString truncation_csv(const std::vector<qk::TruncationView>& trunc, int seed) {
  QString csv = "variant,seed,rank,val_loss,val_acc\n";
  for (const auto& t : trunc)
    for (size_t i = 0; i < t.ranks.size(); ++i)
      csv += QString("%1,%2,%3,%4,%5\n").arg(q(t.variant)).arg(seed).arg(t.ranks[i]).arg(num(t.val_loss[i]))
                 .arg(num(t.val_acc[i]));
  return csv;
}

QString effective_rank_csv(const std::vector<qk::SpectraRecord>& history) {
  QString csv = "step,variant,seed,layer,head,effective_rank\n";
  for (const auto& r : history)
    for (const auto& h : r.heads)
      csv += QString("%1,%2,%3,%4,%5,%6\n").arg(r.step).arg(q(r.variant)).arg(r.seed).arg(h.layer).arg(h.head)
                 .arg(num(h.effective_rank));
  return csv;
}

QString attention_csv(const std::vector<qk::AttentionView>& views, int layer, int head, int seed) {
  QString csv = "variant,seed,layer,head,query,key,query_token,key_token,weight\n";
  for (const auto& v : views)
    for (int h = 0; h < v.heads; ++h) {
      if (head >= 0 && h != head) continue;
      const auto* w = weights_of(v, layer, h);
      if (!w) continue;
      for (int qi = 0; qi < v.T; ++qi)
        for (int k = 0; k <= qi; ++k)
          csv += QString("%1,%2,%3,%4,%5,%6,%7,%8,%9\n").arg(q(v.variant)).arg(seed).arg(layer).arg(h).arg(qi).arg(k)
                     .arg(quoted(v.tokens[qi]), quoted(v.tokens[k])).arg((*w)[qi * v.T + k], 0, 'g', 7);
    }
  return csv;
}

}  // namespace qkui
