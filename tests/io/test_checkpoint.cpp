// QKLab tests — safetensors format, checkpoints and their error messages.
#include <catch2/catch.hpp>

#include <fstream>

#include "checkpoint.h"
#include "error.h"
#include "helpers.h"
#include "safetensors.h"

using namespace qk;
using Catch::Matchers::Contains;

TEST_CASE("safetensors round trip keeps dtype — shape — bytes and metadata", "[checkpoint]") {
  auto dir = qkt::temp_dir("st");
  TensorFile f;
  f.tensors.emplace_back("a", torch::randn({3, 4}));
  f.tensors.emplace_back("b", torch::arange(10, torch::kInt64).view({2, 5}));
  f.tensors.emplace_back("c", torch::randn({7}, torch::kFloat64));
  f.metadata["k"] = "v";
  save_safetensors(dir + "/x.safetensors", f);
  // Header layout: 8-byte little-endian length, JSON, data aligned to 8.
  std::ifstream in(dir + "/x.safetensors", std::ios::binary);
  unsigned char len[8];
  in.read(reinterpret_cast<char*>(len), 8);
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(len[i]) << (8 * i);
  CHECK((8 + n) % 8 == 0);
  auto g = load_safetensors(dir + "/x.safetensors");
  REQUIRE(g.tensors.size() == 3);
  CHECK(torch::equal(*g.find("a"), f.tensors[0].second));
  CHECK(torch::equal(*g.find("b"), f.tensors[1].second));
  CHECK(g.find("c")->scalar_type() == torch::kFloat64);
  CHECK(g.metadata.at("k") == "v");
}

TEST_CASE("checkpoints load back and reject mismatches", "[checkpoint]") {
  auto dir = qkt::temp_dir("ckpt");
  ExperimentConfig cfg;
  cfg.model = qkt::tiny_model();
  cfg.data.num_pairs = 3;  // fits the tiny model's context of 8
  torch::manual_seed(9);
  GPTModel m(Variant::Merged, cfg.model);
  save_model(dir + "/m.safetensors", m, cfg, "", 42);
  auto lm = load_model(dir + "/m.safetensors");
  CHECK(lm.variant == Variant::Merged);
  CHECK(lm.step == 42);
  auto ids = torch::randint(0, 23, {2, 6}, torch::kInt64);
  m->eval();
  lm.model->eval();
  CHECK(qkt::maxdiff(m->forward(ids), lm.model->forward(ids)) == 0.0);

  // A merged model's weights do not fit a standard model.
  GPTModel s(Variant::Standard, cfg.model);
  auto f = load_safetensors(dir + "/m.safetensors");
  std::map<std::string, torch::Tensor> w(f.tensors.begin(), f.tensors.end());
  CHECK_THROWS_WITH(load_weights(s, w, "m.safetensors"), Contains("m.safetensors: missing tensor 'trf_blocks.0.att.W_query.weight'"));
  // Wrong shape.
  ExperimentConfig bigger = cfg;
  bigger.model.emb_dim = 32;
  GPTModel b(Variant::Merged, bigger.model);
  CHECK_THROWS_WITH(load_weights(b, w, "m.safetensors"), Contains("has shape"));

  // Truncated and garbage files.
  {
    std::ofstream(dir + "/trunc.safetensors", std::ios::binary) << std::string("\x10\x00\x00", 3);
    CHECK_THROWS_WITH(load_model(dir + "/trunc.safetensors"), Contains("trunc.safetensors: not a valid safetensors file"));
    std::string huge("\xff\xff\xff\xff\x00\x00\x00\x00{}", 10);
    std::ofstream(dir + "/huge.safetensors", std::ios::binary) << huge;
    CHECK_THROWS_WITH(load_model(dir + "/huge.safetensors"), Contains("exceeds the limit of 100 MB"));
  }
  CHECK_THROWS_WITH(load_model(dir + "/none.safetensors"), Contains("none.safetensors: cannot open"));
}
