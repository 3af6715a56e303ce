// QKLab ui — Geometry view: for every variant side by side, the symmetry and directionality of
// each head's QK form (table and scatter), the eigenvalues of one head's form in the complex
// plane, the diagonal attention mass, and spectral health (power-law α of the forms' ESD over
// training; every weight matrix's α, MP spikes and soft rank in the export). Computed on request,
// off the GUI thread.
#pragma once
#include "mechanism_tab.h"

class QCustomPlot;
class QTableWidget;

namespace qkui {

class GeometryView : public MechanismTab {
  Q_OBJECT
 public:
  explicit GeometryView(QWidget* parent = nullptr);
  const std::vector<qk::GeometryView>& geometry() const { return geo_; }
  const std::vector<qk::EsdRecord>& esd() const { return esd_; }
  QList<Figure> figures() const override;

 private:
  void clear() override;
  bool take(const AnalysisResult& r) override;
  void redraw() override;
  QTableWidget* table_;
  QCustomPlot *eig_plot_, *scores_plot_, *alpha_plot_;
  std::vector<qk::GeometryView> geo_;
  std::vector<qk::EsdRecord> esd_;
};

}  // namespace qkui
