// QKLab tests — qklab-cli end to end: train writes a run folder, forward and convert work on its
// checkpoints, and bad input exits 2 with one clear line and no half-written output.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli_run.h"
#include "commands.h"
#include "presets.h"
#include "helpers.h"
#include "checkpoint.h"
#include "run_dir.h"
#include "safetensors.h"

using Catch::Matchers::Contains;

using qkt::cli;
using qkt::exists;

TEST_CASE("cli: train — forward — convert end to end", "[cli]") {
  auto dir = qkt::temp_dir("cli");
  auto run = dir + "/run";
  auto r = cli("train --preset default --set train.steps=30 --set train.eval_every=10 --out " + run, dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("standard") && Contains("merged"));
  CHECK_THAT(r.err, Contains("tok/s") && Contains("ETA"));
  for (auto f : {"/config.json", "/metrics.csv", "/standard.safetensors", "/merged.safetensors"})
    CHECK(exists(run + f));
  auto rows = qk::read_metrics_csv(run + "/metrics.csv");
  CHECK(rows.size() == 8);  // steps 0, 10, 20, 29 for two variants
  CHECK(rows.back().step == 29);

  // A second train into the same folder is refused and leaves it untouched.
  auto before = std::filesystem::last_write_time(run + "/metrics.csv");
  auto again = cli("train --preset default --set train.steps=5 --out " + run, dir);
  CHECK(again.code == 2);
  CHECK_THAT(again.err, Contains("already holds a run"));
  CHECK(std::filesystem::last_write_time(run + "/metrics.csv") == before);

  std::ofstream(dir + "/ids.json") << "[[1, 2, 3, 4], [5, 6, 7, 8]]";
  auto fw = cli("forward --checkpoint " + run + "/standard.safetensors --ids " + dir + "/ids.json --out " + dir + "/fw.safetensors", dir);
  REQUIRE(fw.code == 0);
  auto f = qk::load_safetensors(dir + "/fw.safetensors");
  REQUIRE(f.find("logits"));
  CHECK(f.find("logits")->sizes() == torch::IntArrayRef({2, 4, 33}));
  CHECK(f.find("attn.1")->sizes() == torch::IntArrayRef({2, 4, 4, 4}));

  auto cv = cli("convert --to merged " + run + "/standard.safetensors " + dir + "/conv.safetensors", dir);
  REQUIRE(cv.code == 0);
  auto fw2 = cli("forward --checkpoint " + dir + "/conv.safetensors --ids " + dir + "/ids.json --out " + dir + "/fw2.safetensors", dir);
  REQUIRE(fw2.code == 0);
  auto g = qk::load_safetensors(dir + "/fw2.safetensors");
  const double d = qkt::maxdiff(*f.find("logits"), *g.find("logits"));
  std::cout << "cli convert: logits maxdiff " << d << "\n";
  CHECK(d <= 1e-4);
  // merged -> standard at full rank is the same function; at rank 2 qk_head_dim becomes 2.
  auto back = cli("convert --to standard " + run + "/merged.safetensors " + dir + "/std.safetensors", dir);
  REQUIRE(back.code == 0);
  auto lm = qk::load_model(dir + "/std.safetensors");
  CHECK(lm.config.model.qk_head_dim == 64);
  auto low = cli("convert --to standard --rank 2 " + run + "/merged.safetensors " + dir + "/std2.safetensors", dir);
  REQUIRE(low.code == 0);
  CHECK(qk::load_model(dir + "/std2.safetensors").config.model.qk_head_dim == 2);
  auto wrong = cli("convert --to standard " + run + "/standard.safetensors " + dir + "/x.safetensors", dir);
  CHECK(wrong.code == 2);
  CHECK_THAT(wrong.err, Contains("already standard"));
}

