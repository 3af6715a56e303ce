// QKLab engine — training data: text corpora with the book's sliding windows and DataLoader
// semantics, and synthetic tasks generated from the seed.
//
// DataLoader reproduces PyTorch 1.13's single-process DataLoader draw for draw: each iteration
// (epoch, or an evaluation's pass) first draws a 64-bit base seed from the generator; a shuffled
// loader then draws its RandomSampler seed on the first batch and permutes with a private
// generator. In "book" mode the generator is the global one (so the draws interleave with
// dropout exactly as in the book's notebook); in "fair" mode every variant gets its own
// generator with the same seed, hence the same data order.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "config.h"
#include "names.h"
#include "tokenizer.h"

namespace qk {

struct Batch {
  torch::Tensor inputs;   // (B, T) int64
  torch::Tensor targets;  // (B, T) int64, -100 where no loss is taken
};

// Windows of a token stream: input ids[i : i+L], target ids[i+1 : i+L+1], i = 0, s, 2s, ... while
// i < n - L (the book's GPTDatasetV1).
struct WindowDataset {
  torch::Tensor inputs, targets;  // (N, L) int64
  int64_t size() const { return inputs.defined() ? inputs.size(0) : 0; }
};
WindowDataset make_windows(const std::vector<int64_t>& ids, int max_length, int stride);

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const WindowDataset> ds, int batch_size, bool shuffle, bool drop_last,
             at::Generator gen);
  int64_t num_batches() const;  // len(loader)
  void begin();                 // iter(loader): draws the base seed
  std::optional<Batch> next();  // next(it); the first call of a shuffled loader draws its seed
  // The iteration's position (order, pos, flags), for exact resume; the generator is the owner's.
  torch::Tensor position() const;                                   // (4 + N,) int64
  void set_position(const torch::Tensor& p, const std::string& source);
 private:
  std::shared_ptr<const WindowDataset> ds_;
  int batch_size_;
  bool shuffle_, drop_last_;
  at::Generator gen_;
  std::vector<int64_t> order_;
  int64_t pos_ = 0;
  bool started_ = false, active_ = false;
};

class TokenFile;  // token_files.h

// The language data of a run, shared by every variant's loaders: a text file read, validated,
// split by characters and tokenised once into windows (data.kind = text), or a prepared tokens
// folder, memory-mapped (data.kind = tokens, token_files.h).
struct TextCorpus {
  std::shared_ptr<Tokenizer> tokenizer;
  std::shared_ptr<const WindowDataset> train, val;        // text
  std::shared_ptr<const TokenFile> train_file, val_file;  // tokens
  int max_length = 0;                                     // tokens: the window length
  int64_t train_tokens = 0, val_tokens = 0;
};
std::string read_text_file(const std::string& path);  // throws naming the file (missing, binary, UTF-8)
// Progress of long work: stage ("tokenizing"), units done and total (bytes).
using ProgressFn = std::function<void(const std::string& stage, int64_t done, int64_t total)>;
// The tokenizer named by d.tokenizer: char (built from `corpus`), gpt2 (files in d.gpt2_dir or
// the corpus's folder), bpe:FILE.
// Encodes in ~1 MB chunks cut only where GPT-2's pre-tokeniser splits anyway (before a space that
// follows a printable ASCII character), so the ids equal encode(text); reports progress.
std::vector<int64_t> encode_chunked(const Tokenizer& t, const std::string& text, const ProgressFn& progress);
// Reads, validates, splits by characters and tokenises; with d.cache_dir set, token ids are cached
// there (keyed by file path, size, mtime, tokenizer and split) and reused. For data.kind = tokens:
// load_token_corpus (token_files.h).
TextCorpus load_text_corpus(const DataConfig& d, int max_length, const ProgressFn& progress = {});

// What a trainer needs from any data: a training stream and evaluation batches.
class DataSource {
 public:
  virtual ~DataSource() = default;
  // Next training batch, or nullopt at the end of an epoch (the following call starts the next).
  virtual std::optional<Batch> next_train() = 0;
  // Up to max_batches batches of the train (val=false) or validation split.
  virtual std::vector<Batch> eval_batches(bool val, int max_batches) = 0;
  virtual int64_t batches_per_epoch() const = 0;  // 0 for an endless task stream
  virtual AccuracyKind accuracy() const = 0;      // tasks report accuracy (names.h: exact match or per token)
  // The stream's position for exact resume: named tensors (generator state, loader order and
  // position, counters). set_state throws naming `source` and the entry that is missing or wrong.
  virtual std::map<std::string, torch::Tensor> state() const = 0;
  virtual void set_state(const std::map<std::string, torch::Tensor>& s, const std::string& source) = 0;
};

// Generator state <-> tensor (uint8), shared by the data sources and the trainer.
torch::Tensor generator_state(at::Generator g);
void set_generator_state(at::Generator& g, const torch::Tensor& s);

// The batch source of either kind of corpus (tokens: make_token_source).
std::unique_ptr<DataSource> make_text_source(const TextCorpus& corpus, int batch_size, at::Generator gen);

}  // namespace qk
