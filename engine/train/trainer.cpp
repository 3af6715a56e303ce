// QKLab engine — the paired trainer (see trainer.h).
#include "trainer.h"
#include "names.h"
#include "trainer_impl.h"

#include "attention.h"
#include "run_dir.h"

#include <dlfcn.h>

#include <chrono>
#include <fstream>
#include <iomanip>
#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

#include "analysis.h"
#include "checkpoint.h"
#include "estimates.h"
#include "convert.h"
#include "data.h"
#include "error.h"
#include "model.h"
#include "optim.h"
#include "tasks.h"

namespace qk {

std::shared_ptr<GPTModelImpl> build_lane_model(const ExperimentConfig& cfg, Variant v, uint64_t seed,
                                               const std::shared_ptr<GPTModelImpl>& first) {
  torch::manual_seed(seed);
  GPTModel m(v, cfg.model);
  m->set_fused_kernels(cfg.train.mode != "book", cfg.train.precision == "bf16");  // fair mode: fused kernels (model.h)
  if (cfg.train.mode != "book" && first) {  // fair pair: shared parameters start equal
    torch::NoGradGuard ng;
    auto ref = first->named_parameters();
    for (auto& p : m->named_parameters())
      if (ref.contains(p.key()) && ref[p.key()].sizes() == p.value().sizes())
        p.value().copy_(ref[p.key()].to(p.value().device()));
    for (int layer = 0; layer < cfg.model.n_layers; ++layer)  // W_value where the layouts differ (merged-seed)
      m->attention(layer).set_value_path(first->attention(layer).value_path(), /*values_only=*/true);
    if (cfg.train.twin_start)  // every other variant starts as the conversion of the first: same function
      for (int layer = 0; layer < cfg.model.n_layers; ++layer)
        m->attention(layer).set_forms(first->attention(layer).bilinear_forms());
  }
  return m.ptr();
}

std::shared_ptr<GPTModelImpl> initial_model(const ExperimentConfig& cfg, size_t index, int seed) {
  if (cfg.model.vocab_size <= 0) throw Error("initial_model: the config must be resolved (model.vocab_size > 0)");
  if (index >= cfg.variants.size()) throw Error("initial_model: no variant number " + std::to_string(index));
  const auto s = static_cast<uint64_t>(seed);
  auto first = build_lane_model(cfg, cfg.variants[0], s, nullptr);
  return index == 0 ? first : build_lane_model(cfg, cfg.variants[index], s, first);
}

double available_memory_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit)
    if (key == "MemAvailable:") return kb * 1024.0;
  return -1;  // unknown: no guard
}

void check_memory(const ExperimentConfig& cfg, double available) {
  if (available < 0) available = available_memory_bytes();
  if (available < 0 || cfg.train.device != "cpu") return;
  double need = 0;
  for (const auto v : cfg.variants) need += estimate(cfg, v, cfg.model.vocab_size).memory_bytes;
  need *= cfg.train.seeds;
  if (need > available) {
    std::ostringstream ss;
    ss << std::fixed << std::setprecision(1) << "config: the experiment needs about " << need / 1e9
       << " GB (weights, gradients, AdamW moments and one batch's activations, for " << cfg.variants.size() * cfg.train.seeds
       << " variant×seed models) but " << available / 1e9
       << " GB are available (MemAvailable); lower model.emb_dim, model.n_layers, model.context_length or train.batch_size";
    throw Error(ss.str());
  }
}

