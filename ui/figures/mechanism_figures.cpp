// QKLab ui — Geometry, Circuits and Ablation figures (see mechanism_figures.h).
#include "mechanism_figures.h"

#include <cmath>
#include <map>
#include <qcustomplot.h>

#include "figures.h"
#include "plot_util.h"

namespace qkui {
namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }
QString num(double v) { return std::isfinite(v) ? QString::number(v, 'g', 9) : QString(); }

QCPGraph* scatter(QCustomPlot* plot, QCPAxis* x, QCPAxis* y, const QColor& c, double size, const QString& name) {
  auto* g = plot->addGraph(x, y);
  g->setLineStyle(QCPGraph::lsNone);
  g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, c, c, size));
  g->setPen(QPen(c));
  g->setName(name);
  return g;
}


QString head_label(int layer, int head) { return QString("L%1H%2").arg(layer).arg(head); }

}  // namespace

int panel_columns(int n) { return n <= 3 ? std::max(n, 1) : n == 4 ? 2 : 3; }

double panel_height_factor(int n) { return std::max(1.0, double((n + panel_columns(n) - 1) / panel_columns(n))); }

void draw_panels(QCustomPlot* plot, const QStringList& titles, const std::vector<std::vector<double>>& values, int rows,
                 int cols, const QStringList& row_labels, const QStringList& col_labels, const QString& xlabel,
                 const QString& ylabel, const QString& scale_label, bool diverging) {
  plot->clearGraphs();
  plot->clearPlottables();
  const int n = static_cast<int>(values.size());
  if (n == 0) return;
  const int grid = panel_columns(n);
  auto rects = make_panels(plot, n, grid, titles);
  double lo = 0, hi = 0;
  for (const auto& v : values)
    for (double x : v)
      if (std::isfinite(x)) { lo = std::min(lo, x); hi = std::max(hi, x); }
  if (diverging) { const double m = std::max(std::abs(lo), std::abs(hi)); lo = -m; hi = m; }
  if (!(hi > lo)) hi = lo + 1;
  auto* scale = new QCPColorScale(plot);
  plot->plotLayout()->addElement(0, 1, scale);
  plot->plotLayout()->setColumnStretchFactor(1, 0.01);
  scale->setType(QCPAxis::atRight);
  scale->setBarWidth(12);
  scale->axis()->setLabel(scale_label);
  style_axes(scale->axis()->axisRect());
  QCPColorGradient grad = diverging ? diverging_gradient() : QCPColorGradient(QCPColorGradient::gpThermal);
  grad.setNanHandling(QCPColorGradient::nhTransparent);
  for (int p = 0; p < n; ++p) {
    auto* rect = rects[size_t(p)];
    style_axes(rect);
    auto* map = new QCPColorMap(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
    map->setInterpolate(false);
    map->data()->setSize(cols, rows);
    map->data()->setRange(QCPRange(0, cols - 1), QCPRange(0, rows - 1));
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) {
        const double v = values[size_t(p)][size_t(r * cols + c)];
        map->data()->setCell(c, r, std::isfinite(v) ? v : std::nan(""));
      }
    map->setColorScale(scale);
    map->setGradient(grad);
    map->setDataRange(QCPRange(lo, hi));
    for (auto [axis, labels] : {std::pair{rect->axis(QCPAxis::atBottom), col_labels}, std::pair{rect->axis(QCPAxis::atLeft), row_labels}}) {
      QSharedPointer<QCPAxisTickerText> t(new QCPAxisTickerText);
      for (int i = 0; i < labels.size(); ++i) t->addTick(i, labels[i]);
      axis->setTicker(t);
    }
    rect->axis(QCPAxis::atBottom)->setRange(-0.5, cols - 0.5);
    rect->axis(QCPAxis::atLeft)->setRange(-0.5, rows - 0.5);
    rect->axis(QCPAxis::atLeft)->setRangeReversed(true);  // first row on top
    if (p / grid == (n - 1) / grid) rect->axis(QCPAxis::atBottom)->setLabel(xlabel);
    if (p % grid == 0) rect->axis(QCPAxis::atLeft)->setLabel(ylabel);
  }
}

