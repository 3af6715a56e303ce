// QKLab engine — `qklab-cli sweep` and `qklab-cli match`: run a sweep's runs as independent
// processes (--backend local, --jobs N) or as a Slurm job array (--backend slurm), skip what is
// finished, resume what was interrupted, and write the summary tables (sweep.h); propose budget-
// matched model sizes (budget.h).
#include "sweep_cmd.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "error.h"
#include "estimates.h"
#include "tokenizer_factory.h"
#include "format.h"
#include "fsutil.h"
#include "presets.h"
#include "run_dir.h"
#include "study.h"
#include "sweep.h"
#include "sweep_curves.h"
#include "sweep_tensorboard.h"
#include "variants.h"

namespace qk {

namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

std::atomic<bool> g_sweep_stop{false};
extern "C" void on_sweep_signal(int) { g_sweep_stop.store(true); }

std::string hms(double s) {
  if (!(s >= 0) || s > 1e7) return "?";
  const int t = static_cast<int>(s + 0.5);
  std::ostringstream o;
  o << t / 3600 << ":" << std::setw(2) << std::setfill('0') << (t / 60) % 60 << ":" << std::setw(2) << t % 60;
  return o.str();
}

std::string self_exe(const std::string& given) {
  if (!given.empty()) return fs::absolute(given).string();
  std::error_code ec;
  auto p = fs::read_symlink("/proc/self/exe", ec);
  if (ec) throw Error("sweep: cannot find the qklab-cli executable (/proc/self/exe): give --exe");
  // Rebuilt or upgraded while the sweep runs: the link names the old, deleted file; the runs
  // start the new one at the same path.
  std::string s = p.string();
  const std::string deleted = " (deleted)";
  if (s.size() > deleted.size() && s.compare(s.size() - deleted.size(), deleted.size(), deleted) == 0)
    s.resize(s.size() - deleted.size());
  return s;
}

// Steps the run has logged so far (metrics.csv's last step + 1), for the progress line.
int64_t logged_steps(const std::string& run_dir) {
  std::ifstream in(run_dir + "/" + run_files::kMetrics);
  std::string line, last;
  while (std::getline(in, line))
    if (!line.empty()) last = line;
  if (last.empty() || !std::isdigit(static_cast<unsigned char>(last[0]))) return 0;
  return std::atoll(last.c_str()) + 1;
}

int64_t total_steps(const SweepRun& r) { return std::max<int64_t>(1, r.config.train.steps); }

// One run, in this process: fresh, resumed from its saved state, or skipped when finished.
int run_one(const std::string& dir, const SweepRun& r, int threads, std::ostream& out, std::ostream& err) {
  const std::string rd = sweep_run_dir(dir, r);
  if (sweep_run_finished(dir, r)) {
    out << r.name << ": already finished\n";
    return 0;
  }
  TrainOptions o;
  o.quiet = true;
  if (threads > 0) {
    // The run's share of the cores: LibTorch gets it, OpenBLAS its mode's automatic count within it
    // (book mode's 2 on a 1-thread share would spin against the other jobs).
    TrainConfig t = r.config.train;
    t.threads = threads;
    const int blas = std::min(resolved_threads(t).second, threads);
    o.overrides.push_back("train.threads=" + std::to_string(threads));
    o.overrides.push_back("train.blas_threads=" + std::to_string(blas));
  }
  if (has_run_state(rd)) {
    o.resume_dir = rd;  // interrupted: continue exactly where its state was saved
    out << r.name << ": resuming from step " << run_state_step(rd) << "\n";
  } else {
    std::error_code ec;
    fs::remove_all(rd, ec);  // started but never saved a state: start it again
    const std::string cfg_path = (fs::path(dir) / sweep_files::kRuns / (r.name + ".json")).string();
    write_file_atomic(cfg_path, config_to_json(r.config).dump(2) + "\n");
    o.config_path = cfg_path;
    o.out_dir = rd;
  }
  const auto t0 = Clock::now();
  const int code = cmd_train(o, out, err);
  if (code == 0) {
    const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
    write_file_atomic(rd + "/" + sweep_files::kFinished,
                      json{{"wall_s", wall}, {"steps", run_state_step(rd)}}.dump() + "\n");
  }
  return code;
}

pid_t spawn(const std::string& exe, const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(exe.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw Error("sweep: fork failed");
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    execv(exe.c_str(), argv.data());
    const std::string msg = "qklab-cli sweep: cannot start " + exe + ": " + std::strerror(errno) + "\n";
    if (::write(2, msg.data(), msg.size()) < 0) {}
    _exit(127);
  }
  return pid;
}

struct Progress {
  const std::string& dir;
  const std::vector<SweepRun>& runs;
  Clock::time_point start = Clock::now();
  double start_fraction = -1;
  int start_finished = -1;  // runs finished before this invocation (not counted in its rate)
  bool tty = isatty(2);

