// QKLab engine — `qklab-cli prepare`: text files -> a tokens folder (token_files.h) that training
// maps instead of reading. Linear in the input and on every core: each file is cut into ~1 MB
// pieces where the tokenizer splits anyway (GPT-2's pre-tokeniser: before a space or newline after a
// printable ASCII character; char: any code point) so the ids equal encoding the file whole; the
// pieces are encoded by a pool of threads, each with its own copy of the tokenizer, and written in
// order. The last val_fraction of every file (cut at the first such boundary) goes to val.bin, the rest to
// train.bin; with GPT-2's tokenizer every file's part ends with <|endoftext|> (id 50256), as
// nanoGPT's prepare scripts do between documents.
//
// Tokenizers: gpt2 (encoder + merges from gpt2_dir, copied into the folder), char (the code points
// of all inputs), bpe:N (a byte-level BPE of vocabulary N trained on all inputs), bpe:FILE (one
// trained before). Nothing already in the output folder is replaced until the new files are
// complete: they are written as *.partial, then renamed, meta.json last.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data.h"

namespace qk {

struct PrepareOptions {
  std::vector<std::string> inputs;  // UTF-8 text files
  std::string tokenizer = "gpt2";   // gpt2 | char | bpe:N | bpe:FILE
  double val_fraction = 0.1;        // (0, 1)
  std::string out_dir;
  std::string gpt2_dir;  // gpt2-encoder.json + gpt2-vocab.bpe; "" = the first input's folder
  int threads = 0;       // 0 = every core
};

struct PrepareResult {
  int64_t train_tokens = 0, val_tokens = 0, input_bytes = 0, vocab_size = 0;
  std::string tokenizer, dtype;
  int threads = 0;
  double seconds = 0;  // encoding and writing (a BPE's training not included)
};

// Throws qk::Error naming the input, option or output file (a full disk: the file and the space left).
PrepareResult prepare_tokens(const PrepareOptions& o, const ProgressFn& progress = {});

}  // namespace qk
