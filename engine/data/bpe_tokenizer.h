// QKLab engine — byte-level BPE trained on the user's corpus. Pre-tokenises with GPT-2's regex,
// starts from the 256 bytes and merges the most frequent adjacent pair (ties: the smallest pair of
// ids) until the vocabulary size is reached. Deterministic; saves/loads as JSON
// {"kind": "bpe", "merges": [[a, b], ...]} (id of merge i = 256 + i).
#pragma once
#include <functional>
#include <map>
#include <mutex>
#include <unordered_map>

#include "gpt2_tokenizer.h"

namespace qk {

class BpeTokenizer : public Tokenizer {
 public:
  using Progress = std::function<void(int64_t merges_done, int64_t merges_total)>;
  static BpeTokenizer train(const std::string& corpus, int vocab_size, const Progress& progress = {});
  static BpeTokenizer from_json(const nlohmann::json& j, const std::string& source);
  static BpeTokenizer load(const std::string& path);
  void save(const std::string& path) const;  // atomic
  std::string kind() const override { return "bpe"; }
  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids) const override;
  int64_t vocab_size() const override { return 256 + static_cast<int64_t>(merges_.size()); }
  nlohmann::json to_json() const override;
  BpeTokenizer(const BpeTokenizer& o) : merges_(o.merges_) { rebuild(); }

 private:
  BpeTokenizer() = default;
  void rebuild();  // ranks and id -> bytes from merges_
  std::vector<std::pair<int64_t, int64_t>> merges_;
  std::map<std::pair<int64_t, int64_t>, int64_t> rank_;
  std::vector<std::string> bytes_;  // id -> raw bytes
  std::shared_ptr<Gpt2Pretokenizer> pretok_ = std::make_shared<Gpt2Pretokenizer>();
  mutable std::mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int64_t>> cache_;
};

}  // namespace qk
