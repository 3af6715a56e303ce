// QKLab engine — building tokenizers of every kind (char, GPT-2 BPE, trained BPE) from a config's
// spec or from their JSON, in one unit above the tokenizers themselves (tokenizer.h stays free of
// the concrete kinds). Torch-free: the GUI asks it for vocabulary sizes.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "config.h"
#include "names.h"
#include "tokenizer.h"

namespace qk {

constexpr int64_t kGpt2VocabSize = 50257;  // OpenAI's encoder.json: 50,000 merges + 256 bytes + <|endoftext|>

// The vocabulary size a tokenizer will have when the corpus does not decide it: GPT-2's 50,257,
// a BPE file's own size (read from the file); 0 for char.
int64_t known_vocab_size(const TokenizerSpec& spec);
// The vocabulary of a tokens folder (token_files.h): meta.json's vocab_size, GPT-2's without one.
int64_t tokens_folder_vocab_size(const std::string& dir);
// The vocabulary a model of this data section needs when model.vocab_size is 0: a task's, a tokens
// folder's, a text tokenizer's known size (GPT-2, a BPE file); 0 for char text (the corpus decides).
// Throws naming the file when a folder's meta.json or a BPE file cannot be read.
int64_t data_vocab_size(const DataConfig& d);
// The tokenizer of a config's data section (char: its vocabulary built from `corpus`).
std::shared_ptr<Tokenizer> make_tokenizer(const DataConfig& d, const std::string& corpus);
// Reads a tokenizer's JSON (Tokenizer::to_json), of any kind.
std::unique_ptr<Tokenizer> tokenizer_from_json(const nlohmann::json& j);

}  // namespace qk
