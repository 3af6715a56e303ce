// QKLab engine — the run folder written by `qklab-cli train` (and read back by the GUI):
//   config.json      the fully resolved experiment
//   metrics.csv      step,tokens_seen,wall_time_s,variant,train_loss,val_loss,train_acc,val_acc,seed
//   divergence.csv   step,seed,from,to,kl          (KL of each variant to the first, fair mode)
//   spectra_history.csv  step,variant,seed,layer,head,index,sigma   (train.spectra_every > 0)
//   samples.txt      greedy samples at epoch ends (text data)
//   <variant>.safetensors  one checkpoint per variant
// Every file is written atomically (temporary file + rename).
#pragma once
#include <string>
#include <vector>

#include "config.h"
#include "observer.h"

namespace qk {

class RunWriter : public TrainerObserver {
 public:
  // Creates `dir`; refuses a folder that already holds a run unless overwrite is set.
  RunWriter(const std::string& dir, bool overwrite);
  void write_config(const ExperimentConfig& cfg);
  void write_text(const std::string& name, const std::string& text);
  void on_eval(const EvalRecord& r) override;
  void on_sample(const SampleRecord& s) override;
  void on_divergence(const DivergenceRecord& d) override;
  void on_spectra(const SpectraRecord& s) override;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<EvalRecord> rows_;
  std::string samples_, divergence_;
  bool spectra_started_ = false;
};

std::string metrics_csv(const std::vector<EvalRecord>& rows);
std::string csv_number(double v);  // 9 significant digits; NaN -> empty cell
std::vector<EvalRecord> read_metrics_csv(const std::string& path);  // throws naming file and line

}  // namespace qk
