// QKLab engine — a sweep folder's TensorBoard HParams data (see sweep_tensorboard.h).
#include "sweep_tensorboard.h"

#include <cmath>
#include <filesystem>
#include <map>

#include "run_dir.h"
#include "tensorboard.h"
#include "variants.h"

namespace qk {
namespace fs = std::filesystem;

namespace {

constexpr const char* kSuffix = "qklab-hparams";

// Writes one event file through a temporary name (not an event file name, so TensorBoard never
// reads it half-written), then renames it over `path`.
template <class Fill>
void write_event_file(const std::string& path, Fill fill) {
  const std::string tmp = (fs::path(path).parent_path() / "hparams.partial").string();
  {
    EventFileWriter w(tmp);
    fill(w);
    w.flush();
  }
  fs::rename(tmp, path);
}

HParamValue text_value(const std::string& s) {
  HParamValue v;
  v.text = s;
  return v;
}
HParamValue number_value(double x) {
  HParamValue v;
  v.kind = HParamValue::Kind::Number;
  v.number = x;
  return v;
}

}  // namespace

void write_sweep_hparams(const std::string& dir, const SweepSpec& spec, const std::vector<SweepRun>& runs,
                         const std::vector<SweepRow>& rows) {
  const double now = unix_time_now();
  std::vector<HParamDomain> domains;
  HParamDomain variants{"variant", {}};
  for (const auto v : spec.variants) variants.values.push_back(text_value(variant_name(v)));
  domains.push_back(variants);
  HParamDomain seeds{"seed", {}};
  for (int s : spec.seeds) seeds.values.push_back(number_value(s));
  domains.push_back(seeds);
  for (const auto& [key, values] : spec.grid) {
    HParamDomain d{key, {}};
    for (const auto& v : values) d.values.push_back(HParamValue::from_json_text(v));
    domains.push_back(d);
  }
  bool acc = false;
  for (const auto& r : rows) acc = acc || !std::isnan(r.final_val_acc);
  std::vector<HParamMetric> metrics = {
      {"hparams/final_val_loss", "validation loss at the end of the run", true},
      {"hparams/best_val_loss", "lowest validation loss of the run", true},
      {"hparams/final_val_perplexity", "exp(final validation loss)", true},
      {"hparams/wall_s", "training wall time (s)", false}};
  if (acc) {
    metrics.push_back({"hparams/final_val_acc", "exact-match accuracy at the end", true});
    metrics.push_back({"hparams/best_val_acc", "best exact-match accuracy", true});
  }
  const std::string name = tensorboard_file_name(0, kSuffix);  // a fixed name: rewritten in place
  write_event_file((fs::path(dir) / name).string(), [&](EventFileWriter& w) { w.hparams_experiment(domains, metrics, now); });

  std::map<std::string, const SweepRun*> by_name;
  for (const auto& r : runs) by_name[r.name] = &r;
  for (const auto& row : rows) {
    const auto it = by_name.find(row.run);
    if (it == by_name.end()) continue;
    const SweepRun& run = *it->second;
    std::map<std::string, HParamValue> hp;
    hp["variant"] = text_value(row.variant);
    hp["seed"] = number_value(row.seed);
    for (const auto& [key, value] : run.values)
      if (!value.empty()) hp[key] = HParamValue::from_json_text(value);
    const fs::path tb = fs::path(dir) / sweep_files::kRuns / row.run / run_files::kTensorBoard;
    fs::create_directories(tb);
    write_event_file((tb / name).string(), [&](EventFileWriter& w) {
      w.hparams_session_start(hp, row.run, now - row.wall_s);
      const int64_t step = row.steps;
      w.scalar("hparams/final_val_loss", step, now, row.final_val_loss);
      w.scalar("hparams/best_val_loss", step, now, row.best_val_loss);
      w.scalar("hparams/final_val_perplexity", step, now, std::exp(row.final_val_loss));
      w.scalar("hparams/wall_s", step, now, row.wall_s);
      if (acc) {
        w.scalar("hparams/final_val_acc", step, now, row.final_val_acc);
        w.scalar("hparams/best_val_acc", step, now, row.best_val_acc);
      }
      w.hparams_session_end(true, now);
    });
  }
}

}  // namespace qk
