// QKLab engine — GPT-2 byte-level BPE (see gpt2_tokenizer.h).
#define PCRE2_CODE_UNIT_WIDTH 8
#include "gpt2_tokenizer.h"

#include <pcre2.h>

#include <climits>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "config.h"
#include "error.h"
#include "fsutil.h"

namespace qk {
namespace {

const char* kPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const std::string kEndOfText = "<|endoftext|>";

}  // namespace

Gpt2Tokenizer::Gpt2Tokenizer(const std::string& encoder_json_path, const std::string& vocab_bpe_path,
                             bool allow_special)
    : encoder_path_(encoder_json_path), vocab_path_(vocab_bpe_path), allow_special_(allow_special) {
  // GPT-2's byte <-> unicode table: printable bytes map to themselves, the rest to 256 + n.
  std::vector<int> bs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::vector<bool> printable(256, false);
  for (int b : bs) printable[b] = true;
  int n = 0;
  for (int b = 0; b < 256; ++b)
    byte_to_unicode_[b] = utf8_encode(static_cast<uint32_t>(printable[b] ? b : 256 + n++));
  std::unordered_map<std::string, unsigned char> unicode_to_byte;
  for (int b = 0; b < 256; ++b) unicode_to_byte[byte_to_unicode_[b]] = static_cast<unsigned char>(b);

  const nlohmann::json enc = parse_json(read_file_bytes(encoder_json_path, "GPT-2 encoder.json"), encoder_json_path);
  if (!enc.is_object() || enc.empty())
    throw Error(encoder_json_path + ": expected a JSON object mapping tokens to ids");
  decoder_.assign(enc.size(), std::string());
  for (auto it = enc.begin(); it != enc.end(); ++it) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 ||
        it->get<int64_t>() >= static_cast<int64_t>(enc.size()))
      throw Error(encoder_json_path + ": token '" + it.key() + "': expected an id in [0, " +
                  std::to_string(enc.size()) + ")");
    int64_t id = it->get<int64_t>();
    encoder_[it.key()] = id;
    std::string raw;
    if (it.key() == kEndOfText) raw = kEndOfText;
    else
      for (uint32_t cp : utf8_decode(it.key(), encoder_json_path)) {
        auto b = unicode_to_byte.find(utf8_encode(cp));
        if (b == unicode_to_byte.end())
          throw Error(encoder_json_path + ": token '" + it.key() + "' is not byte-level");
        raw += static_cast<char>(b->second);
      }
    decoder_[id] = raw;
  }

  std::istringstream merges(read_file_bytes(vocab_bpe_path, "GPT-2 vocab.bpe"));
  std::string line;
  int rank = 0, lineno = 0;
  while (std::getline(merges, line)) {
    ++lineno;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (lineno == 1 && line.rfind("#version", 0) == 0)) continue;
    auto sp = line.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= line.size())
      throw Error(vocab_bpe_path + ": line " + std::to_string(lineno) + ": expected 'a b' merge");
    ranks_.emplace(line, rank++);
  }
  if (ranks_.empty()) throw Error(vocab_bpe_path + ": no merges found");

}

Gpt2Tokenizer::~Gpt2Tokenizer() = default;

Gpt2Pretokenizer::Gpt2Pretokenizer() {
  int err = 0;
  PCRE2_SIZE off = 0;
  auto* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                             PCRE2_UTF | PCRE2_UCP, &err, &off, nullptr);
  if (!code) throw Error("GPT-2 pre-tokenizer regex failed to compile");
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  code_ = code;
}

Gpt2Pretokenizer::~Gpt2Pretokenizer() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

std::unique_ptr<Tokenizer> Gpt2Tokenizer::from_json(const nlohmann::json& j) {
  try {
    return std::make_unique<Gpt2Tokenizer>(j.at("encoder").get<std::string>(),
                                           j.at("vocab").get<std::string>(),
                                           j.value("allow_special", true));
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("gpt2 tokenizer: expected {\"encoder\": path, \"vocab\": path}: ") + e.what());
  }
}

