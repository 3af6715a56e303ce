// QKLab engine — run folder writer and metrics.csv reader.
#include "run_dir.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "error.h"
#include "fsutil.h"

namespace qk {

RunWriter::RunWriter(const std::string& dir, bool overwrite) : dir_(dir) {
  if (!overwrite && std::filesystem::exists(dir + "/config.json"))
    throw Error(dir + ": already holds a run (config.json); choose another --out or pass --overwrite");
  make_dirs(dir);
}

void RunWriter::write_config(const ExperimentConfig& cfg) {
  write_file_atomic(dir_ + "/config.json", config_to_json(cfg).dump(2) + "\n");
}

void RunWriter::write_text(const std::string& name, const std::string& text) {
  write_file_atomic(dir_ + "/" + name, text);
}

void RunWriter::on_eval(const EvalRecord& r) {
  rows_.push_back(r);
  write_file_atomic(dir_ + "/metrics.csv", metrics_csv(rows_));
}

void RunWriter::on_sample(const SampleRecord& s) {
  samples_ += "[" + s.variant + " epoch " + std::to_string(s.epoch) + " step " +
              std::to_string(s.step) + "] " + s.text + "\n";
  write_file_atomic(dir_ + "/samples.txt", samples_);
}

void RunWriter::on_divergence(const DivergenceRecord& d) {
  if (divergence_.empty()) divergence_ = "step,seed,from,to,kl\n";
  divergence_ += std::to_string(d.step) + "," + std::to_string(d.seed) + "," + d.from + "," + d.to + "," + csv_number(d.kl) + "\n";
  write_file_atomic(dir_ + "/divergence.csv", divergence_);
}

void RunWriter::on_spectra(const SpectraRecord& s) {
  // Append-only log (it grows with the run); a new run folder starts it afresh.
  std::ofstream out(dir_ + "/spectra_history.csv", spectra_started_ ? std::ios::app : std::ios::trunc);
  if (!out) throw Error(dir_ + "/spectra_history.csv: cannot write");
  if (!spectra_started_) out << "step,variant,seed,layer,head,index,sigma\n";
  spectra_started_ = true;
  for (const auto& h : s.heads)
    for (size_t i = 0; i < h.sigma.size(); ++i)
      out << s.step << "," << s.variant << "," << s.seed << "," << h.layer << "," << h.head << "," << i << ","
          << csv_number(h.sigma[i]) << "\n";
}

std::string csv_number(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream ss;
  ss << std::setprecision(9) << v;
  return ss.str();
}

std::string metrics_csv(const std::vector<EvalRecord>& rows) {
  std::string out = "step,tokens_seen,wall_time_s,variant,train_loss,val_loss,train_acc,val_acc,seed\n";
  for (const auto& r : rows)
    out += std::to_string(r.step) + "," + std::to_string(r.tokens_seen) + "," + csv_number(r.wall_time_s) +
           "," + r.variant + "," + csv_number(r.train_loss) + "," + csv_number(r.val_loss) + "," +
           csv_number(r.train_acc) + "," + csv_number(r.val_acc) + "," + std::to_string(r.seed) + "\n";
  return out;
}

std::vector<EvalRecord> read_metrics_csv(const std::string& path) {
  std::istringstream in(read_file_bytes(path, "metrics file"));
  std::string line;
  std::getline(in, line);
  if (line.rfind("step,tokens_seen,wall_time_s,variant,train_loss,val_loss", 0) != 0)
    throw Error(path + ": line 1: expected the header step,tokens_seen,wall_time_s,variant,...");
  std::vector<EvalRecord> rows;
  int lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    std::vector<std::string> f;
    std::stringstream ss(line);
    for (std::string cell; std::getline(ss, cell, ',');) f.push_back(cell);
    while (f.size() < 9) f.emplace_back();
    auto d = [&](const std::string& s) { return s.empty() ? kNaN : std::stod(s); };
    try {
      EvalRecord r;
      r.step = std::stoll(f[0]);
      r.tokens_seen = std::stoll(f[1]);
      r.wall_time_s = d(f[2]);
      r.variant = f[3];
      r.train_loss = d(f[4]);
      r.val_loss = d(f[5]);
      r.train_acc = d(f[6]);
      r.val_acc = d(f[7]);
      r.seed = f[8].empty() ? 0 : std::stoi(f[8]);
      rows.push_back(r);
    } catch (const std::exception&) {
      throw Error(path + ": line " + std::to_string(lineno) + ": expected numbers, got '" + line + "'");
    }
  }
  return rows;
}

}  // namespace qk
