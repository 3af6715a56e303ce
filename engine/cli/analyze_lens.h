// QKLab engine — the residual-stream outputs of `qklab-cli analyze`: the logit lens, direct logit
// attribution and head detectors, over every model of the run (columns in the README, "What
// analyze writes").
//   logit_lens.csv         variant,seed,layer,position,token,target,loss,rank,top_tokens,top_probs
//                          (the prompt's sequence, or a task's validation sequence)
//   logit_lens_layers.csv  variant,seed,layer,mean_loss,top1,positions (over the validation set)
//   attribution.csv        variant,seed,source,part,layer,head,attribution,logit_diff,positions,
//                          answer,wrong,max_error; part: embed | head | attn_bias | attn_layer (the
//                          layer's heads and bias) | mlp | final_shift
//   head_detectors.csv     variant,seed,layer,head,detector,sequences,score,uniform
//   detector_sequences.json  the repeated random sequences the detectors ran on
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "analysis.h"
#include "analyze_mechanisms.h"
#include "lens.h"

namespace qk {

struct LensInputs {
  std::vector<MechanismModel> models;
  const std::vector<Batch>* val = nullptr;
  const Tokenizer* tokenizer = nullptr;
  PromptTokens prompt;       // the sequence the lens and the prompt attribution read
  AttributionTarget target;  // the prompt attribution's pair (−1: defaults)
  std::string dir;
};
void write_lens(const LensInputs& in, nlohmann::json& report, std::ostream& out);

}  // namespace qk
