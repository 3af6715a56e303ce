// QKLab ui — the training worker: a QObject living on its own QThread that owns the engine's
// Experiment. Commands arrive as queued calls (start/pause/step/reset); training advances in
// short slices re-queued on the worker's own event loop, so commands are handled between slices;
// stop is an atomic flag checked every step. Progress leaves as TrainingSnapshot values, coalesced
// to at most one per 40 ms. The GUI never sees a torch::Tensor.
#pragma once
#include <QElapsedTimer>
#include <QObject>
#include <atomic>
#include <map>
#include <memory>

#include "config.h"
#include "snapshot.h"

namespace qk { class Experiment; }

namespace qkui {

class TrainingWorker : public QObject {
  Q_OBJECT
 public:
  TrainingWorker();
  ~TrainingWorker() override;
  std::atomic<bool>& stop_flag() { return stop_; }

 public slots:
  void configure(const QString& config_json);  // builds the experiment (errors -> failed())
  void start();    // run until finished or paused
  void pause();
  void stepOnce(); // one optimiser step of every variant
  void reset();    // rebuild from the last configuration, step 0
  void shutdown(); // stop and free the experiment (called before the thread quits)

 signals:
  void configured(const qkui::ExperimentInfo& info);
  void snapshot(const qkui::TrainingSnapshot& s);
  void failed(const QString& message);

 private slots:
  void slice();

 private:
  struct Collector;
  void advance(int max_steps, int max_ms);
  void flush(bool force);
  std::unique_ptr<qk::Experiment> exp_;
  std::unique_ptr<Collector> collector_;
  QString config_json_;
  bool running_ = false;
  std::atomic<bool> stop_{false};
  QElapsedTimer since_flush_;
  qint64 tokens_since_flush_ = 0;
  double step_seconds_ = 0;
  qint64 steps_since_flush_ = 0;
  std::map<int, qint64> last_tokens_;  // tokens seen per lane at the last step counted
};

}  // namespace qkui