TEST_CASE("cli: bad input exits 2 with one line naming the problem", "[cli]") {
  auto dir = qkt::temp_dir("clibad");
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    auto r = cli(args, dir);
    INFO(args << "\n" << r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains(needle));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
  };
  std::ofstream(dir + "/bad.json") << "{ not json";
  std::ofstream(dir + "/unknown.json") << R"({"train": {"learning_rate": 1}})";
  std::ofstream(dir + "/heads.json") << R"({"model": {"emb_dim": 30, "n_heads": 4}})";
  std::ofstream(dir + "/variant.json") << R"({"variants": ["fused"]})";
  std::ofstream(dir + "/neg.json") << R"({"model": {"n_layers": -2}})";
  std::ofstream(dir + "/empty.txt") << "";
  std::ofstream(dir + "/short.txt") << "far too short";
  std::ofstream(dir + "/ids.json") << "[[1, 2, 3]]";
  std::ofstream(dir + "/junk.safetensors") << "junk";
  expect_error("train --config " + dir + "/bad.json --out " + dir + "/r1", "bad.json: malformed JSON");
  expect_error("train --config " + dir + "/unknown.json --out " + dir + "/r2", "unknown key 'learning_rate'");
  expect_error("train --config " + dir + "/heads.json --out " + dir + "/r3", "must be divisible by model.n_heads");
  expect_error("train --config " + dir + "/variant.json --out " + dir + "/r4", "unknown variant 'fused'");
  expect_error("train --config " + dir + "/neg.json --out " + dir + "/r5", "model.n_layers");
  expect_error("train --preset nope --out " + dir + "/r6", "unknown preset 'nope'");
  expect_error("train --set data.kind=text --set data.path=" + dir + "/missing.txt --out " + dir + "/r7", "missing.txt: cannot open");
  expect_error("train --set data.kind=text --set data.path=" + dir + "/empty.txt --out " + dir + "/r8", "empty.txt: corpus file is empty");
  expect_error("train --set data.kind=text --set data.path=" + dir + "/short.txt --out " + dir + "/r9", "short.txt: corpus too short");
  expect_error("forward --checkpoint " + dir + "/junk.safetensors --ids " + dir + "/ids.json --out " + dir + "/o.st", "junk.safetensors: not a valid safetensors");
  expect_error("convert --to fused a b", "--to: unknown variant 'fused': expected one of 'standard', 'merged', 'shared-qk'");
  CHECK(!exists(dir + "/o.st"));
}

