// QKLab ui — live loss curves: train (dashed) and val (solid) loss per variant against step,
// with EMA smoothing, log-y and coalesced replots (at most 25 per second).
#pragma once
#include <QMap>
#include <QWidget>

#include "snapshot.h"

class QCustomPlot;
class QCPGraph;
class QTimer;

namespace qkui {

class LossPlot : public QWidget {
  Q_OBJECT
 public:
  explicit LossPlot(QWidget* parent = nullptr);
  void clear();
  void addEvals(const std::vector<qk::EvalRecord>& evals);
  QCustomPlot* plot() const { return plot_; }
  // The data behind the curves: variant -> (step, train, val) rows.
  const QMap<QString, std::vector<qk::EvalRecord>>& data() const { return rows_; }

 public slots:
  void setLogY(bool on);
  void setSmoothing(double alpha);  // 0 = raw, 0.99 = heavy

 private:
  void rebuild();
  void scheduleReplot();
  QCustomPlot* plot_;
  QTimer* replot_timer_;
  bool dirty_ = false;
  double smoothing_ = 0.0;
  QMap<QString, std::vector<qk::EvalRecord>> rows_;
  QMap<QString, QCPGraph*> train_, val_;
};

QColor variant_color(const QString& variant);

}  // namespace qkui
