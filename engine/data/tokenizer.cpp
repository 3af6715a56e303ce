// QKLab engine — UTF-8 helpers and the character-level tokenizer.
#include "tokenizer.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>

#include "error.h"

namespace qk {

namespace {

// Walks s once, calling on_cp for every code point; throws naming `what` and the byte offset.
template <class F> void utf8_walk(const std::string& s, const std::string& what, F&& on_cp) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    unsigned char c = p[i];
    uint32_t cp;
    int len;
    if (c < 0x80) { cp = c; len = 1; }
    else if ((c & 0xE0) == 0xC0) { cp = c & 0x1F; len = 2; }
    else if ((c & 0xF0) == 0xE0) { cp = c & 0x0F; len = 3; }
    else if ((c & 0xF8) == 0xF0) { cp = c & 0x07; len = 4; }
    else throw Error(what + ": invalid UTF-8 at byte offset " + std::to_string(i));
    if (i + len > n) throw Error(what + ": truncated UTF-8 sequence at byte offset " + std::to_string(i));
    for (int k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80)
        throw Error(what + ": invalid UTF-8 at byte offset " + std::to_string(i));
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      throw Error(what + ": invalid UTF-8 at byte offset " + std::to_string(i));
    on_cp(cp);
    i += len;
  }
}

}  // namespace

std::vector<uint32_t> utf8_decode(const std::string& s, const std::string& what) {
  std::vector<uint32_t> out;
  out.reserve(s.size());
  utf8_walk(s, what, [&](uint32_t cp) { out.push_back(cp); });
  return out;
}

void utf8_check(const std::string& s, const std::string& what) {
  utf8_walk(s, what, [](uint32_t) {});
}

std::string utf8_encode(uint32_t cp) {
  std::string s;
  if (cp < 0x80) s += char(cp);
  else if (cp < 0x800) { s += char(0xC0 | (cp >> 6)); s += char(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) {
    s += char(0xE0 | (cp >> 12)); s += char(0x80 | ((cp >> 6) & 0x3F)); s += char(0x80 | (cp & 0x3F));
  } else {
    s += char(0xF0 | (cp >> 18)); s += char(0x80 | ((cp >> 12) & 0x3F));
    s += char(0x80 | ((cp >> 6) & 0x3F)); s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

std::string utf8_encode(const std::vector<uint32_t>& cps) {
  std::string s;
  for (auto cp : cps) s += utf8_encode(cp);
  return s;
}

CharTokenizer CharTokenizer::from_corpus(const std::string& corpus, bool unk) {
  std::set<uint32_t> uniq;
  utf8_walk(corpus, "corpus", [&](uint32_t cp) { uniq.insert(cp); });
  CharTokenizer t;
  t.chars_.assign(uniq.begin(), uniq.end());
  t.unk_ = unk;
  return t;
}

CharTokenizer CharTokenizer::from_json(const nlohmann::json& j) {
  if (!j.is_object() || (j.contains("kind") && j["kind"] != "char")) throw Error("char tokenizer: expected kind 'char'");
  CharTokenizer t;
  try {
    t.chars_ = j.at("chars").get<std::vector<uint32_t>>();
    t.unk_ = j.at("unk").get<bool>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("char tokenizer: expected {\"chars\": [...], \"unk\": bool}: ") + e.what());
  }
  if (!std::is_sorted(t.chars_.begin(), t.chars_.end()))
    throw Error("char tokenizer: 'chars' must be sorted code points");
  return t;
}

std::vector<int64_t> CharTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (uint32_t cp : utf8_decode(text)) {
    auto it = std::lower_bound(chars_.begin(), chars_.end(), cp);
    if (it != chars_.end() && *it == cp) {
      ids.push_back(it - chars_.begin());
    } else if (unk_) {
      ids.push_back(static_cast<int64_t>(chars_.size()));
    } else {
      throw Error("char tokenizer: character U+" + std::to_string(cp) +
                  " is not in the vocabulary (policy: error)");
    }
  }
  return ids;
}

std::string CharTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string s;
  for (auto id : ids) {
    if (id >= 0 && id < static_cast<int64_t>(chars_.size())) s += utf8_encode(chars_[id]);
    else s += "\xEF\xBF\xBD";  // U+FFFD for <unk> / out of range
  }
  return s;
}

int64_t CharTokenizer::vocab_size() const { return static_cast<int64_t>(chars_.size()) + (unk_ ? 1 : 0); }

nlohmann::json CharTokenizer::to_json() const {
  return {{"kind", "char"}, {"chars", chars_}, {"unk", unk_}};
}

}  // namespace qk
