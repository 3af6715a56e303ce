// QKLab engine — sweep specs, their expansion into runs, and the summary/aggregate tables (see
// sweep.h for the folder's format).
#include "sweep.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "error.h"
#include "estimates.h"
#include "tokenizer_factory.h"
#include "fsutil.h"
#include "observer.h"
#include "presets.h"
#include "run_dir.h"

namespace qk {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Built-in sweeps that answer the question on 2 cores (README: "Sweeps").
struct SweepPreset {
  const char* name;
  const char* summary;
  const char* json;
};

const std::vector<SweepPreset>& sweep_presets() {
  static const std::vector<SweepPreset> list = {
      {"sweep-bilinear-rank",
       "the bilinear task: standard and merged-lowrank at qk_head_dim 1, 2, 4, 8, 16 (= d/H) against "
       "full-rank merged, 3 seeds, 2,500 steps: loss against the rank of the query-key form",
       R"({"name": "sweep-bilinear-rank", "preset": "task-bilinear",
           "set": {"train.eval_every": 100, "train.eval_batches": 4},
           "variants": ["standard", "merged-lowrank", "merged"],
           "grid": {"model.qk_head_dim": [1, 2, 4, 8, 16]},
           "applies_to": {"model.qk_head_dim": ["standard", "merged-lowrank"]},
           "seeds": [1, 2, 3], "target_loss": 1.0})"},
      {"sweep-recall-heads",
       "associative recall (Zoology MQAR style: 2 layers, 8 pairs of 32 keys, 4 queries), d = 64 and "
       "n_heads 1, 2, 4, 8; standard matched to merged's parameter count through qk_head_dim, 2 seeds, "
       "2,000 steps",
       R"({"name": "sweep-recall-heads", "preset": "task-recall",
           "set": {"train.eval_every": 100, "train.eval_batches": 4, "model.emb_dim": 64},
           "variants": ["merged", "standard"],
           "grid": {"model.n_heads": [1, 2, 4, 8]},
           "match": {"by": "params", "reference": "merged", "knobs": ["model.qk_head_dim"]},
           "seeds": [1, 2], "target_loss": 1.0})"},
      {"sweep-language",
       "a study on real language (a tokens folder: --set data.path=DIR, e.g. the King James Bible in a 4,096-token "
       "BPE): a learning-rate sweep per variant (4 rates, 2.5e-3 to 2e-2, 2 seeds, d=128), then standard, merged, merged-lowrank "
       "(d/H), shared-qk and identity-query at each one's best rate, matched in parameters and separately in "
       "FLOPs/token, at d=128 x 4 layers and d=192 x 6 layers, 3 seeds, 819,200 tokens each (--scale F: F x the "
       "steps); about 2 hours per size on 2 cores with --jobs 2",
       R"({"name": "sweep-language",
           "set": {"data.kind": "tokens", "data.path": "", "model.vocab_size": 0, "model.context_length": 128,
                   "model.emb_dim": 128, "model.n_heads": 4, "model.n_layers": 4, "model.drop_rate": 0.0,
                   "train.batch_size": 16, "train.steps": 400, "train.eval_every": 50, "train.eval_batches": 10,
                   "train.warmup_steps": 40, "train.cosine": true, "train.min_lr": 0.0, "train.beta2": 0.95,
                   "train.weight_decay": 0.1, "train.grad_clip": 1.0, "train.track_kl": false},
           "variants": ["standard", "merged", "merged-lowrank", "shared-qk", "identity-query"],
           "stages": [
             {"name": "lr", "grid": {"train.lr": [0.0025, 0.005, 0.01, 0.02]}, "seeds": [1, 2]},
             {"name": "small-params", "tune": {"from": "lr", "key": "train.lr"},
              "match": {"by": "params", "reference": "standard"}, "seeds": [11, 12, 13]},
             {"name": "small-flops", "tune": {"from": "lr", "key": "train.lr"},
              "match": {"by": "flops", "reference": "standard"}, "seeds": [11, 12, 13]},
             {"name": "large-params", "tune": {"from": "lr", "key": "train.lr"},
              "set": {"model.emb_dim": 192, "model.n_heads": 6, "model.n_layers": 6},
              "match": {"by": "params", "reference": "standard"}, "seeds": [11, 12, 13]},
             {"name": "large-flops", "tune": {"from": "lr", "key": "train.lr"},
              "set": {"model.emb_dim": 192, "model.n_heads": 6, "model.n_layers": 6},
              "match": {"by": "flops", "reference": "standard"}, "seeds": [11, 12, 13]}]})"},
      // The paper's grid is d {32, 64, 256} x layers {2, 4} x heads {2, 4} x length {16, 64, 128}
      // (36 points); on 2 cores one d = 256, length-128 run takes about as long as this whole
      // subset's share of a variant. The subset keeps both regimes of their results (length 16:
      // attention tasks mostly solved; length 64: REVERSE and SWAP collapse) at two widths, the same
      // for every variant (docs/projections.md); d 32/64 x 2 heads x length 16/64 at 2 layers = 4
      // points: 480 runs, 72 min with --jobs 2 on 2 cores (heads 4 too doubles it). context_length
      // 128 = their max_len (the size of the position table).
      {"sweep-projections",
       "Do Transformers Need Three Projections? (Table 1) at their protocol: the five token-wise tasks as encoders, "
       "d 32 and 64 x 2 layers x 2 heads x length 16 and 64 (4 of their 36 grid points), 3 seeds, for their four "
       "projection-sharing variants and QKLab's merged, merged-sym, merged-lowrank and identity-query: 480 runs, "
       "about 75 minutes on 2 cores with --jobs 2",
       R"({"name": "sweep-projections", "preset": "projections-copy",
           "set": {"model.context_length": 128, "model.n_layers": 2, "train.eval_every": 79},
           "variants": ["standard", "shared-qk", "shared-kv", "shared-qkv", "merged", "merged-sym",
                        "merged-lowrank", "identity-query"],
           "grid": {"data.kind": ["enc-reverse", "enc-sort", "enc-sub", "enc-swap", "enc-copy"],
                    "model.emb_dim": [32, 64], "model.n_heads": [2], "data.seq_items": [16, 64]},
           "seeds": [0, 1, 2]})"},
  };
  return list;
}