  double fraction(const std::map<pid_t, size_t>& running) const {
    double done = 0, total = 0;
    for (const auto& r : runs) {
      total += double(total_steps(r));
      if (sweep_run_finished(dir, r)) done += double(total_steps(r));
    }
    for (const auto& [_, i] : running)
      if (!sweep_run_finished(dir, runs[i]))
        done += double(std::min(total_steps(runs[i]), logged_steps(sweep_run_dir(dir, runs[i]))));
    return total > 0 ? done / total : 1.0;
  }
  std::string line(const std::map<pid_t, size_t>& running, int finished) {
    const double f = fraction(running);
    if (start_fraction < 0) start_fraction = f;
    if (start_finished < 0) start_finished = finished;
    const double el = std::chrono::duration<double>(Clock::now() - start).count();
    const double rate = (f - start_fraction) / std::max(el, 1e-9);  // fraction per second
    std::ostringstream o;
    o << "sweep " << finished << "/" << runs.size() << " runs done, " << running.size() << " running, "
      << std::fixed << std::setprecision(0) << 100 * f << "% of steps, " << std::setprecision(2)
      << (el > 0 ? 60.0 * (finished - start_finished) / el : 0) << " runs/min, elapsed " << hms(el) << ", ETA "
      << (rate > 0 ? hms((1 - f) / rate) : "?");
    return o.str();
  }
};

int count_finished(const std::string& dir, const std::vector<SweepRun>& runs) {
  int n = 0;
  for (const auto& r : runs) n += sweep_run_finished(dir, r);
  return n;
}

int run_local(const std::string& dir, const std::vector<SweepRun>& runs, const SweepOptions& o, int threads,
              std::ostream& out, std::ostream& err) {
  const std::string exe = self_exe(o.exe);
  std::vector<size_t> pending;
  for (size_t i = 0; i < runs.size(); ++i)
    if (!sweep_run_finished(dir, runs[i])) pending.push_back(i);
  std::map<pid_t, size_t> running;
  std::map<pid_t, Clock::time_point> started;
  Progress prog{dir, runs};
  prog.start_fraction = prog.fraction({});  // the rate counts only this invocation's progress
  prog.start_finished = count_finished(dir, runs);
  size_t next = 0;
  int failed = 0;
  auto last_print = Clock::now() - std::chrono::hours(1);
  g_sweep_stop.store(false);
  struct sigaction sa {};
  sa.sa_handler = on_sweep_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {}, old_term {};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  while (true) {
    if (g_sweep_stop.load()) {
      for (const auto& [pid, _] : running) kill(pid, SIGTERM);  // each saves its state and exits 130
      for (const auto& [pid, _] : running) waitpid(pid, nullptr, 0);
      if (prog.tty) err << "\r\033[K";
      err << "sweep stopped: " << count_finished(dir, runs) << " of " << runs.size()
          << " runs finished; the same command finishes the rest (interrupted runs resume)\n";
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      return 130;
    }
    while (running.size() < size_t(std::max(1, o.jobs)) && next < pending.size()) {
      const size_t i = pending[next++];
      const std::string log = (fs::path(dir) / sweep_files::kRuns / (runs[i].name + ".log")).string();
      const pid_t pid = spawn(exe, {"sweep", "--run-index", std::to_string(i), "--threads", std::to_string(threads),
                                    "--out", dir}, log);
      running[pid] = i;
      started[pid] = Clock::now();
    }
    if (running.empty()) break;
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0 && running.count(pid)) {
      const size_t i = running[pid];
      running.erase(pid);
      const double secs = std::chrono::duration<double>(Clock::now() - started[pid]).count();
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      if (prog.tty) err << "\r\033[K";
      if (code == 0) {
        err << "  " << runs[i].name << " finished in " << std::fixed << std::setprecision(0) << secs << " s\n";
      } else {
        ++failed;
        err << "  " << runs[i].name << " failed (exit " << code << "): see " << dir << "/" << sweep_files::kRuns << "/"
            << runs[i].name << ".log\n";
      }
      err << (prog.tty ? "" : "") << prog.line(running, count_finished(dir, runs)) << (prog.tty ? "" : "\n");
      last_print = Clock::now();
      continue;
    }
    if (prog.tty && Clock::now() - last_print > std::chrono::seconds(1)) {
      err << "\r\033[K" << prog.line(running, count_finished(dir, runs)) << std::flush;
      last_print = Clock::now();
    } else if (!prog.tty && Clock::now() - last_print > std::chrono::seconds(60)) {  // a log file: once a minute
      err << prog.line(running, count_finished(dir, runs)) << "\n";
      last_print = Clock::now();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  if (prog.tty) err << "\r\033[K";
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  return failed ? 1 : 0;
}

std::string run_capture(const std::string& cmd, int* code) {
  std::string outp;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) throw Error("sweep: cannot run '" + cmd + "'");
  char buf[512];
  while (fgets(buf, sizeof buf, p)) outp += buf;
  const int st = pclose(p);
  *code = WIFEXITED(st) ? WEXITSTATUS(st) : 128;
  return outp;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

int run_slurm(const std::string& dir, const std::vector<SweepRun>& runs, const SweepOptions& o, int threads,
              std::ostream& out, std::ostream& err) {
  const std::string exe = self_exe(o.exe);
  std::string idx;
  for (size_t i = 0; i < runs.size(); ++i)
    if (!sweep_run_finished(dir, runs[i])) idx += (idx.empty() ? "" : ",") + std::to_string(i);
  if (idx.empty()) return 0;
  const fs::path sd = fs::path(dir) / "slurm";
  fs::create_directories(sd);
  std::ostringstream s;
  s << "#!/bin/bash\n"
    << "# QKLab sweep: one array task per unfinished run folder of " << dir << "\n"
    << "#SBATCH --job-name=qklab-sweep\n"
    << "#SBATCH --array=" << idx << (o.jobs > 0 ? "%" + std::to_string(o.jobs) : "") << "\n"
    << "#SBATCH --cpus-per-task=" << threads << "\n"
    << "#SBATCH --output=" << (sd / "task-%a.log").string() << "\n"
    << "exec " << shell_quote(exe) << " sweep --run-index \"$SLURM_ARRAY_TASK_ID\" --threads " << threads
    << " --out " << shell_quote(dir) << "\n";
  const std::string script = (sd / "sweep.sbatch").string();
  write_file_atomic(script, s.str());
  int code = 0;
  const std::string cmd = "sbatch --parsable " + o.slurm_args + " " + shell_quote(script) + " 2>&1";
  std::string job = run_capture(cmd, &code);
  while (!job.empty() && (job.back() == '\n' || job.back() == '\r')) job.pop_back();
  if (code != 0)
    throw Error("sweep --backend slurm: sbatch failed (exit " + std::to_string(code) + "): " +
                (job.empty() ? "is Slurm installed (Debian: slurm-client) and a controller running?" : job));
  const std::string id = job.substr(0, job.find(';'));
  out << "submitted Slurm job array " << id << " (" << std::count(idx.begin(), idx.end(), ',') + 1
      << " tasks): " << script << "\n";
  if (!o.wait) {
    out << "when it is done, run the same command again to aggregate (finished runs are skipped)\n";
    return 0;
  }
  Progress prog{dir, runs};
  prog.start_fraction = prog.fraction({});
  int last = -1;
  while (true) {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    int c = 0;
    const std::string q = run_capture("squeue -h -j " + shell_quote(id) + " -o %i 2>/dev/null", &c);
    const int fin = count_finished(dir, runs);
    if (fin != last) {
      err << prog.line({}, fin) << "\n";
      last = fin;
    }
    if (c == 0 && q.find_first_not_of(" \n") == std::string::npos) break;
  }
  return count_finished(dir, runs) == int(runs.size()) ? 0 : 1;
}

void print_aggregate(const std::string& dir, const SweepSpec& spec, std::ostream& out) {
  const auto t = read_csv_table((fs::path(dir) / sweep_files::kAggregate).string());
  out << "| variant |";
  for (const auto& [k, _] : spec.grid) out << " " << k << " |";
  out << " seeds | params | FLOPs/token (attention) | memory MB | steps | final val loss (mean ± std) | perplexity "
         "| final val acc | wall s |\n|---|";
  for (size_t i = 0; i < spec.grid.size(); ++i) out << "---|";
  out << "---|---|---|---|---|---|---|---|---|\n";
  auto get = [&](const std::vector<std::string>& r, const char* c) {
    const int i = t.column(c);
    return i < 0 ? std::string() : r[i];
  };
  auto fixed = [](const std::string& s, int p) {
    if (s.empty()) return std::string("—");
    std::ostringstream o;
    o << std::fixed << std::setprecision(p) << std::atof(s.c_str());
    return o.str();
  };
  for (const auto& r : t.rows) {
    out << "| " << get(r, "variant") << " |";
    for (const auto& [k, _] : spec.grid) out << " " << (get(r, k.c_str()).empty() ? "—" : get(r, k.c_str())) << " |";
    const std::string matched = get(r, "matched");
    out << " " << get(r, "seeds") << " | " << get(r, "params") << (matched.empty() ? "" : " (" + matched + ")") << " | "
        << fixed(get(r, "flops_per_token"), 0) << " (" << fixed(get(r, "attention_flops_per_token"), 0) << ") | "
        << fixed(std::to_string(std::atof(get(r, "memory_bytes").c_str()) / 1e6), 1) << " | " << get(r, "steps") << " | "
        << fixed(get(r, "final_val_loss_mean"), 3) << " ± " << fixed(get(r, "final_val_loss_std"), 3) << " | "
        << fixed(get(r, "final_val_ppl_mean"), 1) << " | " << fixed(get(r, "final_val_acc_mean"), 3) << " | " << fixed(get(r, "wall_s_mean"), 0) << " |\n";
  }
}

}  // namespace

int cmd_sweep(const SweepOptions& o, std::ostream& out, std::ostream& err) {
  if (o.out_dir.empty()) throw Error("sweep: --out DIR is required");
  const std::string dir = fs::absolute(o.out_dir).lexically_normal().string();
  const int threads = o.threads > 0 ? o.threads
                                    : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / std::max(1, o.jobs));
  if (o.run_index >= 0) {  // one run of an existing sweep folder (a local job or a Slurm array task)
    const auto spec = load_sweep_spec((fs::path(dir) / sweep_files::kSpec).string());
    const auto runs = expand_sweep(spec);
    if (size_t(o.run_index) >= runs.size())
      throw Error("sweep --run-index: " + std::to_string(o.run_index) + " is past the last run (" +
                  std::to_string(runs.size() - 1) + ")");
    install_stop_signals();
    return run_one(dir, runs[o.run_index], threads, out, err);
  }
  if (o.backend != "local" && o.backend != "slurm")
    throw Error("sweep: --backend: expected 'local' or 'slurm', got '" + o.backend + "'");
  if (o.jobs < 1 || o.jobs > 256) throw Error("sweep: --jobs: expected 1 to 256, got " + std::to_string(o.jobs));
  std::string text;
  std::string source;
  const fs::path spec_file = fs::path(dir) / sweep_files::kSpec;
  if (!o.spec_text.empty()) {
    text = o.spec_text;
    source = o.spec_source.empty() ? "sweep" : o.spec_source;
  } else if (!o.preset.empty()) {
    text = sweep_preset_json(o.preset);
    source = "sweep preset " + o.preset;
  } else if (!o.spec_path.empty()) {
    text = read_file_bytes(o.spec_path, "sweep spec");
    source = o.spec_path;
  } else if (fs::exists(spec_file)) {
    text = read_file_bytes(spec_file.string(), "sweep spec");  // `sweep --out DIR`: continue that sweep
    source = spec_file.string();
  } else if (is_study_dir(dir)) {  // `sweep --out DIR` of a study: continue it at its recorded scale
    const std::string sf = (fs::path(dir) / study_files::kStudy).string();
    const json rec = parse_json(read_file_bytes(sf, "study"), sf);
    if (!rec.is_object() || !rec.contains("study") || !rec.contains("scale") || !rec["scale"].is_number())
      throw Error(sf + ": expected {\"study\": …, \"scale\": F} (written by qklab-cli sweep)");
    SweepOptions so = o;
    if (so.scale <= 0) so.scale = rec["scale"].get<double>();
    if (!so.overrides.empty()) throw Error("sweep: --set changes a study; give it with the study's spec or preset");
    return run_study(so, rec["study"], sf, out, err);
  } else {
    throw Error("sweep: give a SWEEP.json, --preset NAME, or --out of an existing sweep folder");
  }
  {
    json j = parse_json(text, source);
    if (!o.overrides.empty()) {
      if (!j.is_object()) throw Error(source + ": expected a JSON object at top level");
      for (const auto& a : o.overrides) {
        const auto eq = a.find('=');
        if (eq == std::string::npos || eq == 0) throw Error("sweep: --set " + a + ": expected KEY=VALUE");
        json v;
        try {
          v = json::parse(a.substr(eq + 1));
        } catch (const json::exception&) {
          v = a.substr(eq + 1);  // a bare string, as train --set takes it
        }
        j["set"][a.substr(0, eq)] = v;
      }
      text = j.dump(2) + "\n";
    }
    if (is_study_json(j)) return run_study(o, j, source, out, err);
    if (o.scale > 0 && o.scale != 1.0) throw Error("sweep: --scale applies to studies (a spec with \"stages\")");
  }
  const SweepSpec spec = parse_sweep_spec(text, source);
  const auto runs = expand_sweep(spec);  // every run's config is validated before anything starts
  std::unique_ptr<FolderLock> lock;  // one sweep command per sweep folder (its runs lock their own)
  if (fs::exists(spec_file)) {
    lock = std::make_unique<FolderLock>(dir);
    const auto had = parse_json(read_file_bytes(spec_file.string(), "sweep spec"), spec_file.string());
    if (had != parse_json(text, source))
      throw Error(dir + ": holds a different sweep (its sweep.json differs from " + source +
                  "); give another --out, or run `qklab-cli sweep --out " + o.out_dir + "` to continue that one");
  } else {
    if (fs::exists(dir) && !fs::is_empty(dir))
      throw Error(dir + ": exists and is not a sweep folder (no sweep.json); give an empty or new --out");
    fs::create_directories(dir);
    lock = std::make_unique<FolderLock>(dir);
    write_file_atomic(spec_file.string(), text.back() == '\n' ? text : text + "\n");
  }
  fs::create_directories(fs::path(dir) / sweep_files::kRuns);
  const int before = count_finished(dir, runs);
  out << "sweep '" << spec.name << "': " << runs.size() << " runs (" << spec.variants.size() << " variants";
  for (const auto& [k, v] : spec.grid) out << " x " << v.size() << " " << k;
  out << " x " << spec.seeds.size() << " seeds), " << before << " already finished; " << o.jobs << " at a time, "
      << threads << " threads each, backend " << o.backend << std::endl;  // seen at once in a log file
  const auto t0 = Clock::now();
  int code = 0;
  if (o.backend == "local") code = run_local(dir, runs, o, threads, out, err);
  else code = run_slurm(dir, runs, o, threads, out, err);
  if (code == 130) return 130;
  const auto rows = summarize_sweep(dir, spec, runs);
  write_sweep_tables(dir, spec, rows);
  write_sweep_curves(dir, sweep_curves(dir, spec, runs));
  write_sweep_hparams(dir, spec, runs, rows);  // tensorboard --logdir DIR: the HParams table
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  out << rows.size() << " of " << runs.size() << " runs finished (" << std::fixed << std::setprecision(0) << wall
      << " s this time); " << dir << "/" << sweep_files::kSummary << ", " << dir << "/" << sweep_files::kAggregate << ", "
      << dir << "/" << sweep_files::kCurves << "\n";
  if (!rows.empty()) print_aggregate(dir, spec, out);
  if (rows.size() < runs.size() && !(o.backend == "slurm" && !o.wait)) return code ? code : 1;
  return code;
}

