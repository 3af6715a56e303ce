// QKLab engine — a run folder's TensorBoard log (see run_tensorboard.h).
#include "run_tensorboard.h"

#include <chrono>
#include <filesystem>

#include "error.h"
#include "run_dir.h"

namespace qk {
namespace fs = std::filesystem;

std::unique_ptr<RunTensorBoard> RunTensorBoard::open_run(const std::string& dir, const ExperimentConfig& cfg,
                                                         int64_t keep_bytes) {
  const std::string tb = dir + "/" + run_files::kTensorBoard;
  std::string file = keep_bytes >= 0 ? find_event_file(tb, "qklab") : "";
  if (file.empty() && keep_bytes > 0)
    throw Error(tb + ": no event file, but the training state counts " + std::to_string(keep_bytes) + " bytes of one");
  if (file.empty()) {
    std::error_code ec;
    fs::remove_all(tb, ec);
    file = tb + "/" + tensorboard_file_name(unix_time_now(), "qklab");
    keep_bytes = -1;
  }
  return std::make_unique<RunTensorBoard>(std::make_unique<EventFileWriter>(file, keep_bytes), cfg);
}

RunTensorBoard::RunTensorBoard(std::unique_ptr<EventFileWriter> w, const ExperimentConfig& cfg)
    : w_(std::move(w)), many_seeds_(cfg.train.seeds > 1) {}

double RunTensorBoard::now() const { return fixed_clock_ >= 0 ? fixed_clock_ : unix_time_now(); }

std::string RunTensorBoard::who(const std::string& variant, int seed) const {
  return variant + (many_seeds_ ? "-seed" + std::to_string(seed) : "");
}

void RunTensorBoard::on_step(const StepRecord& s) {
  const std::string p = who(s.variant, s.seed) + "/";
  const double t = now();
  w_->scalar(p + "step_loss", s.step + 1, t, s.loss);
  w_->scalar(p + "lr", s.step + 1, t, s.lr);
  w_->scalar(p + "grad_norm", s.step + 1, t, s.grad_norm);
  auto it = tokens_.find(s.lane);
  const int64_t before = it == tokens_.end() ? -1 : it->second;
  tokens_[s.lane] = s.tokens_seen;
  if (before >= 0 && s.step_seconds > 0)
    w_->scalar(p + "tokens_per_s", s.step + 1, t, static_cast<double>(s.tokens_seen - before) / s.step_seconds);
}

void RunTensorBoard::on_eval(const EvalRecord& r) {
  const std::string p = who(r.variant, r.seed) + "/";
  const double t = fixed_clock_ >= 0 ? fixed_clock_ + r.wall_time_s : unix_time_now();
  w_->scalar(p + "train_loss", r.step, t, r.train_loss);
  w_->scalar(p + "val_loss", r.step, t, r.val_loss);
  w_->scalar(p + "train_acc", r.step, t, r.train_acc);
  w_->scalar(p + "val_acc", r.step, t, r.val_acc);
  w_->flush();  // an evaluation is a natural point for TensorBoard to see the run
}

void RunTensorBoard::on_divergence(const DivergenceRecord& d) {
  w_->scalar(who(d.to, d.seed) + "/kl_from_" + d.from, d.step, now(), d.kl);
}

void RunTensorBoard::on_spectra(const SpectraRecord& s) {
  std::map<int, std::pair<double, int>> by_layer;  // layer -> (sum, heads)
  for (const auto& h : s.heads) {
    by_layer[h.layer].first += h.effective_rank;
    by_layer[h.layer].second += 1;
  }
  const std::string p = who(s.variant, s.seed) + "/effective_rank/L";
  for (const auto& [layer, sum] : by_layer) w_->scalar(p + std::to_string(layer), s.step, now(), sum.first / sum.second);
}

std::string export_run_tensorboard(const std::string& run_dir, const std::string& out_dir) {
  const RunContents rc = read_run(run_dir);
  if (rc.metrics.empty()) throw Error(run_dir + "/" + run_files::kMetrics + ": no evaluations to export");
  // The run started when its config was written: that file's age, back from now.
  std::error_code ec;
  const auto mtime = fs::last_write_time(run_dir + "/" + run_files::kConfig, ec);
  double start = unix_time_now();
  if (!ec) start -= std::chrono::duration<double>(fs::file_time_type::clock::now() - mtime).count();
  fs::create_directories(out_dir, ec);
  if (!find_event_file(out_dir, "qklab").empty())
    throw Error(out_dir + ": already holds an event file; give an empty or new folder");
  const std::string file = out_dir + "/" + tensorboard_file_name(start, "qklab");
  RunTensorBoard tb(std::make_unique<EventFileWriter>(file), rc.config);
  tb.set_clock(start);
  for (const auto& r : rc.metrics) tb.on_eval(r);
  for (const auto& d : rc.divergence) {
    double wall = 0;  // the later variant's clock at that evaluation
    for (const auto& r : rc.metrics)
      if (r.step == d.step && r.variant == d.to && r.seed == d.seed) wall = r.wall_time_s;
    tb.set_clock(start + wall);
    tb.on_divergence(d);
  }
  for (const auto& s : rc.spectra) {
    tb.set_clock(start);
    tb.on_spectra(s);
  }
  tb.flush();
  return file;
}

}  // namespace qk
