// QKLab engine — a sweep folder's TensorBoard HParams data, so that `tensorboard --logdir SWEEP_DIR`
// shows the HParams table:
//   DIR/events.out.tfevents.0.<host>.qklab-hparams            the experiment: every hparam (variant,
//                                                             seed, each swept key) with its values,
//                                                             and the metrics below
//   DIR/runs/NAME/tb/events.out.tfevents.0.<host>.qklab-hparams   one session per finished run: its
//                                                             hparams, the metrics as scalars, its end
// Metrics (tags): hparams/final_val_loss, hparams/best_val_loss, hparams/final_val_perplexity,
// hparams/final_val_acc, hparams/best_val_acc (tasks with accuracy), hparams/wall_s. Rewritten whole
// (atomically) each time the sweep's tables are, beside each run's own live log in tb/.
#pragma once
#include <string>
#include <vector>

#include "sweep.h"

namespace qk {

void write_sweep_hparams(const std::string& dir, const SweepSpec& spec, const std::vector<SweepRun>& runs,
                         const std::vector<SweepRow>& rows);

}  // namespace qk