TEST_CASE("book mode reproduces the book's chapter-5 losses at steps 0 and 5", "[cli][book]") {
  QKT_DATA_DIR_OR_SKIP(dd);
  auto dir = qkt::temp_dir("book");
  // Six optimiser steps of the full-size model: evaluations after steps 0 and 5.
  auto r = cli("train --preset book-ch5 --set data.path=" + dd + "/the-verdict.txt --set variants=standard "
               "--set train.epochs=0 --set train.steps=6 --quiet --out " + dir + "/run", dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  // The book's printed numbers (chapter 5 notebook, PyTorch on the same LibTorch 1.13).
  CHECK_THAT(r.out, Contains("untrained standard: train loss 10.988, val loss 10.981"));
  CHECK_THAT(r.out, Contains("step 000000  standard train loss 9.781, val loss 9.933"));
  CHECK_THAT(r.out, Contains("step 000005  standard train loss 8.111, val loss 8.339"));
}

TEST_CASE("seed-ch5 reproduces the seed's MHA_alt1 run of the chapter-5 notebook at steps 0 and 5", "[cli][book][seed]") {
  QKT_DATA_DIR_OR_SKIP(dd);
  auto dir = qkt::temp_dir("seed");
  auto r = cli("train --preset seed-ch5 --set data.path=" + dd + "/the-verdict.txt --set variants=merged-seed "
               "--set train.epochs=0 --set train.steps=6 --quiet --out " + dir + "/run", dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  // What tests/reference/seed_ch5.py (the notebook with the seed's classes) prints under Debian's
  // python3-torch 1.13 (docs/seed-ch5.md): 10.976614316304525 / 10.99705982208252 untrained.
  CHECK_THAT(r.out, Contains("untrained merged-seed: train loss 10.977, val loss 10.997"));
  CHECK_THAT(r.out, Contains("step 000000  merged-seed train loss 10.020, val loss 10.069"));
  CHECK_THAT(r.out, Contains("step 000005  merged-seed train loss 8.089, val loss 8.221"));
}

TEST_CASE("encoders: a projections preset trains with token accuracy, what an encoder cannot do is refused", "[cli][encoder]") {
  auto dir = qkt::temp_dir("encoder");
  // The protocol at a tenth of the data: 1,024 sequences, one epoch = 8 steps of 128.
  auto r = cli("train --preset projections-sub --set data.train_sequences=1024 --set data.val_sequences=256 "
               "--set train.epochs=1 --set train.eval_every=4 --set variants=standard,shared-kv --quiet --out " + dir + "/run", dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("8 steps"));
  auto csv = qkt::slurp(dir + "/run/metrics.csv");
  CHECK_THAT(csv, Contains("val_acc"));
  const auto cfg = nlohmann::json::parse(qkt::slurp(dir + "/run/config.json"));
  CHECK(cfg["model"]["causal"] == false);
  CHECK(cfg["data"]["kind"] == "enc-sub");
  // The last evaluation's token accuracy: a fraction of 256·16 positions, above chance (0.1) after 8 steps.
  std::istringstream lines(csv);
  std::string header, line, last;
  std::getline(lines, header);
  while (std::getline(lines, line))
    if (!line.empty()) last = line;
  std::vector<std::string> h, v;
  for (std::istringstream hs(header); std::getline(hs, line, ',');) h.push_back(line);
  for (std::istringstream vs(last); std::getline(vs, line, ',');) v.push_back(line);
  const auto col = std::find(h.begin(), h.end(), "val_acc") - h.begin();
  REQUIRE(static_cast<size_t>(col) < v.size());
  const double acc = std::stod(v[col]);
  CHECK(acc > 0.1);
  CHECK(acc <= 1.0);
  CHECK(std::abs(acc * 256 * 16 - std::round(acc * 256 * 16)) < 1e-3);  // a count of positions (CSV: 9 digits)
  auto ids = dir + "/ids.json";
  std::ofstream(ids) << "[[1, 2, 3, 4]]";
  auto gen = cli("forward --checkpoint " + dir + "/run/standard.safetensors --ids " + ids + " --generate 3 --out " + dir + "/f.st", dir);
  CHECK(gen.code == 2);
  CHECK_THAT(gen.err, Contains("is an encoder (model.causal = false)"));
  auto fw = cli("forward --checkpoint " + dir + "/run/standard.safetensors --ids " + ids + " --out " + dir + "/f.st", dir);
  CHECK(fw.code == 0);
  auto leak = cli("train --set model.causal=false --out " + dir + "/r2", dir);  // next-token recall would see its answer
  CHECK(leak.code == 2);
  CHECK_THAT(leak.err, Contains("model.causal: false (an encoder"));
  auto endless = cli("train --set data.kind=enc-copy --set train.epochs=2 --out " + dir + "/r3", dir);
  CHECK(endless.code == 2);
  CHECK_THAT(endless.err, Contains("data.train_sequences"));
}

TEST_CASE("cli: tokenize and bpe-train", "[cli][tokenizers]") {
  auto dir = qkt::temp_dir("clitok");
  std::string text;
  for (int i = 0; i < 300; ++i) text += "the merged matrix and the query key product " + std::to_string(i % 7) + "\n";
  std::ofstream(dir + "/t.txt") << text;
  auto bt = cli("bpe-train --vocab-size 280 --out " + dir + "/bpe.json " + dir + "/t.txt", dir);
  INFO(bt.err);
  REQUIRE(bt.code == 0);
  CHECK_THAT(bt.out, Contains("vocabulary 280"));
  auto tk = cli("tokenize --tokenizer bpe:" + dir + "/bpe.json --ids-out " + dir + "/ids.json " + dir + "/t.txt", dir);
  REQUIRE(tk.code == 0);
  CHECK_THAT(tk.out, Contains("tokens (bpe, vocabulary 280"));
  std::ifstream in(dir + "/ids.json");
  auto ids = nlohmann::json::parse(in).get<std::vector<int64_t>>();
  CHECK(!ids.empty());
  auto ch = cli("tokenize --tokenizer char " + dir + "/t.txt", dir);
  CHECK(ch.code == 0);
  CHECK_THAT(ch.out, Contains(std::to_string(text.size()) + " tokens (char"));
  // Train on it with the trained BPE tokenizer.
  auto tr = cli("train --set data.kind=text --set data.path=" + dir + "/t.txt --set data.tokenizer=bpe:" + dir +
                "/bpe.json --set train.steps=3 --quiet --out " + dir + "/run", dir);
  INFO(tr.err);
  CHECK(tr.code == 0);
  auto bad = cli("tokenize --tokenizer gpt2 " + dir + "/t.txt", dir);
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Contains("needs --encoder"));
  const std::string dd = qkt::data_dir();
  if (!dd.empty()) {
    auto g = cli("tokenize --tokenizer gpt2 --encoder " + dd + "/gpt2-encoder.json --vocab " + dd +
                 "/gpt2-vocab.bpe " + dd + "/the-verdict.txt", dir);
    CHECK(g.code == 0);
    CHECK_THAT(g.out, Contains("5145 tokens (gpt2"));
  }
}

namespace {
using qkt::slurp;
int csv_rows(const std::string& path) {  // data rows (lines after the header)
  std::ifstream in(path);
  int n = -1;
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) ++n;
  return n;
}
// Width and height from a PNG's IHDR chunk (big-endian, bytes 16..23).
std::pair<int, int> png_size(const std::string& path) {
  const std::string b = slurp(path);
  if (b.size() < 24 || b.compare(1, 3, "PNG") != 0) return {0, 0};
  auto be = [&](size_t at) {
    return (int(uint8_t(b[at])) << 24) | (int(uint8_t(b[at + 1])) << 16) | (int(uint8_t(b[at + 2])) << 8) |
           int(uint8_t(b[at + 3]));
  };
  return {be(16), be(20)};
}
}  // namespace

