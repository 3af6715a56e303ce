// QKLab engine — budget matching: for a reference variant at a model size, propose model sizes of
// another variant with (as nearly as the integer knobs allow) the same parameter count or the same
// training FLOPs per token. Merged S costs H·d² per layer against 2·d·H·qk for W_Q and W_K, so an
// unmatched comparison is unfair; the knobs are the ones a researcher would turn: a larger or
// smaller qk_head_dim (standard, shared-qk, merged-lowrank), fewer or more layers, a smaller or
// larger d, fewer or more heads. No torch.
#pragma once
#include <string>
#include <vector>

#include "config.h"

namespace qk {

enum class MatchBy { Params, Flops };
MatchBy parse_match_by(const std::string& s);  // "params" | "flops"; throws naming the value
const char* match_by_name(MatchBy m);

struct MatchProposal {
  ModelConfig model;      // the target's model
  std::string knob;       // the key turned, e.g. "model.qk_head_dim"
  int value = 0;          // its new value
  double cost = 0;        // the target's parameters or FLOPs/token at that value
  double reference = 0;   // the reference's
  double gap() const { return reference > 0 ? (cost - reference) / reference : 0; }  // relative
};

// The knobs budget matching may turn, in order of preference on ties.
const std::vector<std::string>& match_knobs();
// A knob's current value in m (qk_head_dim: its effective value, d/H when 0).
int knob_value(const ModelConfig& m, const std::string& knob);

// The best value of each knob (restricted to `knobs` when not empty), sorted by |gap|, each valid
// (validate_config) — for `target` to match `reference`'s cost at cfg.model. vocab: the model's
// vocabulary (cfg.model.vocab_size, or the data's).
std::vector<MatchProposal> propose_matches(const ExperimentConfig& cfg, Variant reference, Variant target,
                                           MatchBy by, int64_t vocab, const std::vector<std::string>& knobs = {});

}  // namespace qk
