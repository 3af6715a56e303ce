// QKLab ui — live loss curves, TensorBoard-style: train (dashed) and val (solid) loss per variant;
// EMA smoothing (default 0.6), log-y, x by step / tokens seen / wall time, hover read-out, legend
// click toggles a curve; with several seeds the mean is drawn with a min–max band. Replots are
// coalesced to at most 25 per second.
#pragma once
#include <QMap>
#include <QWidget>

#include "lab_view.h"
#include "plot_util.h"

class QComboBox;
class QCustomPlot;
class QCPGraph;
class QCPAbstractItem;
class QTimer;

namespace qkui {

class LossPlot : public QWidget, public LabView {
  Q_OBJECT
 public:
  enum XAxis { Step = 0, Tokens = 1, WallTime = 2 };
  explicit LossPlot(QWidget* parent = nullptr);
  void clear();
  void addEvals(const std::vector<qk::EvalRecord>& evals);
  QCustomPlot* plot() const { return plot_; }
  const std::vector<qk::EvalRecord>& rows() const { return rows_; }
  int curveCount() const;
  int replotCount() const { return replots_; }

  QWidget* widget() override { return this; }
  QString viewName() const override { return "loss"; }
  QString viewTitle() const override { return tr("Loss"); }
  void setExperiment(const ExperimentInfo& info) override;
  void takeSnapshot(const TrainingSnapshot& s) override;
  // Variants the divergence guard halted: a dashed line and a label at the step, on the curve.
  const std::vector<qk::HaltRecord>& halts() const { return halts_; }
  QList<Figure> figures() const override;

 public Q_SLOTS:
  void setLogY(bool on);
  void setSmoothing(double alpha);  // 0 = raw, 0.99 = heavy
  void setXAxis(int mode);

 private:
  void rebuild();
  void scheduleReplot();
  void hover(QMouseEvent* e);
  QCustomPlot* plot_;
  QTimer* replot_timer_;
  QComboBox* xmode_;
  bool dirty_ = false;
  double smoothing_ = 0.6;
  int xaxis_ = Step, replots_ = 0;
  std::vector<qk::EvalRecord> rows_;
  std::vector<qk::HaltRecord> halts_;
  QList<QCPAbstractItem*> halt_items_;
};

// The loss figure of these evaluations (shared by the view's export and the report).
Figure loss_figure(const std::vector<qk::EvalRecord>& rows, double smoothing, LossX x, const QString& caption);

}  // namespace qkui
