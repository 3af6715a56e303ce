// QKLab ui — spectra view (see spectra_view.h).
#include "spectra_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <cmath>
#include <qcustomplot.h>

#include "run_dir.h"

namespace qkui {

SpectraView::SpectraView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  layer_ = new QSpinBox(this);
  layer_->setObjectName("spectraLayer");
  head_ = new QSpinBox(this);
  head_->setObjectName("spectraHead");
  history_variant_ = new QComboBox(this);
  auto* go = new QPushButton(tr("Refresh"), this);
  bar->addWidget(new QLabel(tr("<b>Spectra</b>  Layer"), this));
  bar->addWidget(layer_);
  bar->addWidget(new QLabel(tr("Head"), this));
  bar->addWidget(head_);
  bar->addWidget(go);
  bar->addStretch();
  bar->addWidget(new QLabel(tr("Over training:"), this));
  bar->addWidget(history_variant_);
  layout->addLayout(bar);
  auto* split = new QSplitter(Qt::Vertical, this);
  auto* top = new QSplitter(Qt::Horizontal, split);
  sigma_plot_ = make_plot(top, tr("index i"), tr("singular value σ_i"));
  sigma_plot_->yAxis->setScaleType(QCPAxis::stLogarithmic);
  sigma_plot_->yAxis->setTicker(QSharedPointer<QCPAxisTickerLog>(new QCPAxisTickerLog));
  sigma_plot_->legend->setVisible(true);
  table_ = new QTableWidget(top);
  table_->setColumnCount(8);
  table_->setHorizontalHeaderLabels({tr("variant"), tr("num. rank"), tr("eff. rank"), tr("stable rank"),
                                     tr("rank 90%"), tr("rank 99%"), tr("spectral norm"), tr("nuclear norm")});
  table_->verticalHeader()->setVisible(false);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  top->addWidget(sigma_plot_);
  top->addWidget(table_);
  top->setSizes({700, 300});
  history_plot_ = make_plot(split, tr("step"), tr("index i"));
  history_map_ = make_heatmap(history_plot_, false, 0, 0);
  history_map_->colorScale()->axis()->setLabel(tr("log10 σ"));
  history_plot_->yAxis->setRangeReversed(false);
  split->addWidget(top);
  split->addWidget(history_plot_);
  split->setSizes({600, 250});
  layout->addWidget(split, 1);
  connect(go, &QPushButton::clicked, this, &SpectraView::refresh);
  connect(layer_, qOverload<int>(&QSpinBox::valueChanged), this, [this] { refresh(); redrawHistory(); });
  connect(head_, qOverload<int>(&QSpinBox::valueChanged), this, [this] { refresh(); redrawHistory(); });
  connect(history_variant_, &QComboBox::currentTextChanged, this, [this] { redrawHistory(); });
}

int SpectraView::layer() const { return layer_->value(); }
int SpectraView::head() const { return head_->value(); }

void SpectraView::setModelShape(int layers, int heads, int emb_dim, int head_dim, const QStringList& variants) {
  layer_->setRange(0, std::max(0, layers - 1));
  head_->setRange(0, std::max(0, heads - 1));
  head_dim_ = head_dim;
  emb_dim_ = emb_dim;
  history_variant_->clear();
  history_variant_->addItems(variants);
  if (variants.contains("merged")) history_variant_->setCurrentText("merged");  // the full-rank one
  history_.clear();
  spectra_.clear();
  sigma_plot_->clearGraphs();
  sigma_plot_->clearItems();
  table_->setRowCount(0);
  redrawHistory();
  sigma_plot_->replot();
}

void SpectraView::refresh() { Q_EMIT spectraRequested(layer_->value(), head_->value()); }

void SpectraView::setExperiment(const ExperimentInfo& info) {
  seed_ = info.seed;
  setModelShape(info.layers, info.heads, info.emb_dim, info.head_dim, info.variants);
}

void SpectraView::takeAnalysis(const AnalysisResult& r) {
  if (!r.spectra.empty()) setSpectra(r.spectra);
}

void SpectraView::setSpectra(const std::vector<qk::SpectrumView>& s) {
  spectra_ = s;
  draw_spectra(sigma_plot_, s, head_dim_, emb_dim_);
  table_->setRowCount(int(s.size()));
  for (size_t r = 0; r < s.size(); ++r) {
    const auto& m = s[r].metrics;
    const QStringList cells{QString::fromStdString(s[r].variant), QString::number(m.numerical_rank),
                            QString::number(m.effective_rank, 'f', 2), QString::number(m.stable_rank, 'f', 2),
                            QString::number(m.rank90), QString::number(m.rank99),
                            QString::number(m.spectral_norm, 'g', 4), QString::number(m.nuclear_norm, 'g', 4)};
    for (int c = 0; c < cells.size(); ++c) table_->setItem(int(r), c, new QTableWidgetItem(cells[c]));
  }
  sigma_plot_->replot();
}

void SpectraView::addHistory(const std::vector<qk::SpectraRecord>& records) {
  if (records.empty()) return;
  history_.insert(history_.end(), records.begin(), records.end());
  redrawHistory();
}

void SpectraView::redrawHistory() {
  if (fill_spectra_history(history_map_, history_, history_variant_->currentText().toStdString(), layer_->value(),
                           head_->value()) > 0)
    history_plot_->rescaleAxes();
  history_plot_->replot(QCustomPlot::rpQueuedReplot);
}

QList<Figure> SpectraView::figures() const {
  QList<Figure> out;
  const int layer = layer_->value(), head = head_->value(), hd = head_dim_, d = emb_dim_, seed = seed_;
  if (!spectra_.empty()) {
    const auto spectra = spectra_;
    Figure f;
    f.name = QString("spectra_L%1H%2").arg(layer).arg(head);
    f.title = tr("Singular values of every variant's QK form, layer %1 head %2").arg(layer).arg(head);
    f.caption = tr("σ_i of S_h (merged) and W_Q,h·W_K,hᵀ (standard); the dashed line marks head_dim = %1").arg(hd);
    f.draw = [spectra, hd, d](QCustomPlot* p) { draw_spectra(p, spectra, hd, d); };
    f.csv = [spectra, seed] { return spectra_csv(spectra, seed); };
    out << f;
  }
  const std::string variant = history_variant_->currentText().toStdString();
  bool any = false;
  for (const auto& r : history_) any = any || r.variant == variant;
  if (any) {
    const auto history = history_;
    Figure f;
    f.name = QString("spectra_history_%1_L%2H%3").arg(QString::fromStdString(variant)).arg(layer).arg(head);
    f.title = tr("Spectrum over training: %1, layer %2 head %3").arg(QString::fromStdString(variant)).arg(layer).arg(head);
    f.caption = tr("log10 σ_i of one head's form at every evaluation");
    f.draw = [history, variant, layer, head](QCustomPlot* p) { draw_spectra_history(p, history, variant, layer, head); };
    f.csv = [history] { return QString::fromStdString(qk::spectra_history_csv(history)); };
    out << f;
  }
  return out;
}

}  // namespace qkui
