// QKLab ui — Lens, Attribution, Detectors and Model view figures (see lens_figures.h).
#include "lens_figures.h"

#include <algorithm>
#include <cmath>
#include <qcustomplot.h>

#include "mechanism_figures.h"
#include "plot_util.h"

namespace qkui {
namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }
QString num(double v) { return std::isfinite(v) ? QString::number(v, 'g', 9) : QString(); }

// Position labels: every position up to 16, else every k-th (the rest empty).
QStringList position_labels(const std::vector<std::string>& tokens) {
  QStringList out;
  const int T = int(tokens.size()), every = std::max(1, (T + 15) / 16);
  for (int t = 0; t < T; ++t) out << (t % every == 0 ? q(tokens[size_t(t)]).simplified().left(10) : QString());
  return out;
}

// Plain numbers: the axis label names them, and twelve heads fit a narrow panel.
QStringList numbers(int n) {
  QStringList out;
  for (int i = 0; i < n; ++i) out << QString::number(i);
  return out;
}
QStringList layer_labels(int L) { return numbers(L); }
QStringList head_labels(int H) { return numbers(H); }


const std::vector<double>* detector_values(const qk::DetectorView& v, const QString& kind, const QString& on) {
  const bool rep = on == "repeated";
  if (kind == "previous_token") return rep ? &v.prev_rep : &v.prev_val;
  if (kind == "duplicate_token") return rep ? &v.dup_rep : &v.dup_val;
  return rep ? &v.ind_rep : &v.ind_val;
}

QString detector_name(const QString& kind) {
  return kind == "previous_token" ? QObject::tr("previous-token")
         : kind == "duplicate_token" ? QObject::tr("duplicate-token")
                                     : QObject::tr("induction");
}

}  // namespace

void draw_logit_lens(QCustomPlot* plot, const std::vector<qk::LogitLensView>& views, const QString& what) {
  if (views.empty() || views[0].T == 0) {
    plot->clearPlottables();
    return;
  }
  const int L = views[0].layers, T = views[0].T;
  QStringList titles;
  std::vector<std::vector<double>> values;
  for (const auto& v : views) {
    std::vector<double> m(size_t(L * T), std::nan(""));
    for (int i = 0; i < L * T && size_t(i) < v.loss.size(); ++i) {
      if (what == "loss") m[size_t(i)] = v.loss[size_t(i)];
      else if (what == "rank") m[size_t(i)] = v.rank[size_t(i)] < 0 ? std::nan("") : std::log10(1.0 + double(v.rank[size_t(i)]));
      else m[size_t(i)] = v.top_probs[size_t(i)].empty() ? std::nan("") : v.top_probs[size_t(i)][0];
    }
    values.push_back(std::move(m));
    titles << q(v.variant);
  }
  const QString scale = what == "loss" ? QObject::tr("−log p(next token)")
                        : what == "rank" ? QObject::tr("log10(1 + rank of the next token)")
                                         : QObject::tr("probability of the top token");
  draw_panels(plot, titles, values, L, T, layer_labels(L), position_labels(views[0].tokens), QObject::tr("position (input token)"),
              QObject::tr("after block"), scale, false);
}

void draw_lens_layers(QCustomPlot* plot, const std::vector<qk::LogitLensView>& views) {
  plot->clearGraphs();
  double hi = 0;
  int L = 1;
  for (const auto& v : views) {
    auto* g = plot->addGraph();
    const QColor c = variant_color(q(v.variant));
    g->setPen(QPen(c, 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, c, c, 6));
    g->setName(q(v.variant));
    for (size_t l = 0; l < v.mean_loss.size(); ++l)
      if (std::isfinite(v.mean_loss[l])) {
        g->addData(double(l), v.mean_loss[l]);
        hi = std::max(hi, v.mean_loss[l]);
      }
    L = std::max(L, v.layers);
  }
  QSharedPointer<QCPAxisTickerFixed> t(new QCPAxisTickerFixed);
  t->setTickStep(1);
  plot->xAxis->setTicker(t);
  plot->xAxis->setLabel(QObject::tr("read out after block (logit lens, final LayerNorm recomputed)"));
  plot->yAxis->setLabel(QObject::tr("mean validation loss (nats)"));
  plot->xAxis->setRange(-0.3, L - 0.7);
  plot->yAxis->setRange(0, hi * 1.08 + 1e-6);
  if (plot->graphCount() > 0) show_legend(plot);
}

