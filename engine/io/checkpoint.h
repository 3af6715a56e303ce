// QKLab engine — model checkpoints (safetensors, the book's state_dict names). Metadata: "qklab.config" (resolved experiment JSON),
// "qklab.variant", "qklab.tokenizer" (JSON), "qklab.step".
#pragma once
#include <torch/torch.h>

#include <string>

#include "config.h"
#include "convert.h"
#include "model.h"

namespace qk {

struct LoadedModel {
  ExperimentConfig config;
  Variant variant;
  GPTModel model{nullptr};
  std::string tokenizer_json;  // may be empty
  int64_t step = 0;
};

void save_model(const std::string& path, GPTModel& model, const ExperimentConfig& cfg,
                const std::string& tokenizer_json, int64_t step);
LoadedModel load_model(const std::string& path);
// Copies every named tensor of `f` into the model; throws naming the file and tensor on a missing
// name, an unexpected name or a shape mismatch.
void load_weights(GPTModel& model, const std::map<std::string, torch::Tensor>& weights,
                  const std::string& source);

}  // namespace qk
