// QKLab engine — tokenizers behind one interface.
// CharTokenizer: one id per Unicode code point seen in the corpus (sorted), with an explicit
// policy for unseen characters (error, or map to an <unk> id). Gpt2Tokenizer: OpenAI's byte-level
// BPE (gpt2_tokenizer.h). A tokenizer serialises to JSON so that a run folder is reproducible.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace qk {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string kind() const = 0;
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;
  virtual int64_t vocab_size() const = 0;
  virtual nlohmann::json to_json() const = 0;
};

// UTF-8 helpers (throw qk::Error with the byte offset of the first invalid sequence).
std::vector<uint32_t> utf8_decode(const std::string& s, const std::string& what = "text");
void utf8_check(const std::string& s, const std::string& what = "text");  // validates, no allocation
std::string utf8_encode(uint32_t cp);
std::string utf8_encode(const std::vector<uint32_t>& cps);

class CharTokenizer : public Tokenizer {
 public:
  // Builds the vocabulary from `corpus`; with unk = true an extra id maps unseen characters.
  static CharTokenizer from_corpus(const std::string& corpus, bool unk = true);
  static CharTokenizer from_json(const nlohmann::json& j);
  std::string kind() const override { return "char"; }
  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override;
  nlohmann::json to_json() const override;

 private:
  std::vector<uint32_t> chars_;  // sorted code points; id = index
  bool unk_ = true;              // id chars_.size() is <unk>
};

// A tokenizer named in a config or on the command line: "char", "gpt2" or "bpe:FILE". The one
// place these names are parsed.
struct TokenizerSpec {
  enum class Kind { Char, Gpt2, Bpe };
  Kind kind = Kind::Char;
  std::string file;  // Bpe: the tokenizer JSON written by bpe-train
};
// Throws qk::Error "<field>: expected 'char', 'gpt2' or 'bpe:FILE', got '...'".
TokenizerSpec parse_tokenizer_spec(const std::string& name, const std::string& field);
// The vocabulary size the tokenizer will have, when it does not depend on the corpus: GPT-2's
// published 50,257; a BPE file's own size (read from the file); 0 for char (the corpus decides).
int64_t known_vocab_size(const TokenizerSpec& spec);
constexpr int64_t kGpt2VocabSize = 50257;  // OpenAI's encoder.json: 50,000 merges + 256 bytes + <|endoftext|>

// Reads "char" (vocabulary from the corpus) or "gpt2" (encoder/vocab files) tokenizers.
std::unique_ptr<Tokenizer> tokenizer_from_json(const nlohmann::json& j);

}  // namespace qk
