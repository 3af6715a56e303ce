// QKLab engine — Inspector: the analyses the GUI shows (attention maps, spectra of one head,
// truncation curves, samples), computed on live experiment lanes or on a run folder's checkpoints.
// Torch-free interface (the worker thread calls it; results are plain values, views.h).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "observer.h"
#include "views.h"

namespace qk {

class Experiment;

// What a run folder holds, for replay.
struct RunContents {
  ExperimentConfig config;
  std::vector<EvalRecord> metrics;
  std::vector<DivergenceRecord> divergence;
  std::vector<SpectraRecord> spectra;
  std::vector<std::string> checkpoints;  // paths
};
RunContents read_run(const std::string& dir);  // throws qk::Error naming the file

class Inspector {
 public:
  Inspector();
  ~Inspector();
  void attach(Experiment* exp);                 // live lanes (nullptr detaches)
  void attach_run(const std::string& run_dir);  // the run's checkpoints
  bool empty() const;
  std::vector<std::string> variants() const;
  int layers() const;
  int heads() const;

  // prompt: text (text data), or for a task the number of a validation sequence ("" = 0).
  std::vector<AttentionView> attention(const std::string& prompt) const;
  std::vector<SpectrumView> spectra(int layer, int head) const;
  std::vector<TruncationView> truncation(const std::vector<int>& ranks) const;
  std::vector<SampleView> samples(const std::string& prompt, double temperature, int top_k, int max_new,
                                  uint64_t seed) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace qk
