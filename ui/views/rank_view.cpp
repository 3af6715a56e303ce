// QKLab ui — rank analysis view (see rank_view.h).
#include "rank_view.h"

#include <QGridLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPushButton>
#include <map>
#include <qcustomplot.h>

#include "report_data.h"
#include "run_dir.h"

namespace qkui {

RankView::RankView(QWidget* parent) : QWidget(parent) {
  auto* layout = new QVBoxLayout(this);
  auto* bar = new QHBoxLayout;
  auto* go = new QPushButton(tr("Compute truncation curve"), this);
  go->setObjectName("computeTruncation");
  bar->addWidget(new QLabel(tr("<b>Rank analysis</b>"), this));
  trunc_status_ = new QLabel(this);
  trunc_status_->setObjectName("truncationStatus");
  bar->addWidget(trunc_status_);
  bar->addStretch();
  bar->addWidget(go);
  layout->addLayout(bar);
  auto* grid = new QGridLayout;
  trunc_plot_ = make_plot(this, tr("rank r of every head's form (log2)"), tr("validation loss"));
  trunc_plot_->legend->setVisible(true);
  erank_plot_ = make_plot(this, tr("step"), tr("effective rank (mean over heads)"));
  erank_plot_->legend->setVisible(true);
  kl_plot_ = make_plot(this, tr("step"), tr("KL(first || variant), nats/token"));
  kl_plot_->legend->setVisible(true);
  grid->addWidget(trunc_plot_, 0, 0, 1, 2);
  grid->addWidget(erank_plot_, 1, 0);
  grid->addWidget(kl_plot_, 1, 1);
  layout->addLayout(grid, 1);
  connect(go, &QPushButton::clicked, this, [this] { Q_EMIT truncationRequested(ranks()); });
}

QList<int> RankView::ranks() const {
  QList<int> r;
  for (int k : qk::default_truncation_ranks(emb_dim_)) r << k;
  return r;
}

void RankView::reset(int emb_dim) {
  emb_dim_ = emb_dim;
  trunc_.clear();
  trunc_step_ = -1;
  current_step_ = 0;
  spectra_.clear();
  kl_.clear();
  redraw();
}

void RankView::setTruncation(const std::vector<qk::TruncationView>& t, qint64 step, int seed) {
  trunc_ = t;
  trunc_step_ = step;
  trunc_seed_ = seed;
  if (step > current_step_) current_step_ = step;
  redraw();
}

QString RankView::truncationStatus() const {
  if (trunc_.empty()) return tr("truncation curve not computed yet");
  QString s = tr("truncation curve at step %1, seed %2").arg(std::max<qint64>(trunc_step_, 0)).arg(trunc_seed_);
  if (truncationStale())
    s += tr(" — stale: training is at step %1; press Compute truncation curve (it is recomputed when the run ends)")
             .arg(current_step_);
  return s;
}

void RankView::showStatus() {
  trunc_status_->setText(truncationStatus());
  trunc_status_->setStyleSheet(truncationStale() ? "color: #d35400; font-weight: bold" : "");
}

void RankView::addSpectra(const std::vector<qk::SpectraRecord>& records) {
  spectra_.insert(spectra_.end(), records.begin(), records.end());
  if (!records.empty()) redraw();
}

void RankView::addDivergence(const std::vector<qk::DivergenceRecord>& records) {
  kl_.insert(kl_.end(), records.begin(), records.end());
  if (!records.empty()) redraw();
}

void RankView::setExperiment(const ExperimentInfo& info) {
  seed_ = info.seed;
  reset(info.emb_dim);
}

void RankView::takeSnapshot(const TrainingSnapshot& s) {
  addSpectra(s.spectra);
  addDivergence(s.divergence);
  if (s.steps_done != current_step_) {
    current_step_ = s.steps_done;
    showStatus();
  }
}

void RankView::takeAnalysis(const AnalysisResult& r) {
  if (!r.truncation.empty()) setTruncation(r.truncation, r.step, r.seed);
}

void RankView::refreshView(bool requested) {
  if (requested) Q_EMIT truncationRequested(ranks());
}

void RankView::redraw() {
  showStatus();
  draw_truncation(trunc_plot_, trunc_, emb_dim_);
  trunc_plot_->replot(QCustomPlot::rpQueuedReplot);
  draw_effective_rank(erank_plot_, spectra_);
  erank_plot_->replot(QCustomPlot::rpQueuedReplot);
  draw_kl(kl_plot_, kl_);
  kl_plot_->replot(QCustomPlot::rpQueuedReplot);
}

Figure truncation_figure(const std::vector<qk::TruncationView>& trunc, int emb_dim, int seed, const QString& caption,
                         qint64 step) {
  Figure f;
  f.name = "truncation";
  f.title = QObject::tr("Validation loss when every head's QK form is truncated to rank r");
  if (step >= 0) f.title += QObject::tr(" (models at step %1, seed %2)").arg(step).arg(seed);
  f.caption = caption;
  f.draw = [trunc, emb_dim](QCustomPlot* p) { draw_truncation(p, trunc, emb_dim); };
  f.csv = [trunc, seed] { return truncation_csv(trunc, seed); };
  return f;
}

Figure effective_rank_figure(const std::vector<qk::SpectraRecord>& history) {
  Figure f;
  f.name = "effective_rank";
  f.title = QObject::tr("Effective rank of the QK forms over training (mean over each layer's heads)");
  f.caption = QObject::tr("exp of the entropy of σ/Σσ, from the spectra recorded at every evaluation");
  f.draw = [history](QCustomPlot* p) { draw_effective_rank(p, history); };
  f.csv = [history] { return effective_rank_csv(history); };
  return f;
}

Figure kl_figure(const std::vector<qk::DivergenceRecord>& kl) {
  Figure f;
  f.name = "divergence";
  f.title = QObject::tr("KL divergence of each variant's next-token distribution to the first variant's");
  f.caption = QObject::tr("mean KL(first || variant) per token on fixed validation batches, at every evaluation");
  f.draw = [kl](QCustomPlot* p) { draw_kl(p, kl); };
  f.csv = [kl] { return QString::fromStdString(qk::divergence_csv(kl)); };
  return f;
}

QList<Figure> RankView::figures() const {
  QList<Figure> out;
  if (!trunc_.empty())
    out << truncation_figure(trunc_, emb_dim_, trunc_seed_,
                             truncationStale() ? truncationStatus() : tr("Loss versus rank of every head's form"),
                             trunc_step_);
  if (!spectra_.empty()) out << effective_rank_figure(spectra_);
  if (!kl_.empty()) out << kl_figure(kl_);
  return out;
}

}  // namespace qkui