QString logit_lens_csv(const std::vector<qk::LogitLensView>& views, int seed) {
  QString s = "variant,seed,layer,position,token,target,loss,rank,top_tokens,top_probs,mean_loss,top1\n";
  for (const auto& v : views)
    for (int l = 0; l < v.layers; ++l)
      for (int t = 0; t < v.T; ++t) {
        const size_t i = size_t(l * v.T + t);
        std::string toks;
        QString probs;
        for (size_t k = 0; k < v.top_tokens[i].size(); ++k) {
          toks += (k ? " | " : "") + v.top_tokens[i][k];
          probs += (k ? " " : "") + num(v.top_probs[i][k]);
        }
        s += QString("%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12\n").arg(q(v.variant)).arg(seed).arg(l).arg(t)
                 .arg(csv_quoted(v.tokens[size_t(t)]), csv_quoted(v.targets[size_t(t)]), num(v.loss[i]),
                      v.rank[i] < 0 ? QString() : QString::number(v.rank[i]), csv_quoted(toks), probs,
                      num(v.mean_loss[size_t(l)]), num(v.top1[size_t(l)]));
      }
  return s;
}

QString lens_cell_text(const qk::LogitLensView& v, int layer, int position) {
  if (layer < 0 || layer >= v.layers || position < 0 || position >= v.T) return {};
  const size_t i = size_t(layer * v.T + position);
  QString s = QObject::tr("%1, after block %2, position %3 «%4»").arg(q(v.variant)).arg(layer).arg(position)
                  .arg(q(v.tokens[size_t(position)]));
  if (!v.targets[size_t(position)].empty())
    s += QObject::tr(" → «%1»: loss %2, rank %3").arg(q(v.targets[size_t(position)])).arg(v.loss[i], 0, 'f', 3).arg(v.rank[i]);
  s += "\n" + QObject::tr("top:");
  for (size_t k = 0; k < v.top_tokens[i].size(); ++k)
    s += QString(" «%1» %2").arg(q(v.top_tokens[i][k])).arg(v.top_probs[i][k], 0, 'f', 3);
  return s;
}

void draw_attribution(QCustomPlot* plot, const std::vector<qk::AttributionView>& views, const QString& source) {
  QStringList titles;
  std::vector<std::vector<double>> values;
  int L = 0, H = 0;
  for (const auto& v : views) {
    if (q(v.source) != source) continue;
    L = v.layers;
    H = v.heads;
    values.push_back(v.head);
    titles << (source == "prompt" ? QObject::tr("%1: «%2» vs «%3», Δlogit %4").arg(q(v.variant), q(v.answer), q(v.wrong))
                                        .arg(v.logit_diff, 0, 'f', 2)
                                  : QObject::tr("%1: Δlogit %2").arg(q(v.variant)).arg(v.logit_diff, 0, 'f', 2));
  }
  if (values.empty()) {
    plot->clearPlottables();
    return;
  }
  draw_panels(plot, titles, values, L, H, layer_labels(L), head_labels(H), QObject::tr("head"), QObject::tr("layer"),
              QObject::tr("direct logit attribution"), true);
}

