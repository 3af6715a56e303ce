// QKLab tests — models in and out: small random checkpoints in the real layouts (Hugging Face
// GPT-2 with and without the "transformer." prefix, tied and untied; the book's torch.save .pth),
// written by tests/reference/interchange.py with Debian's python3-torch, imported with qklab-cli:
// logits equal the reference's (<= 1e-5); exports load back in the reference (pth through
// GPTModel.load_state_dict(torch.load)) with the same logits; round trips keep every tensor's
// bytes; train --init starts both variants from the imported weights; bad files get one line.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "../cli/cli_run.h"
#include "checkpoint.h"
#include "helpers.h"
#include "pth_reader.h"
#include "run_dir.h"
#include "safetensors.h"

using Catch::Matchers::Contains;
using qkt::cli;
namespace fs = std::filesystem;

namespace {

const std::string kScript = std::string(QKLAB_SOURCE_DIR) + "/tests/reference/interchange.py";

int python(const std::string& args, const std::string& dir) {
  const std::string cmd = qkt::reference_python() + " " + kScript + " " + args + " > " + dir + "/py.txt 2>&1";
  const int rc = std::system(cmd.c_str());
  std::cout << qkt::slurp(dir + "/py.txt");
  return WEXITSTATUS(rc);
}

// The reference files, written once per test process.
const std::string& reference_dir() {
  static const std::string dir = [] {
    auto d = qkt::temp_dir("interchange");
    if (python("write " + d, d) != 0)
      FAIL("tests/reference/interchange.py could not run: /usr/bin/python3 needs python3-torch (setup.sh installs it)");
    return d;
  }();
  return dir;
}

torch::Tensor logits_of(const std::string& checkpoint, const std::string& dir) {
  auto r = cli("forward --checkpoint " + checkpoint + " --ids " + reference_dir() + "/ids.json --out " + dir + "/fw.safetensors", dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  return *qk::load_safetensors(dir + "/fw.safetensors").find("logits");
}

torch::Tensor expected(const std::string& name) {
  return *qk::load_safetensors(reference_dir() + "/expected.safetensors").find(name);
}

void check_all_equal(const std::map<std::string, torch::Tensor>& a, const std::map<std::string, torch::Tensor>& b) {
  REQUIRE(a.size() == b.size());
  for (const auto& [n, t] : a) {
    INFO(n);
    REQUIRE(b.count(n));
    CHECK(t.scalar_type() == b.at(n).scalar_type());
    CHECK(torch::equal(t, b.at(n)));  // same shape, same bits
  }
}

std::map<std::string, torch::Tensor> tensors_of(const std::string& safetensors) {
  auto f = qk::load_safetensors(safetensors);
  return {f.tensors.begin(), f.tensors.end()};
}

}  // namespace

TEST_CASE("import: Hugging Face GPT-2 and the book's .pth give the reference logits", "[interchange]") {
  const auto& ref = reference_dir();
  auto dir = qkt::temp_dir("import");
  for (const auto& [name, src, args] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"hf_prefixed", ref + "/hf_prefixed/model.safetensors", "--from hf-gpt2"},
           {"hf_plain", ref + "/hf_plain/model.safetensors", "--from hf-gpt2"},
           {"book", ref + "/book.pth", "--from pth --set model.n_heads=4"}}) {
    INFO(name);
    auto r = cli("import " + args + " " + src + " " + dir + "/" + name + ".safetensors", dir);
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Contains("standard model, 2 layers, d = 32, 4 heads, context 16, vocabulary 97, qkv_bias"));
    const double diff = qkt::maxdiff(logits_of(dir + "/" + name + ".safetensors", dir), expected(name));
    std::cout << "import " << name << ": logits max |diff| " << diff << "\n";
    CHECK(diff <= 1e-5);
    auto lm = qk::load_model(dir + "/" + name + ".safetensors");
    CHECK(lm.config.model.qkv_bias);
  }
  // The tied head stays tied (out_head = wte), the untied one keeps its own lm_head.
  auto tied = tensors_of(dir + "/hf_prefixed.safetensors"), untied = tensors_of(dir + "/hf_plain.safetensors");
  CHECK(torch::equal(tied["out_head.weight"], tied["tok_emb.weight"]));
  CHECK(!torch::equal(untied["out_head.weight"], untied["tok_emb.weight"]));

  SECTION("convert --to merged is exact with GPT-2's biases (the key bias u_h carries b_query)") {
    auto r = cli("convert --to merged " + dir + "/hf_prefixed.safetensors " + dir + "/merged.safetensors", dir);
    REQUIRE(r.code == 0);
    const double diff = qkt::maxdiff(logits_of(dir + "/merged.safetensors", dir), expected("hf_prefixed"));
    std::cout << "imported GPT-2 converted to merged: logits max |diff| " << diff << "\n";
    CHECK(diff <= 1e-5);
    auto w = tensors_of(dir + "/merged.safetensors");
    REQUIRE(w.count("trf_blocks.0.att.key_bias"));
    CHECK(w["trf_blocks.0.att.key_bias"].abs().max().item<double>() > 1e-3);  // not a zero that happens to pass
  }
  SECTION("train --init: both variants start from the imported weights") {
    auto r = cli("train --preset default --init " + dir + "/hf_prefixed.safetensors --set train.steps=1 --set train.lr=1e-12 "
                 "--set train.weight_decay=0 --quiet --out " + dir + "/run", dir);
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Contains("initialised from"));
    for (const char* v : {"standard", "merged"}) {
      INFO(v);
      const double diff = qkt::maxdiff(logits_of(dir + "/run/" + v + ".safetensors", dir), expected("hf_prefixed"));
      std::cout << "train --init, " << v << " after one step at lr 1e-12: logits max |diff| " << diff << "\n";
      CHECK(diff <= 1e-5);
    }
  }
}

