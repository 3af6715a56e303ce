// QKLab engine — analyze's logit lens, attribution and head detector outputs (see analyze_lens.h).
#include "analyze_lens.h"

#include <cmath>
#include <ostream>

#include "circuits.h"
#include "detectors.h"
#include "fsutil.h"
#include "lens.h"
#include "run_dir.h"

namespace qk {
namespace {

using json = nlohmann::json;

std::string S(int64_t v) { return std::to_string(v); }
json num(double v) { return std::isfinite(v) ? json(v) : json(); }
json nums(const std::vector<double>& v) {
  json j = json::array();
  for (double x : v) j.push_back(num(x));
  return j;
}

}  // namespace

void write_lens(const LensInputs& in, json& report, std::ostream& out) {
  const auto& val = *in.val;
  auto label = [&](int64_t id) { return token_label(in.tokenizer, id); };
  std::string lens = "variant,seed,layer,position,token,target,loss,rank,top_tokens,top_probs\n";
  std::string layers = "variant,seed,layer,mean_loss,top1,positions\n";
  std::string attr = "variant,seed,source,part,layer,head,attribution,logit_diff,positions,answer,wrong,max_error\n";
  std::string det = "variant,seed,layer,head,detector,sequences,score,uniform\n";
  json sequences;
  double worst = 0;
  for (const auto& mm : in.models) {
    auto& m = *mm.model;
    const auto lv = model_logit_lens(m, mm.name, in.prompt, val, label);
    for (int l = 0; l < lv.layers; ++l) {
      for (int t = 0; t < lv.T; ++t) {
        const size_t i = size_t(l * lv.T + t);
        std::string toks, probs;
        for (size_t k = 0; k < lv.top_tokens[i].size(); ++k) {
          toks += (k ? " | " : "") + lv.top_tokens[i][k];
          probs += (k ? " " : "") + csv_number(lv.top_probs[i][k]);
        }
        lens += csv_row({mm.name, S(mm.seed), S(l), S(t), csv_text(lv.tokens[size_t(t)]), csv_text(lv.targets[size_t(t)]),
                     csv_number(lv.loss[i]), lv.rank[i] < 0 ? "" : S(lv.rank[i]), csv_text(toks), probs});
      }
      layers += csv_row({mm.name, S(mm.seed), S(l), csv_number(lv.mean_loss[size_t(l)]), csv_number(lv.top1[size_t(l)]),
                     S(lv.positions)});
    }
    report["logit_lens"].push_back({{"variant", mm.name}, {"seed", mm.seed}, {"tokens", lv.tokens},
                                    {"targets", lv.targets}, {"loss", nums(lv.loss)}, {"rank", lv.rank},
                                    {"mean_loss", nums(lv.mean_loss)}, {"top1", nums(lv.top1)},
                                    {"positions", lv.positions}});
    std::vector<AttributionView> av;
    if (!val.empty()) av.push_back(attribution_validation(m, mm.name, val));
    av.push_back(attribution_prompt(m, mm.name, in.prompt, in.target, label));
    for (const auto& a : av) {
      worst = std::max(worst, a.max_error);
      auto put = [&](const std::string& part, int l, int h, double v) {
        attr += csv_row({mm.name, S(mm.seed), a.source, part, l < 0 ? "" : S(l), h < 0 ? "" : S(h), csv_number(v),
                     csv_number(a.logit_diff), S(a.positions), csv_text(a.answer), csv_text(a.wrong),
                     csv_number(a.max_error)});
      };
      put("embed", -1, -1, a.embed);
      for (int l = 0; l < a.layers; ++l) {
        double layer_sum = a.attn_bias[size_t(l)];
        for (int h = 0; h < a.heads; ++h) {
          put("head", l, h, a.head[size_t(l * a.heads + h)]);
          layer_sum += a.head[size_t(l * a.heads + h)];
        }
        put("attn_bias", l, -1, a.attn_bias[size_t(l)]);
        put("attn_layer", l, -1, layer_sum);
        put("mlp", l, -1, a.mlp[size_t(l)]);
      }
      put("final_shift", -1, -1, a.final_shift);
      report["attribution"].push_back({{"variant", mm.name}, {"seed", mm.seed}, {"source", a.source},
                                       {"logit_diff", a.logit_diff}, {"positions", a.positions},
                                       {"answer", a.answer}, {"wrong", a.wrong}, {"embed", a.embed},
                                       {"head", a.head}, {"attn_bias", a.attn_bias}, {"mlp", a.mlp},
                                       {"final_shift", a.final_shift}, {"max_error", a.max_error}});
    }
    const auto d = model_detectors(m, mm.name, val);
    sequences = d.repeated;
    struct Col { const char* name; const std::vector<double>* v; bool rep; };
    for (const Col& c : {Col{"previous_token", &d.prev_rep, true}, Col{"duplicate_token", &d.dup_rep, true},
                         Col{"induction", &d.ind_rep, true}, Col{"previous_token", &d.prev_val, false},
                         Col{"duplicate_token", &d.dup_val, false}, Col{"induction", &d.ind_val, false}}) {
      if (!c.rep && d.validation_sequences == 0) continue;
      for (int l = 0; l < d.layers; ++l)
        for (int h = 0; h < d.heads; ++h)
          det += csv_row({mm.name, S(mm.seed), S(l), S(h), c.name, c.rep ? "repeated" : "validation",
                      csv_number((*c.v)[size_t(l * d.heads + h)]),
                      c.rep && std::string(c.name) == "previous_token" ? csv_number(d.uniform_prev_rep) : ""});
    }
    report["detectors"].push_back({{"variant", mm.name}, {"seed", mm.seed}, {"repeated_len", d.repeated_len},
                                   {"validation_sequences", d.validation_sequences},
                                   {"previous_token", d.prev_rep}, {"duplicate_token", d.dup_rep},
                                   {"induction", d.ind_rep}, {"previous_token_val", d.prev_val},
                                   {"duplicate_token_val", d.dup_val}, {"induction_val", d.ind_val},
                                   {"uniform_previous_token", d.uniform_prev_rep}});
  }
  write_file_atomic(in.dir + "/logit_lens.csv", lens);
  write_file_atomic(in.dir + "/logit_lens_layers.csv", layers);
  write_file_atomic(in.dir + "/attribution.csv", attr);
  write_file_atomic(in.dir + "/head_detectors.csv", det);
  write_file_atomic(in.dir + "/detector_sequences.json", sequences.dump() + "\n");
  out << "residual stream: logit_lens.csv logit_lens_layers.csv attribution.csv head_detectors.csv "
         "detector_sequences.json (attributions add up to the logit difference within "
      << worst << ")\n";
}

}  // namespace qk