void draw_attribution_parts(QCustomPlot* plot, const std::vector<qk::AttributionView>& views, const QString& source) {
  plot->clearPlottables();
  auto* group = new QCPBarsGroup(plot);
  QSharedPointer<QCPAxisTickerText> ticks(new QCPAxisTickerText);
  double lo = 0, hi = 0;
  int n = 0, shown = 0;
  for (const auto& v : views) shown += q(v.source) == source;
  for (const auto& v : views) {
    if (q(v.source) != source) continue;
    std::vector<std::pair<QString, double>> parts{{QObject::tr("embed"), v.embed}};
    for (int l = 0; l < v.layers; ++l) {
      double attn = v.attn_bias[size_t(l)];
      for (int h = 0; h < v.heads; ++h) attn += v.head[size_t(l * v.heads + h)];
      parts.push_back({QObject::tr("L%1 attn").arg(l), attn});
      parts.push_back({QObject::tr("L%1 MLP").arg(l), v.mlp[size_t(l)]});
    }
    parts.push_back({QObject::tr("LN shift"), v.final_shift});
    auto* bars = new QCPBars(plot->xAxis, plot->yAxis);
    const QColor c = variant_color(q(v.variant));
    bars->setPen(QPen(c));
    bars->setBrush(c);
    bars->setName(q(v.variant));
    bars->setWidth(0.8 / std::max(1, shown));
    bars->setBarsGroup(group);
    for (size_t i = 0; i < parts.size(); ++i) {
      bars->addData(double(i), parts[i].second);
      lo = std::min(lo, parts[i].second);
      hi = std::max(hi, parts[i].second);
      if (n == 0) ticks->addTick(double(i), parts[i].first);
    }
    ++n;
  }
  plot->xAxis->setTicker(ticks);
  plot->xAxis->setTickLabelRotation(ticks->ticks().size() > 12 ? 60 : 0);
  plot->xAxis->setLabel(QObject::tr("part of the final residual stream"));
  plot->yAxis->setLabel(QObject::tr("share of the logit difference"));
  plot->xAxis->setRange(-0.7, double(ticks->ticks().size()) - 0.3);
  const double pad = 0.08 * (hi - lo + 1e-6);
  plot->yAxis->setRange(lo - pad, hi + pad);
  if (n > 0) show_legend(plot);
}

QString attribution_csv(const std::vector<qk::AttributionView>& views, int seed) {
  QString s = "variant,seed,source,part,layer,head,attribution,logit_diff,positions,answer,wrong,max_error\n";
  for (const auto& v : views) {
    auto put = [&](const QString& part, int l, int h, double x) {
      s += QString("%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12\n").arg(q(v.variant)).arg(seed).arg(q(v.source), part)
               .arg(l < 0 ? QString() : QString::number(l), h < 0 ? QString() : QString::number(h), num(x),
                    num(v.logit_diff)).arg(v.positions).arg(csv_quoted(v.answer), csv_quoted(v.wrong), num(v.max_error));
    };
    put("embed", -1, -1, v.embed);
    for (int l = 0; l < v.layers; ++l) {
      for (int h = 0; h < v.heads; ++h) put("head", l, h, v.head[size_t(l * v.heads + h)]);
      put("attn_bias", l, -1, v.attn_bias[size_t(l)]);
      put("mlp", l, -1, v.mlp[size_t(l)]);
    }
    put("final_shift", -1, -1, v.final_shift);
  }
  return s;
}

QString attribution_check_text(const std::vector<qk::AttributionView>& views, const QString& source) {
  QStringList parts;
  for (const auto& v : views)
    if (q(v.source) == source)
      parts << QObject::tr("%1: parts add up to the logit difference %2 within %3").arg(q(v.variant))
                   .arg(v.logit_diff, 0, 'f', 4).arg(v.max_error, 0, 'g', 2);
  return parts.join("; ");
}

void draw_detectors(QCustomPlot* plot, const std::vector<qk::DetectorView>& views, const QString& kind, const QString& on) {
  QStringList titles;
  std::vector<std::vector<double>> values;
  int L = 0, H = 0;
  for (const auto& v : views) {
    L = v.layers;
    H = v.heads;
    values.push_back(*detector_values(v, kind, on));
    titles << q(v.variant);
  }
  if (values.empty() || values[0].empty()) {
    plot->clearPlottables();
    return;
  }
  draw_panels(plot, titles, values, L, H, layer_labels(L), head_labels(H), QObject::tr("head"), QObject::tr("layer"),
              QObject::tr("share of attention on the pattern"), false);
}

QString detectors_csv(const std::vector<qk::DetectorView>& views, int seed) {
  QString s = "variant,seed,layer,head,detector,sequences,score,uniform\n";
  for (const auto& v : views)
    for (const char* kind : {"previous_token", "duplicate_token", "induction"})
      for (const char* on : {"repeated", "validation"}) {
        const auto* x = detector_values(v, kind, on);
        for (int l = 0; l < v.layers && !x->empty(); ++l)
          for (int h = 0; h < v.heads; ++h)
            s += QString("%1,%2,%3,%4,%5,%6,%7,%8\n").arg(q(v.variant)).arg(seed).arg(l).arg(h).arg(kind, on)
                     .arg(num((*x)[size_t(l * v.heads + h)]),
                          QString(kind) == "previous_token" && QString(on) == "repeated" ? num(v.uniform_prev_rep) : QString());
      }
  return s;
}

