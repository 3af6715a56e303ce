// QKLab engine — the analyze command (see analyze.h): one function per output, each over every
// checkpoint (variant × seed) of the run; the per-model maths is shared with the Inspector
// (analysis.h: truncation_curve, prompt_tokens, attention_view).
#include "analyze.h"
#include "names.h"

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
#include "causal.h"
#include "analyze_lens.h"
#include "analyze_mechanisms.h"
#include "lens.h"
#include "variants.h"
#include "checkpoint.h"
#include "error.h"
#include "fsutil.h"
#include "report_data.h"
#include "run_dir.h"
#include "tasks.h"
#include "trainer.h"

namespace qk {
namespace {

using json = nlohmann::json;

struct Loaded {
  std::string name;  // variant, e.g. "standard"
  int seed = 0;
  LoadedModel lm;
};

// Everything the outputs share: the run's config, its models, validation batches, the JSON report.
struct Analysis {
  ExperimentConfig cfg;
  std::vector<Loaded> models;
  std::vector<int> seeds;  // in order of first appearance
  std::vector<Batch> val;
  std::shared_ptr<Tokenizer> tokenizer;  // text runs
  std::string dir;                       // output folder
  json report;
};

// The seed of a checkpoint named by the user: "-seed<N>" in its name, else the config's seed.
int seed_of_file(const std::string& path, const LoadedModel& lm) {
  const std::string stem = std::filesystem::path(path).stem().string();
  const auto at = stem.rfind("-seed");
  if (at == std::string::npos) return lm.config.train.seed;
  const std::string digits = stem.substr(at + 5);
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return lm.config.train.seed;
  return std::stoi(digits);
}


std::string S(int64_t v) { return std::to_string(v); }

void write_spectra(Analysis& a, std::ostream& out) {
  std::string spectra = "variant,seed,layer,head,matrix,index,sigma\n";
  std::string metrics =
      "variant,seed,layer,head,matrix,numerical_rank,effective_rank,stable_rank,rank90,rank99,spectral_norm,nuclear_norm\n";
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& m : a.models)
    for (const auto& hs : model_spectra(*m.lm.model)) {
      for (size_t i = 0; i < hs.sigma.size(); ++i)
        spectra += csv_row({m.name, S(m.seed), S(hs.layer), S(hs.head), hs.matrix, S(int64_t(i)), csv_number(hs.sigma[i])});
      const auto& r = hs.metrics;
      metrics += csv_row({m.name, S(m.seed), S(hs.layer), S(hs.head), hs.matrix, S(r.numerical_rank),
                      csv_number(r.effective_rank), csv_number(r.stable_rank), S(r.rank90), S(r.rank99),
                      csv_number(r.spectral_norm), csv_number(r.nuclear_norm)});
      a.report["heads"].push_back({{"variant", m.name}, {"seed", m.seed}, {"layer", hs.layer}, {"head", hs.head},
                                   {"matrix", hs.matrix}, {"sigma", hs.sigma}, {"numerical_rank", r.numerical_rank},
                                   {"effective_rank", r.effective_rank}, {"stable_rank", r.stable_rank},
                                   {"rank90", r.rank90}, {"rank99", r.rank99}, {"spectral_norm", r.spectral_norm},
                                   {"nuclear_norm", r.nuclear_norm}});
    }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  write_file_atomic(a.dir + "/spectra.csv", spectra);
  write_file_atomic(a.dir + "/rank_metrics.csv", metrics);
  out << "spectra of " << a.models.size() << " model(s), " << a.cfg.model.n_layers * a.cfg.model.n_heads
      << " heads each, in " << std::fixed << std::setprecision(3) << secs << " s\n" << std::defaultfloat;
}

void write_truncation(Analysis& a, const std::vector<int>& ranks, int layer, std::ostream& err) {
  const bool tty = isatty(fileno(stderr));
  const AccuracyKind acc = accuracy_kind(a.cfg.data.kind);
  std::string csv = "variant,seed,rank,val_loss,val_acc\n";
  for (auto& m : a.models) {
    if (tty) err << "\rtruncation " << m.name << " seed " << m.seed << "\033[K" << std::flush;
    const auto t = truncation_curve(*m.lm.model, m.name, a.val, ranks, layer, acc);
    for (size_t i = 0; i < t.ranks.size(); ++i) {
      csv += csv_row({m.name, S(m.seed), S(t.ranks[i]), csv_number(t.val_loss[i]), csv_number(t.val_acc[i])});
      a.report["truncation"].push_back({{"variant", m.name}, {"seed", m.seed}, {"rank", t.ranks[i]},
                                        {"val_loss", t.val_loss[i]},
                                        {"val_acc", std::isnan(t.val_acc[i]) ? json() : json(t.val_acc[i])}});
    }
  }
  if (tty) err << "\r\033[K";
  write_file_atomic(a.dir + "/truncation.csv", csv);
}

// Per seed, each variant against the first (the reference, usually standard): principal angles
// between the forms' singular subspaces (over the smaller rank bound) and the KL divergence
// between the two functions.
void write_pairs(Analysis& a) {
  std::string angles = "seed,from,to,layer,head,side,index,angle_rad\n";
  std::string diverg = "seed,from,to,kl\n";
  const Variant ref_v = a.cfg.variants.front();
  for (int seed : a.seeds) {
    Loaded* ref = nullptr;
    for (auto& m : a.models)
      if (m.seed == seed && m.lm.variant == ref_v) ref = &m;
    if (!ref) continue;
    for (auto& other : a.models) {
      if (other.seed != seed || &other == ref) continue;
      const int64_t k = std::min(form_rank_bound(ref_v, a.cfg.model), form_rank_bound(other.lm.variant, a.cfg.model));
      for (int l = 0; l < a.cfg.model.n_layers; ++l) {
        auto fs = ref->lm.model->attention(l).bilinear_forms();
        auto fm = other.lm.model->attention(l).bilinear_forms();
        for (int h = 0; h < a.cfg.model.n_heads; ++h)
          for (bool left : {true, false}) {
            const auto an = principal_angles(fs[h], fm[h], k, left);
            for (size_t i = 0; i < an.size(); ++i)
              angles += csv_row({S(seed), ref->name, other.name, S(l), S(h), left ? "left" : "right", S(int64_t(i)),
                             csv_number(an[i])});
            a.report["principal_angles"].push_back({{"seed", seed}, {"from", ref->name}, {"to", other.name},
                                                    {"layer", l}, {"head", h}, {"side", left ? "left" : "right"},
                                                    {"angles", an}});
          }
      }
      const double kl = mean_kl(*ref->lm.model, *other.lm.model, a.val);
      diverg += csv_row({S(seed), ref->name, other.name, csv_number(kl)});
      a.report["kl"].push_back({{"seed", seed}, {"from", ref->name}, {"to", other.name}, {"kl", kl}});
    }
  }
  write_file_atomic(a.dir + "/principal_angles.csv", angles);
  write_file_atomic(a.dir + "/divergence.csv", diverg);
}

// Each form against the same form at step 0. Initialisation is deterministic in the config, so the
// step-0 model is rebuilt (initial_model) rather than stored.
void write_angles_to_init(Analysis& a) {
  std::string drift = "variant,seed,layer,head,side,index,angle_rad\n";
  for (auto& m : a.models) {
    const auto it = std::find(a.cfg.variants.begin(), a.cfg.variants.end(), m.lm.variant);
    if (it == a.cfg.variants.end()) continue;
    const auto m0 = initial_model(a.cfg, size_t(it - a.cfg.variants.begin()), m.seed);
    // The subspace compared: a low-rank form's whole rank; for full-rank (d) forms, head_dim directions.
    const int64_t bound = form_rank_bound(m.lm.variant, a.cfg.model);
    const int64_t k = bound >= a.cfg.model.emb_dim ? a.cfg.model.head_dim() : bound;
    for (int l = 0; l < a.cfg.model.n_layers; ++l) {
      auto now = m.lm.model->attention(l).bilinear_forms();
      auto then = m0->attention(l).bilinear_forms();
      for (int h = 0; h < a.cfg.model.n_heads; ++h)
        for (bool left : {true, false}) {
          const auto an = principal_angles(now[h], then[h], k, left);
          for (size_t i = 0; i < an.size(); ++i)
            drift += csv_row({m.name, S(m.seed), S(l), S(h), left ? "left" : "right", S(int64_t(i)), csv_number(an[i])});
          a.report["angles_to_init"].push_back({{"variant", m.name}, {"seed", m.seed}, {"layer", l}, {"head", h},
                                                {"side", left ? "left" : "right"}, {"angles", an}});
        }
    }
  }
  write_file_atomic(a.dir + "/principal_angles_init.csv", drift);
}

// The mean weight each head gives a token's own position, over the validation batches, against
// uniform causal attention's (1/T)·Σ 1/(i+1): shared-qk heads score each token against itself
// with |q_i|², and tend to sit above it.
void write_diagonal(Analysis& a) {
  if (a.val.empty()) return;
  const int64_t T = a.val.front().inputs.size(1);
  double uniform = 0;
  for (int64_t i = 0; i < T; ++i) uniform += 1.0 / double(i + 1) / double(T);
  std::string csv = "variant,seed,layer,head,diagonal_mass,uniform_causal\n";
  for (auto& m : a.models) {
    const auto d = model_diagonal_mass(*m.lm.model, a.val);
    for (size_t l = 0; l < d.size(); ++l) {
      for (size_t h = 0; h < d[l].size(); ++h)
        csv += csv_row({m.name, S(m.seed), S(int64_t(l)), S(int64_t(h)), csv_number(d[l][h]), csv_number(uniform)});
      a.report["diagonal_mass"].push_back(
          {{"variant", m.name}, {"seed", m.seed}, {"layer", l}, {"mass", d[l]}, {"uniform_causal", uniform}});
    }
  }
  write_file_atomic(a.dir + "/diagonal_mass.csv", csv);
}

// Attention maps for the prompt (text) or the first validation sequence (tasks).
void write_attention(Analysis& a, const std::string& prompt) {
  const auto tokens = prompt_tokens(a.tokenizer.get(), a.val, a.tokenizer ? (prompt.empty() ? a.cfg.data.prompt : prompt) : "",
                                    a.cfg.model.context_length);
  std::string summary = "variant,seed,layer,head,entropy,rank,diagonal_mass\n";
  for (auto& m : a.models) {
    const auto v = attention_view(*m.lm.model, m.name, tokens);
    for (int l = 0; l < v.layers; ++l) {
      std::string csv = "head,query,key,weight\n";
      for (int h = 0; h < v.heads; ++h) {
        const auto& w = v.weights[size_t(l * v.heads + h)];  // (T, T) row-major
        for (int q = 0; q < v.T; ++q)
          for (int k = 0; k <= q; ++k) csv += csv_row({S(h), S(q), S(k), csv_number(w[size_t(q * v.T + k)])});
        summary += csv_row({m.name, S(m.seed), S(l), S(h), csv_number(v.entropy[l][h]), S(v.rank[l][h]),
                        csv_number(v.diagonal[l][h])});
      }
      const std::string stem = a.seeds.size() > 1 ? m.name + "-seed" + S(m.seed) : m.name;
      write_file_atomic(a.dir + "/attention/" + stem + "_layer" + S(l) + ".csv", csv);
      a.report["attention"].push_back(
          {{"variant", m.name}, {"seed", m.seed}, {"layer", l}, {"entropy", v.entropy[l]}, {"rank", v.rank[l]}});
    }
  }
  json tok = json::array();
  for (size_t i = 0; i < tokens.ids.size(); ++i)
    tok.push_back({{"position", i}, {"id", tokens.ids[i]}, {"text", tokens.labels[i]}});
  write_file_atomic(a.dir + "/attention/tokens.json", tok.dump(1) + "\n");
  write_file_atomic(a.dir + "/attention/summary.csv", summary);
  a.report["tokens"] = tok;
}

// --patch-clean / --patch-corrupt: one pair of prompts of equal token length, answer at the end.
PatchPair given_patch_pair(const Analysis& a, const AnalyzeOptions& o) {
  if (!a.tokenizer) throw Error("--patch-clean: needs a text run (a task's pairs are made from its validation sequences)");
  if (o.patch_clean.empty() || o.patch_corrupt.empty())
    throw Error(std::string(o.patch_clean.empty() ? "--patch-clean" : "--patch-corrupt") +
                ": give both --patch-clean and --patch-corrupt");
  PatchPair p;
  p.clean = a.tokenizer->encode(o.patch_clean);
  p.corrupt = a.tokenizer->encode(o.patch_corrupt);
  if (p.clean.size() != p.corrupt.size())
    throw Error("--patch-corrupt: encodes to " + S(int64_t(p.corrupt.size())) + " tokens, --patch-clean to " +
                S(int64_t(p.clean.size())) + ": the two prompts must have the same number of tokens");
  if (p.clean.empty() || int64_t(p.clean.size()) > a.cfg.model.context_length)
    throw Error("--patch-clean: encodes to " + S(int64_t(p.clean.size())) + " tokens; expected 1 to the context length " +
                S(a.cfg.model.context_length));
  p.position = int64_t(p.clean.size()) - 1;
  return p;
}

Analysis load_analysis(const AnalyzeOptions& o) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(o.run_dir)) throw Error(o.run_dir + ": not a run folder (no such directory)");
  Analysis a;
  a.cfg = load_config_file(o.run_dir + "/" + run_files::kConfig);
  if (o.checkpoints.empty()) {
    for (const auto& ck : find_checkpoints(o.run_dir, a.cfg))
      a.models.push_back({variant_name(ck.variant), ck.seed, load_model(ck.path)});
  } else {
    for (const auto& f : o.checkpoints) {
      auto lm = load_model(f);
      const int seed = seed_of_file(f, lm);
      a.models.push_back({variant_name(lm.variant), seed, std::move(lm)});
    }
  }
  if (a.models.empty())
    throw Error(o.run_dir + ": no checkpoints to analyse (<variant>.safetensors or <variant>-seed<N>.safetensors)");
  for (auto& m : a.models)
    if (std::find(a.seeds.begin(), a.seeds.end(), m.seed) == a.seeds.end()) a.seeds.push_back(m.seed);
  if (o.layer >= a.cfg.model.n_layers)
    throw Error("--layer: " + S(o.layer) + " outside [0, " + S(a.cfg.model.n_layers) + ")");
  for (int r : o.truncate)
    if (r < 0 || r > a.cfg.model.emb_dim)
      throw Error("--truncate: rank " + S(r) + " outside [0, " + S(a.cfg.model.emb_dim) + "]");
  if (is_language_kind(a.cfg.data.kind)) {
    auto corpus = load_run_corpus(a.cfg, o.run_dir);
    a.tokenizer = corpus.tokenizer;
    a.val = probe_batches(a.cfg, &corpus);
  } else {
    a.val = probe_batches(a.cfg, nullptr);
  }
  a.dir = o.out_dir.empty() ? o.run_dir + "/analysis" : o.out_dir;
  make_dirs(a.dir + "/attention");
  a.report = {{"run", o.run_dir}, {"config", config_to_json(a.cfg)}};
  return a;
}

}  // namespace

