// QKLab ui — rank analysis view (see rank_view.h).
#include "rank_view.h"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <map>
#include <qcustomplot.h>

namespace qkui {

RankView::RankView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  auto* go = new QPushButton(tr("Compute truncation curve"), this);
  go->setObjectName("computeTruncation");
  bar->addWidget(new QLabel(tr("<b>Rank analysis</b>"), this));
  bar->addStretch();
  bar->addWidget(go);
  layout->addLayout(bar);
  auto* grid = new QGridLayout;
  trunc_plot_ = make_plot(this, tr("rank r of every head's form (log2)"), tr("validation loss"));
  trunc_plot_->xAxis->setScaleType(QCPAxis::stLogarithmic);
  QSharedPointer<QCPAxisTickerLog> log2(new QCPAxisTickerLog);
  log2->setLogBase(2);
  trunc_plot_->xAxis->setTicker(log2);
  trunc_plot_->legend->setVisible(true);
  erank_plot_ = make_plot(this, tr("step"), tr("effective rank (mean over heads)"));
  erank_plot_->legend->setVisible(true);
  kl_plot_ = make_plot(this, tr("step"), tr("KL(first ‖ variant), nats"));
  kl_plot_->legend->setVisible(true);
  grid->addWidget(trunc_plot_, 0, 0, 1, 2);
  grid->addWidget(erank_plot_, 1, 0);
  grid->addWidget(kl_plot_, 1, 1);
  layout->addLayout(grid, 1);
  connect(go, &QPushButton::clicked, this, [this] { Q_EMIT truncationRequested(ranks()); });
}

QList<int> RankView::ranks() const {
  QList<int> r{0};
  for (int k = 1; k < emb_dim_; k *= 2) r << k;
  if (emb_dim_ > 0) r << emb_dim_;
  return r;
}

void RankView::reset(int emb_dim) {
  emb_dim_ = emb_dim;
  trunc_.clear();
  spectra_.clear();
  kl_.clear();
  redraw();
}

void RankView::setTruncation(const std::vector<qk::TruncationView>& t) {
  trunc_ = t;
  redraw();
}

void RankView::addSpectra(const std::vector<qk::SpectraRecord>& records) {
  spectra_.insert(spectra_.end(), records.begin(), records.end());
  if (!records.empty()) redraw();
}

void RankView::addDivergence(const std::vector<qk::DivergenceRecord>& records) {
  kl_.insert(kl_.end(), records.begin(), records.end());
  if (!records.empty()) redraw();
}

void RankView::redraw() {
  trunc_plot_->clearGraphs();
  for (const auto& t : trunc_) {
    auto* g = trunc_plot_->addGraph();
    const QString v = QString::fromStdString(t.variant);
    g->setName(v);
    g->setPen(QPen(variant_color(v), 2));
    g->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 6));
    for (size_t i = 0; i < t.ranks.size(); ++i)  // rank 0 drawn at 0.5 on the log axis
      g->addData(t.ranks[i] == 0 ? 0.5 : t.ranks[i], t.val_loss[i]);
  }
  trunc_plot_->rescaleAxes();
  if (trunc_.empty()) trunc_plot_->xAxis->setRange(0.5, std::max(emb_dim_, 2));
  trunc_plot_->replot(QCustomPlot::rpQueuedReplot);

  erank_plot_->clearGraphs();
  std::map<std::pair<std::string, int>, QCPGraph*> graphs;  // (variant, layer), seed of the first lane
  for (const auto& r : spectra_) {
    std::map<int, std::pair<double, int>> per_layer;
    for (const auto& h : r.heads) {
      per_layer[h.layer].first += h.effective_rank;
      per_layer[h.layer].second += 1;
    }
    for (auto& [layer, acc] : per_layer) {
      auto key = std::make_pair(r.variant + "#" + std::to_string(r.seed), layer);
      if (!graphs.count(key)) {
        auto* g = erank_plot_->addGraph();
        const QString v = QString::fromStdString(r.variant);
        g->setName(QString("%1 layer %2").arg(v).arg(layer));
        QPen pen(variant_color(v), 2);
        pen.setStyle(static_cast<Qt::PenStyle>(1 + layer % 5));
        g->setPen(pen);
        graphs[key] = g;
      }
      graphs[key]->addData(double(r.step + 1), acc.first / acc.second);
    }
  }
  erank_plot_->rescaleAxes();
  erank_plot_->replot(QCustomPlot::rpQueuedReplot);

  kl_plot_->clearGraphs();
  std::map<std::string, QCPGraph*> kg;
  for (const auto& d : kl_) {
    const std::string key = d.from + "→" + d.to + "#" + std::to_string(d.seed);
    if (!kg.count(key)) {
      auto* g = kl_plot_->addGraph();
      g->setName(QString::fromStdString(d.from + " → " + d.to));
      g->setPen(QPen(variant_color(QString::fromStdString(d.to)), 2));
      kg[key] = g;
    }
    kg[key]->addData(double(d.step + 1), d.kl);
  }
  kl_plot_->rescaleAxes();
  kl_plot_->replot(QCustomPlot::rpQueuedReplot);
}

QList<Exportable> RankView::exportables() const {
  QList<Exportable> out;
  out.push_back({"truncation", tr("Validation loss versus rank of every head's form"), trunc_plot_,
                 [this] {
                   QString csv = "variant,rank,val_loss,val_acc\n";
                   for (const auto& t : trunc_)
                     for (size_t i = 0; i < t.ranks.size(); ++i)
                       csv += QString("%1,%2,%3,%4\n").arg(QString::fromStdString(t.variant)).arg(t.ranks[i])
                                  .arg(t.val_loss[i], 0, 'g', 9)
                                  .arg(std::isnan(t.val_acc[i]) ? QString() : QString::number(t.val_acc[i], 'g', 9));
                   return csv;
                 }});
  out.push_back({"effective_rank", tr("Effective rank over training"), erank_plot_, [this] {
                   QString csv = "step,variant,seed,layer,head,effective_rank\n";
                   for (const auto& r : spectra_)
                     for (const auto& h : r.heads)
                       csv += QString("%1,%2,%3,%4,%5,%6\n").arg(r.step).arg(QString::fromStdString(r.variant)).arg(r.seed)
                                  .arg(h.layer).arg(h.head).arg(h.effective_rank, 0, 'g', 9);
                   return csv;
                 }});
  out.push_back({"divergence", tr("KL divergence between the paired models"), kl_plot_, [this] {
                   QString csv = "step,seed,from,to,kl\n";
                   for (const auto& d : kl_)
                     csv += QString("%1,%2,%3,%4,%5\n").arg(d.step).arg(d.seed).arg(QString::fromStdString(d.from))
                                .arg(QString::fromStdString(d.to)).arg(d.kl, 0, 'g', 9);
                   return csv;
                 }});
  return out;
}

}  // namespace qkui
