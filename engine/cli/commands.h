// QKLab engine — the headless commands behind `qklab-cli` (parsing lives in app/qklab_cli.cpp).
// Each returns the process exit code and reports to the given streams; user errors surface as
// qk::Error (exit 2 in the CLI).
#pragma once
#include <iosfwd>
#include <string>
#include <vector>

namespace qk {

struct TrainOptions {
  std::string config_path, preset, out_dir;
  std::vector<std::string> overrides;
  bool overwrite = false;
  bool quiet = false;
  std::string resume_dir;  // continue this run folder from its saved training state
  std::string init_file;   // every variant starts from this checkpoint (converted where needed)
  int64_t stop_at = 0;     // stop (saving the state) once this many steps are done; 0 = run to the end
};
// Ctrl+C / SIGTERM during cmd_train: finish the step, save checkpoints and state, exit 130.
void install_stop_signals();
int cmd_train(const TrainOptions& o, std::ostream& out, std::ostream& err);
int cmd_presets(bool as_json, const std::string& dump, std::ostream& out);
// --generate N: also continue every row greedily by N tokens ("generated", (B, T + N), and printed).
// lens: also logit_lens (L, B, T, V) and head_logits (L, H, B, T, V), lens.h.
int cmd_forward(const std::string& checkpoint, const std::string& ids_json, const std::string& out_path,
                int generate, std::ostream& out, bool lens = false);
struct TokenizeOptions {
  std::string tokenizer = "gpt2", encoder, vocab, ids_out, text_file;
};
int cmd_tokenize(const TokenizeOptions& o, std::ostream& out, std::ostream& err);
struct PrepareOptions;  // prepare.h
// Text files -> a tokens folder (train.bin, val.bin, meta.json) with a progress line (rate, ETA).
int cmd_prepare(const PrepareOptions& o, std::ostream& out, std::ostream& err);
int cmd_bpe_train(const std::string& text_file, int vocab_size, const std::string& out_path,
                  std::ostream& out, std::ostream& err);
// --to merged: exact. --to standard: from a merged checkpoint at rank r (0 = d), qk_head_dim = r.
int cmd_convert(const std::string& to, const std::string& in, const std::string& out_path, int rank,
                std::ostream& out);

// --from hf-gpt2 (model.safetensors with config.json beside it) | pth (the book's state_dict;
// `overrides` supply model.n_heads and what else the file does not record) -> a QKLab checkpoint.
int cmd_import(const std::string& from, const std::string& in, const std::string& out_path,
               const std::vector<std::string>& overrides, std::ostream& out);
// --to hf-gpt2 (IN checkpoint -> OUT folder) | pth (-> OUT file) | tensorboard-csv (IN run folder -> OUT folder).
int cmd_export(const std::string& to, const std::string& in, const std::string& out_path, std::ostream& out);

}  // namespace qk
