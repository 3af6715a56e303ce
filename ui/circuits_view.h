// QKLab ui — Circuits view: composition scores between heads of earlier and later layers (Q, K or
// V; one heatmap per variant, with the random baseline in the title) and the token read-outs of
// one head's QK and OV circuits for every variant. Computed on request, off the GUI thread.
#pragma once
#include <QWidget>

#include "analysis_stamp.h"
#include "lab_view.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QPlainTextEdit;
class QSpinBox;

namespace qkui {

class CircuitsView : public QWidget, public LabView {
  Q_OBJECT
 public:
  explicit CircuitsView(QWidget* parent = nullptr);
  const std::vector<qk::CircuitsView>& circuits() const { return views_; }
  QString readoutText() const;
  QString status() const {
    return heavy_ && !stamp_.have ? tr("%1: a model of this size takes minutes — press Compute").arg(tr("Circuits"))
                                  : stamp_.text(tr("Circuits"));
  }

  QWidget* widget() override { return this; }
  QString viewName() const override { return "circuits"; }
  QString viewTitle() const override { return tr("Circuits"); }
  void setExperiment(const ExperimentInfo& info) override;
  void takeSnapshot(const TrainingSnapshot& s) override;
  void takeAnalysis(const AnalysisResult& r) override;
  void refreshView(bool requested) override;
  QList<Figure> figures() const override;

 Q_SIGNALS:
  void mechanismsRequested(const QString& kind);

 private:
  void redraw();
  QLabel* status_;
  QComboBox* kind_;
  QSpinBox *layer_, *head_;
  QCustomPlot* comp_plot_;
  QPlainTextEdit* readouts_;
  std::vector<qk::CircuitsView> views_;
  AnalysisStamp stamp_;
  bool pending_ = false;  // a request is on its way to the worker
  bool heavy_ = false;    // a large model: computed only when Compute is pressed
};

}  // namespace qkui
