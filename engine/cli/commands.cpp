// QKLab engine — headless commands behind qklab-cli: train (with a live progress line), presets,
// forward, tokenize, bpe-train and convert. (analyze: analyze.cpp; report: ui/report_command.cpp.)
#include "commands.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <filesystem>
#include <optional>
#include <climits>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bpe_tokenizer.h"
#include "analysis.h"
#include "checkpoint.h"
#include "data.h"
#include "gpt2_tokenizer.h"
#include "config.h"
#include "error.h"
#include "lens.h"
#include "fsutil.h"
#include "prepare.h"
#include "presets.h"
#include "format.h"
#include "names.h"
#include "run_dir.h"
#include "safetensors.h"
#include "trainer.h"
#include "variants.h"

namespace qk {
namespace {

std::string fmt(double v, int prec = 3) {
  if (std::isnan(v)) return "-";
  std::ostringstream ss;
  ss << std::fixed << std::setprecision(prec) << v;
  return ss.str();
}

// Prints one line per evaluation and a live progress line (step, losses, tokens/s, ETA).
class ProgressPrinter : public TrainerObserver {
 public:
  ProgressPrinter(std::ostream& out, std::ostream& err, int64_t total, int64_t first, size_t lanes, bool quiet)
      : out_(out), err_(err), total_(total), first_(first), lanes_(lanes), quiet_(quiet),
        tty_(isatty(fileno(stderr))), start_(std::chrono::steady_clock::now()) {}
  void on_step(const StepRecord& s) override {
    last_loss_[s.variant] = s.loss;
    tokens_ += s.tokens_seen - seen_[s.variant];
    seen_[s.variant] = s.tokens_seen;
    if (s.lane + 1 != static_cast<int>(lanes_) || quiet_) return;
    const double el = elapsed();
    const double rate = tokens_ / std::max(el, 1e-9);
    const double eta = el / std::max<int64_t>(1, s.step + 1 - first_) * (total_ - s.step - 1);
    std::ostringstream line;
    line << "step " << (s.step + 1) << "/" << total_ << " (" << (100 * (s.step + 1) / total_) << "%)";
    for (auto& [v, l] : last_loss_) line << "  " << v << " " << fmt(l);
    line << "  " << fmt(rate, 0) << " tok/s  elapsed " << format_duration(el) << "  ETA " << format_duration(eta);
    if (tty_) {
      err_ << "\r" << line.str() << "\033[K" << std::flush;
    } else if (s.step + 1 == total_ || el - last_print_ >= 5.0) {
      err_ << line.str() << "\n";
      last_print_ = el;
    }
  }
  void on_eval(const EvalRecord& r) override {
    if (tty_ && !quiet_) err_ << "\r\033[K";
    out_ << "step " << std::setw(6) << std::setfill('0') << r.step
         << std::setfill(' ') << "  " << std::left << std::setw(8) << r.variant << std::right
         << " train loss " << fmt(r.train_loss) << ", val loss " << fmt(r.val_loss);
    if (!std::isnan(r.val_acc)) out_ << ", train acc " << fmt(r.train_acc) << ", val acc " << fmt(r.val_acc);
    out_ << "\n" << std::flush;
  }
  void on_halt(const HaltRecord& h) override {
    if (tty_ && !quiet_) err_ << "\r\033[K";
    out_ << h.message << "\n" << std::flush;
  }
  void on_sample(const SampleRecord& s) override {
    if (tty_ && !quiet_) err_ << "\r\033[K";
    std::string t = s.text;
    for (auto& c : t) if (c == '\n') c = ' ';
    out_ << "[" << s.variant << " epoch " << s.epoch << "] " << t << "\n" << std::flush;
  }
  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::ostream& out_;
  std::ostream& err_;
  int64_t total_, first_;  // steps in all, and done before this process started
  size_t lanes_;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point start_;
  std::map<std::string, double> last_loss_;
  std::map<std::string, int64_t> seen_;
  int64_t tokens_ = 0;
  double last_print_ = 0;
};

// A progress line with rate and ETA for long preparation work (bytes).
class PrepProgress {
 public:
  explicit PrepProgress(std::ostream& err, bool bytes = true)
      : err_(err), bytes_(bytes), tty_(isatty(fileno(stderr))), t0_(std::chrono::steady_clock::now()) {}
  void operator()(const std::string& stage, int64_t done, int64_t total) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
    if (el < 1.0 && !printed_) return;  // quick work needs no progress line
    if (done < total && el - last_ < (tty_ ? 0.2 : 5.0)) return;
    last_ = el;
    printed_ = true;
    const double rate = done / std::max(el, 1e-9);
    std::ostringstream line;
    line << stage << " " << (100 * done / std::max<int64_t>(total, 1)) << "% (";
    if (bytes_) line << fmt(done / 1e6, 1) << "/" << fmt(total / 1e6, 1) << " MB, " << fmt(rate / 1e6, 1) << " MB/s";
    else line << done << "/" << total << ", " << fmt(rate, 1) << "/s";
    line << ", ETA " << format_duration((total - done) / std::max(rate, 1e-9)) << ")";
    if (tty_) err_ << "\r" << line.str() << "\033[K" << (done >= total ? "\n" : "") << std::flush;
    else err_ << line.str() << "\n";
  }

