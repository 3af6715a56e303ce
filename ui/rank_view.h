// QKLab ui — rank analysis: loss-versus-rank truncation curves (computed on request, off the GUI
// thread), effective rank over training per layer (mean over heads), and the KL divergence between
// the paired models over training.
#pragma once
#include <QWidget>

#include "plot_util.h"
#include "snapshot.h"

class QCustomPlot;

namespace qkui {

class RankView : public QWidget {
  Q_OBJECT
 public:
  explicit RankView(QWidget* parent = nullptr);
  void reset(int emb_dim);
  void setTruncation(const std::vector<qk::TruncationView>& t);
  void addSpectra(const std::vector<qk::SpectraRecord>& records);
  void addDivergence(const std::vector<qk::DivergenceRecord>& records);
  QList<Exportable> exportables() const;
  QList<int> ranks() const;

 Q_SIGNALS:
  void truncationRequested(const QList<int>& ranks);

 private:
  void redraw();
  QCustomPlot *trunc_plot_, *erank_plot_, *kl_plot_;
  int emb_dim_ = 0;
  std::vector<qk::TruncationView> trunc_;
  std::vector<qk::SpectraRecord> spectra_;
  std::vector<qk::DivergenceRecord> kl_;
};

}  // namespace qkui
