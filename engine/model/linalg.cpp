// QKLab engine — linear algebra of bilinear forms (see linalg.h).
#include "linalg.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <limits>

namespace qk {

void for_each_matrix(int64_t n, const std::function<void(int64_t)>& f) {
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) f(i);
  });
}

namespace {

// The SVD of one matrix A·Bᵀ from its factors (d, k): QR of both, SVD of R_A·R_Bᵀ.
FormSvd factored_svd_one(const torch::Tensor& A, const torch::Tensor& B) {
  auto qa = torch::linalg_qr(A, "reduced");  // A = Q_A R_A
  auto qb = torch::linalg_qr(B, "reduced");  // B = Q_B R_B
  auto core = torch::linalg_svd(torch::matmul(std::get<1>(qa), std::get<1>(qb).transpose(-1, -2)), false,
                                c10::nullopt);  // R_A R_Bᵀ = U_c S V_cᵀ
  // A Bᵀ = Q_A (U_c S V_cᵀ) Q_Bᵀ
  return {torch::matmul(std::get<0>(qa), std::get<0>(core)), std::get<1>(core),
          torch::matmul(std::get<2>(core), std::get<0>(qb).transpose(-1, -2))};
}

// f(one matrix of each input) for every matrix of a batch, spread over the cores; each of f's
// outputs stacked back to the batch's leading dims. The inputs (…, r, c) share their leading dims.
std::vector<torch::Tensor> per_matrix(const std::vector<torch::Tensor>& in,
                                      const std::function<std::vector<torch::Tensor>(const std::vector<torch::Tensor>&)>& f) {
  const auto lead = in[0].sizes().slice(0, in[0].dim() - 2).vec();
  if (lead.empty()) return f(in);
  std::vector<torch::Tensor> flat;
  for (const auto& t : in) flat.push_back(t.reshape({-1, t.size(-2), t.size(-1)}));
  std::vector<std::vector<torch::Tensor>> parts(static_cast<size_t>(flat[0].size(0)));
  for_each_matrix(flat[0].size(0), [&](int64_t i) {
    std::vector<torch::Tensor> args;
    for (const auto& t : flat) args.push_back(t[i]);
    parts[static_cast<size_t>(i)] = f(args);
  });
  std::vector<torch::Tensor> out;
  for (size_t k = 0; k < parts[0].size(); ++k) {
    std::vector<torch::Tensor> col;
    for (const auto& p : parts) col.push_back(p[k]);
    auto shape = lead;
    for (int64_t j = 0; j < col[0].dim(); ++j) shape.push_back(col[0].size(j));
    out.push_back(torch::stack(col).reshape(shape));
  }
  return out;
}

}  // namespace

torch::Tensor factored_singular_values(const torch::Tensor& A, const torch::Tensor& B) {
  auto qa = torch::linalg_qr(A.to(torch::kFloat64), "reduced");  // A = Q_A R_A, R_A (…, k, k)
  auto qb = torch::linalg_qr(B.to(torch::kFloat64), "reduced");
  auto core = torch::matmul(std::get<1>(qa), std::get<1>(qb).transpose(-1, -2));  // (…, k, k)
  return torch::linalg_svdvals(core, c10::nullopt);  // A Bᵀ = Q_A (R_A R_Bᵀ) Q_Bᵀ
}

torch::Tensor dense_singular_values(const torch::Tensor& M) {
  // In the matrix's own precision (a float32 S is float32 data: its SVD's backward error is at
  // the float32 level either way, and float32 is ~1.8x faster), returned as float64.
  // The matrices of a batch spread over the cores (LAPACK is serial per matrix).
  return per_matrix({M}, [](const std::vector<torch::Tensor>& m) {
           return std::vector<torch::Tensor>{torch::linalg_svdvals(m[0], c10::nullopt)};
         })[0].to(torch::kFloat64);
}

FormSvd form_svd(const torch::Tensor& M) {
  // U (…, d, d), S (…, d), Vh (…, d, d); LAPACK is serial per matrix, so the batch is spread over the cores.
  const auto o = per_matrix({M.to(torch::kFloat64)}, [](const std::vector<torch::Tensor>& m) {
    auto svd = torch::linalg_svd(m[0], false, c10::nullopt);
    return std::vector<torch::Tensor>{std::get<0>(svd), std::get<1>(svd), std::get<2>(svd)};
  });
  return {o[0], o[1], o[2]};
}

