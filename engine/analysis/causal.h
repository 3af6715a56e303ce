// QKLab engine — causal evidence per head, for any variant: what happens to the validation loss
// when a head is removed, and which heads carry an answer from one prompt to another.
//   zero ablation     the head's output (B, H, T, hd), before out_proj, set to 0
//   mean ablation     set to its mean over the validation sequences, per position
//   rank ablation     only this head's form cut to its best rank-r approximation (r = 0: uniform
//                     causal attention for that head)
//   patching          pairs of a clean and a corrupted prompt that differ in one token (the answer
//                     position's input; patch_pairs says how it is chosen); every head's clean output
//                     is put into the corrupted run in turn, and the restored fraction of the logit
//                     difference logit[a_clean] − logit[a_corrupt] at the answer position is
//                     (LD_patched − LD_corrupt)/(LD_clean − LD_corrupt), means over pairs.
// The interventions use the attention's HeadHook on the model itself and are removed on return.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "data.h"
#include "model.h"
#include "views.h"

namespace qk {

struct PatchPair {
  std::vector<int64_t> clean, corrupt;  // equal length
  int64_t position = 0;                 // the answer position (its input token differs)
};
// From each validation sequence: the answer position p is the last scored one (targets ≠ −100),
// or the last position. Its input token x_p is swapped for another token of the same sequence:
// where x_p occurred before at o (a recall query's key, an induction repeat), the token nearest to
// o at an even distance from it (another key, another item of the first copy); otherwise the
// latest earlier token that differs. Sequences where no token differs are left out.
std::vector<PatchPair> patch_pairs(const std::vector<Batch>& probe, int max_pairs);
PatchPair patch_pair(const std::vector<int64_t>& ids, int64_t position);

// Every layer's head outputs (B, H, T, hd) for `inputs`, eval mode, no grad; with trace and
// logits, the same forward's residual streams and logits.
std::vector<torch::Tensor> record_heads(GPTModelImpl& m, const torch::Tensor& inputs, ForwardTrace* trace = nullptr,
                                        torch::Tensor* logits = nullptr);

struct AblationOptions {
  std::vector<int> ranks;   // rank ablation (default: 0, 1, 2, 4, … below the form's rank bound)
  AccuracyKind accuracy = AccuracyKind::None;  // report the task's accuracy too (names.h)
  int max_pairs = 16;
};
// on_progress(done, total) per evaluation.
AblationView model_ablation(GPTModelImpl& m, const std::string& variant, const std::vector<Batch>& probe,
                            const std::vector<PatchPair>& pairs, const AblationOptions& o,
                            const std::function<std::string(const std::vector<int64_t>&)>& decode = {},
                            const std::function<void(int, int)>& on_progress = {});

}  // namespace qk
