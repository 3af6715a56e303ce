// QKLab engine — synthetic tasks, generated from the seed with no files. Each sequence comes with
// a loss mask (targets = -100 where no loss is taken) and is scored by exact match (every masked
// position of a sequence predicted right). The attention pattern a solution needs is given for
// each task; bilinear matching is the one where the rank of W_Q·W_Kᵀ should matter.
//
//   copy        a1..an SEP a1..an        position n+i attends to i+1 (an offset lookup)
//   reverse     a1..an SEP an..a1        position n+i attends to n-i (a mirrored lookup)
//   sort        a1..an SEP sort(a)       attend to the smallest key not yet emitted (content-based)
//   recall      k1 v1..kn vn SEP q1 a1 .. qm am   q attends to the matching key (content match),
//                                                  an earlier head copies v onto its key
//   induction   r1..rn r1..rn            position n+i attends one past the earlier occurrence of r_i
//   modadd      a + b = c (mod p)        '=' attends to both operands, the MLP adds
//   bilinear    k1 v1..kn vn SEP a → v_j where π(a) = k_j for a fixed random permutation π of a
//               key vocabulary much larger than head_dim: the query must attend to the key
//               π(a) — a permutation-matrix bilinear form, full rank in a single merged head,
//               rank ≤ head_dim in a standard head.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "data.h"
#include "names.h"

namespace qk {

class SyntheticTask {
 public:
  explicit SyntheticTask(const TaskShape& shape) : shape_(shape) {}
  virtual ~SyntheticTask() = default;
  virtual std::string name() const = 0;
  int64_t vocab_size() const { return shape_.vocab_size; }
  int seq_len() const { return shape_.seq_len; }  // model input length T
  virtual Batch generate(int batch_size, uint64_t seed) const = 0;  // deterministic in the seed
  virtual std::string describe() const = 0;              // the attention pattern a solution needs

 private:
  TaskShape shape_;  // from task_shape() (names.h)
};

// Builds the task named by d.kind with d's parameters; throws qk::Error naming the key.
std::unique_ptr<SyntheticTask> make_task(const DataConfig& d);
// Training stream (batches from seed, counter) + fixed validation / training-probe sets.
std::unique_ptr<DataSource> make_task_source(const DataConfig& d, int batch_size, uint64_t seed);

// The fixed validation batches analyses use (KL, truncation, attention samples): eval_batches
// batches of the validation split, drawn with a generator of their own so that no lane's random
// stream is touched. `corpus` is required for text data, ignored for tasks.
std::vector<Batch> probe_batches(const ExperimentConfig& c, const TextCorpus* corpus);
// The text corpus of a resolved run config, with the token cache in the run folder.
TextCorpus load_run_corpus(const ExperimentConfig& c, const std::string& run_dir);

}  // namespace qk