std::vector<Variant> parse_variant_list(const json& v, const std::string& where) {
  if (!v.is_array() || v.empty()) throw Error(where + ": expected a non-empty list of variant names");
  std::vector<Variant> out;
  for (const auto& e : v) {
    if (!e.is_string()) throw Error(where + ": expected variant names, got " + e.dump());
    try {
      out.push_back(parse_variant(e.get<std::string>()));
    } catch (const Error& err) {
      throw Error(where + ": " + err.what());
    }
  }
  return out;
}

std::string short_key(const std::string& key) {
  const auto dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// A value as a file-name-safe token: 0.001 -> 0.001, "a b" -> a_b.
std::string token(const std::string& v) {
  std::string s;
  for (char c : v) s += (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-') ? c : '_';
  return s.empty() ? "_" : s;
}

std::string unquote(const std::string& v) {  // JSON text -> the value as a user reads it
  try {
    auto j = json::parse(v);
    if (j.is_string()) return j.get<std::string>();
  } catch (const json::exception&) {
  }
  return v;
}

}  // namespace

std::vector<std::string> sweep_preset_names() {
  std::vector<std::string> out;
  for (const auto& p : sweep_presets()) out.push_back(p.name);
  return out;
}

std::string sweep_preset_json(const std::string& name) {
  std::string known;
  for (const auto& p : sweep_presets()) {
    if (name == p.name) return p.json;
    known += (known.empty() ? "" : ", ") + std::string(p.name);
  }
  throw Error("unknown sweep preset '" + name + "' (known: " + known + ")");
}

std::string sweep_preset_summary(const std::string& name) {
  for (const auto& p : sweep_presets())
    if (name == p.name) return p.summary;
  return "";
}

SweepSpec parse_sweep_spec(const std::string& text, const std::string& source) {
  const json j = parse_json(text, source);
  if (!j.is_object()) throw Error(source + ": expected a JSON object at top level");
  static const std::set<std::string> known{"name", "preset", "config", "set", "variants", "grid",
                                           "applies_to", "seeds", "match", "target_loss", "variant_set"};
  if (j.contains("stages"))
    throw Error(source + ": a study (it has stages): run it with `qklab-cli sweep`, which runs each stage as a sweep");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key()))
      throw Error(source + ": unknown key '" + it.key() +
                  "' (known: name, preset, config, set, variants, grid, applies_to, seeds, match, target_loss, "
                  "variant_set)");
  SweepSpec s;
  if (j.contains("name")) {
    if (!j["name"].is_string()) throw Error(source + ": name: expected a string");
    s.name = j["name"].get<std::string>();
  }
  if (j.contains("preset") && j.contains("config")) throw Error(source + ": give 'preset' or 'config', not both");
  if (j.contains("preset")) {
    if (!j["preset"].is_string()) throw Error(source + ": preset: expected a preset name");
    try {
      s.base = preset_config(j["preset"].get<std::string>());
    } catch (const Error& e) {
      throw Error(source + ": preset: " + e.what());
    }
  } else if (j.contains("config")) {
    s.base = config_from_json(j["config"], source + ": config");
  }
  if (j.contains("set")) {
    if (!j["set"].is_object()) throw Error(source + ": set: expected an object of key: value, e.g. {\"train.steps\": 500}");
    for (auto it = j["set"].begin(); it != j["set"].end(); ++it) {
      try {
        apply_override(s.base, it.key() + "=" + it.value().dump());
      } catch (const Error& e) {
        throw Error(source + ": set: " + e.what());
      }
    }
  }
  if (!j.contains("variants")) throw Error(source + ": variants: missing (e.g. [\"standard\", \"merged\"])");
  s.variants = parse_variant_list(j["variants"], source + ": variants");
  if (j.contains("grid")) {
    if (!j["grid"].is_object()) throw Error(source + ": grid: expected an object of key: [values]");
    for (auto it = j["grid"].begin(); it != j["grid"].end(); ++it) {
      if (!it.value().is_array() || it.value().empty())
        throw Error(source + ": grid." + it.key() + ": expected a non-empty list of values");
      std::vector<std::string> values;
      for (const auto& v : it.value()) {
        ExperimentConfig probe = s.base;  // the key and each value must be one the config accepts
        try {
          apply_override(probe, it.key() + "=" + v.dump());
        } catch (const Error& e) {
          throw Error(source + ": grid." + it.key() + ": " + e.what());
        }
        values.push_back(v.dump());
      }
      s.grid.emplace_back(it.key(), values);
    }
  }
  if (j.contains("applies_to")) {
    if (!j["applies_to"].is_object()) throw Error(source + ": applies_to: expected an object of key: [variants]");
    for (auto it = j["applies_to"].begin(); it != j["applies_to"].end(); ++it) {
      const bool swept = std::any_of(s.grid.begin(), s.grid.end(), [&](const auto& g) { return g.first == it.key(); });
      if (!swept) throw Error(source + ": applies_to." + it.key() + ": not a key of grid");
      s.applies_to[it.key()] = parse_variant_list(it.value(), source + ": applies_to." + it.key());
    }
  }
  if (j.contains("seeds")) {
    const auto& v = j["seeds"];
    if (v.is_number_integer()) {
      const int n = v.get<int>();
      if (n <= 0 || n > 1000) throw Error(source + ": seeds: expected 1 to 1000 seeds, got " + v.dump());
      for (int i = 0; i < n; ++i) s.seeds.push_back(s.base.train.seed + i);
    } else if (v.is_array() && !v.empty()) {
      for (const auto& e : v) {
        if (!e.is_number_integer() || e.get<int64_t>() < 0 || e.get<int64_t>() > (1 << 30))
          throw Error(source + ": seeds: expected non-negative integers, got " + e.dump());
        s.seeds.push_back(e.get<int>());
      }
    } else {
      throw Error(source + ": seeds: expected a count or a list of integers");
    }
  } else {
    s.seeds = {s.base.train.seed};
  }
  if (j.contains("variant_set")) {
    const auto& vs = j["variant_set"];
    if (!vs.is_object()) throw Error(source + ": variant_set: expected {VARIANT: {key: value}}");
    for (auto it = vs.begin(); it != vs.end(); ++it) {
      const std::string where = source + ": variant_set." + it.key();
      const Variant v = parse_variant_list(json::array({it.key()}), where)[0];
      if (std::find(s.variants.begin(), s.variants.end(), v) == s.variants.end())
        throw Error(where + ": not one of the sweep's variants");
      if (!it.value().is_object()) throw Error(where + ": expected an object of key: value");
      for (auto kv = it.value().begin(); kv != it.value().end(); ++kv) {
        ExperimentConfig probe = s.base;
        try {
          apply_override(probe, kv.key() + "=" + kv.value().dump());
        } catch (const Error& e) {
          throw Error(where + ": " + e.what());
        }
        s.variant_set[v].emplace_back(kv.key(), kv.value().dump());
      }
    }
  }
  if (j.contains("match")) {
    const auto& m = j["match"];
    if (!m.is_object() || !m.contains("by") || !m["by"].is_string())
      throw Error(source + ": match: expected {\"by\": \"params\" or \"flops\", \"reference\": VARIANT}");
    SweepMatch sm;
    try {
      sm.by = parse_match_by(m["by"].get<std::string>());
    } catch (const Error& e) {
      throw Error(source + ": match.by: " + e.what());
    }
    sm.reference = m.contains("reference") ? parse_variant_list(json::array({m["reference"]}), source + ": match.reference")[0]
                                           : s.variants.front();
    if (m.contains("knobs")) {
      if (!m["knobs"].is_array()) throw Error(source + ": match.knobs: expected a list such as [\"model.qk_head_dim\"]");
      for (const auto& k : m["knobs"]) {
        if (!k.is_string() || std::find(match_knobs().begin(), match_knobs().end(), k.get<std::string>()) == match_knobs().end())
          throw Error(source + ": match.knobs: " + k.dump() +
                      " is not one of model.qk_head_dim, model.n_layers, model.emb_dim, model.n_heads");
        sm.knobs.push_back(k.get<std::string>());
      }
    }
    s.match = sm;
  }
  if (j.contains("target_loss")) {
    if (!j["target_loss"].is_number() || !(j["target_loss"].get<double>() > 0))
      throw Error(source + ": target_loss: expected a positive number");
    s.target_loss = j["target_loss"].get<double>();
  }
  s.base.train.seeds = 1;
  double runs = double(s.variants.size()) * double(s.seeds.size());
  for (const auto& [_, values] : s.grid) runs *= double(values.size());
  if (runs > 100000)
    throw Error(source + ": the grid has " + std::to_string(static_cast<int64_t>(runs)) +
                " runs (variants x grid values x seeds); at most 100000");
  return s;
}

