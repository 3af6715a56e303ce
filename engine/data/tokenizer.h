// QKLab engine — the Tokenizer interface, the UTF-8 helpers every tokenizer uses, and the
// character tokenizer: one id per Unicode code point seen in the corpus (sorted), with an explicit
// policy for unseen characters (error, or map to an <unk> id). The other kinds: gpt2_tokenizer.h
// (OpenAI's byte-level BPE), bpe_tokenizer.h (trainable byte-level BPE); building any kind from a
// config or from JSON: tokenizer_factory.h. A tokenizer serialises to JSON so that a run folder is
// reproducible.
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

// Building a tokenizer of any kind from a spec or its JSON: tokenizer_factory.h.

}  // namespace qk
