// QKLab engine — what an exported report shows, as plain values (no torch): the run's history
// (losses, KL, spectra over training, epoch samples), a per-variant summary (parameters, FLOPs,
// memory, tokens/s, final losses) and the analyses computed at one step for one seed: the spectrum
// of every head, the rank-truncation curve, attention maps for a prompt and samples. Computed from
// an Inspector (live lanes on the GUI's worker thread, or a run folder's checkpoints for
// `qklab-cli report`); rendered by the ui's report writer.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "config.h"
#include "observer.h"
#include "run_dir.h"
#include "views.h"

namespace qk {

class Inspector;

struct VariantSummary {
  std::string variant;
  int64_t parameters = 0;
  double flops_per_token = 0, attention_flops_per_token = 0, memory_bytes = 0;
  int seeds = 0;                 // seeds with metrics
  int64_t steps = 0, tokens_seen = 0;
  double wall_time_s = 0, tokens_per_s = 0;  // mean over seeds
  double train_loss = kNaN, val_loss = kNaN, train_acc = kNaN, val_acc = kNaN;  // last evaluation, mean over seeds
};

struct ReportData {
  ExperimentConfig config;
  std::string source;   // the run folder, or "live experiment"
  int64_t step = 0;     // optimiser steps the analysed models had taken
  int seed = 0;         // seed of the analysed models
  std::string prompt;   // attention prompt (text), or the validation sequence number (tasks)
  std::vector<EvalRecord> metrics;
  std::vector<DivergenceRecord> divergence;
  std::vector<SpectraRecord> spectra_history;
  std::string epoch_samples;  // samples.txt
  std::vector<VariantSummary> summary;
  std::vector<SpectrumView> spectra;  // every variant × layer × head
  std::vector<TruncationView> truncation;
  std::vector<AttentionView> attention;
  std::vector<SampleView> samples;
  std::vector<GeometryView> geometry;   // and spectral health:
  std::vector<EsdRecord> esd;           // every weight and form now, the forms over training
  std::vector<CircuitsView> circuits;
  std::vector<AblationView> ablation;   // empty for a model without validation data (an import)
  std::vector<LogitLensView> logit_lens;
  std::vector<AttributionView> attribution;  // per variant: validation (when there is any), prompt
  std::vector<DetectorView> detectors;
};

using ReportProgress = std::function<void(int done, int total, const std::string& what)>;

// Runs every analysis the report needs on the inspector's models. `history` gives the curves
// (its config and checkpoints are not used). prompt "" = the config's prompt (text) or validation
// sequence 0 (tasks).
ReportData collect_report(const Inspector& inspector, const RunContents& history, const std::string& prompt,
                          const ReportProgress& progress = {});

// The ranks of the default truncation curve: 0, 1, 2, 4, …, d.
std::vector<int> default_truncation_ranks(int d);

}  // namespace qk
