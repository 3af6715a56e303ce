// QKLab ui — the one interface every view (tab) implements. MainWindow holds a list of views and
// loops over it to build the tabs, hand out experiments, snapshots and analysis results, refresh
// the view shown, export the current view and resolve `qklab --tab NAME`. Adding a view is one new
// file and one line in MainWindow's list.
#pragma once
#include <QList>
#include <QString>

#include "figures.h"
#include "snapshot.h"

class QWidget;

namespace qkui {

class LabView {
 public:
  virtual ~LabView() = default;
  virtual QWidget* widget() = 0;
  virtual QString viewName() const = 0;   // short name: `qklab --tab NAME`, file names
  virtual QString viewTitle() const = 0;  // the tab's text
  // A new experiment (or run folder) was set up: clear, size the controls.
  virtual void setExperiment(const ExperimentInfo& info) = 0;
  virtual void takeSnapshot(const TrainingSnapshot&) {}
  virtual void takeAnalysis(const AnalysisResult&) {}
  // Shown and due for fresh analyses: `requested` is true when the user asked (tab change, a
  // finished run), false for the periodic refresh during training (views with costly analyses
  // skip those).
  virtual void refreshView(bool requested) { (void)requested; }
  // What "Export current view" writes: each figure drawn afresh from the view's data.
  virtual QList<Figure> figures() const = 0;
};

}  // namespace qkui
