// QKLab engine — head ablation and activation patching (see causal.h).
#include "causal.h"

#include <cmath>

#include "analysis.h"
#include "error.h"
#include "linalg.h"

namespace qk {

namespace {

// Clears every layer's hook when it goes out of scope (also when an evaluation throws).
struct HookScope {
  GPTModelImpl& m;
  explicit HookScope(GPTModelImpl& model) : m(model) {}
  ~HookScope() {
    for (int l = 0; l < m.config().n_layers; ++l) m.attention(l).head_hook = nullptr;
  }
};

// logit[a_clean] − logit[a_corrupt] at each pair's position: (N) float64.
torch::Tensor logit_diff(const torch::Tensor& logits, const torch::Tensor& pos, const torch::Tensor& ac,
                         const torch::Tensor& ax) {
  const auto n = torch::arange(logits.size(0), torch::kInt64);
  const auto at = logits.index({n, pos}).to(torch::kFloat64);  // (N, V)
  return at.gather(1, ac.unsqueeze(1)).squeeze(1) - at.gather(1, ax.unsqueeze(1)).squeeze(1);
}

}  // namespace

std::vector<torch::Tensor> record_heads(GPTModelImpl& m, const torch::Tensor& inputs, ForwardTrace* trace,
                                        torch::Tensor* logits) {
  const int L = m.config().n_layers;
  std::vector<torch::Tensor> got(L);
  HookScope scope(m);
  for (int l = 0; l < L; ++l)
    m.attention(l).head_hook = [&got, l](const torch::Tensor& c) {
      got[l] = c.detach().clone();
      return c;
    };
  EvalScope eval(m);
  auto out = m.forward(inputs, nullptr, trace);
  if (logits) *logits = out;
  return got;
}

PatchPair patch_pair(const std::vector<int64_t>& ids, int64_t p) {
  PatchPair pp;
  pp.clean = ids;
  pp.corrupt = ids;
  pp.position = p;
  if (p <= 0 || p >= static_cast<int64_t>(ids.size())) return {};
  const int64_t x = ids[p];
  int64_t o = -1;
  for (int64_t j = p - 1; j >= 0 && o < 0; --j)
    if (ids[j] == x) o = j;
  int64_t pick = -1;
  if (o >= 0)  // the nearest token to o at an even distance from it
    for (int64_t dist = 2; pick < 0 && (o - dist >= 0 || o + dist < p); dist += 2) {
      if (o + dist < p && ids[o + dist] != x) pick = o + dist;
      else if (o - dist >= 0 && ids[o - dist] != x) pick = o - dist;
    }
  for (int64_t j = p - 1; pick < 0 && j >= 0; --j)
    if (ids[j] != x) pick = j;
  if (pick < 0) return {};
  pp.corrupt[p] = ids[pick];
  return pp;
}

std::vector<PatchPair> patch_pairs(const std::vector<Batch>& probe, int max_pairs) {
  std::vector<PatchPair> out;
  for (const auto& b : probe) {
    const auto in = b.inputs.to(torch::kCPU).contiguous(), tg = b.targets.to(torch::kCPU).contiguous();
    const int64_t B = in.size(0), T = in.size(1);
    for (int64_t i = 0; i < B && static_cast<int>(out.size()) < max_pairs; ++i) {
      const int64_t* row = in[i].data_ptr<int64_t>();
      const int64_t* trow = tg[i].data_ptr<int64_t>();
      int64_t p = T - 1;
      for (int64_t t = T - 1; t >= 0; --t)
        if (trow[t] != -100) { p = t; break; }
      auto pp = patch_pair(std::vector<int64_t>(row, row + T), p);
      if (!pp.clean.empty()) out.push_back(std::move(pp));
    }
  }
  return out;
}

AblationView model_ablation(GPTModelImpl& m, const std::string& variant, const std::vector<Batch>& probe,
                            const std::vector<PatchPair>& pairs, const AblationOptions& o,
                            const std::function<std::string(const std::vector<int64_t>&)>& decode,
                            const std::function<void(int, int)>& on_progress) {
  if (probe.empty()) throw Error("ablation: no validation batches to measure the loss on");
  torch::NoGradGuard ng;
  const auto& cfg = m.config();
  const int L = cfg.n_layers, H = cfg.n_heads;
  const auto dev = m.parameters().front().device();
  AblationView v;
  v.variant = variant;
  v.layers = L;
  v.heads = H;
  const int64_t k = m.attention(0).form_svd().S.size(-1);  // the form's rank bound
  v.ranks = o.ranks;
  if (v.ranks.empty())
    for (int r = 0; r < k; r = r == 0 ? 1 : 2 * r) v.ranks.push_back(r);
  const int total = 1 + 2 * L * H + L * H * static_cast<int>(v.ranks.size()) + (pairs.empty() ? 0 : 2 + L * H);
  int done = 0;
  auto tick = [&] { if (on_progress) on_progress(++done, total); };

  const auto base = evaluate_batches(m, probe, o.accuracy);
  v.base_loss = base.loss;
  v.base_acc = base.acc;
  tick();

  // One traced pass per probe batch: every head's output (for the means) and the residual stream
  // entering each block (B, T, d). An intervention in layer l then recomputes only blocks l…L−1
  // and the read-out; the earlier layers' outputs are these, exactly.
  const size_t NB = probe.size();
  std::vector<std::vector<torch::Tensor>> enter(NB);  // [batch][layer] (B, T, d)
  std::vector<torch::Tensor> targets(NB);
  std::vector<torch::Tensor> mean(L);  // [l] (H, T, hd): per-position mean over the sequences
  double count = 0;
  for (size_t bi = 0; bi < NB; ++bi) {
    ForwardTrace tr;
    const auto rec = record_heads(m, probe[bi].inputs.to(dev), &tr);
    for (int l = 0; l < L; ++l) {
      mean[l] = mean[l].defined() ? mean[l] + rec[l].sum(0) : rec[l].sum(0);
      enter[bi].push_back(l == 0 ? tr.embed : tr.resid[size_t(l - 1)]);
    }
    targets[bi] = probe[bi].targets.to(dev).flatten();
    count += static_cast<double>(probe[bi].inputs.size(0));
  }
  for (auto& t : mean)
    if (t.defined()) t = t / count;
  // The loss of each of n stacked copies (n·B, T, d) run from block l to the read-out, added to
  // total[j] (one mean per batch, as evaluate_batches).
  EvalScope eval(m);
  auto run_from = [&](GPTModelImpl& model, int l, torch::Tensor x, size_t bi, int64_t n, std::vector<double>& total) {
    for (int j = l; j < L; ++j) x = model.block(j).forward(x, nullptr);
    const int64_t B = x.size(0) / n;
    for (int64_t j = 0; j < n; ++j)
      total[size_t(j)] += torch::nn::functional::cross_entropy(model.unembed(x.narrow(0, j * B, B)).flatten(0, 1),
                                                               targets[bi]).item<double>();
  };

  // Zero and mean ablation, the heads batched: copy 2h zeroes head h, copy 2h+1 puts in its mean;
  // up to kEvalFuseTokens tokens of copies go through the blocks together. The copies share layer
  // l's input, so its scores and values are computed once and the hook stacks the copies
  // (attention.h): each copy runs from layer l's out_proj on.
  v.zero_loss.assign(size_t(L * H), 0.0);
  v.mean_loss.assign(size_t(L * H), 0.0);
  {
    HookScope scope(m);
    for (int l = 0; l < L; ++l) {
      std::vector<double> zero(size_t(H), 0.0), meanl(size_t(H), 0.0);
      for (int h0 = 0; h0 < H;) {
        const int64_t per = std::max<int64_t>(1, kEvalFuseTokens / std::max<int64_t>(1, 2 * probe[0].inputs.numel()));
        const int h1 = static_cast<int>(std::min<int64_t>(H, h0 + per));
        const int64_t n = 2 * (h1 - h0);
        for (size_t bi = 0; bi < NB; ++bi) {
          const int64_t B = enter[bi][size_t(l)].size(0);
          const auto ml = mean[l];
          m.attention(l).head_hook = [h0, h1, B, n, ml](const torch::Tensor& c) {  // (B, H, T, hd)
            auto out = c.repeat({n, 1, 1, 1});                                     // (n·B, H, T, hd)
            for (int h = h0; h < h1; ++h) {
              out.narrow(0, 2 * (h - h0) * B, B).select(1, h).zero_();
              auto part = out.narrow(0, (2 * (h - h0) + 1) * B, B).select(1, h);  // (B, T, hd)
              part.copy_(ml.select(0, h).narrow(0, 0, c.size(2)).unsqueeze(0).expand_as(part));
            }
            return out;
          };
          std::vector<double> total(size_t(n), 0.0);
          run_from(m, l, enter[bi][size_t(l)], bi, n, total);  // block l stacks the n copies
          for (int h = h0; h < h1; ++h) {
            zero[size_t(h)] += total[size_t(2 * (h - h0))];
            meanl[size_t(h)] += total[size_t(2 * (h - h0) + 1)];
          }
        }
        m.attention(l).head_hook = nullptr;
        for (int h = h0; h < h1; ++h) {
          v.zero_loss[size_t(l * H + h)] = zero[size_t(h)] / double(NB);
          tick();
          v.mean_loss[size_t(l * H + h)] = meanl[size_t(h)] / double(NB);
          tick();
        }
        h0 = h1;
      }
    }
  }

  // Rank ablation on a copy: one head's form at a time, the others untouched; from its layer on.
  // The layer's attention parameters are put back exactly after each (head, rank): a variant's
  // set_forms may start from the weights it finds (shared-qkv's factor is the one nearest its
  // current W), so a rank must not start from the previous rank's cut.
  {
    GPTModel c = clone_model(m);
    EvalScope eval_c(*c);
    for (int l = 0; l < L; ++l) {
      auto& att = c->attention(l);
      const auto u = att.key_bias();
      const auto svd = att.form_svd();
      std::vector<torch::Tensor> saved;
      {
        torch::NoGradGuard ng;
        for (auto& p : att.parameters()) saved.push_back(p.detach().clone());
      }
      auto restore = [&] {
        torch::NoGradGuard ng;
        auto ps = att.parameters();
        for (size_t k = 0; k < ps.size(); ++k) ps[k].copy_(saved[k]);
      };
      for (int h = 0; h < H; ++h) {
        std::vector<double> row;
        for (int r : v.ranks) {
          att.truncate_head_form(h, r, FormSvd{svd.U[h], svd.S[h], svd.Vh[h]});
          att.set_key_bias(u);
          std::vector<double> total(1, 0.0);
          for (size_t bi = 0; bi < NB; ++bi) run_from(*c, l, enter[bi][size_t(l)], bi, 1, total);
          row.push_back(total[0] / double(NB));
          restore();
          tick();
        }
        v.rank_loss.push_back(row);
      }
    }
  }

  if (!pairs.empty()) {
    const int64_t N = static_cast<int64_t>(pairs.size()), T = static_cast<int64_t>(pairs.front().clean.size());
    std::vector<int64_t> cl, co, pos;
    for (const auto& p : pairs) {
      if (static_cast<int64_t>(p.clean.size()) != T) continue;
      cl.insert(cl.end(), p.clean.begin(), p.clean.end());
      co.insert(co.end(), p.corrupt.begin(), p.corrupt.end());
      pos.push_back(p.position);
    }
    const int64_t n = static_cast<int64_t>(pos.size());
    (void)N;
    const auto clean = torch::tensor(cl, torch::kInt64).view({n, T}).to(dev);
    const auto corrupt = torch::tensor(co, torch::kInt64).view({n, T}).to(dev);
    const auto position = torch::tensor(pos, torch::kInt64);
    EvalScope eval(m);
    const auto clean_heads = record_heads(m, clean);
    const auto lc = m.forward(clean).to(torch::kCPU);
    tick();
    const auto lx = m.forward(corrupt).to(torch::kCPU);
    tick();
    const auto nidx = torch::arange(n, torch::kInt64);
    const auto ac = lc.index({nidx, position}).argmax(-1), ax = lx.index({nidx, position}).argmax(-1);
    const auto keep = ac.ne(ax);  // pairs whose answer the corruption changed
    const int64_t kept = keep.sum().item<int64_t>();
    v.patch_pairs = static_cast<int>(kept);
    if (decode && n > 0) {
      v.patch_clean = decode(pairs.front().clean);
      v.patch_corrupt = decode(pairs.front().corrupt);
    }
    auto mean_ld = [&](const torch::Tensor& logits) {
      return kept ? logit_diff(logits, position, ac, ax).masked_select(keep).mean().item<double>() : 0.0;
    };
    v.clean_logit_diff = mean_ld(lc);
    v.corrupt_logit_diff = mean_ld(lx);
    const double span = v.clean_logit_diff - v.corrupt_logit_diff;
    HookScope scope(m);
    for (int l = 0; l < L; ++l) {
      for (int h = 0; h < H; ++h) {
        const auto src = clean_heads[l].select(1, h);  // (N, T, hd)
        m.attention(l).head_hook = [h, src](const torch::Tensor& c) {
          auto out = c.clone();
          out.select(1, h).copy_(src);
          return out;
        };
        const auto lp = m.forward(corrupt).to(torch::kCPU);
        v.patch_restored.push_back(kept && std::abs(span) > 1e-12 ? (mean_ld(lp) - v.corrupt_logit_diff) / span
                                                                  : std::numeric_limits<double>::quiet_NaN());
        m.attention(l).head_hook = nullptr;
        tick();
      }
    }
  }
  return v;
}

}  // namespace qk
