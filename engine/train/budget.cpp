// QKLab engine — budget matching (see budget.h).
#include "budget.h"

#include <algorithm>
#include <cmath>

#include "error.h"
#include "estimates.h"

namespace qk {

MatchBy parse_match_by(const std::string& s) {
  if (s == "params") return MatchBy::Params;
  if (s == "flops") return MatchBy::Flops;
  throw Error("match: expected 'params' or 'flops', got '" + s + "'");
}

const char* match_by_name(MatchBy m) {
  switch (m) {
    case MatchBy::Params: return "params";
    case MatchBy::Flops: return "flops";
  }
  return "?";
}

const std::vector<std::string>& match_knobs() {
  static const std::vector<std::string> k = {"model.qk_head_dim", "model.n_layers", "model.emb_dim", "model.n_heads"};
  return k;
}

int knob_value(const ModelConfig& m, const std::string& knob) {
  if (knob == "model.qk_head_dim") return m.effective_qk_head_dim();
  if (knob == "model.n_layers") return m.n_layers;
  if (knob == "model.emb_dim") return m.emb_dim;
  if (knob == "model.n_heads") return m.n_heads;
  throw Error("match: unknown knob '" + knob + "'");
}

namespace {

double cost_of(const ExperimentConfig& c, Variant v, MatchBy by, int64_t vocab) {
  const auto e = estimate(c, v, vocab);
  switch (by) {
    case MatchBy::Params: return double(e.parameters);
    case MatchBy::Flops: return e.flops_per_token;
  }
  return 0;
}

// Candidate values of one knob around the current model (each then validated).
std::vector<int> candidates(const std::string& knob, const ModelConfig& m) {
  std::vector<int> out;
  if (knob == "model.qk_head_dim") {
    for (int q = 1; q <= m.emb_dim; ++q) out.push_back(q);
  } else if (knob == "model.n_layers") {
    for (int l = 1; l <= 4 * m.n_layers; ++l) out.push_back(l);
  } else if (knob == "model.emb_dim") {
    for (int d = m.n_heads; d <= 4 * m.emb_dim; d += m.n_heads) out.push_back(d);
  } else if (knob == "model.n_heads") {
    for (int h = 1; h <= m.emb_dim; ++h)
      if (m.emb_dim % h == 0) out.push_back(h);
  }
  return out;
}

void set_knob(ModelConfig& m, const std::string& knob, int v) {
  if (knob == "model.qk_head_dim") m.qk_head_dim = v;
  else if (knob == "model.n_layers") m.n_layers = v;
  else if (knob == "model.emb_dim") {
    // qk_head_dim follows d/H unless it was set; a set one is kept if it still fits.
    m.emb_dim = v;
    if (m.qk_head_dim > v) m.qk_head_dim = 0;
  } else if (knob == "model.n_heads") m.n_heads = v;
}

}  // namespace

std::vector<MatchProposal> propose_matches(const ExperimentConfig& cfg, Variant reference, Variant target,
                                           MatchBy by, int64_t vocab, const std::vector<std::string>& knobs) {
  // The sizes must be valid before any formula divides by them (fuzz_sweep_spec: n_heads 0).
  validate_config(cfg, "match: the reference's config", /*need_data=*/false);
  for (const auto& k : knobs)
    if (std::find(match_knobs().begin(), match_knobs().end(), k) == match_knobs().end())
      throw Error("match: unknown knob '" + k + "' (expected model.qk_head_dim, model.n_layers, model.emb_dim or model.n_heads)");
  const double ref = cost_of(cfg, reference, by, vocab);
  std::vector<MatchProposal> out;
  for (const auto& knob : match_knobs()) {
    if (!knobs.empty() && std::find(knobs.begin(), knobs.end(), knob) == knobs.end()) continue;
    MatchProposal best;
    bool found = false;
    for (int v : candidates(knob, cfg.model)) {
      ExperimentConfig c = cfg;
      set_knob(c.model, knob, v);
      try {
        validate_config(c, "match", /*need_data=*/false);
      } catch (const Error&) {
        continue;
      }
      const double cost = cost_of(c, target, by, vocab);
      if (!found || std::abs(cost - ref) < std::abs(best.cost - ref)) {
        best = {c.model, knob, v, cost, ref};
        found = true;
      }
    }
    // A knob the target does not depend on (qk_head_dim for merged) proposes nothing new.
    if (found && !(knob == "model.qk_head_dim" && std::abs(best.cost - cost_of(cfg, target, by, vocab)) < 0.5 &&
                   best.value != knob_value(cfg.model, knob)))
      out.push_back(best);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const MatchProposal& a, const MatchProposal& b) { return std::abs(a.gap()) < std::abs(b.gap()); });
  return out;
}

}  // namespace qk