void draw_eigen_plane(QCustomPlot* plot, const std::vector<qk::GeometryView>& views, int layer, int head) {
  plot->clearGraphs();
  double m = 1e-12;
  for (const auto& v : views)
    for (const auto& r : v.rows) {
      if (r.layer != layer || r.head != head) continue;
      auto* g = scatter(plot, plot->xAxis, plot->yAxis, variant_color(q(v.variant)), 7,
                        QObject::tr("%1: %2 eigenvalues").arg(q(v.variant)).arg(r.eig_re.size()));
      for (size_t i = 0; i < r.eig_re.size(); ++i) {
        g->addData(r.eig_re[i], r.eig_im[i]);
        m = std::max({m, std::abs(r.eig_re[i]), std::abs(r.eig_im[i])});
      }
    }
  plot->xAxis->setLabel(QObject::tr("Re λ"));
  plot->yAxis->setLabel(QObject::tr("Im λ"));
  plot->xAxis->setRange(-1.1 * m, 1.1 * m);
  plot->yAxis->setRange(-1.1 * m, 1.1 * m);
  show_legend(plot);
}

QString eigen_csv(const std::vector<qk::GeometryView>& views, int seed) {
  QString s = "variant,seed,layer,head,index,re,im\n";
  for (const auto& v : views)
    for (const auto& r : v.rows)
      for (size_t i = 0; i < r.eig_re.size(); ++i)
        s += QString("%1,%2,%3,%4,%5,%6,%7\n").arg(q(v.variant)).arg(seed).arg(r.layer).arg(r.head).arg(i)
                 .arg(num(r.eig_re[i]), num(r.eig_im[i]));
  return s;
}

void draw_geometry_scores(QCustomPlot* plot, const std::vector<qk::GeometryView>& views) {
  plot->clearGraphs();
  for (const auto& v : views) {
    const QColor c = variant_color(q(v.variant));
    auto* heads = scatter(plot, plot->xAxis, plot->yAxis, c, 6, QObject::tr("%1 heads").arg(q(v.variant)));
    auto* layers = scatter(plot, plot->xAxis, plot->yAxis, c, 13, QObject::tr("%1 layers (Σ_h M_h)").arg(q(v.variant)));
    layers->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDiamond, c, Qt::NoBrush, 13));
    for (const auto& r : v.rows) (r.head < 0 ? layers : heads)->addData(r.symmetry, r.directionality);
  }
  plot->xAxis->setLabel(QObject::tr("symmetry score s (−1 skew … +1 symmetric)"));
  plot->yAxis->setLabel(QObject::tr("directionality"));
  plot->xAxis->setRange(-1.05, 1.05);
  plot->yAxis->setRange(-1.05, 1.05);
  show_legend(plot);
}

QString geometry_csv(const std::vector<qk::GeometryView>& views, int seed) {
  QString s = "variant,seed,layer,head,sym_fraction,skew_fraction,symmetry,directionality,diagonal_mass,uniform_diagonal\n";
  for (const auto& v : views)
    for (const auto& r : v.rows)
      s += QString("%1,%2,%3,%4,%5,%6,%7,%8,%9,%10\n").arg(q(v.variant)).arg(seed).arg(r.layer).arg(r.head)
               .arg(num(r.sym_fraction), num(r.skew_fraction), num(r.symmetry), num(r.directionality),
                    num(r.diagonal_mass), num(v.uniform_diagonal));
  return s;
}

