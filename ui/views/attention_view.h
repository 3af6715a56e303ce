// QKLab ui — attention heatmaps (BertViz-style, for this question): one layer/head of every
// variant side by side plus their difference, or all heads of one layer; token labels on both
// axes; hover shows query token, key token and weight; the prompt is editable.
#pragma once
#include <QWidget>

#include "lab_view.h"
#include "plot_util.h"

class QCheckBox;
class QCustomPlot;
class QGridLayout;
class QLineEdit;
class QSpinBox;

namespace qkui {

class AttentionView : public QWidget, public LabView {
  Q_OBJECT
 public:
  explicit AttentionView(QWidget* parent = nullptr);
  void setModelShape(int layers, int heads, bool text);
  void setAttention(const std::vector<qk::AttentionView>& views);
  // Weights currently shown for a variant (T×T row-major), for tests and exports.
  std::vector<float> shownWeights(const QString& variant) const;
  QString prompt() const;
  int panelCount() const { return int(panels_.size()); }

  QWidget* widget() override { return this; }
  QString viewName() const override { return "attention"; }
  QString viewTitle() const override { return tr("Attention"); }
  void setExperiment(const ExperimentInfo& info) override;
  void takeAnalysis(const AnalysisResult& r) override;
  void refreshView(bool) override { refresh(); }
  QList<Figure> figures() const override;

 public Q_SLOTS:
  void refresh();  // asks for fresh maps (Q_EMITs attentionRequested)
  void setLayerHead(int layer, int head);

 Q_SIGNALS:
  void attentionRequested(const QString& prompt);

 protected:
  bool eventFilter(QObject* obj, QEvent* ev) override;

 private:
  void rebuild();
  const std::vector<float>* weightsOf(const qk::AttentionView& v, int head) const;
  QLineEdit* prompt_;
  QSpinBox *layer_, *head_;
  QCheckBox* all_heads_;
  QGridLayout* grid_;
  QWidget* canvas_;
  std::vector<qk::AttentionView> views_;
  struct Panel {
    QCustomPlot* plot;
    QString variant;  // "" for the difference
    int head;
  };
  std::vector<Panel> panels_;
  int seed_ = 0;
};

// Attention figure of a layer (head -1: every head) shared by the view's export and the report.
Figure attention_figure(const std::vector<qk::AttentionView>& views, int layer, int head, int seed,
                        const QString& prompt_label);

}  // namespace qkui
