// QKLab ui — attention heatmaps (see attention_view.h).
#include "attention_view.h"

#include <QCheckBox>
#include <QEvent>
#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMouseEvent>
#include <QPushButton>
#include <QScrollArea>
#include <QSpinBox>
#include <QToolTip>
#include <qcustomplot.h>

namespace qkui {

AttentionView::AttentionView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  prompt_ = new QLineEdit(this);
  prompt_->setObjectName("attentionPrompt");
  prompt_->setPlaceholderText(tr("prompt text, or for a task the number of a validation sequence"));
  layer_ = new QSpinBox(this);
  layer_->setObjectName("attentionLayer");
  head_ = new QSpinBox(this);
  head_->setObjectName("attentionHead");
  all_heads_ = new QCheckBox(tr("All heads"), this);
  all_heads_->setObjectName("attentionAllHeads");
  auto* go = new QPushButton(tr("Refresh"), this);
  bar->addWidget(new QLabel(tr("<b>Attention</b>  Prompt"), this));
  bar->addWidget(prompt_, 1);
  bar->addWidget(new QLabel(tr("Layer"), this));
  bar->addWidget(layer_);
  bar->addWidget(new QLabel(tr("Head"), this));
  bar->addWidget(head_);
  bar->addWidget(all_heads_);
  bar->addWidget(go);
  layout->addLayout(bar);
  auto* scroll = new QScrollArea(this);
  scroll->setWidgetResizable(true);
  canvas_ = new QWidget(scroll);
  grid_ = new QGridLayout(canvas_);
  scroll->setWidget(canvas_);
  layout->addWidget(scroll, 1);
  connect(go, &QPushButton::clicked, this, &AttentionView::refresh);
  connect(prompt_, &QLineEdit::returnPressed, this, &AttentionView::refresh);
  connect(layer_, qOverload<int>(&QSpinBox::valueChanged), this, [this] { rebuild(); });
  connect(head_, qOverload<int>(&QSpinBox::valueChanged), this, [this] { rebuild(); });
  connect(all_heads_, &QCheckBox::toggled, this, [this](bool on) {
    head_->setEnabled(!on);
    rebuild();
  });
}

void AttentionView::setModelShape(int layers, int heads, bool text) {
  layer_->setRange(0, std::max(0, layers - 1));
  head_->setRange(0, std::max(0, heads - 1));
  prompt_->clear();
  prompt_->setPlaceholderText(text ? tr("prompt text") : tr("validation sequence number (0, 1, 2, …)"));
  views_.clear();
  rebuild();
}

void AttentionView::setLayerHead(int layer, int head) {
  layer_->setValue(layer);
  head_->setValue(head);
}

QString AttentionView::prompt() const { return prompt_->text(); }

void AttentionView::refresh() { Q_EMIT attentionRequested(prompt_->text()); }

void AttentionView::setAttention(const std::vector<qk::AttentionView>& views) {
  views_ = views;
  rebuild();
}

const std::vector<float>* AttentionView::weightsOf(const qk::AttentionView& v, int head) const {
  const size_t idx = size_t(layer_->value()) * v.heads + head;
  return idx < v.weights.size() ? &v.weights[idx] : nullptr;
}

std::vector<float> AttentionView::shownWeights(const QString& variant) const {
  for (const auto& v : views_)
    if (QString::fromStdString(v.variant) == variant)
      if (auto* w = weightsOf(v, head_->value())) return *w;
  return {};
}

void AttentionView::rebuild() {
  for (auto& p : panels_) p.plot->deleteLater();
  panels_.clear();
  if (views_.empty()) return;
  auto add_panel = [&](const QString& variant, int head, const qk::AttentionView& a, const qk::AttentionView* b,
                       int row, int col, const QString& title) {
    auto* plot = new QCustomPlot(canvas_);
    style_plot(plot);
    plot->setMinimumSize(all_heads_->isChecked() ? 220 : 320, all_heads_->isChecked() ? 200 : 300);
    auto* map = make_heatmap(plot, b != nullptr, b ? -1 : 0, 1);
    fill_attention(map, a, b, layer_->value(), head);
    plot->xAxis->setLabel(tr("key"));
    plot->yAxis->setLabel(tr("query"));
    plot->plotLayout()->insertRow(0);
    plot->plotLayout()->addElement(0, 0, new QCPTextElement(plot, title, QFont(font().family(), 9, QFont::Bold)));
    plot->setMouseTracking(true);
    plot->installEventFilter(this);
    plot->replot();
    grid_->addWidget(plot, row, col);
    panels_.push_back({plot, variant, head});
  };
  if (all_heads_->isChecked()) {
    for (size_t r = 0; r < views_.size(); ++r)
      for (int h = 0; h < views_[r].heads; ++h)
        if (weightsOf(views_[r], h)) {
          const QString v = QString::fromStdString(views_[r].variant);
          add_panel(v, h, views_[r], nullptr, int(r), h, QString("%1 L%2 H%3").arg(v).arg(layer_->value()).arg(h));
        }
  } else {
    const int h = head_->value();
    int col = 0;
    for (auto& view : views_)
      if (weightsOf(view, h)) {
        const QString v = QString::fromStdString(view.variant);
        add_panel(v, h, view, nullptr, 0, col++,
                  QString("%1 L%2 H%3 · entropy %4 · rank %5 · self %6").arg(v).arg(layer_->value()).arg(h)
                      .arg(view.entropy[layer_->value()][h], 0, 'f', 2).arg(view.rank[layer_->value()][h])
                      .arg(view.diagonal.empty() ? 0.0 : view.diagonal[layer_->value()][h], 0, 'f', 2));
      }
    if (views_.size() >= 2) {
      if (weightsOf(views_[0], h) && weightsOf(views_[1], h))
        add_panel("", h, views_[0], &views_[1], 0, col,
                  QString("%1 − %2").arg(QString::fromStdString(views_[0].variant), QString::fromStdString(views_[1].variant)));
    }
  }
}