void draw_alpha_history(QCustomPlot* plot, const std::vector<qk::EsdRecord>& esd) {
  plot->clearGraphs();
  std::map<std::string, std::map<int64_t, std::pair<double, int>>> mean;  // variant -> step -> (Σα, n)
  for (const auto& e : esd)
    if (e.matrix == "form" && std::isfinite(e.alpha)) {
      auto& m = mean[e.variant][e.step];
      m.first += e.alpha;
      ++m.second;
    }
  double lo = 1e9, hi = -1e9, x0 = 1e18, x1 = -1e18;
  for (const auto& [variant, steps] : mean) {
    auto* g = plot->addGraph();
    const QColor c = variant_color(q(variant));
    g->setPen(QPen(c, 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, c, c, 5));
    g->setName(QObject::tr("%1: mean α of the forms M_h").arg(q(variant)));
    for (const auto& [step, s] : steps) {
      const double a = s.first / s.second;
      g->addData(double(step), a);
      lo = std::min(lo, a);
      hi = std::max(hi, a);
      x0 = std::min(x0, double(step));
      x1 = std::max(x1, double(step));
    }
  }
  plot->xAxis->setLabel(QObject::tr("step"));
  plot->yAxis->setLabel(QObject::tr("power-law α of the ESD tail"));
  if (hi >= lo) {  // room above the points for the legend
    plot->yAxis->setRange(lo - 0.1 * (hi - lo + 0.5), hi + 0.6 * (hi - lo + 0.5));
    const double pad = std::max(0.05 * (x1 - x0), std::max(1.0, 0.05 * std::abs(x1)));
    plot->xAxis->setRange(x0 - pad, x1 + pad);
  }
  show_legend(plot);
}

QString esd_csv(const std::vector<qk::EsdRecord>& esd, int seed) {
  QString s = "variant,seed,step,matrix,layer,head,n,alpha,xmin,ks,tail,lambda_max,mp_sigma2,mp_edge,spikes,soft_rank\n";
  for (const auto& e : esd)
    s += QString("%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16\n").arg(q(e.variant)).arg(seed).arg(e.step)
             .arg(q(e.matrix)).arg(e.layer).arg(e.head).arg(e.n).arg(num(e.alpha), num(e.xmin), num(e.ks)).arg(e.tail)
             .arg(num(e.lambda_max), num(e.mp_sigma2), num(e.mp_edge)).arg(e.spikes).arg(num(e.soft_rank));
  return s;
}

void draw_composition(QCustomPlot* plot, const std::vector<qk::CircuitsView>& views, const QString& kind) {
  if (views.empty() || views[0].layers < 2) {
    plot->clearGraphs();
    return;
  }
  const int L = views[0].layers, H = views[0].heads, n = (L - 1) * H;
  QStringList rows, cols, titles;
  for (int l = 0; l + 1 < L; ++l)
    for (int h = 0; h < H; ++h) rows << head_label(l, h);
  for (int l = 1; l < L; ++l)
    for (int h = 0; h < H; ++h) cols << head_label(l, h);
  std::vector<std::vector<double>> values;
  for (const auto& v : views) {
    std::vector<double> m(size_t(n * n), std::nan(""));
    for (const auto& s : v.composition)
      if (q(s.kind) == kind) m[size_t((s.layer_from * H + s.head_from) * n + (s.layer_to - 1) * H + s.head_to)] = s.score;
    values.push_back(m);
    titles << QObject::tr("%1: %2-composition (random ≈ %3)").arg(q(v.variant), kind).arg(v.baseline, 0, 'f', 3);
  }
  draw_panels(plot, titles, values, n, n, rows, cols, QObject::tr("later head (reads)"),
              QObject::tr("earlier head (writes)"), QObject::tr("composition score"), false);
}

QString composition_csv(const std::vector<qk::CircuitsView>& views, int seed) {
  QString s = "variant,seed,kind,layer_from,head_from,layer_to,head_to,score,baseline\n";
  for (const auto& v : views)
    for (const auto& c : v.composition)
      s += QString("%1,%2,%3,%4,%5,%6,%7,%8,%9\n").arg(q(v.variant)).arg(seed).arg(q(c.kind)).arg(c.layer_from)
               .arg(c.head_from).arg(c.layer_to).arg(c.head_to).arg(num(c.score), num(v.baseline));
  return s;
}

