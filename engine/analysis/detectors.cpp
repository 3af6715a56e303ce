// QKLab engine — head detectors (see detectors.h).
#include "detectors.h"

#include <algorithm>

#include "error.h"

namespace qk {

torch::Tensor detection_pattern(DetectorKind kind, const std::vector<int64_t>& ids) {
  const int64_t T = int64_t(ids.size());
  auto P = torch::zeros({T, T}, torch::kFloat32);
  auto a = P.accessor<float, 2>();
  for (int64_t i = 0; i < T; ++i)
    for (int64_t j = 0; j <= i; ++j) {
      switch (kind) {
        case DetectorKind::PreviousToken: a[i][j] = j == i - 1 ? 1.f : 0.f; break;
        case DetectorKind::DuplicateToken: a[i][j] = j < i && ids[size_t(j)] == ids[size_t(i)] ? 1.f : 0.f; break;
        case DetectorKind::Induction: a[i][j] = j >= 1 && ids[size_t(j - 1)] == ids[size_t(i)] ? 1.f : 0.f; break;
      }
    }
  return P;
}

torch::Tensor detector_scores(const torch::Tensor& patterns, const torch::Tensor& P) {
  const auto A = patterns.to(torch::kFloat64);
  return (A * P.to(torch::kFloat64)).sum({-1, -2}) / A.sum({-1, -2});
}

std::vector<std::vector<int64_t>> repeated_random_tokens(int64_t vocab, int64_t context, int count, uint64_t seed) {
  const int64_t n = (context - 1) / 2;
  if (n < 1) throw Error("head detectors: a context of " + std::to_string(context) + " holds no repeated sequence (needs >= 3)");
  auto gen = at::detail::createCPUGenerator(seed);
  const auto r = torch::randint(vocab, {count, n}, gen, torch::kInt64).contiguous();
  std::vector<std::vector<int64_t>> out;
  for (int s = 0; s < count; ++s) {
    const int64_t* p = r[s].data_ptr<int64_t>();
    std::vector<int64_t> row(p, p + n);
    row.insert(row.end(), p, p + n);
    out.push_back(std::move(row));
  }
  return out;
}

namespace {

// Mean over sequences of the three scores of every head: [kind] (L·H) flattened layer-major.
std::vector<std::vector<double>> mean_scores(GPTModelImpl& m, const std::vector<std::vector<int64_t>>& seqs) {
  const int L = m.config().n_layers, H = m.config().n_heads;
  std::vector<std::vector<double>> out(3, std::vector<double>(size_t(L * H), 0.0));
  if (seqs.empty()) return out;
  const auto dev = m.parameters().front().device();
  EvalScope eval(m);
  for (const auto& ids : seqs) {
    const int64_t T = int64_t(ids.size());
    std::vector<torch::Tensor> attn;
    m.forward(torch::tensor(ids, torch::kInt64).view({1, T}).to(dev), &attn);
    int k = 0;
    for (auto kind : {DetectorKind::PreviousToken, DetectorKind::DuplicateToken, DetectorKind::Induction}) {
      const auto P = detection_pattern(kind, ids);
      for (int l = 0; l < L; ++l) {
        const auto s = detector_scores(attn[size_t(l)][0].cpu(), P).contiguous();  // (H)
        for (int h = 0; h < H; ++h) out[size_t(k)][size_t(l * H + h)] += s[h].item<double>() / double(seqs.size());
      }
      ++k;
    }
  }
  return out;
}

}  // namespace

DetectorView model_detectors(GPTModelImpl& m, const std::string& variant, const std::vector<Batch>& probe, int max_val) {
  torch::NoGradGuard ng;
  const auto& cfg = m.config();
  DetectorView v;
  v.variant = variant;
  v.layers = cfg.n_layers;
  v.heads = cfg.n_heads;
  v.repeated = repeated_random_tokens(cfg.vocab_size, cfg.context_length);
  v.repeated_len = int(v.repeated.front().size());
  for (int i = 1; i < v.repeated_len; ++i) v.uniform_prev_rep += 1.0 / double(i + 1) / double(v.repeated_len);
  auto rep = mean_scores(m, v.repeated);
  v.prev_rep = rep[0];
  v.dup_rep = rep[1];
  v.ind_rep = rep[2];
  std::vector<std::vector<int64_t>> val;
  for (const auto& b : probe) {
    const auto in = b.inputs.to(torch::kCPU).contiguous();
    for (int64_t i = 0; i < in.size(0) && int(val.size()) < max_val; ++i)
      val.emplace_back(in[i].data_ptr<int64_t>(), in[i].data_ptr<int64_t>() + in.size(1));
  }
  v.validation_sequences = int(val.size());
  auto vs = mean_scores(m, val);
  v.prev_val = vs[0];
  v.dup_val = vs[1];
  v.ind_val = vs[2];
  return v;
}

}  // namespace qk
