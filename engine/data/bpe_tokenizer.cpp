// QKLab engine — byte-level BPE training and encoding (see bpe_tokenizer.h).
#include "bpe_tokenizer.h"

#include <nlohmann/json.hpp>

#include "config.h"
#include "error.h"
#include "fsutil.h"

namespace qk {
namespace {

// Every non-overlapping occurrence of `pair` in w, left to right, becomes `id`.
void merge_pair(std::vector<int64_t>& w, const std::pair<int64_t, int64_t>& pair, int64_t id) {
  std::vector<int64_t> merged;
  merged.reserve(w.size());
  for (size_t k = 0; k < w.size();) {
    if (k + 1 < w.size() && w[k] == pair.first && w[k + 1] == pair.second) {
      merged.push_back(id);
      k += 2;
    } else {
      merged.push_back(w[k++]);
    }
  }
  w.swap(merged);
}

}  // namespace

BpeTokenizer BpeTokenizer::train(const std::string& corpus, int vocab_size, const Progress& progress) {
  if (vocab_size < 256) throw Error("bpe-train: vocabulary size must be >= 256 (the byte alphabet)");
  utf8_check(corpus, "corpus");
  BpeTokenizer t;
  std::map<std::string, int64_t> freq;
  for (auto& piece : t.pretok_->split(corpus)) ++freq[piece];
  std::vector<std::vector<int64_t>> words;
  std::vector<int64_t> counts;
  for (auto& [w, c] : freq) {
    std::vector<int64_t> ids;
    for (unsigned char b : w) ids.push_back(b);
    words.push_back(std::move(ids));
    counts.push_back(c);
  }
  std::map<std::pair<int64_t, int64_t>, int64_t> pairs;
  auto add_pairs = [&](const std::vector<int64_t>& w, int64_t c) {
    for (size_t i = 0; i + 1 < w.size(); ++i) pairs[{w[i], w[i + 1]}] += c;
  };
  for (size_t i = 0; i < words.size(); ++i) add_pairs(words[i], counts[i]);
  const int64_t total = vocab_size - 256;
  for (int64_t m = 0; m < total; ++m) {
    std::pair<int64_t, int64_t> best{-1, -1};
    int64_t best_count = 0;
    for (auto& [p, c] : pairs)  // std::map order: ties go to the smallest pair
      if (c > best_count) { best_count = c; best = p; }
    if (best_count < 2) break;  // nothing left worth merging
    const int64_t id = 256 + m;
    t.merges_.push_back(best);
    for (size_t i = 0; i < words.size(); ++i) {
      auto& w = words[i];
      bool has = false;
      for (size_t k = 0; k + 1 < w.size() && !has; ++k) has = w[k] == best.first && w[k + 1] == best.second;
      if (!has) continue;
      for (size_t k = 0; k + 1 < w.size(); ++k) {
        auto it = pairs.find({w[k], w[k + 1]});
        if ((it->second -= counts[i]) == 0) pairs.erase(it);
      }
      merge_pair(w, best, id);
      add_pairs(w, counts[i]);
    }
    if (progress) progress(m + 1, total);
  }
  t.rebuild();
  return t;
}

void BpeTokenizer::rebuild() {
  rank_.clear();
  bytes_.assign(256, std::string());
  for (int b = 0; b < 256; ++b) bytes_[b] = std::string(1, static_cast<char>(b));
  for (size_t i = 0; i < merges_.size(); ++i) {
    rank_[merges_[i]] = static_cast<int64_t>(i);
    bytes_.push_back(bytes_[merges_[i].first] + bytes_[merges_[i].second]);
  }
  cache_.clear();
}

BpeTokenizer BpeTokenizer::from_json(const nlohmann::json& j, const std::string& source) {
  BpeTokenizer t;
  if (!j.is_object() || !j.contains("kind") || j["kind"] != "bpe" || !j.contains("merges") || !j["merges"].is_array())
    throw Error(source + ": expected {\"kind\": \"bpe\", \"merges\": [[a, b], ...]}");
  int64_t next = 256;
  for (const auto& m : j["merges"]) {
    if (!m.is_array() || m.size() != 2 || !m[0].is_number_integer() || !m[1].is_number_integer())
      throw Error(source + ": merges[" + std::to_string(next - 256) + "]: expected a pair of ids");
    const int64_t a = m[0].get<int64_t>(), b = m[1].get<int64_t>();
    if (a < 0 || b < 0 || a >= next || b >= next)
      throw Error(source + ": merges[" + std::to_string(next - 256) + "]: ids must be < " + std::to_string(next));
    t.merges_.emplace_back(a, b);
    ++next;
  }
  t.rebuild();
  return t;
}

BpeTokenizer BpeTokenizer::load(const std::string& path) {
  const nlohmann::json j = parse_json(read_file_bytes(path, "BPE tokenizer"), path);
  auto t = from_json(j, path);
  return t;
}

void BpeTokenizer::save(const std::string& path) const { write_file_atomic(path, to_json().dump() + "\n"); }

nlohmann::json BpeTokenizer::to_json() const {
  nlohmann::json m = nlohmann::json::array();
  for (auto& [a, b] : merges_) m.push_back({a, b});
  return {{"kind", "bpe"}, {"merges", m}};
}

std::vector<int64_t> BpeTokenizer::encode(const std::string& text) const {
  utf8_check(text, "text");
  std::vector<int64_t> out;
  for (const auto& piece : pretok_->split(text)) {
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      auto it = cache_.find(piece);
      if (it != cache_.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    std::vector<int64_t> w;
    for (unsigned char b : piece) w.push_back(b);
    while (w.size() > 1) {
      int64_t best = INT64_MAX;
      for (size_t k = 0; k + 1 < w.size(); ++k) {
        auto r = rank_.find({w[k], w[k + 1]});
        if (r != rank_.end() && r->second < best) best = r->second;
      }
      if (best == INT64_MAX) break;
      merge_pair(w, merges_[best], 256 + best);
    }
    out.insert(out.end(), w.begin(), w.end());
    std::lock_guard<std::mutex> lock(cache_mutex_);
    cache_.emplace(piece, std::move(w));
  }
  return out;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string s;
  for (auto id : ids) {
    if (id < 0 || id >= vocab_size())
      throw Error("bpe tokenizer: id " + std::to_string(id) + " out of range [0, " + std::to_string(vocab_size()) + ")");
    s += bytes_[id];
  }
  return s;
}

}  // namespace qk