 private:
  std::ostream& err_;
  bool bytes_, tty_, printed_ = false;
  std::chrono::steady_clock::time_point t0_;
  double last_ = -1e9;
};

}  // namespace

namespace {

std::atomic<bool> g_stop{false};
extern "C" void on_stop_signal(int) { g_stop.store(true); }

// The keys a resumed run may change: how long it runs and how it is watched, not what it trains.
bool resumable_key(const std::string& k) {
  for (const char* p : {"train.steps", "train.epochs", "train.autosave_steps", "train.autosave_minutes",
                        "train.threads", "train.blas_threads", "train.eval_every", "train.spectra_every",
                        "train.track_kl", "train.device", "data.sample_tokens", "data.prompt"})
    if (k == p) return true;
  return false;
}

}  // namespace

void install_stop_signals() {
  std::signal(SIGINT, on_stop_signal);
  std::signal(SIGTERM, on_stop_signal);
}

int cmd_train(const TrainOptions& o, std::ostream& out, std::ostream& err) {
  ExperimentConfig cfg;
  const bool resume = !o.resume_dir.empty();
  if (!o.config_path.empty() && !o.preset.empty())
    throw Error("train: give either --config or --preset, not both");
  if (resume && (!o.config_path.empty() || !o.preset.empty() || !o.init_file.empty()))
    throw Error("train: --resume continues the run's own config.json; change its length with --set train.steps=N");
  if (resume && !o.out_dir.empty() && o.out_dir != o.resume_dir)
    throw Error("train: --resume writes into the run folder itself; drop --out");
  const std::string dir = resume ? o.resume_dir : o.out_dir;
  if (dir.empty()) throw Error("train: --out RUN_DIR is required");
  if (o.stop_at < 0) throw Error("train: --stop-at: expected a step count >= 0");

  std::optional<LoadedModel> init;
  std::unique_ptr<FolderLock> held;  // resume: the folder is ours before its state is read
  if (resume) {
    if (!std::filesystem::is_directory(dir)) throw Error(dir + ": not a run folder (no such directory)");
    held = std::make_unique<FolderLock>(dir);
    cfg = load_config_file(dir + "/" + run_files::kConfig);
    const auto before = config_keys(cfg);
    for (const auto& s : o.overrides) apply_override(cfg, s);
    const auto after = config_keys(cfg);
    for (size_t i = 0; i < after.size(); ++i)
      if (after[i].second != before[i].second && !resumable_key(after[i].first))
        throw Error("--set " + after[i].first + ": a resumed run keeps what it trains; only train.steps, train.epochs, "
                    "train.autosave_*, train.eval_every, train.spectra_every, threads and device may change");
    validate_config(cfg, dir + "/" + run_files::kConfig);
  } else {
    if (!o.config_path.empty()) cfg = load_config_file(o.config_path);
    else cfg = preset_config(o.preset.empty() ? "default" : o.preset);
    if (!o.init_file.empty()) {
      init = load_model(o.init_file);
      cfg.model = init->config.model;  // the architecture comes with the weights
      if (init->variant != Variant::Standard) cfg.model.qk_head_dim = init->config.model.qk_head_dim;
    }
    for (const auto& s : o.overrides) apply_override(cfg, s);
    validate_config(cfg, o.config_path.empty() ? "preset " + (o.preset.empty() ? std::string("default") : o.preset)
                                               : o.config_path);
  }
  std::unique_ptr<RunWriter> writer;
  if (!resume) writer = std::make_unique<RunWriter>(dir, o.overwrite);  // refuses to clobber an earlier run

  if (cfg.data.kind == "text" && cfg.data.cache_dir.empty()) cfg.data.cache_dir = dir;
  PrepProgress prep(err);
  Experiment exp(cfg, [&](const std::string& s, int64_t d, int64_t t) { prep(s, d, t); });
  check_disk_space(dir, exp);
  if (init) exp.set_initial_weights(*init->model, o.init_file);
  if (resume) {
    writer = std::make_unique<RunWriter>(dir, load_run_state(dir, exp), std::move(held));
    if (!writer->resume_note().empty()) err << "qklab-cli: warning: " << writer->resume_note() << "\n";
  }
  const auto& rc = exp.config();
  writer->write_config(rc);
  if (!resume && !exp.tokenizer_json().empty()) writer->write_text("tokenizer.json", exp.tokenizer_json() + "\n");
  auto counts = exp.parameter_counts();
  auto names = exp.lane_names();
  out << "QKLab: " << rc.name << " — " << exp.total_steps() << " steps, mode " << rc.train.mode;
  if (resume) out << ", resumed after step " << exp.steps_done();
  if (init) out << ", initialised from " << o.init_file;
  out << "\n";
  for (size_t i = 0; i < names.size(); ++i)
    out << "  " << names[i] << ": " << counts[i] << " parameters\n";
  out << std::flush;

  if (!resume && rc.train.mode == "book" && is_language_kind(rc.data.kind)) {
    // The book's notebook prints the untrained model's loss over the whole loaders first (on a
    // large corpus: over eval_batches batches of each, and says so).
    const bool whole = exp.batches_per_epoch() > 0 && exp.batches_per_epoch() <= 100;
    if (!whole) out << "untrained losses over the first " << rc.train.eval_batches << " batches of each loader:\n";
    for (const auto& r : exp.evaluate_now(whole ? INT32_MAX : rc.train.eval_batches))
      out << "untrained " << r.variant << ": train loss " << std::fixed << std::setprecision(3)
          << r.train_loss << ", val loss " << r.val_loss << std::defaultfloat << "\n";
  }
  ProgressPrinter progress(out, err, exp.total_steps(), exp.steps_done(), names.size(), o.quiet);
  ObserverFanout fan({writer.get(), &progress});
  const auto& tc = rc.train;
  auto last_save = std::chrono::steady_clock::now();
  bool stopped = false;
  while (!exp.finished()) {
    if (g_stop.load() || (o.stop_at > 0 && exp.steps_done() >= o.stop_at)) {
      stopped = true;
      break;
    }
    exp.step(&fan);
    const auto now = std::chrono::steady_clock::now();
    const bool by_steps = tc.autosave_steps > 0 && exp.steps_done() % tc.autosave_steps == 0;
    const bool by_time = tc.autosave_minutes > 0 &&
                         std::chrono::duration<double>(now - last_save).count() >= 60.0 * tc.autosave_minutes;
    if ((by_steps || by_time) && !exp.finished()) {
      save_run_state(*writer, exp);
      last_save = std::chrono::steady_clock::now();
    }
  }
  exp.save_checkpoints(dir);
  save_run_state(*writer, exp);  // a finished run can be extended: --resume with a larger train.steps
  if (stopped) {
    out << "Stopped after step " << exp.steps_done() << " of " << exp.total_steps() << " (" << fmt(progress.elapsed(), 1)
        << " s); checkpoints and training state saved. Continue with: qklab-cli train --resume " << dir << "\n";
    return g_stop.load() ? 130 : 0;
  }
  const auto halted = exp.halted();
  if (!halted.empty()) {
    out << "Finished in " << fmt(progress.elapsed(), 1) << " s with " << halted.size() << " variant(s) halted by the "
        << "divergence guard (" << run_files::kHalted << "); run folder " << dir << "\n";
    return 3;
  }
  out << "Finished in " << fmt(progress.elapsed(), 1) << " s; run folder " << dir << "\n";
  return 0;
}

