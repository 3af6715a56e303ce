// QKLab ui — the exported report (see report.h).
#include "report.h"
#include "names.h"

#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QFileInfo>
#include <cmath>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <qcustomplot.h>

#include "attention_view.h"
#include "lens_figures.h"
#include "loss_plot.h"
#include "mechanism_figures.h"
#include "plot_util.h"
#include "rank_view.h"
#include "run_dir.h"
#include "version_info.h"

namespace qkui {
namespace {

QString q(const std::string& s) { return QString::fromStdString(s); }
QString esc(const QString& s) { return s.toHtmlEscaped(); }

QString si(double v, const QString& unit) {
  if (!std::isfinite(v)) return "–";
  const char* prefixes[] = {"", "k", "M", "G", "T", "P"};
  int i = 0;
  while (std::fabs(v) >= 1000 && i < 5) {
    v /= 1000;
    ++i;
  }
  return QString("%1 %2%3").arg(v, 0, 'f', v < 10 ? 2 : v < 100 ? 1 : 0).arg(prefixes[i]).arg(unit);
}

QString fixed(double v, int digits) { return std::isfinite(v) ? QString::number(v, 'f', digits) : QString("–"); }

QString grouped(int64_t v) {
  QString s = QString::number(v);
  for (int i = s.size() - 3; i > (v < 0 ? 1 : 0); i -= 3) s.insert(i, ',');
  return s;
}

QString at_step(const qk::ReportData& d) {
  return QObject::tr("computed at step %1, seed %2").arg(d.step).arg(d.seed);
}

QString prompt_label(const qk::ReportData& d) {
  return qk::is_language_kind(d.config.data.kind) ? QObject::tr("the prompt '%1'").arg(q(d.prompt))
                                      : QObject::tr("validation sequence %1").arg(q(d.prompt));
}

Figure spectra_grid_figure(const qk::ReportData& d, int layer) {
  const auto& m = d.config.model;
  std::vector<qk::SpectrumView> mine;
  for (const auto& s : d.spectra)
    if (s.layer == layer) mine.push_back(s);
  const int heads = m.n_heads, hd = m.effective_qk_head_dim(), dim = m.emb_dim;
  const int cols = heads <= 3 ? heads : heads <= 4 ? 2 : heads <= 9 ? 3 : 4;
  const int rows = (heads + cols - 1) / cols;
  Figure f;
  f.name = QString("spectra_L%1").arg(layer);
  f.title = QObject::tr("Singular values of each head's QK form, layer %1").arg(layer);
  f.caption = QObject::tr("σ_i of S_h (merged) and W_Q,h·W_K,hᵀ (standard) for every head of layer %1, log scale; "
                          "dashed: head_dim = %2; %3")
                  .arg(layer).arg(hd).arg(at_step(d));
  f.height_factor = std::max(1.0, rows / 2.0);
  f.draw = [mine, layer, heads, hd, dim](QCustomPlot* p) { draw_spectra_grid(p, mine, layer, heads, hd, dim); };
  const int seed = d.seed;
  f.csv = [mine, seed] { return spectra_csv(mine, seed); };
  return f;
}

}  // namespace

QList<Figure> report_figures(const qk::ReportData& d) {
  QList<Figure> out;
  const auto& m = d.config.model;
  const int hd = m.effective_qk_head_dim(), dim = m.emb_dim;
  if (!d.metrics.empty()) {
    int seeds = 0;
    for (const auto& s : d.summary) seeds = std::max(seeds, s.seeds);
    out << loss_figure(d.metrics, 0.0, LossX::Step,
                       QObject::tr("Cross-entropy per token at every evaluation (no smoothing)%1")
                           .arg(seeds > 1 ? QObject::tr("; mean over %1 seeds with the min–max band").arg(seeds) : ""));
  }
  if (!d.spectra.empty()) {
    {  // the first head, large
      std::vector<qk::SpectrumView> first;
      for (const auto& s : d.spectra)
        if (s.layer == 0 && s.head == 0) first.push_back(s);
      Figure f;
      f.name = "spectra_L0H0";
      f.title = QObject::tr("Singular values of the QK form, layer 0 head 0, every variant");
      f.caption = QObject::tr("σ_i of S_h and W_Q,h·W_K,hᵀ, log scale; a standard head has at most head_dim = %1 "
                              "non-zero values; %2").arg(hd).arg(at_step(d));
      f.draw = [first, hd, dim](QCustomPlot* p) { draw_spectra(p, first, hd, dim); };
      const int seed = d.seed;
      f.csv = [first, seed] { return spectra_csv(first, seed); };
      out << f;
    }
    for (int l = 0; l < m.n_layers; ++l) out << spectra_grid_figure(d, l);
    const auto spectra = d.spectra;
    const int heads = m.n_heads;
    Figure f;
    f.name = "rank_summary";
    f.title = QObject::tr("Effective rank of every head's QK form, per variant");
    f.caption = QObject::tr("exp of the entropy of σ/Σσ for each head (x = layer·%1 + head); dashed: head_dim = %2; %3")
                    .arg(heads).arg(hd).arg(at_step(d));
    f.draw = [spectra, heads, hd](QCustomPlot* p) { draw_rank_summary(p, spectra, heads, hd); };
    const int seed = d.seed;
    f.csv = [spectra, seed] { return rank_metrics_csv(spectra, seed); };
    out << f;
  }
  if (!d.spectra_history.empty()) {
    // One copy of the history, shared by the per-variant figures (it holds every head's σ at every
    // evaluation: megabytes for a large model).
    const auto history = std::make_shared<const std::vector<qk::SpectraRecord>>(d.spectra_history);
    for (const auto v : d.config.variants) {
      const std::string name = qk::variant_name(v);
      bool any = false;
      for (const auto& r : d.spectra_history) any = any || r.variant == name;
      if (!any) continue;
      Figure f;
      f.name = "spectra_history_" + q(name);
      f.title = QObject::tr("Spectrum over training: %1, layer 0 head 0").arg(q(name));
      f.caption = QObject::tr("log10 σ_i of the %1 variant's first head at every evaluation (first seed)").arg(q(name));
      f.draw = [history, name](QCustomPlot* p) { draw_spectra_history(p, *history, name, 0, 0); };
      f.csv = [history] { return QString::fromStdString(qk::spectra_history_csv(*history)); };
      out << f;
    }
    out << effective_rank_figure(d.spectra_history);
  }
  if (!d.truncation.empty())
    out << truncation_figure(d.truncation, dim, d.seed,
                             QObject::tr("every head's form replaced by its best rank-r approximation (r = 0: uniform "
                                         "causal attention), loss on fixed validation batches; %1").arg(at_step(d)));
  if (!d.divergence.empty()) out << kl_figure(d.divergence);
  const QString when = QObject::tr(" (step %1, seed %2)").arg(d.step).arg(d.seed);
  if (!d.geometry.empty()) {
    out << geometry_scores_figure(d.geometry, d.seed, when, {});
    for (int l = 0; l < m.n_layers; ++l) {
      Figure f = eigen_figure(d.geometry, l, 0, d.seed, when, {});
      f.name = QString("geometry_eigenvalues_L%1H0").arg(l);
      out << f;
    }
  }
  if (!d.esd.empty()) out << alpha_figure(d.esd, d.seed, when, {});
  if (!d.circuits.empty() && m.n_layers > 1)
    for (const char* kind : {"K", "Q", "V"}) out << composition_figure(d.circuits, kind, d.seed, when, {});
  if (!d.ablation.empty()) {
    for (const char* what : {"zero", "mean", "patch"}) out << ablation_figure(d.ablation, what, d.seed, when, {});
    out << rank_ablation_figure(d.ablation, 0, 0, d.seed, when, {});
  }
  if (!d.logit_lens.empty()) {
    out << lens_figure(d.logit_lens, "loss", d.seed, when,
                       QObject::tr("each layer's residual stream through the final LayerNorm (recomputed on that "
                                   "stream) and the unembedding, for %1").arg(prompt_label(d)));
    if (d.logit_lens[0].positions > 0) out << lens_layers_figure(d.logit_lens, d.seed, when, {});
  }
  for (const char* source : {"validation", "prompt"}) {
    bool any = false;
    for (const auto& a : d.attribution) any = any || a.source == source;
    if (!any) continue;
    out << attribution_figure(d.attribution, source, d.seed, when, {});
    out << attribution_parts_figure(d.attribution, source, d.seed, when, {});
  }
  if (!d.detectors.empty())
    for (const char* kind : {"previous_token", "duplicate_token", "induction"})
      out << detectors_figure(d.detectors, kind, "repeated", d.seed, when, {});
  if (!d.attention.empty())
    for (const auto& a : d.attention) {
      ModelWindow w{0, a.layers - 1, 0, a.heads - 1, 0, a.T > 64 ? 64 : 0};
      out << model_view_figure(a, w, d.seed, when,
                               QObject::tr("every layer × head, queries as rows, keys as columns, for %1%2; %3")
                                   .arg(prompt_label(d), a.T > 64 ? QObject::tr(" (its first 64 positions)") : QString(),
                                        at_step(d)));
    }
  if (!d.attention.empty())
    for (int l = 0; l < m.n_layers; ++l) {
      Figure f = attention_figure(d.attention, l, -1, d.seed, prompt_label(d));
      f.caption += "; " + at_step(d);
      out << f;
    }
  return out;
}

namespace {

QString summary_table(const qk::ReportData& d) {
  const bool acc = !qk::is_language_kind(d.config.data.kind);
  QString h = "<table><tr><th>variant</th><th>parameters</th><th>training FLOPs / token</th><th>of which attention</th>"
              "<th>memory (est.)</th><th>steps</th><th>tokens seen</th><th>wall time</th><th>tokens/s</th>"
              "<th>train loss</th><th>val loss</th>";
  if (acc) h += "<th>train acc</th><th>val acc</th>";
  h += "<th>seeds</th></tr>\n";
  for (const auto& s : d.summary) {
    h += QString("<tr><td><b style='color:%1'>%2</b></td><td>%3</td><td>%4</td><td>%5</td><td>%6</td><td>%7</td>"
                 "<td>%8</td><td>%9</td><td>%10</td><td>%11</td><td>%12</td>")
             .arg(variant_color(q(s.variant)).name(), esc(q(s.variant)), grouped(s.parameters),
                  si(s.flops_per_token, "FLOP"), si(s.attention_flops_per_token, "FLOP"), si(s.memory_bytes, "B"),
                  grouped(s.steps), grouped(s.tokens_seen), QString("%1 s").arg(fixed(s.wall_time_s, 1)),
                  si(s.tokens_per_s, ""), fixed(s.train_loss, 4))
             .arg(fixed(s.val_loss, 4));
    if (acc) h += QString("<td>%1</td><td>%2</td>").arg(fixed(s.train_acc, 3), fixed(s.val_acc, 3));
    h += QString("<td>%1</td></tr>\n").arg(s.seeds);
  }
  return h + "</table>\n";
}

QString rank_table(const qk::ReportData& d) {
  // Mean over the heads of each (variant, layer); the full per-head table is rank_metrics.csv.
  struct Acc {
    double n = 0, num = 0, eff = 0, stable = 0, r90 = 0, r99 = 0, norm = 0;
  };
  std::map<std::pair<std::string, int>, Acc> by;
  std::vector<std::string> order;
  for (const auto& s : d.spectra) {
    if (std::find(order.begin(), order.end(), s.variant) == order.end()) order.push_back(s.variant);
    auto& a = by[{s.variant, s.layer}];
    a.n += 1;
    a.num += s.metrics.numerical_rank;
    a.eff += s.metrics.effective_rank;
    a.stable += s.metrics.stable_rank;
    a.r90 += s.metrics.rank90;
    a.r99 += s.metrics.rank99;
    a.norm += s.metrics.spectral_norm;
  }
  QString h = "<table><tr><th>variant</th><th>form</th><th>layer</th><th>numerical rank</th><th>effective rank</th>"
              "<th>stable rank</th><th>rank 90%</th><th>rank 99%</th><th>‖·‖₂</th></tr>\n";
  for (const auto& v : order)
    for (int l = 0; l < d.config.model.n_layers; ++l) {
      auto it = by.find({v, l});
      if (it == by.end()) continue;
      const auto& a = it->second;
      std::string matrix;
      for (const auto& s : d.spectra)
        if (s.variant == v) matrix = s.matrix;
      h += QString("<tr><td>%1</td><td>%2</td><td>%3</td><td>%4</td><td>%5</td><td>%6</td><td>%7</td><td>%8</td>"
                   "<td>%9</td></tr>\n")
               .arg(esc(q(v)), esc(matrix_label(matrix))).arg(l).arg(fixed(a.num / a.n, 1), fixed(a.eff / a.n, 2),
                                                                     fixed(a.stable / a.n, 2), fixed(a.r90 / a.n, 1),
                                                                     fixed(a.r99 / a.n, 1), fixed(a.norm / a.n, 3));
    }
  return h + "</table>\n";
}

}  // namespace

ReportResult write_report(const qk::ReportData& d, const QString& dir, const ExportOptions& opt,
                          const std::function<void(int, int)>& progress) {
  ReportResult res;
  const QString target = QDir::cleanPath(dir);
  const QString tmp = target + ".partial";
  if (!remove_dir(tmp) || !QDir().mkpath(tmp)) {
    res.error = QString("%1: cannot create the report folder").arg(tmp);
    return res;
  }
  auto save = [&](const QString& name, const QString& text) {
    if (!res.error.isEmpty()) return;
    res.error = save_text(tmp + "/" + name, text);
    if (res.error.isEmpty()) res.files << name;
  };
  const QList<Figure> figs = report_figures(d);
  const int total = int(figs.size()) + 1;
  QString body;
  for (int i = 0; i < figs.size() && res.error.isEmpty(); ++i) {
    if (progress) progress(i, total);
    const Figure& f = figs[i];
    const QStringList files{f.name + ".png", f.name + ".svg", f.name + ".pdf"};
    QStringList paths;
    for (const auto& file : files) paths << tmp + "/" + file;
    const auto written = export_figure(f, paths, opt);  // drawn once, three renderings
    for (int k = 0; k < written.size(); ++k) {
      if (!written[k].error.isEmpty()) {
        res.error = written[k].error;
        break;
      }
      res.files << files[k];
      if (k == 0) res.pngs.append({files[k], written[k]});
    }
    QString links = QString("<a href='%1.svg'>SVG</a> · <a href='%1.pdf'>PDF</a>").arg(f.name);
    if (f.csv) {
      save(f.name + ".csv", f.csv());
      links += QString(" · <a href='%1.csv'>data (CSV)</a>").arg(f.name);
    }
    body += QString("<figure id='%1'><h3>%2</h3><img src='%1.png' alt='%2'><figcaption>%3 <span class='links'>%4"
                    "</span></figcaption></figure>\n")
                .arg(f.name, esc(f.title), esc(f.caption), links);
  }
  if (!res.error.isEmpty()) {
    remove_dir(tmp);
    return res;
  }
  // Data without a figure of its own.
  const std::string config_text = qk::config_to_json(d.config).dump(2);
  save("config.json", q(config_text) + "\n");
  save("metrics.csv", q(qk::metrics_csv(d.metrics)));
  if (!d.spectra.empty()) {
    save("spectra.csv", spectra_csv(d.spectra, d.seed));
    save("rank_metrics.csv", rank_metrics_csv(d.spectra, d.seed));
  }
  QString samples_html;
  if (!d.samples.empty()) {
    QString text;
    for (const auto& s : d.samples) {
      text += QString("[%1]\n%2\n\n").arg(q(s.variant), q(s.text));
      samples_html += QString("<h3 style='color:%1'>%2</h3><pre>%3</pre>\n")
                          .arg(variant_color(q(s.variant)).name(), esc(q(s.variant)), esc(q(s.text)));
    }
    save("samples.txt", text);
  }
  if (!d.epoch_samples.empty()) {
    save("epoch_samples.txt", q(d.epoch_samples));
    samples_html += "<h3>At epoch ends (greedy)</h3><pre>" + esc(q(d.epoch_samples)) + "</pre>\n";
  }

  const QString title = QObject::tr("QKLab report — %1").arg(esc(q(d.config.name)));
  QString html =
      "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>" + title +
      "</title>\n<style>body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}"
      "img{max-width:100%;border:1px solid #ccc}figure{margin:2.5em 0}figcaption{color:#444;margin-top:.4em}"
      ".links{white-space:nowrap;margin-left:.5em}table{border-collapse:collapse;margin:1em 0;font-size:90%}"
      "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#f3f3f3}"
      "td:first-child,th:first-child{text-align:left}pre{background:#f7f7f7;padding:.8em;white-space:pre-wrap}"
      "</style></head><body>\n<h1>" + title + "</h1>\n";
  const int64_t total_steps = d.config.train.steps;
  html += QString("<p>Source: %1. Analyses (spectra, truncation, attention, samples) %2 of %3 configured; "
                  "variants: %4. Written %5 by QKLab %6 (Qt %7, LibTorch %8).</p>\n")
              .arg(esc(q(d.source)), at_step(d), d.config.train.epochs > 0
                                                     ? QObject::tr("%1 epochs").arg(d.config.train.epochs)
                                                     : QObject::tr("%1 steps").arg(total_steps))
              .arg([&] {
                QStringList v;
                for (auto x : d.config.variants) v << q(qk::variant_name(x));
                return v.join(", ");
              }())
              .arg(QDateTime::currentDateTime().toString(Qt::ISODate), QCoreApplication::applicationVersion(),
                   qVersion(), q(qk::libtorch_version()));
  html += QString("<p>Model: d = %1, %2 layers, %3 heads, head_dim = %4 (standard qk_head_dim %5), context %6, "
                  "vocabulary %7. Data: %8. Batch %9.</p>\n")
              .arg(d.config.model.emb_dim).arg(d.config.model.n_layers).arg(d.config.model.n_heads)
              .arg(d.config.model.head_dim()).arg(d.config.model.effective_qk_head_dim())
              .arg(d.config.model.context_length).arg(d.config.model.vocab_size)
              .arg(esc(q(qk::is_language_kind(d.config.data.kind) ? "text " + d.config.data.path : "task " + d.config.data.kind)))
              .arg(d.config.train.batch_size);
  html += "<h2>Summary</h2>\n" + summary_table(d);
  html += "<p>FLOPs: matmul FLOPs per trained token (forward + backward ≈ 3× forward); memory: weights, gradients, "
          "AdamW moments and one batch's activations. tokens/s: tokens seen over this variant's own training and "
          "evaluation time. Losses: the last evaluation (mean over seeds).</p>\n";
  if (!d.spectra.empty())
    html += "<h2>Rank metrics</h2>\n<p>Mean over each layer's heads, " + at_step(d) +
            ". Every head: <a href='rank_metrics.csv'>rank_metrics.csv</a>; every σ: "
            "<a href='spectra.csv'>spectra.csv</a>.</p>\n" + rank_table(d);
  html += "<h2>Figures</h2>\n" + body;
  if (!samples_html.isEmpty()) html += "<h2>Samples</h2>\n<p>Greedy, " + at_step(d) + ".</p>\n" + samples_html;
  html += "<h2>Data</h2>\n<p><a href='metrics.csv'>metrics.csv</a> (every evaluation) · "
          "<a href='config.json'>config.json</a> (the experiment, valid input to <code>qklab-cli train "
          "--config</code>)</p>\n<h2>Configuration</h2>\n<pre>" + esc(q(config_text)) + "</pre>\n</body></html>\n";
  save("index.html", html);
  if (progress) progress(total - 1, total);
  if (!res.error.isEmpty()) {
    remove_dir(tmp);
    return res;
  }
  // Into place: the previous report (if any) is replaced only once the new one is complete.
  res.error = move_report_into_place(tmp, target);
  if (!res.error.isEmpty()) return res;
  if (progress) progress(total, total);
  return res;
}

}  // namespace qkui
