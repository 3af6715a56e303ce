// QKLab engine — the run folder (see run_dir.h): file names, the writer, and the readers.
#include "run_dir.h"

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <sstream>

#include <nlohmann/json.hpp>

#include "analysis.h"
#include "checkpoint.h"
#include "error.h"
#include "fsutil.h"
#include "run_tensorboard.h"
#include "trainer.h"

namespace qk {
namespace fs = std::filesystem;

std::string checkpoint_file_name(Variant v, int seed, bool many_seeds) {
  return variant_name(v) + (many_seeds ? "-seed" + std::to_string(seed) : "") + ".safetensors";
}

std::vector<RunCheckpoint> find_checkpoints(const std::string& dir, const ExperimentConfig& cfg) {
  std::vector<RunCheckpoint> out;
  const bool many = cfg.train.seeds > 1;
  for (const auto v : cfg.variants)
    for (int k = 0; k < std::max(1, cfg.train.seeds); ++k) {
      const int seed = cfg.train.seed + k;
      const std::string path = dir + "/" + checkpoint_file_name(v, seed, many);
      if (fs::exists(path)) out.push_back({v, seed, path});
    }
  return out;
}

std::vector<int> RunContents::seeds() const {
  std::vector<int> s;
  for (const auto& c : checkpoints)
    if (std::find(s.begin(), s.end(), c.seed) == s.end()) s.push_back(c.seed);
  std::sort(s.begin(), s.end());
  return s;
}

RunWriter::RunWriter(const std::string& dir, bool overwrite) : dir_(dir) {
  if (!overwrite && fs::exists(dir + "/" + run_files::kConfig))
    throw Error(dir + ": already holds a run (config.json); choose another --out or pass --overwrite");
  make_dirs(dir);
  lock_ = std::make_unique<FolderLock>(dir);
}

RunWriter::RunWriter(const std::string& dir, const LogMarks& m, std::unique_ptr<FolderLock> held)
    : dir_(dir), lock_(std::move(held)) {
  if (!fs::exists(dir + "/" + run_files::kConfig)) throw Error(dir + ": not a run folder (no config.json)");
  if (!lock_) lock_ = std::make_unique<FolderLock>(dir);
  auto path = [&](const char* name) { return dir + "/" + name; };
  auto cut = [&](const char* name, int64_t bytes) -> std::string {
    if (!fs::exists(path(name))) {
      if (bytes > 0) throw Error(path(name) + ": missing, but the training state counts " + std::to_string(bytes) + " bytes of it");
      return "";
    }
    std::string text = read_file_bytes(path(name), "run log");
    if (static_cast<int64_t>(text.size()) < bytes)
      throw Error(path(name) + ": shorter (" + std::to_string(text.size()) + " bytes) than the training state records (" +
                  std::to_string(bytes) + ")");
    text.resize(static_cast<size_t>(bytes));
    write_file_atomic(path(name), text);
    return text;
  };
  resume_note_ = m.note;
  // metrics.csv: its first metrics_rows rows must be those the state recorded (their CRC-32); when
  // they are not (a damaged or cut file), the state's own copy of them is put back.
  const std::string mpath = path(run_files::kMetrics);
  std::string problem;
  std::string text = fs::exists(mpath) ? read_file_bytes(mpath, "metrics log") : "";
  size_t end = 0;
  for (int64_t line = 0; line <= m.metrics_rows; ++line) {
    const size_t nl = text.find('\n', end);
    if (nl == std::string::npos) {
      problem = text.empty() ? "missing" : "has fewer rows than the " + std::to_string(m.metrics_rows) + " the training state records";
      break;
    }
    end = nl + 1;
  }
  if (problem.empty()) {
    text.resize(end);
    if (!m.metrics_crc32.empty() && crc32_hex(crc32_of(text.data(), text.size())) != m.metrics_crc32)
      problem = "its first " + std::to_string(m.metrics_rows) + " rows differ from those the training state recorded (checksum)";
  }
  if (!problem.empty()) {
    const std::string copy = m.state_dir + "/" + run_files::kMetrics;
    std::string saved = !m.state_dir.empty() && fs::exists(copy) ? read_file_bytes(copy, "metrics copy") : "";
    if (m.metrics_crc32.empty() || saved.empty() || crc32_hex(crc32_of(saved.data(), saved.size())) != m.metrics_crc32)
      throw Error(mpath + ": " + problem + ", and the training state holds no good copy of it");
    text = saved;
    resume_note_ += (resume_note_.empty() ? "" : "\n") + mpath + ": " + problem + "; its " +
                    std::to_string(m.metrics_rows) + " rows were restored from the training state's copy";
  }
  write_file_atomic(mpath, text);
  rows_ = read_metrics_csv(mpath);
  metrics_text_ = text;
  divergence_ = cut(run_files::kDivergence, m.divergence_bytes);
  samples_ = cut(run_files::kSamples, m.samples_bytes);
  if (fs::exists(path(run_files::kHalted))) halted_ = read_file_bytes(path(run_files::kHalted), "halted log");
  const std::string spectra = path(run_files::kSpectraHistory);
  if (fs::exists(spectra)) {
    if (static_cast<int64_t>(fs::file_size(spectra)) < m.spectra_bytes)
      throw Error(spectra + ": shorter than the training state records (" + std::to_string(m.spectra_bytes) + " bytes)");
    fs::resize_file(spectra, static_cast<uintmax_t>(m.spectra_bytes));
  } else if (m.spectra_bytes > 0) {
    throw Error(spectra + ": missing, but the training state counts " + std::to_string(m.spectra_bytes) + " bytes of it");
  }
  spectra_bytes_ = m.spectra_bytes;
  spectra_started_ = spectra_bytes_ > 0;
  // The TensorBoard log is cut back like the others; a state saved before tb/ existed starts a new one.
  tb_ = RunTensorBoard::open_run(dir, load_config_file(path(run_files::kConfig)), m.tb_bytes);
}

RunWriter::~RunWriter() = default;

LogMarks RunWriter::marks() const {
  int64_t tb = -1;
  if (tb_) {
    tb_->flush();  // the state records the log as it is on disk
    tb = tb_->bytes();
  }
  LogMarks m{static_cast<int64_t>(rows_.size()), static_cast<int64_t>(divergence_.size()), spectra_bytes_,
             static_cast<int64_t>(samples_.size()), tb};
  m.metrics_crc32 = crc32_hex(crc32_of(metrics_text_.data(), metrics_text_.size()));
  return m;
}

void RunWriter::write_config(const ExperimentConfig& cfg) {
  write_file_atomic(dir_ + "/" + run_files::kConfig, config_to_json(cfg).dump(2) + "\n");
  if (!tb_) tb_ = RunTensorBoard::open_run(dir_, cfg, -1);
}

void RunWriter::on_step(const StepRecord& s) {
  if (tb_) tb_->on_step(s);
}

void RunWriter::write_text(const std::string& name, const std::string& text) {
  write_file_atomic(dir_ + "/" + name, text);
}

void RunWriter::on_eval(const EvalRecord& r) {
  rows_.push_back(r);
  metrics_text_ = metrics_csv(rows_);
  write_file_atomic(dir_ + "/" + run_files::kMetrics, metrics_text_);
  if (tb_) tb_->on_eval(r);
}

void RunWriter::on_sample(const SampleRecord& s) {
  samples_ += sample_line(s);
  write_file_atomic(dir_ + "/" + run_files::kSamples, samples_);
}

void RunWriter::on_divergence(const DivergenceRecord& d) {
  const std::string row = divergence_csv({d});
  divergence_ += divergence_.empty() ? row : row.substr(row.find('\n') + 1);
  write_file_atomic(dir_ + "/" + run_files::kDivergence, divergence_);
  if (tb_) tb_->on_divergence(d);
}

void RunWriter::on_spectra(const SpectraRecord& s) {
  // Append-only log (it grows with the run); a new run folder starts it afresh.
  const std::string path = dir_ + "/" + run_files::kSpectraHistory;
  std::ofstream out(path, spectra_started_ ? std::ios::app : std::ios::trunc);
  if (!out) throw Error(path + ": cannot write (" + free_space_text(path) + ")");
  std::string text = spectra_history_csv({s});
  if (spectra_started_) text.erase(0, text.find('\n') + 1);
  spectra_started_ = true;
  out << text;
  out.flush();
  if (!out)
    throw Error(path + ": write failed: " + std::strerror(errno ? errno : EIO) + " (" + free_space_text(path) +
                "); a resume cuts it back to the saved state");
  spectra_bytes_ += static_cast<int64_t>(text.size());
  if (tb_) tb_->on_spectra(s);
}

namespace {

std::string state_dir(const std::string& dir, const char* suffix = "") {
  return dir + "/" + run_files::kState + suffix;
}

// Where a complete state may be, newest first: state/, or state.old/ when a save was cut off
// between its two renames (save_run_state).
constexpr const char* kCompleteStates[] = {"", ".old"};

// The folder holding the newest complete state.
std::string complete_state(const std::string& dir) {
  for (const char* suffix : kCompleteStates)
    if (fs::exists(state_dir(dir, suffix) + "/state.json")) return state_dir(dir, suffix);
  return "";
}

}  // namespace

void save_run_state(const RunWriter& writer, const Experiment& exp) {
  const std::string dir = writer.dir();
  const std::string partial = state_dir(dir, ".partial"), cur = state_dir(dir), old = state_dir(dir, ".old");
  std::error_code ec;
  fs::remove_all(partial, ec);
  const LogMarks m = writer.marks();
  try {
    exp.save_state(partial, {{"metrics_rows", m.metrics_rows},
                             {"divergence_bytes", m.divergence_bytes},
                             {"spectra_bytes", m.spectra_bytes},
                             {"samples_bytes", m.samples_bytes},
                             {"tb_bytes", m.tb_bytes},
                             {"metrics_crc32", m.metrics_crc32}});
    write_file_atomic(partial + "/" + run_files::kMetrics, writer.metrics_text());
  } catch (const Error&) {  // a full disk: the complete states stay; the partial one goes
    fs::remove_all(partial, ec);
    throw;
  }
  // The state before stays as state.old/: the fallback when this one is found damaged.
  fs::remove_all(old, ec);
  if (fs::exists(cur)) fs::rename(cur, old);
  fs::rename(partial, cur);
}

void check_disk_space(const std::string& dir, const Experiment& exp, double available) {
  // QKLAB_DISK_GUARD=off: no estimate up front (tests/cli/test_disk_full.sh meets the full disk itself).
  if (const char* g = std::getenv("QKLAB_DISK_GUARD"); g && std::string(g) == "off") return;
  if (available < 0) {
    std::error_code ec;
    const auto sp = fs::space(dir, ec);
    if (ec) return;
    available = static_cast<double>(sp.available);
  }
  double params = 0;
  for (auto n : exp.parameter_counts()) params += static_cast<double>(n);
  const double bytes = params * (exp.config().model.dtype == "float64" ? 8 : 4) * 7;
  if (bytes > available) {
    std::ostringstream ss;
    ss << std::fixed << std::setprecision(2) << dir << ": the run's checkpoints and training state need about " << bytes / 1e9
       << " GB, the file system has " << available / 1e9 << " GB free; choose another --out or free space";
    throw Error(ss.str());
  }
}

bool has_run_state(const std::string& dir) { return !complete_state(dir).empty(); }

int64_t run_state_step(const std::string& dir) {
  // state/, then state.old/: a run still writing may rename state/ to state.old/ (and then remove
  // it) between a look and a read, so a folder that vanishes is skipped, not an error.
  for (const char* suffix : kCompleteStates) {
    const std::string f = state_dir(dir, suffix) + "/state.json";
    if (!fs::exists(f)) continue;
    try {
      return nlohmann::json::parse(read_file_bytes(f, "training state")).value("step", int64_t{-1});
    } catch (const nlohmann::json::exception&) {
      continue;
    } catch (const Error&) {
      continue;
    }
  }
  return -1;
}

namespace {

LogMarks load_one_state(const std::string& s, Experiment& exp) {
  const nlohmann::json note = exp.load_state(s);
  auto get = [&](const char* k) -> int64_t {
    if (!note.contains(k) || !note[k].is_number_integer() || note[k].get<int64_t>() < 0)
      throw Error(s + "/state.json: note." + k + ": expected a non-negative integer");
    return note[k].get<int64_t>();
  };
  // tb_bytes: absent in states saved before the TensorBoard log existed (then tb/ starts afresh).
  int64_t tb = -1;
  if (note.contains("tb_bytes")) {
    if (!note["tb_bytes"].is_number_integer()) throw Error(s + "/state.json: note.tb_bytes: expected an integer");
    tb = note["tb_bytes"].get<int64_t>();
  }
  LogMarks m{get("metrics_rows"), get("divergence_bytes"), get("spectra_bytes"), get("samples_bytes"), tb};
  if (note.contains("metrics_crc32") && note["metrics_crc32"].is_string()) m.metrics_crc32 = note["metrics_crc32"];
  m.state_dir = s;
  return m;
}

}  // namespace

LogMarks load_run_state(const std::string& dir, Experiment& exp) {
  std::vector<std::string> states;
  for (const char* suffix : kCompleteStates)
    if (fs::exists(state_dir(dir, suffix) + "/state.json")) states.push_back(state_dir(dir, suffix));
  if (states.empty())
    throw Error(dir + ": no training state to resume from (state/state.json); it is written when a run stops, "
                "finishes, pauses in the GUI, and every train.autosave_steps steps / train.autosave_minutes minutes");
  std::string problems;
  for (const auto& s : states) {
    try {
      LogMarks m = load_one_state(s, exp);  // a state that fails leaves `exp` as it was
      if (!problems.empty())
        m.note = problems + "; resumed from " + s + ", the state saved before it (step " +
                 std::to_string(exp.steps_done()) + ")";
      return m;
    } catch (const Error& e) {
      problems += (problems.empty() ? "" : "; and ") + std::string(e.what());
    }
  }
  throw Error(problems);
}

void RunWriter::on_halt(const HaltRecord& h) {
  halted_ += h.message + "\n";
  write_file_atomic(dir_ + "/" + run_files::kHalted, halted_);
}

std::string sample_line(const SampleRecord& s) {
  return "[" + s.variant + " epoch " + std::to_string(s.epoch) + " step " + std::to_string(s.step) + "] " + s.text + "\n";
}

std::string divergence_csv(const std::vector<DivergenceRecord>& rows) {
  std::string out = "step,seed,from,to,kl\n";
  for (const auto& d : rows)
    out += std::to_string(d.step) + "," + std::to_string(d.seed) + "," + d.from + "," + d.to + "," + csv_number(d.kl) + "\n";
  return out;
}

std::string spectra_history_csv(const std::vector<SpectraRecord>& rows) {
  std::string out = "step,variant,seed,layer,head,index,sigma\n";
  for (const auto& s : rows)
    for (const auto& h : s.heads)
      for (size_t i = 0; i < h.sigma.size(); ++i)
        out += std::to_string(s.step) + "," + s.variant + "," + std::to_string(s.seed) + "," + std::to_string(h.layer) +
               "," + std::to_string(h.head) + "," + std::to_string(i) + "," + csv_number(h.sigma[i]) + "\n";
  return out;
}

std::string csv_number(double v) {
  if (std::isnan(v)) return "";
  std::ostringstream ss;
  ss << std::setprecision(9) << v;
  return ss.str();
}

std::string csv_text(const std::string& t) {
  std::string s = "\"";
  for (char c : t) {
    if (c == '"') s += "\"\"";
    else if (static_cast<unsigned char>(c) < 0x20) s += ' ';
    else s += c;
  }
  return s + "\"";
}

std::string csv_row(std::initializer_list<std::string> cells) {
  std::string s;
  for (const auto& c : cells) s += (s.empty() ? "" : ",") + c;
  return s + "\n";
}

std::string metrics_csv(const std::vector<EvalRecord>& rows) {
  std::string out = "step,tokens_seen,wall_time_s,variant,train_loss,val_loss,train_acc,val_acc,seed\n";
  for (const auto& r : rows)
    out += std::to_string(r.step) + "," + std::to_string(r.tokens_seen) + "," + csv_number(r.wall_time_s) +
           "," + r.variant + "," + csv_number(r.train_loss) + "," + csv_number(r.val_loss) + "," +
           csv_number(r.train_acc) + "," + csv_number(r.val_acc) + "," + std::to_string(r.seed) + "\n";
  return out;
}


std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      cells.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      cells.emplace_back();
    } else if (c != '\r') {
      cells.back() += c;
    }
  }
  return cells;
}

