// QKLab ui — the Sweep view: a sweep folder (sweep.h) as one plot — the chosen metric (final or
// best validation loss or accuracy, wall time, steps to the target loss) against a swept key, one
// line per variant with the mean over seeds and a min–max band; a variant the key is not swept for
// is drawn as a dashed level across the plot. Log-x for ranks and head counts. "Against tokens seen"
// and "against training FLOPs" show the learning curves instead (sweep_curves.h): validation loss
// (perplexity, accuracy) at every evaluation, mean over seeds with a min–max band, per variant and
// grid point. Clicking a point opens that run (its first seed). Read from the run folders' files; no
// training state involved.
#pragma once
#include <QWidget>

#include "lab_view.h"
#include "sweep.h"
#include "sweep_curves.h"

class QComboBox;
class QCheckBox;
class QLabel;
class QCustomPlot;
class QCPAbstractPlottable;
class QMouseEvent;

namespace qkui {

// What one plot of a sweep shows: plain values, so the view and its export draw the same thing.
struct SweepSeries {
  QString label;      // "merged", or "standard n_heads=4" with a second swept key
  QString variant;
  bool level = false;  // not swept along x: a dashed horizontal level
  std::vector<double> x, mean, lo, hi;
  std::vector<QString> run;  // the run folder of each point's first seed
  std::vector<int> seeds;    // seeds behind each point
};
struct SweepPlot {
  QString x_key, metric, title;
  bool log_x = false;
  bool curves = false;  // x is tokens or training FLOPs (learning curves), not a swept key
  QStringList categories;  // x is a text-valued key (data.kind): category i at x = i, labelled
  bool pooled = false;     // more series than a legend can hold: one per variant, each seed's value
                           // the mean over the other swept keys (then mean and min–max over seeds)
  std::vector<SweepSeries> series;
};
inline constexpr int kMaxSweepSeries = 12;

// Groups summary rows over seeds: x = the value of `x_key` ("" = the variants side by side); a key
// with text values (data.kind) is categorical; with more than kMaxSweepSeries series (variant x the
// other swept keys' values) the other keys are pooled per seed (SweepPlot::pooled).
SweepPlot sweep_plot(const std::vector<qk::SweepRow>& rows, const qk::SweepSpec& spec, const QString& x_key,
                     const QString& metric, bool log_x, const QString& dir);
// The learning curves: x_axis kTokensAxis or kFlopsAxis; metric as in sweep_plot (losses plot the
// validation loss, final_val_ppl its exponential, accuracies the validation accuracy). best_only:
// one curve per variant, at its grid point of the lowest final mean validation loss (a learning-rate
// sweep's 20 curves as the 5 a reader compares).
inline const QString kTokensAxis = "@tokens", kFlopsAxis = "@flops";
SweepPlot sweep_curve_plot(const std::vector<qk::SweepCurve>& curves, const qk::SweepSpec& spec, const QString& x_axis,
                           const QString& metric, bool log_x, const QString& dir, bool best_only = false);
void draw_sweep(QCustomPlot* plot, const SweepPlot& p);
QString sweep_csv(const SweepPlot& p);  // x, series, seeds, mean, min, max

class SweepView : public QWidget, public LabView {
  Q_OBJECT
 public:
  explicit SweepView(QWidget* parent = nullptr);
  // Reads DIR (sweep.json and every finished run); returns "" or one line naming the problem.
  QString openSweep(const QString& dir);
  bool isOpen() const { return !dir_.isEmpty(); }
  const SweepPlot& plotData() const { return plot_data_; }

  QWidget* widget() override { return this; }
  QString viewName() const override { return "sweep"; }
  QString viewTitle() const override { return tr("Sweep"); }
  void setExperiment(const ExperimentInfo&) override {}
  QList<Figure> figures() const override;

 Q_SIGNALS:
  void openRunRequested(const QString& run_dir);

 private:
  void redraw();
  void onClick(QCPAbstractPlottable* p, int index, QMouseEvent* e);
  QString dir_;
  qk::SweepSpec spec_;
  std::vector<qk::SweepRow> rows_;
  std::vector<qk::SweepCurve> curves_;
  size_t n_runs_ = 0;
  SweepPlot plot_data_;
  QLabel* status_;
  QComboBox *metric_, *xkey_;
  QCheckBox* logx_;
  QCustomPlot* plot_;
};

}  // namespace qkui
