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

CircuitsView::CircuitsView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  bar->addWidget(new QLabel(tr("<b>Circuits</b>"), this));
  status_ = new QLabel(this);
  status_->setObjectName("circuitsStatus");
  bar->addWidget(status_, 1);
  bar->addWidget(new QLabel(tr("composition"), this));
  kind_ = new QComboBox(this);
  kind_->setObjectName("compositionKind");
  kind_->addItem(tr("K (the later head's keys read it)"), "K");
  kind_->addItem(tr("Q (its queries read it)"), "Q");
  kind_->addItem(tr("V (its values read it)"), "V");
  bar->addWidget(kind_);
  bar->addWidget(new QLabel(tr("read-outs of layer"), this));
  layer_ = new QSpinBox(this);
  bar->addWidget(layer_);
  bar->addWidget(new QLabel(tr("head"), this));
  head_ = new QSpinBox(this);
  bar->addWidget(head_);
  auto* go = new QPushButton(tr("Compute"), this);
  bar->addWidget(go);
  layout->addLayout(bar);
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
  layout->addWidget(split, 1);
  connect(go, &QPushButton::clicked, this, [this] {
    pending_ = true;
    Q_EMIT mechanismsRequested("circuits");
  });
  connect(kind_, &QComboBox::currentIndexChanged, this, [this] { redraw(); });
  for (auto* s : {layer_, head_}) connect(s, &QSpinBox::valueChanged, this, [this] { redraw(); });
  redraw();
}

QString CircuitsView::readoutText() const { return readouts_->toPlainText(); }

void CircuitsView::setExperiment(const ExperimentInfo& info) {
  heavy_ = qk::heavy_mechanisms(info.layers, info.heads, info.emb_dim);
  pending_ = false;
  views_.clear();
  stamp_ = {};
  layer_->setRange(0, std::max(0, info.layers - 1));
  head_->setRange(0, std::max(0, info.heads - 1));
  redraw();
}

void CircuitsView::takeSnapshot(const TrainingSnapshot& s) {
  if (s.steps_done != stamp_.current) {
    stamp_.current = s.steps_done;
    status_->setText(status());
    status_->setStyleSheet(stamp_.stale() ? "color: #d35400; font-weight: bold" : "");
  }
}

void CircuitsView::takeAnalysis(const AnalysisResult& r) {
  if (r.circuits.empty()) return;
  pending_ = false;
  views_ = r.circuits;
  stamp_.computed(r.step, r.seed);
  redraw();
}

void CircuitsView::refreshView(bool requested) {
  // Once per step: a result that is not stale, or one on its way, is not asked for again.
  if (!requested || pending_ || heavy_ || (stamp_.have && !stamp_.stale())) return;
  pending_ = true;
  Q_EMIT mechanismsRequested("circuits");
}

void CircuitsView::redraw() {
  status_->setText(status());
  status_->setStyleSheet(stamp_.stale() ? "color: #d35400; font-weight: bold" : "");
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
