// QKLab ui — the figures of the Geometry, Circuits and Ablation views, as functions of plain values
// (views.h), with the CSV behind each: eigenvalues of one head's form in the complex plane,
// symmetry against directionality of every head, the forms' power-law α over training,
// composition heatmaps, head-ablation and patching heatmaps (layer × head), rank-ablation curves.
#pragma once
#include <QString>
#include <QStringList>
#include <vector>

#include "figures.h"
#include "views.h"

class QCustomPlot;

namespace qkui {

// Panels per row for n side-by-side panels (one row up to 3, then rows of 2 or 3), and the export
// height factor that keeps them legible.
int panel_columns(int n);
double panel_height_factor(int n);
// Heatmap panels side by side sharing one colour scale: values[p] is rows × cols, row-major, NaN =
// no cell; diverging: blue–white–red around 0.
void draw_panels(QCustomPlot* plot, const QStringList& titles, const std::vector<std::vector<double>>& values, int rows,
                 int cols, const QStringList& row_labels, const QStringList& col_labels, const QString& xlabel,
                 const QString& ylabel, const QString& scale_label, bool diverging);
// Every variant's eigenvalues of head (layer, head) in one complex plane, in the variant's colour.
void draw_eigen_plane(QCustomPlot* plot, const std::vector<qk::GeometryView>& views, int layer, int head);
QString eigen_csv(const std::vector<qk::GeometryView>& views, int seed);
// Symmetry score (x) against directionality (y): one point per head, a larger one per layer.
void draw_geometry_scores(QCustomPlot* plot, const std::vector<qk::GeometryView>& views);
QString geometry_csv(const std::vector<qk::GeometryView>& views, int seed);
// Mean power-law α of the forms over training, per variant (records with matrix "form").
void draw_alpha_history(QCustomPlot* plot, const std::vector<qk::EsdRecord>& esd);
QString esd_csv(const std::vector<qk::EsdRecord>& esd, int seed);
// One heatmap per variant: earlier heads (rows) × later heads (columns), kind "Q", "K" or "V".
void draw_composition(QCustomPlot* plot, const std::vector<qk::CircuitsView>& views, const QString& kind);
QString composition_csv(const std::vector<qk::CircuitsView>& views, int seed);
QString readouts_csv(const std::vector<qk::CircuitsView>& views, int seed);
// The token read-outs of one head as text, per variant.
QString readouts_text(const std::vector<qk::CircuitsView>& views, int layer, int head);
// What: "zero", "mean" (Δ validation loss) or "patch" (restored fraction); one layer × head panel per variant.
void draw_ablation(QCustomPlot* plot, const std::vector<qk::AblationView>& views, const QString& what);
// Δ loss against the rank one head's form is cut to, every variant.
void draw_rank_ablation(QCustomPlot* plot, const std::vector<qk::AblationView>& views, int layer, int head);
QString ablation_csv(const std::vector<qk::AblationView>& views, int seed);

// The figures, for the views' exports and the report. `when`: " (step N, seed S)" or "".
Figure eigen_figure(const std::vector<qk::GeometryView>& geo, int layer, int head, int seed, const QString& when,
                    const QString& caption);
Figure geometry_scores_figure(const std::vector<qk::GeometryView>& geo, int seed, const QString& when, const QString& caption);
Figure alpha_figure(const std::vector<qk::EsdRecord>& esd, int seed, const QString& when, const QString& caption);
Figure composition_figure(const std::vector<qk::CircuitsView>& circ, const QString& kind, int seed, const QString& when,
                          const QString& caption);
Figure ablation_figure(const std::vector<qk::AblationView>& abl, const QString& what, int seed, const QString& when,
                       const QString& caption);
Figure rank_ablation_figure(const std::vector<qk::AblationView>& abl, int layer, int head, int seed, const QString& when,
                            const QString& caption);

}  // namespace qkui
