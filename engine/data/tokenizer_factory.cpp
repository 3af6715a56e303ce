// QKLab engine — tokenizers of every kind (see tokenizer_factory.h).
#include "tokenizer_factory.h"

#include <nlohmann/json.hpp>

#include "bpe_tokenizer.h"
#include "error.h"
#include "fsutil.h"

#include <fstream>
#include "gpt2_tokenizer.h"

namespace qk {

int64_t known_vocab_size(const TokenizerSpec& spec) {
  switch (spec.kind) {
    case TokenizerSpec::Kind::Char: return 0;
    case TokenizerSpec::Kind::Gpt2: return kGpt2VocabSize;
    case TokenizerSpec::Kind::Bpe: return BpeTokenizer::load(spec.file).vocab_size();
  }
  return 0;
}

int64_t tokens_folder_vocab_size(const std::string& dir) {
  const std::string meta = dir + "/meta.json";
  std::ifstream probe(meta);
  if (!probe) return kGpt2VocabSize;  // nanoGPT's folders
  const auto j = parse_json(read_file_bytes(meta, "tokens meta.json"), meta);
  if (!j.is_object() || !j.contains("vocab_size") || !j["vocab_size"].is_number_integer() || j["vocab_size"].get<int64_t>() < 1)
    throw Error(meta + ": vocab_size: expected a positive integer");
  return j["vocab_size"].get<int64_t>();
}

int64_t data_vocab_size(const DataConfig& d) {
  if (d.kind == "tokens") return tokens_folder_vocab_size(d.path);
  if (d.kind == "text") return known_vocab_size(parse_tokenizer_spec(d.tokenizer, "data.tokenizer"));
  return task_shape(d).vocab_size;
}

std::unique_ptr<Tokenizer> tokenizer_from_json(const nlohmann::json& j) {
  const std::string kind = j.is_object() && j.contains("kind") && j["kind"].is_string() ? j["kind"].get<std::string>() : "";
  if (kind == "char") return std::make_unique<CharTokenizer>(CharTokenizer::from_json(j));
  if (kind == "gpt2") return Gpt2Tokenizer::from_json(j);
  if (kind == "bpe") return std::make_unique<BpeTokenizer>(BpeTokenizer::from_json(j, "tokenizer"));
  throw Error("tokenizer: unknown kind '" + kind + "' (expected 'char', 'gpt2' or 'bpe')");
}

std::shared_ptr<Tokenizer> make_tokenizer(const DataConfig& d, const std::string& corpus) {
  const auto spec = parse_tokenizer_spec(d.tokenizer, "data.tokenizer");
  switch (spec.kind) {
    case TokenizerSpec::Kind::Gpt2: {
      std::string dir = d.gpt2_dir;
      if (dir.empty()) {
        auto slash = d.path.find_last_of('/');
        dir = slash == std::string::npos ? "." : d.path.substr(0, slash);
      }
      return std::make_shared<Gpt2Tokenizer>(dir + "/gpt2-encoder.json", dir + "/gpt2-vocab.bpe");
    }
    case TokenizerSpec::Kind::Bpe: return std::make_shared<BpeTokenizer>(BpeTokenizer::load(spec.file));
    case TokenizerSpec::Kind::Char: break;
  }
  return std::make_shared<CharTokenizer>(CharTokenizer::from_corpus(corpus, d.char_unknown == "unk"));
}

}  // namespace qk
