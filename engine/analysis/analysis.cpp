// QKLab engine — spectra, rank metrics, truncation, conversions, attention maps, KL.
#include "analysis.h"

#include <cmath>
#include <optional>

#include "error.h"
#include "variants.h"

namespace qk {

RankMetrics rank_metrics(const std::vector<double>& s, int64_t rows, int64_t cols, double eps) {
  RankMetrics r;
  if (s.empty()) return r;
  const double smax = s.front();
  double sum = 0, energy = 0;
  for (double v : s) { sum += v; energy += v * v; }
  const double tol = smax * static_cast<double>(std::max(rows, cols)) * eps;
  for (double v : s) r.numerical_rank += v > tol;
  double h = 0;
  for (double v : s)
    if (v > 0 && sum > 0) { const double p = v / sum; h -= p * std::log(p); }
  r.effective_rank = sum > 0 ? std::exp(h) : 0;
  r.stable_rank = smax > 0 ? energy / (smax * smax) : 0;
  double acc = 0;
  r.rank90 = r.rank99 = static_cast<int64_t>(s.size());
  bool got90 = false;
  for (size_t i = 0; i < s.size(); ++i) {
    acc += s[i] * s[i];
    if (!got90 && acc >= 0.9 * energy) { r.rank90 = static_cast<int64_t>(i + 1); got90 = true; }
    if (acc >= 0.99 * energy) { r.rank99 = static_cast<int64_t>(i + 1); break; }
  }
  if (energy == 0) r.rank90 = r.rank99 = 0;
  r.spectral_norm = smax;
  r.nuclear_norm = sum;
  return r;
}

namespace {

// One head's spectrum record from its singular values: padded to d (a factored form has exactly
// zero singular values beyond its rank bound), with its metrics.
HeadSpectrum spectrum_record(const CausalAttentionImpl& att, const ModelConfig& cfg, int layer, int head,
                             const torch::Tensor& sigma) {
  const auto& info = variant_info(att.variant());
  HeadSpectrum hs{info.name, info.matrix_key, layer, head, to_doubles(sigma), {}};
  hs.sigma.resize(cfg.emb_dim, 0.0);
  hs.metrics = rank_metrics(hs.sigma, cfg.emb_dim, cfg.emb_dim, att.form_eps());
  return hs;
}

}  // namespace

std::vector<HeadSpectrum> model_spectra(GPTModelImpl& m) {
  torch::NoGradGuard ng;
  std::vector<HeadSpectrum> out;
  const auto& cfg = m.config();
  for (int l = 0; l < cfg.n_layers; ++l) {
    auto& att = m.attention(l);
    const auto sv = att.form_singular_values();  // (H, k), batched over heads
    for (int h = 0; h < cfg.n_heads; ++h) out.push_back(spectrum_record(att, cfg, l, h, sv[h]));
  }
  return out;
}

HeadSpectrum head_spectrum(GPTModelImpl& m, int layer, int head) {
  torch::NoGradGuard ng;
  auto& att = m.attention(layer);
  return spectrum_record(att, m.config(), layer, head, att.form_singular_values(head)[0]);
}

std::vector<double> principal_angles(const torch::Tensor& M1, const torch::Tensor& M2, int k, bool left) {
  auto svd1 = torch::linalg_svd(M1.to(torch::kFloat64), false, c10::nullopt);
  auto svd2 = torch::linalg_svd(M2.to(torch::kFloat64), false, c10::nullopt);
  auto basis = [&](const std::tuple<torch::Tensor, torch::Tensor, torch::Tensor>& s) {
    return left ? std::get<0>(s).slice(1, 0, k) : std::get<2>(s).slice(0, 0, k).transpose(0, 1);
  };
  auto cosines = torch::linalg_svdvals(torch::matmul(basis(svd1).transpose(0, 1), basis(svd2)), c10::nullopt);
  auto angles = torch::acos(cosines.clamp(-1.0, 1.0));  // cosines descending -> angles ascending
  return to_doubles(angles);
}

void truncate_forms(GPTModelImpl& m, int64_t r, int layer) {
  const auto& cfg = m.config();
  for (int l = 0; l < cfg.n_layers; ++l)
    if (layer < 0 || l == layer) m.attention(l).truncate_forms(r);
}

GPTModel clone_model(GPTModelImpl& m) {
  GPTModel c(m.variant(), m.config());
  torch::NoGradGuard ng;
  auto src = m.named_parameters();
  for (auto& p : c->named_parameters()) p.value().copy_(src[p.key()]);
  c->to(m.parameters().front().device());
  return c;
}

std::vector<BatchScore> score_batches(GPTModelImpl& m, const std::vector<Batch>& batches, AccuracyKind accuracy,
                                      int64_t fuse_tokens) {
  EvalScope eval(m);
  const auto dev = m.parameters().front().device();
  const int64_t V = m.config().vocab_size;
  const int64_t cap = std::min<int64_t>(fuse_tokens, std::max<int64_t>(1, (int64_t(256) << 20) / (4 * std::max<int64_t>(1, V))));
  std::vector<BatchScore> out;
  for (size_t i = 0; i < batches.size();) {
    // This forward's batches: [i, j), of one sequence length, within the token cap.
    const int64_t T = batches[i].inputs.size(1);
    size_t j = i + 1;
    int64_t tokens = batches[i].inputs.numel();
    while (fuse_tokens > 0 && j < batches.size() && batches[j].inputs.size(1) == T &&
           tokens + batches[j].inputs.numel() <= cap)
      tokens += batches[j++].inputs.numel();
    std::vector<torch::Tensor> ins;
    for (size_t k = i; k < j; ++k) ins.push_back(batches[k].inputs);
    auto all = m.forward((j - i == 1 ? ins[0] : torch::cat(ins)).to(dev));  // (ΣB, T, V)
    int64_t row = 0;
    for (size_t k = i; k < j; ++k) {
      const auto& b = batches[k];
      const int64_t B = b.inputs.size(0);
      auto logits = all.narrow(0, row, B);
      row += B;
      auto tg = b.targets.to(dev);
      BatchScore s;
      s.loss = torch::nn::functional::cross_entropy(logits.flatten(0, 1), tg.flatten()).item<double>();
      auto mask = tg.ne(-100);  // (B, T)
      switch (accuracy) {
        case AccuracyKind::None: break;
        case AccuracyKind::Sequence: {
          auto wrong = logits.argmax(-1).ne(tg).logical_and(mask).any(1);  // (B)
          auto has = mask.any(1);
          s.correct = has.logical_and(wrong.logical_not()).sum().item<int64_t>();
          s.counted = has.sum().item<int64_t>();
          break;
        }
        case AccuracyKind::Token:
          s.correct = logits.argmax(-1).eq(tg).logical_and(mask).sum().item<int64_t>();
          s.counted = mask.sum().item<int64_t>();
          break;
      }
      out.push_back(s);
    }
    i = j;
  }
  return out;
}

LossAcc combine_scores(const std::vector<BatchScore>& scores, size_t from, size_t to) {
  double total = 0;
  int64_t correct = 0, counted = 0;
  for (size_t k = from; k < to; ++k) {
    total += scores[k].loss;
    correct += scores[k].correct;
    counted += scores[k].counted;
  }
  LossAcc r;
  r.loss = to > from ? total / double(to - from) : std::numeric_limits<double>::quiet_NaN();
  if (counted) r.acc = static_cast<double>(correct) / counted;
  return r;
}

LossAcc evaluate_batches(GPTModelImpl& m, const std::vector<Batch>& batches, AccuracyKind accuracy, int64_t fuse_tokens) {
  const auto s = score_batches(m, batches, accuracy, fuse_tokens);
  return combine_scores(s, 0, s.size());
}

double mean_kl(GPTModelImpl& a, GPTModelImpl& b, const std::vector<Batch>& batches) {
  EvalScope eval_a(a), eval_b(b);
  const auto dev = a.parameters().front().device();
  double total = 0;
  int64_t count = 0;
  for (const auto& batch : batches) {
    auto in = batch.inputs.to(dev);
    auto mask = batch.targets.to(dev).ne(-100);  // scored positions only
    auto la = torch::log_softmax(a.forward(in).to(torch::kFloat64), -1);  // (B, T, V)
    auto lb = torch::log_softmax(b.forward(in).to(torch::kFloat64), -1);
    auto kl = (la.exp() * (la - lb)).sum(-1);  // (B, T)
    total += kl.masked_select(mask).sum().item<double>();
    count += mask.sum().item<int64_t>();
  }
  return count ? total / count : 0.0;
}

std::vector<int64_t> generate_ids(GPTModelImpl& m, std::vector<int64_t> ids, int max_new, double temperature,
                                  int top_k, at::Generator* gen) {
  if (!m.config().causal)
    throw Error("generate: the model is an encoder (model.causal = false): it predicts a label per position, not the next token");
  EvalScope eval(m);
  const auto dev = m.parameters().front().device();
  const int64_t ctx = m.config().context_length;
  if (ids.empty()) ids.push_back(0);
  for (int k = 0; k < max_new; ++k) {
    const int64_t start = std::max<int64_t>(0, static_cast<int64_t>(ids.size()) - ctx);
    auto idx = torch::tensor(std::vector<int64_t>(ids.begin() + start, ids.end()), torch::kInt64).view({1, -1}).to(dev);
    auto logits = m.forward(idx).select(1, -1);  // (1, V)
    if (temperature <= 0) {
      ids.push_back(torch::softmax(logits, -1).argmax(-1).item<int64_t>());
      continue;
    }
    auto l = logits[0].to(torch::kFloat64).cpu();
    if (top_k > 0 && top_k < l.size(0)) {
      auto kth = std::get<0>(l.topk(top_k)).min();
      l = l.masked_fill(l < kth, -std::numeric_limits<double>::infinity());
    }
    auto probs = torch::softmax(l / temperature, -1);
    ids.push_back(torch::multinomial(probs, 1, false, gen ? c10::optional<at::Generator>(*gen) : c10::nullopt)
                      .item<int64_t>());
  }
  return ids;
}

torch::Tensor diagonal_mass(const torch::Tensor& w) {
  return torch::diagonal(w.to(torch::kFloat64), 0, -2, -1).mean(std::vector<int64_t>{0, 2});  // (B, H, T) -> (H)
}

std::vector<std::vector<double>> model_diagonal_mass(GPTModelImpl& m, const std::vector<Batch>& batches) {
  EvalScope eval(m);
  const int L = m.config().n_layers, H = m.config().n_heads;
  std::vector<std::vector<double>> sum(L, std::vector<double>(H, 0.0));
  for (const auto& b : batches) {
    std::vector<torch::Tensor> attn;
    m.forward(b.inputs.to(m.parameters().front().device()), &attn);
    for (int l = 0; l < L; ++l) {
      const auto d = to_doubles(diagonal_mass(attn[l]));
      for (int h = 0; h < H; ++h) sum[l][h] += d[h] / double(batches.size());
    }
  }
  return sum;
}

AttentionMaps attention_maps(GPTModelImpl& m, const std::vector<int64_t>& ids) {
  if (ids.empty()) throw Error("attention: the prompt encodes to no tokens");
  EvalScope eval(m);
  const int64_t T = std::min<int64_t>(static_cast<int64_t>(ids.size()), m.config().context_length);
  auto idx = torch::tensor(std::vector<int64_t>(ids.end() - T, ids.end()), torch::kInt64).view({1, T});
  std::vector<torch::Tensor> attn;
  m.forward(idx.to(m.parameters().front().device()), &attn);
  AttentionMaps out;
  for (auto& a : attn) {
    auto w = a[0].to(torch::kFloat64).cpu();  // (H, T, T)
    auto ent = -(w * torch::log(w.clamp_min(1e-300))).sum(-1).mean(-1);  // (H)
    auto sv = torch::linalg_svdvals(w, c10::nullopt);                  // (H, T)
    std::vector<double> e;
    std::vector<int64_t> rk;
    for (int64_t h = 0; h < w.size(0); ++h) {
      e.push_back(ent[h].item<double>());
      const double tol = sv[h][0].item<double>() * T * std::numeric_limits<float>::epsilon();
      rk.push_back(sv[h].gt(tol).sum().item<int64_t>());
    }
    out.weights.push_back(w.to(torch::kFloat32));
    out.entropy.push_back(e);
    out.rank.push_back(rk);
    out.diagonal.push_back(to_doubles(diagonal_mass(w.unsqueeze(0))));
  }
  return out;
}

PromptTokens prompt_tokens(const Tokenizer* tokenizer, const std::vector<Batch>& probe, const std::string& prompt,
                           int64_t context_length) {
  PromptTokens t;
  if (tokenizer && !prompt.empty()) {
    t.ids = tokenizer->encode(prompt);
    t.targets.assign(t.ids.begin() + (t.ids.empty() ? 0 : 1), t.ids.end());
    t.targets.push_back(-100);
  } else if (!probe.empty()) {
    // Tasks: the prompt names a validation sequence by number (empty: the first).
    int64_t k = 0;
    if (!prompt.empty()) {
      try {
        k = std::stoll(prompt);
      } catch (const std::exception&) {
        throw Error("attention: for a task, the prompt is the number of a validation sequence, got '" + prompt + "'");
      }
    }
    int64_t total = 0;
    for (const auto& b : probe) total += b.inputs.size(0);
    if (k < 0 || k >= total)
      throw Error("attention: validation sequence " + std::to_string(k) + " outside [0, " + std::to_string(total) + ")");
    for (const auto& b : probe) {
      if (k < b.inputs.size(0)) {
        auto row = b.inputs[k].contiguous();
        t.ids.assign(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
        auto trow = b.targets[k].to(torch::kInt64).contiguous();
        t.targets.assign(trow.data_ptr<int64_t>(), trow.data_ptr<int64_t>() + trow.numel());
        break;
      }
      k -= b.inputs.size(0);
    }
  }
  if (t.ids.empty()) throw Error("attention: the prompt encodes to no tokens");
  const int64_t T = std::min<int64_t>(static_cast<int64_t>(t.ids.size()), context_length);
  t.ids.erase(t.ids.begin(), t.ids.end() - T);
  t.targets.erase(t.targets.begin(), t.targets.end() - T);
  for (auto id : t.ids) t.labels.push_back(tokenizer ? tokenizer->decode({id}) : std::to_string(id));
  return t;
}

AttentionView attention_view(GPTModelImpl& m, const std::string& name, const PromptTokens& tokens) {
  auto maps = attention_maps(m, tokens.ids);
  AttentionView v;
  v.variant = name;
  v.tokens = tokens.labels;
  v.layers = static_cast<int>(maps.weights.size());
  v.heads = v.layers ? static_cast<int>(maps.weights[0].size(0)) : 0;
  v.T = static_cast<int>(tokens.ids.size());
  for (auto& w : maps.weights)  // (H, T, T) per layer
    for (int64_t h = 0; h < w.size(0); ++h) {
      auto c = w[h].contiguous();
      v.weights.emplace_back(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
    }
  v.entropy = maps.entropy;
  v.rank = maps.rank;
  v.diagonal = maps.diagonal;
  return v;
}

TruncationView truncation_curve(GPTModelImpl& m, const std::string& name, const std::vector<Batch>& probe,
                                const std::vector<int>& ranks, int layer, AccuracyKind accuracy,
                                const std::function<void(int)>& on_rank) {
  TruncationView v;
  v.variant = name;
  const int d = m.config().emb_dim, L = m.config().n_layers;
  for (int r : ranks)
    if (r < 0 || r > d) throw Error("truncation: rank " + std::to_string(r) + " outside [0, " + std::to_string(d) + "]");
  // Every layer's forms decomposed once, for every rank; one copy of the model whose attention
  // parameters are put back before each rank (no clone per rank); a rank at or above every
  // truncated form's rank bound leaves the model as it is: its loss is the model's, evaluated once.
  std::vector<FormSvd> svds;
  int64_t bound = 0;
  for (int l = 0; l < L; ++l) {
    torch::NoGradGuard ng;
    svds.push_back(layer < 0 || l == layer ? m.attention(l).form_svd() : FormSvd());
    if (svds.back().S.defined()) bound = std::max<int64_t>(bound, svds.back().S.size(-1));
  }
  GPTModel c = clone_model(m);
  std::vector<std::vector<torch::Tensor>> saved(static_cast<size_t>(L));
  {
    torch::NoGradGuard ng;
    for (int l = 0; l < L; ++l)
      if (layer < 0 || l == layer)
        for (auto& p : c->attention(l).parameters()) saved[size_t(l)].push_back(p.detach().clone());
  }
  std::optional<LossAcc> full;
  for (int r : ranks) {
    LossAcc la;
    if (r >= bound) {
      if (!full) full = evaluate_batches(m, probe, accuracy, kEvalFuseTokens);
      la = *full;
    } else {
      for (int l = 0; l < L; ++l) {
        if (layer >= 0 && l != layer) continue;
        auto& att = c->attention(l);
        {
          torch::NoGradGuard ng;
          auto ps = att.parameters();
          for (size_t k = 0; k < ps.size(); ++k) ps[k].copy_(saved[size_t(l)][k]);
        }
        att.truncate_forms(r, &svds[size_t(l)]);
      }
      la = evaluate_batches(*c, probe, accuracy, kEvalFuseTokens);
    }
    if (on_rank) on_rank(r);
    v.ranks.push_back(r);
    v.val_loss.push_back(la.loss);
    v.val_acc.push_back(la.acc);
  }
  return v;
}

}  // namespace qk
