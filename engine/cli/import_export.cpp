// QKLab engine — qklab-cli import / export: models from and to Hugging Face GPT-2 and the book's
// .pth (io/interchange.h), and a run's metrics as a TensorBoard event file or TensorBoard-style CSVs.
#include <filesystem>
#include <map>
#include <ostream>

#include "commands.h"
#include "error.h"
#include "fsutil.h"
#include "interchange.h"
#include "run_dir.h"
#include "run_tensorboard.h"

namespace qk {
namespace fs = std::filesystem;

int cmd_import(const std::string& from, const std::string& in, const std::string& out_path,
               const std::vector<std::string>& overrides, std::ostream& out) {
  LoadedModel lm;
  if (from == "hf-gpt2") {
    if (!overrides.empty()) throw Error("import --from hf-gpt2: the model's config.json says everything; drop --set");
    lm = import_hf_gpt2(in);
  } else if (from == "pth") {
    ExperimentConfig base;
    bool heads = false;
    for (const auto& s : overrides) {
      apply_override(base, s);
      heads = heads || s.rfind("model.n_heads=", 0) == 0;
    }
    lm = import_pth(in, base, heads);
  } else {
    throw Error("import: --from: expected 'hf-gpt2' or 'pth', got '" + from + "'");
  }
  save_model(out_path, lm.model, lm.config, lm.tokenizer_json, 0);
  const auto& m = lm.config.model;
  out << "wrote " << out_path << ": " << variant_name(lm.variant) << " model, " << m.n_layers << " layers, d = " << m.emb_dim
      << ", " << m.n_heads << " heads, context " << m.context_length << ", vocabulary " << m.vocab_size
      << (m.qkv_bias ? ", qkv_bias" : "") << ", " << parameter_count(*lm.model) << " parameters"
      << (lm.tokenizer_json.empty() ? "" : ", with the GPT-2 tokenizer") << "\n";
  return 0;
}

namespace {

// One CSV per series (variant [and seed] × metric) in the shape of TensorBoard's scalar download.
int export_tensorboard(const std::string& run_dir, const std::string& out_dir, std::ostream& out) {
  const RunContents rc = read_run(run_dir);
  if (rc.metrics.empty()) throw Error(run_dir + "/metrics.csv: no evaluations to export");
  const bool many = rc.config.train.seeds > 1;
  std::map<std::string, std::string> files;
  auto add = [&](const std::string& series, const EvalRecord& r, double v) {
    if (std::isnan(v)) return;
    auto& text = files[series];
    if (text.empty()) text = "Wall time,Step,Value\n";
    text += csv_number(r.wall_time_s) + "," + std::to_string(r.step) + "," + csv_number(v) + "\n";
  };
  for (const auto& r : rc.metrics) {
    const std::string who = r.variant + (many ? "-seed" + std::to_string(r.seed) : "");
    add(who + "_train_loss", r, r.train_loss);
    add(who + "_val_loss", r, r.val_loss);
    add(who + "_train_acc", r, r.train_acc);
    add(who + "_val_acc", r, r.val_acc);
  }
  for (const auto& d : rc.divergence) {
    auto& text = files["kl_" + d.from + "_to_" + d.to + (many ? "-seed" + std::to_string(d.seed) : "")];
    if (text.empty()) text = "Wall time,Step,Value\n";
    double wall = kNaN;  // the later variant's clock at that evaluation
    for (const auto& r : rc.metrics)
      if (r.step == d.step && r.variant == d.to && r.seed == d.seed) wall = r.wall_time_s;
    text += csv_number(wall) + "," + std::to_string(d.step) + "," + csv_number(d.kl) + "\n";
  }
  make_dirs(out_dir);
  for (const auto& [name, text] : files) write_file_atomic(out_dir + "/" + name + ".csv", text);
  out << "wrote " << files.size() << " series to " << out_dir << " (Wall time,Step,Value; wall time = the variant's "
      << "training seconds since the run started)\n";
  return 0;
}

}  // namespace

int cmd_export(const std::string& to, const std::string& in, const std::string& out_path, std::ostream& out) {
  if (to == "tensorboard-csv") return export_tensorboard(in, out_path, out);
  if (to == "tensorboard") {
    const std::string file = export_run_tensorboard(in, out_path);
    out << "wrote " << file << " (TensorBoard event file: every evaluation, KL and effective rank of the run; "
        << "tensorboard --logdir " << out_path << ")\n";
    return 0;
  }
  if (to != "hf-gpt2" && to != "pth")
    throw Error("export: --to: expected 'hf-gpt2', 'pth', 'tensorboard' or 'tensorboard-csv', got '" + to + "'");
  const LoadedModel lm = load_model(in);
  if (to == "hf-gpt2") {
    export_hf_gpt2(lm, out_path);
    out << "wrote " << out_path << "/model.safetensors and config.json (Hugging Face GPT-2 layout"
        << (fs::exists(out_path + "/vocab.json") ? ", with vocab.json and merges.txt" : "") << ")\n";
  } else {
    export_pth(lm, out_path);
    out << "wrote " << out_path << ": the book's GPTModel state_dict (torch.load + load_state_dict)\n";
  }
  return 0;
}

}  // namespace qk
