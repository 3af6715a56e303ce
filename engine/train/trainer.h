// QKLab engine — an experiment: several attention variants trained side by side as a fair pair.
//
// Each variant is a "lane" with its own model, optimiser, data iterator and random-generator
// state. Lanes advance in lockstep (step k of every lane, then step k+1), and the global torch
// generator is swapped per lane, so each lane draws exactly the random numbers it would draw if it
// ran alone — in "book" mode the book's notebook order, draw for draw. In "fair" mode every
// parameter the variants share starts from the first lane's values and every lane sees the same
// batches. No torch in this header: the GUI's worker uses it.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "observer.h"

namespace qk {

class GPTModelImpl;
class Tokenizer;
struct Batch;

class Experiment {
 public:
  // Resolves the config (vocab size from the data, max_length, ...), loads or generates data and
  // builds every lane. `progress` hears about long preparation (tokenising a large corpus).
  explicit Experiment(const ExperimentConfig& cfg,
                      const std::function<void(const std::string&, int64_t, int64_t)>& progress = {});
  ~Experiment();
  Experiment(const Experiment&) = delete;
  Experiment& operator=(const Experiment&) = delete;

  const ExperimentConfig& config() const;  // resolved
  int64_t total_steps() const;
  int64_t steps_done() const;
  int64_t batches_per_epoch() const;  // 0 for an endless task stream
  bool finished() const;  // all steps done, or every variant halted
  // One line per variant the divergence guard halted (HaltRecord::message); empty when none.
  std::vector<std::string> halted() const;
  std::vector<std::string> lane_names() const;  // variant of each lane
  std::vector<int> lane_seeds() const;
  // The lane's live model (for analysis on the trainer's thread only).
  std::shared_ptr<GPTModelImpl> lane_model(int lane) const;
  std::shared_ptr<Tokenizer> tokenizer() const;  // null for synthetic tasks
  // Fixed validation batches (drawn once, from no lane's generators) for analyses.
  std::vector<Batch> probe_batches() const;
  std::vector<int64_t> parameter_counts() const;
  // Where the training time went, summed over every lane and step so far (seconds; measured with
  // steady_clock around each phase of step(): on a GPU the phases are not synchronised).
  struct PhaseSeconds {
    double data = 0, forward = 0, backward = 0, grad_norm = 0, optimizer = 0, evaluation = 0;
  };
  PhaseSeconds phase_seconds() const;

  // Evaluates every lane (train/val loss over eval_batches) without training; no random draws
  // beyond what the data loaders do.
  std::vector<EvalRecord> evaluate_now(int max_batches);
  // KL divergence of every lane to the first variant with its seed, on fixed validation batches,
  // without training (fair mode; empty otherwise). With twin_start it is 0 before any step.
  std::vector<DivergenceRecord> divergence_now();
  // One optimiser step of every lane (plus evaluation when due, samples at epoch ends).
  void step(TrainerObserver* obs);
  // Steps until finished or *stop becomes true.
  void run(TrainerObserver* obs, const std::atomic<bool>* stop);
  // Every lane starts from `src` instead of its random initialisation (before the first step): the
  // same variant copied, another one converted (convert.h; standard → merged exactly). `source`
  // names the file in errors (a shape that does not fit names the tensor and both shapes).
  void set_initial_weights(GPTModelImpl& src, const std::string& source);
  // Exact resume. save_state writes the full training state into the folder `dir` (created, files
  // written in place; the run folder's save_run_state makes the whole folder atomic): per lane its
  // weights, AdamW moments and step, its generator state (global stream: dropout and, in book
  // mode, data order), its data stream's position and generator, tokens seen and wall time; and
  // state.json with the step count and `note` (the run folder's log lengths). load_state restores
  // it into an experiment built from the same config (train.steps/epochs may differ) and returns
  // the note; it throws naming the file and what does not match.
  void save_state(const std::string& dir, const nlohmann::json& note) const;
  nlohmann::json load_state(const std::string& dir);
 private:
  nlohmann::json load_state_checked(const std::string& dir);
 public:
  // Writes every lane's checkpoint into the run folder `dir` (names: run_dir.h).
  void save_checkpoints(const std::string& dir) const;
  std::string tokenizer_json() const;
  // Greedy continuation of `prompt` by lane `lane` (text data only).
  std::string generate(int lane, const std::string& prompt, int max_new_tokens) const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

// The weights a lane starts from, as Experiment builds them: the global generator seeded with
// `seed`, the model built in the book's module order; in fair mode every weight shared with
// `first` (the first variant's lane with this seed; nullptr for that lane itself) copied from it,
// and with twin_start its forms converted from it. `cfg` must be resolved (vocab_size set).
std::shared_ptr<GPTModelImpl> build_lane_model(const ExperimentConfig& cfg, Variant v, uint64_t seed,
                                               const std::shared_ptr<GPTModelImpl>& first);
// The step-0 model of cfg.variants[index] with `seed`, without building a whole experiment.
std::shared_ptr<GPTModelImpl> initial_model(const ExperimentConfig& cfg, size_t index, int seed);

// The memory guard: refuses (qk::Error, one line) an experiment whose estimated memory — weights,
// gradients, AdamW moments and one batch's activations, per variant and seed (estimates.h) —
// exceeds `available` bytes (< 0: MemAvailable from /proc/meminfo). Experiment's constructor calls
// it before allocating any model. `cfg` must be resolved (vocab_size set).
void check_memory(const ExperimentConfig& cfg, double available = -1);
double available_memory_bytes();  // MemAvailable, or -1 when unknown

// Applies the thread settings (LibTorch intra-op threads, OpenBLAS threads when present).
void configure_threads(int torch_threads, int blas_threads);

}  // namespace qk
