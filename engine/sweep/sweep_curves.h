// QKLab engine — a sweep's learning curves: validation loss (and accuracy) against tokens seen and
// against training FLOPs, per variant and grid point, as the mean over seeds with a min–max band.
// Read from the finished runs' metrics.csv (every evaluation, not only the last); training FLOPs
// are tokens × the variant's training FLOPs per token (estimate(), counted per variant), so a
// FLOPs-matched comparison lines up on this axis and a params-matched one shows its extra compute.
// Written beside summary.csv as DIR/curves.csv (sweep.h). No torch.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "sweep.h"

namespace qk {

// One metric at each evaluation of a group of seeds: mean, min, max over the seeds that reached it.
struct CurveBand {
  std::vector<double> mean, min, max;  // NaN where no seed has a finite value
  std::vector<int> seeds;              // seeds behind each point
};

struct SweepCurve {
  std::string variant;
  std::string label;  // "merged", or "standard lr=0.0025" (the variant and its swept values)
  std::map<std::string, std::string> values;  // swept key -> value ("" = not swept for it)
  std::string first_run;                      // folder name (under runs/) of the group's first seed
  double flops_per_token = 0;                 // training FLOPs per token (estimate())
  std::vector<int64_t> step;                  // evaluation steps, ascending
  std::vector<double> tokens, flops;          // tokens seen at each step; tokens × flops_per_token
  CurveBand val_loss, val_acc;
};

// Every group of finished runs (variant + grid point over seeds), in expand order. An evaluation
// step is kept when at least one seed logged it; `seeds` says how many did.
std::vector<SweepCurve> sweep_curves(const std::string& dir, const SweepSpec& spec, const std::vector<SweepRun>& runs);

// curves.csv: variant,series,step,tokens,training_flops,seeds,val_loss_mean,val_loss_min,
// val_loss_max,val_loss_ppl_mean,val_acc_mean,val_acc_min,val_acc_max — one row per series and step.
std::string sweep_curves_csv(const std::vector<SweepCurve>& curves);
void write_sweep_curves(const std::string& dir, const std::vector<SweepCurve>& curves);  // atomically

}  // namespace qk
