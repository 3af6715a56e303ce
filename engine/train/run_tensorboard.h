// QKLab engine — a run folder's TensorBoard log (tb/), the one home of its tags:
//   <who>/train_loss, <who>/val_loss, <who>/train_acc, <who>/val_acc     at each evaluation
//   <who>/lr, <who>/grad_norm, <who>/tokens_per_s, <who>/step_loss        at each optimiser step
//   <who>/kl_from_<first variant>                                        at each KL evaluation
//   <who>/effective_rank/L<l>  (mean over the layer's heads)             when spectra are tracked
// where <who> is the variant, or "<variant>-seed<N>" when the run repeats over several seeds (the
// CSV export's series names). Written live by RunWriter, or afterwards from a finished run's CSVs by
// `export --to tensorboard` (no per-step records there: metrics.csv has the evaluations only).
#pragma once
#include <map>
#include <memory>
#include <string>

#include "config.h"
#include "observer.h"
#include "tensorboard.h"

namespace qk {

struct RunContents;

class RunTensorBoard : public TrainerObserver {
 public:
  // The run folder `dir`'s log. keep_bytes >= 0: continue its event file cut back to that size;
  // < 0: a new event file (an old tb/ is removed).
  static std::unique_ptr<RunTensorBoard> open_run(const std::string& dir, const ExperimentConfig& cfg,
                                                  int64_t keep_bytes);
  RunTensorBoard(std::unique_ptr<EventFileWriter> w, const ExperimentConfig& cfg);
  void on_step(const StepRecord& s) override;
  void on_eval(const EvalRecord& r) override;
  void on_divergence(const DivergenceRecord& d) override;
  void on_spectra(const SpectraRecord& s) override;
  void flush() { w_->flush(); }
  int64_t bytes() const { return w_->bytes(); }
  const std::string& path() const { return w_->path(); }
  // The tag prefix of a variant and seed in this run.
  std::string who(const std::string& variant, int seed) const;
  // Written with this wall time instead of the clock (the export of a finished run).
  void set_clock(double wall_time) { fixed_clock_ = wall_time; }

 private:
  double now() const;
  std::unique_ptr<EventFileWriter> w_;
  bool many_seeds_ = false;
  std::map<int, int64_t> tokens_;  // lane -> tokens seen at its previous step
  double fixed_clock_ = -1;
};

// `export --to tensorboard RUN_DIR OUT_DIR`: the run's evaluations, KL and effective ranks as an
// event file in OUT_DIR (wall times: the run's start, config.json's time, plus its training clock).
// Returns the event file's path.
std::string export_run_tensorboard(const std::string& run_dir, const std::string& out_dir);

}  // namespace qk
