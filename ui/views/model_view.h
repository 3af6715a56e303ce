// QKLab ui — Model view (BertViz's model view): every layer × head of one variant as small
// attention maps in one picture; hover names the query and key tokens and the weight, a click opens
// that head in the Attention tab. For long sequences, a layer and head filter and a position window
// (queries and keys [start, start + length)) keep it readable and quick. Shares the attention
// prompt with the Attention tab.
#pragma once
#include <QWidget>

#include "lab_view.h"
#include "lens_figures.h"

class QComboBox;
class QCustomPlot;
class QLineEdit;
class QSpinBox;

namespace qkui {

class ModelView : public QWidget, public LabView {
  Q_OBJECT
 public:
  explicit ModelView(QWidget* parent = nullptr);
  QWidget* widget() override { return this; }
  QString viewName() const override { return "model"; }
  QString viewTitle() const override { return tr("Model view"); }
  void setExperiment(const ExperimentInfo& info) override;
  void takeAnalysis(const AnalysisResult& r) override;
  void refreshView(bool) override { refresh(); }
  QList<Figure> figures() const override;

  int panelCount() const { return int(cells_.size()); }
  ModelWindow window() const;
  void setWindow(const ModelWindow& w);
  void setVariant(const QString& v);
  // The hover text at a pixel of the plot, and what a click there opens ("" / {-1, -1} off the maps).
  QString hoverText(const QPoint& pos) const;
  std::pair<int, int> headAt(const QPoint& pos) const;
  QCustomPlot* plot() const { return plot_; }

 public Q_SLOTS:
  void refresh();  // asks for fresh maps (Q_EMITs attentionRequested)

 Q_SIGNALS:
  void attentionRequested(const QString& prompt);
  void headOpened(int layer, int head);

 protected:
  bool eventFilter(QObject* obj, QEvent* ev) override;

 private:
  void redraw();
  const qk::AttentionView* shown() const;
  QComboBox* variant_;
  QLineEdit* prompt_;
  QSpinBox *layer_from_, *layer_to_, *head_from_, *head_to_, *start_, *length_;
  QCustomPlot* plot_;
  std::vector<qk::AttentionView> views_;
  std::vector<std::pair<int, int>> cells_;
  int seed_ = 0;
  qint64 step_ = -1;
};

}  // namespace qkui
