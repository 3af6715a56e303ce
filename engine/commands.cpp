// QKLab engine — headless commands: train, presets, forward, convert.
#include "commands.h"

#include <unistd.h>

#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>

#include "checkpoint.h"
#include "error.h"
#include "fsutil.h"
#include "presets.h"
#include "run_dir.h"
#include "safetensors.h"
#include "trainer.h"

namespace qk {
namespace {

std::string fmt_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "--:--";
  int t = static_cast<int>(s + 0.5);
  char buf[32];
  if (t >= 3600) std::snprintf(buf, sizeof buf, "%d:%02d:%02d", t / 3600, (t / 60) % 60, t % 60);
  else std::snprintf(buf, sizeof buf, "%d:%02d", t / 60, t % 60);
  return buf;
}

std::string fmt(double v, int prec = 3) {
  if (std::isnan(v)) return "-";
  std::ostringstream ss;
  ss << std::fixed << std::setprecision(prec) << v;
  return ss.str();
}

// Prints one line per evaluation and a live progress line (step, losses, tokens/s, ETA).
class ProgressPrinter : public TrainerObserver {
 public:
  ProgressPrinter(std::ostream& out, std::ostream& err, int64_t total, size_t lanes, bool quiet)
      : out_(out), err_(err), total_(total), lanes_(lanes), quiet_(quiet),
        tty_(isatty(fileno(stderr))), start_(std::chrono::steady_clock::now()) {}
  void on_step(const StepRecord& s) override {
    last_loss_[s.variant] = s.loss;
    tokens_ += s.tokens_seen - seen_[s.variant];
    seen_[s.variant] = s.tokens_seen;
    if (s.lane + 1 != static_cast<int>(lanes_) || quiet_) return;
    const double el = elapsed();
    const double rate = tokens_ / std::max(el, 1e-9);
    const double eta = el / (s.step + 1) * (total_ - s.step - 1);
    std::ostringstream line;
    line << "step " << (s.step + 1) << "/" << total_ << " (" << (100 * (s.step + 1) / total_) << "%)";
    for (auto& [v, l] : last_loss_) line << "  " << v << " " << fmt(l);
    line << "  " << fmt(rate, 0) << " tok/s  elapsed " << fmt_duration(el) << "  ETA " << fmt_duration(eta);
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
  int64_t total_;
  size_t lanes_;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point start_;
  std::map<std::string, double> last_loss_;
  std::map<std::string, int64_t> seen_;
  int64_t tokens_ = 0;
  double last_print_ = 0;
};

struct Fanout : TrainerObserver {
  std::vector<TrainerObserver*> obs;
  void on_step(const StepRecord& s) override { for (auto* o : obs) o->on_step(s); }
  void on_eval(const EvalRecord& r) override { for (auto* o : obs) o->on_eval(r); }
  void on_sample(const SampleRecord& s) override { for (auto* o : obs) o->on_sample(s); }
};

}  // namespace

int cmd_train(const TrainOptions& o, std::ostream& out, std::ostream& err) {
  ExperimentConfig cfg;
  if (!o.config_path.empty() && !o.preset.empty())
    throw Error("train: give either --config or --preset, not both");
  if (!o.config_path.empty()) cfg = load_config_file(o.config_path);
  else cfg = preset_config(o.preset.empty() ? "default" : o.preset);
  for (const auto& s : o.overrides) apply_override(cfg, s);
  validate_config(cfg, o.config_path.empty() ? "preset " + (o.preset.empty() ? std::string("default") : o.preset)
                                             : o.config_path);
  if (o.out_dir.empty()) throw Error("train: --out RUN_DIR is required");
  RunWriter writer(o.out_dir, o.overwrite);  // refuses to clobber an earlier run

  Experiment exp(cfg);
  const auto& rc = exp.config();
  writer.write_config(rc);
  if (!exp.tokenizer_json().empty()) writer.write_text("tokenizer.json", exp.tokenizer_json() + "\n");
  auto counts = exp.parameter_counts();
  auto names = exp.lane_names();
  out << "QKLab: " << rc.name << " — " << exp.total_steps() << " steps, mode " << rc.train.mode << "\n";
  for (size_t i = 0; i < names.size(); ++i)
    out << "  " << names[i] << ": " << counts[i] << " parameters\n";
  out << std::flush;

  if (rc.train.mode == "book" && rc.data.kind == "text") {
    // The book's notebook prints the untrained model's loss over the whole loaders first.
    for (const auto& r : exp.evaluate_now(INT32_MAX))
      out << "untrained " << r.variant << ": train loss " << std::fixed << std::setprecision(3)
          << r.train_loss << ", val loss " << r.val_loss << std::defaultfloat << "\n";
  }
  ProgressPrinter progress(out, err, exp.total_steps(), names.size(), o.quiet);
  Fanout fan;
  fan.obs = {&writer, &progress};
  exp.run(&fan, nullptr);
  exp.save_checkpoints(o.out_dir);
  out << "Finished in " << fmt(progress.elapsed(), 1) << " s; run folder " << o.out_dir << "\n";
  return 0;
}

int cmd_presets(bool as_json, const std::string& dump, std::ostream& out) {
  if (!dump.empty()) {
    out << config_to_json(preset_config(dump)).dump(2) << "\n";
    return 0;
  }
  for (const auto& p : presets()) {
    if (as_json) continue;
    out << std::left << std::setw(16) << p.name << p.description << "\n";
  }
  if (as_json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& p : presets()) j.push_back({{"name", p.name}, {"description", p.description}});
    out << j.dump(2) << "\n";
  }
  return 0;
}

int cmd_forward(const std::string& checkpoint, const std::string& ids_json, const std::string& out_path,
                std::ostream& out) {
  LoadedModel lm = load_model(checkpoint);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file_bytes(ids_json, "token-id file"));
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(ids_json + ": malformed JSON: " + e.what());
  }
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
  lm.model->eval();
  torch::NoGradGuard ng;
  std::vector<torch::Tensor> attn;
  auto logits = lm.model->forward(ids, &attn);  // (B, T, V)
  TensorFile f;
  f.tensors.emplace_back("logits", logits);
  for (size_t l = 0; l < attn.size(); ++l) f.tensors.emplace_back("attn." + std::to_string(l), attn[l]);
  f.metadata["qklab.variant"] = variant_name(lm.variant);
  save_safetensors(out_path, f);
  out << "wrote " << out_path << ": logits " << logits.sizes() << ", " << attn.size()
      << " attention tensors\n";
  return 0;
}

int cmd_convert(const std::string& to, const std::string& in, const std::string& out_path,
                std::ostream& out) {
  if (to != "merged") throw Error("convert: --to: expected 'merged', got '" + to + "'");
  LoadedModel lm = load_model(in);
  if (lm.variant != Variant::Standard)
    throw Error(in + ": convert --to merged needs a standard checkpoint, this one is " +
                variant_name(lm.variant));
  GPTModel merged = convert_to_merged(lm.model);
  save_model(out_path, merged, lm.config, lm.tokenizer_json, lm.step);
  out << "wrote " << out_path << ": merged model, S_h = W_key[h]^T W_query[h] for "
      << lm.config.model.n_layers << "x" << lm.config.model.n_heads << " heads\n";
  return 0;
}

}  // namespace qk