QString detectors_text(const std::vector<qk::DetectorView>& views) {
  QStringList lines;
  for (const auto& v : views) {
    QStringList best;
    for (const char* kind : {"previous_token", "duplicate_token", "induction"}) {
      const auto* x = detector_values(v, kind, "repeated");
      if (x->empty()) continue;
      const auto it = std::max_element(x->begin(), x->end());
      const int i = int(it - x->begin());
      best << QObject::tr("%1 L%2H%3 %4").arg(detector_name(kind)).arg(i / v.heads).arg(i % v.heads).arg(*it, 0, 'f', 2);
    }
    lines << QObject::tr("%1 — strongest: %2 (uniform attention scores %3 as previous-token)")
                 .arg(q(v.variant), best.join(", ")).arg(v.uniform_prev_rep, 0, 'f', 2);
  }
  return lines.join("\n");
}

ModelWindow clamp_window(const qk::AttentionView& v, ModelWindow w) {
  const int L = std::max(1, v.layers), H = std::max(1, v.heads), T = std::max(1, v.T);
  w.layer_from = std::clamp(w.layer_from, 0, L - 1);
  w.layer_to = std::clamp(w.layer_to, w.layer_from, L - 1);
  w.head_from = std::clamp(w.head_from, 0, H - 1);
  w.head_to = std::clamp(w.head_to, w.head_from, H - 1);
  w.start = std::clamp(w.start, 0, T - 1);
  if (w.length <= 0) w.length = T;
  w.length = std::clamp(w.length, 1, T - w.start);
  return w;
}

std::vector<std::pair<int, int>> draw_model_view(QCustomPlot* plot, const qk::AttentionView& v, const ModelWindow& win) {
  plot->clearPlottables();
  std::vector<std::pair<int, int>> cells;
  if (v.T == 0 || v.weights.empty()) return cells;
  const auto w = clamp_window(v, win);
  QStringList titles;
  for (int l = w.layer_from; l <= w.layer_to; ++l)
    for (int h = w.head_from; h <= w.head_to; ++h) {
      cells.emplace_back(l, h);
      titles << QString("L%1H%2").arg(l).arg(h);
    }
  const int cols = w.head_to - w.head_from + 1;
  auto rects = make_panels(plot, int(cells.size()), cols, titles);
  QCPColorGradient grad(QCPColorGradient::gpThermal);
  for (size_t p = 0; p < cells.size(); ++p) {
    auto* rect = rects[p];
    style_axes(rect);
    for (auto* ax : {rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft)}) {
      ax->setTickLabels(false);
      ax->setTicks(false);
    }
    auto* map = new QCPColorMap(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
    map->setInterpolate(false);
    map->data()->setSize(w.length, w.length);
    map->data()->setRange(QCPRange(w.start, w.start + w.length - 1), QCPRange(w.start, w.start + w.length - 1));
    const auto& a = v.weights[size_t(cells[p].first * v.heads + cells[p].second)];  // (T, T) row-major
    for (int qi = 0; qi < w.length; ++qi)
      for (int k = 0; k < w.length; ++k)
        map->data()->setCell(k, qi, a[size_t((w.start + qi) * v.T + w.start + k)]);
    map->setGradient(grad);
    map->setDataRange(QCPRange(0, 1));
    rect->axis(QCPAxis::atBottom)->setRange(w.start - 0.5, w.start + w.length - 0.5);
    rect->axis(QCPAxis::atLeft)->setRange(w.start - 0.5, w.start + w.length - 0.5);
    rect->axis(QCPAxis::atLeft)->setRangeReversed(true);
  }
  return cells;
}

Figure lens_figure(const std::vector<qk::LogitLensView>& v, const QString& what, int seed, const QString& when,
                   const QString& caption) {
  Figure f;
  f.name = "logit_lens_" + what;
  f.title = (what == "loss" ? QObject::tr("Logit lens: the next token's loss read out after every block%1")
             : what == "rank" ? QObject::tr("Logit lens: the next token's rank read out after every block%1")
                              : QObject::tr("Logit lens: the top token's probability after every block%1")).arg(when);
  f.caption = caption.isEmpty() ? QObject::tr("each layer's residual stream through the final LayerNorm (recomputed on "
                                              "that stream) and the unembedding; every variant side by side")
                                : caption;
  f.height_factor = panel_height_factor(int(v.size()));
  f.draw = [v, what](QCustomPlot* p) { draw_logit_lens(p, v, what); };
  f.csv = [v, seed] { return logit_lens_csv(v, seed); };
  return f;
}

