// QKLab ui — training worker (see training_worker.h).
#include "training_worker.h"
#include "names.h"

#include <QFileInfo>

#include <QDateTime>
#include <QDir>
#include <QStandardPaths>
#include <QTimer>
#include <nlohmann/json.hpp>

#include "error.h"
#include "fsutil.h"
#include "inspect.h"
#include "run_dir.h"
#include "trainer.h"

namespace qkui {

// Collects what the trainer reports into the next snapshot and the worker's history (the run
// folder's writer hears the same records through an ObserverFanout).
struct TrainingWorker::Collector : qk::TrainerObserver {
  TrainingSnapshot pending;
  qk::RunContents* history = nullptr;
  void on_step(const qk::StepRecord& s) override { pending.steps.push_back(s); }
  void on_halt(const qk::HaltRecord& h) override { pending.halts.push_back(h); }
  void on_eval(const qk::EvalRecord& r) override {
    pending.evals.push_back(r);
    if (history) history->metrics.push_back(r);
  }
  void on_sample(const qk::SampleRecord& s) override {
    pending.samples.push_back(s);
    if (history) history->samples += qk::sample_line(s);
  }
  void on_divergence(const qk::DivergenceRecord& d) override {
    pending.divergence.push_back(d);
    if (history) history->divergence.push_back(d);
  }
  void on_spectra(const qk::SpectraRecord& s) override {
    pending.spectra.push_back(s);
    if (history) history->spectra.push_back(s);
  }
};

// Every head's spectrum at each evaluation is recorded for live views when the merged forms hold at
// most this many entries (L·H·d²): up to 4M entries the SVDs cost ~2% of training time (README,
// benchmarks); larger models record spectra only when train.spectra_every asks.
constexpr int64_t kLiveSpectraMaxEntries = int64_t(1) << 22;

TrainingWorker::TrainingWorker()
    : inspector_(std::make_unique<qk::Inspector>()), collector_(std::make_unique<Collector>()) {
  qRegisterMetaType<qkui::TrainingSnapshot>();
  qRegisterMetaType<qkui::ExperimentInfo>();
  qRegisterMetaType<qkui::AnalysisResult>();
  qRegisterMetaType<qk::ReportData>();
  qRegisterMetaType<qk::ExperimentConfig>();
}

TrainingWorker::~TrainingWorker() = default;

static ExperimentInfo info_of(const qk::ExperimentConfig& c) {
  ExperimentInfo info;
  info.name = QString::fromStdString(c.name);
  info.config = c;
  info.layers = c.model.n_layers;
  info.heads = c.model.n_heads;
  info.emb_dim = c.model.emb_dim;
  info.head_dim = c.model.effective_qk_head_dim();
  info.text = qk::is_language_kind(c.data.kind);
  info.seed = c.train.seed;
  return info;
}

void TrainingWorker::saveCheckpoints() {
  if (!exp_ || !writer_ || exp_->steps_done() == 0 || saved_at_ == exp_->steps_done()) return;
  try {
    exp_->save_checkpoints(writer_->dir());
    qk::save_run_state(*writer_, *exp_);  // File → open run folder → Resume training continues from here
    saved_at_ = autosaved_at_ = exp_->steps_done();
    autosave_clock_.restart();
  } catch (const std::exception& e) {
    Q_EMIT failed(QString::fromStdString(e.what()));
  }
}

void TrainingWorker::configure(const qk::ExperimentConfig& config) {
  running_ = false;
  saveCheckpoints();  // the previous run keeps its results
  config_ = config;
  configured_ = true;
  inspector_->attach(nullptr);
  exp_.reset();
  writer_.reset();
  saved_at_ = -1;
  collector_ = std::make_unique<Collector>();
  history_ = qk::RunContents();
  collector_->history = &history_;
  last_tokens_.clear();
  try {
    auto cfg = config;
    // Live views: spectra of every head at each evaluation (small models only).
    if (cfg.train.spectra_every == 0 &&
        int64_t(cfg.model.n_layers) * cfg.model.n_heads * cfg.model.emb_dim * cfg.model.emb_dim <= kLiveSpectraMaxEntries)
      cfg.train.spectra_every = cfg.train.eval_every;
    exp_ = std::make_unique<qk::Experiment>(cfg);
    inspector_->attach(exp_.get());
    ExperimentInfo info = info_of(exp_->config());
    const QString root = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + "/runs";
    const QString dir = root + "/" + QString::fromStdString(cfg.name) + "-" +
                        QDateTime::currentDateTime().toString("yyyyMMdd-hhmmss-zzz");
    QDir().mkpath(root);
    qk::check_disk_space(root.toStdString(), *exp_);
    writer_ = std::make_unique<qk::RunWriter>(dir.toStdString(), false);
    writer_->write_config(exp_->config());
    autosaved_at_ = 0;
    autosave_clock_.start();
    info.save_dir = dir;
    source_ = tr("live experiment, saved to %1").arg(dir);
    for (auto& n : exp_->lane_names()) info.variants << QString::fromStdString(n);
    for (auto c : exp_->parameter_counts()) info.parameters.push_back(c);
    info.total_steps = exp_->total_steps();
    Q_EMIT configured(info);
    // Losses before any step, so the curves start at step 0.
    for (auto r : exp_->evaluate_now(exp_->config().train.eval_batches)) {
      r.step = -1;
      collector_->pending.evals.push_back(r);
      history_.metrics.push_back(r);
    }
    for (auto d : exp_->divergence_now()) {
      collector_->pending.divergence.push_back(d);
      history_.divergence.push_back(d);
    }
  } catch (const std::exception& e) {
    exp_.reset();
    Q_EMIT failed(QString::fromStdString(e.what()));
    return;
  }
  flush(true);
}

void TrainingWorker::autosave() {
  if (!exp_ || !writer_ || exp_->finished()) return;
  const auto& tc = exp_->config().train;
  const qint64 done = exp_->steps_done();
  const bool by_steps = tc.autosave_steps > 0 && done - autosaved_at_ >= tc.autosave_steps;
  const bool by_time = tc.autosave_minutes > 0 && autosave_clock_.isValid() &&
                       autosave_clock_.elapsed() >= qint64(tc.autosave_minutes * 60000);
  if (!by_steps && !by_time) return;
  try {
    qk::save_run_state(*writer_, *exp_);
    autosaved_at_ = done;
    autosave_clock_.restart();
  } catch (const std::exception& e) {
    Q_EMIT failed(QString::fromStdString(e.what()));
  }
}

void TrainingWorker::closeCurrent() {
  running_ = false;
  saveCheckpoints();  // the previous run keeps its results
  inspector_->attach(nullptr);
  exp_.reset();
  writer_.reset();
  collector_ = std::make_unique<Collector>();
  history_ = qk::RunContents();
  collector_->history = &history_;
  last_tokens_.clear();
}

void TrainingWorker::resumeRun(const QString& run_dir) {
  closeCurrent();
  try {
    const std::string dir = run_dir.toStdString();
    auto held = std::make_unique<qk::FolderLock>(dir);  // a folder another process trains into is refused first
    const auto cfg = qk::load_config_file(dir + "/" + qk::run_files::kConfig);
    exp_ = std::make_unique<qk::Experiment>(cfg);
    // logs cut back to the state
    writer_ = std::make_unique<qk::RunWriter>(dir, qk::load_run_state(dir, *exp_), std::move(held));
    saved_at_ = autosaved_at_ = exp_->steps_done();
    autosave_clock_.start();
    config_ = exp_->config();
    configured_ = true;
    inspector_->attach(exp_.get());
    history_ = qk::read_run(dir);
    ExperimentInfo info = info_of(exp_->config());
    info.save_dir = run_dir;
    info.resumed_at = exp_->steps_done();
    info.resume_note = QString::fromStdString(writer_->resume_note());
    source_ = tr("run folder %1, resumed").arg(run_dir);
    for (auto& n : exp_->lane_names()) info.variants << QString::fromStdString(n);
    for (auto c : exp_->parameter_counts()) info.parameters.push_back(c);
    info.total_steps = exp_->total_steps();
    Q_EMIT configured(info);
    collector_->pending.evals = history_.metrics;
    collector_->pending.divergence = history_.divergence;
    collector_->pending.spectra = history_.spectra;
  } catch (const std::exception& e) {
    exp_.reset();
    writer_.reset();
    Q_EMIT failed(QString::fromStdString(e.what()));
    return;
  }
  flush(true);
}

void TrainingWorker::openRun(const QString& run_dir, int seed) {
  closeCurrent();
  try {
    const bool file = QFileInfo(run_dir).isFile();  // one checkpoint (e.g. an imported GPT-2)
    auto rc = file ? qk::read_checkpoint_as_run(run_dir.toStdString()) : qk::read_run(run_dir.toStdString());
    ExperimentInfo info = info_of(rc.config);
    info.run_dir = run_dir;
    info.resumable = qk::has_run_state(run_dir.toStdString()) &&
                     qk::run_state_step(run_dir.toStdString()) < (rc.config.train.epochs > 0 ? INT64_MAX : rc.config.train.steps);
    for (auto v : rc.config.variants) info.variants << QString::fromStdString(qk::variant_name(v));
    for (int seed : rc.seeds()) info.seeds << seed;
    if (seed < 0 && !info.seeds.isEmpty()) seed = info.seeds.front();
    info.seed = seed < 0 ? rc.config.train.seed : seed;
    if (!rc.checkpoints.empty())
      inspector_->attach_run(file ? QFileInfo(run_dir).absolutePath().toStdString() : run_dir.toStdString(), rc, info.seed);
    history_ = rc;
    source_ = tr("run folder %1").arg(run_dir);
    Q_EMIT configured(info);
    collector_->pending.evals = rc.metrics;
    collector_->pending.divergence = rc.divergence;
    collector_->pending.spectra = rc.spectra;
    if (!rc.metrics.empty()) collector_->pending.steps_done = rc.metrics.back().step + 1;
  } catch (const std::exception& e) {
    Q_EMIT failed(QString::fromStdString(e.what()));
    return;
  }
  auto p = collector_->pending;
  p.finished = true;
  p.total_steps = p.steps_done;
  Q_EMIT snapshot(p);
  collector_->pending = TrainingSnapshot();
}

void TrainingWorker::start() {
  if (!exp_ || exp_->finished()) return;
  running_ = true;
  stop_ = false;
  since_flush_.start();
  run_clock_.start();
  steps_at_start_ = exp_->steps_done();
  QTimer::singleShot(0, this, &TrainingWorker::slice);
}

void TrainingWorker::pause() {
  running_ = false;
  if (exp_) flush(true);  // a replayed run folder has no live steps to report (its snapshot stands)
  saveCheckpoints();
}

void TrainingWorker::stepOnce() {
  running_ = false;
  if (!exp_) return;
  since_flush_.start();
  advance(1, 1000000);
  flush(true);
}

void TrainingWorker::reset() {
  if (configured_) configure(config_);
}

void TrainingWorker::shutdown() {
  stop_ = true;
  running_ = false;
  saveCheckpoints();  // closing mid-run loses no finished results
  inspector_->attach(nullptr);
  exp_.reset();
  writer_.reset();
}

void TrainingWorker::slice() {
  if (!running_ || !exp_) return;
  advance(1000000, 30);  // ~30 ms of work, then let queued commands in
  flush(false);
  autosave();
  if (exp_ && exp_->finished()) {
    running_ = false;
    flush(true);
    saveCheckpoints();
    return;
  }
  if (running_ && !stop_) QTimer::singleShot(0, this, &TrainingWorker::slice);
}

void TrainingWorker::advance(int max_steps, int max_ms) {
  QElapsedTimer t;
  t.start();
  qk::ObserverFanout fan({collector_.get(), writer_.get()});  // the snapshot and the run folder
  qk::TrainerObserver* obs = writer_ ? static_cast<qk::TrainerObserver*>(&fan) : collector_.get();
  try {
    for (int i = 0; i < max_steps && !exp_->finished() && !stop_; ++i) {
      const size_t before = collector_->pending.steps.size();
      exp_->step(obs);
      for (size_t k = before; k < collector_->pending.steps.size(); ++k) {
        const auto& s = collector_->pending.steps[k];
        step_seconds_ += s.step_seconds;
        tokens_since_flush_ += s.tokens_seen - last_tokens_[s.lane];
        last_tokens_[s.lane] = s.tokens_seen;
      }
      ++steps_since_flush_;
      if (t.elapsed() >= max_ms) break;
    }
  } catch (const std::exception& e) {
    running_ = false;
    Q_EMIT failed(QString::fromStdString(e.what()));
  }
}

void TrainingWorker::flush(bool force) {
  if (!force && since_flush_.isValid() && since_flush_.elapsed() < 40) return;
  auto& p = collector_->pending;
  const double secs = since_flush_.isValid() ? since_flush_.elapsed() / 1000.0 : 0;
  p.tokens_per_s = secs > 0 ? tokens_since_flush_ / secs : 0;
  p.seconds_per_step = steps_since_flush_ ? step_seconds_ / steps_since_flush_ : 0;
  p.steps_done = exp_ ? exp_->steps_done() : 0;
  p.total_steps = exp_ ? exp_->total_steps() : 0;
  if (exp_ && run_clock_.isValid() && p.steps_done > steps_at_start_) {
    const double per = run_clock_.elapsed() / 1000.0 / double(p.steps_done - steps_at_start_);
    p.eta_s = per * double(p.total_steps - p.steps_done);
  }
  p.running = running_;
  p.finished = exp_ && exp_->finished();
  Q_EMIT snapshot(p);
  p = TrainingSnapshot();
  since_flush_.restart();
  tokens_since_flush_ = 0;
  steps_since_flush_ = 0;
  step_seconds_ = 0;
}

template <class F> void TrainingWorker::analyse(F&& f) {
  if (inspector_->empty()) return;
  AnalysisResult r;
  r.step = inspector_->step();
  r.seed = inspector_->seed();
  try {
    f(r);
  } catch (const std::exception& e) {
    Q_EMIT failed(QString::fromStdString(e.what()));
    return;
  }
  Q_EMIT analysis(r);
}

void TrainingWorker::requestAttention(const QString& prompt) {
  analyse([&](AnalysisResult& r) {
    r.attention = inspector_->attention(prompt.toStdString());
    r.attention_prompt = prompt;
  });
}

void TrainingWorker::requestSpectra(int layer, int head) {
  analyse([&](AnalysisResult& r) { r.spectra = inspector_->spectra(layer, head); });
}

void TrainingWorker::requestTruncation(const QList<int>& ranks) {
  analyse([&](AnalysisResult& r) { r.truncation = inspector_->truncation(std::vector<int>(ranks.begin(), ranks.end())); });
}

void TrainingWorker::requestMechanisms(const QString& kind, const QStringList& args) {
  analyse([&](AnalysisResult& r) {
    cancel_ = false;
    auto progress = [this, &kind](int done, int total) {
      if (stop_) throw qk::Error(kind.toStdString() + " cancelled: the window is closing");
      if (cancel_) throw qk::Error(kind.toStdString() + " cancelled (nothing was changed; Compute starts it again)");
      Q_EMIT analysisProgress(done, total, kind);
    };
    Q_EMIT analysisProgress(0, 1, kind);
    if (kind == "geometry") {
      r.geometry = inspector_->geometry();
      r.esd = inspector_->esd(history_.spectra);
    } else if (kind == "circuits") {
      r.circuits = inspector_->circuits(progress);
    } else if (kind == "ablation") {
      r.ablation = inspector_->ablation(progress);
    } else if (kind == "lens") {
      r.logit_lens = inspector_->logit_lens(args.value(0).toStdString(), progress);
    } else if (kind == "attribution") {
      r.attribution = inspector_->attribution(args.value(0).toStdString(), args.value(1).toStdString(),
                                              args.value(2).toStdString(), progress);
    } else if (kind == "detectors") {
      r.detectors = inspector_->detectors(progress);
    }
    Q_EMIT analysisProgress(1, 1, kind);
  });
}

void TrainingWorker::requestSamples(const QString& prompt, double temperature, int top_k, int max_new) {
  analyse([&](AnalysisResult& r) {
    // Seeded by the experiment's seed: the same prompt and settings give the same sample.
    r.samples = inspector_->samples(prompt.toStdString(), temperature, top_k, max_new,
                                    static_cast<uint64_t>(inspector_->config().train.seed));
  });
}

void TrainingWorker::requestReport(const QString& prompt) {
  try {
    if (inspector_->empty()) throw qk::Error("nothing to report yet: set up an experiment or open a run folder with checkpoints");
    flush(true);
    auto data = qk::collect_report(*inspector_, history_, prompt.toStdString(),
                                   [this](int done, int total, const std::string& what) {
                                     // Closing the window stops a long report between two analyses.
                                     if (stop_) throw qk::Error("report cancelled: the window is closing");
                                     Q_EMIT reportProgress(done, total, QString::fromStdString(what));
                                   });
    data.source = source_.toStdString();
    Q_EMIT reportReady(data);
  } catch (const std::exception& e) {
    Q_EMIT failed(QString::fromStdString(e.what()));
  }
}

}  // namespace qkui