QString readouts_csv(const std::vector<qk::CircuitsView>& views, int seed) {
  QString s = "variant,seed,layer,head,circuit,direction,sigma,left_tokens,right_tokens\n";
  for (const auto& v : views)
    for (const auto& r : v.readouts)
      for (size_t i = 0; i < r.directions.size(); ++i) {
        std::string left, right;
        for (const auto& t : r.directions[i].left) left += (left.empty() ? "" : " | ") + t;
        for (const auto& t : r.directions[i].right) right += (right.empty() ? "" : " | ") + t;
        s += QString("%1,%2,%3,%4,%5,%6,%7,%8,%9\n").arg(q(v.variant)).arg(seed).arg(r.layer).arg(r.head)
                 .arg(q(r.circuit)).arg(i).arg(num(r.directions[i].sigma), csv_quoted(left), csv_quoted(right));
      }
  return s;
}

QString readouts_text(const std::vector<qk::CircuitsView>& views, int layer, int head) {
  QString s;
  auto show = [](const std::vector<std::string>& toks) {
    QStringList l;
    for (const auto& t : toks) {
      QString x = q(t);
      x.replace('\n', "\\n");
      l << "«" + x + "»";
    }
    return l.join(' ');
  };
  for (const auto& v : views) {
    s += QObject::tr("%1 · layer %2 head %3\n").arg(q(v.variant)).arg(layer).arg(head);
    for (const auto& r : v.readouts) {
      if (r.layer != layer || r.head != head) continue;
      s += r.circuit == "QK" ? QObject::tr("  QK circuit (query token → key token)\n")
                             : QObject::tr("  OV circuit (attended token → logits raised)\n");
      if (r.circuit == "QK" && r.form_rank_read < r.form_rank)
        s += QObject::tr("    (read from the leading %1 of M_h's %2 directions)\n").arg(r.form_rank_read).arg(r.form_rank);
      for (size_t i = 0; i < r.directions.size(); ++i)
        s += QString("    σ%1 = %2:  %3  →  %4\n").arg(i + 1).arg(r.directions[i].sigma, 0, 'g', 4)
                 .arg(show(r.directions[i].left), show(r.directions[i].right));
    }
    s += "\n";
  }
  return s;
}

void draw_ablation(QCustomPlot* plot, const std::vector<qk::AblationView>& views, const QString& what) {
  if (views.empty()) {
    plot->clearGraphs();
    return;
  }
  const int L = views[0].layers, H = views[0].heads;
  QStringList rows, cols, titles;
  for (int l = 0; l < L; ++l) rows << QObject::tr("layer %1").arg(l);
  for (int h = 0; h < H; ++h) cols << QObject::tr("head %1").arg(h);
  std::vector<std::vector<double>> values;
  for (const auto& v : views) {
    std::vector<double> m(size_t(L * H), std::nan(""));
    for (int i = 0; i < L * H; ++i) {
      if (what == "zero" && size_t(i) < v.zero_loss.size()) m[size_t(i)] = v.zero_loss[size_t(i)] - v.base_loss;
      if (what == "mean" && size_t(i) < v.mean_loss.size()) m[size_t(i)] = v.mean_loss[size_t(i)] - v.base_loss;
      if (what == "patch" && size_t(i) < v.patch_restored.size()) m[size_t(i)] = v.patch_restored[size_t(i)];
    }
    values.push_back(m);
    titles << (what == "patch" ? QObject::tr("%1: patching, %2 pairs").arg(q(v.variant)).arg(v.patch_pairs)
                               : QObject::tr("%1: %2 ablation (loss %3)").arg(q(v.variant), what).arg(v.base_loss, 0, 'f', 3));
  }
  draw_panels(plot, titles, values, L, H, rows, cols, QObject::tr("head"), QObject::tr("layer"),
              what == "patch" ? QObject::tr("fraction of the logit difference restored") : QObject::tr("Δ validation loss"),
              true);
}

