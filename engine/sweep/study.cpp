// QKLab engine — studies (see study.h).
#include "study.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "error.h"
#include "format.h"
#include "run_dir.h"
#include "fsutil.h"
#include "sweep.h"

namespace qk {

namespace fs = std::filesystem;
using json = nlohmann::json;

bool is_study_json(const json& j) { return j.is_object() && j.contains("stages"); }

bool is_study_dir(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / study_files::kStudy, ec);
}

namespace {

bool file_safe(const std::string& s) {
  return !s.empty() && s.size() <= 64 && s != "." && s != ".." &&
         std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.'; });
}

json value_json(const std::string& v) {  // a grid value as the user reads it -> its JSON
  try {
    return json::parse(v);
  } catch (const json::exception&) {
    return json(v);
  }
}

}  // namespace

StudySpec parse_study(const json& j, const std::string& source) {
  if (!is_study_json(j)) throw Error(source + ": expected a study: an object with \"stages\"");
  StudySpec s;
  if (j.contains("name")) {
    if (!j["name"].is_string()) throw Error(source + ": name: expected a string");
    s.name = j["name"].get<std::string>();
  }
  const auto& st = j["stages"];
  if (!st.is_array() || st.empty()) throw Error(source + ": stages: expected a non-empty list of sweep specs");
  json defaults = j;
  defaults.erase("stages");
  defaults.erase("name");
  std::set<std::string> seen;
  for (size_t i = 0; i < st.size(); ++i) {
    const std::string where = source + ": stages[" + std::to_string(i) + "]";
    const auto& e = st[i];
    if (!e.is_object()) throw Error(where + ": expected an object (a sweep spec with a name)");
    if (!e.contains("name") || !e["name"].is_string() || !file_safe(e["name"].get<std::string>()))
      throw Error(where + ": name: expected a folder name (letters, digits, - _ .)");
    StudyStage stage;
    stage.name = e["name"].get<std::string>();
    if (!seen.insert(stage.name).second) throw Error(where + ": name '" + stage.name + "' is used twice");
    json spec = defaults;
    for (auto it = e.begin(); it != e.end(); ++it) {
      if (it.key() == "name" || it.key() == "tune") continue;
      if (it.key() == "set" && spec.contains("set")) {
        if (!it.value().is_object() || !spec["set"].is_object())
          throw Error(where + ": set: expected an object of key: value");
        for (auto kv = it.value().begin(); kv != it.value().end(); ++kv) spec["set"][kv.key()] = kv.value();
      } else {
        spec[it.key()] = it.value();
      }
    }
    spec["name"] = s.name + "-" + stage.name;
    const SweepSpec parsed = parse_sweep_spec(spec.dump(), where + " (" + stage.name + ")");
    if (e.contains("tune")) {
      const auto& t = e["tune"];
      if (!t.is_object() || !t.contains("from") || !t["from"].is_string() || !t.contains("key") || !t["key"].is_string())
        throw Error(where + ": tune: expected {\"from\": STAGE, \"key\": \"train.lr\"}");
      stage.tune_from = t["from"].get<std::string>();
      stage.tune_key = t["key"].get<std::string>();
      stage.tune_metric = t.contains("metric") && t["metric"].is_string() ? t["metric"].get<std::string>() : "final_val_loss";
      if (stage.tune_metric != "final_val_loss" && stage.tune_metric != "best_val_loss")
        throw Error(where + ": tune.metric: expected final_val_loss or best_val_loss");
      if (!seen.count(stage.tune_from) || stage.tune_from == stage.name)
        throw Error(where + ": tune.from: '" + stage.tune_from + "' is not an earlier stage");
      const auto from = std::find_if(s.stages.begin(), s.stages.end(), [&](const StudyStage& x) { return x.name == stage.tune_from; });
      const SweepSpec fs_ = parse_sweep_spec(from->spec.dump(), where);
      if (std::none_of(fs_.grid.begin(), fs_.grid.end(), [&](const auto& g) { return g.first == stage.tune_key; }))
        throw Error(where + ": tune.key: " + stage.tune_key + " is not swept in stage " + stage.tune_from);
      for (Variant v : parsed.variants)
        if (std::find(fs_.variants.begin(), fs_.variants.end(), v) == fs_.variants.end())
          throw Error(where + ": variant " + variant_name(v) + " is not tuned in stage " + stage.tune_from);
    }
    stage.spec = spec;
    s.stages.push_back(std::move(stage));
  }
  return s;
}

