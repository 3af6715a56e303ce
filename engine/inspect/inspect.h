// QKLab engine — Inspector: the analyses the GUI shows (attention maps, spectra of one head,
// truncation curves, samples), computed on live experiment lanes or on a run folder's checkpoints.
// Torch-free interface (the worker thread calls it; results are plain values, views.h).
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "observer.h"
#include "run_dir.h"
#include "views.h"

namespace qk {

class Experiment;

class Inspector {
 public:
  Inspector();
  ~Inspector();
  void attach(Experiment* exp);                 // live lanes (nullptr detaches)
  // The run's checkpoints of one seed (-1: the first seed that has checkpoints).
  void attach_run(const std::string& run_dir, int seed = -1);
  // The same for a run folder already read (no second read of its files).
  void attach_run(const std::string& run_dir, const RunContents& rc, int seed = -1);
  bool empty() const;
  const ExperimentConfig& config() const;
  int seed() const;        // the seed of the models inspected
  int64_t step() const;    // optimiser steps the inspected models have taken
  std::vector<std::string> variants() const;
  int layers() const;
  int heads() const;

  // prompt: text (text data), or for a task the number of a validation sequence ("" = 0).
  std::vector<AttentionView> attention(const std::string& prompt) const;
  std::vector<SpectrumView> spectra(int layer, int head) const;
  // on_step hears each (variant, rank) done: variants × ranks calls in all.
  std::vector<TruncationView> truncation(const std::vector<int>& ranks,
                                         const std::function<void(const std::string& variant, int rank)>& on_step = {}) const;
  // Geometry of every head's form (diagonal mass over the validation batches when there are any).
  std::vector<GeometryView> geometry() const;
  // Composition scores and token read-outs; on_progress(done, total) per head.
  std::vector<CircuitsView> circuits(const std::function<void(int, int)>& on_progress = {}) const;
  // Head ablation (zero, mean, rank) and patching on the validation batches; on_progress per evaluation.
  std::vector<AblationView> ablation(const std::function<void(int, int)>& on_progress = {}) const;
  // The logit lens of the prompt's sequence (as attention) and over the validation batches.
  std::vector<LogitLensView> logit_lens(const std::string& prompt,
                                        const std::function<void(int, int)>& on_progress = {}) const;
  // Direct logit attribution: over the validation batches (when there are any), then for the
  // prompt's last scored position; answer / wrong as named_token (lens.h), "" = the defaults.
  std::vector<AttributionView> attribution(const std::string& prompt, const std::string& answer = "",
                                           const std::string& wrong = "",
                                           const std::function<void(int, int)>& on_progress = {}) const;
  // Previous-token, duplicate-token and induction scores of every head. on_progress(done, total)
  // per variant, here and for the lens and attribution.
  std::vector<DetectorView> detectors(const std::function<void(int, int)>& on_progress = {}) const;
  // Spectral health of every weight and form now, and of the forms at every step of `history`.
  std::vector<EsdRecord> esd(const std::vector<SpectraRecord>& history) const;
  std::vector<SampleView> samples(const std::string& prompt, double temperature, int top_k, int max_new,
                                  uint64_t seed) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qk
