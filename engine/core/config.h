// QKLab engine — experiment configuration.
// One ExperimentConfig describes a whole paired run: model size, data (synthetic task or text file),
// training schedule and which attention variants to train. Every field has a dotted key
// ("model.emb_dim", "train.lr", ...) used by JSON files, `--set key=value` overrides and the GUI.
// Parsing is strict: unknown keys and wrong types are errors that name the key.
// No torch in this header (the GUI includes it).
#pragma once
#include <cstdint>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace qk {

// Attention variants, numbered contiguously from 0 (variants.h lists and describes them).
enum class Variant { Standard, Merged, SharedQK, MergedSym, MergedLowRank, IdentityQuery, SharedKV, SharedQKV, MergedSeed };
// The list of variants, their names, labels and size formulas: variants.h.
std::string variant_name(Variant v);
Variant parse_variant(const std::string& s);  // throws qk::Error naming the value and the known names
inline std::ostream& operator<<(std::ostream& o, Variant v) { return o << variant_name(v); }

struct ModelConfig {
  int vocab_size = 0;        // 0 = taken from the tokenizer / task
  int context_length = 16;   // learned position embeddings
  int emb_dim = 64;          // d
  int n_heads = 4;           // H
  int n_layers = 2;
  double drop_rate = 0.0;    // embedding, attention-weight and shortcut dropout
  bool qkv_bias = false;
  int qk_head_dim = 0;       // standard variant: query/key size per head; 0 = emb_dim / n_heads
  std::string dtype = "float32";  // float32 | float64
  std::string value_proj = "linear";  // linear (W_V, the book's) | identity (W_V = I: no value weights)
  bool causal = true;        // false: an encoder (no mask: every position attends to every other)

  template <class V> void visit(V& v) {
    v("vocab_size", vocab_size); v("context_length", context_length); v("emb_dim", emb_dim);
    v("n_heads", n_heads); v("n_layers", n_layers); v("drop_rate", drop_rate);
    v("qkv_bias", qkv_bias); v("qk_head_dim", qk_head_dim); v("dtype", dtype);
    v("value_proj", value_proj); v("causal", causal);
  }
  int head_dim() const { return emb_dim / n_heads; }
  int effective_qk_head_dim() const { return qk_head_dim > 0 ? qk_head_dim : head_dim(); }
};

struct DataConfig {
  std::string kind = "recall";   // text | tokens | a task of names.h (copy … bilinear, enc-copy … enc-swap)
  // text corpus
  std::string path;               // UTF-8 text file
  std::string tokenizer = "char";   // char | gpt2 | bpe:FILE (a tokenizer trained by bpe-train)
  std::string char_unknown = "unk"; // char tokenizer, unseen characters: unk (map to <unk>) | error
  std::string gpt2_dir;             // holds gpt2-encoder.json + gpt2-vocab.bpe ("" = corpus's folder)
  int max_length = 0;             // 0 = model.context_length
  int stride = 0;                 // 0 = max_length
  double train_ratio = 0.9;       // split by characters, as in the book's chapter 5
  std::string cache_dir;           // where tokenised corpora are cached ("" = no cache)
  // synthetic tasks (tasks.h)
  int num_pairs = 4;               // recall, bilinear: key-value pairs per sequence
  int num_keys = 16;               // recall, bilinear: key vocabulary
  int num_values = 16;             // recall, bilinear: value vocabulary
  int num_queries = 1;             // recall, bilinear: queries per sequence
  int perm_seed = 0;               // bilinear: seed of the fixed permutation
  int seq_items = 8;               // copy, reverse, sort, induction: items per sequence
  int task_vocab = 16;             // copy, reverse, sort, induction: symbol vocabulary
  int modulus = 23;                // modadd
  int val_sequences = 512;        // held-out sequences for validation
  int train_sequences = 0;        // tasks: a fixed training set of N sequences seen train.epochs times (0 = endless)
  // samples (text data): greedy continuation of this prompt at each epoch's end
  std::string prompt = "Every effort moves you";
  int sample_tokens = 50;

  template <class V> void visit(V& v) {
    v("kind", kind); v("path", path); v("tokenizer", tokenizer); v("char_unknown", char_unknown);
    v("gpt2_dir", gpt2_dir); v("max_length", max_length); v("cache_dir", cache_dir);
    v("stride", stride); v("train_ratio", train_ratio); v("num_pairs", num_pairs);
    v("num_keys", num_keys); v("num_values", num_values); v("num_queries", num_queries);
    v("perm_seed", perm_seed); v("seq_items", seq_items); v("task_vocab", task_vocab);
    v("modulus", modulus); v("val_sequences", val_sequences); v("train_sequences", train_sequences);
    v("prompt", prompt); v("sample_tokens", sample_tokens);
  }
};