int cmd_match(const MatchOptions& o, std::ostream& out) {
  ExperimentConfig cfg;
  if (!o.config_path.empty() && !o.preset.empty()) throw Error("match: give either --config or --preset, not both");
  if (!o.config_path.empty()) cfg = load_config_file(o.config_path);
  else cfg = preset_config(o.preset.empty() ? "default" : o.preset);
  for (const auto& s : o.overrides) apply_override(cfg, s);
  validate_config(cfg, "match", /*need_data=*/false);
  const MatchBy by = parse_match_by(o.by);
  const Variant ref = o.reference.empty() ? cfg.variants.front() : parse_variant(o.reference);
  std::vector<Variant> targets;
  if (!o.target.empty()) targets = {parse_variant(o.target)};
  else
    for (auto v : cfg.variants)
      if (v != ref) targets.push_back(v);
  if (targets.empty()) throw Error("match: no variant to match against " + variant_name(ref) + " (give --target)");
  const int64_t vocab = cfg.model.vocab_size > 0 ? cfg.model.vocab_size : data_vocab_size(cfg.data);
  if (vocab <= 0) throw Error("match: the vocabulary of char-level text is known only after tokenizing: --set model.vocab_size=N");
  const auto re = estimate(cfg, ref, vocab);
  out << "reference " << variant_name(ref) << ": " << re.parameters << " parameters, " << std::fixed
      << std::setprecision(0) << re.flops_per_token << " training FLOPs/token (attention " << re.attention_flops_per_token
      << ")\n";
  for (auto t : targets) {
    const auto te = estimate(cfg, t, vocab);
    out << "\n" << variant_name(t) << " at the same size: " << te.parameters << " parameters, " << te.flops_per_token
        << " FLOPs/token; matched by " << match_by_name(by) << ":\n";
    out << "| change | parameters | FLOPs/token | attention FLOPs/token | memory MB | gap |\n|---|---|---|---|---|---|\n";
    for (const auto& p : propose_matches(cfg, ref, t, by, vocab, o.knobs)) {
      ExperimentConfig c = cfg;
      c.model = p.model;
      const auto e = estimate(c, t, vocab);
      const int now = knob_value(cfg.model, p.knob);
      out << "| --set " << p.knob << "=" << p.value << (p.value == now ? " (unchanged)" : "") << " | " << e.parameters << " | " << std::setprecision(0)
          << e.flops_per_token << " | " << e.attention_flops_per_token << " | " << std::setprecision(1)
          << e.memory_bytes / 1e6 << " | " << std::showpos << std::setprecision(2) << 100 * p.gap() << "%"
          << std::noshowpos << " |\n";
    }
  }
  return 0;
}

std::string match_sweep_json(const ExperimentConfig& cfg, const std::string& by) {
  json j;
  j["name"] = cfg.name + " (matched by " + by + ")";
  json c = config_to_json(cfg);
  j["variants"] = c["variants"];
  c.erase("variants");
  j["config"] = c;
  json seeds = json::array();
  for (int i = 0; i < cfg.train.seeds; ++i) seeds.push_back(cfg.train.seed + i);
  j["seeds"] = seeds;
  j["match"] = {{"by", by}, {"reference", variant_name(cfg.variants.front())}};
  return j.dump(2);
}

}  // namespace qk
