// QKLab ui — the figures QKLab draws, as functions of plain values: each fills a QCustomPlot it is
// given. The views draw into their on-screen plots with them; exports and the report draw the same
// figure into a fresh plot of the export's own size (figure_export.h). The CSV text behind each
// figure is produced here too, so a picture and its data always come from the same values.
#pragma once
#include <QList>
#include <QStringList>
#include <QString>
#include <functional>
#include <vector>

#include "observer.h"
#include "views.h"

class QCustomPlot;
class QCPColorMap;
class QCPAxisRect;

namespace qkui {

// A figure ready to export: a name (file stem), a full title, a one-line caption for the report,
// a function that draws it into an empty plot, and the data behind it.
struct Figure {
  QString name;
  QString title;
  QString caption;
  std::function<void(QCustomPlot*)> draw;
  std::function<QString()> csv;  // header first; null when the figure has no data of its own
  double height_factor = 1.0;    // grids of panels: export height = default height × this
};

// A grid of `n` axis rects, each under a small title (the largest font at which every title fits),
// replacing the plot's default layout. Returns the axis rects, row by row.
std::vector<QCPAxisRect*> make_panels(QCustomPlot* plot, int n, int cols, const QStringList& titles);

enum class LossX { Step = 0, Tokens = 1, WallTime = 2 };

// Train (dashed) and validation (solid) loss per variant; EMA-smoothed; with several seeds the
// mean with a min–max band.
void draw_loss(QCustomPlot* plot, const std::vector<qk::EvalRecord>& rows, double smoothing, LossX x);
// When every row sits at one x (the evaluation before training), an x range with it at the left.
void fit_loss_start(QCustomPlot* plot, const std::vector<qk::EvalRecord>& rows, LossX x);
// σ_i versus i (log y) of every given spectrum (one layer/head, several variants); head_dim marked.
void draw_spectra(QCustomPlot* plot, const std::vector<qk::SpectrumView>& spectra, int head_dim, int emb_dim);
// One panel per head of `layer` (a grid), every variant's σ in each.
void draw_spectra_grid(QCustomPlot* plot, const std::vector<qk::SpectrumView>& spectra, int layer, int heads,
                       int head_dim, int emb_dim);
// Effective rank of every head (x: layer·H + head), one series per variant.
void draw_rank_summary(QCustomPlot* plot, const std::vector<qk::SpectrumView>& spectra, int heads, int head_dim);
// log10 σ_i of one head over training, as a heatmap (step × index). Returns the number of steps.
int fill_spectra_history(QCPColorMap* map, const std::vector<qk::SpectraRecord>& history, const std::string& variant,
                         int layer, int head);
void draw_spectra_history(QCustomPlot* plot, const std::vector<qk::SpectraRecord>& history,
                          const std::string& variant, int layer, int head);
void draw_truncation(QCustomPlot* plot, const std::vector<qk::TruncationView>& trunc, int emb_dim);
void draw_effective_rank(QCustomPlot* plot, const std::vector<qk::SpectraRecord>& history);
void draw_kl(QCustomPlot* plot, const std::vector<qk::DivergenceRecord>& kl);
// Attention weights of one head into a colour map (diff: a − b); token labels on both axes, on at
// most max_labels positions.
void fill_attention(QCPColorMap* map, const qk::AttentionView& a, const qk::AttentionView* b,
                    int layer, int head, int max_labels = 24);
int attention_grid_columns();  // panels per row of an every-head attention figure
// Heads of `layer` (head -1: every head, one row per variant plus a row of differences first −
// second; else that head of every variant and their difference side by side).
void draw_attention_grid(QCustomPlot* plot, const std::vector<qk::AttentionView>& views, int layer, int head);

// The data behind the figures (CSV, header first).
QString spectra_csv(const std::vector<qk::SpectrumView>& spectra, int seed);
QString rank_metrics_csv(const std::vector<qk::SpectrumView>& spectra, int seed);
QString truncation_csv(const std::vector<qk::TruncationView>& trunc, int seed);
QString effective_rank_csv(const std::vector<qk::SpectraRecord>& history);
QString attention_csv(const std::vector<qk::AttentionView>& views, int layer, int head, int seed);  // head -1: all
// The plot label of a form's matrix key (variants.h: "S" → "S_h", "WqWk" → "W_Q,h·W_K,hᵀ").
QString matrix_label(const std::string& matrix);

}  // namespace qkui
