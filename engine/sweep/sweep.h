// QKLab engine — sweeps: a grid of variants × config keys × seeds run as independent run folders,
// and the tables that summarise them. This file is the one home of the sweep folder's format:
//   DIR/sweep.json        the spec as given (SweepSpec; re-read to expand the same runs again)
//   DIR/runs/NAME/        one run folder per (variant, grid point, seed) — run_dir.h's format
//   DIR/runs/NAME/finished.json   written when that run completed ({"wall_s": …})
//   DIR/runs/NAME.json    the run's resolved config;  DIR/runs/NAME.log  its console output
//   DIR/summary.csv       one row per completed run
//   DIR/aggregate.csv     per variant and grid point: mean, std, min, max over seeds
//   DIR/curves.csv        per variant and grid point, every evaluation: validation loss and accuracy
//                         against tokens and training FLOPs, mean and min–max over seeds (sweep_curves.h)
//   DIR/slurm/            the Slurm job script and logs (--backend slurm)
// No torch in this header (the GUI's Sweep view includes it).
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "budget.h"
#include "config.h"

namespace qk {

struct SweepMatch {
  MatchBy by = MatchBy::Params;
  Variant reference = Variant::Standard;
  std::vector<std::string> knobs;  // empty: every match knob that is not swept
};

struct SweepSpec {
  std::string name = "sweep";
  ExperimentConfig base;                          // preset/config + "set"
  std::vector<Variant> variants;
  std::vector<std::pair<std::string, std::vector<std::string>>> grid;  // key -> values (JSON text), in order
  std::map<std::string, std::vector<Variant>> applies_to;  // key -> the variants it is swept for (default all)
  std::vector<int> seeds;
  // Per-variant settings on top of `base` (a study's tuned learning rates): variant -> key -> JSON.
  std::map<Variant, std::vector<std::pair<std::string, std::string>>> variant_set;
  std::optional<SweepMatch> match;
  double target_loss = 0;  // > 0: steps and wall time to reach this validation loss
};

// Parses a sweep spec (JSON text); `source` names the file in error messages (one line, the field).
SweepSpec parse_sweep_spec(const std::string& text, const std::string& source);
SweepSpec load_sweep_spec(const std::string& path);
std::vector<std::string> sweep_preset_names();
std::string sweep_preset_json(const std::string& name);  // throws naming the known presets
std::string sweep_preset_summary(const std::string& name);

struct SweepRun {
  std::string name;                         // folder name under runs/
  Variant variant = Variant::Standard;
  int seed = 0;
  std::map<std::string, std::string> values;  // swept key -> value for this run ("" = not swept for it)
  std::string matched;                      // "model.qk_head_dim=32" when budget matching changed the model
  ExperimentConfig config;                  // resolved: one variant, one seed, validated
};
// Every run of the grid, in a fixed order (variant-major, then grid point, then seed). Budget
// matching is applied here. Throws naming the key when a grid value is invalid.
std::vector<SweepRun> expand_sweep(const SweepSpec& spec);

namespace sweep_files {
constexpr const char* kSpec = "sweep.json";
constexpr const char* kRuns = "runs";
constexpr const char* kFinished = "finished.json";
constexpr const char* kSummary = "summary.csv";
constexpr const char* kAggregate = "aggregate.csv";
constexpr const char* kCurves = "curves.csv";
}  // namespace sweep_files

std::string sweep_run_dir(const std::string& dir, const SweepRun& r);
bool sweep_run_finished(const std::string& dir, const SweepRun& r);
bool is_sweep_dir(const std::string& dir);

// One row of summary.csv.
struct SweepRow {
  std::string run, variant, matched;
  int seed = 0;
  std::map<std::string, std::string> values;
  int64_t params = 0;
  double flops_per_token = 0, attention_flops_per_token = 0, memory_bytes = 0;
  double final_val_loss = 0, best_val_loss = 0, final_val_acc = 0, best_val_acc = 0;
  int64_t steps = 0;
  double wall_s = 0;
  double steps_to_target = -1, wall_to_target = -1;  // -1: not reached (or no target)
};
// Reads every finished run's metrics (run_dir.h's reader) into rows.
std::vector<SweepRow> summarize_sweep(const std::string& dir, const SweepSpec& spec, const std::vector<SweepRun>& runs);
// Writes summary.csv and aggregate.csv (atomically).
void write_sweep_tables(const std::string& dir, const SweepSpec& spec, const std::vector<SweepRow>& rows);

// summary.csv / aggregate.csv read back (the GUI's Sweep view): the header and cells of each row.
struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  int column(const std::string& name) const;  // -1 when absent
};
CsvTable read_csv_table(const std::string& path);  // throws naming the file and line

}  // namespace qk
