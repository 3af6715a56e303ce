// QKLab engine — collecting a report's data (see report_data.h).
#include "report_data.h"
#include "names.h"

#include <map>

#include "estimates.h"
#include "inspect.h"

namespace qk {

std::vector<int> default_truncation_ranks(int d) {
  std::vector<int> r{0};
  for (int k = 1; k < d; k *= 2) r.push_back(k);
  if (d > 0) r.push_back(d);
  return r;
}

namespace {

std::vector<VariantSummary> summarise(const ExperimentConfig& cfg, const std::vector<EvalRecord>& metrics) {
  std::vector<VariantSummary> out;
  for (const auto v : cfg.variants) {
    VariantSummary s;
    s.variant = variant_name(v);
    const auto e = estimate(cfg, v, cfg.model.vocab_size);
    s.parameters = e.parameters;
    s.flops_per_token = e.flops_per_token;
    s.attention_flops_per_token = e.attention_flops_per_token;
    s.memory_bytes = e.memory_bytes;
    std::map<int, const EvalRecord*> last;  // seed -> last evaluation
    for (const auto& r : metrics)
      if (r.variant == s.variant) last[r.seed] = &r;
    s.seeds = static_cast<int>(last.size());
    if (!last.empty()) {
      double n = 0, wall = 0, tl = 0, vl = 0, ta = 0, va = 0, rate = 0;
      for (auto& [seed, r] : last) {
        n += 1;
        wall += r->wall_time_s;
        tl += r->train_loss;
        vl += r->val_loss;
        ta += r->train_acc;
        va += r->val_acc;
        rate += r->wall_time_s > 0 ? double(r->tokens_seen) / r->wall_time_s : 0;
        s.steps = std::max(s.steps, r->step + 1);
        s.tokens_seen = std::max(s.tokens_seen, r->tokens_seen);
      }
      s.wall_time_s = wall / n;
      s.train_loss = tl / n;
      s.val_loss = vl / n;
      s.train_acc = ta / n;  // NaN stays NaN for text data
      s.val_acc = va / n;
      s.tokens_per_s = rate / n;
    }
    out.push_back(s);
  }
  return out;
}

}  // namespace

ReportData collect_report(const Inspector& inspector, const RunContents& history, const std::string& prompt,
                          const ReportProgress& progress) {
  ReportData d;
  d.config = inspector.config();
  d.step = inspector.step();
  d.seed = inspector.seed();
  d.metrics = history.metrics;
  d.divergence = history.divergence;
  d.spectra_history = history.spectra;
  d.epoch_samples = history.samples;
  d.summary = summarise(d.config, d.metrics);
  const bool text = qk::is_language_kind(d.config.data.kind);
  d.prompt = !prompt.empty() ? prompt : text ? d.config.data.prompt : "0";
  if (inspector.empty()) return d;

  const int L = inspector.layers(), H = inspector.heads();
  const auto ranks = default_truncation_ranks(d.config.model.emb_dim);
  const int total = L * H + static_cast<int>(ranks.size() * inspector.variants().size()) + 8;
  int done = 0;
  auto tell = [&](const std::string& what) {
    if (progress) progress(done, total, what);
  };
  for (int l = 0; l < L; ++l)
    for (int h = 0; h < H; ++h) {
      tell("spectra: layer " + std::to_string(l) + " head " + std::to_string(h));
      for (auto& s : inspector.spectra(l, h)) d.spectra.push_back(std::move(s));
      ++done;
    }
  tell("attention maps");
  d.attention = inspector.attention(d.prompt);
  ++done;
  tell("truncation curve: decomposing every head's form");
  d.truncation = inspector.truncation(ranks, [&](const std::string& variant, int r) {
    ++done;
    tell("truncation curve: " + variant + " rank " + std::to_string(r));
  });
  tell("samples");
  d.samples = inspector.samples(text ? d.prompt : "", 0.0, 0, d.config.data.sample_tokens,
                                static_cast<uint64_t>(d.config.train.seed));
  ++done;
  tell("geometry and spectral health");
  d.geometry = inspector.geometry();
  d.esd = inspector.esd(history.spectra);
  ++done;
  tell("circuits and composition");
  d.circuits = inspector.circuits();
  ++done;
  tell("logit lens");
  d.logit_lens = inspector.logit_lens(d.prompt);
  ++done;
  tell("direct logit attribution");
  d.attribution = inspector.attribution(d.prompt);
  ++done;
  tell("head detectors");
  d.detectors = inspector.detectors();
  ++done;
  tell("head ablation and patching");
  // An import has no validation data; a large model's ablation takes minutes to hours (the
  // Ablation tab and `analyze --ablation` compute it on request).
  if ((!text || !d.config.data.path.empty()) &&
      !heavy_mechanisms(d.config.model.n_layers, d.config.model.n_heads, d.config.model.emb_dim))
    d.ablation = inspector.ablation();
  ++done;
  tell("done");
  return d;
}

}  // namespace qk