bool AttentionView::eventFilter(QObject* obj, QEvent* ev) {
  if (ev->type() == QEvent::MouseMove && !views_.empty()) {
    for (const auto& p : panels_) {
      if (p.plot != obj) continue;
      auto* me = static_cast<QMouseEvent*>(ev);
      const int k = int(std::lround(p.plot->xAxis->pixelToCoord(me->position().x())));
      const int q = int(std::lround(p.plot->yAxis->pixelToCoord(me->position().y())));
      const int T = views_[0].T;
      if (q < 0 || k < 0 || q >= T || k >= T) return false;
      double w = 0;
      for (const auto& v : views_) {
        auto* ws = weightsOf(v, p.head);
        if (!ws) continue;
        if (QString::fromStdString(v.variant) == p.variant) w = (*ws)[q * T + k];
      }
      QString text = QString("query %1 '%2'\nkey %3 '%4'").arg(q).arg(QString::fromStdString(views_[0].tokens[q]))
                         .arg(k).arg(QString::fromStdString(views_[0].tokens[k]));
      if (!p.variant.isEmpty()) text += QString("\nweight %1").arg(w, 0, 'f', 4);
      QToolTip::showText(me->globalPosition().toPoint(), text, p.plot);
    }
  }
  return QWidget::eventFilter(obj, ev);
}

void AttentionView::setExperiment(const ExperimentInfo& info) {
  seed_ = info.seed;
  setModelShape(info.layers, info.heads, info.text);
}

void AttentionView::takeAnalysis(const AnalysisResult& r) {
  if (r.attention.empty()) return;
  // The Model view asks for maps too: both show the prompt they were computed for.
  if (!r.attention_prompt.isNull() && !prompt_->hasFocus()) prompt_->setText(r.attention_prompt);
  setAttention(r.attention);
}

Figure attention_figure(const std::vector<qk::AttentionView>& views, int layer, int head, int seed,
                        const QString& prompt_label) {
  Figure f;
  const int H = views.empty() ? 0 : views[0].heads;
  const int nv = int(views.size()) + (views.size() >= 2 ? 1 : 0);
  f.name = head < 0 ? QString("attention_L%1").arg(layer) : QString("attention_L%1H%2").arg(layer).arg(head);
  f.title = head < 0 ? QObject::tr("Attention weights, layer %1, every head and variant").arg(layer)
                     : QObject::tr("Attention weights, layer %1 head %2, every variant").arg(layer).arg(head);
  f.caption = QObject::tr("query rows attend to key columns for %1; the last row is the difference of the first two variants")
                  .arg(prompt_label);
  // Every head: each variant's heads in rows of at most four roughly square panels (at the default
  // 800 × 500 pt layout, a colour-scale column of ~90 pt beside them).
  if (head < 0) {
    const int cols = std::min(std::max(1, H), attention_grid_columns());
    const int rows = nv * ((H + cols - 1) / cols);
    f.height_factor = std::max(1.0, rows * (710.0 / cols + 50.0) / 500.0);
  }
  f.draw = [views, layer, head](QCustomPlot* p) { draw_attention_grid(p, views, layer, head); };
  f.csv = [views, layer, head, seed] { return attention_csv(views, layer, head, seed); };
  return f;
}

QList<Figure> AttentionView::figures() const {
  if (views_.empty()) return {};
  const QString label = prompt_->text().isEmpty() ? tr("the default prompt") : tr("'%1'").arg(prompt_->text());
  return {attention_figure(views_, layer_->value(), all_heads_->isChecked() ? -1 : head_->value(), seed_, label)};
}

}  // namespace qkui