int cmd_presets(bool as_json, const std::string& dump, std::ostream& out) {
  if (!dump.empty()) {
    out << config_to_json(preset_config(dump)).dump(2) << "\n";
    return 0;
  }
  size_t width = 0;  // the longest name and two spaces: every description starts in one column
  for (const auto& p : presets()) width = std::max(width, p.name.size() + 2);
  for (const auto& p : presets()) {
    if (as_json) continue;
    out << std::left << std::setw(static_cast<int>(width)) << p.name << p.description << "\n";
  }
  if (as_json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& p : presets()) j.push_back({{"name", p.name}, {"description", p.description}});
    out << j.dump(2) << "\n";
  }
  return 0;
}

int cmd_forward(const std::string& checkpoint, const std::string& ids_json, const std::string& out_path,
                int generate, std::ostream& out, bool lens) {
  if (generate < 0) throw Error("forward: --generate: expected a number of tokens >= 0, got " + std::to_string(generate));
  LoadedModel lm = load_model(checkpoint);
  if (generate > 0 && !lm.config.model.causal)
    throw Error("forward: --generate: " + checkpoint + " is an encoder (model.causal = false): its outputs are labels "
                "per position, not next-token predictions to continue from");
  const nlohmann::json j = parse_json(read_file_bytes(ids_json, "token-id file"), ids_json);
  if (!j.is_array() || j.empty() || !j[0].is_array())
    throw Error(ids_json + ": expected a JSON list of lists of token ids, e.g. [[1, 2, 3]]");
  const size_t T = j[0].size();
  std::vector<int64_t> flat;
  for (size_t b = 0; b < j.size(); ++b) {
    if (!j[b].is_array() || j[b].size() != T || T == 0)
      throw Error(ids_json + ": row " + std::to_string(b) + ": every row needs the same non-zero length " +
                  std::to_string(T));
    for (const auto& v : j[b]) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= lm.config.model.vocab_size)
        throw Error(ids_json + ": row " + std::to_string(b) + ": expected ids in [0, " +
                    std::to_string(lm.config.model.vocab_size) + "), got " + v.dump());
      flat.push_back(v.get<int64_t>());
    }
  }
  if (static_cast<int>(T) > lm.config.model.context_length)
    throw Error(ids_json + ": sequences of length " + std::to_string(T) + " exceed the model's context_length " +
                std::to_string(lm.config.model.context_length));
  auto ids = torch::tensor(flat, torch::kInt64).view({static_cast<int64_t>(j.size()), static_cast<int64_t>(T)});
  const auto& mc = lm.config.model;
  const double lens_bytes = 4.0 * double(mc.n_layers) * (mc.n_heads + 1) * double(j.size()) * double(T) * mc.vocab_size;
  if (lens && lens_bytes > 4e9)
    throw Error("forward: --lens: logit_lens and head_logits would take " + std::to_string(int64_t(lens_bytes / 1e9)) +
                " GB (L·(H+1)·B·T·V floats); expected fewer or shorter rows in " + ids_json);
  lm.model->eval();
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> attn;
  auto logits = lm.model->forward(ids, &attn);  // (B, T, V)
  TensorFile f;
  f.tensors.emplace_back("logits", logits);
  for (size_t l = 0; l < attn.size(); ++l) f.tensors.emplace_back("attn." + std::to_string(l), attn[l]);
  if (lens) {  // lens.h: the stream after each block read out, and each head's direct logits
    const auto r = traced_run(*lm.model, ids);
    f.tensors.emplace_back("logit_lens", logit_lens(*lm.model, r).to(torch::kFloat32).contiguous());  // (L, B, T, V)
    f.tensors.emplace_back("head_logits", head_logits(*lm.model, r).to(torch::kFloat32).contiguous());  // (L, H, B, T, V)
  }
  f.metadata["qklab.variant"] = variant_name(lm.variant);
  std::vector<std::vector<int64_t>> continued;
  if (generate > 0) {  // greedy continuation of every row (the book's generate_text_simple)
    std::vector<int64_t> rows;
    for (size_t b = 0; b < j.size(); ++b) {
      std::vector<int64_t> row(flat.begin() + static_cast<long>(b * T), flat.begin() + static_cast<long>((b + 1) * T));
      continued.push_back(generate_ids(*lm.model, row, generate));
      rows.insert(rows.end(), continued.back().begin(), continued.back().end());
    }
    f.tensors.emplace_back("generated", torch::tensor(rows, torch::kInt64)
                                            .view({static_cast<int64_t>(j.size()), static_cast<int64_t>(T) + generate}));
  }
  save_safetensors(out_path, f);
  out << "wrote " << out_path << ": logits " << logits.sizes() << ", " << attn.size()
      << " attention tensors" << (lens ? ", logit_lens, head_logits" : "") << (generate > 0 ? ", generated (greedy)" : "")
      << "\n";
  for (const auto& row : continued) out << "generated: " << nlohmann::json(row).dump() << "\n";
  return 0;
}