void configure_threads(int torch_threads, int blas_threads) {
  at::set_num_threads(torch_threads);
  using SetFn = void (*)(int);
  if (auto fn = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    fn(blas_threads);
}

Experiment::Experiment(const ExperimentConfig& input,
                       const std::function<void(const std::string&, int64_t, int64_t)>& progress)
    : impl_(std::make_unique<Impl>()) {
  auto& I = *impl_;
  I.cfg = input;
  ExperimentConfig& cfg = I.cfg;
  validate_config(cfg, "config");
  if (cfg.train.device == "cuda") {
    if (!torch::cuda::is_available())
      throw Error("config: train.device: 'cuda' requested but this LibTorch build sees no CUDA device");
    I.device = torch::Device(torch::kCUDA);
  }
  std::tie(cfg.train.threads, cfg.train.blas_threads) = resolved_threads(cfg.train);  // the resolved config
  configure_threads(cfg.train.threads, cfg.train.blas_threads);

  int64_t data_vocab = 0;
  if (is_language_kind(cfg.data.kind)) {
    if (cfg.data.max_length == 0) cfg.data.max_length = cfg.model.context_length;
    if (cfg.data.stride == 0) cfg.data.stride = cfg.data.max_length;
    I.corpus = std::make_shared<TextCorpus>(load_text_corpus(cfg.data, cfg.data.max_length, progress));
    data_vocab = I.corpus->tokenizer->vocab_size();
    if (cfg.data.kind == "tokens" && cfg.train.epochs > 0)
      throw Error("config: train.epochs: token files are read as random windows (an endless stream); use train.steps");
  } else {
    data_vocab = make_task(cfg.data)->vocab_size();
    if (cfg.train.epochs > 0 && cfg.data.train_sequences == 0)
      throw Error("config: train.epochs: synthetic tasks are an endless stream unless data.train_sequences fixes the "
                  "training set; use train.steps");
  }
  if (cfg.model.vocab_size == 0) cfg.model.vocab_size = static_cast<int>(data_vocab);
  if (cfg.model.vocab_size < data_vocab)
    throw Error("config: model.vocab_size " + std::to_string(cfg.model.vocab_size) +
                " is smaller than the data's vocabulary (" + std::to_string(data_vocab) + ")");

  check_memory(cfg);  // before any model is allocated
  const bool book = cfg.train.mode == "book";
  for (int k = 0; k < cfg.train.seeds; ++k)
  for (size_t i = 0; i < cfg.variants.size(); ++i) {
    const uint64_t seed = static_cast<uint64_t>(cfg.train.seed + k);
    Lane l;
    l.variant = cfg.variants[i];
    l.seed = cfg.train.seed + k;
    l.first = static_cast<int>(I.lanes.size() - i);
    l.model = GPTModel(build_lane_model(cfg, l.variant, seed, i > 0 ? I.lanes[l.first].model.ptr() : nullptr));
    l.model->to(I.device);
    at::Generator gen = book ? at::detail::getDefaultCPUGenerator()
                             : at::make_generator<at::CPUGeneratorImpl>(seed);
    if (I.corpus) l.data = make_text_source(*I.corpus, cfg.train.batch_size, gen);
    else l.data = make_task_source(cfg.data, cfg.train.batch_size, seed);
    l.opt = std::make_unique<AdamW>(l.model->parameters(), cfg.train);
    if (!book) torch::manual_seed(seed + 1);  // the same dropout stream for every variant
    l.rng_state = get_rng_state();
    l.model->train();
    I.lanes.push_back(std::move(l));
  }
  const int64_t bpe = I.lanes[0].data->batches_per_epoch();
  I.total = cfg.train.epochs > 0 ? cfg.train.epochs * bpe : cfg.train.steps;
  I.probe = qk::probe_batches(cfg, I.corpus.get());
  if (!book && cfg.train.track_kl && I.lanes.size() > 1) I.kl_batches = I.probe;
}

std::shared_ptr<Tokenizer> Experiment::tokenizer() const {
  return impl_->corpus ? impl_->corpus->tokenizer : nullptr;
}

std::vector<Batch> Experiment::probe_batches() const { return impl_->probe; }

Experiment::~Experiment() = default;

const ExperimentConfig& Experiment::config() const { return impl_->cfg; }
int64_t Experiment::total_steps() const { return impl_->total; }
int64_t Experiment::steps_done() const { return impl_->done; }
int64_t Experiment::batches_per_epoch() const { return impl_->lanes[0].data->batches_per_epoch(); }
bool Experiment::finished() const {
  if (impl_->done >= impl_->total) return true;
  for (const auto& l : impl_->lanes)
    if (!l.halted) return false;
  return true;  // every variant halted by the divergence guard
}

std::vector<std::string> Experiment::halted() const {
  std::vector<std::string> out;
  for (const auto& l : impl_->lanes)
    if (l.halted) out.push_back(l.halt_reason);
  return out;
}

std::vector<std::string> Experiment::lane_names() const {
  std::vector<std::string> out;
  for (auto& l : impl_->lanes) out.push_back(variant_name(l.variant));
  return out;
}

std::vector<int> Experiment::lane_seeds() const {
  std::vector<int> out;
  for (auto& l : impl_->lanes) out.push_back(l.seed);
  return out;
}

std::shared_ptr<GPTModelImpl> Experiment::lane_model(int lane) const {
  return impl_->lanes.at(lane).model.ptr();
}

Experiment::PhaseSeconds Experiment::phase_seconds() const { return impl_->phases; }

std::vector<int64_t> Experiment::parameter_counts() const {
  std::vector<int64_t> out;
  for (auto& l : impl_->lanes) out.push_back(parameter_count(*l.model));
  return out;
}

std::vector<EvalRecord> Experiment::evaluate_now(int max_batches) {
  auto& I = *impl_;
  std::vector<EvalRecord> out;
  for (size_t i = 0; i < I.lanes.size(); ++i) {
    auto saved = I.lanes[i].rng_state;
    out.push_back(I.with_lane_rng(I.lanes[i], [&] { return I.evaluate(static_cast<int>(i), max_batches); }));
    I.lanes[i].rng_state = saved;  // leaves no trace in the training run's random stream
  }
  return out;
}

void Experiment::step(TrainerObserver* obs) {
  auto& I = *impl_;
  if (finished()) return;
  const auto& tc = I.cfg.train;
  const int64_t k = I.done;
  const double lr = scheduled_lr(tc, k, I.total);
  const int64_t bpe = I.lanes[0].data->batches_per_epoch();
  const bool last = k + 1 == I.total;
  for (size_t i = 0; i < I.lanes.size(); ++i) {
    Lane& l = I.lanes[i];
    if (l.halted) continue;
    I.with_lane_rng(l, [&] {
      auto t0 = Clock::now();
      auto lap = t0;
      auto phase = [&lap](double& acc) {
        const auto now = Clock::now();
        acc += std::chrono::duration<double>(now - lap).count();
        lap = now;
      };
      auto batch = l.data->next_train();
      if (!batch) batch = l.data->next_train();  // epoch boundary: a new iteration of the loader
      l.opt->zero_grad();
      phase(I.phases.data);
      auto loss = I.loss_of(l, *batch);
      phase(I.phases.forward);
      loss.backward();
      const double loss_v = loss.item<double>();
      phase(I.phases.backward);
      // The divergence guard looks at the loss and the gradient norm before the update: a variant
      // whose loss or gradients are not finite is halted without applying it, so it keeps the
      // weights of its last finite step, and the other variants go on.
      const double gnorm = tc.grad_clip > 0 ? clip_grad_norm(l.model->parameters(), tc.grad_clip)
                                            : grad_norm(l.model->parameters());
      phase(I.phases.grad_norm);
      if (!std::isfinite(loss_v) || !std::isfinite(gnorm)) {
        l.opt->zero_grad();
        l.halted = true;
        HaltRecord h{static_cast<int>(i), variant_name(l.variant), l.seed, k,
                     std::isfinite(loss_v) ? "gradient norm" : "loss", std::isfinite(loss_v) ? gnorm : loss_v, ""};
        std::ostringstream msg;
        msg << "step " << k << ": " << h.variant << " (seed " << l.seed << ") halted: its " << h.quantity << " is "
            << (std::isnan(h.value) ? "nan" : h.value > 0 ? "inf" : "-inf") << "; its weights stay those of step " << (k - 1);
        int others = 0;
        for (const auto& o : I.lanes) others += !o.halted;
        if (others > 0) msg << "; the other variants go on";
        msg << " (lower train.lr or set train.grad_clip)";
        h.message = l.halt_reason = msg.str();
        if (obs) obs->on_halt(h);
        return 0;
      }
      l.opt->step(lr);
      phase(I.phases.optimizer);
      l.tokens_seen += batch->inputs.numel();
      const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
      l.seconds += secs;
      if (obs) obs->on_step({static_cast<int>(i), variant_name(l.variant), k, l.tokens_seen, loss_v, lr, gnorm, secs, l.seed});
      const bool due = k % tc.eval_every == 0 || (last && tc.mode != "book");
      if (due) {
        auto t1 = Clock::now();
        I.done = k + 1;  // evaluate() reports step done - 1 = k
        auto r = I.evaluate(static_cast<int>(i), tc.eval_batches);
        const double eval_s = std::chrono::duration<double>(Clock::now() - t1).count();
        l.seconds += eval_s;
        I.phases.evaluation += eval_s;
        r.wall_time_s = l.seconds;
        if (obs) obs->on_eval(r);
      }
      if (obs && tc.spectra_every > 0 && (k % tc.spectra_every == 0 || last)) I.report_spectra(static_cast<int>(i), k, obs);
      if (bpe > 0 && (k + 1) % bpe == 0 && obs && I.corpus) {  // text: a sample at each epoch's end
        const int epoch = static_cast<int>((k + 1) / bpe);
        obs->on_sample({static_cast<int>(i), variant_name(l.variant), k, epoch,
                        I.generate(l, I.cfg.data.prompt, I.cfg.data.sample_tokens)});
      }
      return 0;
    });
  }
  I.done = k + 1;
  const bool due = k % tc.eval_every == 0 || (last && tc.mode != "book");
  if (obs && due)
    for (auto& d : divergence_now()) obs->on_divergence(d);
}

std::vector<DivergenceRecord> Experiment::divergence_now() {
  auto& I = *impl_;
  std::vector<DivergenceRecord> out;
  if (I.kl_batches.empty()) return out;
  for (auto& l : I.lanes) {
    Lane& f = I.lanes[l.first];
    if (&l == &f || l.halted || f.halted) continue;
    out.push_back({I.done - 1, l.seed, variant_name(f.variant), variant_name(l.variant),
                   mean_kl(*f.model, *l.model, I.kl_batches)});
  }
  return out;
}

void Experiment::set_initial_weights(GPTModelImpl& src, const std::string& source) {
  auto& I = *impl_;
  if (I.done > 0) throw Error(source + ": initial weights can only be set before the first step");
  for (auto& l : I.lanes) {
    GPTModel from = l.variant == src.variant() && l.model->config().effective_qk_head_dim() == src.config().effective_qk_head_dim()
                        ? GPTModel(std::dynamic_pointer_cast<GPTModelImpl>(src.shared_from_this()))
                        : convert_model(src, l.variant, I.cfg.model.qk_head_dim);
    std::map<std::string, torch::Tensor> w;
    for (const auto& p : from->named_parameters()) w[p.key()] = p.value().detach();
    load_weights(l.model, w, source);
    l.model->to(I.device);
  }
}

void Experiment::run(TrainerObserver* obs, const std::atomic<bool>* stop) {
  while (!finished() && !(stop && stop->load())) step(obs);
}

void Experiment::save_checkpoints(const std::string& dir) const {
  const bool many = impl_->cfg.train.seeds > 1;
  for (auto& l : impl_->lanes)
    save_model(dir + "/" + checkpoint_file_name(l.variant, l.seed, many), const_cast<GPTModel&>(l.model), impl_->cfg, tokenizer_json(), impl_->done);
}

std::string Experiment::tokenizer_json() const {
  return impl_->corpus ? impl_->corpus->tokenizer->to_json().dump() : std::string();
}

std::string Experiment::generate(int lane, const std::string& prompt, int max_new_tokens) const {
  return impl_->generate(impl_->lanes.at(lane), prompt, max_new_tokens);
}

}  // namespace qk