SweepSpec load_sweep_spec(const std::string& path) {
  return parse_sweep_spec(read_file_bytes(path, "sweep spec"), path);
}

std::vector<SweepRun> expand_sweep(const SweepSpec& spec) {
  std::vector<SweepRun> out;
  auto applies = [&](const std::string& key, Variant v) {
    auto it = spec.applies_to.find(key);
    return it == spec.applies_to.end() || std::count(it->second.begin(), it->second.end(), v) > 0;
  };
  for (const Variant v : spec.variants) {
    // The grid points of this variant: the product over the keys swept for it.
    std::vector<std::map<std::string, std::string>> points(1);
    for (const auto& [key, values] : spec.grid) {
      std::vector<std::map<std::string, std::string>> next;
      for (const auto& p : points) {
        if (!applies(key, v)) {
          auto q = p;
          q[key] = "";
          next.push_back(q);
          continue;
        }
        for (const auto& val : values) {
          auto q = p;
          q[key] = val;
          next.push_back(q);
        }
      }
      points = next;
    }
    for (const auto& p : points)
      for (int seed : spec.seeds) {
        SweepRun r;
        r.variant = v;
        r.seed = seed;
        r.config = spec.base;
        if (auto vs = spec.variant_set.find(v); vs != spec.variant_set.end())
          for (const auto& [key, val] : vs->second) apply_override(r.config, key + "=" + val);
        r.config.variants = {v};
        r.config.train.seed = seed;
        r.config.train.seeds = 1;
        r.name = variant_name(v);
        for (const auto& [key, _] : spec.grid) {
          const std::string& val = p.at(key);
          r.values[key] = val.empty() ? "" : unquote(val);
          if (val.empty()) continue;
          apply_override(r.config, key + "=" + val);
          r.name += "_" + short_key(key) + "-" + token(unquote(val));
        }
        r.name += "_seed" + std::to_string(seed);
        if (spec.match && v != spec.match->reference) {
          // The reference's model at this grid point (its own applying keys), matched by the target.
          ExperimentConfig ref = spec.base;
          if (auto vs = spec.variant_set.find(spec.match->reference); vs != spec.variant_set.end())
            for (const auto& [key, val] : vs->second) apply_override(ref, key + "=" + val);
          ref.variants = {spec.match->reference};
          for (const auto& [key, val] : p)
            if (!val.empty() && applies(key, spec.match->reference)) apply_override(ref, key + "=" + val);
          std::vector<std::string> knobs = spec.match->knobs;
          if (knobs.empty())
            for (const auto& k : match_knobs())
              if (std::none_of(spec.grid.begin(), spec.grid.end(), [&](const auto& g) { return g.first == k; }))
                knobs.push_back(k);
          const int64_t vocab = ref.model.vocab_size > 0 ? ref.model.vocab_size : data_vocab_size(ref.data);
          if (vocab <= 0)
            throw Error("sweep: match: the vocabulary of char-level text is known only after tokenizing; set model.vocab_size");
          const auto props = propose_matches(ref, spec.match->reference, v, spec.match->by, vocab, knobs);
          if (props.empty())
            throw Error("sweep: match: no knob of " + variant_name(v) + " can match " + variant_name(spec.match->reference));
          const auto& best = props.front();
          const ModelConfig keep = r.config.model;
          r.config.model = best.model;
          r.config.model.vocab_size = keep.vocab_size;
          r.matched = best.knob + "=" + std::to_string(best.value);
        }
        validate_config(r.config, "sweep run " + r.name);
        out.push_back(std::move(r));
      }
  }
  return out;
}

