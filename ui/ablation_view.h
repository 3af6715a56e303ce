// QKLab ui — Ablation view: causal evidence per head for every variant side by side — the change
// of validation loss when a head is zero- or mean-ablated (layer × head heatmaps), activation
// patching (the fraction of the clean-vs-corrupted logit difference a head's clean output
// restores), and the loss as one head's form is cut to rank r. Computed on request, off the GUI
// thread, with progress.
#pragma once
#include <QWidget>

#include "analysis_stamp.h"
#include "lab_view.h"

class QComboBox;
class QCustomPlot;
class QLabel;
class QSpinBox;

namespace qkui {

class AblationView : public QWidget, public LabView {
  Q_OBJECT
 public:
  explicit AblationView(QWidget* parent = nullptr);
  const std::vector<qk::AblationView>& ablation() const { return views_; }
  QString status() const {
    return heavy_ && !stamp_.have ? tr("%1: a model of this size takes minutes — press Compute").arg(tr("Ablation"))
                                  : stamp_.text(tr("Ablation"));
  }

  QWidget* widget() override { return this; }
  QString viewName() const override { return "ablation"; }
  QString viewTitle() const override { return tr("Ablation"); }
  void setExperiment(const ExperimentInfo& info) override;
  void takeSnapshot(const TrainingSnapshot& s) override;
  void takeAnalysis(const AnalysisResult& r) override;
  void refreshView(bool requested) override;
  QList<Figure> figures() const override;

 Q_SIGNALS:
  void mechanismsRequested(const QString& kind);

 private:
  void redraw();
  QLabel *status_, *pair_;
  QComboBox* what_;
  QSpinBox *layer_, *head_;
  QCustomPlot *heat_plot_, *rank_plot_;
  std::vector<qk::AblationView> views_;
  AnalysisStamp stamp_;
  bool pending_ = false;  // a request is on its way to the worker
  bool heavy_ = false;    // a large model: computed only when Compute is pressed
};

}  // namespace qkui
