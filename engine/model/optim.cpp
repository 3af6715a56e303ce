// QKLab engine — AdamW, schedule, clipping.
#include "optim.h"

#include <cmath>

#include "error.h"

namespace qk {

AdamW::AdamW(std::vector<torch::Tensor> params, const TrainConfig& cfg)
    : params_(std::move(params)), beta1_(cfg.beta1), beta2_(cfg.beta2), eps_(cfg.eps),
      weight_decay_(cfg.weight_decay) {
  for (auto& p : params_) {
    exp_avg_.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
    exp_avg_sq_.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve));
  }
}

void AdamW::set_state(const State& s) {
  if (s.exp_avg.size() != params_.size() || s.exp_avg_sq.size() != params_.size())
    throw Error("AdamW state: " + std::to_string(s.exp_avg.size()) + " moments for " +
                std::to_string(params_.size()) + " parameters");
  torch::NoGradGuard ng;
  for (size_t i = 0; i < params_.size(); ++i) {
    if (s.exp_avg[i].sizes() != params_[i].sizes() || s.exp_avg_sq[i].sizes() != params_[i].sizes())
      throw Error("AdamW state: moment " + std::to_string(i) + " does not have its parameter's shape");
    exp_avg_[i].copy_(s.exp_avg[i]);
    exp_avg_sq_[i].copy_(s.exp_avg_sq[i]);
  }
  step_ = s.step;
}

void AdamW::zero_grad() {
  for (auto& p : params_)
    if (p.grad().defined()) p.mutable_grad().reset();
}

void AdamW::step(double lr) {
  torch::NoGradGuard ng;
  ++step_;
  const double step = static_cast<double>(step_);
  const double bias_correction1 = 1 - std::pow(beta1_, step);
  const double bias_correction2 = 1 - std::pow(beta2_, step);
  const double step_size = lr / bias_correction1;
  const double bias_correction2_sqrt = std::sqrt(bias_correction2);
  for (size_t i = 0; i < params_.size(); ++i) {
    auto& param = params_[i];
    const auto& grad = param.grad();
    if (!grad.defined()) continue;
    param.mul_(1 - lr * weight_decay_);
    exp_avg_[i].mul_(beta1_).add_(grad, 1 - beta1_);
    exp_avg_sq_[i].mul_(beta2_).addcmul_(grad, grad, 1 - beta2_);
    auto denom = (exp_avg_sq_[i].sqrt() / bias_correction2_sqrt).add_(eps_);
    param.addcdiv_(exp_avg_[i], denom, -step_size);
  }
}

double scheduled_lr(const TrainConfig& cfg, int64_t step, int64_t total) {
  if (cfg.warmup_steps > 0 && step < cfg.warmup_steps)
    return cfg.lr * static_cast<double>(step + 1) / cfg.warmup_steps;
  if (!cfg.cosine) return cfg.lr;
  const int64_t decay_steps = std::max<int64_t>(1, total - cfg.warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - cfg.warmup_steps) / decay_steps);
  return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + std::cos(M_PI * progress));
}

double grad_norm(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard ng;
  // One pass per gradient in its own dtype (no float64 copy of every gradient on each step), then
  // the per-tensor norms combined in double; one sync.
  std::vector<torch::Tensor> norms;
  for (const auto& p : params)
    if (p.grad().defined()) norms.push_back(p.grad().norm());
  return norms.empty() ? 0.0 : torch::stack(norms).to(torch::kFloat64).norm().item<double>();
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  torch::NoGradGuard ng;
  double total = 0;
  for (const auto& p : params)
    if (p.grad().defined()) total += p.grad().pow(2).sum().item<double>();
  const double norm = std::sqrt(total);
  if (max_norm > 0 && norm > max_norm) {
    const double scale = max_norm / (norm + 1e-6);
    for (const auto& p : params)
      if (p.grad().defined()) p.grad().mul_(scale);
  }
  return norm;
}

}  // namespace qk
