// QKLab tests — config JSON round trip, overrides and every bad input the CLI must reject.
#include <catch2/catch.hpp>

#include <fstream>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <torch/torch.h>

#include "blas_kernels.h"
#include "error.h"
#include "helpers.h"
#include "presets.h"

using namespace qk;
using Catch::Matchers::Contains;

TEST_CASE("config round-trips through JSON", "[config]") {
  ExperimentConfig c = preset_config("book-ch5");
  c.model.qk_head_dim = 8;
  c.train.cosine = true;
  c.variants = {Variant::Merged};
  auto j = config_to_json(c);
  auto back = config_from_json(j, "x");
  CHECK(config_to_json(back) == j);
  CHECK(back.model.qk_head_dim == 8);
  CHECK(back.variants.size() == 1);
  CHECK(back.variants[0] == Variant::Merged);
}

TEST_CASE("overrides set dotted keys with typed values", "[config]") {
  ExperimentConfig c;
  apply_override(c, "train.lr=0.01");
  apply_override(c, "model.emb_dim=32");
  apply_override(c, "data.path=/tmp/x.txt");
  apply_override(c, "variants=merged");
  apply_override(c, "train.cosine=true");
  apply_override(c, "train.lr=1");  // integer literal into a float field
  CHECK(c.train.lr == 1.0);
  CHECK(c.model.emb_dim == 32);
  CHECK(c.data.path == "/tmp/x.txt");
  CHECK(c.variants == std::vector<Variant>{Variant::Merged});
  CHECK(c.train.cosine);
  CHECK_THROWS_WITH(apply_override(c, "train.nope=1"), Contains("unknown key 'train.nope'"));
  CHECK_THROWS_WITH(apply_override(c, "bogus.lr=1"), Contains("unknown section 'bogus'"));
  CHECK_THROWS_WITH(apply_override(c, "model.emb_dim=abc"), Contains("model.emb_dim: expected an integer"));
  CHECK_THROWS_WITH(apply_override(c, "noequals"), Contains("expected key=value"));
}

TEST_CASE("bad config files get errors naming the file and key", "[config]") {
  auto dir = qkt::temp_dir("cfg");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  auto f1 = write("malformed.json", "{\"model\": {\"emb_dim\": 64,}");
  CHECK_THROWS_WITH(load_config_file(f1), Contains("malformed.json: malformed JSON"));
  auto f2 = write("unknown.json", R"({"model": {"emb_dim": 64, "embdim": 3}})");
  CHECK_THROWS_WITH(load_config_file(f2), Contains("unknown.json: model: unknown key 'embdim'"));
  auto f3 = write("top.json", R"({"modle": {}})");
  CHECK_THROWS_WITH(load_config_file(f3), Contains("unknown key 'modle'"));
  auto f4 = write("type.json", R"({"train": {"lr": "fast"}})");
  CHECK_THROWS_WITH(load_config_file(f4), Contains("train.lr: expected a number"));
  auto f5 = write("variant.json", R"({"variants": ["standard", "fused"]})");
  CHECK_THROWS_WITH(load_config_file(f5), Contains("unknown variant 'fused'"));
  CHECK_THROWS_WITH(load_config_file(dir + "/missing.json"), Contains("missing.json: cannot open"));
}

TEST_CASE("validation rejects impossible sizes", "[config]") {
  auto bad = [](std::function<void(ExperimentConfig&)> edit, const std::string& key) {
    ExperimentConfig c;
    edit(c);
    CHECK_THROWS_WITH(validate_config(c, "cfg.json"), Contains("cfg.json: " + key));
  };
  bad([](auto& c) { c.model.emb_dim = 30; c.model.n_heads = 4; }, "model.emb_dim: must be divisible");
  bad([](auto& c) { c.model.n_layers = 0; }, "model.n_layers");
  bad([](auto& c) { c.model.context_length = -1; }, "model.context_length");
  bad([](auto& c) { c.train.batch_size = 0; }, "train.batch_size");
  bad([](auto& c) { c.train.lr = -1; }, "train.lr");
  bad([](auto& c) { c.data.kind = "text"; }, "data.path");
  bad([](auto& c) { c.data.kind = "images"; }, "data.kind");
  bad([](auto& c) { c.model.dtype = "float16"; }, "model.dtype");
  bad([](auto& c) { c.train.device = "tpu"; }, "train.device");
  bad([](auto& c) { c.variants.clear(); }, "variants");
  ExperimentConfig ok;
  CHECK_NOTHROW(validate_config(ok, "default"));
}

TEST_CASE("BLAS: OpenBLAS runs the kernels this CPU supports, not a pre-AVX2 fallback", "[core][blas]") {
  // tests/main.cpp calls choose_blas_kernels() first, as every QKLab program does.
  const auto k = qk::choose_blas_kernels();
  INFO("OpenBLAS kernels: before " << k.before << ", now " << k.after << ", OPENBLAS_CORETYPE "
                                   << (std::getenv("OPENBLAS_CORETYPE") ? std::getenv("OPENBLAS_CORETYPE") : "unset"));
  CHECK(k.after == qk::blas_kernel_name());
  CHECK_FALSE(qk::blas_kernels_below_cpu());
  if (k.changed()) {
    // The choice reaches child processes (sweep runs, the PyTorch peers) through the environment.
    REQUIRE(std::getenv("OPENBLAS_CORETYPE"));
    CHECK(k.after == std::string(std::getenv("OPENBLAS_CORETYPE")));
  }
  // A product still computes the same numbers with the new kernels (a 64×48 by 48×32 float32 matmul
  // against float64 accumulation).
  auto a = torch::randn({64, 48}), b = torch::randn({48, 32});
  auto ref = torch::matmul(a.to(torch::kFloat64), b.to(torch::kFloat64));
  CHECK(torch::allclose(torch::matmul(a, b).to(torch::kFloat64), ref, 1e-5, 1e-5));
}
