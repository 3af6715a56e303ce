// QKLab tests — tokenizers, text windows and loaders (the book's chapter-5 counts), corpus errors,
// the recall task generator.
#include <catch2/catch.hpp>

#include <fstream>

#include "data.h"
#include "error.h"
#include "gpt2_tokenizer.h"
#include "helpers.h"

using namespace qk;
using Catch::Matchers::Contains;

TEST_CASE("char tokenizer round-trips and applies its unknown policy", "[data]") {
  std::string corpus = "héllo wörld ✓\n";
  auto t = CharTokenizer::from_corpus(corpus);
  CHECK(t.decode(t.encode(corpus)) == corpus);
  CHECK(t.vocab_size() == 11 + 1);  // 11 distinct code points + <unk>
  auto ids = t.encode("z");
  CHECK(ids[0] == t.vocab_size() - 1);
  auto strict = CharTokenizer::from_corpus(corpus, false);
  CHECK_THROWS_WITH(strict.encode("z"), Contains("not in the vocabulary"));
  auto back = CharTokenizer::from_json(t.to_json());
  CHECK(back.encode(corpus) == t.encode(corpus));
}

TEST_CASE("windows follow the book's GPTDatasetV1", "[data]") {
  std::vector<int64_t> ids(20);
  for (int i = 0; i < 20; ++i) ids[i] = i;
  auto w = make_windows(ids, 4, 4);  // i = 0, 4, 8, 12 (i < 16)
  REQUIRE(w.size() == 4);
  CHECK(w.inputs[3][0].item<int64_t>() == 12);
  CHECK(w.targets[3][3].item<int64_t>() == 16);
  CHECK(make_windows(ids, 4, 1).size() == 16);
}

TEST_CASE("DataLoader: drop_last — shuffle determinism by generator seed", "[data]") {
  std::vector<int64_t> ids(101);
  for (int i = 0; i < 101; ++i) ids[i] = i;
  auto ds = std::make_shared<WindowDataset>(make_windows(ids, 4, 4));  // 25 windows
  auto order = [&](uint64_t seed) {
    DataLoader l(ds, 2, true, true, at::make_generator<at::CPUGeneratorImpl>(seed));
    CHECK(l.num_batches() == 12);
    l.begin();
    std::vector<int64_t> firsts;
    while (auto b = l.next()) firsts.push_back(b->inputs[0][0].item<int64_t>());
    CHECK(firsts.size() == 12);
    return firsts;
  };
  CHECK(order(5) == order(5));
  CHECK(order(5) != order(6));
  DataLoader seq(ds, 2, false, false, at::make_generator<at::CPUGeneratorImpl>(1));
  CHECK(seq.num_batches() == 13);
}

TEST_CASE("corpus files: clear errors for empty — binary — invalid UTF-8 — missing — too short", "[data]") {
  auto dir = qkt::temp_dir("corpus");
  auto write = [&](const std::string& n, const std::string& s) {
    std::ofstream(dir + "/" + n, std::ios::binary) << s;
    return dir + "/" + n;
  };
  CHECK_THROWS_WITH(read_text_file(write("empty.txt", "")), Contains("empty.txt: corpus file is empty"));
  CHECK_THROWS_WITH(read_text_file(write("bin.dat", std::string("ab\0cd", 5))), Contains("bin.dat: looks like a binary file"));
  CHECK_THROWS_WITH(read_text_file(write("bad.txt", "abc\xff")), Contains("bad.txt: invalid UTF-8 at byte offset 3"));
  CHECK_THROWS_WITH(read_text_file(dir + "/nope.txt"), Contains("nope.txt: cannot open"));
  DataConfig d;
  d.kind = "text";
  d.path = write("short.txt", "tiny corpus");
  CHECK_THROWS_WITH(load_text_corpus(d, 16), Contains("short.txt: corpus too short"));
}

TEST_CASE("GPT-2 BPE: the-verdict.txt is 5 145 tokens — the book's loaders give 9 + 1 batches", "[data][gpt2]") {
  QKT_DATA_DIR_OR_SKIP(dd);
  Gpt2Tokenizer tok(dd + "/gpt2-encoder.json", dd + "/gpt2-vocab.bpe");
  const std::string text = read_text_file(dd + "/the-verdict.txt");
  auto ids = tok.encode(text);
  CHECK(ids.size() == 5145);
  CHECK(tok.decode(ids) == text);
  CHECK(tok.encode("Hello, world") == std::vector<int64_t>{15496, 11, 995});
  CHECK(tok.encode("<|endoftext|>") == std::vector<int64_t>{50256});
  CHECK(tok.vocab_size() == 50257);
  DataConfig d;
  d.kind = "text";
  d.tokenizer = "gpt2";
  d.path = dd + "/the-verdict.txt";
  d.stride = 256;
  auto c = load_text_corpus(d, 256);
  CHECK(DataLoader(c.train, 2, true, true, at::make_generator<at::CPUGeneratorImpl>(1)).num_batches() == 9);
  CHECK(DataLoader(c.val, 2, false, false, at::make_generator<at::CPUGeneratorImpl>(1)).num_batches() == 1);
  // Round trip on assorted text.
  for (std::string s : {"  spaces   and\ttabs\n\nnewlines ", "don't we'll I'm they've", "café naïve 1234567",
                        "日本語のテキスト", "emoji 🤖👍🏽!", "mixed: a1b2 -- ...?!"})
    CHECK(tok.decode(tok.encode(s)) == s);
}