Figure lens_layers_figure(const std::vector<qk::LogitLensView>& v, int seed, const QString& when, const QString& caption) {
  Figure f;
  f.name = "logit_lens_layers";
  f.title = QObject::tr("Logit lens: validation loss of every layer's read-out%1").arg(when);
  f.caption = caption.isEmpty() ? QObject::tr("the last layer's read-out is the model's own loss") : caption;
  f.draw = [v](QCustomPlot* p) { draw_lens_layers(p, v); };
  f.csv = [v, seed] { return logit_lens_csv(v, seed); };
  return f;
}

Figure attribution_figure(const std::vector<qk::AttributionView>& v, const QString& source, int seed, const QString& when,
                          const QString& caption) {
  Figure f;
  f.name = "attribution_heads_" + source;
  f.title = (source == "prompt" ? QObject::tr("Direct logit attribution of every head, the prompt's answer%1")
                                : QObject::tr("Direct logit attribution of every head, validation mean%1")).arg(when);
  f.caption = caption.isEmpty() ? attribution_check_text(v, source) : caption;
  int n = 0;
  for (const auto& a : v) n += q(a.source) == source;
  f.height_factor = panel_height_factor(n);
  f.draw = [v, source](QCustomPlot* p) { draw_attribution(p, v, source); };
  f.csv = [v, seed] { return attribution_csv(v, seed); };
  return f;
}

Figure attribution_parts_figure(const std::vector<qk::AttributionView>& v, const QString& source, int seed,
                                const QString& when, const QString& caption) {
  Figure f;
  f.name = "attribution_layers_" + source;
  f.title = QObject::tr("Direct logit attribution per layer: attention and MLP (%1)%2")
                .arg(source == "prompt" ? QObject::tr("the prompt") : QObject::tr("validation mean"), when);
  f.caption = caption.isEmpty() ? attribution_check_text(v, source) : caption;
  f.draw = [v, source](QCustomPlot* p) { draw_attribution_parts(p, v, source); };
  f.csv = [v, seed] { return attribution_csv(v, seed); };
  return f;
}

Figure detectors_figure(const std::vector<qk::DetectorView>& v, const QString& kind, const QString& on, int seed,
                        const QString& when, const QString& caption) {
  Figure f;
  f.name = "detectors_" + kind + "_" + on;
  const int seqs = v.empty() ? 0 : on == "repeated" ? int(v[0].repeated.size()) : v[0].validation_sequences;
  const int len = v.empty() ? 0 : v[0].repeated_len;
  f.title = (on == "repeated" ? QObject::tr("Head detector: %1 score of every head, %2 sequences of %3 repeated random tokens%4")
                                    .arg(detector_name(kind)).arg(seqs).arg(len).arg(when)
                              : QObject::tr("Head detector: %1 score of every head, %2 validation sequences%3")
                                    .arg(detector_name(kind)).arg(seqs).arg(when));
  f.height_factor = panel_height_factor(int(v.size()));
  f.caption = caption.isEmpty() ? detectors_text(v) : caption;
  f.draw = [v, kind, on](QCustomPlot* p) { draw_detectors(p, v, kind, on); };
  f.csv = [v, seed] { return detectors_csv(v, seed); };
  return f;
}

Figure model_view_figure(const qk::AttentionView& v, const ModelWindow& w, int seed, const QString& when,
                         const QString& caption) {
  Figure f;
  f.name = "model_view_" + q(v.variant);
  f.title = QObject::tr("Model view: every layer × head of %1%2").arg(q(v.variant), when);
  f.caption = caption;
  const auto cw = clamp_window(v, w);
  f.height_factor = std::max(1.0, (cw.layer_to - cw.layer_from + 1) / 3.0);
  f.draw = [v, w](QCustomPlot* p) { draw_model_view(p, v, w); };
  f.csv = [v, seed] {
    QString s;
    for (int l = 0; l < v.layers; ++l) {
      const QString part = attention_csv({v}, l, -1, seed);
      s += l == 0 ? part : part.section('\n', 1);
    }
    return s;
  };
  return f;
}

}  // namespace qkui
