// QKLab engine — what the trainer reports, as plain values (no tensors): safe to copy across
// threads and to hand to the GUI.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace qk {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

struct StepRecord {
  int lane = 0;             // index into the experiment's variants
  std::string variant;
  int64_t step = 0;         // 0-based index of the optimiser step just taken
  int64_t tokens_seen = 0;  // input tokens consumed by this variant so far
  double loss = kNaN;       // training loss of this step's batch
  double lr = kNaN;
  double grad_norm = kNaN;  // global L2 norm before clipping
  double step_seconds = 0;  // wall time of this step (forward, backward, update)
  int seed = 0;             // the lane's seed
};

struct EvalRecord {
  int lane = 0;
  std::string variant;
  int seed = 0;
  int64_t step = 0;
  int64_t tokens_seen = 0;
  double wall_time_s = 0;  // this variant's cumulative training + evaluation time
  double train_loss = kNaN, val_loss = kNaN;
  double train_acc = kNaN, val_acc = kNaN;  // exact-match accuracy on masked tasks
};

struct SampleRecord {
  int lane = 0;
  std::string variant;
  int64_t step = 0;
  int epoch = 0;
  std::string text;
};

// KL(p_first ‖ p_variant) of next-token distributions on the validation batches.
struct DivergenceRecord {
  int64_t step = 0;
  int seed = 0;
  std::string from, to;  // the first variant and this one
  double kl = kNaN;
};

// Singular values of every head's bilinear form at one step.
struct SpectraRecord {
  int lane = 0;
  std::string variant;
  int seed = 0;
  int64_t step = 0;
  struct Head {
    int layer = 0, head = 0;
    std::vector<double> sigma;
    double effective_rank = 0;
  };
  std::vector<Head> heads;
};

// A variant stopped by the divergence guard: its loss or gradient norm was not finite at `step`;
// the update was not applied (its weights are those after step - 1) and the others go on.
struct HaltRecord {
  int lane = 0;
  std::string variant;
  int seed = 0;
  int64_t step = 0;
  std::string quantity;  // "loss" or "gradient norm"
  double value = kNaN;
  std::string message;   // one line for the log
};

class TrainerObserver {
 public:
  virtual ~TrainerObserver() = default;
  virtual void on_step(const StepRecord&) {}
  virtual void on_eval(const EvalRecord&) {}
  virtual void on_sample(const SampleRecord&) {}
  virtual void on_divergence(const DivergenceRecord&) {}
  virtual void on_spectra(const SpectraRecord&) {}
  virtual void on_halt(const HaltRecord&) {}
};

// Hands every record to several observers, in order (e.g. the run folder and a progress line).
class ObserverFanout : public TrainerObserver {
 public:
  explicit ObserverFanout(std::vector<TrainerObserver*> observers) : obs_(std::move(observers)) {}
  void on_step(const StepRecord& s) override { for (auto* o : obs_) o->on_step(s); }
  void on_eval(const EvalRecord& r) override { for (auto* o : obs_) o->on_eval(r); }
  void on_sample(const SampleRecord& s) override { for (auto* o : obs_) o->on_sample(s); }
  void on_divergence(const DivergenceRecord& d) override { for (auto* o : obs_) o->on_divergence(d); }
  void on_spectra(const SpectraRecord& s) override { for (auto* o : obs_) o->on_spectra(s); }
  void on_halt(const HaltRecord& h) override { for (auto* o : obs_) o->on_halt(h); }

 private:
  std::vector<TrainerObserver*> obs_;
};

}  // namespace qk
