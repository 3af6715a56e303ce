// QKLab ui — live loss curves, TensorBoard-style: train (dashed) and val (solid) loss per variant;
// EMA smoothing (default 0.6), log-y, x by step / tokens seen / wall time, hover read-out, legend
// click toggles a curve; with several seeds the mean is drawn with a min–max band. Replots are
// coalesced to at most 25 per second.
#pragma once
#include <QMap>
#include <QWidget>

#include "plot_util.h"
#include "snapshot.h"

class QComboBox;
class QCustomPlot;
class QCPGraph;
class QTimer;

namespace qkui {

class LossPlot : public QWidget {
  Q_OBJECT
 public:
  enum XAxis { Step = 0, Tokens = 1, WallTime = 2 };
  explicit LossPlot(QWidget* parent = nullptr);
  void clear();
  void addEvals(const std::vector<qk::EvalRecord>& evals);
  QCustomPlot* plot() const { return plot_; }
  const std::vector<qk::EvalRecord>& rows() const { return rows_; }
  int curveCount() const;
  QList<Exportable> exportables() const;
  int replotCount() const { return replots_; }

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
};

QString loss_csv(const std::vector<qk::EvalRecord>& rows);

}  // namespace qkui
