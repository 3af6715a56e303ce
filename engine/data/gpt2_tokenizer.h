// QKLab engine — OpenAI's GPT-2 byte-level BPE (the tokenizer of the book's chapters 2–5).
// Loads encoder.json (token → id) and vocab.bpe (merge ranks), pre-tokenises with GPT-2's regex
// (PCRE2, Unicode properties), maps bytes to printable code points with GPT-2's byte↔unicode
// table and applies merges by rank. Merged words are cached. `<|endoftext|>` (id 50256) is
// recognised in the text when special tokens are allowed, as tiktoken's allowed_special does.
#pragma once
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer.h"

namespace qk {

// GPT-2's pre-tokenisation regex (contractions, letter runs, digit runs, punctuation runs,
// whitespace) compiled once with PCRE2 (UTF + Unicode properties, JIT).
class Gpt2Pretokenizer {
 public:
  Gpt2Pretokenizer();
  ~Gpt2Pretokenizer();
  Gpt2Pretokenizer(const Gpt2Pretokenizer&) = delete;
  Gpt2Pretokenizer& operator=(const Gpt2Pretokenizer&) = delete;
  std::vector<std::string> split(const std::string& text) const;

 private:
  void* code_ = nullptr;  // pcre2_code*
};

class Gpt2Tokenizer : public Tokenizer {
 public:
  Gpt2Tokenizer(const std::string& encoder_json_path, const std::string& vocab_bpe_path,
                bool allow_special = true);
  ~Gpt2Tokenizer() override;
  static std::unique_ptr<Tokenizer> from_json(const nlohmann::json& j);
  std::string kind() const override { return "gpt2"; }
  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return static_cast<int64_t>(decoder_.size()); }
  nlohmann::json to_json() const override;
  // The pre-tokeniser's pieces (exposed for tests).
  std::vector<std::string> pretokenize(const std::string& text) const;

 private:
  void encode_ordinary(const std::string& text, std::vector<int64_t>& out) const;
  const std::vector<int64_t>& bpe_word(const std::string& piece) const;

  std::string encoder_path_, vocab_path_;
  bool allow_special_;
  std::unordered_map<std::string, int64_t> encoder_;   // byte-unicode token -> id
  std::vector<std::string> decoder_;                   // id -> raw bytes
  std::unordered_map<std::string, int> ranks_;         // "a b" -> merge rank
  std::string byte_to_unicode_[256];                   // byte -> UTF-8 of its printable stand-in
  Gpt2Pretokenizer pretok_;
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace qk
