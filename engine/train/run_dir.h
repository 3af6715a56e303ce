// QKLab engine — the run folder: the one place that names, writes and reads its files.
//   config.json      the fully resolved experiment
//   metrics.csv      step,tokens_seen,wall_time_s,variant,train_loss,val_loss,train_acc,val_acc,seed
//   divergence.csv   step,seed,from,to,kl          (KL of each variant to the first, fair mode)
//   spectra_history.csv  step,variant,seed,layer,head,index,sigma   (train.spectra_every > 0)
//   samples.txt      greedy samples at epoch ends (text data)
//   tokenizer.json   the tokenizer (text data)
//   <variant>.safetensors, or <variant>-seed<N>.safetensors when train.seeds > 1
//   tb/events.out.tfevents.*  the same as it goes, for TensorBoard (run_tensorboard.h): per variant
//                    (and seed) train/val loss and accuracy, learning rate, gradient norm, tokens/s,
//                    KL to the first variant, effective rank per layer
//   state/           the full training state for exact resume (train_state.cpp), replaced whole:
//                    written as state.partial/, then renamed over state/ (state.old/ in between)
// Every file is written atomically (temporary file + rename), except the append-only spectra log.
#pragma once
#include <memory>
#include <initializer_list>
#include <string>
#include <vector>

#include "config.h"
#include "observer.h"

