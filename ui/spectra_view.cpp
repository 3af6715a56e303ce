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
                                     tr("rank 90%"), tr("rank 99%"), tr("‖·‖₂"), tr("‖·‖*")});
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

void SpectraView::setSpectra(const std::vector<qk::SpectrumView>& s) {
  spectra_ = s;
  sigma_plot_->clearGraphs();
  sigma_plot_->clearItems();
  table_->setRowCount(int(s.size()));
  double lo = 1e300, hi = 0;
  for (size_t r = 0; r < s.size(); ++r) {
    const auto& v = s[r];
    auto* g = sigma_plot_->addGraph();
    const QString name = QString::fromStdString(v.variant);
    g->setName(QString("%1 (%2)").arg(name, v.matrix == "S" ? "S_h" : "W_Q,h·W_K,hᵀ"));
    g->setPen(QPen(variant_color(name), 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCircle, 4));
    QVector<double> x, y;
    for (size_t i = 0; i < v.sigma.size(); ++i) {
      if (v.sigma[i] <= v.sigma[0] * 1e-12) continue;  // exact zeros beyond the rank (log axis)
      x << double(i + 1);
      y << v.sigma[i];
      lo = std::min(lo, v.sigma[i]);
      hi = std::max(hi, v.sigma[i]);
    }
    g->setData(x, y);
    const auto& m = v.metrics;
    const QStringList cells{name, QString::number(m.numerical_rank), QString::number(m.effective_rank, 'f', 2),
                            QString::number(m.stable_rank, 'f', 2), QString::number(m.rank90),
                            QString::number(m.rank99), QString::number(m.spectral_norm, 'g', 4),
                            QString::number(m.nuclear_norm, 'g', 4)};
    for (int c = 0; c < cells.size(); ++c) table_->setItem(int(r), c, new QTableWidgetItem(cells[c]));
  }
  if (head_dim_ > 0) {
    auto* line = new QCPItemStraightLine(sigma_plot_);
    line->point1->setCoords(head_dim_ + 0.5, 1);
    line->point2->setCoords(head_dim_ + 0.5, 2);
    line->setPen(QPen(Qt::gray, 1, Qt::DashLine));
    auto* label = new QCPItemText(sigma_plot_);
    label->position->setType(QCPItemPosition::ptPlotCoords);
    label->position->setCoords(head_dim_ + 0.5, hi > 0 ? hi : 1);
    label->setPositionAlignment(Qt::AlignLeft | Qt::AlignTop);
    label->setText(QString(" head_dim = %1").arg(head_dim_));
    label->setColor(Qt::gray);
  }
  sigma_plot_->xAxis->setRange(0, std::max(emb_dim_, 1) + 1);
  if (hi > 0) sigma_plot_->yAxis->setRange(lo / 2, hi * 2);
  sigma_plot_->replot();
}

void SpectraView::addHistory(const std::vector<qk::SpectraRecord>& records) {
  if (records.empty()) return;
  history_.insert(history_.end(), records.begin(), records.end());
  redrawHistory();
}

void SpectraView::redrawHistory() {
  const std::string variant = history_variant_->currentText().toStdString();
  std::vector<const qk::SpectraRecord::Head*> cols;
  std::vector<int64_t> steps;
  for (const auto& r : history_) {
    if (r.variant != variant) continue;
    for (const auto& h : r.heads)
      if (h.layer == layer_->value() && h.head == head_->value()) {
        cols.push_back(&h);
        steps.push_back(r.step);
      }
  }
  if (cols.empty()) {
    history_map_->data()->clear();
    history_plot_->replot();
    return;
  }
  const int n = int(cols[0]->sigma.size());
  history_map_->data()->setSize(int(cols.size()), n);
  history_map_->data()->setRange(QCPRange(double(steps.front()), double(std::max(steps.back(), steps.front() + 1))),
                                 QCPRange(1, n));
  for (size_t c = 0; c < cols.size(); ++c)
    for (int i = 0; i < n; ++i) {
      const double s = i < int(cols[c]->sigma.size()) ? cols[c]->sigma[i] : 0.0;
      history_map_->data()->setCell(int(c), i, s > 1e-12 ? std::log10(s) : -12);
    }
  history_map_->setDataRange(QCPRange(-4, 1));
  history_plot_->rescaleAxes();
  history_plot_->replot(QCustomPlot::rpQueuedReplot);
}

QList<Exportable> SpectraView::exportables() const {
  QList<Exportable> out;
  out.push_back({"spectra", QString("Singular values, layer %1 head %2").arg(layer_->value()).arg(head_->value()),
                 sigma_plot_, [this] {
                   QString csv = "variant,layer,head,matrix,index,sigma\n";
                   for (const auto& v : spectra_)
                     for (size_t i = 0; i < v.sigma.size(); ++i)
                       csv += QString("%1,%2,%3,%4,%5,%6\n").arg(QString::fromStdString(v.variant)).arg(v.layer)
                                  .arg(v.head).arg(QString::fromStdString(v.matrix)).arg(i).arg(v.sigma[i], 0, 'g', 9);
                   return csv;
                 }});
  out.push_back({"spectra_history", QString("Spectra over training (%1)").arg(history_variant_->currentText()),
                 history_plot_, [this] {
                   QString csv = "step,variant,seed,layer,head,index,sigma\n";
                   for (const auto& r : history_)
                     for (const auto& h : r.heads)
                       for (size_t i = 0; i < h.sigma.size(); ++i)
                         csv += QString("%1,%2,%3,%4,%5,%6,%7\n").arg(r.step).arg(QString::fromStdString(r.variant))
                                    .arg(r.seed).arg(h.layer).arg(h.head).arg(i).arg(h.sigma[i], 0, 'g', 9);
                   return csv;
                 }});
  return out;
}

}  // namespace qkui