namespace {

// Rows of a CSV file whose first line starts with `header`; calls f(cells, line number) per row and
// turns a bad number into one line naming the file and the line.
template <class F> void for_csv_rows(const std::string& path, const std::string& header, F&& f) {
  std::istringstream in(read_file_bytes(path, "CSV file"));
  std::string line;
  std::getline(in, line);
  if (line.rfind(header, 0) != 0) throw Error(path + ": line 1: expected the header " + header);
  int lineno = 1;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    try {
      f(split_csv_line(line));
    } catch (const std::invalid_argument&) {
      throw Error(path + ": line " + std::to_string(lineno) + ": expected numbers, got '" + line + "'");
    } catch (const std::out_of_range&) {
      throw Error(path + ": line " + std::to_string(lineno) + ": too few columns or a number out of range");
    }
  }
}

}  // namespace

std::vector<EvalRecord> read_metrics_csv(const std::string& path) {
  std::vector<EvalRecord> rows;
  for_csv_rows(path, "step,tokens_seen,wall_time_s,variant,train_loss,val_loss", [&](std::vector<std::string> f) {
    while (f.size() < 9) f.emplace_back();
    auto d = [](const std::string& s) { return s.empty() ? kNaN : std::stod(s); };
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
  });
  return rows;
}

std::vector<DivergenceRecord> read_divergence_csv(const std::string& path) {
  std::vector<DivergenceRecord> out;
  for_csv_rows(path, "step,seed,from,to,kl", [&](const std::vector<std::string>& f) {
    out.push_back({std::stoll(f.at(0)), std::stoi(f.at(1)), f.at(2), f.at(3), f.at(4).empty() ? kNaN : std::stod(f.at(4))});
  });
  return out;
}

