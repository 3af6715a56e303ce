// QKLab engine — the trainer's private parts (lanes and the experiment's state), shared by
// trainer.cpp (stepping) and train_state.cpp (exact resume). Not for use outside engine/train.
#pragma once
#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <vector>

#include "analysis.h"
#include "data.h"
#include "model.h"
#include "optim.h"
#include "trainer.h"

namespace qk {

using Clock = std::chrono::steady_clock;

// The global CPU generator's state, swapped in and out per lane.
inline torch::Tensor get_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}
inline void set_rng_state(const torch::Tensor& s) {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(s);
}

struct Lane {
  Variant variant;
  int seed = 0;
  int first = 0;  // lane of the first variant with the same seed (KL reference)
  GPTModel model{nullptr};
  std::unique_ptr<AdamW> opt;
  std::unique_ptr<DataSource> data;
  torch::Tensor rng_state;
  int64_t tokens_seen = 0;
  bool halted = false;      // stopped by the divergence guard (HaltRecord); the other lanes go on
  std::string halt_reason;
  double seconds = 0;
};

struct Experiment::Impl {
  ExperimentConfig cfg;
  std::shared_ptr<TextCorpus> corpus;
  std::vector<Lane> lanes;
  std::vector<Batch> probe;       // fixed validation batches for analyses
  std::vector<Batch> kl_batches;  // the probe batches when KL is tracked
  int64_t total = 0, done = 0;
  Experiment::PhaseSeconds phases;
  torch::Device device{torch::kCPU};

  // Runs `f` with lane l's generator state installed, saving it afterwards.
  template <class F> auto with_lane_rng(Lane& l, F&& f) {
    set_rng_state(l.rng_state);
    struct Save {
      Lane& l;
      ~Save() { l.rng_state = get_rng_state(); }
    } save{l};
    return f();
  }

  torch::Tensor loss_of(Lane& l, const Batch& b, torch::Tensor* logits_out = nullptr) {
    auto inputs = b.inputs.to(device), targets = b.targets.to(device);
    auto logits = l.model->forward(inputs);  // (B, T, V)
    if (logits_out) *logits_out = logits;
    return torch::nn::functional::cross_entropy(logits.flatten(0, 1), targets.flatten());
  }

  EvalRecord evaluate(int i, int max_batches) {
    Lane& l = lanes[i];
    EvalRecord r;
    r.lane = i;
    r.variant = variant_name(l.variant);
    r.seed = l.seed;
    r.step = done - 1;
    r.tokens_seen = l.tokens_seen;
    // Train split first, then validation, as the book's evaluate_model (the loaders' draws).
    auto train_batches = l.data->eval_batches(false, max_batches);
    auto val_batches = l.data->eval_batches(true, max_batches);
    LossAcc tr, va;
    if (cfg.train.mode == "book") {  // one forward per batch, the book's
      tr = evaluate_batches(*l.model, train_batches, l.data->accuracy());
      va = evaluate_batches(*l.model, val_batches, l.data->accuracy());
    } else {  // both splits' batches through the model together (analysis.h: fuse_tokens)
      std::vector<Batch> both = train_batches;
      both.insert(both.end(), val_batches.begin(), val_batches.end());
      const auto s = score_batches(*l.model, both, l.data->accuracy(), kEvalFuseTokens);
      tr = combine_scores(s, 0, train_batches.size());
      va = combine_scores(s, train_batches.size(), s.size());
    }
    r.train_loss = tr.loss;
    r.val_loss = va.loss;
    r.train_acc = tr.acc;
    r.val_acc = va.acc;
    r.wall_time_s = l.seconds;
    return r;
  }

  void report_spectra(int i, int64_t step, TrainerObserver* obs) {
    Lane& l = lanes[i];
    SpectraRecord rec{i, variant_name(l.variant), l.seed, step, {}};
    for (auto& hs : model_spectra(*l.model))
      rec.heads.push_back({hs.layer, hs.head, hs.sigma, hs.metrics.effective_rank});
    obs->on_spectra(rec);
  }

  std::string generate(Lane& l, const std::string& prompt, int max_new) {
    if (!corpus) return "";
    return corpus->tokenizer->decode(generate_ids(*l.model, corpus->tokenizer->encode(prompt), max_new));
  }
};

}  // namespace qk
