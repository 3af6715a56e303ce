// QKLab engine — logit lens and direct logit attribution (see lens.h).
#include "lens.h"

#include <algorithm>
#include <cmath>

#include "causal.h"
#include "error.h"

namespace qk {

using torch::indexing::Slice;

LensRun traced_run(GPTModelImpl& m, const torch::Tensor& ids) {
  LensRun r;
  r.heads = record_heads(m, ids, &r.trace, &r.logits);
  return r;
}

torch::Tensor logit_lens(GPTModelImpl& m, const LensRun& r) {
  EvalScope eval(m);
  std::vector<torch::Tensor> out;
  for (const auto& x : r.trace.resid) out.push_back(m.unembed(x));  // (B, T, V) each
  return torch::stack(out);                                          // (L, B, T, V)
}

torch::Tensor head_writes(GPTModelImpl& m, int layer, const torch::Tensor& z) {
  auto& att = m.attention(layer);
  const int64_t H = z.size(-2), hd = z.size(-1), d = m.config().emb_dim;
  // W_O (d, H·hd) (out_proj's weight, or the identity without one): head h's columns as (H, hd, d).
  const auto W = att.value_path().W_O.view({d, H, hd}).permute({1, 2, 0});
  // (N, H, hd) -> (H, N, hd) · (H, hd, d) -> (H, N, d) -> (..., H, d)
  auto sizes = z.sizes().vec();
  const auto zz = z.to(torch::kFloat64).reshape({-1, H, hd}).transpose(0, 1);
  sizes.back() = d;
  return torch::bmm(zz, W).transpose(0, 1).reshape(sizes);
}

torch::Tensor final_sigma(GPTModelImpl& m, const torch::Tensor& x) {
  const auto x64 = x.to(torch::kFloat64);
  return torch::sqrt(x64.var({-1}, /*unbiased=*/false, /*keepdim=*/true) + m.final_norm->eps);
}

torch::Tensor frozen_final_ln(GPTModelImpl& m, const torch::Tensor& c, const torch::Tensor& sigma) {
  const auto c64 = c.to(torch::kFloat64);
  const auto gamma = m.final_norm->scale.detach().to(torch::kFloat64);
  return gamma * (c64 - c64.mean({-1}, true)) / sigma;
}

torch::Tensor head_logits(GPTModelImpl& m, const LensRun& r) {
  torch::NoGradGuard ng;
  const auto sigma = final_sigma(m, r.trace.resid.back());                 // (B, T, 1)
  const auto WU = m.out_head->weight.detach().to(torch::kFloat64);         // (V, d)
  std::vector<torch::Tensor> out;
  for (size_t l = 0; l < r.heads.size(); ++l) {
    const auto w = head_writes(m, int(l), r.heads[l].transpose(1, 2));    // (B, T, H, d)
    const auto f = frozen_final_ln(m, w, sigma.unsqueeze(-2));             // (B, T, H, d)
    out.push_back(torch::matmul(f, WU.t()).permute({2, 0, 1, 3}));         // (H, B, T, V)
  }
  return torch::stack(out);  // (L, H, B, T, V)
}

namespace {

// The parts' attributions at N selected positions (b, t) of one traced run: (N, P) float64 with the
// columns [embed, head (l, h) for every l, h, attn_bias l, mlp l, final shift], and the whole
// logit[answer] − logit[wrong] (N).
struct Parts {
  torch::Tensor attr, whole;
};
Parts attribute(GPTModelImpl& m, const LensRun& r, const torch::Tensor& b, const torch::Tensor& t,
                const torch::Tensor& answer, const torch::Tensor& wrong) {
  const int L = m.config().n_layers;
  auto at = [&](const torch::Tensor& x) { return x.index({b, t}); };  // (B, T, …) -> (N, …)
  const auto WU = m.out_head->weight.detach().to(torch::kFloat64);    // (V, d)
  const auto dir = WU.index({answer}) - WU.index({wrong});             // (N, d)
  const auto sigma = final_sigma(m, at(r.trace.resid.back()));        // (N, 1)
  auto share = [&](const torch::Tensor& c) { return (frozen_final_ln(m, c, sigma) * dir).sum(-1); };  // (N)
  std::vector<torch::Tensor> cols{share(at(r.trace.embed))};
  for (int l = 0; l < L; ++l) {
    const auto z = at(r.heads[l].transpose(1, 2));                     // (N, H, hd)
    const auto w = head_writes(m, l, z);                               // (N, H, d)
    const auto f = frozen_final_ln(m, w, sigma.unsqueeze(-1));         // (N, H, d)
    const auto s = (f * dir.unsqueeze(1)).sum(-1);                     // (N, H)
    for (int64_t h = 0; h < s.size(1); ++h) cols.push_back(s.select(1, h));
  }
  for (int l = 0; l < L; ++l) {
    const auto bias = m.attention(l).value_path().b_O;  // (d): zeros without out_proj
    cols.push_back(share(bias.expand({b.size(0), bias.size(0)})));
  }
  for (int l = 0; l < L; ++l) cols.push_back(share(at(r.trace.mlp[l])));
  const auto beta = m.final_norm->shift.detach().to(torch::kFloat64);
  cols.push_back((beta * dir).sum(-1));
  const auto lg = at(r.logits).to(torch::kFloat64);                    // (N, V)
  const auto whole = lg.gather(1, answer.unsqueeze(1)).squeeze(1) - lg.gather(1, wrong.unsqueeze(1)).squeeze(1);
  return {torch::stack(cols, 1), whole};
}

// The most likely token other than `answer` at each row of logits (N, V).
torch::Tensor best_wrong(const torch::Tensor& logits, const torch::Tensor& answer) {
  auto l = logits.to(torch::kFloat64).clone();
  l.scatter_(1, answer.unsqueeze(1), -std::numeric_limits<double>::infinity());
  return l.argmax(1);
}

// Fills the view's parts from column sums (P) over `n` positions.
void fill_parts(AttributionView& v, const torch::Tensor& sum, double n) {
  const auto s = (sum / std::max(n, 1.0)).to(torch::kCPU).contiguous();
  const double* p = s.data_ptr<double>();
  const int L = v.layers, H = v.heads;
  v.embed = p[0];
  v.head.assign(p + 1, p + 1 + L * H);
  v.attn_bias.assign(p + 1 + L * H, p + 1 + L * H + L);
  v.mlp.assign(p + 1 + L * H + L, p + 1 + L * H + 2 * L);
  v.final_shift = p[1 + L * H + 2 * L];
}

}  // namespace

int64_t named_token(const Tokenizer* tokenizer, const std::string& text, const std::string& what, int64_t vocab) {
  if (text.empty()) return -1;
  int64_t id = -1;
  if (tokenizer) {
    const auto ids = tokenizer->encode(text);
    if (ids.size() != 1)
      throw Error(what + ": '" + text + "' encodes to " + std::to_string(ids.size()) + " tokens; expected exactly one");
    id = ids.front();
  } else {
    try {
      size_t used = 0;
      id = std::stoll(text, &used);
      if (used != text.size()) throw std::invalid_argument(text);
    } catch (const std::exception&) {
      throw Error(what + ": expected a token id (a task's tokens are numbers), got '" + text + "'");
    }
  }
  if (id < 0 || id >= vocab)
    throw Error(what + ": token " + std::to_string(id) + " outside the vocabulary [0, " + std::to_string(vocab) + ")");
  return id;
}

AttributionView attribution_validation(GPTModelImpl& m, const std::string& variant, const std::vector<Batch>& probe) {
  if (probe.empty()) throw Error("attribution: no validation batches to attribute");
  torch::NoGradGuard ng;
  AttributionView v;
  v.variant = variant;
  v.source = "validation";
  v.layers = m.config().n_layers;
  v.heads = m.config().n_heads;
  const auto dev = m.parameters().front().device();
  torch::Tensor sum;
  double whole = 0, n = 0;
  for (const auto& batch : probe) {
    const auto ids = batch.inputs.to(dev);
    const auto tg = batch.targets.to(dev);
    const auto sel = tg.ne(-100).nonzero();  // (N, 2)
    if (sel.size(0) == 0) continue;
    const auto r = traced_run(m, ids);
    for (int64_t at = 0; at < sel.size(0); at += 1024) {  // bounded memory: (1024, H, d) float64 per part
      const auto chunk = sel.narrow(0, at, std::min<int64_t>(1024, sel.size(0) - at));
      const auto b = chunk.select(1, 0), t = chunk.select(1, 1);
      const auto answer = tg.index({b, t});
      const auto wrong = best_wrong(r.logits.index({b, t}), answer);
      const auto p = attribute(m, r, b, t, answer, wrong);
      sum = sum.defined() ? sum + p.attr.sum(0) : p.attr.sum(0);
      whole += p.whole.sum().item<double>();
      v.max_error = std::max(v.max_error, (p.attr.sum(1) - p.whole).abs().max().item<double>());
    }
    n += double(sel.size(0));
  }
  if (n == 0) throw Error("attribution: the validation batches score no position");
  v.positions = int(n);
  v.logit_diff = whole / n;
  fill_parts(v, sum, n);
  return v;
}

AttributionView attribution_prompt(GPTModelImpl& m, const std::string& variant, const PromptTokens& tokens,
                                   const AttributionTarget& target, const std::function<std::string(int64_t)>& label) {
  if (tokens.ids.empty()) throw Error("attribution: the prompt has no tokens");
  torch::NoGradGuard ng;
  const auto dev = m.parameters().front().device();
  const int64_t T = int64_t(tokens.ids.size()), V = m.config().vocab_size;
  int64_t pos = target.position;
  if (pos < 0)
    for (int64_t i = T - 1; i >= 0 && pos < 0; --i)
      if (i < int64_t(tokens.targets.size()) && tokens.targets[size_t(i)] >= 0) pos = i;
  if (pos < 0) pos = T - 1;
  if (pos >= T) throw Error("attribution: position " + std::to_string(pos) + " outside the prompt's " + std::to_string(T) + " tokens");
  for (int64_t id : {target.answer, target.wrong})
    if (id >= V) throw Error("attribution: token " + std::to_string(id) + " outside the vocabulary of " + std::to_string(V));
  const auto ids = torch::tensor(tokens.ids, torch::kInt64).view({1, T}).to(dev);
  const auto r = traced_run(m, ids);
  const auto row = r.logits[0][pos].to(torch::kFloat64).cpu();  // (V)
  int64_t answer = target.answer;
  if (answer < 0 && pos < int64_t(tokens.targets.size()) && tokens.targets[size_t(pos)] >= 0) answer = tokens.targets[size_t(pos)];
  if (answer < 0) answer = row.argmax().item<int64_t>();
  int64_t wrong = target.wrong;
  if (wrong < 0) wrong = best_wrong(row.unsqueeze(0), torch::tensor({answer})).item<int64_t>();
  if (wrong == answer) throw Error("attribution: the answer and the wrong token are the same token");
  const auto b = torch::zeros({1}, torch::kInt64).to(dev), t = torch::full({1}, pos, torch::kInt64).to(dev);
  const auto p = attribute(m, r, b, t, torch::tensor({answer}).to(dev), torch::tensor({wrong}).to(dev));
  AttributionView v;
  v.variant = variant;
  v.source = "prompt";
  v.layers = m.config().n_layers;
  v.heads = m.config().n_heads;
  v.positions = 1;
  v.answer = label ? label(answer) : std::to_string(answer);
  v.wrong = label ? label(wrong) : std::to_string(wrong);
  v.logit_diff = p.whole.item<double>();
  v.max_error = (p.attr.sum(1) - p.whole).abs().max().item<double>();
  fill_parts(v, p.attr.sum(0).cpu(), 1);
  return v;
}

LogitLensView model_logit_lens(GPTModelImpl& m, const std::string& variant, const PromptTokens& tokens,
                               const std::vector<Batch>& probe, const std::function<std::string(int64_t)>& label,
                               int top) {
  torch::NoGradGuard ng;
  EvalScope eval(m);
  const auto dev = m.parameters().front().device();
  const int L = m.config().n_layers;
  LogitLensView v;
  v.variant = variant;
  v.layers = L;
  v.T = int(tokens.ids.size());
  v.tokens = tokens.labels;
  for (int t = 0; t < v.T; ++t) {
    const int64_t y = t < int(tokens.targets.size()) ? tokens.targets[size_t(t)] : -100;
    v.targets.push_back(y >= 0 ? (label ? label(y) : std::to_string(y)) : "");
  }
  if (v.T > 0) {
    const auto ids = torch::tensor(tokens.ids, torch::kInt64).view({1, v.T}).to(dev);
    ForwardTrace tr;
    m.forward(ids, nullptr, &tr);
    const int k = std::min<int>(top, int(m.config().vocab_size));
    for (int l = 0; l < L; ++l) {
      const auto logp = torch::log_softmax(m.unembed(tr.resid[size_t(l)])[0].to(torch::kFloat64), -1).cpu();  // (T, V)
      const auto tk = logp.topk(k, -1);
      const auto tv = std::get<0>(tk).exp(), ti = std::get<1>(tk);
      for (int t = 0; t < v.T; ++t) {
        const int64_t y = t < int(tokens.targets.size()) ? tokens.targets[size_t(t)] : -100;
        if (y >= 0) {
          const auto row = logp[t];
          v.loss.push_back(-row[y].item<double>());
          v.rank.push_back(row.gt(row[y]).sum().item<int64_t>());
        } else {
          v.loss.push_back(std::numeric_limits<double>::quiet_NaN());
          v.rank.push_back(-1);
        }
        std::vector<std::string> names;
        std::vector<double> probs;
        for (int j = 0; j < k; ++j) {
          const int64_t id = ti[t][j].item<int64_t>();
          names.push_back(label ? label(id) : std::to_string(id));
          probs.push_back(tv[t][j].item<double>());
        }
        v.top_tokens.push_back(std::move(names));
        v.top_probs.push_back(std::move(probs));
      }
    }
  }
  // Over the validation batches: the mean loss and top-1 accuracy of every layer's read-out.
  std::vector<double> loss(size_t(L), 0.0), hit(size_t(L), 0.0);
  double n = 0;
  for (const auto& batch : probe) {
    const auto ids = batch.inputs.to(dev), tg = batch.targets.to(dev);
    const auto keep = tg.ne(-100);
    const double c = double(keep.sum().item<int64_t>());
    if (c == 0) continue;
    ForwardTrace tr;
    m.forward(ids, nullptr, &tr);
    for (int l = 0; l < L; ++l) {
      const auto lg = m.unembed(tr.resid[size_t(l)]).to(torch::kFloat64);  // (B, T, V)
      const auto V = lg.size(-1);
      loss[size_t(l)] += torch::nn::functional::cross_entropy(
                             lg.view({-1, V}), tg.reshape({-1}),
                             torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100).reduction(torch::kSum))
                             .item<double>();
      hit[size_t(l)] += (lg.argmax(-1).eq(tg) & keep).sum().item<double>();
    }
    n += c;
  }
  v.positions = int(n);
  for (int l = 0; l < L; ++l) {
    v.mean_loss.push_back(n > 0 ? loss[size_t(l)] / n : std::numeric_limits<double>::quiet_NaN());
    v.top1.push_back(n > 0 ? hit[size_t(l)] / n : std::numeric_limits<double>::quiet_NaN());
  }
  return v;
}

}  // namespace qk
