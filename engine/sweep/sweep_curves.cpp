// QKLab engine — a sweep's learning curves (see sweep_curves.h).
#include "sweep_curves.h"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "estimates.h"
#include "fsutil.h"
#include "observer.h"
#include "run_dir.h"

namespace qk {

namespace fs = std::filesystem;

namespace {

std::string short_key(const std::string& key) {
  const auto dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// Appends mean/min/max over the finite values of xs (NaN and 0 seeds when none is finite).
void add_point(CurveBand& b, const std::vector<double>& xs) {
  double sum = 0, lo = INFINITY, hi = -INFINITY;
  int n = 0;
  for (double x : xs)
    if (std::isfinite(x)) {
      sum += x;
      lo = std::min(lo, x);
      hi = std::max(hi, x);
      ++n;
    }
  b.mean.push_back(n ? sum / n : kNaN);
  b.min.push_back(n ? lo : kNaN);
  b.max.push_back(n ? hi : kNaN);
  b.seeds.push_back(n);
}

}  // namespace

std::vector<SweepCurve> sweep_curves(const std::string& dir, const SweepSpec& spec, const std::vector<SweepRun>& runs) {
  // Group key: variant + every swept value; the runs of a group differ only in their seed.
  struct Group {
    SweepCurve curve;
    std::vector<std::vector<EvalRecord>> seeds;  // each finished seed's evaluations of its variant
  };
  std::vector<std::string> order;
  std::map<std::string, Group> groups;
  for (const auto& r : runs) {
    if (!sweep_run_finished(dir, r)) continue;
    std::string key = variant_name(r.variant);
    for (const auto& [k, _] : spec.grid) key += "\x1f" + r.values.at(k);
    auto [it, fresh] = groups.try_emplace(key);
    Group& g = it->second;
    if (fresh) {
      order.push_back(key);
      g.curve.variant = variant_name(r.variant);
      g.curve.label = g.curve.variant;
      for (const auto& [k, _] : spec.grid)
        if (!r.values.at(k).empty()) g.curve.label += " " + short_key(k) + "=" + r.values.at(k);
      g.curve.values = r.values;
      g.curve.first_run = r.name;
      const std::string rd = sweep_run_dir(dir, r);
      const auto cfg = load_config_file(rd + "/" + run_files::kConfig);
      g.curve.flops_per_token = estimate(cfg, r.variant, cfg.model.vocab_size).flops_per_token;
    }
    std::vector<EvalRecord> evals;
    for (auto& m : read_metrics_csv(sweep_run_dir(dir, r) + "/" + run_files::kMetrics))
      if (m.variant == g.curve.variant && !std::isnan(m.val_loss)) evals.push_back(m);
    g.seeds.push_back(std::move(evals));
  }
  std::vector<SweepCurve> out;
  for (const auto& key : order) {
    Group& g = groups[key];
    // (step -> tokens) over every seed; the seeds of a group see the same tokens per step.
    std::map<int64_t, int64_t> steps;
    for (const auto& s : g.seeds)
      for (const auto& m : s) steps.emplace(m.step, m.tokens_seen);
    SweepCurve c = g.curve;
    for (const auto& [step, tokens] : steps) {
      std::vector<double> loss, acc;
      for (const auto& s : g.seeds)
        for (const auto& m : s)
          if (m.step == step) {
            loss.push_back(m.val_loss);
            acc.push_back(m.val_acc);
          }
      c.step.push_back(step);
      c.tokens.push_back(double(tokens));
      c.flops.push_back(double(tokens) * c.flops_per_token);
      add_point(c.val_loss, loss);
      add_point(c.val_acc, acc);
    }
    out.push_back(std::move(c));
  }
  return out;
}

std::string sweep_curves_csv(const std::vector<SweepCurve>& curves) {
  std::string s =
      "variant,series,step,tokens,training_flops,seeds,val_loss_mean,val_loss_min,val_loss_max,val_loss_ppl_mean,"
      "val_acc_mean,val_acc_min,val_acc_max\n";
  for (const auto& c : curves)
    for (size_t i = 0; i < c.step.size(); ++i)
      s += csv_row({c.variant, csv_text(c.label), std::to_string(c.step[i]), csv_number(c.tokens[i]),
                    csv_number(c.flops[i]), std::to_string(c.val_loss.seeds[i]), csv_number(c.val_loss.mean[i]),
                    csv_number(c.val_loss.min[i]), csv_number(c.val_loss.max[i]), csv_number(std::exp(c.val_loss.mean[i])),
                    csv_number(c.val_acc.mean[i]), csv_number(c.val_acc.min[i]), csv_number(c.val_acc.max[i])});
  return s;
}

void write_sweep_curves(const std::string& dir, const std::vector<SweepCurve>& curves) {
  write_file_atomic((fs::path(dir) / sweep_files::kCurves).string(), sweep_curves_csv(curves));
}

}  // namespace qk
