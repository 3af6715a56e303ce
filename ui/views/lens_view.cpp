// QKLab ui — Lens view (see lens_view.h).
#include "lens_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QMouseEvent>
#include <QSplitter>
#include <QToolTip>
#include <qcustomplot.h>

#include "lens_figures.h"
#include "plot_util.h"

namespace qkui {

LensView::LensView(QWidget* parent) : MechanismTab("lens", tr("Lens"), tr("Logit lens"), parent) {
  prompt_ = new QLineEdit(this);
  prompt_->setObjectName("lensPrompt");
  prompt_->setPlaceholderText(tr("prompt (text) or validation sequence number (tasks)"));
  bar()->addWidget(prompt_, 1);
  what_ = new QComboBox(this);
  what_->setObjectName("lensWhat");
  what_->addItem(tr("loss of the next token"), "loss");
  what_->addItem(tr("rank of the next token"), "rank");
  what_->addItem(tr("top token's probability"), "top");
  bar()->addWidget(what_);
  finishBar({});
  auto* split = new QSplitter(Qt::Vertical, this);
  heat_plot_ = make_plot(split, tr("position"), tr("layer"));
  heat_plot_->setObjectName("lensHeatmap");
  layer_plot_ = make_plot(split, tr("layer"), tr("loss"));
  split->addWidget(heat_plot_);
  split->addWidget(layer_plot_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  body()->addWidget(split, 1);
  heat_plot_->setMouseTracking(true);
  heat_plot_->installEventFilter(this);
  connect(what_, &QComboBox::currentIndexChanged, this, [this] { redraw(); });
  connect(prompt_, &QLineEdit::returnPressed, this, [this] { Q_EMIT mechanismsRequested("lens", requestArguments()); });
  redraw();
}

QStringList LensView::requestArguments() const { return {prompt_->text()}; }

void LensView::clear() { views_.clear(); }

bool LensView::take(const AnalysisResult& r) {
  if (r.logit_lens.empty()) return false;
  views_ = r.logit_lens;
  return true;
}

void LensView::redraw() {
  showStatus();
  draw_logit_lens(heat_plot_, views_, what_->currentData().toString());
  heat_plot_->replot(QCustomPlot::rpQueuedReplot);
  draw_lens_layers(layer_plot_, views_);
  layer_plot_->replot(QCustomPlot::rpQueuedReplot);
}

QString LensView::cellText(int panel, int layer, int position) const {
  if (panel < 0 || panel >= int(views_.size())) return {};
  return lens_cell_text(views_[size_t(panel)], layer, position);
}

bool LensView::eventFilter(QObject* obj, QEvent* ev) {
  if (obj == heat_plot_ && ev->type() == QEvent::MouseMove && !views_.empty()) {
    auto* me = static_cast<QMouseEvent*>(ev);
    const auto rects = heat_plot_->axisRects();
    for (int p = 0; p < int(rects.size()); ++p) {
      if (!rects[p]->rect().contains(me->position().toPoint())) continue;
      const int t = int(std::lround(rects[p]->axis(QCPAxis::atBottom)->pixelToCoord(me->position().x())));
      const int l = int(std::lround(rects[p]->axis(QCPAxis::atLeft)->pixelToCoord(me->position().y())));
      const QString text = cellText(p, l, t);
      if (!text.isEmpty()) QToolTip::showText(me->globalPosition().toPoint(), text, heat_plot_);
    }
  }
  return QWidget::eventFilter(obj, ev);
}

QList<Figure> LensView::figures() const {
  QList<Figure> out;
  if (views_.empty()) return out;
  const QString when = stamp_.suffix(), caption = stamp_.stale() ? status() : QString();
  for (const char* what : {"loss", "rank", "top"}) out << lens_figure(views_, what, stamp_.seed, when, caption);
  out << lens_layers_figure(views_, stamp_.seed, when, caption);
  return out;
}

}  // namespace qkui
