// QKLab ui — Attribution view: direct logit attribution for every variant side by side — what each
// head (layer × head heatmap), each layer's attention and MLP and the embeddings write straight into
// the logit difference of the answer against the most likely wrong token (or a pair the user
// gives), through the final LayerNorm with its scale frozen at the clean run; over the validation
// set or for one prompt, with the check that the parts add up to the whole.
#pragma once
#include "mechanism_tab.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QLineEdit;

namespace qkui {

class AttributionView : public MechanismTab {
  Q_OBJECT
 public:
  explicit AttributionView(QWidget* parent = nullptr);
  const std::vector<qk::AttributionView>& attribution() const { return views_; }
  QString checkText() const;
  QList<Figure> figures() const override;

 private:
  void clear() override;
  bool take(const AnalysisResult& r) override;
  void redraw() override;
  QStringList requestArguments() const override;
  QLineEdit *prompt_, *answer_, *wrong_;
  QComboBox* source_;
  QLabel* check_;
  QCustomPlot *heat_plot_, *parts_plot_;
  std::vector<qk::AttributionView> views_;
};

}  // namespace qkui
