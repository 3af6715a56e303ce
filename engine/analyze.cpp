// QKLab engine — the analyze command (see analyze.h).
#include "analyze.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "analysis.h"
#include "checkpoint.h"
#include "error.h"
#include "fsutil.h"
#include "report_data.h"
#include "run_dir.h"
#include "tasks.h"
#include "trainer.h"

namespace qk {
namespace {


struct Loaded {
  std::string name;  // variant, e.g. "standard"
  int seed = 0;
  LoadedModel lm;
};

// The seed of a checkpoint named by the user: "-seed<N>" in its name, else the config's seed.
int seed_of_file(const std::string& path, const LoadedModel& lm) {
  const std::string stem = std::filesystem::path(path).stem().string();
  const auto at = stem.rfind("-seed");
  if (at != std::string::npos) {
    try {
      return std::stoi(stem.substr(at + 5));
    } catch (const std::exception&) {
    }
  }
  return lm.config.train.seed;
}

std::vector<Batch> validation_batches(const ExperimentConfig& cfg, const std::string& run_dir,
                                      std::shared_ptr<Tokenizer>* tokenizer) {
  if (cfg.data.kind != "text") return probe_batches(cfg, nullptr);
  auto corpus = load_run_corpus(cfg, run_dir);
  *tokenizer = corpus.tokenizer;
  return probe_batches(cfg, &corpus);
}

}  // namespace

int cmd_analyze(const AnalyzeOptions& o, std::ostream& out, std::ostream& err) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(o.run_dir)) throw Error(o.run_dir + ": not a run folder (no such directory)");
  const ExperimentConfig cfg = load_config_file(o.run_dir + "/" + run_files::kConfig);
  std::vector<Loaded> models;
  if (o.checkpoints.empty()) {
    for (const auto& ck : find_checkpoints(o.run_dir, cfg)) models.push_back({variant_name(ck.variant), ck.seed, load_model(ck.path)});
  } else {
    for (const auto& f : o.checkpoints) {
      auto lm = load_model(f);
      const int seed = seed_of_file(f, lm);
      models.push_back({variant_name(lm.variant), seed, std::move(lm)});
    }
  }
  if (models.empty())
    throw Error(o.run_dir + ": no checkpoints to analyse (<variant>.safetensors or <variant>-seed<N>.safetensors)");

  const std::string dir = o.out_dir.empty() ? o.run_dir + "/analysis" : o.out_dir;
  make_dirs(dir + "/attention");
  std::shared_ptr<Tokenizer> tokenizer;
  auto val = validation_batches(cfg, o.run_dir, &tokenizer);
  const bool acc = cfg.data.kind != "text";
  const int d = cfg.model.emb_dim;
  const std::vector<int> ranks = o.truncate.empty() ? default_truncation_ranks(d) : o.truncate;
  nlohmann::json report = {{"run", o.run_dir}, {"config", config_to_json(cfg)}};

  // Spectra and rank metrics.
  std::string spectra = "variant,seed,layer,head,matrix,index,sigma\n";
  std::string metrics = "variant,seed,layer,head,matrix,numerical_rank,effective_rank,stable_rank,rank90,rank99,spectral_norm,nuclear_norm\n";
  auto t0 = std::chrono::steady_clock::now();
  for (auto& m : models) {
    for (const auto& hs : model_spectra(*m.lm.model)) {
      for (size_t i = 0; i < hs.sigma.size(); ++i)
        spectra += m.name + "," + std::to_string(m.seed) + "," + std::to_string(hs.layer) + "," + std::to_string(hs.head) + "," + hs.matrix +
                   "," + std::to_string(i) + "," + csv_number(hs.sigma[i]) + "\n";
      const auto& r = hs.metrics;
      metrics += m.name + "," + std::to_string(m.seed) + "," + std::to_string(hs.layer) + "," + std::to_string(hs.head) + "," + hs.matrix + "," +
                 std::to_string(r.numerical_rank) + "," + csv_number(r.effective_rank) + "," + csv_number(r.stable_rank) + "," +
                 std::to_string(r.rank90) + "," + std::to_string(r.rank99) + "," + csv_number(r.spectral_norm) + "," +
                 csv_number(r.nuclear_norm) + "\n";
      report["heads"].push_back({{"variant", m.name}, {"seed", m.seed}, {"layer", hs.layer}, {"head", hs.head}, {"matrix", hs.matrix},
                                 {"sigma", hs.sigma}, {"numerical_rank", r.numerical_rank},
                                 {"effective_rank", r.effective_rank}, {"stable_rank", r.stable_rank},
                                 {"rank90", r.rank90}, {"rank99", r.rank99}, {"spectral_norm", r.spectral_norm},
                                 {"nuclear_norm", r.nuclear_norm}});
    }
  }
  const double spectra_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_file_atomic(dir + "/spectra.csv", spectra);
  write_file_atomic(dir + "/rank_metrics.csv", metrics);
  out << "spectra of " << models.size() << " model(s), " << cfg.model.n_layers * cfg.model.n_heads
      << " heads each, in " << std::fixed << std::setprecision(3) << spectra_s << " s\n" << std::defaultfloat;

  // Rank truncation: loss versus rank.
  const bool tty = isatty(fileno(stderr));
  if (o.layer >= cfg.model.n_layers)
    throw Error("--layer: " + std::to_string(o.layer) + " outside [0, " + std::to_string(cfg.model.n_layers) + ")");
  std::string trunc = "variant,seed,rank,val_loss,val_acc\n";
  for (auto& m : models) {
    for (int r : ranks) {
      if (r < 0 || r > d) throw Error("--truncate: rank " + std::to_string(r) + " outside [0, " + std::to_string(d) + "]");
      GPTModel c = clone_model(*m.lm.model);
      truncate_forms(*c, r, o.layer);
      auto la = evaluate_batches(*c, val, acc);
      trunc += m.name + "," + std::to_string(m.seed) + "," + std::to_string(r) + "," + csv_number(la.loss) + "," + (std::isnan(la.acc) ? "" : csv_number(la.acc)) + "\n";
      report["truncation"].push_back({{"variant", m.name}, {"seed", m.seed}, {"rank", r}, {"val_loss", la.loss},
                                      {"val_acc", std::isnan(la.acc) ? nlohmann::json() : nlohmann::json(la.acc)}});
      if (tty) err << "\rtruncation " << m.name << " rank " << r << "\033[K" << std::flush;
    }
  }
  if (tty) err << "\r\033[K";
  write_file_atomic(dir + "/truncation.csv", trunc);

  // Pairs (per seed): principal angles between S_hᵀ and W_q[h]ᵀ W_k[h]; KL between the functions.
  std::string angles = "seed,layer,head,side,index,angle_rad\n";
  std::string diverg = "seed,from,to,kl\n";
  std::vector<int> seeds;
  for (auto& m : models)
    if (std::find(seeds.begin(), seeds.end(), m.seed) == seeds.end()) seeds.push_back(m.seed);
  for (int seed : seeds) {
    Loaded* std_m = nullptr;
    Loaded* mer_m = nullptr;
    for (auto& m : models) {
      if (m.seed != seed) continue;
      switch (m.lm.variant) {
        case Variant::Standard: std_m = &m; break;
        case Variant::Merged: mer_m = &m; break;
      }
    }
    if (!std_m || !mer_m) continue;
    const int k = cfg.model.effective_qk_head_dim();
    const std::string sd = std::to_string(seed);
    for (int l = 0; l < cfg.model.n_layers; ++l) {
      auto fs = std_m->lm.model->attention(l).bilinear_forms();
      auto fm = mer_m->lm.model->attention(l).bilinear_forms();
      for (int h = 0; h < cfg.model.n_heads; ++h)
        for (bool left : {true, false}) {
          auto a = principal_angles(fs[h], fm[h], k, left);
          for (size_t i = 0; i < a.size(); ++i)
            angles += sd + "," + std::to_string(l) + "," + std::to_string(h) + "," + (left ? "left" : "right") + "," +
                      std::to_string(i) + "," + csv_number(a[i]) + "\n";
          report["principal_angles"].push_back(
              {{"seed", seed}, {"layer", l}, {"head", h}, {"side", left ? "left" : "right"}, {"angles", a}});
        }
    }
    const double kl = mean_kl(*std_m->lm.model, *mer_m->lm.model, val);
    diverg += sd + "," + std_m->name + "," + mer_m->name + "," + csv_number(kl) + "\n";
    report["kl"].push_back({{"seed", seed}, {"from", std_m->name}, {"to", mer_m->name}, {"kl", kl}});
  }
  write_file_atomic(dir + "/principal_angles.csv", angles);

  // Each form at the checkpoint against the same form at step 0. Initialisation is deterministic
  // in the config, so step 0 is rebuilt rather than stored.
  {
    Experiment init(cfg);
    const auto names = init.lane_names();
    std::string drift = "variant,seed,layer,head,side,index,angle_rad\n";
    for (auto& m : models) {
      const std::string v = variant_name(m.lm.variant);
      int lane = -1;
      const auto lane_seeds = init.lane_seeds();
      for (size_t i = 0; i < names.size() && lane < 0; ++i)
        if (names[i] == v && lane_seeds[i] == m.seed) lane = static_cast<int>(i);
      if (lane < 0) continue;
      auto m0 = init.lane_model(lane);
      int k = 0;  // the subspace compared: the standard form's whole rank; for merged, head_dim directions
      switch (m.lm.variant) {
        case Variant::Standard: k = cfg.model.effective_qk_head_dim(); break;
        case Variant::Merged: k = cfg.model.head_dim(); break;
      }
      for (int l = 0; l < cfg.model.n_layers; ++l) {
        auto now = m.lm.model->attention(l).bilinear_forms();
        auto then = m0->attention(l).bilinear_forms();
        for (int h = 0; h < cfg.model.n_heads; ++h)
          for (bool left : {true, false}) {
            auto a = principal_angles(now[h], then[h], k, left);
            for (size_t i = 0; i < a.size(); ++i)
              drift += m.name + "," + std::to_string(m.seed) + "," + std::to_string(l) + "," + std::to_string(h) + "," + (left ? "left" : "right") +
                       "," + std::to_string(i) + "," + csv_number(a[i]) + "\n";
            report["angles_to_init"].push_back({{"variant", m.name}, {"seed", m.seed}, {"layer", l}, {"head", h},
                                                {"side", left ? "left" : "right"}, {"angles", a}});
          }
      }
    }
    write_file_atomic(dir + "/principal_angles_init.csv", drift);
  }
  write_file_atomic(dir + "/divergence.csv", diverg);

  // Attention maps for the prompt (text) or the first validation sequence (tasks).
  std::vector<int64_t> ids;
  std::vector<std::string> labels;
  if (tokenizer) {
    ids = tokenizer->encode(o.prompt.empty() ? cfg.data.prompt : o.prompt);
    for (auto id : ids) labels.push_back(tokenizer->decode({id}));
  } else {
    auto row = val.at(0).inputs[0].contiguous();
    ids.assign(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
    for (auto id : ids) labels.push_back(std::to_string(id));
  }
  std::string summary = "variant,seed,layer,head,entropy,rank\n";
  for (auto& m : models) {
    auto maps = attention_maps(*m.lm.model, ids);
    for (size_t l = 0; l < maps.weights.size(); ++l) {
      std::string csv = "head,query,key,weight\n";
      auto w = maps.weights[l].contiguous();
      const int64_t H = w.size(0), T = w.size(1);
      auto* p = w.data_ptr<float>();
      for (int64_t h = 0; h < H; ++h)
        for (int64_t q = 0; q < T; ++q)
          for (int64_t k = 0; k <= q; ++k) csv += std::to_string(h) + "," + std::to_string(q) + "," + std::to_string(k) + "," + csv_number(p[(h * T + q) * T + k]) + "\n";
      const std::string stem = seeds.size() > 1 ? m.name + "-seed" + std::to_string(m.seed) : m.name;
      write_file_atomic(dir + "/attention/" + stem + "_layer" + std::to_string(l) + ".csv", csv);
      for (int64_t h = 0; h < H; ++h)
        summary += m.name + "," + std::to_string(m.seed) + "," + std::to_string(l) + "," + std::to_string(h) + "," + csv_number(maps.entropy[l][h]) + "," +
                   std::to_string(maps.rank[l][h]) + "\n";
      report["attention"].push_back({{"variant", m.name}, {"seed", m.seed}, {"layer", l}, {"entropy", maps.entropy[l]}, {"rank", maps.rank[l]}});
    }
  }
  nlohmann::json tok = nlohmann::json::array();
  for (size_t i = 0; i < ids.size(); ++i) tok.push_back({{"position", i}, {"id", ids[i]}, {"text", labels[i]}});
  write_file_atomic(dir + "/attention/tokens.json", tok.dump(1) + "\n");
  write_file_atomic(dir + "/attention/summary.csv", summary);
  report["tokens"] = tok;
  write_file_atomic(dir + "/analysis.json", report.dump() + "\n");
  out << "wrote " << dir << ": spectra.csv rank_metrics.csv truncation.csv principal_angles.csv "
      << "principal_angles_init.csv divergence.csv "
      << "attention/ analysis.json\n";
  for (auto& m : models) {
    double er = 0;
    int n = 0;
    for (auto& h : report["heads"])
      if (h["variant"] == m.name && h["seed"] == m.seed) { er += h["effective_rank"].get<double>(); ++n; }
    out << "  " << m.name << " seed " << m.seed << ": mean effective rank " << std::setprecision(4) << er / std::max(n, 1) << " of d=" << d << "\n";
  }
  return 0;
}

}  // namespace qk
