// qklab-cli — headless QKLab: train, presets, forward, convert, analyze, report, tokenize, bpe-train.
// Argument parsing only; the commands live in engine/ (commands.cpp, analyze.cpp) and, for
// `report` (which draws with Qt, offscreen), in ui/report_command.cpp. User errors print one line
// and exit 2.
#include "blas_kernels.h"
#include <iostream>

#include <CLI/CLI.hpp>

#include "analyze.h"
#include "commands.h"
#include "prepare.h"
#include "presets.h"
#include "error.h"
#include "budget.h"
#include "sweep.h"
#include "sweep_cmd.h"
#ifdef QKLAB_WITH_REPORT
#include "report_command.h"
#endif

int main(int argc, char** argv) {
  qk::choose_blas_kernels();  // before any BLAS call (blas_kernels.h)
  CLI::App app{"qklab-cli — does a transformer need separate query and key matrices?"};
  app.require_subcommand(1);

  qk::TrainOptions topt;
  auto* train = app.add_subcommand("train", "train the experiment's variants side by side");
  train->add_option("--config", topt.config_path, "experiment JSON file");
  train->add_option("--preset", topt.preset, "built-in preset (see `presets`)");
  train->add_option("--set", topt.overrides, "override a key, e.g. --set train.lr=0.001")->take_all();
  train->add_option("--out", topt.out_dir, "run folder to write");
  train->add_option("--resume", topt.resume_dir, "continue this run folder from its saved training state");
  train->add_option("--init", topt.init_file, "start every variant from this checkpoint (merged: exact conversion)");
  train->add_option("--stop-at", topt.stop_at, "stop after this many steps, saving the state (resume later)");
  train->add_flag("--overwrite", topt.overwrite, "replace an earlier run in --out");
  train->add_flag("--quiet", topt.quiet, "no live progress line");
  std::string train_match;
  train->add_option("--match", train_match,
                    "params | flops: each variant after the first gets a model of the first's budget; one run folder "
                    "per variant (and seed) under --out, as a sweep");

  qk::SweepOptions sopt;
  auto* sw = app.add_subcommand("sweep", "run a grid of variants x config keys x seeds as run folders, then summarise");
  sw->add_option("spec", sopt.spec_path, "SWEEP.json (see README: Sweeps); omit to continue the sweep in --out");
  std::string sweep_presets;
  for (const auto& n : qk::sweep_preset_names()) sweep_presets += (sweep_presets.empty() ? "" : " | ") + n;
  sw->add_option("--preset", sopt.preset, "built-in sweep or study: " + sweep_presets);
  sw->add_option("--set", sopt.overrides, "KEY=VALUE added to the spec's set (e.g. data.path=DIR), recorded in the folder");
  sw->add_option("--scale", sopt.scale, "studies: every stage's steps x F (default 1; a larger machine: 4, 8, ...)");
  sw->add_option("--out", sopt.out_dir, "sweep folder (rerun the same command to finish an interrupted sweep)")->required();
  sw->add_option("--jobs", sopt.jobs, "runs at a time (default 1); threads per run = cores / jobs");
  sw->add_option("--threads", sopt.threads, "threads per run (default cores / jobs)");
  sw->add_option("--backend", sopt.backend, "local (default) | slurm (an sbatch job array, one task per run)");
  sw->add_flag("--wait", sopt.wait, "slurm: wait for the array to finish, then aggregate");
  sw->add_option("--slurm-args", sopt.slurm_args, "extra sbatch options, e.g. \"--partition=cpu --time=2:00:00\"");
  sw->add_option("--run-index", sopt.run_index, "internal: run one run of the sweep in --out")->group("");
  sw->add_option("--exe", sopt.exe, "internal: the qklab-cli that runs each run")->group("");

  qk::MatchOptions mopt;
  auto* mat = app.add_subcommand("match", "propose model sizes that give a variant the same parameters or FLOPs as another");
  mat->add_option("--preset", mopt.preset, "built-in preset (default: default)");
  mat->add_option("--config", mopt.config_path, "experiment JSON file");
  mat->add_option("--set", mopt.overrides, "override a key, e.g. --set model.emb_dim=128")->take_all();
  mat->add_option("--by", mopt.by, "params (default) | flops");
  mat->add_option("--reference", mopt.reference, "the variant whose budget is matched (default: the config's first)");
  mat->add_option("--target", mopt.target, "the variant to resize (default: every other variant of the config)");
  mat->add_option("--knob", mopt.knobs, "only these keys: model.qk_head_dim, model.n_layers, model.emb_dim, model.n_heads");

  bool as_json = false;
  std::string dump;
  auto* pre = app.add_subcommand("presets", "list the built-in presets");
  pre->add_flag("--json", as_json, "machine-readable list");
  pre->add_option("--dump", dump, "print one preset's full config as JSON");

  std::string ckpt, ids, out_path;
  auto* fwd = app.add_subcommand("forward", "one forward pass: logits and attention weights");
  fwd->add_option("--checkpoint", ckpt, "model .safetensors")->required();
  fwd->add_option("--ids", ids, "JSON list of lists of token ids")->required();
  fwd->add_option("--out", out_path, "output .safetensors (logits, attn.{layer})")->required();
  int fwd_generate = 0;
  bool fwd_lens = false;
  fwd->add_flag("--lens", fwd_lens,
                "also logit_lens (L,B,T,V: the stream after each block through the recomputed final LayerNorm and "
                "the unembedding) and head_logits (L,H,B,T,V: each head's write through the final LayerNorm frozen "
                "at the clean run and the unembedding)");
  fwd->add_option("--generate", fwd_generate, "also continue each row greedily by N tokens (printed, and 'generated')");

  qk::TokenizeOptions kopt;
  auto* tokc = app.add_subcommand("tokenize", "count tokens of a text file and write the ids as JSON");
  tokc->add_option("--tokenizer", kopt.tokenizer, "gpt2 | bpe:FILE | char")->capture_default_str();
  tokc->add_option("--encoder", kopt.encoder, "GPT-2 encoder.json");
  tokc->add_option("--vocab", kopt.vocab, "GPT-2 vocab.bpe");
  tokc->add_option("--ids-out", kopt.ids_out, "write the ids as a JSON list");
  tokc->add_option("text", kopt.text_file, "UTF-8 text file")->required();

  std::string bpe_text, bpe_out;
  int bpe_vocab = 1024;
  auto* prep = app.add_subcommand("prepare", "text files -> a tokens folder (train.bin, val.bin, meta.json) to train on");
  qk::PrepareOptions popt;
  prep->add_option("text", popt.inputs, "UTF-8 text files")->required();
  prep->add_option("--tokenizer", popt.tokenizer, "gpt2 | char | bpe:N (train a BPE of vocabulary N) | bpe:FILE")
      ->capture_default_str();
  prep->add_option("--val-fraction", popt.val_fraction, "the last part of every file kept for validation")
      ->capture_default_str();
  prep->add_option("--out", popt.out_dir, "the folder to write")->required();
  prep->add_option("--gpt2-dir", popt.gpt2_dir, "folder with gpt2-encoder.json and gpt2-vocab.bpe (default: the first text's)");
  prep->add_option("--threads", popt.threads, "encoding threads (0 = every core)")->capture_default_str();
  auto* bpe = app.add_subcommand("bpe-train", "train a byte-level BPE tokenizer on a text file");
  bpe->add_option("--vocab-size", bpe_vocab, "target vocabulary (>= 256)")->capture_default_str();
  bpe->add_option("--out", bpe_out, "tokenizer JSON to write")->required();
  bpe->add_option("text", bpe_text, "UTF-8 text file")->required();

  qk::AnalyzeOptions aopt;
  auto* ana = app.add_subcommand("analyze", "spectra, rank metrics, truncation curves, attention maps of a run");
  ana->add_option("run", aopt.run_dir, "run folder written by train")->required();
  ana->add_option("--checkpoint", aopt.checkpoints, "checkpoint(s) to analyse (default: the run's)");
  ana->add_option("--truncate", aopt.truncate, "ranks, e.g. 0,1,2,4,8 (default: 0, powers of 2, d)")->delimiter(',');
  ana->add_option("--prompt", aopt.prompt, "text for the attention maps (text runs)");
  ana->add_option("--layer", aopt.layer, "truncate only this layer's heads (default: every layer)");
  ana->add_option("--patch-clean", aopt.patch_clean, "text runs: the clean prompt for activation patching");
  ana->add_option("--patch-corrupt", aopt.patch_corrupt,
                  "text runs: the corrupted prompt (same number of tokens; the answer is the next token)");
  ana->add_option("--answer", aopt.answer,
                  "direct logit attribution of the prompt: the answer token (text: one token; tasks: an id)");
  ana->add_option("--wrong", aopt.wrong, "... against this token (default: the most likely other one)");
  ana->add_flag("--ablation", aopt.ablation,
                "also ablate and patch every head of a large model (L·H·d² > 4M: minutes to hours; small models always)");
  ana->add_option("--out", aopt.out_dir, "output folder (default RUN/analysis)");

#ifdef QKLAB_WITH_REPORT
  qkui::ReportCommandOptions ropt;
  std::string rsize;
  auto* rep = app.add_subcommand("report", "render the report (figures, tables, index.html) of a run folder, headless");
  rep->add_option("run", ropt.run_dir, "run folder written by train (or the GUI)")->required();
  rep->add_option("--out", ropt.out_dir, "report folder (default RUN/report)");
  rep->add_option("--prompt", ropt.prompt, "attention prompt (text) or validation sequence number (tasks)");
  rep->add_option("--seed", ropt.seed, "seed whose checkpoints are analysed (default: the first)");
  rep->add_option("--size", rsize, "PNG size in pixels, WIDTHxHEIGHT (default 1600x1000)");
  rep->add_option("--scale", ropt.scale, "pixels per point (default 2)");
#endif

  std::string to, cin, cout_path;
  int conv_rank = 0;
  auto* conv = app.add_subcommand("convert", "any variant -> any other: exact where the target holds the forms (standard -> merged), else the nearest");
  conv->add_option("--to", to, "target variant: standard | merged | shared-qk | merged-sym | merged-lowrank | identity-query")->required();
  conv->add_option("--rank", conv_rank, "the target's qk_head_dim r (0 = the source's rank bound: exact where the family allows)");
  conv->add_option("input", cin, "checkpoint to convert")->required();
  conv->add_option("output", cout_path, "checkpoint to write")->required();

  std::string imp_from, imp_in, imp_out;
  std::vector<std::string> imp_set;
  auto* imp = app.add_subcommand("import", "a Hugging Face GPT-2 model.safetensors or the book's .pth -> QKLab checkpoint");
  imp->add_option("--from", imp_from, "hf-gpt2 | pth")->required();
  imp->add_option("--set", imp_set, "what a .pth does not record, e.g. --set model.n_heads=12")->take_all();
  imp->add_option("input", imp_in, "model.safetensors (config.json beside it) or model.pth")->required();
  imp->add_option("output", imp_out, "QKLab checkpoint to write (.safetensors)")->required();

  std::string exp_to, exp_in, exp_out;
  auto* exq = app.add_subcommand("export", "a checkpoint -> Hugging Face GPT-2 / the book's .pth; a run's metrics -> TensorBoard event file / CSVs");
  exq->add_option("--to", exp_to, "hf-gpt2 | pth | tensorboard | tensorboard-csv")->required();
  exq->add_option("input", exp_in, "checkpoint (.safetensors), or a run folder for tensorboard, tensorboard-csv")->required();
  exq->add_option("output", exp_out, "folder (hf-gpt2, tensorboard, tensorboard-csv) or .pth file")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (*train && !train_match.empty()) {
      if (!topt.resume_dir.empty() || !topt.init_file.empty() || topt.stop_at)
        throw qk::Error("train --match: runs a sweep folder; --resume, --init and --stop-at do not apply "
                        "(run `qklab-cli sweep --out DIR` to continue it)");
      qk::parse_match_by(train_match);
      qk::ExperimentConfig cfg = topt.config_path.empty() ? qk::preset_config(topt.preset.empty() ? "default" : topt.preset)
                                                          : qk::load_config_file(topt.config_path);
      for (const auto& s : topt.overrides) qk::apply_override(cfg, s);
      qk::validate_config(cfg, topt.config_path.empty() ? "preset" : topt.config_path);
      if (cfg.variants.size() < 2) throw qk::Error("train --match: needs two or more variants (the first is the reference)");
      qk::SweepOptions so;
      so.out_dir = topt.out_dir;
      so.spec_text = qk::match_sweep_json(cfg, train_match);
      so.spec_source = "train --match";
      return qk::cmd_sweep(so, std::cout, std::cerr);
    }
    if (*sw) return qk::cmd_sweep(sopt, std::cout, std::cerr);
    if (*mat) return qk::cmd_match(mopt, std::cout);
    if (*train) {
      qk::install_stop_signals();
      return qk::cmd_train(topt, std::cout, std::cerr);
    }
    if (*pre) return qk::cmd_presets(as_json, dump, std::cout);
    if (*fwd) return qk::cmd_forward(ckpt, ids, out_path, fwd_generate, std::cout, fwd_lens);
    if (*imp) return qk::cmd_import(imp_from, imp_in, imp_out, imp_set, std::cout);
    if (*exq) return qk::cmd_export(exp_to, exp_in, exp_out, std::cout);
    if (*conv) return qk::cmd_convert(to, cin, cout_path, conv_rank, std::cout);
    if (*ana) return qk::cmd_analyze(aopt, std::cout, std::cerr);
#ifdef QKLAB_WITH_REPORT
    if (*rep) {
      if (!rsize.empty()) {
        const auto x = rsize.find('x');
        try {
          if (x == std::string::npos) throw std::invalid_argument("x");
          ropt.width = std::stoi(rsize.substr(0, x));
          ropt.height = std::stoi(rsize.substr(x + 1));
        } catch (const std::exception&) {
          throw qk::Error("--size: expected WIDTHxHEIGHT in pixels, e.g. 1600x1000, got '" + rsize + "'");
        }
      }
      return qkui::cmd_report(ropt, std::cout, std::cerr);
    }
#endif
    if (*tokc) return qk::cmd_tokenize(kopt, std::cout, std::cerr);
    if (*prep) return qk::cmd_prepare(popt, std::cout, std::cerr);
    if (*bpe) return qk::cmd_bpe_train(bpe_text, bpe_vocab, bpe_out, std::cout, std::cerr);
  } catch (const qk::Error& e) {
    std::cerr << "qklab-cli: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "qklab-cli: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
