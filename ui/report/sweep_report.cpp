// QKLab ui — the sweep report (see sweep_report.h).
#include "sweep_report.h"

#include <QDir>
#include <QFileInfo>
#include <cmath>

#include "config.h"
#include "error.h"
#include "fsutil.h"
#include "plot_util.h"
#include "study.h"
#include "sweep_view.h"

namespace qkui {

namespace {

QString esc(const QString& s) { return s.toHtmlEscaped(); }
QString q(const std::string& s) { return QString::fromStdString(s); }

QString cell(const std::string& s, int precision) {
  if (s.empty()) return "—";
  bool ok = false;
  const double v = QString::fromStdString(s).toDouble(&ok);
  return ok && precision >= 0 ? QString::number(v, 'f', precision) : esc(q(s));
}

// The aggregate table, the columns a reader compares.
QString aggregate_table(const qk::CsvTable& t, const qk::SweepSpec& spec) {
  QString h = "<table><tr><th>variant</th>";
  for (const auto& [k, _] : spec.grid) h += "<th>" + esc(q(k)) + "</th>";
  h += "<th>seeds</th><th>matched</th><th>parameters</th><th>training FLOPs / token</th><th>of which attention</th>"
       "<th>memory (MB)</th><th>steps</th><th>final val loss (mean ± std)</th><th>min–max</th>"
       "<th>perplexity (mean, min–max)</th>"
       "<th>final val acc (mean)</th><th>wall time (s, mean)</th>" +
       QString(spec.target_loss > 0 ? "<th>steps to loss %1 (mean; seeds that reached it)</th>" : "%1").arg(spec.target_loss > 0 ? QString::number(spec.target_loss) : QString()) +
       "</tr>\n";
  auto get = [&](const std::vector<std::string>& r, const std::string& c) {
    const int i = t.column(c);
    return i < 0 ? std::string() : r[size_t(i)];
  };
  for (const auto& r : t.rows) {
    const QString v = q(get(r, "variant"));
    h += QString("<tr><td style='color:%1'><b>%2</b></td>").arg(variant_color(v).name(), esc(v));
    for (const auto& [k, _] : spec.grid) h += "<td>" + cell(get(r, k), -1) + "</td>";
    const double mem = QString::fromStdString(get(r, "memory_bytes")).toDouble() / 1e6;
    h += QString("<td>%1</td><td>%2</td><td>%3</td><td>%4</td><td>%5</td><td>%6</td><td>%7</td><td>%8 ± %9</td>"
                 "<td>%10–%11</td><td>%12 (%13–%14)</td><td>%15</td><td>%16</td>")
             .arg(q(get(r, "seeds")), cell(get(r, "matched"), -1), q(get(r, "params")),
                  cell(get(r, "flops_per_token"), 0), cell(get(r, "attention_flops_per_token"), 0),
                  QString::number(mem, 'f', 1), q(get(r, "steps")), cell(get(r, "final_val_loss_mean"), 3),
                  cell(get(r, "final_val_loss_std"), 3))
             .arg(cell(get(r, "final_val_loss_min"), 3), cell(get(r, "final_val_loss_max"), 3),
                  cell(get(r, "final_val_ppl_mean"), 1), cell(get(r, "final_val_ppl_min"), 1),
                  cell(get(r, "final_val_ppl_max"), 1), cell(get(r, "final_val_acc_mean"), 3),
                  cell(get(r, "wall_s_mean"), 0));
    if (spec.target_loss > 0)
      h += QString("<td>%1 (%2 of %3)</td>").arg(cell(get(r, "steps_to_target_mean"), 0), q(get(r, "reached_target")),
                                                 q(get(r, "seeds")));
    h += "</tr>\n";
  }
  return h + "</table>\n";
}

}  // namespace

SweepReportResult write_sweep_report(const QString& sweep_dir, const QString& out_dir, const ExportOptions& opt) {
  SweepReportResult res;
  qk::SweepSpec spec;
  std::vector<qk::SweepRow> rows;
  std::vector<qk::SweepCurve> curves;
  try {
    spec = qk::load_sweep_spec(QDir(sweep_dir).filePath("sweep.json").toStdString());
    const auto runs = qk::expand_sweep(spec);
    rows = qk::summarize_sweep(sweep_dir.toStdString(), spec, runs);
    res.runs = static_cast<int>(runs.size());
    res.finished = static_cast<int>(rows.size());
    if (rows.empty()) {
      res.error = sweep_dir + ": no run of the sweep has finished yet (run `qklab-cli sweep --out " + sweep_dir + "`)";
      return res;
    }
    qk::write_sweep_tables(sweep_dir.toStdString(), spec, rows);  // the tables match the runs on disk
    curves = qk::sweep_curves(sweep_dir.toStdString(), spec, runs);
    qk::write_sweep_curves(sweep_dir.toStdString(), curves);
  } catch (const std::exception& e) {
    res.error = QString::fromStdString(e.what());
    return res;
  }
  const QString target = QDir::cleanPath(out_dir);
  const QString tmp = target + ".partial";
  if (!remove_dir(tmp) || !QDir().mkpath(tmp)) {
    res.error = tmp + ": cannot create the report folder";
    return res;
  }
  const QString x_key = spec.grid.empty() ? QString() : q(spec.grid.front().first);
  bool log_x = false;
  if (!spec.grid.empty()) {
    double lo = INFINITY, hi = -INFINITY;
    for (const auto& v : spec.grid.front().second) {
      lo = std::min(lo, QString::fromStdString(v).toDouble());
      hi = std::max(hi, QString::fromStdString(v).toDouble());
    }
    log_x = lo > 0 && hi / lo >= 4;
  }
  QStringList metrics{"final_val_loss", "final_val_ppl", "best_val_loss", "final_val_acc", "best_val_acc"};
  if (spec.target_loss > 0) metrics << "steps_to_target";
  // (file name, plot): the final metrics against the first swept key (or the variants side by
  // side), then the learning curves against tokens and against training FLOPs.
  std::vector<std::pair<QString, SweepPlot>> plots;
  for (const auto& m : metrics) plots.emplace_back("sweep_" + m, sweep_plot(rows, spec, x_key, m, log_x, sweep_dir));
  for (const QString m : {"val_loss", "val_acc"}) {
    // A grid's every curve is in curves.csv; the figures show each variant at its best grid point.
    plots.emplace_back("curves_" + m + "_tokens", sweep_curve_plot(curves, spec, kTokensAxis, m, false, sweep_dir, true));
    plots.emplace_back("curves_" + m + "_flops", sweep_curve_plot(curves, spec, kFlopsAxis, m, false, sweep_dir, true));
  }
  QString body;
  for (const auto& [name, p] : plots) {
    if (p.series.empty()) continue;  // e.g. no accuracy for text data
    Figure f;
    f.name = name;
    f.title = p.title;
    f.caption = (p.curves ? QObject::tr("%1 of %2 runs finished; lines: mean over seeds at every evaluation, bands: "
                                        "min–max; training FLOPs = tokens × the variant's training FLOPs per token")
                          : QObject::tr("%1 of %2 runs finished; lines: mean over seeds, bands: min–max; dashed: a "
                                        "variant the key is not swept for"))
                    .arg(res.finished)
                    .arg(res.runs);
    f.draw = [p = p](QCustomPlot* plot) { draw_sweep(plot, p); };
    const QStringList files{f.name + ".png", f.name + ".svg", f.name + ".pdf"};
    QStringList paths;
    for (const auto& file : files) paths << tmp + "/" + file;
    for (const auto& w : export_figure(f, paths, opt))
      if (!w.error.isEmpty()) {
        res.error = w.error;
        remove_dir(tmp);
        return res;
      }
    res.files << files;
    const QString e = save_text(tmp + "/" + f.name + ".csv", sweep_csv(p));
    if (!e.isEmpty()) {
      res.error = e;
      remove_dir(tmp);
      return res;
    }
    res.files << f.name + ".csv";
    body += QString("<figure id='%1'><h3>%2</h3><img src='%1.png' alt='%2'><figcaption>%3 <a href='%1.svg'>SVG</a> · "
                    "<a href='%1.pdf'>PDF</a> · <a href='%1.csv'>data (CSV)</a></figcaption></figure>\n")
                .arg(f.name, esc(f.title), esc(f.caption));
  }
  qk::CsvTable agg;
  try {
    agg = qk::read_csv_table(QDir(sweep_dir).filePath("aggregate.csv").toStdString());
  } catch (const std::exception& e) {
    res.error = QString::fromStdString(e.what());
    remove_dir(tmp);
    return res;
  }
  QString grid;
  for (const auto& [k, v] : spec.grid) grid += QString(" × %1 %2").arg(v.size()).arg(esc(q(k)));
  QString html = "<!doctype html><html><head><meta charset='utf-8'><title>QKLab sweep " + esc(q(spec.name)) +
                 "</title><style>body{font-family:sans-serif;max-width:1200px;margin:auto}img{max-width:100%}"
                 "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
                 "th{background:#eee}</style></head><body>\n";
  html += "<h1>Sweep " + esc(q(spec.name)) + "</h1>\n";
  html += QString("<p>%1 runs: %2 variants%3 × %4 seeds; %5 finished. Folder: %6.</p>\n")
              .arg(res.runs)
              .arg(spec.variants.size())
              .arg(grid)
              .arg(spec.seeds.size())
              .arg(res.finished)
              .arg(esc(QDir::toNativeSeparators(sweep_dir)));
  html += "<h2>Aggregate over seeds</h2>\n" + aggregate_table(agg, spec);
  html += "<h2>Figures</h2>\n" + body;
  html += "<h2>Data</h2><p><a href='summary.csv'>summary.csv</a> (one row per run) · <a href='aggregate.csv'>"
          "aggregate.csv</a> · <a href='curves.csv'>curves.csv</a> (every evaluation, over seeds) · <a "
          "href='sweep.json'>sweep.json</a></p></body></html>\n";
  for (const char* f : {"summary.csv", "aggregate.csv", "curves.csv", "sweep.json"}) {
    QFile::copy(QDir(sweep_dir).filePath(f), tmp + "/" + f);
    res.files << f;
  }
  const QString e = save_text(tmp + "/index.html", html);
  if (!e.isEmpty()) {
    res.error = e;
    remove_dir(tmp);
    return res;
  }
  res.files << "index.html";
  res.error = move_report_into_place(tmp, target);
  return res;
}

SweepReportResult write_study_report(const QString& study_dir, const QString& out_dir, const ExportOptions& opt) {
  SweepReportResult res;
  qk::StudySpec study;
  try {
    const std::string sf = QDir(study_dir).filePath("study.json").toStdString();
    const auto rec = qk::parse_json(qk::read_file_bytes(sf, "study"), sf);
    if (!rec.is_object() || !rec.contains("study")) throw qk::Error(sf + ": expected {\"study\": …, \"scale\": F}");
    study = qk::parse_study(rec["study"], sf);
  } catch (const std::exception& e) {
    res.error = QString::fromStdString(e.what());
    return res;
  }
  const QString target = QDir::cleanPath(out_dir);
  const QString tmp = target + ".partial";
  if (!remove_dir(tmp) || !QDir().mkpath(tmp)) {
    res.error = tmp + ": cannot create the report folder";
    return res;
  }
  QString list;
  for (const auto& st : study.stages) {
    const QString name = q(st.name);
    const QString sd = QDir(study_dir).filePath(name);
    if (!qk::is_sweep_dir(sd.toStdString())) {
      list += "<li>" + esc(name) + ": not started</li>\n";
      continue;
    }
    const auto r = write_sweep_report(sd, tmp + "/" + name, opt);
    if (!r.error.isEmpty() && r.finished == 0 && r.runs > 0) {  // started, nothing finished yet
      list += QString("<li>%1: 0 of %2 runs finished</li>\n").arg(esc(name)).arg(r.runs);
      res.runs += r.runs;
      continue;
    }
    if (!r.error.isEmpty()) {
      res.error = r.error;
      remove_dir(tmp);
      return res;
    }
    res.runs += r.runs;
    res.finished += r.finished;
    for (const auto& f : r.files) res.files << name + "/" + f;
    list += QString("<li><a href='%1/index.html'>%1</a>: %2 of %3 runs finished</li>\n").arg(esc(name)).arg(r.finished).arg(r.runs);
  }
  QString tuned = "<p>No stage has been tuned yet.</p>\n";
  const QString tf = QDir(study_dir).filePath("tuned.csv");
  if (QFileInfo::exists(tf)) {
    try {
      const auto t = qk::read_csv_table(tf.toStdString());
      tuned = "<table><tr>";
      for (const auto& h : t.header) tuned += "<th>" + esc(q(h)) + "</th>";
      tuned += "</tr>\n";
      for (const auto& r : t.rows) {
        tuned += "<tr>";
        for (const auto& c : r) tuned += "<td>" + esc(q(c)) + "</td>";
        tuned += "</tr>\n";
      }
      tuned += "</table>\n";
    } catch (const std::exception& e) {
      res.error = QString::fromStdString(e.what());
      remove_dir(tmp);
      return res;
    }
    QFile::copy(tf, tmp + "/tuned.csv");
    res.files << "tuned.csv";
  }
  QFile::copy(QDir(study_dir).filePath("study.json"), tmp + "/study.json");
  res.files << "study.json";
  const QString html = "<!doctype html><html><head><meta charset='utf-8'><title>QKLab study " + esc(q(study.name)) +
                       "</title><style>body{font-family:sans-serif;max-width:1200px;margin:auto}"
                       "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
                       "th{background:#eee}</style></head><body>\n<h1>Study " + esc(q(study.name)) + "</h1>\n" +
                       QString("<p>%1 of %2 runs finished. Folder: %3.</p>\n")
                           .arg(res.finished)
                           .arg(res.runs)
                           .arg(esc(QDir::toNativeSeparators(study_dir))) +
                       "<h2>Stages</h2><ol>\n" + list + "</ol>\n<h2>Tuned values</h2>\n" + tuned +
                       "<p><a href='study.json'>study.json</a></p></body></html>\n";
  const QString e = save_text(tmp + "/index.html", html);
  if (!e.isEmpty()) {
    res.error = e;
    remove_dir(tmp);
    return res;
  }
  res.files << "index.html";
  if (res.finished == 0) {
    res.error = study_dir + ": no run of the study has finished yet (run `qklab-cli sweep --out " + study_dir + "`)";
    remove_dir(tmp);
    return res;
  }
  res.error = move_report_into_place(tmp, target);
  return res;
}

}  // namespace qkui
