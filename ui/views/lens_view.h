// QKLab ui — Lens view: the logit lens for every variant side by side — the residual stream after
// each block read out through the final LayerNorm (recomputed on it) and the unembedding, as a
// layer × position heatmap for a prompt (text) or a validation sequence (tasks), with the top tokens
// on hover, and the mean validation loss of every layer's read-out. Computed on request, off the
// GUI thread.
#pragma once
#include "mechanism_tab.h"

class QComboBox;
class QCustomPlot;
class QLineEdit;

namespace qkui {

class LensView : public MechanismTab {
  Q_OBJECT
 public:
  explicit LensView(QWidget* parent = nullptr);
  const std::vector<qk::LogitLensView>& lens() const { return views_; }
  QList<Figure> figures() const override;
  // The hover text of the heatmap cell (layer, position) of a variant's panel.
  QString cellText(int panel, int layer, int position) const;

 protected:
  bool eventFilter(QObject* obj, QEvent* ev) override;

 private:
  void clear() override;
  bool take(const AnalysisResult& r) override;
  void redraw() override;
  QStringList requestArguments() const override;
  QLineEdit* prompt_;
  QComboBox* what_;
  QCustomPlot *heat_plot_, *layer_plot_;
  std::vector<qk::LogitLensView> views_;
};

}  // namespace qkui
