// QKLab tests — GPT-2 BPE against the reference encoder (tests/reference/gpt2_reference.py),
// round trips on random UTF-8, trained BPE determinism and save/load, chunked encoding, the token
// cache and the tokenize / bpe-train commands.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "bpe_tokenizer.h"
#include "data.h"
#include "error.h"
#include "gpt2_tokenizer.h"
#include "helpers.h"

using namespace qk;
using Catch::Matchers::Contains;

namespace {
// Random valid UTF-8: ASCII (letters, digits, punctuation, whitespace runs), Latin-1, CJK, emoji.
std::string random_utf8(std::mt19937_64& rng, int n) {
  static const std::vector<std::pair<uint32_t, uint32_t>> ranges = {
      {0x20, 0x7E}, {0x20, 0x20}, {0x0A, 0x0A}, {0x09, 0x09}, {0xA0, 0xFF}, {0x100, 0x17F},
      {0x391, 0x3C9}, {0x4E00, 0x4FFF}, {0x3040, 0x309F}, {0x1F300, 0x1F64F}, {0x27, 0x27}};
  std::string s;
  for (int i = 0; i < n; ++i) {
    auto [lo, hi] = ranges[rng() % ranges.size()];
    s += utf8_encode(lo + static_cast<uint32_t>(rng() % (hi - lo + 1)));
  }
  return s;
}
}  // namespace

TEST_CASE("GPT-2 encoder reproduces the reference encoder's ids exactly", "[tokenizers][gpt2]") {
  QKT_DATA_DIR_OR_SKIP(dd);
  Gpt2Tokenizer tok(dd + "/gpt2-encoder.json", dd + "/gpt2-vocab.bpe");
  std::ifstream in(std::string(QKLAB_FIXTURES) + "/gpt2_reference.json");
  auto ref = nlohmann::json::parse(in);
  auto verdict = tok.encode(read_text_file(dd + "/the-verdict.txt"));
  CHECK(verdict == ref["the-verdict.txt"].get<std::vector<int64_t>>());
  CHECK(verdict.size() == 5145);
  for (auto it = ref["samples"].begin(); it != ref["samples"].end(); ++it) {
    INFO("sample: '" << it.key() << "'");
    CHECK(tok.encode(it.key()) == it->get<std::vector<int64_t>>());
  }
  std::mt19937_64 rng(42);
  for (int i = 0; i < 200; ++i) {
    auto s = random_utf8(rng, 1 + static_cast<int>(rng() % 80));
    INFO("round trip of '" << s << "'");
    CHECK(tok.decode(tok.encode(s)) == s);
  }
  // Chunked encoding (large corpora) equals encoding the whole text.
  std::string big;
  for (int i = 0; i < 60; ++i) big += read_text_file(dd + "/the-verdict.txt");  // ~1.2 MB
  CHECK(encode_chunked(tok, big, {}) == tok.encode(big));
}

TEST_CASE("trained byte-level BPE: deterministic — round-trips — saves and loads identically", "[tokenizers][bpe]") {
  std::mt19937_64 rng(7);
  std::string corpus;
  const char* words[] = {"the ", "query ", "key ", "matrix ", "attention ", "merged ", "rank ", "head ", "\n"};
  for (int i = 0; i < 3000; ++i) corpus += words[rng() % 9];
  corpus += random_utf8(rng, 300);
  auto a = BpeTokenizer::train(corpus, 300);
  auto b = BpeTokenizer::train(corpus, 300);
  CHECK(a.vocab_size() == 300);
  CHECK(a.to_json() == b.to_json());
  auto ids = a.encode(corpus);
  CHECK(ids.size() < corpus.size() / 2);  // merges compress
  CHECK(a.decode(ids) == corpus);
  for (int i = 0; i < 100; ++i) {
    auto s = random_utf8(rng, 1 + static_cast<int>(rng() % 60));
    CHECK(a.decode(a.encode(s)) == s);
  }
  auto dir = qkt::temp_dir("bpe");
  a.save(dir + "/bpe.json");
  auto c = BpeTokenizer::load(dir + "/bpe.json");
  CHECK(c.encode(corpus) == ids);
  std::ofstream(dir + "/bad.json") << R"({"kind": "bpe", "merges": [[1, 999]]})";
  CHECK_THROWS_WITH(BpeTokenizer::load(dir + "/bad.json"), Contains("bad.json: merges[0]"));
  CHECK_THROWS_WITH(BpeTokenizer::train(corpus, 100), Contains(">= 256"));
}

TEST_CASE("text corpus: tokenised ids are cached and reused", "[tokenizers][data]") {
  auto dir = qkt::temp_dir("cache");
  std::string text;
  for (int i = 0; i < 200; ++i) text += "line " + std::to_string(i) + " of a small corpus\n";
  std::ofstream(dir + "/c.txt") << text;
  DataConfig d;
  d.kind = "text";
  d.path = dir + "/c.txt";
  d.cache_dir = dir + "/cache";
  int progress_calls = 0;
  auto first = load_text_corpus(d, 16, [&](const std::string&, int64_t, int64_t) { ++progress_calls; });
  CHECK(progress_calls > 0);
  CHECK(std::distance(std::filesystem::directory_iterator(d.cache_dir), {}) == 1);
  progress_calls = 0;
  auto second = load_text_corpus(d, 16, [&](const std::string&, int64_t, int64_t) { ++progress_calls; });
  CHECK(progress_calls == 0);  // served from the cache
  CHECK(torch::equal(first.train->inputs, second.train->inputs));
  CHECK(torch::equal(first.val->targets, second.val->targets));
}