TEST_CASE("cli: a run with two seeds analyses every seed (and reports one seed at a time)", "[cli][seeds]") {
  auto dir = qkt::temp_dir("seeds");
  auto run = dir + "/run";
  auto r = cli("train --preset default --set train.steps=20 --set train.eval_every=10 --set train.seeds=2 --quiet --out " +
                   run, dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  for (auto f : {"/standard-seed123.safetensors", "/standard-seed124.safetensors", "/merged-seed123.safetensors",
                 "/merged-seed124.safetensors"})
    CHECK(exists(run + f));
  const auto rc = qk::read_run(run);
  CHECK(rc.checkpoints.size() == 4);
  CHECK(rc.seeds() == std::vector<int>{123, 124});
  auto a = cli("analyze " + run + " --truncate 0,4,64", dir);
  INFO(a.err);
  REQUIRE(a.code == 0);
  CHECK_THAT(a.out, Contains("standard seed 123") && Contains("merged seed 124"));
  // Every CSV has a seed column; both seeds have rows.
  const std::string metrics = slurp(run + "/analysis/rank_metrics.csv");
  CHECK(metrics.rfind("variant,seed,layer,head,matrix", 0) == 0);
  CHECK_THAT(metrics, Contains("standard,123,0,0,WqWk") && Contains("merged,124,1,3,S"));
  CHECK(csv_rows(run + "/analysis/truncation.csv") == 2 * 2 * 3);  // variants × seeds × ranks
  CHECK(slurp(run + "/analysis/divergence.csv").rfind("seed,from,to,kl", 0) == 0);
  CHECK(csv_rows(run + "/analysis/divergence.csv") == 2);  // one standard–merged pair per seed
  CHECK(exists(run + "/analysis/attention/merged-seed124_layer1.csv"));
#ifdef QKLAB_WITH_REPORT
  auto rep = cli("report " + run + " --seed 124 --out " + dir + "/rep124", dir);
  INFO(rep.err);
  REQUIRE(rep.code == 0);
  CHECK_THAT(rep.out, Contains("seed 124"));
  CHECK_THAT(slurp(dir + "/rep124/index.html"), Contains("seed 124"));
  CHECK_THAT(slurp(dir + "/rep124/rank_metrics.csv"), Contains("merged,124,"));
  auto bad = cli("report " + run + " --seed 999 --out " + dir + "/rep999", dir);
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Contains("no checkpoints of seed 999"));
  CHECK(!exists(dir + "/rep999"));
#endif
}

