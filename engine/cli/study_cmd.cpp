// QKLab engine — `qklab-cli sweep` of a study (study.h): each stage resolved (an earlier stage's
// best values filled in, steps scaled) and run as a sweep folder DIR/STAGE by cmd_sweep, in order.
// Stopped or interrupted anywhere, the same command goes on where it stopped: finished stages and
// runs are skipped, an interrupted run resumes, and a tuned stage is resolved again to the same spec.
#include <filesystem>
#include <iomanip>

#include <nlohmann/json.hpp>

#include "error.h"
#include "format.h"
#include "run_dir.h"
#include "fsutil.h"
#include "study.h"
#include "sweep.h"
#include "sweep_cmd.h"

namespace qk {

namespace fs = std::filesystem;
using json = nlohmann::json;

int run_study(const SweepOptions& o, const json& study, const std::string& source, std::ostream& out, std::ostream& err) {
  if (o.out_dir.empty()) throw Error("sweep: --out DIR is required");
  const std::string dir = fs::absolute(o.out_dir).lexically_normal().string();
  const StudySpec s = parse_study(study, source);
  const double scale = o.scale > 0 ? o.scale : 1.0;
  if (!(scale <= 1000) || !(scale * 1000 >= 1)) throw Error("sweep: --scale: expected 0.001 to 1000");
  const json rec = {{"study", study}, {"scale", scale}};
  const fs::path sf = fs::path(dir) / study_files::kStudy;
  std::unique_ptr<FolderLock> lock;
  if (fs::exists(sf)) {
    lock = std::make_unique<FolderLock>(dir);
    const json had = parse_json(read_file_bytes(sf.string(), "study"), sf.string());
    if (had != rec)
      throw Error(dir + ": holds a different study or scale (its study.json differs from " + source + " at scale " +
                  csv_number(scale) + "); give another --out, or run `qklab-cli sweep --out " + o.out_dir +
                  "` to continue that one");
  } else {
    if (fs::exists(dir) && !fs::is_empty(dir))
      throw Error(dir + ": exists and is not a study folder (no study.json); give an empty or new --out");
    fs::create_directories(dir);
    lock = std::make_unique<FolderLock>(dir);
    write_file_atomic(sf.string(), rec.dump(2) + "\n");
  }
  out << "study '" << s.name << "': " << s.stages.size() << " stages (";
  for (size_t i = 0; i < s.stages.size(); ++i) out << (i ? ", " : "") << s.stages[i].name;
  out << "), scale " << csv_number(scale) << ", folder " << dir << "\n";
  std::vector<TunedValue> tuned;
  for (size_t i = 0; i < s.stages.size(); ++i) {
    const auto& st = s.stages[i];
    const std::string sd = (fs::path(dir) / st.name).string();
    const std::string text = study_stage_json(s, i, dir, scale, &tuned);
    if (!st.tune_from.empty()) {
      write_tuned_csv(dir, tuned);
      out << "stage " << st.name << ": each variant at its best " << st.tune_key << " of stage " << st.tune_from << ":";
      for (const auto& t : tuned)
        if (t.stage == st.tune_from && t.key == st.tune_key)
          out << " " << t.variant << " " << t.value << " (" << std::fixed << std::setprecision(3) << t.mean << ")";
      out << "\n";
    }
    out << "== stage " << i + 1 << "/" << s.stages.size() << ": " << st.name << std::endl;  // seen at once in a log file
    SweepOptions so = o;
    so.spec_text = text;
    so.spec_source = source + ": stage " + st.name;
    so.spec_path.clear();
    so.preset.clear();
    so.overrides.clear();
    so.scale = 0;
    so.out_dir = sd;
    const int code = cmd_sweep(so, out, err);
    if (code != 0) {
      err << "study stopped in stage " << st.name << " (exit " << code << "); the same command goes on from there\n";
      return code;
    }
    const auto runs = expand_sweep(load_sweep_spec((fs::path(sd) / sweep_files::kSpec).string()));
    size_t done = 0;
    for (const auto& r : runs) done += sweep_run_finished(sd, r);
    if (done < runs.size()) {  // a Slurm array submitted without --wait
      out << "stage " << st.name << ": " << done << " of " << runs.size()
          << " runs finished; run the same command again when the job array is done to go on\n";
      return 0;
    }
  }
  out << "study finished: " << dir << " (qklab-cli report " << o.out_dir << ")\n";
  return 0;
}

}  // namespace qk
