// QKLab engine — Inspector and run-folder reading (see inspect.h).
#include "inspect.h"
#include "names.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "analysis.h"
#include "causal.h"
#include "circuits.h"
#include "detectors.h"
#include "esd.h"
#include "lens.h"
#include "geometry.h"
#include "checkpoint.h"
#include "config.h"
#include "error.h"
#include "fsutil.h"
#include "linalg.h"
#include "run_dir.h"
#include "tasks.h"
#include "tokenizer_factory.h"
#include "trainer.h"

namespace qk {

struct Inspector::Impl {
  ExperimentConfig cfg;
  int seed = 0;
  int64_t step = 0;
  const Experiment* exp = nullptr;  // live lanes: the step is read at each call
  std::vector<std::pair<std::string, std::shared_ptr<GPTModelImpl>>> models;
  std::shared_ptr<Tokenizer> tokenizer;
  std::vector<Batch> probe;
};

Inspector::Inspector() : impl_(std::make_unique<Impl>()) {}
Inspector::~Inspector() = default;

void Inspector::attach(Experiment* exp) {
  impl_ = std::make_unique<Impl>();
  if (!exp) return;
  impl_->cfg = exp->config();
  impl_->exp = exp;
  impl_->seed = exp->lane_seeds().empty() ? 0 : exp->lane_seeds()[0];
  auto names = exp->lane_names();
  auto seeds = exp->lane_seeds();
  for (size_t i = 0; i < names.size(); ++i)
    if (seeds[i] == seeds[0]) impl_->models.emplace_back(names[i], exp->lane_model(static_cast<int>(i)));
  impl_->tokenizer = exp->tokenizer();
  impl_->probe = exp->probe_batches();
}

void Inspector::attach_run(const std::string& run_dir, int seed) { attach_run(run_dir, read_run(run_dir), seed); }

void Inspector::attach_run(const std::string& run_dir, const RunContents& rc, int seed) {
  auto impl = std::make_unique<Impl>();
  impl->cfg = rc.config;
  const auto seeds = rc.seeds();
  if (seed < 0 && !seeds.empty()) seed = seeds.front();
  if (!seeds.empty() && std::find(seeds.begin(), seeds.end(), seed) == seeds.end())
    throw Error(run_dir + ": no checkpoints of seed " + std::to_string(seed));
  impl->seed = seed;
  for (const auto& ck : rc.checkpoints) {
    if (ck.seed != seed) continue;
    auto lm = load_model(ck.path);
    impl->step = lm.step;
    impl->models.emplace_back(variant_name(lm.variant), lm.model.ptr());
    if (!lm.tokenizer_json.empty() && !impl->tokenizer)
      impl->tokenizer = std::shared_ptr<Tokenizer>(tokenizer_from_json(parse_json(lm.tokenizer_json, ck.path + ": __metadata__.qklab.tokenizer")));
  }
  if (impl->models.empty()) throw Error(run_dir + ": no checkpoints to inspect");
  // The run's thread settings on this (the calling) thread, as training would use them: left at the
  // defaults, LibTorch's and OpenBLAS's pools oversubscribe two cores and spin (10× slower analyses).
  const auto [torch_threads, blas_threads] = resolved_threads(impl->cfg.train);
  configure_threads(torch_threads, blas_threads);
  if (is_language_kind(impl->cfg.data.kind) && impl->cfg.data.path.empty()) {
    // An imported model without a corpus: prompts through its tokenizer, no validation batches.
  } else if (is_language_kind(impl->cfg.data.kind)) {
    auto corpus = load_run_corpus(impl->cfg, run_dir);
    impl->probe = probe_batches(impl->cfg, &corpus);
    if (!impl->tokenizer) impl->tokenizer = corpus.tokenizer;
  } else {
    impl->probe = probe_batches(impl->cfg, nullptr);
  }
  impl_ = std::move(impl);
}

bool Inspector::empty() const { return impl_->models.empty(); }
const ExperimentConfig& Inspector::config() const { return impl_->cfg; }
int Inspector::seed() const { return impl_->seed; }
int64_t Inspector::step() const { return impl_->exp ? impl_->exp->steps_done() : impl_->step; }
int Inspector::layers() const { return impl_->cfg.model.n_layers; }
int Inspector::heads() const { return impl_->cfg.model.n_heads; }

std::vector<std::string> Inspector::variants() const {
  std::vector<std::string> v;
  for (auto& m : impl_->models) v.push_back(m.first);
  return v;
}

std::vector<AttentionView> Inspector::attention(const std::string& prompt) const {
  std::vector<AttentionView> out;
  if (empty()) return out;
  const auto tokens = prompt_tokens(impl_->tokenizer.get(), impl_->probe, prompt, impl_->cfg.model.context_length);
  for (auto& [name, m] : impl_->models) out.push_back(attention_view(*m, name, tokens));
  return out;
}

std::vector<SpectrumView> Inspector::spectra(int layer, int head) const {
  std::vector<SpectrumView> out;
  for (auto& [name, m] : impl_->models) {
    if (layer < 0 || layer >= m->config().n_layers || head < 0 || head >= m->config().n_heads)
      throw Error("spectra: layer/head out of range");
    auto hs = head_spectrum(*m, layer, head);
    out.push_back({name, hs.matrix, layer, head, m->config().effective_qk_head_dim(), hs.sigma, hs.metrics});
  }
  return out;
}

std::vector<TruncationView> Inspector::truncation(
    const std::vector<int>& ranks, const std::function<void(const std::string&, int)>& on_step) const {
  std::vector<TruncationView> out;
  if (impl_->probe.empty())
    throw Error("truncation: this model came without validation data (an import has no corpus); train on it with "
                "`qklab-cli train --init FILE --set data.path=…` to get a run folder with one");
  const qk::AccuracyKind acc = qk::accuracy_kind(impl_->cfg.data.kind);
  for (auto& [name, m] : impl_->models) {
    const std::string variant = name;
    out.push_back(truncation_curve(*m, name, impl_->probe, ranks, -1, acc, [&](int r) {
      if (on_step) on_step(variant, r);
    }));
  }
  return out;
}

std::vector<GeometryView> Inspector::geometry() const {
  std::vector<GeometryView> out;
  for (auto& [name, m] : impl_->models) out.push_back(model_geometry(*m, name, impl_->probe));
  return out;
}

std::vector<CircuitsView> Inspector::circuits(const std::function<void(int, int)>& on_progress) const {
  std::vector<CircuitsView> out;
  const int per = layers() * heads(), total = per * static_cast<int>(impl_->models.size());
  int done = 0;
  const Tokenizer* tok = impl_->tokenizer.get();
  for (auto& [name, m] : impl_->models)
    out.push_back(model_circuits(*m, name, [tok](int64_t id) { return token_label(tok, id); },
                                 [&](int, int) { if (on_progress) on_progress(++done, total); }));
  return out;
}

std::vector<AblationView> Inspector::ablation(const std::function<void(int, int)>& on_progress) const {
  if (impl_->probe.empty())
    throw Error("ablation: this model came without validation data (an import has no corpus); train on it with "
                "`qklab-cli train --init FILE --set data.path=…` to get a run folder with one");
  std::vector<AblationView> out;
  const auto pairs = patch_pairs(impl_->probe, 16);
  AblationOptions o;
  o.accuracy = qk::accuracy_kind(impl_->cfg.data.kind);
  const Tokenizer* tok = impl_->tokenizer.get();
  const int n = static_cast<int>(impl_->models.size());
  for (int i = 0; i < n; ++i) {
    auto& [name, m] = impl_->models[size_t(i)];
    out.push_back(model_ablation(*m, name, impl_->probe, pairs, o,
                                 [tok](const std::vector<int64_t>& ids) {
                                   std::string s;
                                   for (auto id : ids) s += (tok ? "" : (s.empty() ? "" : " ")) + token_label(tok, id);
                                   return s;
                                 },
                                 [&](int done, int total) { if (on_progress) on_progress(i * total + done, n * total); }));
  }
  return out;
}

std::vector<LogitLensView> Inspector::logit_lens(const std::string& prompt,
                                                 const std::function<void(int, int)>& on_progress) const {
  std::vector<LogitLensView> out;
  if (empty()) return out;
  const auto tokens = prompt_tokens(impl_->tokenizer.get(), impl_->probe, prompt, impl_->cfg.model.context_length);
  const Tokenizer* tok = impl_->tokenizer.get();
  const int n = static_cast<int>(impl_->models.size());
  for (auto& [name, m] : impl_->models) {
    out.push_back(model_logit_lens(*m, name, tokens, impl_->probe, [tok](int64_t id) { return token_label(tok, id); }));
    if (on_progress) on_progress(int(out.size()), n);
  }
  return out;
}

std::vector<AttributionView> Inspector::attribution(const std::string& prompt, const std::string& answer,
                                                    const std::string& wrong,
                                                    const std::function<void(int, int)>& on_progress) const {
  std::vector<AttributionView> out;
  if (empty()) return out;
  const Tokenizer* tok = impl_->tokenizer.get();
  const int64_t V = impl_->cfg.model.vocab_size;
  AttributionTarget t;
  t.answer = named_token(tok, answer, "attribution answer", V);
  t.wrong = named_token(tok, wrong, "attribution wrong token", V);
  const auto tokens = prompt_tokens(tok, impl_->probe, prompt, impl_->cfg.model.context_length);
  const int n = static_cast<int>(impl_->models.size());
  int done = 0;
  for (auto& [name, m] : impl_->models) {
    if (!impl_->probe.empty()) out.push_back(attribution_validation(*m, name, impl_->probe));
    out.push_back(attribution_prompt(*m, name, tokens, t, [tok](int64_t id) { return token_label(tok, id); }));
    if (on_progress) on_progress(++done, n);
  }
  return out;
}

std::vector<DetectorView> Inspector::detectors(const std::function<void(int, int)>& on_progress) const {
  std::vector<DetectorView> out;
  const int n = static_cast<int>(impl_->models.size());
  for (int i = 0; i < n; ++i) {
    auto& [name, m] = impl_->models[size_t(i)];
    out.push_back(model_detectors(*m, name, impl_->probe));
    if (on_progress) on_progress(i + 1, n);
  }
  return out;
}

std::vector<EsdRecord> Inspector::esd(const std::vector<SpectraRecord>& history) const {
  std::vector<EsdRecord> out;
  for (const auto& rec : history)
    if (rec.seed == impl_->seed)
      for (auto& e : forms_esd_history({rec}, impl_->cfg.model.emb_dim)) out.push_back(std::move(e));
  for (auto& [name, m] : impl_->models)
    for (auto& e : model_esd(*m, name, step())) out.push_back(std::move(e));
  return out;
}

std::vector<SampleView> Inspector::samples(const std::string& prompt, double temperature, int top_k, int max_new,
                                           uint64_t seed) const {
  std::vector<SampleView> out;
  for (auto& [name, m] : impl_->models) {
    EvalScope eval(*m);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    const auto dev = m->parameters().front().device();
    std::string text;
    if (impl_->tokenizer) {
      auto ids = generate_ids(*m, impl_->tokenizer->encode(prompt.empty() ? impl_->cfg.data.prompt : prompt),
                              max_new, temperature, top_k, &gen);
      text = impl_->tokenizer->decode(ids);
    } else {
      // Tasks: a few validation sequences with the model's predictions at the scored positions.
      const auto& b = impl_->probe.at(0);
      auto pred = m->forward(b.inputs.to(dev)).argmax(-1).cpu();
      for (int64_t i = 0; i < std::min<int64_t>(4, b.inputs.size(0)); ++i) {
        std::ostringstream ss;
        ss << "input";
        for (int64_t t = 0; t < b.inputs.size(1); ++t) ss << " " << b.inputs[i][t].item<int64_t>();
        ss << " | target";
        for (int64_t t = 0; t < b.targets.size(1); ++t)
          if (b.targets[i][t].item<int64_t>() != -100) ss << " " << b.targets[i][t].item<int64_t>();
        ss << " | predicted";
        for (int64_t t = 0; t < b.targets.size(1); ++t)
          if (b.targets[i][t].item<int64_t>() != -100) ss << " " << pred[i][t].item<int64_t>();
        text += ss.str() + "\n";
      }
    }
    out.push_back({name, text});
  }
  return out;
}

}  // namespace qk
