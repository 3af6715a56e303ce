// QKLab ui — what the Geometry, Circuits and Ablation tabs share: a bar with the tab's heading, a
// status line (the step and seed the result is from, orange when stale), the tab's own controls,
// a layer/head picker and Compute; one request to the worker per step (none while one is on its
// way, none by itself for a large model — heavy_mechanisms), and the result taken from the worker.
#pragma once
#include <QStringList>
#include <QWidget>

#include "analysis_stamp.h"
#include "lab_view.h"

class QHBoxLayout;
class QLabel;
class QSpinBox;
class QVBoxLayout;

namespace qkui {

class MechanismTab : public QWidget, public LabView {
  Q_OBJECT
 public:
  QString status() const;

  QWidget* widget() override { return this; }
  QString viewName() const override { return kind_; }
  QString viewTitle() const override { return title_; }
  void setExperiment(const ExperimentInfo& info) override;
  void takeSnapshot(const TrainingSnapshot& s) override;
  void takeAnalysis(const AnalysisResult& r) override;
  void refreshView(bool requested) override;

 Q_SIGNALS:
  // args: what the tab's own controls ask for (a prompt, tokens), requestArguments().
  void mechanismsRequested(const QString& kind, const QStringList& args);

 protected:
  // kind: the worker's name for the analysis and the view's name ("geometry", …).
  MechanismTab(const QString& kind, const QString& title, const QString& heading, QWidget* parent);
  // The tab's own controls go into bar() first; then finishBar adds the layer/head picker (after
  // `picker_label`; none when it is empty) and Compute, and puts the bar on top of body().
  QHBoxLayout* bar() const { return bar_; }
  QVBoxLayout* body() const { return layout_; }
  void finishBar(const QString& picker_label);
  virtual void clear() = 0;                          // a new experiment: drop the results
  virtual bool take(const AnalysisResult& r) = 0;    // false: the result holds nothing of this tab's
  virtual void redraw() = 0;
  virtual QStringList requestArguments() const { return {}; }
  void showStatus();
  QSpinBox *layer_ = nullptr, *head_ = nullptr;
  AnalysisStamp stamp_;

 private:
  void request();
  QString kind_, title_;
  QVBoxLayout* layout_;
  QHBoxLayout* bar_;
  QLabel* status_;
  bool pending_ = false;  // a request is on its way to the worker
  bool heavy_ = false;    // a large model: computed only when Compute is pressed
};

}  // namespace qkui
