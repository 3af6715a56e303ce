// QKLab engine — prepared token files (data.kind = "tokens"): nanoGPT's format, memory-mapped.
//
// A tokens folder holds
//   train.bin, val.bin   token ids, little-endian, no header: uint16, or uint32 when the
//                        vocabulary needs it (meta.json says which)
//   meta.json            {"format": "qklab-tokens", "version": 1, "tokenizer": "gpt2"|"char"|"bpe",
//                         "vocab_size", "dtype": "uint16"|"uint32", "train_tokens", "val_tokens",
//                         "files": {"train.bin": {"bytes", "crc32"}, "val.bin": {...}},
//                         "sources": [{"path", "bytes"}], "val_fraction"}      (qklab-cli prepare)
//   tokenizer.json       the tokenizer (char, bpe), or gpt2-encoder.json + gpt2-vocab.bpe (gpt2)
// A folder without meta.json is one of nanoGPT's own: uint16 GPT-2 ids; its tokenizer files are
// taken from data.gpt2_dir or the folder itself.
//
// Reading never loads a file whole: the files are mapped, opened once and checked once (size a
// whole number of tokens, every id below the vocabulary, the CRC-32 meta.json recorded). Training
// windows are drawn as nanoGPT's get_batch does — B start positions i uniform in [0, n - L) from
// the lane's generator (torch.randint(n - L, (B,))), x = ids[i : i+L], y = ids[i+1 : i+L+1] — so
// in fair mode every variant sees the same positions. Evaluation takes non-overlapping windows in
// order from the start of each file (window k starts at k·L), the same every time.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "data.h"

namespace qk {

namespace token_files {
constexpr const char* kTrain = "train.bin";
constexpr const char* kVal = "val.bin";
constexpr const char* kMeta = "meta.json";
constexpr const char* kTokenizer = "tokenizer.json";
constexpr const char* kFormat = "qklab-tokens";
}  // namespace token_files

// One memory-mapped token file of 2- or 4-byte ids.
class TokenFile {
 public:
  TokenFile(const std::string& path, int width);  // throws naming the file: missing, size not whole tokens
  ~TokenFile();
  TokenFile(const TokenFile&) = delete;
  TokenFile& operator=(const TokenFile&) = delete;
  const std::string& path() const { return path_; }
  int width() const { return width_; }
  int64_t size() const { return n_; }  // tokens
  int64_t bytes() const { return n_ * width_; }
  // ids[pos .. pos+n) into out (int64); pos + n <= size()
  void copy(int64_t pos, int64_t n, int64_t* out) const;
  // One pass over the file: the largest id and the CRC-32 (zlib's) of its bytes.
  struct Scan {
    int64_t max_id = -1, first_bad = -1;
    uint32_t crc32 = 0;
  };
  Scan scan(int64_t vocab_size, const ProgressFn& progress = {}) const;

 private:
  std::string path_;
  int width_;
  int64_t n_ = 0;
  const unsigned char* data_ = nullptr;
  size_t mapped_ = 0;
};

// Opens and checks a tokens folder (d.path) for windows of max_length tokens: its two files, its
// tokenizer, every id below the vocabulary, the recorded checksums. Throws one line naming the file.
TextCorpus load_token_corpus(const DataConfig& d, int max_length, const ProgressFn& progress = {});

// The batch source of a tokens corpus (see the top of this file).
std::unique_ptr<DataSource> make_token_source(const TextCorpus& corpus, int batch_size, at::Generator gen);

}  // namespace qk