struct TrainConfig {
  int batch_size = 32;
  int steps = 800;            // optimiser steps (used when epochs == 0)
  int epochs = 0;             // passes over the training windows / data.train_sequences (overrides steps)
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.1;
  int warmup_steps = 0;       // linear warm-up from 0
  bool cosine = false;        // cosine decay to min_lr after warm-up
  double min_lr = 0.0;
  double grad_clip = 0.0;     // max global grad norm; 0 = off
  int eval_every = 25;        // steps between evaluations (the first is after step 0)
  int eval_batches = 5;       // batches of each split per evaluation
  int seed = 123;
  std::string mode = "fair";  // fair: shared weights copied, same data order | book: book's RNG order
  int seeds = 1;              // repeat every variant over seeds seed, seed+1, ... (mean and band)
  bool twin_start = false;    // merged variants start as the exact conversion of the standard one
  int spectra_every = 0;      // record every head's singular values every N steps (0 = off)
  bool track_kl = true;       // KL divergence of each variant to the first, at every evaluation
  int threads = 0;            // LibTorch intra-op threads; 0 = auto (resolved_threads)
  int blas_threads = 0;       // OpenBLAS threads; 0 = auto (resolved_threads)
  std::string device = "cpu"; // cpu | cuda
  // float32 | bf16: fair mode's linear layers (projections, feed-forward, output head) compute their
  // GEMMs in bfloat16 — fast on CPUs with avx512_bf16 or AMX; weights, gradients, AdamW, attention
  // scores and softmax stay float32
  std::string precision = "float32";
  int autosave_steps = 0;     // write the full training state every N steps (0 = off)
  double autosave_minutes = 10;  // ... and at least every M minutes of training (0 = off)

  template <class V> void visit(V& v) {
    v("batch_size", batch_size); v("steps", steps); v("epochs", epochs); v("lr", lr);
    v("beta1", beta1); v("beta2", beta2); v("eps", eps); v("weight_decay", weight_decay);
    v("warmup_steps", warmup_steps); v("cosine", cosine); v("min_lr", min_lr);
    v("grad_clip", grad_clip); v("eval_every", eval_every); v("eval_batches", eval_batches);
    v("seed", seed); v("mode", mode); v("seeds", seeds); v("twin_start", twin_start);
    v("spectra_every", spectra_every); v("track_kl", track_kl);
    v("threads", threads); v("blas_threads", blas_threads);
    v("device", device); v("precision", precision); v("autosave_steps", autosave_steps); v("autosave_minutes", autosave_minutes);
  }
};

struct ExperimentConfig {
  std::string name = "default";
  std::vector<Variant> variants{Variant::Standard, Variant::Merged};
  ModelConfig model;
  DataConfig data;
  TrainConfig train;
};

// Parses JSON text; any failure (syntax, a number out of range) becomes one qk::Error line
// "SOURCE: malformed JSON (byte N): ..." with the file's bytes never echoed raw.
nlohmann::json parse_json(const std::string& text, const std::string& source);
// Field readers for files QKLab reads back (never json::value, whose type_error is no user line):
// the field, or `fallback` when absent or `j` is no object; a field of another type is one
// qk::Error "SOURCE: KEY: expected a string (an integer), got …".
std::string json_string(const nlohmann::json& j, const char* key, const std::string& source,
                        const std::string& fallback = "");
int64_t json_int(const nlohmann::json& j, const char* key, const std::string& source, int64_t fallback);

// JSON <-> config. `source` names the file (or "--set") in error messages.
ExperimentConfig config_from_json(const nlohmann::json& j, const std::string& source);
nlohmann::json config_to_json(const ExperimentConfig& c);
ExperimentConfig load_config_file(const std::string& path);
// Applies "section.key=value" (value parsed as JSON, or as a bare string if that fails).
void apply_override(ExperimentConfig& c, const std::string& assignment);
// Checks sizes and combinations; throws qk::Error naming `source` and the key.
// need_data = false: a model's config (checkpoint, import) may name no corpus for its text data.
void validate_config(const ExperimentConfig& c, const std::string& source, bool need_data = true);
// The thread settings a run uses: (LibTorch intra-op threads, OpenBLAS threads). A positive
// train.threads / train.blas_threads is taken as given; 0 (auto) resolves by mode. Fair mode: every
// core for LibTorch and 1 for OpenBLAS (its fused kernels split each GEMM over LibTorch's threads,
// kernels.h). Book mode: 1 and 2, the settings its bit-identical reproduction was made with.
// OMP_NUM_THREADS (both) and OPENBLAS_NUM_THREADS (OpenBLAS), when set, cap the automatic values.
std::pair<int, int> resolved_threads(const TrainConfig& t);
// Every dotted key with its current value as text (GUI forms, docs).
std::vector<std::pair<std::string, std::string>> config_keys(const ExperimentConfig& c);

}  // namespace qk