void draw_rank_ablation(QCustomPlot* plot, const std::vector<qk::AblationView>& views, int layer, int head) {
  plot->clearGraphs();
  double lo = 0, hi = 0, xmax = 1;
  for (const auto& v : views) {
    const size_t i = size_t(layer * v.heads + head);
    if (i >= v.rank_loss.size()) continue;
    auto* g = plot->addGraph();
    const QColor c = variant_color(q(v.variant));
    g->setPen(QPen(c, 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, c, c, 6));
    g->setName(QObject::tr("%1 · layer %2 head %3").arg(q(v.variant)).arg(layer).arg(head));
    for (size_t r = 0; r < v.ranks.size(); ++r) {
      const double d = v.rank_loss[i][r] - v.base_loss;
      g->addData(v.ranks[r], d);
      lo = std::min(lo, d);
      hi = std::max(hi, d);
      xmax = std::max(xmax, double(v.ranks[r]));
    }
  }
  plot->legend->setVisible(plot->graphCount() > 0);
  plot->xAxis->setLabel(QObject::tr("rank r this head's form is cut to (others untouched)"));
  plot->yAxis->setLabel(QObject::tr("Δ validation loss"));
  plot->xAxis->setRange(-0.5, xmax + 0.5);
  plot->yAxis->setRange(lo - 0.05 * (hi - lo + 1e-6), hi + 0.1 * (hi - lo + 1e-6));
  if (plot->graphCount() > 0) show_legend(plot);
}

QString ablation_csv(const std::vector<qk::AblationView>& views, int seed) {
  QString s = "variant,seed,layer,head,kind,rank,val_loss,delta,patch_restored\n";
  for (const auto& v : views)
    for (int l = 0; l < v.layers; ++l)
      for (int h = 0; h < v.heads; ++h) {
        const size_t i = size_t(l * v.heads + h);
        const QString patch = i < v.patch_restored.size() ? num(v.patch_restored[i]) : QString();
        s += QString("%1,%2,%3,%4,zero,,%5,%6,%7\n").arg(q(v.variant)).arg(seed).arg(l).arg(h)
                 .arg(num(v.zero_loss[i]), num(v.zero_loss[i] - v.base_loss), patch);
        s += QString("%1,%2,%3,%4,mean,,%5,%6,\n").arg(q(v.variant)).arg(seed).arg(l).arg(h)
                 .arg(num(v.mean_loss[i]), num(v.mean_loss[i] - v.base_loss));
        for (size_t r = 0; r < v.ranks.size(); ++r)
          s += QString("%1,%2,%3,%4,rank,%5,%6,%7,\n").arg(q(v.variant)).arg(seed).arg(l).arg(h).arg(v.ranks[r])
                   .arg(num(v.rank_loss[i][r]), num(v.rank_loss[i][r] - v.base_loss));
      }
  return s;
}

Figure eigen_figure(const std::vector<qk::GeometryView>& geo, int layer, int head, int seed, const QString& when,
                    const QString& caption) {
  Figure f;
  f.name = "geometry_eigenvalues";
  f.title = QObject::tr("Eigenvalues of layer %1 head %2's QK form in the complex plane%3").arg(layer).arg(head).arg(when);
  f.caption = caption.isEmpty() ? QObject::tr("non-zero eigenvalues of M_h; for standard those of W_K,h·W_Q,hᵀ") : caption;
  f.draw = [geo, layer, head](QCustomPlot* p) { draw_eigen_plane(p, geo, layer, head); };
  f.csv = [geo, seed] { return eigen_csv(geo, seed); };
  return f;
}

