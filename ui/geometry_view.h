// QKLab ui — Geometry view: for every variant side by side, the symmetry and directionality of
// each head's QK form (table and scatter), the eigenvalues of one head's form in the complex
// plane, the diagonal attention mass, and spectral health (power-law α of the forms' ESD over
// training; every weight matrix's α, MP spikes and soft rank in the export). Computed on request,
// off the GUI thread.
#pragma once
#include <QWidget>

#include "analysis_stamp.h"
#include "lab_view.h"

class QCustomPlot;
class QLabel;
class QSpinBox;
class QTableWidget;

namespace qkui {

class GeometryView : public QWidget, public LabView {
  Q_OBJECT
 public:
  explicit GeometryView(QWidget* parent = nullptr);
  const std::vector<qk::GeometryView>& geometry() const { return geo_; }
  const std::vector<qk::EsdRecord>& esd() const { return esd_; }
  QString status() const {
    return heavy_ && !stamp_.have ? tr("%1: a model of this size takes minutes — press Compute").arg(tr("Geometry"))
                                  : stamp_.text(tr("Geometry"));
  }

  QWidget* widget() override { return this; }
  QString viewName() const override { return "geometry"; }
  QString viewTitle() const override { return tr("Geometry"); }
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
  QSpinBox *layer_, *head_;
  QTableWidget* table_;
  QCustomPlot *eig_plot_, *scores_plot_, *alpha_plot_;
  std::vector<qk::GeometryView> geo_;
  std::vector<qk::EsdRecord> esd_;
  AnalysisStamp stamp_;
  bool pending_ = false;  // a request is on its way to the worker
  bool heavy_ = false;    // a large model: computed only when Compute is pressed
};

}  // namespace qkui