FormSvd factored_form_svd(const torch::Tensor& A, const torch::Tensor& B) {
  const auto o = per_matrix({A.to(torch::kFloat64), B.to(torch::kFloat64)}, [](const std::vector<torch::Tensor>& f) {
    const auto svd = factored_svd_one(f[0], f[1]);
    return std::vector<torch::Tensor>{svd.U, svd.S, svd.Vh};
  });
  return {o[0], o[1], o[2]};
}

torch::Tensor reconstruct(const FormSvd& svd, int64_t r) {
  // Only the leading r directions enter the product: O(d²·r) per form, not O(d²·k).
  const int64_t rr = std::clamp<int64_t>(r, 0, svd.S.size(-1));
  if (rr == 0) {
    auto shape = svd.U.sizes().vec();  // (…, d, d')
    shape.back() = svd.Vh.size(-1);
    return torch::zeros(shape, svd.U.options());
  }
  return torch::matmul(svd.U.narrow(-1, 0, rr) * svd.S.narrow(-1, 0, rr).unsqueeze(-2), svd.Vh.narrow(-2, 0, rr));
}

torch::Tensor truncate_dense(const torch::Tensor& M, int64_t r) {
  auto m = M.to(torch::kFloat64);
  if (r >= std::min(m.size(-1), m.size(-2))) return m;
  return reconstruct(form_svd(m), r);
}

std::pair<torch::Tensor, torch::Tensor> svd_factors(const FormSvd& svd, int64_t r, int64_t k) {
  const int64_t rr = std::min({r, k, svd.S.size(-1)});
  auto shape = svd.U.sizes().vec();
  shape.back() = k;  // (…, d, k)
  auto A = torch::zeros(shape, svd.U.options()), B = torch::zeros(shape, svd.U.options());
  if (rr > 0) {
    auto root = svd.S.narrow(-1, 0, rr).sqrt().unsqueeze(-2);                      // (…, 1, rr)
    A.narrow(-1, 0, rr).copy_(svd.U.narrow(-1, 0, rr) * root);                     // (…, d, rr)
    B.narrow(-1, 0, rr).copy_(svd.Vh.narrow(-2, 0, rr).transpose(-1, -2) * root);  // (…, d, rr)
  }
  return {A, B};
}

std::pair<torch::Tensor, torch::Tensor> svd_factors(const torch::Tensor& M, int64_t r, int64_t k) {
  return svd_factors(form_svd(M), r, k);
}

torch::Tensor psd_factor(const torch::Tensor& M, int64_t k) {
  auto m = M.to(torch::kFloat64);
  auto sym = (m + m.transpose(-2, -1)) / 2;                        // (…, d, d)
  auto eig = torch::linalg_eigh(sym, "L");                         // ascending eigenvalues
  const int64_t d = sym.size(-1), n = std::min<int64_t>(k, d);
  auto lam = std::get<0>(eig).narrow(-1, d - n, n).clamp_min(0);   // (…, n): the top n, ≥ 0
  auto Q = std::get<1>(eig).narrow(-1, d - n, n);                  // (…, d, n)
  auto sizes = sym.sizes().vec();
  sizes.back() = k;
  auto B = torch::zeros(sizes, torch::kFloat64);                   // (…, d, k)
  B.narrow(-1, 0, n).copy_(Q * lam.sqrt().unsqueeze(-2));          // B·Bᵀ = Q·Λ₊·Qᵀ
  return B;
}

double dtype_eps(const torch::Tensor& t) {
  return t.scalar_type() == torch::kFloat64 ? std::numeric_limits<double>::epsilon()
                                            : static_cast<double>(std::numeric_limits<float>::epsilon());
}

std::vector<double> to_doubles(const torch::Tensor& t) {
  auto c = t.to(torch::kFloat64).contiguous().cpu();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

torch::Tensor key_bias_of(const torch::Tensor& W, const torch::Tensor& b) {
  auto w = W.detach().to(torch::kFloat64);                                    // (H, k, d)
  auto bb = b.detach().to(torch::kFloat64).view({w.size(0), w.size(1), 1});  // (H, k, 1)
  return torch::matmul(w.transpose(1, 2), bb).squeeze(-1);                   // (H, d)
}

torch::Tensor bias_for_key_bias(const torch::Tensor& W, const torch::Tensor& u) {
  auto wT = W.detach().to(torch::kFloat64).transpose(1, 2);                                      // (H, d, k)
  return torch::matmul(torch::linalg_pinv(wT), u.to(torch::kFloat64).unsqueeze(-1)).squeeze(-1);  // (H, k)
}

}  // namespace qk
