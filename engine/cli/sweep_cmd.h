// QKLab engine — `qklab-cli sweep` (local processes or a Slurm job array) and `qklab-cli match`.
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "config.h"

namespace qk {

struct SweepOptions {
  std::string spec_path, preset, out_dir;
  std::string spec_text, spec_source;  // a spec built in memory (train --match)
  int jobs = 1;                        // processes at a time (local) / array throttle (slurm)
  int threads = 0;                     // per run; 0 = cores / jobs
  std::string backend = "local";       // local | slurm
  bool wait = false;                   // slurm: wait for the array, then aggregate
  std::string slurm_args;              // extra sbatch options, e.g. "--partition=cpu --time=1:00:00"
  int run_index = -1;                  // internal: run this one run of the sweep folder --out
  std::string exe;                     // the qklab-cli the runs are started with (default: this one)
  std::vector<std::string> overrides;  // --set KEY=VALUE: added to the spec's "set" (recorded in it)
  double scale = 0;                    // studies: steps x scale (0 = as recorded, or 1 for a new study)
};
// Exit codes: 0 every run finished; 1 some failed or are missing; 130 stopped (rerun to finish).
// A spec with "stages" is a study (study.h): run_study.
int cmd_sweep(const SweepOptions& o, std::ostream& out, std::ostream& err);
// Runs a study's stages in order into o.out_dir (study_cmd.cpp), each through cmd_sweep; stops at
// the first stage that is not complete. `study` is the study's JSON as given (with --set applied).
int run_study(const SweepOptions& o, const nlohmann::json& study, const std::string& source, std::ostream& out,
              std::ostream& err);

struct MatchOptions {
  std::string config_path, preset, by = "params", reference, target;
  std::vector<std::string> overrides, knobs;
};
int cmd_match(const MatchOptions& o, std::ostream& out);

// `train --match BY`: the config's variants as a sweep whose non-first variants are matched to
// the first's budget (one run folder per variant and seed).
std::string match_sweep_json(const ExperimentConfig& cfg, const std::string& by);

}  // namespace qk
