// QKLab ui — Circuits view (see circuits_view.h).
#include "circuits_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <qcustomplot.h>

#include "mechanism_figures.h"
#include "plot_util.h"

namespace qkui {

CircuitsView::CircuitsView(QWidget* parent) : MechanismTab("circuits", tr("Circuits"), tr("Circuits"), parent) {
  bar()->addWidget(new QLabel(tr("composition"), this));
  kind_ = new QComboBox(this);
  kind_->setObjectName("compositionKind");
  kind_->addItem(tr("K (the later head's keys read it)"), "K");
  kind_->addItem(tr("Q (its queries read it)"), "Q");
  kind_->addItem(tr("V (its values read it)"), "V");
  bar()->addWidget(kind_);
  finishBar(tr("read-outs of layer"));
  auto* split = new QSplitter(Qt::Vertical, this);
  comp_plot_ = make_plot(split, tr("later head"), tr("earlier head"));
  readouts_ = new QPlainTextEdit(split);
  readouts_->setReadOnly(true);
  readouts_->setObjectName("readouts");
  readouts_->setFont(QFontDatabase::systemFont(QFontDatabase::FixedFont));
  split->addWidget(comp_plot_);
  split->addWidget(readouts_);
  split->setStretchFactor(0, 3);
  split->setStretchFactor(1, 2);
  body()->addWidget(split, 1);
  connect(kind_, &QComboBox::currentIndexChanged, this, [this] { redraw(); });
  redraw();
}

QString CircuitsView::readoutText() const { return readouts_->toPlainText(); }





void CircuitsView::clear() { views_.clear(); }

bool CircuitsView::take(const AnalysisResult& r) {
  if (r.circuits.empty()) return false;
  views_ = r.circuits;
  return true;
}

void CircuitsView::redraw() {
  showStatus();
  draw_composition(comp_plot_, views_, kind_->currentData().toString());
  comp_plot_->replot(QCustomPlot::rpQueuedReplot);
  QString text = views_.empty() ? QString() : readouts_text(views_, layer_->value(), head_->value());
  if (!views_.empty() && views_[0].layers < 2) text.prepend(tr("One layer: no composition between heads.\n\n"));
  readouts_->setPlainText(text);
}

QList<Figure> CircuitsView::figures() const {
  QList<Figure> out;
  if (views_.empty()) return out;
  const QString when = stamp_.suffix(), caption = stamp_.stale() ? status() : QString();
  Figure f = composition_figure(views_, kind_->currentData().toString(), stamp_.seed, when, caption);
  out << f;
  // The read-outs are a table: its own CSV entry beside the heatmap it explains.
  const auto views = views_;
  const int seed = stamp_.seed;
  f.name = "circuit_readouts";
  f.title = tr("Token read-outs of every head's QK and OV circuits%1").arg(when);
  f.caption = tr("top tokens of the leading singular directions of E·M_h·Eᵀ and E·OV_h·W_U (heatmap: composition)");
  f.csv = [views, seed] { return readouts_csv(views, seed); };
  out << f;
  return out;
}

}  // namespace qkui