int cmd_tokenize(const TokenizeOptions& o, std::ostream& out, std::ostream& err) {
  std::unique_ptr<Tokenizer> tok;
  const auto spec = parse_tokenizer_spec(o.tokenizer, "tokenize: --tokenizer");
  switch (spec.kind) {
    case TokenizerSpec::Kind::Gpt2:
      if (o.encoder.empty() || o.vocab.empty())
        throw Error("tokenize: --tokenizer gpt2 needs --encoder encoder.json and --vocab vocab.bpe");
      tok = std::make_unique<Gpt2Tokenizer>(o.encoder, o.vocab);
      break;
    case TokenizerSpec::Kind::Bpe: tok = std::make_unique<BpeTokenizer>(BpeTokenizer::load(spec.file)); break;
    case TokenizerSpec::Kind::Char: break;  // built from the text below
  }
  const std::string text = read_text_file(o.text_file);
  if (!tok) tok = std::make_unique<CharTokenizer>(CharTokenizer::from_corpus(text));
  PrepProgress prep(err);
  const auto t0 = std::chrono::steady_clock::now();
  auto ids = encode_chunked(*tok, text, [&](const std::string& s, int64_t d, int64_t t) { prep(s, d, t); });
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  out << o.text_file << ": " << ids.size() << " tokens (" << tok->kind() << ", vocabulary "
      << tok->vocab_size() << ", " << fmt(text.size() / std::max(secs, 1e-9) / 1e6, 2) << " MB/s)\n";
  if (!o.ids_out.empty()) write_file_atomic(o.ids_out, nlohmann::json(ids).dump() + "\n");
  return 0;
}

