// QKLab ui — Attribution view (see attribution_view.h).
#include "attribution_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QSplitter>
#include <qcustomplot.h>

#include "lens_figures.h"
#include "plot_util.h"

namespace qkui {

AttributionView::AttributionView(QWidget* parent)
    : MechanismTab("attribution", tr("Attribution"), tr("Direct logit attribution"), parent) {
  source_ = new QComboBox(this);
  source_->setObjectName("attributionSource");
  source_->addItem(tr("validation mean"), "validation");
  source_->addItem(tr("the prompt's answer"), "prompt");
  bar()->addWidget(source_);
  finishBar({});
  auto* row = new QHBoxLayout;
  prompt_ = new QLineEdit(this);
  prompt_->setObjectName("attributionPrompt");
  prompt_->setPlaceholderText(tr("prompt (text) or validation sequence number (tasks)"));
  answer_ = new QLineEdit(this);
  answer_->setObjectName("attributionAnswer");
  answer_->setPlaceholderText(tr("answer (default: next / top token)"));
  wrong_ = new QLineEdit(this);
  wrong_->setObjectName("attributionWrong");
  wrong_->setPlaceholderText(tr("against (default: most likely other)"));
  row->addWidget(new QLabel(tr("prompt"), this));
  row->addWidget(prompt_, 3);
  row->addWidget(answer_, 1);
  row->addWidget(wrong_, 1);
  body()->addLayout(row);
  check_ = new QLabel(this);
  check_->setObjectName("attributionCheck");
  check_->setWordWrap(true);
  body()->addWidget(check_);
  auto* split = new QSplitter(Qt::Vertical, this);
  heat_plot_ = make_plot(split, tr("head"), tr("layer"));
  parts_plot_ = make_plot(split, tr("part"), tr("attribution"));
  split->addWidget(heat_plot_);
  split->addWidget(parts_plot_);
  body()->addWidget(split, 1);
  connect(source_, &QComboBox::currentIndexChanged, this, [this] { redraw(); });
  for (auto* e : {prompt_, answer_, wrong_})
    connect(e, &QLineEdit::returnPressed, this, [this] { Q_EMIT mechanismsRequested("attribution", requestArguments()); });
  redraw();
}

QStringList AttributionView::requestArguments() const { return {prompt_->text(), answer_->text(), wrong_->text()}; }

QString AttributionView::checkText() const { return check_->text(); }

void AttributionView::clear() { views_.clear(); }

bool AttributionView::take(const AnalysisResult& r) {
  if (r.attribution.empty()) return false;
  views_ = r.attribution;
  return true;
}

void AttributionView::redraw() {
  showStatus();
  QString source = source_->currentData().toString();
  bool any = false;
  for (const auto& v : views_) any = any || QString::fromStdString(v.source) == source;
  if (!any && !views_.empty()) source = "prompt";  // an import has no validation data
  check_->setText(attribution_check_text(views_, source));
  draw_attribution(heat_plot_, views_, source);
  heat_plot_->replot(QCustomPlot::rpQueuedReplot);
  draw_attribution_parts(parts_plot_, views_, source);
  parts_plot_->replot(QCustomPlot::rpQueuedReplot);
}

QList<Figure> AttributionView::figures() const {
  QList<Figure> out;
  if (views_.empty()) return out;
  const QString when = stamp_.suffix(), caption = stamp_.stale() ? status() : QString();
  for (const char* source : {"validation", "prompt"}) {
    bool any = false;
    for (const auto& v : views_) any = any || v.source == source;
    if (!any) continue;
    out << attribution_figure(views_, source, stamp_.seed, when, caption);
    out << attribution_parts_figure(views_, source, stamp_.seed, when, caption);
  }
  return out;
}

}  // namespace qkui