nlohmann::json Gpt2Tokenizer::to_json() const {
  return {{"kind", "gpt2"}, {"encoder", encoder_path_}, {"vocab", vocab_path_},
          {"allow_special", allow_special_}};
}

std::vector<std::string> Gpt2Tokenizer::pretokenize(const std::string& text) const {
  return pretok_.split(text);
}

std::vector<std::string> Gpt2Pretokenizer::split(const std::string& text) const {
  std::vector<std::string> pieces;
  auto* code = static_cast<pcre2_code*>(code_);
  pcre2_match_data* md = pcre2_match_data_create_from_pattern(code, nullptr);
  PCRE2_SIZE start = 0;
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  while (start < text.size()) {
    int rc = pcre2_match(code, subject, text.size(), start, PCRE2_NO_UTF_CHECK, md, nullptr);
    if (rc < 0) break;
    PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[1] == ov[0]) {  // cannot happen with this pattern; guard against an endless loop
      ++start;
      continue;
    }
    pieces.emplace_back(text, ov[0], ov[1] - ov[0]);
    start = ov[1];
  }
  pcre2_match_data_free(md);
  return pieces;
}

const std::vector<int64_t>& Gpt2Tokenizer::bpe_word(const std::string& piece) const {
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto it = cache_.find(piece);
    if (it != cache_.end()) return it->second;
  }
  std::vector<std::string> word;
  for (unsigned char b : piece) word.push_back(byte_to_unicode_[b]);
  while (word.size() > 1) {
    int best = INT_MAX;
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < word.size(); ++i) {
      auto r = ranks_.find(word[i] + " " + word[i + 1]);
      if (r != ranks_.end() && r->second < best) { best = r->second; best_i = i; }
    }
    if (best == INT_MAX) break;
    // Merge every occurrence of the best pair, left to right (as OpenAI's bpe()).
    const std::string a = word[best_i], b = word[best_i + 1];
    std::vector<std::string> merged;
    for (size_t i = 0; i < word.size();) {
      if (i + 1 < word.size() && word[i] == a && word[i + 1] == b) {
        merged.push_back(a + b);
        i += 2;
      } else {
        merged.push_back(word[i++]);
      }
    }
    word.swap(merged);
  }
  std::vector<int64_t> ids;
  for (const auto& w : word) {
    auto it = encoder_.find(w);
    if (it == encoder_.end()) throw Error(encoder_path_ + ": BPE symbol '" + w + "' has no id");
    ids.push_back(it->second);
  }
  std::lock_guard<std::mutex> lock(cache_mutex_);
  return cache_.emplace(piece, std::move(ids)).first->second;
}

void Gpt2Tokenizer::encode_ordinary(const std::string& text, std::vector<int64_t>& out) const {
  for (const auto& piece : pretokenize(text)) {
    const auto& ids = bpe_word(piece);
    out.insert(out.end(), ids.begin(), ids.end());
  }
}

std::vector<int64_t> Gpt2Tokenizer::encode(const std::string& text) const {
  utf8_check(text, "text");  // with the byte offset of a bad sequence
  std::vector<int64_t> out;
  size_t pos = 0;
  auto eot = encoder_.find(kEndOfText);
  while (true) {
    size_t next = allow_special_ && eot != encoder_.end() ? text.find(kEndOfText, pos)
                                                          : std::string::npos;
    encode_ordinary(text.substr(pos, next == std::string::npos ? std::string::npos : next - pos), out);
    if (next == std::string::npos) break;
    out.push_back(eot->second);
    pos = next + kEndOfText.size();
  }
  return out;
}

std::string Gpt2Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string s;
  for (auto id : ids) {
    if (id < 0 || id >= static_cast<int64_t>(decoder_.size()))
      throw Error("gpt2 tokenizer: id " + std::to_string(id) + " out of range [0, " +
                  std::to_string(decoder_.size()) + ")");
    s += decoder_[id];
  }
  return s;
}

}  // namespace qk
