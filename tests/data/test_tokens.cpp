// QKLab tests — prepared token files (data.kind = tokens) and `prepare`: the windows equal nanoGPT's
// get_batch (tests/fixtures/token_windows.json, made by tests/reference/token_windows.py), the same
// for every variant in fair mode, evaluation in order; prepare's char / BPE / uint32 folders decode
// back to their text; every bad file gets one line naming it; a run on a folder trains, stops and
// resumes bit-identically.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "cli/cli_run.h"
#include "config.h"
#include "data.h"
#include "error.h"
#include "fsutil.h"
#include "helpers.h"
#include "prepare.h"
#include "run_dir.h"
#include "token_files.h"
#include "tokenizer_factory.h"

using Catch::Matchers::Contains;

namespace {

void write_ids(const std::string& path, const std::vector<int64_t>& ids, int width) {
  std::string bytes;
  for (int64_t id : ids)
    for (int b = 0; b < width; ++b) bytes.push_back(static_cast<char>((static_cast<uint64_t>(id) >> (8 * b)) & 0xFF));
  qk::write_file_atomic(path, bytes);
}

// The fixture's ids: (i·7919 + i²) mod 50257.
std::vector<int64_t> fixture_ids(int64_t n, int64_t vocab) {
  std::vector<int64_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = (i * 7919 + i * i) % vocab;
  return ids;
}

qk::DataConfig tokens_config(const std::string& dir, const std::string& gpt2_dir = "") {
  qk::DataConfig d;
  d.kind = "tokens";
  d.path = dir;
  d.gpt2_dir = gpt2_dir;
  return d;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const qk::Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::string sample_text(int words_n = 6000) {
  std::string t;
  const char* words[] = {"the", "query", "and", "key", "matrices", "of", "attention", "merge", "into", "one",
                         "bilinear", "form,", "rank", "head", "dimension.", "naïve", "café", "—", "über"};
  uint64_t x = 42;
  for (int i = 0; i < words_n; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    t += words[(x >> 33) % 19];
    t += (x >> 20) % 11 == 0 ? "\n" : " ";
  }
  return t;
}

}  // namespace

TEST_CASE("tokens: training windows equal nanoGPT's get_batch, evaluation windows are in order", "[data][tokens]") {
  QKT_DATA_DIR_OR_SKIP(dd);  // a nanoGPT folder has no meta.json: GPT-2 ids, its tokenizer files from data.gpt2_dir
  const auto fx = nlohmann::json::parse(qkt::slurp(std::string(QKLAB_FIXTURES) + "/token_windows.json"));
  const int64_t n = fx["n"], vocab = fx["vocab"];
  const int L = fx["block_size"], B = fx["batch_size"];
  const auto dir = qkt::temp_dir("tokens-nanogpt");
  const auto ids = fixture_ids(n, vocab);
  write_ids(dir + "/train.bin", ids, 2);
  write_ids(dir + "/val.bin", std::vector<int64_t>(ids.begin(), ids.begin() + 1000), 2);
  const auto corpus = qk::load_text_corpus(tokens_config(dir, dd), L);
  CHECK(corpus.train_tokens == n);
  CHECK(corpus.tokenizer->vocab_size() == 50257);
  for (const auto& s : fx["seeds"]) {
    INFO("seed " << s["seed"]);
    auto src = qk::make_text_source(corpus, B, at::make_generator<at::CPUGeneratorImpl>(s["seed"].get<uint64_t>()));
    for (const auto& b : s["batches"]) {
      const auto got = src->next_train();
      REQUIRE(got);
      REQUIRE(got->inputs.sizes() == torch::IntArrayRef({B, L}));
      std::vector<std::vector<int64_t>> x, y;
      for (int r = 0; r < B; ++r) {
        x.emplace_back(got->inputs[r].data_ptr<int64_t>(), got->inputs[r].data_ptr<int64_t>() + L);
        y.emplace_back(got->targets[r].data_ptr<int64_t>(), got->targets[r].data_ptr<int64_t>() + L);
      }
      CHECK(x == b["x"].get<std::vector<std::vector<int64_t>>>());
      CHECK(y == b["y"].get<std::vector<std::vector<int64_t>>>());
    }
  }
  // Fair mode: two lanes with the same seed see the same windows.
  auto a = qk::make_text_source(corpus, B, at::make_generator<at::CPUGeneratorImpl>(7));
  auto b = qk::make_text_source(corpus, B, at::make_generator<at::CPUGeneratorImpl>(7));
  for (int k = 0; k < 5; ++k) CHECK(torch::equal(a->next_train()->inputs, b->next_train()->inputs));
  // Evaluation: window k starts at k·L, in order, every time the same.
  const auto ev = a->eval_batches(true, 1000);
  const int64_t windows = (1000 - 1) / L;
  REQUIRE(static_cast<int64_t>(ev.size()) == (windows + B - 1) / B);
  int64_t k = 0;
  for (const auto& batch : ev)
    for (int64_t r = 0; r < batch.inputs.size(0); ++r, ++k) {
      CHECK(batch.inputs[r][0].item<int64_t>() == ids[k * L]);
      CHECK(batch.targets[r][L - 1].item<int64_t>() == ids[k * L + L]);
    }
  CHECK(k == windows);
  CHECK(torch::equal(a->eval_batches(true, 3)[2].inputs, ev[2].inputs));
}

TEST_CASE("prepare: char, trained BPE and uint32 folders decode back to their text, on several threads", "[data][tokens]") {
  const auto dir = qkt::temp_dir("prepare");
  const std::string big = sample_text(400000), small = sample_text(6000);  // 2.7 MB: three 1 MB pieces
  qk::write_file_atomic(dir + "/big.txt", big);
  qk::write_file_atomic(dir + "/small.txt", small);
  // bpe:N trains a BPE on the inputs; its tokenizer.json then serves as bpe:FILE for the big text.
  qk::PrepareOptions t;
  t.inputs = {dir + "/small.txt"};
  t.tokenizer = "bpe:300";
  t.out_dir = dir + "/trained";
  CHECK(qk::prepare_tokens(t).vocab_size == 300);
  for (const std::string spec : {std::string("char"), "bpe:" + dir + "/trained/tokenizer.json"}) {
    INFO(spec);
    qk::PrepareOptions o;
    o.inputs = {dir + "/big.txt", dir + "/small.txt"};
    o.tokenizer = spec;
    o.val_fraction = 0.2;
    o.out_dir = dir + "/out-" + spec.substr(0, 3);
    o.threads = 3;
    const auto r = qk::prepare_tokens(o);
    CHECK(r.dtype == "uint16");
    CHECK(r.threads == 3);
    const auto c = qk::load_text_corpus(tokens_config(o.out_dir), 16);
    CHECK(c.train_tokens == r.train_tokens);
    CHECK(c.val_tokens == r.val_tokens);
    std::vector<int64_t> tr(c.train_tokens), va(c.val_tokens);
    c.train_file->copy(0, c.train_tokens, tr.data());
    c.val_file->copy(0, c.val_tokens, va.data());
    // Each file is cut at the first such space after 80 % of its bytes; train.bin holds the first parts,
    // val.bin the rest, each the ids of encoding that part whole.
    std::vector<int64_t> want_tr, want_va;
    std::string text_tr, text_va;
    for (const std::string* f : {&big, &small}) {
      size_t cut = static_cast<size_t>(0.8 * f->size());  // prepare.h: char, where a code point starts;
      if (spec == "char")                                  // BPE, before a space or newline after printable ASCII
        while ((static_cast<unsigned char>((*f)[cut]) & 0xC0) == 0x80) ++cut;
      else
        while (!(((*f)[cut] == ' ' || (*f)[cut] == '\n') && (*f)[cut - 1] > ' ' && (*f)[cut - 1] < 0x7F)) ++cut;
      for (auto [part, ids, txt] : {std::tuple{f->substr(0, cut), &want_tr, &text_tr}, std::tuple{f->substr(cut), &want_va, &text_va}}) {
        const auto e = c.tokenizer->encode(part);
        ids->insert(ids->end(), e.begin(), e.end());
        *txt += part;
      }
    }
    CHECK(tr == want_tr);
    CHECK(va == want_va);
    CHECK(c.tokenizer->decode(tr) == text_tr);
    CHECK(c.tokenizer->decode(va) == text_va);
  }
  SECTION("a vocabulary above 65,536 is written as uint32") {
    std::string wide;
    for (uint32_t cp = 0x4E00; cp <= 0x9FFF; ++cp) wide += qk::utf8_encode(cp);   // 20,992 CJK
    for (uint32_t cp = 0xAC00; cp <= 0xD7A3; ++cp) wide += qk::utf8_encode(cp);   // 11,172 Hangul
    for (uint32_t cp = 0x20000; cp <= 0x2A6DF; ++cp) wide += qk::utf8_encode(cp); // 42,720 CJK Ext. B
    wide += " " + wide;
    qk::write_file_atomic(dir + "/wide.txt", wide);
    qk::PrepareOptions o;
    o.inputs = {dir + "/wide.txt"};
    o.tokenizer = "char";
    o.val_fraction = 0.3;
    o.out_dir = dir + "/wide";
    const auto r = qk::prepare_tokens(o);
    CHECK(r.dtype == "uint32");
    CHECK(r.vocab_size == 20992 + 11172 + 42720 + 1);
    CHECK(std::filesystem::file_size(o.out_dir + "/train.bin") == static_cast<uintmax_t>(4 * r.train_tokens));
    const auto c = qk::load_text_corpus(tokens_config(o.out_dir), 8);
    std::vector<int64_t> tr(c.train_tokens), va(c.val_tokens);
    c.train_file->copy(0, c.train_tokens, tr.data());
    c.val_file->copy(0, c.val_tokens, va.data());
    CHECK(c.tokenizer->decode(tr) + c.tokenizer->decode(va) == wide);
    CHECK(*std::max_element(tr.begin(), tr.end()) > 65535);
  }
}

TEST_CASE("tokens: every bad folder or file gets one line naming it", "[data][tokens]") {
  const auto dir = qkt::temp_dir("tokens-bad");
  qk::write_file_atomic(dir + "/t.txt", sample_text());
  qk::PrepareOptions o;
  o.inputs = {dir + "/t.txt"};
  o.tokenizer = "char";
  o.out_dir = dir + "/good";
  qk::prepare_tokens(o);
  auto fresh = [&](const std::string& name) {
    const std::string d = dir + "/" + name;
    std::filesystem::copy(dir + "/good", d);
    return d;
  };
  auto load = [&](const std::string& d, int L = 16) { return error_of([&] { qk::load_text_corpus(tokens_config(d), L); }); };
  CHECK_THAT(load(dir + "/good"), Contains("(no error)"));

  SECTION("not a folder") { CHECK_THAT(load(dir + "/t.txt"), Contains("t.txt: not a folder")); }
  SECTION("a missing file") {
    const auto d = fresh("missing");
    std::filesystem::remove(d + "/val.bin");
    CHECK_THAT(load(d), Contains("val.bin: cannot open token file") && Contains("prepare"));
  }
  SECTION("a size that is not a whole number of tokens") {
    const auto d = fresh("odd");
    std::ofstream(d + "/train.bin", std::ios::app | std::ios::binary) << 'x';
    CHECK_THAT(load(d), Contains("train.bin:") && Contains("is not a whole number of uint16 tokens"));
  }
  SECTION("a truncated file (whole tokens, fewer than recorded)") {
    const auto d = fresh("short");
    std::filesystem::resize_file(d + "/train.bin", std::filesystem::file_size(d + "/train.bin") - 64);
    CHECK_THAT(load(d), Contains("train.bin:") && Contains("meta.json recorded") && Contains("truncated"));
  }
  SECTION("a flipped bit") {
    const auto d = fresh("flip");
    std::string b = qkt::slurp(d + "/val.bin");
    const size_t at = b.size() / 2 & ~size_t{1};  // a low byte: the id stays inside the vocabulary
    b[at] = b[at] == 0 ? 1 : 0;
    b[at + 1] = 0;
    qk::write_file_atomic(d + "/val.bin", b);
    CHECK_THAT(load(d), Contains("val.bin: checksum") && Contains("damaged"));
  }
  SECTION("an id outside the vocabulary") {
    const auto d = fresh("vocab");
    nlohmann::json m = nlohmann::json::parse(qkt::slurp(d + "/meta.json"));
    m.erase("files");  // no checksums: the id check itself must catch it
    qk::write_file_atomic(d + "/meta.json", m.dump());
    std::string b = qkt::slurp(d + "/train.bin");
    b[20] = '\xff';
    b[21] = '\xff';
    qk::write_file_atomic(d + "/train.bin", b);
    CHECK_THAT(load(d), Contains("train.bin: token 10 is 65535, outside the vocabulary of"));
  }
  SECTION("meta.json: malformed, wrong dtype, a vocabulary its tokenizer does not have") {
    const auto d = fresh("meta");
    qk::write_file_atomic(d + "/meta.json", "{\"format\": \"qklab-tokens\", ");
    CHECK_THAT(load(d), Contains("meta.json: malformed JSON"));
    nlohmann::json m = nlohmann::json::parse(qkt::slurp(dir + "/good/meta.json"));
    m["dtype"] = "int8";
    qk::write_file_atomic(d + "/meta.json", m.dump());
    CHECK_THAT(load(d), Contains("meta.json: dtype: expected \"uint16\" or \"uint32\""));
    m["dtype"] = "uint16";
    const auto vocab = m["vocab_size"];
    m["vocab_size"] = 12;
    qk::write_file_atomic(d + "/meta.json", m.dump());
    CHECK_THAT(load(d), Contains("meta.json: vocab_size 12, its tokenizer has"));
    m["vocab_size"] = vocab;  // a field of another type (the fuzzer's find): one line naming it
    m["format"] = 1;
    qk::write_file_atomic(d + "/meta.json", m.dump());
    CHECK_THAT(load(d), Contains("meta.json: format: expected a string, got 1"));
    m["format"] = "qklab-tokens";
    m["files"]["train.bin"]["crc32"] = 7;
    qk::write_file_atomic(d + "/meta.json", m.dump());
    CHECK_THAT(load(d), Contains("meta.json: files.train.bin: crc32: expected a string, got 7"));
  }
  SECTION("too short for one window") { CHECK_THAT(load(dir + "/good", 100000), Contains("one window needs 100001")); }
  SECTION("a nanoGPT folder without the GPT-2 files") {
    const auto d = fresh("nogpt2");
    std::filesystem::remove(d + "/meta.json");
    CHECK_THAT(load(d), Contains("GPT-2 token ids need gpt2-encoder.json and gpt2-vocab.bpe"));
  }
  SECTION("prepare: bad options and inputs, and the folder it would replace stays whole") {
    auto prep = [&](std::vector<std::string> in, const std::string& tok, double f, const std::string& out) {
      qk::PrepareOptions p;
      p.inputs = std::move(in);
      p.tokenizer = tok;
      p.val_fraction = f;
      p.out_dir = out;
      return error_of([&] { qk::prepare_tokens(p); });
    };
    const std::string before = qkt::slurp(dir + "/good/train.bin") + qkt::slurp(dir + "/good/meta.json");
    qk::write_file_atomic(dir + "/bad.txt", std::string("ok \xff text", 9));
    CHECK_THAT(prep({dir + "/t.txt", dir + "/bad.txt"}, "char", 0.1, dir + "/good"), Contains("bad.txt: invalid UTF-8 at byte offset 3"));
    CHECK(qkt::slurp(dir + "/good/train.bin") + qkt::slurp(dir + "/good/meta.json") == before);
    CHECK_THAT(prep({dir + "/none.txt"}, "char", 0.1, dir + "/x"), Contains("none.txt: cannot open the text file"));
    CHECK_THAT(prep({dir + "/t.txt"}, "word", 0.1, dir + "/x"), Contains("--tokenizer: expected gpt2, char, bpe:N"));
    CHECK_THAT(prep({dir + "/t.txt"}, "char", 1.5, dir + "/x"), Contains("--val-fraction: expected a number in (0, 1)"));
    CHECK_THAT(prep({dir + "/t.txt"}, "bpe:12", 0.1, dir + "/x"), Contains("bpe:N: N is the vocabulary size, 257 to"));
    CHECK_THAT(prep({dir + "/t.txt"}, "gpt2", 0.1, dir + "/x"), Contains("gpt2-encoder.json is missing"));
    qk::write_file_atomic(dir + "/one.txt", "word");
    CHECK_THAT(prep({dir + "/one.txt"}, "char", 0.1, dir + "/x"), Contains("validation part has"));
    for (const auto& e : std::filesystem::directory_iterator(dir + "/good"))
      CHECK(e.path().filename().string().find(".partial") == std::string::npos);
  }
}

TEST_CASE("tokens: the CLI prepares a folder, trains on it, stops and resumes bit-identically — bad folders exit 2",
          "[data][tokens][resume]") {
  const auto dir = qkt::temp_dir("tokens-cli");
  qk::write_file_atomic(dir + "/t.txt", sample_text());
  auto p = qkt::cli("prepare " + dir + "/t.txt --tokenizer char --val-fraction 0.1 --out " + dir + "/tok", dir);
  INFO(p.out << p.err);
  REQUIRE(p.code == 0);
  CHECK_THAT(p.out, Contains("training +") && Contains("validation tokens (char") && Contains("MB/s on"));
  const std::string args = "--preset default --set data.kind=tokens --set data.path=" + dir +
                           "/tok --set model.context_length=32 --set train.steps=30 --set train.eval_every=10 "
                           "--set train.batch_size=8 --set model.drop_rate=0.1 --quiet";
  auto a = qkt::cli("train " + args + " --out " + dir + "/a", dir);
  INFO(a.out << a.err);
  REQUIRE(a.code == 0);
  auto b1 = qkt::cli("train " + args + " --stop-at 13 --out " + dir + "/b", dir);
  REQUIRE(b1.code == 0);
  auto b2 = qkt::cli("train --resume " + dir + "/b --quiet", dir);
  INFO(b2.out << b2.err);
  REQUIRE(b2.code == 0);
  const auto ra = qk::read_metrics_csv(dir + "/a/metrics.csv"), rb = qk::read_metrics_csv(dir + "/b/metrics.csv");
  REQUIRE(ra.size() == rb.size());
  REQUIRE(ra.size() >= 6);
  for (size_t i = 0; i < ra.size(); ++i) {
    CHECK(ra[i].train_loss == rb[i].train_loss);
    CHECK(ra[i].val_loss == rb[i].val_loss);
  }
  CHECK(ra.back().val_loss < ra.front().val_loss);
  // epochs make no sense for random windows; a missing folder names itself
  auto e = qkt::cli("train " + args + " --set train.epochs=2 --out " + dir + "/e", dir);
  CHECK(e.code == 2);
  CHECK_THAT(e.err, Contains("train.epochs: token files are read as random windows"));
  auto m = qkt::cli("train --preset default --set data.kind=tokens --set data.path=" + dir + "/nowhere --out " + dir + "/m", dir);
  CHECK(m.code == 2);
  CHECK_THAT(m.err, Contains("nowhere: not a folder"));
  auto q = qkt::cli("prepare " + dir + "/t.txt --tokenizer char --val-fraction 2 --out " + dir + "/q", dir);
  CHECK(q.code == 2);
  CHECK_THAT(q.err, Contains("--val-fraction"));
}
