// QKLab engine — checkpoint save/load and exact conversion.
#include "checkpoint.h"

#include <nlohmann/json.hpp>

#include "config.h"
#include "error.h"
#include "safetensors.h"

namespace qk {

void save_model(const std::string& path, GPTModel& model, const ExperimentConfig& cfg,
                const std::string& tokenizer_json, int64_t step) {
  TensorFile f;
  for (const auto& p : model->named_parameters()) f.tensors.emplace_back(p.key(), p.value());
  for (const auto& b : model->named_buffers()) f.tensors.emplace_back(b.key(), b.value());
  f.metadata["format"] = "pt";
  f.metadata["qklab.config"] = config_to_json(cfg).dump();  // the model's variant is qklab.variant
  f.metadata["qklab.variant"] = variant_name(model->variant());
  f.metadata["qklab.step"] = std::to_string(step);
  if (!tokenizer_json.empty()) f.metadata["qklab.tokenizer"] = tokenizer_json;
  save_safetensors(path, f);
}

void load_weights(GPTModel& model, const std::map<std::string, torch::Tensor>& weights,
                  const std::string& source) {
  torch::NoGradGuard ng;
  auto params = model->named_parameters();
  for (const auto& p : params) {
    auto it = weights.find(p.key());
    if (it == weights.end()) throw Error(source + ": missing tensor '" + p.key() + "'");
    if (it->second.sizes() != p.value().sizes()) {
      std::ostringstream ss;
      ss << source << ": tensor '" << p.key() << "' has shape " << it->second.sizes()
         << ", the model expects " << p.value().sizes();
      throw Error(ss.str());
    }
    p.value().copy_(it->second.to(p.value().dtype()));
  }
  auto buffers = model->named_buffers();
  for (const auto& [name, t] : weights)
    if (!params.contains(name) && !buffers.contains(name))
      throw Error(source + ": unexpected tensor '" + name + "' (not a parameter of a " +
                  variant_name(model->variant()) + " model)");
}

LoadedModel load_model(const std::string& path) {
  TensorFile f = load_safetensors(path);
  auto meta = [&](const std::string& key) -> std::string {
    auto it = f.metadata.find(key);
    if (it == f.metadata.end())
      throw Error(path + ": not a QKLab checkpoint: __metadata__ lacks '" + key + "'");
    return it->second;
  };
  LoadedModel lm;
  const nlohmann::json cj = parse_json(meta("qklab.config"), path + ": __metadata__.qklab.config");
  lm.config = config_from_json(cj, path + " (qklab.config)");
  try {
    lm.variant = parse_variant(meta("qklab.variant"));
  } catch (const Error& e) {
    throw Error(path + ": __metadata__.qklab.variant: " + e.what());
  }
  if (lm.config.model.vocab_size <= 0)
    throw Error(path + ": qklab.config: model.vocab_size must be resolved (> 0)");
  validate_config(lm.config, path + " (qklab.config)", /*need_data=*/false);
  auto tk = f.metadata.find("qklab.tokenizer");
  if (tk != f.metadata.end()) lm.tokenizer_json = tk->second;
  auto st = f.metadata.find("qklab.step");
  if (st != f.metadata.end()) lm.step = std::stoll(st->second);
  lm.model = GPTModel(lm.variant, lm.config.model);
  std::map<std::string, torch::Tensor> w(f.tensors.begin(), f.tensors.end());
  load_weights(lm.model, w, path);
  return lm;
}

}  // namespace qk