std::string sweep_run_dir(const std::string& dir, const SweepRun& r) {
  return (fs::path(dir) / sweep_files::kRuns / r.name).string();
}

bool sweep_run_finished(const std::string& dir, const SweepRun& r) {
  return fs::exists(fs::path(sweep_run_dir(dir, r)) / sweep_files::kFinished);
}

bool is_sweep_dir(const std::string& dir) {
  std::error_code ec;
  return fs::is_regular_file(fs::path(dir) / sweep_files::kSpec, ec);
}

std::vector<SweepRow> summarize_sweep(const std::string& dir, const SweepSpec& spec, const std::vector<SweepRun>& runs) {
  std::vector<SweepRow> rows;
  for (const auto& r : runs) {
    if (!sweep_run_finished(dir, r)) continue;
    // Only what the row needs (not the spectra history or samples read_run would load): the
    // Sweep view summarises every run on the GUI thread.
    const std::string rd = sweep_run_dir(dir, r);
    struct {
      ExperimentConfig config;
      std::vector<EvalRecord> metrics;
    } rc{load_config_file(rd + "/" + run_files::kConfig), read_metrics_csv(rd + "/" + run_files::kMetrics)};
    SweepRow row;
    row.run = r.name;
    row.variant = variant_name(r.variant);
    row.seed = r.seed;
    row.values = r.values;
    row.matched = r.matched;
    const auto e = estimate(rc.config, r.variant, rc.config.model.vocab_size);
    row.params = e.parameters;
    row.flops_per_token = e.flops_per_token;
    row.attention_flops_per_token = e.attention_flops_per_token;
    row.memory_bytes = e.memory_bytes;
    row.best_val_loss = kNaN;
    row.best_val_acc = kNaN;
    row.final_val_loss = kNaN;
    row.final_val_acc = kNaN;
    for (const auto& m : rc.metrics) {
      if (m.variant != row.variant || std::isnan(m.val_loss)) continue;
      row.final_val_loss = m.val_loss;
      row.final_val_acc = m.val_acc;
      row.steps = m.step + 1;
      row.wall_s = m.wall_time_s;
      if (std::isnan(row.best_val_loss) || m.val_loss < row.best_val_loss) row.best_val_loss = m.val_loss;
      if (!std::isnan(m.val_acc) && (std::isnan(row.best_val_acc) || m.val_acc > row.best_val_acc)) row.best_val_acc = m.val_acc;
      if (spec.target_loss > 0 && row.steps_to_target < 0 && m.val_loss <= spec.target_loss) {
        row.steps_to_target = double(m.step + 1);
        row.wall_to_target = m.wall_time_s;
      }
    }
    rows.push_back(row);
  }
  return rows;
}

