// QKLab ui — spectra: σ_i versus i (log axis) of S_h and of W_Q,h·W_K,hᵀ for the same layer/head,
// overlaid, with head_dim marked; the rank metrics in a table; and the spectra over training of
// one variant's head as a heatmap of log10 σ by step.
#pragma once
#include <QMap>
#include <QWidget>

#include "lab_view.h"
#include "plot_util.h"

class QComboBox;
class QCustomPlot;
class QCPColorMap;
class QSpinBox;
class QTableWidget;

namespace qkui {

class SpectraView : public QWidget, public LabView {
  Q_OBJECT
 public:
  explicit SpectraView(QWidget* parent = nullptr);
  void setModelShape(int layers, int heads, int emb_dim, int head_dim, const QStringList& variants);
  void setSpectra(const std::vector<qk::SpectrumView>& s);
  void addHistory(const std::vector<qk::SpectraRecord>& records);

  QWidget* widget() override { return this; }
  QString viewName() const override { return "spectra"; }
  QString viewTitle() const override { return tr("Spectra"); }
  void setExperiment(const ExperimentInfo& info) override;
  void takeSnapshot(const TrainingSnapshot& s) override { addHistory(s.spectra); }
  void takeAnalysis(const AnalysisResult& r) override;
  void refreshView(bool) override { refresh(); }
  QList<Figure> figures() const override;
  int layer() const;
  int head() const;
  const std::vector<qk::SpectrumView>& spectra() const { return spectra_; }

 public Q_SLOTS:
  void refresh();

 Q_SIGNALS:
  void spectraRequested(int layer, int head);

 private:
  void redrawHistory();
  QSpinBox *layer_, *head_;
  QComboBox* history_variant_;
  QCustomPlot *sigma_plot_, *history_plot_;
  QCPColorMap* history_map_ = nullptr;
  QTableWidget* table_;
  int head_dim_ = 0, emb_dim_ = 0, seed_ = 0;
  std::vector<qk::SpectrumView> spectra_;
  std::vector<qk::SpectraRecord> history_;
};

}  // namespace qkui