TEST_CASE("export: hf-gpt2 and pth load back in the reference — round trips keep every byte", "[interchange]") {
  const auto& ref = reference_dir();
  auto dir = qkt::temp_dir("export");
  REQUIRE(cli("import --from hf-gpt2 " + ref + "/hf_plain/model.safetensors " + dir + "/plain.safetensors", dir).code == 0);
  REQUIRE(cli("import --from hf-gpt2 " + ref + "/hf_prefixed/model.safetensors " + dir + "/pref.safetensors", dir).code == 0);
  REQUIRE(cli("import --from pth --set model.n_heads=4 " + ref + "/book.pth " + dir + "/book.safetensors", dir).code == 0);

  auto r = cli("export --to hf-gpt2 " + dir + "/plain.safetensors " + dir + "/hf_out", dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(python("check-hf " + dir + "/hf_out " + ref + " hf_plain", dir) == 0);
  check_all_equal(tensors_of(ref + "/hf_plain/model.safetensors"), tensors_of(dir + "/hf_out/model.safetensors"));
  const auto cfg = nlohmann::json::parse(qkt::slurp(dir + "/hf_out/config.json"));
  CHECK(cfg["n_embd"] == 32);
  CHECK(cfg["tie_word_embeddings"] == false);

  REQUIRE(cli("export --to hf-gpt2 " + dir + "/pref.safetensors " + dir + "/hf_tied", dir).code == 0);
  CHECK(python("check-hf " + dir + "/hf_tied " + ref + " hf_prefixed", dir) == 0);
  auto orig = tensors_of(ref + "/hf_prefixed/model.safetensors"), back = tensors_of(dir + "/hf_tied/model.safetensors");
  CHECK(!back.count("lm_head.weight"));
  for (const auto& [n, t] : back) {
    INFO(n);
    REQUIRE(orig.count("transformer." + n));
    CHECK(torch::equal(t, orig["transformer." + n]));
  }

  r = cli("export --to pth " + dir + "/book.safetensors " + dir + "/book.pth", dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(python("check-pth " + dir + "/book.pth " + ref, dir) == 0);  // GPTModel.load_state_dict(torch.load(...))
  check_all_equal(qk::read_torch_state_dict(ref + "/book.pth"), qk::read_torch_state_dict(dir + "/book.pth"));

  auto merged = cli("export --to hf-gpt2 " + dir + "/m.safetensors " + dir + "/x", dir);
  CHECK(merged.code == 2);
}

TEST_CASE("the seed's MHA_alt1 model: its .pth imports as merged-seed with its logits and exports back byte for byte", "[interchange][variants]") {
  // seed.pth: torch.save of the book's GPTModel with the seed's MHA_alt1 in every block (qkv_bias,
  // perturbed biases: S's bias is the key bias), written by the seed's own classes.
  const auto& ref = reference_dir();
  auto dir = qkt::temp_dir("seed-pth");
  auto r = cli("import --from pth " + ref + "/seed.pth " + dir + "/seed.safetensors", dir);  // heads: one module each
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("merged-seed model, 2 layers, d = 32, 4 heads, context 16, vocabulary 97, qkv_bias"));
  const double diff = qkt::maxdiff(logits_of(dir + "/seed.safetensors", dir), expected("seed"));
  std::cout << "import seed.pth: logits max |diff| " << diff << " (tolerance 1e-5)\n";
  CHECK(diff <= 1e-5);
  auto w = tensors_of(dir + "/seed.safetensors");
  CHECK(w.count("trf_blocks.1.att.heads.3.S.weight"));
  CHECK(w.count("trf_blocks.1.att.heads.3.W_value.bias"));
  CHECK(!w.count("trf_blocks.0.att.out_proj.weight"));
  CHECK(w["trf_blocks.0.att.heads.0.S.bias"].abs().max().item<double>() > 1e-2);
  r = cli("export --to pth " + dir + "/seed.safetensors " + dir + "/seed.pth", dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK(python("check-pth " + dir + "/seed.pth " + ref + " seed", dir) == 0);  // the seed's load_state_dict, strict
  check_all_equal(qk::read_torch_state_dict(ref + "/seed.pth"), qk::read_torch_state_dict(dir + "/seed.pth"));
  // Converted to merged (out_proj = I) it is the same function; GPT-2's layout has no place for it.
  r = cli("convert --to merged " + dir + "/seed.safetensors " + dir + "/merged.safetensors", dir);
  REQUIRE(r.code == 0);
  CHECK(qkt::maxdiff(logits_of(dir + "/merged.safetensors", dir), expected("seed")) <= 1e-5);
  auto hf = cli("export --to hf-gpt2 " + dir + "/seed.safetensors " + dir + "/hf", dir);
  CHECK(hf.code == 2);
  CHECK_THAT(hf.err, Contains("this model is merged-seed"));
}

TEST_CASE("import: the GPT-2 tokenizer comes along when vocab.json and merges.txt sit beside", "[interchange][data]") {
  QKT_DATA_DIR_OR_SKIP(dd);
  const auto& ref = reference_dir();
  auto dir = qkt::temp_dir("import-tok");
  fs::copy(ref + "/hf_gpt2vocab", dir + "/gpt2", fs::copy_options::recursive);
  fs::copy_file(dd + "/gpt2-encoder.json", dir + "/gpt2/vocab.json");
  fs::copy_file(dd + "/gpt2-vocab.bpe", dir + "/gpt2/merges.txt");
  auto r = cli("import --from hf-gpt2 " + dir + "/gpt2/model.safetensors " + dir + "/m.safetensors", dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  CHECK_THAT(r.out, Contains("with the GPT-2 tokenizer"));
  auto lm = qk::load_model(dir + "/m.safetensors");
  CHECK_THAT(lm.tokenizer_json, Contains("vocab.json"));
  REQUIRE(cli("export --to hf-gpt2 " + dir + "/m.safetensors " + dir + "/out", dir).code == 0);
  CHECK(qkt::slurp(dir + "/out/merges.txt") == qkt::slurp(dd + "/gpt2-vocab.bpe"));
  CHECK(qkt::slurp(dir + "/out/vocab.json") == qkt::slurp(dd + "/gpt2-encoder.json"));
}

TEST_CASE("import: wrong files get one line naming the tensor — the shapes or the missing setting", "[interchange]") {
  const auto& ref = reference_dir();
  auto dir = qkt::temp_dir("import-bad");
  auto expect_error = [&](const std::string& args, const std::string& needle) {
    auto r = cli(args, dir);
    INFO(args << "\n" << r.out << r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Contains(needle));
    CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
    CHECK(!qkt::exists(dir + "/out.safetensors"));
  };
  // A GPT-2 folder whose file misses a tensor, has one of the wrong shape, or an unknown one.
  auto variant = [&](const std::string& name, const std::function<void(qk::TensorFile&)>& edit) {
    fs::create_directories(dir + "/" + name);
    fs::copy_file(ref + "/hf_plain/config.json", dir + "/" + name + "/config.json");
    auto f = qk::load_safetensors(ref + "/hf_plain/model.safetensors");
    edit(f);
    qk::save_safetensors(dir + "/" + name + "/model.safetensors", f);
    return dir + "/" + name + "/model.safetensors";
  };
  auto missing = variant("missing", [](qk::TensorFile& f) {
    f.tensors.erase(std::remove_if(f.tensors.begin(), f.tensors.end(), [](auto& p) { return p.first == "h.1.ln_2.bias"; }),
                    f.tensors.end());
  });
  auto shape = variant("shape", [](qk::TensorFile& f) {
    for (auto& [n, t] : f.tensors)
      if (n == "h.0.attn.c_proj.weight") t = torch::zeros({32, 31});
  });
  auto unknown = variant("unknown", [](qk::TensorFile& f) { f.tensors.emplace_back("h.0.attn.rotary\x01", torch::zeros({2})); });
  expect_error("import --from hf-gpt2 " + missing + " " + dir + "/out.safetensors", "missing tensor 'h.1.ln_2.bias'");
  expect_error("import --from hf-gpt2 " + shape + " " + dir + "/out.safetensors",
               "tensor 'h.0.attn.c_proj.weight' has shape [32, 31], expected [32, 32]");
  expect_error("import --from hf-gpt2 " + unknown + " " + dir + "/out.safetensors", "unknown tensor h.0.attn.rotary\\x01");
  fs::create_directories(dir + "/noconfig");
  fs::copy_file(ref + "/hf_plain/model.safetensors", dir + "/noconfig/model.safetensors");
  expect_error("import --from hf-gpt2 " + dir + "/noconfig/model.safetensors " + dir + "/out.safetensors", "no config.json beside it");
  expect_error("import --from pth " + ref + "/book.pth " + dir + "/out.safetensors", "pass --set model.n_heads=H");
  expect_error("import --from pth " + ref + "/hf_plain/config.json " + dir + "/out.safetensors", "not a torch.save() zip archive");
  expect_error("import --from onnx x " + dir + "/out.safetensors", "--from: expected 'hf-gpt2' or 'pth'");
}

TEST_CASE("export --to tensorboard-csv: one Wall time Step Value file per series", "[interchange]") {
  auto dir = qkt::temp_dir("tb");
  REQUIRE(cli("train --preset default --set train.steps=30 --set train.eval_every=10 --quiet --out " + dir + "/run", dir).code == 0);
  auto r = cli("export --to tensorboard-csv " + dir + "/run " + dir + "/tb", dir);
  INFO(r.out << r.err);
  REQUIRE(r.code == 0);
  const std::string val = qkt::slurp(dir + "/tb/merged_val_loss.csv");
  CHECK(val.rfind("Wall time,Step,Value\n", 0) == 0);
  CHECK(std::count(val.begin(), val.end(), '\n') == 5);  // header + steps 0, 10, 20, 29
  CHECK_THAT(val, Contains(",29,"));
  for (const char* f : {"standard_train_loss", "standard_val_acc", "kl_standard_to_merged"}) CHECK(qkt::exists(dir + "/tb/" + std::string(f) + ".csv"));
  const auto rows = qk::read_metrics_csv(dir + "/run/metrics.csv");
  CHECK_THAT(val, Contains("," + qk::csv_number(rows.back().val_loss) + "\n"));
}