namespace {

std::string cell(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

std::string num(double v) { return (std::isnan(v) || v < 0) ? "" : csv_number(v); }

struct Stats {
  double mean = kNaN, std = kNaN, min = kNaN, max = kNaN;
};
Stats stats(const std::vector<double>& xs) {
  std::vector<double> v;
  for (double x : xs)
    if (!std::isnan(x) && x >= 0) v.push_back(x);
  Stats s;
  if (v.empty()) return s;
  double sum = 0;
  for (double x : v) sum += x;
  s.mean = sum / double(v.size());
  double ss = 0;
  for (double x : v) ss += (x - s.mean) * (x - s.mean);
  s.std = v.size() > 1 ? std::sqrt(ss / double(v.size() - 1)) : 0.0;  // sample standard deviation
  s.min = *std::min_element(v.begin(), v.end());
  s.max = *std::max_element(v.begin(), v.end());
  return s;
}

}  // namespace

void write_sweep_tables(const std::string& dir, const SweepSpec& spec, const std::vector<SweepRow>& rows) {
  std::string keys;
  for (const auto& [key, _] : spec.grid) keys += cell(key) + ",";
  std::string sum = "run,variant," + keys +
                    "seed,matched,params,flops_per_token,attention_flops_per_token,memory_bytes,final_val_loss,"
                    "best_val_loss,final_val_acc,best_val_acc,steps,wall_s,steps_to_target,wall_to_target\n";
  for (const auto& r : rows) {
    std::string vals;
    for (const auto& [key, _] : spec.grid) vals += cell(r.values.at(key)) + ",";
    sum += cell(r.run) + "," + r.variant + "," + vals + std::to_string(r.seed) + "," + cell(r.matched) + "," +
           std::to_string(r.params) + "," + num(r.flops_per_token) + "," + num(r.attention_flops_per_token) + "," +
           num(r.memory_bytes) + "," + num(r.final_val_loss) + "," + num(r.best_val_loss) + "," +
           num(r.final_val_acc) + "," + num(r.best_val_acc) + "," + std::to_string(r.steps) + "," + num(r.wall_s) +
           "," + num(r.steps_to_target) + "," + num(r.wall_to_target) + "\n";
  }
  write_file_atomic((fs::path(dir) / sweep_files::kSummary).string(), sum);

  // Group by variant and grid point, in the order rows come (expand order).
  std::vector<std::string> order;
  std::map<std::string, std::vector<const SweepRow*>> groups;
  for (const auto& r : rows) {
    std::string k = r.variant;
    for (const auto& [key, _] : spec.grid) k += "\x1f" + r.values.at(key);
    if (!groups.count(k)) order.push_back(k);
    groups[k].push_back(&r);
  }
  static const char* metrics[] = {"final_val_loss", "final_val_ppl", "best_val_loss", "final_val_acc",
                                  "best_val_acc",   "wall_s",        "steps_to_target"};
  std::string agg = "variant," + keys + "seeds,matched,params,flops_per_token,attention_flops_per_token,memory_bytes,steps";
  for (const char* m : metrics) agg += std::string(",") + m + "_mean," + m + "_std," + m + "_min," + m + "_max";
  agg += ",reached_target\n";
  for (const auto& k : order) {
    const auto& g = groups[k];
    const SweepRow& f = *g.front();
    std::string vals;
    for (const auto& [key, _] : spec.grid) vals += cell(f.values.at(key)) + ",";
    agg += f.variant + "," + vals + std::to_string(g.size()) + "," + cell(f.matched) + "," + std::to_string(f.params) +
           "," + num(f.flops_per_token) + "," + num(f.attention_flops_per_token) + "," + num(f.memory_bytes) + "," +
           std::to_string(f.steps);
    auto column = [&](auto get) {
      std::vector<double> xs;
      for (const auto* r : g) xs.push_back(get(*r));
      const auto s = stats(xs);
      agg += "," + num(s.mean) + "," + num(s.std) + "," + num(s.min) + "," + num(s.max);
    };
    column([](const SweepRow& r) { return r.final_val_loss; });
    column([](const SweepRow& r) { return std::exp(r.final_val_loss); });  // perplexity, per run
    column([](const SweepRow& r) { return r.best_val_loss; });
    column([](const SweepRow& r) { return r.final_val_acc; });
    column([](const SweepRow& r) { return r.best_val_acc; });
    column([](const SweepRow& r) { return r.wall_s; });
    column([](const SweepRow& r) { return r.steps_to_target; });
    int reached = 0;
    for (const auto* r : g) reached += r->steps_to_target >= 0;
    agg += "," + std::to_string(reached) + "\n";
  }
  write_file_atomic((fs::path(dir) / sweep_files::kAggregate).string(), agg);
}

int CsvTable::column(const std::string& name) const {
  for (size_t i = 0; i < header.size(); ++i)
    if (header[i] == name) return static_cast<int>(i);
  return -1;
}

CsvTable read_csv_table(const std::string& path) {
  std::istringstream in(read_file_bytes(path, "CSV table"));
  CsvTable t;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    auto cells = split_csv_line(line);
    if (t.header.empty()) {
      t.header = cells;
      continue;
    }
    if (cells.size() != t.header.size())
      throw Error(path + ": line " + std::to_string(n) + ": " + std::to_string(cells.size()) + " cells, expected " +
                  std::to_string(t.header.size()));
    t.rows.push_back(cells);
  }
  if (t.header.empty()) throw Error(path + ": empty CSV file (expected a header line)");
  return t;
}

}  // namespace qk
