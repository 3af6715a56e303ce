// QKLab ui — Model view (see model_view.h).
#include "model_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMouseEvent>
#include <QSpinBox>
#include <QToolTip>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include "plot_util.h"

namespace qkui {

ModelView::ModelView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel(tr("<b>Model view</b>"), this));
  variant_ = new QComboBox(this);
  variant_->setObjectName("modelVariant");
  bar->addWidget(variant_);
  prompt_ = new QLineEdit(this);
  prompt_->setObjectName("modelPrompt");
  prompt_->setPlaceholderText(tr("prompt (text) or validation sequence number (tasks)"));
  bar->addWidget(prompt_, 1);
  layout->addLayout(bar);
  auto* filter = new QHBoxLayout;
  auto spin = [&](const QString& name, const QString& label) {
    auto* s = new QSpinBox(this);
    s->setObjectName(name);
    if (!label.isEmpty()) filter->addWidget(new QLabel(label, this));
    filter->addWidget(s);
    connect(s, &QSpinBox::valueChanged, this, [this] { redraw(); });
    return s;
  };
  layer_from_ = spin("modelLayerFrom", tr("layers"));
  layer_to_ = spin("modelLayerTo", tr("to"));
  head_from_ = spin("modelHeadFrom", tr("heads"));
  head_to_ = spin("modelHeadTo", tr("to"));
  start_ = spin("modelStart", tr("positions from"));
  length_ = spin("modelLength", tr("count"));
  length_->setSpecialValueText(tr("all"));
  filter->addStretch(1);
  layout->addLayout(filter);
  plot_ = make_plot(this, {}, {});
  plot_->setObjectName("modelPlot");
  plot_->setMouseTracking(true);
  plot_->installEventFilter(this);
  layout->addWidget(plot_, 1);
  connect(variant_, &QComboBox::currentIndexChanged, this, [this] { redraw(); });
  connect(prompt_, &QLineEdit::returnPressed, this, [this] { refresh(); });
}

void ModelView::refresh() { Q_EMIT attentionRequested(prompt_->text()); }

void ModelView::setExperiment(const ExperimentInfo& info) {
  seed_ = info.seed;
  views_.clear();
  cells_.clear();
  const QSignalBlocker block(variant_);
  variant_->clear();
  variant_->addItems(info.variants);
  for (auto* s : {layer_from_, layer_to_, head_from_, head_to_, start_, length_}) {
    const QSignalBlocker b(s);
    s->setMinimum(0);
  }
  layer_from_->setMaximum(std::max(0, info.layers - 1));
  layer_to_->setMaximum(std::max(0, info.layers - 1));
  head_from_->setMaximum(std::max(0, info.heads - 1));
  head_to_->setMaximum(std::max(0, info.heads - 1));
  const int T = std::max(1, info.config.model.context_length);
  start_->setMaximum(T - 1);
  length_->setMaximum(T);
  setWindow({0, info.layers - 1, 0, info.heads - 1, 0, T > 64 ? 64 : 0});
  prompt_->setText(info.text ? QString::fromStdString(info.config.data.prompt) : QString());
}

ModelWindow ModelView::window() const {
  return {layer_from_->value(), layer_to_->value(), head_from_->value(), head_to_->value(), start_->value(),
          length_->value()};
}

void ModelView::setWindow(const ModelWindow& w) {
  const std::pair<QSpinBox*, int> all[] = {{layer_from_, w.layer_from}, {layer_to_, w.layer_to}, {head_from_, w.head_from},
                                           {head_to_, w.head_to},       {start_, w.start},       {length_, w.length}};
  for (auto [s, v] : all) {
    const QSignalBlocker b(s);
    s->setValue(v);
  }
  redraw();
}

void ModelView::setVariant(const QString& v) { variant_->setCurrentText(v); }

void ModelView::takeAnalysis(const AnalysisResult& r) {
  if (r.attention.empty()) return;
  views_ = r.attention;
  step_ = r.step;
  seed_ = r.seed;
  if (!r.attention_prompt.isNull() && !prompt_->hasFocus()) prompt_->setText(r.attention_prompt);
  redraw();
}

const qk::AttentionView* ModelView::shown() const {
  for (const auto& v : views_)
    if (QString::fromStdString(v.variant) == variant_->currentText()) return &v;
  return views_.empty() ? nullptr : &views_.front();
}

void ModelView::redraw() {
  const auto* v = shown();
  cells_ = v ? draw_model_view(plot_, *v, window()) : std::vector<std::pair<int, int>>{};
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

std::pair<int, int> ModelView::headAt(const QPoint& pos) const {
  const auto rects = plot_->axisRects();
  for (int p = 0; p < int(rects.size()) && p < int(cells_.size()); ++p)
    if (rects[p]->rect().contains(pos)) return cells_[size_t(p)];
  return {-1, -1};
}

QString ModelView::hoverText(const QPoint& pos) const {
  const auto* v = shown();
  const auto rects = plot_->axisRects();
  if (!v) return {};
  for (int p = 0; p < int(rects.size()) && p < int(cells_.size()); ++p) {
    if (!rects[p]->rect().contains(pos)) continue;
    const int k = int(std::lround(rects[p]->axis(QCPAxis::atBottom)->pixelToCoord(pos.x())));
    const int qi = int(std::lround(rects[p]->axis(QCPAxis::atLeft)->pixelToCoord(pos.y())));
    if (qi < 0 || k < 0 || qi >= v->T || k >= v->T) return {};
    const auto [l, h] = cells_[size_t(p)];
    const float w = v->weights[size_t(l * v->heads + h)][size_t(qi * v->T + k)];
    return tr("%1 layer %2 head %3\nquery %4 «%5» → key %6 «%7»: %8\n(click: open in the Attention tab)")
        .arg(QString::fromStdString(v->variant)).arg(l).arg(h).arg(qi).arg(QString::fromStdString(v->tokens[size_t(qi)]))
        .arg(k).arg(QString::fromStdString(v->tokens[size_t(k)])).arg(w, 0, 'f', 3);
  }
  return {};
}

bool ModelView::eventFilter(QObject* obj, QEvent* ev) {
  if (obj == plot_ && ev->type() == QEvent::MouseMove) {
    auto* me = static_cast<QMouseEvent*>(ev);
    const QString text = hoverText(me->position().toPoint());
    if (!text.isEmpty()) QToolTip::showText(me->globalPosition().toPoint(), text, plot_);
  } else if (obj == plot_ && ev->type() == QEvent::MouseButtonRelease) {
    const auto [l, h] = headAt(static_cast<QMouseEvent*>(ev)->position().toPoint());
    if (l >= 0) Q_EMIT headOpened(l, h);
  }
  return QWidget::eventFilter(obj, ev);
}

QList<Figure> ModelView::figures() const {
  QList<Figure> out;
  const auto* v = shown();
  if (!v) return out;
  const QString when = step_ >= 0 ? tr(" (step %1, seed %2)").arg(step_).arg(seed_) : QString();
  out << model_view_figure(*v, window(), seed_, when,
                           tr("rows: queries, columns: keys, for the prompt «%1»").arg(prompt_->text()));
  return out;
}

}  // namespace qkui