int cmd_prepare(const PrepareOptions& o, std::ostream& out, std::ostream& err) {
  PrepProgress prep(err);
  const auto r = prepare_tokens(o, [&](const std::string& s, int64_t d, int64_t t) { prep(s, d, t); });
  out << o.out_dir << ": " << r.train_tokens << " training + " << r.val_tokens << " validation tokens ("
      << r.tokenizer << ", vocabulary " << r.vocab_size << ", " << r.dtype << ") from " << o.inputs.size()
      << (o.inputs.size() == 1 ? " file, " : " files, ") << fmt(r.input_bytes / 1e6, 2) << " MB in "
      << fmt(r.seconds, 2) << " s (" << fmt(r.input_bytes / std::max(r.seconds, 1e-9) / 1e6, 1) << " MB/s on "
      << r.threads << (r.threads == 1 ? " thread" : " threads") << ")\n"
      << "train on it: qklab-cli train --set data.kind=tokens --set data.path=" << o.out_dir << "\n";
  return 0;
}

int cmd_bpe_train(const std::string& text_file, int vocab_size, const std::string& out_path,
                  std::ostream& out, std::ostream& err) {
  const std::string text = read_text_file(text_file);
  PrepProgress prep(err, /*bytes=*/false);
  auto tok = BpeTokenizer::train(text, vocab_size, [&](int64_t d, int64_t t) { prep("merging", d, t); });
  tok.save(out_path);
  auto ids = tok.encode(text);
  if (tok.vocab_size() < vocab_size)
    out << "note: stopped at " << tok.vocab_size() << ": no pair of tokens occurs twice any more\n";
  out << "wrote " << out_path << ": vocabulary " << tok.vocab_size() << ", " << text_file << " encodes to "
      << ids.size() << " tokens (" << fmt(double(text.size()) / ids.size(), 2) << " bytes/token)\n";
  return 0;
}

