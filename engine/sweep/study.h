// QKLab engine — studies: sweeps run one after another in one folder, a later stage running each
// variant at its best value of a key found by an earlier stage (a learning-rate sweep per variant,
// then the comparison at each variant's tuned rate). A study is a sweep spec (sweep.h) with
// "stages": the top-level fields are every stage's defaults ("set" is merged, a stage's own keys on
// top), and a stage's "tune": {"from": STAGE, "key": KEY, "metric": "final_val_loss"} becomes its
// "variant_set" of each variant's best value. The folder:
//   DIR/study.json   {"study": the study as given, "scale": F}  (re-read to continue the same study)
//   DIR/STAGE/       each stage's sweep folder, whose sweep.json is the stage as resolved
//   DIR/tuned.csv    stage, variant, key, value, metric, mean, min, max, seeds — the choices made
// The scale multiplies every stage's train.steps, train.eval_every and train.warmup_steps (a larger
// machine runs more tokens with the same design). No torch.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace qk {

namespace study_files {
constexpr const char* kStudy = "study.json";
constexpr const char* kTuned = "tuned.csv";
}  // namespace study_files

struct StudyStage {
  std::string name;     // its folder under DIR
  nlohmann::json spec;  // the stage's sweep spec, defaults filled in, "tune" still in it
  std::string tune_from, tune_key, tune_metric;  // "" when the stage is not tuned
};

struct StudySpec {
  std::string name = "study";
  std::vector<StudyStage> stages;
};

bool is_study_json(const nlohmann::json& j);  // an object with "stages"
bool is_study_dir(const std::string& dir);    // holds study.json
// Parses and checks a study (names, order of "tune" references, every stage a valid sweep once
// tuned); `source` names the file in one-line errors.
StudySpec parse_study(const nlohmann::json& j, const std::string& source);

struct TunedValue {
  std::string stage, variant, key, value, metric;  // value: as the user reads it (0.003)
  double mean = 0, min = 0, max = 0;               // of the metric over seeds at that value
  int seeds = 0;
};
// The best value of `key` for each variant of the finished sweep folder `from_dir`: the lowest mean
// of `metric` (final_val_loss or best_val_loss) over seeds; a value where any seed diverged (no
// finite loss) is never chosen. Throws naming the folder when some of its runs are unfinished.
std::vector<TunedValue> tune_from(const std::string& from_dir, const std::string& key, const std::string& metric);

// Stage i of the study in DIR at `scale`, as a sweep spec's JSON text: its earlier stage's tuned
// values (appended to *tuned when given) as variant_set, steps scaled.
std::string study_stage_json(const StudySpec& s, size_t i, const std::string& dir, double scale,
                             std::vector<TunedValue>* tuned = nullptr);
void write_tuned_csv(const std::string& dir, const std::vector<TunedValue>& tuned);

}  // namespace qk