std::vector<SpectraRecord> read_spectra_history_csv(const std::string& path) {
  // step,variant,seed,layer,head,index,sigma -> one record per (step, variant, seed)
  std::vector<SpectraRecord> out;
  for_csv_rows(path, "step,variant,seed,layer,head,index,sigma", [&](const std::vector<std::string>& f) {
    const int64_t step = std::stoll(f.at(0));
    const int seed = std::stoi(f.at(2)), layer = std::stoi(f.at(3)), head = std::stoi(f.at(4));
    const double sigma = std::stod(f.at(6));
    if (out.empty() || out.back().step != step || out.back().variant != f[1] || out.back().seed != seed)
      out.push_back({0, f[1], seed, step, {}});
    auto& heads = out.back().heads;
    if (heads.empty() || heads.back().layer != layer || heads.back().head != head) heads.push_back({layer, head, {}, 0});
    heads.back().sigma.push_back(sigma);
  });
  for (auto& r : out)
    for (auto& h : r.heads)
      h.effective_rank = rank_metrics(h.sigma, h.sigma.size(), h.sigma.size(), 1e-7).effective_rank;
  return out;
}

RunContents read_checkpoint_as_run(const std::string& file) {
  const LoadedModel lm = load_model(file);
  RunContents rc;
  rc.config = lm.config;
  rc.config.variants = {lm.variant};
  rc.checkpoints.push_back({lm.variant, lm.config.train.seed, file});
  return rc;
}

RunContents read_run(const std::string& dir) {
  const std::string config = dir + "/" + run_files::kConfig;
  if (!fs::is_directory(dir)) throw Error(dir + ": not a run folder (no such directory)");
  if (!fs::exists(config)) throw Error(dir + ": not a run folder (no config.json)");
  RunContents rc;
  rc.config = load_config_file(config);
  auto path = [&](const char* name) { return dir + "/" + name; };
  if (fs::exists(path(run_files::kMetrics))) rc.metrics = read_metrics_csv(path(run_files::kMetrics));
  if (fs::exists(path(run_files::kDivergence))) rc.divergence = read_divergence_csv(path(run_files::kDivergence));
  if (fs::exists(path(run_files::kSpectraHistory)))
    rc.spectra = read_spectra_history_csv(path(run_files::kSpectraHistory));
  if (fs::exists(path(run_files::kSamples))) rc.samples = read_file_bytes(path(run_files::kSamples), "samples file");
  if (fs::exists(path(run_files::kHalted))) rc.halted = read_file_bytes(path(run_files::kHalted), "halted log");
  rc.checkpoints = find_checkpoints(dir, rc.config);
  return rc;
}

}  // namespace qk
