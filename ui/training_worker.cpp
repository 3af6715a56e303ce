// QKLab ui — training worker (see training_worker.h).
#include "training_worker.h"

#include <QTimer>
#include <nlohmann/json.hpp>

#include "error.h"
#include "trainer.h"

namespace qkui {

struct TrainingWorker::Collector : qk::TrainerObserver {
  TrainingSnapshot pending;
  void on_step(const qk::StepRecord& s) override { pending.steps.push_back(s); }
  void on_eval(const qk::EvalRecord& r) override { pending.evals.push_back(r); }
  void on_sample(const qk::SampleRecord& s) override { pending.samples.push_back(s); }
};

TrainingWorker::TrainingWorker() : collector_(std::make_unique<Collector>()) {
  qRegisterMetaType<qkui::TrainingSnapshot>();
  qRegisterMetaType<qkui::ExperimentInfo>();
}

TrainingWorker::~TrainingWorker() = default;

void TrainingWorker::configure(const QString& config_json) {
  running_ = false;
  config_json_ = config_json;
  exp_.reset();
  collector_ = std::make_unique<Collector>();
  last_tokens_.clear();
  try {
    auto j = nlohmann::json::parse(config_json.toStdString());
    auto cfg = qk::config_from_json(j, "experiment");
    exp_ = std::make_unique<qk::Experiment>(cfg);
  } catch (const std::exception& e) {
    emit failed(QString::fromStdString(e.what()));
    return;
  }
  ExperimentInfo info;
  for (auto& n : exp_->lane_names()) info.variants << QString::fromStdString(n);
  for (auto c : exp_->parameter_counts()) info.parameters.push_back(c);
  info.total_steps = exp_->total_steps();
  info.name = QString::fromStdString(exp_->config().name);
  emit configured(info);
  // Initial losses (no training step yet) so the curves start at step -1.
  try {
    for (auto r : exp_->evaluate_now(exp_->config().train.eval_batches)) {
      r.step = -1;
      collector_->pending.evals.push_back(r);
    }
  } catch (const std::exception& e) {
    emit failed(QString::fromStdString(e.what()));
  }
  flush(true);
}

void TrainingWorker::start() {
  if (!exp_ || exp_->finished()) return;
  running_ = true;
  stop_ = false;
  since_flush_.start();
  QTimer::singleShot(0, this, &TrainingWorker::slice);
}

void TrainingWorker::pause() {
  running_ = false;
  flush(true);
}

void TrainingWorker::stepOnce() {
  running_ = false;
  if (!exp_) return;
  since_flush_.start();
  advance(1, 1000000);
  flush(true);
}

void TrainingWorker::reset() {
  if (!config_json_.isEmpty()) configure(config_json_);
}

void TrainingWorker::shutdown() {
  stop_ = true;
  running_ = false;
  exp_.reset();
}

void TrainingWorker::slice() {
  if (!running_ || !exp_) return;
  advance(1000000, 30);  // ~30 ms of work, then let queued commands in
  flush(false);
  if (exp_ && exp_->finished()) {
    running_ = false;
    flush(true);
    return;
  }
  if (running_ && !stop_) QTimer::singleShot(0, this, &TrainingWorker::slice);
}

void TrainingWorker::advance(int max_steps, int max_ms) {
  QElapsedTimer t;
  t.start();
  try {
    for (int i = 0; i < max_steps && !exp_->finished() && !stop_; ++i) {
      const size_t before = collector_->pending.steps.size();
      exp_->step(collector_.get());
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
    emit failed(QString::fromStdString(e.what()));
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
  p.running = running_;
  p.finished = exp_ && exp_->finished();
  emit snapshot(p);
  p = TrainingSnapshot();
  since_flush_.restart();
  tokens_since_flush_ = 0;
  steps_since_flush_ = 0;
  step_seconds_ = 0;
}

}  // namespace qkui