Figure geometry_scores_figure(const std::vector<qk::GeometryView>& geo, int seed, const QString& when, const QString& caption) {
  Figure f;
  f.name = "geometry_scores";
  f.title = QObject::tr("Symmetry and directionality of every head's QK form%1").arg(when);
  f.caption = caption.isEmpty() ? QObject::tr("s = (‖sym‖² − ‖skew‖²)/‖M‖²; directionality as Saponati et al. 2025 "
                                              "(column minus row norm excess); diamonds: each layer's Σ_h M_h")
                                : caption;
  f.draw = [geo](QCustomPlot* p) { draw_geometry_scores(p, geo); };
  f.csv = [geo, seed] { return geometry_csv(geo, seed); };
  return f;
}

Figure alpha_figure(const std::vector<qk::EsdRecord>& esd, int seed, const QString& when, const QString& caption) {
  Figure f;
  f.name = "spectral_health";
  f.title = QObject::tr("Power-law α of the QK forms' eigenvalue spectra over training%1").arg(when);
  f.caption = caption.isEmpty() ? QObject::tr("α by maximum likelihood, x_min by the KS distance (WeightWatcher's "
                                              "estimator); the CSV adds every weight matrix with its MP fit")
                                : caption;
  f.draw = [esd](QCustomPlot* p) { draw_alpha_history(p, esd); };
  f.csv = [esd, seed] { return esd_csv(esd, seed); };
  return f;
}

Figure composition_figure(const std::vector<qk::CircuitsView>& circ, const QString& kind, int seed, const QString& when,
                          const QString& caption) {
  Figure f;
  f.name = "composition_" + kind;
  f.title = QObject::tr("%1-composition between heads of earlier and later layers%2").arg(kind, when);
  f.caption = caption.isEmpty() ? QObject::tr("‖OV_a·M_b‖ (Q), ‖OV_a·M_bᵀ‖ (K), ‖OV_a·OV_b‖ (V) over the product of "
                                              "the norms; the CSV has every kind")
                                : caption;
  f.height_factor = panel_height_factor(int(circ.size()));
  f.draw = [circ, kind](QCustomPlot* p) { draw_composition(p, circ, kind); };
  f.csv = [circ, seed] { return composition_csv(circ, seed); };
  return f;
}

Figure ablation_figure(const std::vector<qk::AblationView>& abl, const QString& what, int seed, const QString& when,
                       const QString& caption) {
  Figure f;
  f.name = "ablation_" + what;
  f.title = what == "patch" ? QObject::tr("Activation patching: the share of the logit difference each head restores%1").arg(when)
            : what == "mean" ? QObject::tr("Validation loss change when each head is mean-ablated%1").arg(when)
                             : QObject::tr("Validation loss change when each head is zero-ablated%1").arg(when);
  f.caption = caption.isEmpty() ? QObject::tr("every variant side by side; layers as rows, heads as columns") : caption;
  f.height_factor = panel_height_factor(int(abl.size()));
  f.draw = [abl, what](QCustomPlot* p) { draw_ablation(p, abl, what); };
  f.csv = [abl, seed] { return ablation_csv(abl, seed); };
  return f;
}

Figure rank_ablation_figure(const std::vector<qk::AblationView>& abl, int layer, int head, int seed, const QString& when,
                            const QString& caption) {
  Figure f;
  f.name = "ablation_rank";
  f.title = QObject::tr("Loss as layer %1 head %2's QK form is cut to rank r%3").arg(layer).arg(head).arg(when);
  f.caption = caption.isEmpty() ? QObject::tr("only this head's form is truncated; r = 0 gives it uniform causal attention")
                                : caption;
  f.draw = [abl, layer, head](QCustomPlot* p) { draw_rank_ablation(p, abl, layer, head); };
  f.csv = [abl, seed] { return ablation_csv(abl, seed); };
  return f;
}

}  // namespace qkui
