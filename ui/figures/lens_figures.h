// QKLab ui — the figures of the Lens, Attribution, Detectors and Model views, as functions of plain
// values (views.h), with the CSV behind each: the logit lens (layer × position) of a sequence and
// its mean loss per layer over the validation set, direct logit attribution per head (layer × head)
// and per layer, the head detector scores (layer × head), and BertViz's model view — every
// layer × head of one variant as small attention maps.
#pragma once
#include <QString>
#include <vector>

#include "figures.h"
#include "views.h"

class QCustomPlot;
class QCPAxisRect;

namespace qkui {

// what: "loss" (−log p of the target), "rank" (log10(1 + the target's rank)) or "top" (the top
// token's probability); one layer × position panel per variant.
void draw_logit_lens(QCustomPlot* plot, const std::vector<qk::LogitLensView>& views, const QString& what);
// The mean loss of every layer's read-out over the validation set, one line per variant.
void draw_lens_layers(QCustomPlot* plot, const std::vector<qk::LogitLensView>& views);
QString logit_lens_csv(const std::vector<qk::LogitLensView>& views, int seed);
// The top tokens of one cell, for hover text: "layer l, position t ('tok' → 'target'): …".
QString lens_cell_text(const qk::LogitLensView& v, int layer, int position);

// source: "validation" or "prompt"; one layer × head panel per variant.
void draw_attribution(QCustomPlot* plot, const std::vector<qk::AttributionView>& views, const QString& source);
// Embeddings, each layer's attention (heads + bias) and MLP, the LayerNorm shift: bars per variant.
void draw_attribution_parts(QCustomPlot* plot, const std::vector<qk::AttributionView>& views, const QString& source);
QString attribution_csv(const std::vector<qk::AttributionView>& views, int seed);
// "the parts add up to the logit difference within …" per variant.
QString attribution_check_text(const std::vector<qk::AttributionView>& views, const QString& source);

// kind: "previous_token", "duplicate_token" or "induction"; on: "repeated" or "validation".
void draw_detectors(QCustomPlot* plot, const std::vector<qk::DetectorView>& views, const QString& kind, const QString& on);
QString detectors_csv(const std::vector<qk::DetectorView>& views, int seed);
// Per variant, the heads scoring highest on each detector (on the repeated sequences).
QString detectors_text(const std::vector<qk::DetectorView>& views);

// What the model view shows: layers [layer_from, layer_to], heads [head_from, head_to], and the
// positions [start, start + length) as both queries and keys.
struct ModelWindow {
  int layer_from = 0, layer_to = 0, head_from = 0, head_to = 0, start = 0, length = 0;
};
// The window clamped to the view's shape (length 0: every position).
ModelWindow clamp_window(const qk::AttentionView& v, ModelWindow w);
// One small map per (layer, head) of the window, row by row; returns the panels' (layer, head).
std::vector<std::pair<int, int>> draw_model_view(QCustomPlot* plot, const qk::AttentionView& v, const ModelWindow& w);

Figure lens_figure(const std::vector<qk::LogitLensView>& v, const QString& what, int seed, const QString& when,
                   const QString& caption);
Figure lens_layers_figure(const std::vector<qk::LogitLensView>& v, int seed, const QString& when, const QString& caption);
Figure attribution_figure(const std::vector<qk::AttributionView>& v, const QString& source, int seed, const QString& when,
                          const QString& caption);
Figure attribution_parts_figure(const std::vector<qk::AttributionView>& v, const QString& source, int seed,
                                const QString& when, const QString& caption);
Figure detectors_figure(const std::vector<qk::DetectorView>& v, const QString& kind, const QString& on, int seed,
                        const QString& when, const QString& caption);
Figure model_view_figure(const qk::AttentionView& v, const ModelWindow& w, int seed, const QString& when,
                         const QString& caption);

}  // namespace qkui