int cmd_analyze(const AnalyzeOptions& o, std::ostream& out, std::ostream& err) {
  Analysis a = load_analysis(o);
  std::vector<PatchPair> given;  // checked before anything is written
  if (!o.patch_clean.empty() || !o.patch_corrupt.empty()) given = {given_patch_pair(a, o)};
  LensInputs li;
  li.val = &a.val;
  li.tokenizer = a.tokenizer.get();
  li.prompt = prompt_tokens(a.tokenizer.get(), a.val, a.tokenizer ? (o.prompt.empty() ? a.cfg.data.prompt : o.prompt) : "",
                            a.cfg.model.context_length);
  li.target.answer = named_token(a.tokenizer.get(), o.answer, "--answer", a.cfg.model.vocab_size);
  li.target.wrong = named_token(a.tokenizer.get(), o.wrong, "--wrong", a.cfg.model.vocab_size);
  if (li.target.answer >= 0 && li.target.answer == li.target.wrong)
    throw Error("--wrong: the same token as --answer; expected another token to compare it with");
  li.dir = a.dir;
  write_spectra(a, out);
  write_truncation(a, o.truncate.empty() ? default_truncation_ranks(a.cfg.model.emb_dim) : o.truncate, o.layer, err);
  write_pairs(a);
  write_angles_to_init(a);
  write_attention(a, o.prompt);
  write_diagonal(a);
  {
    MechanismInputs mi;
    mi.cfg = a.cfg;
    for (auto& m : a.models) mi.models.push_back({m.name, m.seed, m.lm.step, m.lm.model.get()});
    mi.val = &a.val;
    mi.tokenizer = a.tokenizer.get();
    mi.dir = a.dir;
    mi.pairs = given;
    mi.ablation = o.ablation || !heavy_mechanisms(a.cfg.model.n_layers, a.cfg.model.n_heads, a.cfg.model.emb_dim);
    if (std::filesystem::exists(o.run_dir + "/" + run_files::kConfig)) {
      try {
        mi.history = read_run(o.run_dir).spectra;
      } catch (const Error&) {
        // A folder of checkpoints without curves: the forms' ESD at the final step only.
      }
    }
    write_mechanisms(mi, a.report, out, err);
    li.models = mi.models;
    write_lens(li, a.report, out);
  }
  write_file_atomic(a.dir + "/analysis.json", a.report.dump() + "\n");
  out << "wrote " << a.dir << ": spectra.csv rank_metrics.csv truncation.csv principal_angles.csv "
      << "principal_angles_init.csv divergence.csv diagonal_mass.csv attention/ geometry.csv eigenvalues.csv "
      << "circuits.csv composition.csv ablation.csv patching.csv esd.csv logit_lens.csv logit_lens_layers.csv "
      << "attribution.csv head_detectors.csv detector_sequences.json analysis.json\n";
  for (auto& m : a.models) {
    double er = 0;
    int n = 0;
    for (auto& h : a.report["heads"])
      if (h["variant"] == m.name && h["seed"] == m.seed) {
        er += h["effective_rank"].get<double>();
        ++n;
      }
    out << "  " << m.name << " seed " << m.seed << ": mean effective rank " << std::setprecision(4)
        << er / std::max(n, 1) << " of d=" << a.cfg.model.emb_dim << "\n";
  }
  return 0;
}

}  // namespace qk
