// QKLab ui — Detectors view: TransformerLens's head detectors for every variant side by side — the
// previous-token, duplicate-token and induction score of every head (layer × head heatmaps) on
// repeated random tokens or on validation sequences, a table of every head's three scores, and the
// strongest head of each kind.
#pragma once
#include "mechanism_tab.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QTableWidget;

namespace qkui {

class DetectorsView : public MechanismTab {
  Q_OBJECT
 public:
  explicit DetectorsView(QWidget* parent = nullptr);
  const std::vector<qk::DetectorView>& detectors() const { return views_; }
  QString summaryText() const;
  QList<Figure> figures() const override;

 private:
  void clear() override;
  bool take(const AnalysisResult& r) override;
  void redraw() override;
  QComboBox *kind_, *on_;
  QLabel* summary_;
  QCustomPlot* heat_plot_;
  QTableWidget* table_;  // every head: its three scores on the chosen sequences
  std::vector<qk::DetectorView> views_;
};

}  // namespace qkui