int cmd_convert(const std::string& to, const std::string& in, const std::string& out_path, int rank,
                std::ostream& out) {
  Variant target;
  try {
    target = parse_variant(to);
  } catch (const Error& e) {
    throw Error(std::string("convert: --to: ") + e.what());
  }
  LoadedModel lm = load_model(in);
  const int d = lm.config.model.emb_dim;
  if (rank < 0 || rank > d)
    throw Error("convert: --rank: expected 0 (= what holds the source exactly) to " + std::to_string(d) + ", got " +
                std::to_string(rank));
  if (target == lm.variant && rank == 0)
    throw Error(in + ": the checkpoint is already " + variant_name(target) + " (give --rank to truncate it)");
  // The target's query/key size: --rank, else the smallest that holds the source's forms exactly.
  const int r = rank > 0 ? rank : static_cast<int>(std::min<int64_t>(d, form_rank_bound(lm.variant, lm.config.model)));
  ExperimentConfig cfg = lm.config;
  cfg.model.qk_head_dim = r;
  cfg.variants = {target};
  GPTModel dst = convert_model(*lm.model, target, r);
  // How close the target's forms are to the source's: 0 up to rounding where the target's family
  // holds them (e.g. standard -> merged), else the best approximation's relative Frobenius error.
  torch::NoGradGuard ng;
  double num = 0, den = 0;
  for (int l = 0; l < cfg.model.n_layers; ++l) {
    auto a = lm.model->attention(l).bilinear_forms(), b = dst->attention(l).bilinear_forms();
    num += (a - b).pow(2).sum().item<double>();
    den += a.pow(2).sum().item<double>();
  }
  const double rel = den > 0 ? std::sqrt(num / den) : 0.0;
  save_model(out_path, dst, cfg, lm.tokenizer_json, lm.step);
  const bool exact = rel <= 1e3 * lm.model->attention(0).form_eps();
  out << "wrote " << out_path << ": " << variant_name(lm.variant) << " -> " << variant_name(target)
      << " (qk_head_dim " << r << ") for " << cfg.model.n_layers << "x" << cfg.model.n_heads << " heads; "
      << (exact ? "the same forms" : "the nearest forms in the target's family")
      << ", relative error " << csv_number(rel) << "\n";
  return 0;
}

}  // namespace qk