std::vector<TunedValue> tune_from(const std::string& from_dir, const std::string& key, const std::string& metric) {
  const std::string sj = (fs::path(from_dir) / sweep_files::kSpec).string();
  if (!fs::exists(sj)) throw Error(from_dir + ": the stage has not run yet (no " + sweep_files::kSpec + ")");
  const SweepSpec spec = load_sweep_spec(sj);
  const auto runs = expand_sweep(spec);
  size_t done = 0;
  for (const auto& r : runs) done += sweep_run_finished(from_dir, r);
  if (done < runs.size())
    throw Error(from_dir + ": " + std::to_string(done) + " of " + std::to_string(runs.size()) +
                " runs finished; the stages after it need all of them");
  const auto rows = summarize_sweep(from_dir, spec, runs);
  const auto g = std::find_if(spec.grid.begin(), spec.grid.end(), [&](const auto& x) { return x.first == key; });
  if (g == spec.grid.end()) throw Error(from_dir + ": " + key + " is not swept there");
  std::vector<TunedValue> out;
  for (Variant v : spec.variants) {
    const std::string vn = variant_name(v);
    std::map<std::string, std::vector<double>> by;  // value -> metric per seed
    for (const auto& r : rows)
      if (r.variant == vn) by[r.values.at(key)].push_back(metric == "best_val_loss" ? r.best_val_loss : r.final_val_loss);
    TunedValue best;
    bool have = false;
    for (const auto& raw : g->second) {  // in the grid's order: the first of equal means wins
      std::string val = raw;
      if (auto jv = value_json(raw); jv.is_string()) val = jv.get<std::string>();
      const auto it = by.find(val);
      if (it == by.end() || it->second.empty()) continue;
      const auto& xs = it->second;
      if (std::any_of(xs.begin(), xs.end(), [](double x) { return !std::isfinite(x); })) continue;  // diverged
      double sum = 0;
      for (double x : xs) sum += x;
      const double mean = sum / double(xs.size());
      if (have && !(mean < best.mean)) continue;
      best = TunedValue{"", vn, key, val, metric, mean, *std::min_element(xs.begin(), xs.end()),
                        *std::max_element(xs.begin(), xs.end()), int(xs.size())};
      have = true;
    }
    if (!have) throw Error(from_dir + ": " + vn + " has no value of " + key + " where every seed ended with a finite loss");
    out.push_back(best);
  }
  return out;
}

std::string study_stage_json(const StudySpec& s, size_t i, const std::string& dir, double scale,
                             std::vector<TunedValue>* tuned) {
  const StudyStage& st = s.stages.at(i);
  json j = st.spec;
  if (!st.tune_from.empty()) {
    auto vals = tune_from((fs::path(dir) / st.tune_from).string(), st.tune_key, st.tune_metric);
    const SweepSpec parsed = parse_sweep_spec(j.dump(), st.name);
    for (auto& t : vals) {
      t.stage = st.tune_from;
      if (std::find(parsed.variants.begin(), parsed.variants.end(), parse_variant(t.variant)) == parsed.variants.end())
        continue;
      j["variant_set"][t.variant][st.tune_key] = value_json(t.value);
      if (tuned && std::none_of(tuned->begin(), tuned->end(), [&](const TunedValue& x) {
            return x.stage == t.stage && x.variant == t.variant && x.key == t.key;
          }))
        tuned->push_back(t);
    }
  }
  if (scale != 1.0) {
    const SweepSpec parsed = parse_sweep_spec(j.dump(), st.name);
    const auto& t = parsed.base.train;
    auto scaled = [&](int v) { return std::max(1, static_cast<int>(std::lround(double(v) * scale))); };
    j["set"]["train.steps"] = scaled(t.steps);
    j["set"]["train.eval_every"] = scaled(t.eval_every);
    if (t.warmup_steps > 0) j["set"]["train.warmup_steps"] = scaled(t.warmup_steps);
  }
  return j.dump(2) + "\n";
}

void write_tuned_csv(const std::string& dir, const std::vector<TunedValue>& tuned) {
  std::string csv = "stage,variant,key,value,metric,mean,min,max,seeds\n";
  for (const auto& t : tuned)
    csv += t.stage + "," + t.variant + "," + t.key + "," + t.value + "," + t.metric + "," + csv_number(t.mean) + "," +
           csv_number(t.min) + "," + csv_number(t.max) + "," + std::to_string(t.seeds) + "\n";
  write_file_atomic((fs::path(dir) / study_files::kTuned).string(), csv);
}

}  // namespace qk
