// QKLab ui — rank analysis: loss-versus-rank truncation curves (computed on request, off the GUI
// thread), effective rank over training per layer (mean over heads), and the KL divergence between
// the paired models over training.
#pragma once
#include <QWidget>

#include "lab_view.h"
#include "plot_util.h"

class QCustomPlot;
class QLabel;

namespace qkui {

class RankView : public QWidget, public LabView {
  Q_OBJECT
 public:
  explicit RankView(QWidget* parent = nullptr);
  void reset(int emb_dim);
  void setTruncation(const std::vector<qk::TruncationView>& t, qint64 step = -1, int seed = 0);
  // "computed at step N (seed S)", and whether training has moved on since (the curve is stale).
  QString truncationStatus() const;
  bool truncationStale() const { return !trunc_.empty() && trunc_step_ >= 0 && current_step_ > trunc_step_; }
  void addSpectra(const std::vector<qk::SpectraRecord>& records);
  void addDivergence(const std::vector<qk::DivergenceRecord>& records);
  QList<int> ranks() const;

  QWidget* widget() override { return this; }
  QString viewName() const override { return "rank"; }
  QString viewTitle() const override { return tr("Rank analysis"); }
  void setExperiment(const ExperimentInfo& info) override;
  void takeSnapshot(const TrainingSnapshot& s) override;
  void takeAnalysis(const AnalysisResult& r) override;
  void refreshView(bool requested) override;  // the truncation curve only when requested (costly)
  QList<Figure> figures() const override;

 Q_SIGNALS:
  void truncationRequested(const QList<int>& ranks);

 private:
  void redraw();
  void showStatus();
  QCustomPlot *trunc_plot_, *erank_plot_, *kl_plot_;
  QLabel* trunc_status_;
  int emb_dim_ = 0, seed_ = 0;
  qint64 trunc_step_ = -1, current_step_ = 0;
  int trunc_seed_ = 0;
  std::vector<qk::TruncationView> trunc_;
  std::vector<qk::SpectraRecord> spectra_;
  std::vector<qk::DivergenceRecord> kl_;
};

// Figures shared by the view's export and the report.
Figure truncation_figure(const std::vector<qk::TruncationView>& trunc, int emb_dim, int seed, const QString& caption,
                         qint64 step = -1);
Figure effective_rank_figure(const std::vector<qk::SpectraRecord>& history);
Figure kl_figure(const std::vector<qk::DivergenceRecord>& kl);

}  // namespace qkui
