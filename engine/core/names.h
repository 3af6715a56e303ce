// QKLab engine — the names a config may use for data, torch-free and above nothing but config.h,
// so that validating a config (config.cpp) and filling the GUI's lists need neither the task
// generators nor the tokenizers: the synthetic task kinds with their parameter checks and sizes,
// and tokenizer specs ("char", "gpt2", "bpe:FILE").
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "config.h"

namespace qk {

// copy, reverse, sort, recall, induction, modadd, bilinear (next-token tasks, scored where the
// answer is), then the token-wise tasks enc-copy, enc-reverse, enc-sort, enc-sub, enc-swap (a label
// at every position: encoders, model.causal = false).
const std::vector<std::string>& task_kinds();
bool is_task_kind(const std::string& kind);
bool is_tokenwise_task(const std::string& kind);  // enc-*
// How a data kind's accuracy is scored: none (language data), Sequence (exact match: every scored
// position of a sequence right; the next-token tasks) or Token (the fraction of positions right;
// the token-wise tasks).
enum class AccuracyKind { None, Sequence, Token };
AccuracyKind accuracy_kind(const std::string& data_kind);
// Language data, with a tokenizer and a corpus: "text" (a text file) or "tokens" (a prepared folder).
bool is_language_kind(const std::string& kind);

// The sizes a task's parameters give (the task generators take them from here).
struct TaskShape {
  int64_t vocab_size = 0;
  int seq_len = 0;  // model input length T
};
// Validates d's parameters for its task kind; throws qk::Error "config: data.<key>: ...".
TaskShape task_shape(const DataConfig& d);

// A tokenizer named in a config or on the command line. The one place these names are parsed.
struct TokenizerSpec {
  enum class Kind { Char, Gpt2, Bpe };
  Kind kind = Kind::Char;
  std::string file;  // Bpe: the tokenizer JSON written by bpe-train
};
// Throws qk::Error "<field>: expected 'char', 'gpt2' or 'bpe:FILE', got '...'".
TokenizerSpec parse_tokenizer_spec(const std::string& name, const std::string& field);

}  // namespace qk
