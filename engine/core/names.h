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

const std::vector<std::string>& task_kinds();  // copy, reverse, sort, recall, induction, modadd, bilinear
bool is_task_kind(const std::string& kind);
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
