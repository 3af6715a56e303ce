// QKLab engine — linear algebra of bilinear forms (see linalg.h).
#include "linalg.h"

#include <limits>

namespace qk {

torch::Tensor factored_singular_values(const torch::Tensor& A, const torch::Tensor& B) {
  auto qa = torch::linalg_qr(A.to(torch::kFloat64), "reduced");  // A = Q_A R_A, R_A (…, k, k)
  auto qb = torch::linalg_qr(B.to(torch::kFloat64), "reduced");
  auto core = torch::matmul(std::get<1>(qa), std::get<1>(qb).transpose(-1, -2));  // (…, k, k)
  return torch::linalg_svdvals(core, c10::nullopt);  // A Bᵀ = Q_A (R_A R_Bᵀ) Q_Bᵀ
}

torch::Tensor dense_singular_values(const torch::Tensor& M) {
  // In the matrix's own precision (a float32 S is float32 data: its SVD's backward error is at
  // the float32 level either way, and float32 is ~1.8x faster), returned as float64.
  return torch::linalg_svdvals(M, c10::nullopt).to(torch::kFloat64);
}

FormSvd form_svd(const torch::Tensor& M) {
  auto svd = torch::linalg_svd(M.to(torch::kFloat64), false, c10::nullopt);
  return {std::get<0>(svd), std::get<1>(svd), std::get<2>(svd)};  // U (…, d, d), S (…, d), Vh (…, d, d)
}

FormSvd factored_form_svd(const torch::Tensor& A, const torch::Tensor& B) {
  auto qa = torch::linalg_qr(A.to(torch::kFloat64), "reduced");  // A = Q_A R_A
  auto qb = torch::linalg_qr(B.to(torch::kFloat64), "reduced");  // B = Q_B R_B
  auto core = torch::linalg_svd(torch::matmul(std::get<1>(qa), std::get<1>(qb).transpose(-1, -2)), false,
                                 c10::nullopt);  // R_A R_Bᵀ = U_c S V_cᵀ (k×k)
  // A Bᵀ = Q_A (U_c S V_cᵀ) Q_Bᵀ
  return {torch::matmul(std::get<0>(qa), std::get<0>(core)), std::get<1>(core),
          torch::matmul(std::get<2>(core), std::get<0>(qb).transpose(-1, -2))};
}

torch::Tensor reconstruct(const FormSvd& svd, int64_t r) {
  auto keep = torch::arange(svd.S.size(-1), svd.S.options()).lt(static_cast<double>(r)).to(svd.S.dtype());
  return torch::matmul(svd.U * (svd.S * keep).unsqueeze(-2), svd.Vh);
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
