// QKLab ui — Ablation view: causal evidence per head for every variant side by side — the change
// of validation loss when a head is zero- or mean-ablated (layer × head heatmaps), activation
// patching (the fraction of the clean-vs-corrupted logit difference a head's clean output
// restores), and the loss as one head's form is cut to rank r. Computed on request, off the GUI
// thread, with progress.
#pragma once
#include "mechanism_tab.h"

class QComboBox;
class QCustomPlot;
class QLabel;

namespace qkui {

class AblationView : public MechanismTab {
  Q_OBJECT
 public:
  explicit AblationView(QWidget* parent = nullptr);
  const std::vector<qk::AblationView>& ablation() const { return views_; }
  QList<Figure> figures() const override;

 private:
  void clear() override;
  bool take(const AnalysisResult& r) override;
  void redraw() override;
  QLabel* pair_;
  QComboBox* what_;
  QCustomPlot *heat_plot_, *rank_plot_;
  std::vector<qk::AblationView> views_;
};

}  // namespace qkui
