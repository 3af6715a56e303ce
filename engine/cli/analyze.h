// QKLab engine — `qklab-cli analyze RUN_DIR`: spectra, rank metrics, rank-truncation curves,
// principal angles, attention maps and the KL divergence of a run's checkpoints, as CSV files and
// one JSON file (columns documented in the README).
#pragma once
#include <iosfwd>
#include <string>
#include <vector>

namespace qk {

struct AnalyzeOptions {
  std::string run_dir;
  std::vector<std::string> checkpoints;  // default: every <variant>.safetensors of the run
  std::vector<int> truncate;             // ranks; default 0, 1, 2, 4, ..., d
  int layer = -1;                        // truncate only this layer's heads (-1: every layer)
  std::string prompt;                    // text runs: attention prompt; default data.prompt
  std::string out_dir;                   // default RUN_DIR/analysis
  // Text runs: activation patching on this one pair of prompts (the same number of tokens; the
  // answer position is the last) instead of pairs made from validation windows.
  std::string patch_clean, patch_corrupt;
  // The prompt's direct logit attribution compares logit[answer] − logit[wrong] at its last
  // position: a text that is one token (text runs) or a token id (tasks); "" = the defaults (the
  // next token where known, else the model's top token, against the most likely other one).
  std::string answer, wrong;
  bool ablation = false;                 // ablate and patch a large model too (heavy_mechanisms)
};
int cmd_analyze(const AnalyzeOptions& o, std::ostream& out, std::ostream& err);

}  // namespace qk