#ifdef QKLAB_WITH_REPORT
TEST_CASE("cli: report renders the GUI's report headless from a run folder", "[cli][report]") {
  auto dir = qkt::temp_dir("report");
  auto run = dir + "/run";
  auto r = cli("train --preset default --set train.steps=40 --set train.eval_every=10 --set train.spectra_every=10 "
               "--quiet --out " + run, dir);
  INFO(r.err);
  REQUIRE(r.code == 0);
  auto rep = cli("report " + run + " --out " + dir + "/report", dir);
  INFO(rep.err);
  REQUIRE(rep.code == 0);
  const std::string d = dir + "/report";
  const std::string html = slurp(d + "/index.html");
  // Every figure as PNG (its own size), SVG and PDF, with its data and a caption in index.html.
  for (std::string f : {"loss", "spectra_L0H0", "spectra_L0", "spectra_L1", "rank_summary", "spectra_history_standard",
                        "spectra_history_merged", "effective_rank", "truncation", "divergence", "attention_L0",
                        "attention_L1"}) {
    INFO(f);
    const auto [w, h] = png_size(d + "/" + f + ".png");
    CHECK(w == 1600);
    CHECK(h >= 1000);
    CHECK(slurp(d + "/" + f + ".svg").find("<svg") != std::string::npos);
    CHECK(slurp(d + "/" + f + ".pdf").rfind("%PDF", 0) == 0);
    CHECK(csv_rows(d + "/" + f + ".csv") > 0);
    CHECK_THAT(html, Contains("src='" + f + ".png'"));
  }
  CHECK(png_size(d + "/loss.png") == std::make_pair(1600, 1000));
  // Truncation: 2 variants × ranks 0, 1, 2, 4, …, 64; rank metrics: 2 variants × 2 layers × 4 heads.
  CHECK(csv_rows(d + "/truncation.csv") == 2 * 8);
  CHECK(csv_rows(d + "/rank_metrics.csv") == 2 * 2 * 4);
  CHECK(csv_rows(d + "/attention_L0.csv") > 0);
  CHECK_THAT(html, Contains("computed at step 40, seed 123") && Contains("<h2>Summary</h2>") &&
                       Contains("training FLOPs / token") && Contains("<h2>Rank metrics</h2>") &&
                       Contains("<h2>Samples</h2>") && Contains("&quot;emb_dim&quot;: 64"));
  // Custom size; an earlier report is replaced whole.
  auto big = cli("report " + run + " --out " + d + " --size 800x600 --scale 1", dir);
  REQUIRE(big.code == 0);
  CHECK(png_size(d + "/loss.png") == std::make_pair(800, 600));
  CHECK(!exists(d + ".partial"));
  CHECK(!exists(d + ".old"));
  // Bad input: one line, exit 2, the report already there untouched.
  auto bs = cli("report " + run + " --out " + d + " --size huge", dir);
  CHECK(bs.code == 2);
  CHECK_THAT(bs.err, Contains("--size: expected WIDTHxHEIGHT"));
  CHECK(png_size(d + "/loss.png") == std::make_pair(800, 600));
  auto nr = cli("report " + dir + " --out " + dir + "/x", dir);
  CHECK(nr.code == 2);
  CHECK_THAT(nr.err, Contains("not a run folder"));
}
#endif

TEST_CASE("presets: every name, then its description in one column", "[cli]") {
  std::ostringstream out;
  REQUIRE(qk::cmd_presets(false, "", out) == 0);
  std::istringstream in(out.str());
  std::set<size_t> columns;
  size_t lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    const auto gap = line.find("  ");  // names have no spaces; at least two before the description
    REQUIRE(gap != std::string::npos);
    const auto col = line.find_first_not_of(' ', gap);
    REQUIRE(col != std::string::npos);
    columns.insert(col);
  }
  CHECK(lines == qk::presets().size());
  CHECK(columns.size() == 1);
}
