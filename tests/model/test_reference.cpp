// QKLab tests — the engine against PyTorch: tests/reference/make_fixtures.py builds the book's
// GPTModel (and the merged variant) under torch.manual_seed(123) and stores its initial weights,
// token ids, logits and attention weights. Here the C++ model is built under the same seed and
// must reproduce the initial weights bit for bit; loading the Python weights, the forward pass
// must match the Python logits (tolerance 1e-5, observed maxdiff printed).
#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include "checkpoint.h"
#include "helpers.h"
#include "safetensors.h"

using namespace qk;

TEST_CASE("reference: init — logits and attention match PyTorch for both variants", "[reference]") {
  for (std::string v : {"standard", "merged"}) {
    const std::string path = std::string(QKLAB_FIXTURES) + "/reference_" + v + ".safetensors";
    TensorFile f = load_safetensors(path);
    auto cfg = config_from_json(nlohmann::json::parse(f.metadata.at("qklab.config")), path);
    std::map<std::string, torch::Tensor> weights;
    for (auto& [name, t] : f.tensors)
      if (name.rfind("ref.", 0) != 0) weights[name] = t;

    torch::manual_seed(123);
    GPTModel fresh(parse_variant(v), cfg.model);
    double init_diff = 0;
    for (auto& p : fresh->named_parameters()) {
      REQUIRE(weights.count(p.key()));
      const double d = qkt::maxdiff(p.value(), weights[p.key()]);
      if (d != 0) std::cout << "  init differs: " << p.key() << " maxdiff " << d << "\n";
      init_diff = std::max(init_diff, d);
    }
    std::cout << "reference " << v << ": initial weights maxdiff " << init_diff << "\n";
    CHECK(init_diff == 0.0);

    GPTModel m(parse_variant(v), cfg.model);
    load_weights(m, weights, path);
    m->eval();
    std::vector<torch::Tensor> attn;
    auto logits = m->forward(*f.find("ref.ids"), &attn);
    const double d = qkt::maxdiff(logits, *f.find("ref.logits"));
    const double da = qkt::maxdiff(attn[1], *f.find("ref.attn.1"));
    std::cout << "reference " << v << ": logits maxdiff " << d << ", attention maxdiff " << da << "\n";
    CHECK(d <= 1e-5);
    CHECK(da <= 1e-6);
  }
}
