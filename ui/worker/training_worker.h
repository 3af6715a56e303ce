// QKLab ui — the training worker: a QObject living on its own QThread that owns the engine's
// Experiment (or a run folder's checkpoints) and its Inspector. Commands arrive as queued calls;
// training advances in ~30 ms slices re-queued on the worker's own event loop, so commands and
// analysis requests are handled between slices; stop is an atomic flag checked every step.
// Progress leaves as TrainingSnapshot values, coalesced to at most one per 40 ms; analyses
// (attention, spectra, truncation, samples) run here too and leave as AnalysisResult values. The
// GUI never sees a torch::Tensor.
#pragma once
#include <QElapsedTimer>
#include <QObject>
#include <atomic>
#include <map>
#include <memory>

#include "run_dir.h"
#include "snapshot.h"

namespace qk {
class Experiment;
class Inspector;
class RunWriter;
}  // namespace qk

namespace qkui {

class TrainingWorker : public QObject {
  Q_OBJECT
 public:
  TrainingWorker();
  ~TrainingWorker() override;
  std::atomic<bool>& stop_flag() { return stop_; }
  // Cancels the analysis in progress (ablation, circuits, …) at its next progress tick; safe from
  // the GUI thread (an atomic flag, no tensor touched). The next request clears it.
  void cancelAnalysis() { cancel_ = true; }
  bool analysisCancelRequested() const { return cancel_; }

 public Q_SLOTS:
  void configure(const qk::ExperimentConfig& config);  // builds the experiment (errors -> failed())
  void openRun(const QString& run_dir, int seed = -1);  // replay a run folder (seed -1: the first)
  // Continue a run folder from its training state (exactly where it stopped); then start().
  void resumeRun(const QString& run_dir);
  void start();     // run until finished or paused
  void pause();
  void stepOnce();  // one optimiser step of every variant
  void reset();     // rebuild from the last configuration, step 0
  void shutdown();  // stop and free everything (before the thread quits)
  void requestAttention(const QString& prompt);
  void requestSpectra(int layer, int head);
  void requestTruncation(const QList<int>& ranks);
  // "geometry" (with spectral health), "circuits", "ablation", "lens" (args: prompt), "attribution"
  // (args: prompt, answer, wrong) or "detectors"; progress through analysisProgress.
  void requestMechanisms(const QString& kind, const QStringList& args = {});
  void requestSamples(const QString& prompt, double temperature, int top_k, int max_new);
  // Everything the report shows, at the current step (attention for `prompt`; "" = the default).
  void requestReport(const QString& prompt);

 Q_SIGNALS:
  void configured(const qkui::ExperimentInfo& info);
  void snapshot(const qkui::TrainingSnapshot& s);
  void analysis(const qkui::AnalysisResult& r);
  void failed(const QString& message);
  void reportProgress(int done, int total, const QString& what);
  void reportReady(const qk::ReportData& data);
  void analysisProgress(int done, int total, const QString& what);

 private Q_SLOTS:
  void slice();

 private:
  struct Collector;
  void advance(int max_steps, int max_ms);
  void flush(bool force);
  void saveCheckpoints();  // the live run's checkpoints and training state into its run folder
  void autosave();
  void closeCurrent();     // saves and frees the current experiment before another is opened         // the training state every train.autosave_steps steps / _minutes minutes
  template <class F> void analyse(F&& f);
  std::unique_ptr<qk::Experiment> exp_;
  std::unique_ptr<qk::Inspector> inspector_;
  std::unique_ptr<qk::RunWriter> writer_;  // every live run is saved like a qklab-cli run
  qint64 saved_at_ = -1, autosaved_at_ = 0;
  QElapsedTimer autosave_clock_;
  std::unique_ptr<Collector> collector_;
  qk::ExperimentConfig config_;
  bool configured_ = false;
  qk::RunContents history_;  // the curves so far (live run or opened run folder), for reports
  QString source_;           // run folder opened, or where the live run is saved
  bool running_ = false;
  std::atomic<bool> stop_{false};
  std::atomic<bool> cancel_{false};
  QElapsedTimer since_flush_, run_clock_;
  qint64 tokens_since_flush_ = 0, steps_since_flush_ = 0, steps_at_start_ = 0;
  double step_seconds_ = 0;
  std::map<int, qint64> last_tokens_;  // tokens seen per lane at the last step counted
};

}  // namespace qkui