namespace qk {

namespace run_files {
constexpr const char* kConfig = "config.json";
constexpr const char* kMetrics = "metrics.csv";
constexpr const char* kDivergence = "divergence.csv";
constexpr const char* kSpectraHistory = "spectra_history.csv";
constexpr const char* kSamples = "samples.txt";
constexpr const char* kTokenizer = "tokenizer.json";
constexpr const char* kState = "state";
constexpr const char* kHalted = "halted.txt";  // one line per variant the divergence guard halted
constexpr const char* kTensorBoard = "tb";
}  // namespace run_files

// The checkpoint file name of one lane: "<variant>.safetensors", or "<variant>-seed<N>.safetensors"
// when the run repeats every variant over several seeds.
std::string checkpoint_file_name(Variant v, int seed, bool many_seeds);

struct RunCheckpoint {
  Variant variant = Variant::Standard;
  int seed = 0;
  std::string path;
};
// Every checkpoint the run's config names that exists, in config order (variant-major, then seed).
std::vector<RunCheckpoint> find_checkpoints(const std::string& dir, const ExperimentConfig& cfg);

// How far the run folder's logs had got when a training state was saved: on resume every log is
// cut back to this, so rows written after the state (before a crash or a stop) are not doubled.
struct LogMarks {
  int64_t metrics_rows = 0, divergence_bytes = 0, spectra_bytes = 0, samples_bytes = 0;
  int64_t tb_bytes = -1;  // the TensorBoard event file's size; -1: a state saved before tb/ existed
  std::string metrics_crc32;  // of metrics.csv's first metrics_rows rows ("" in older states)
  std::string state_dir;      // the state these marks came from (it holds a copy of metrics.csv)
  std::string note;           // what resuming had to repair, for the user ("" when nothing)
};

class Experiment;
class RunTensorBoard;

class FolderLock;  // fsutil.h

class RunWriter : public TrainerObserver {
 public:
  // Both take the folder's lock first (FolderLock): a folder another process writes is refused
  // before anything in it changes.
  // Creates `dir`; refuses a folder that already holds a run unless overwrite is set.
  RunWriter(const std::string& dir, bool overwrite);
  // Continues the run in `dir`: the logs are cut back to `marks` and then appended to. `held`: the
  // folder's lock when the caller took it before reading the state (a second lock of the same
  // folder in one process would refuse itself).
  RunWriter(const std::string& dir, const LogMarks& marks, std::unique_ptr<FolderLock> held = {});
  ~RunWriter() override;
  LogMarks marks() const;
  const std::string& metrics_text() const { return metrics_text_; }  // metrics.csv as last written
  // What resuming had to repair (a damaged state or metrics.csv), one line each; "" when nothing.
  const std::string& resume_note() const { return resume_note_; }
  void write_config(const ExperimentConfig& cfg);
  void write_text(const std::string& name, const std::string& text);
  void on_eval(const EvalRecord& r) override;
  void on_sample(const SampleRecord& s) override;
  void on_divergence(const DivergenceRecord& d) override;
  void on_spectra(const SpectraRecord& s) override;
  void on_halt(const HaltRecord& h) override;
  void on_step(const StepRecord& s) override;
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
  std::vector<EvalRecord> rows_;
  std::string metrics_text_, resume_note_;
  std::string samples_, divergence_, halted_;
  bool spectra_started_ = false;
  int64_t spectra_bytes_ = 0;
  std::unique_ptr<RunTensorBoard> tb_;   // opened by write_config (it needs the variants and seeds)
  std::unique_ptr<FolderLock> lock_;     // one writer per run folder (fsutil.h), taken first
};

// Writes the experiment's full training state into dir/state (with a copy of metrics.csv),
// replacing an earlier one whole; the one before stays as state.old/, the fallback for a damaged one.
void save_run_state(const RunWriter& writer, const Experiment& exp);
// Restores the newest complete state of the run folder `dir` into `exp` (built from the run's
// config); returns the log marks to resume the writer with. A state that fails its checksums or
// cannot be read gives way to state.old/, and the marks' note says so. Throws naming the folder
// when there is none ("train.autosave_* or a stop writes one"), or every state's problem.
LogMarks load_run_state(const std::string& dir, Experiment& exp);
bool has_run_state(const std::string& dir);
// The disk guard: refuses (one line) to start a run whose checkpoints and training state — about
// 7× the weights: a checkpoint, the state's weights and two AdamW moments, and a second state
// while one replaces the other — do not fit the free space of dir's file system.
void check_disk_space(const std::string& dir, const Experiment& exp, double available = -1);
int64_t run_state_step(const std::string& dir);  // steps the saved state has done; -1 without one

// Everything a run folder holds, read back (for replay, analysis and reports).
struct RunContents {
  ExperimentConfig config;
  std::vector<EvalRecord> metrics;
  std::vector<DivergenceRecord> divergence;
  std::vector<SpectraRecord> spectra;
  std::string samples;  // samples.txt as written
  std::string halted;   // halted.txt: the divergence guard's lines
  std::vector<RunCheckpoint> checkpoints;
  std::vector<int> seeds() const;  // seeds that have checkpoints, ascending
};
RunContents read_run(const std::string& dir);  // throws qk::Error naming the file
// One checkpoint file (a run's, a conversion's or an import's) seen as a run with no curves: its
// config, and itself as the only checkpoint. The GUI and the inspector open a model this way.
RunContents read_checkpoint_as_run(const std::string& file);

std::string sample_line(const SampleRecord& s);  // one samples.txt entry, newline-terminated
std::string metrics_csv(const std::vector<EvalRecord>& rows);
std::string divergence_csv(const std::vector<DivergenceRecord>& rows);
std::string spectra_history_csv(const std::vector<SpectraRecord>& rows);
std::string csv_number(double v);  // 9 significant digits; NaN -> empty cell
// A CSV cell for free text: quoted, inner quotes doubled, control bytes as spaces.
std::string csv_text(const std::string& t);
// Cells joined by commas, newline-terminated.
std::string csv_row(std::initializer_list<std::string> cells);
std::vector<EvalRecord> read_metrics_csv(const std::string& path);  // throws naming file and line
std::vector<DivergenceRecord> read_divergence_csv(const std::string& path);
std::vector<SpectraRecord> read_spectra_history_csv(const std::string& path);  // effective ranks filled in
// Splits one CSV line into cells; quoted cells may hold commas and doubled quotes (RFC 4180).
std::vector<std::string> split_csv_line(const std::string& line);

}  // namespace qk
