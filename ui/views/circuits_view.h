// QKLab ui — Circuits view: composition scores between heads of earlier and later layers (Q, K or
// V; one heatmap per variant, with the random baseline in the title) and the token read-outs of
// one head's QK and OV circuits for every variant. Computed on request, off the GUI thread.
#pragma once
#include "mechanism_tab.h"

class QComboBox;
class QCustomPlot;
class QPlainTextEdit;

namespace qkui {

class CircuitsView : public MechanismTab {
  Q_OBJECT
 public:
  explicit CircuitsView(QWidget* parent = nullptr);
  const std::vector<qk::CircuitsView>& circuits() const { return views_; }
  QString readoutText() const;
  QList<Figure> figures() const override;

 private:
  void clear() override;
  bool take(const AnalysisResult& r) override;
  void redraw() override;
  QComboBox* kind_;
  QCustomPlot* comp_plot_;
  QPlainTextEdit* readouts_;
  std::vector<qk::CircuitsView> views_;
};

}  // namespace qkui
