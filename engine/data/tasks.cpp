// QKLab engine — synthetic tasks (see tasks.h).
#include "tasks.h"

#include <algorithm>
#include <numeric>
#include <random>

#include "error.h"

namespace qk {
namespace {

// Bounded integer in [0, n) from a 64-bit engine, identical on every platform.
int64_t bounded(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = rng(); while (x >= limit);
  return static_cast<int64_t>(x % n);
}

// Builds a batch from whole sequences S (length T+1): inputs S[:-1], targets S[1:] where
// `loss_at[t]` (t indexes the target position) else -100.
struct BatchBuilder {
  int T;
  std::vector<int64_t> in, tg;
  void add(const std::vector<int64_t>& s, const std::vector<bool>& loss_at) {
    for (int t = 0; t < T; ++t) {
      in.push_back(s[t]);
      tg.push_back(loss_at[t] ? s[t + 1] : -100);
    }
  }
  Batch done(int batch_size) const {
    return {torch::tensor(in, torch::kInt64).view({batch_size, T}),
            torch::tensor(tg, torch::kInt64).view({batch_size, T})};
  }
};

// copy / reverse / sort: a1..an SEP f(a)
class SequenceTask : public SyntheticTask {
 public:
  SequenceTask(const TaskShape& shape, std::string kind, int n, int vocab)
      : SyntheticTask(shape), kind_(std::move(kind)), n_(n), v_(vocab) {}
  std::string name() const override { return kind_; }
  Batch generate(int batch_size, uint64_t seed) const override {
    std::mt19937_64 rng(seed);
    BatchBuilder bb{seq_len(), {}, {}};
    std::vector<bool> loss(seq_len(), false);
    for (int t = n_; t < 2 * n_; ++t) loss[t] = true;  // predicting the second half
    for (int b = 0; b < batch_size; ++b) {
      std::vector<int64_t> a(n_);
      for (auto& x : a) x = bounded(rng, v_);
      std::vector<int64_t> out = a;
      if (kind_ == "reverse") std::reverse(out.begin(), out.end());
      if (kind_ == "sort") std::sort(out.begin(), out.end());
      std::vector<int64_t> s = a;
      s.push_back(v_);  // SEP
      s.insert(s.end(), out.begin(), out.end());
      bb.add(s, loss);
    }
    return bb.done(batch_size);
  }
  std::string describe() const override {
    if (kind_ == "copy") return "copy: position n+i attends to position i+1 (fixed offset lookup)";
    if (kind_ == "reverse") return "reverse: position n+i attends to position n-i (mirrored lookup)";
    return "sort: each output attends to the smallest input not yet emitted (content-based)";
  }

 private:
  std::string kind_;
  int n_, v_;
};

// recall (identity query map) and bilinear (query a asks for key π(a)).
class RecallLikeTask : public SyntheticTask {
 public:
  RecallLikeTask(const TaskShape& shape, bool bilinear, int pairs, int keys, int values, int queries, uint64_t perm_seed)
      : SyntheticTask(shape), bilinear_(bilinear), n_(pairs), k_(keys), v_(values), q_(queries), perm_(keys) {
    std::iota(perm_.begin(), perm_.end(), 0);
    if (bilinear_) {  // fixed random permutation, the same for training and validation
      std::mt19937_64 rng(perm_seed);
      for (int i = k_ - 1; i > 0; --i) std::swap(perm_[i], perm_[bounded(rng, i + 1)]);
    }
    inv_.resize(k_);
    for (int i = 0; i < k_; ++i) inv_[perm_[i]] = i;
  }
  std::string name() const override { return bilinear_ ? "bilinear" : "recall"; }
  // keys [0,K), values [K,K+V), SEP; bilinear queries reuse the key ids (the query a asks for π(a)).
  Batch generate(int batch_size, uint64_t seed) const override {
    std::mt19937_64 rng(seed);
    BatchBuilder bb{seq_len(), {}, {}};
    std::vector<bool> loss(seq_len(), false);
    for (int j = 0; j < q_; ++j) loss[2 * n_ + 1 + 2 * j] = true;  // target after each query
    std::vector<int64_t> keys(k_);
    for (int b = 0; b < batch_size; ++b) {
      std::iota(keys.begin(), keys.end(), 0);
      for (int i = 0; i < n_; ++i) std::swap(keys[i], keys[i + bounded(rng, k_ - i)]);  // distinct
      std::vector<int64_t> s, vals(n_);
      for (int i = 0; i < n_; ++i) {
        vals[i] = k_ + bounded(rng, v_);
        s.push_back(keys[i]);
        s.push_back(vals[i]);
      }
      s.push_back(k_ + v_);  // SEP
      for (int j = 0; j < q_; ++j) {
        const int64_t pick = bounded(rng, n_);
        s.push_back(bilinear_ ? inv_[keys[pick]] : keys[pick]);  // π(query) = key
        s.push_back(vals[pick]);
      }
      bb.add(s, loss);
    }
    return bb.done(batch_size);
  }
  std::string describe() const override {
    return bilinear_ ? "bilinear matching: the query a must attend to the key pi(a), pi a fixed "
                       "random permutation of the keys (a full-rank bilinear form)"
                     : "associative recall: each query attends to its matching key and copies the "
                       "value that follows it";
  }

 private:
  bool bilinear_;
  int n_, k_, v_, q_;
  std::vector<int64_t> perm_, inv_;
};

class InductionTask : public SyntheticTask {
 public:
  InductionTask(const TaskShape& shape, int n, int vocab) : SyntheticTask(shape), n_(n), v_(vocab) {}
  std::string name() const override { return "induction"; }
  // P distinct random tokens repeated with period P, P uniform in [n/2 + 1, n] per sequence, to a
  // length of 2n: the repeat starts at a varying position, so no fixed positional offset solves
  // it — the model has to find the earlier occurrence of the current token by content.
  Batch generate(int batch_size, uint64_t seed) const override {
    std::mt19937_64 rng(seed);
    BatchBuilder bb{seq_len(), {}, {}};
    const int lo = n_ / 2 + 1;
    std::vector<int64_t> pool(v_);
    for (int b = 0; b < batch_size; ++b) {
      const int P = lo + static_cast<int>(bounded(rng, n_ - lo + 1));
      for (int i = 0; i < v_; ++i) pool[i] = i;
      for (int i = 0; i < P; ++i) std::swap(pool[i], pool[i + bounded(rng, v_ - i)]);  // distinct
      std::vector<int64_t> s(2 * n_);
      for (int t = 0; t < 2 * n_; ++t) s[t] = pool[t % P];
      std::vector<bool> loss(seq_len(), false);
      for (int t = P; t < 2 * n_ - 1; ++t) loss[t] = true;  // the repeat, after its first token
      bb.add(s, loss);
    }
    return bb.done(batch_size);
  }
  std::string describe() const override {
    return "induction: P distinct tokens repeated with a period P that varies per sequence; in the "
           "repeat, position t attends one past the earlier occurrence of its token (previous-token "
           "head + induction head: K-composition)";
  }

 private:
  int n_, v_;
};

class ModAddTask : public SyntheticTask {
 public:
  ModAddTask(const TaskShape& shape, int p) : SyntheticTask(shape), p_(p) {}
  std::string name() const override { return "modadd"; }
  Batch generate(int batch_size, uint64_t seed) const override {
    std::mt19937_64 rng(seed);
    BatchBuilder bb{seq_len(), {}, {}};
    std::vector<bool> loss{false, false, false, true};
    for (int b = 0; b < batch_size; ++b) {
      const int64_t a = bounded(rng, p_), c = bounded(rng, p_);
      bb.add({a, p_, c, p_ + 1, (a + c) % p_}, loss);
    }
    return bb.done(batch_size);
  }
  std::string describe() const override {
    return "modular addition: '=' attends to both operands; the MLP computes (a+b) mod p";
  }

 private:
  int p_;
};

// Token-wise tasks (encoders): x1..xn over V symbols, a label at every position.
//   enc-copy     y_i = x_i                      attend to itself (or nothing: the residual suffices)
//   enc-reverse  y_i = x_{n+1-i}                position i attends to n+1-i (a mirrored lookup)
//   enc-sort     y = sort(x)                    content-based: the i-th smallest of the whole sequence
//   enc-sub      y_i = (V-1) - x_i              a token-wise map (9 - x over 10 symbols)
//   enc-swap     y = x_{n/2+1..n} x_{1..n/2}    position i attends to i ± n/2 (the halves exchanged)
class TokenwiseTask : public SyntheticTask {
 public:
  TokenwiseTask(const TaskShape& shape, std::string kind, int n, int vocab)
      : SyntheticTask(shape), kind_(std::move(kind)), n_(n), v_(vocab) {}
  std::string name() const override { return kind_; }
  Batch generate(int batch_size, uint64_t seed) const override {
    std::mt19937_64 rng(seed);
    std::vector<int64_t> in, tg;
    for (int b = 0; b < batch_size; ++b) {
      std::vector<int64_t> x(n_);
      for (auto& t : x) t = bounded(rng, v_);
      std::vector<int64_t> y = x;
      if (kind_ == "enc-reverse") std::reverse(y.begin(), y.end());
      if (kind_ == "enc-sort") std::sort(y.begin(), y.end());
      if (kind_ == "enc-sub")
        for (auto& t : y) t = (v_ - 1) - t;
      if (kind_ == "enc-swap") std::rotate(y.begin(), y.begin() + n_ / 2, y.end());
      in.insert(in.end(), x.begin(), x.end());
      tg.insert(tg.end(), y.begin(), y.end());
    }
    return {torch::tensor(in, torch::kInt64).view({batch_size, n_}), torch::tensor(tg, torch::kInt64).view({batch_size, n_})};
  }
  std::string describe() const override {
    if (kind_ == "enc-copy") return "enc-copy: each position reads itself (the residual stream suffices)";
    if (kind_ == "enc-reverse") return "enc-reverse: position i attends to position n+1-i (a mirrored lookup)";
    if (kind_ == "enc-sort") return "enc-sort: position i finds the i-th smallest symbol of the whole sequence (content-based)";
    if (kind_ == "enc-sub") return "enc-sub: y = (V-1) - x at every position (a token-wise map, no attention needed)";
    return "enc-swap: position i attends to i ± n/2 (the two halves exchanged)";
  }

 private:
  std::string kind_;
  int n_, v_;
};

// The training data: an endless stream (a fresh batch from the seed and a counter), or with
// data.train_sequences = N a fixed set of N sequences, reshuffled every epoch (Fisher–Yates from
// the seed and the epoch: the same order on every platform), in batches of B (the last one
// smaller): ceil(N/B) batches an epoch.
class TaskSource : public DataSource {
 public:
  TaskSource(std::unique_ptr<SyntheticTask> task, int batch_size, uint64_t seed, int val_sequences, int train_sequences)
      : task_(std::move(task)), batch_size_(batch_size), seed_(seed), accuracy_(accuracy_kind(task_->name())) {
    val_ = task_->generate(val_sequences, seed ^ 0x5eed0001ULL);
    if (train_sequences > 0) {
      train_ = task_->generate(train_sequences, seed ^ 0x5eed0003ULL);
      const int64_t n = std::min<int64_t>(val_sequences, train_sequences);  // the training probe: seen data
      train_probe_ = {train_.inputs.slice(0, 0, n), train_.targets.slice(0, 0, n)};
    } else {
      train_probe_ = task_->generate(val_sequences, seed ^ 0x5eed0002ULL);
    }
  }
  std::optional<Batch> next_train() override {
    if (!train_.inputs.defined()) return task_->generate(batch_size_, seed_ * 1000003ULL + static_cast<uint64_t>(counter_++));
    const int64_t N = train_.inputs.size(0), bpe = batches_per_epoch();
    const int64_t epoch = counter_ / bpe, pos = counter_ % bpe;
    if (epoch != order_epoch_) {
      std::mt19937_64 rng(seed_ * 1000003ULL + static_cast<uint64_t>(epoch) + 0x5eed0004ULL);
      std::vector<int64_t> order(N);
      std::iota(order.begin(), order.end(), 0);
      for (int64_t i = N - 1; i > 0; --i) std::swap(order[i], order[bounded(rng, static_cast<uint64_t>(i + 1))]);
      order_ = torch::tensor(order, torch::kInt64);
      order_epoch_ = epoch;
    }
    ++counter_;
    auto idx = order_.slice(0, pos * batch_size_, std::min<int64_t>(N, (pos + 1) * batch_size_));
    return Batch{train_.inputs.index_select(0, idx), train_.targets.index_select(0, idx)};
  }
  std::vector<Batch> eval_batches(bool val, int max_batches) override {
    const Batch& src = val ? val_ : train_probe_;
    std::vector<Batch> out;
    const int64_t n = src.inputs.size(0);
    for (int64_t s = 0; s < n && static_cast<int>(out.size()) < max_batches; s += batch_size_) {
      const int64_t e = std::min<int64_t>(n, s + batch_size_);
      out.push_back({src.inputs.slice(0, s, e), src.targets.slice(0, s, e)});
    }
    return out;
  }
  int64_t batches_per_epoch() const override {
    return train_.inputs.defined() ? (train_.inputs.size(0) + batch_size_ - 1) / batch_size_ : 0;
  }
  AccuracyKind accuracy() const override { return accuracy_; }
  std::map<std::string, torch::Tensor> state() const override {
    return {{"counter", torch::tensor({counter_}, torch::kInt64)}};  // batches are a function of the counter
  }
  void set_state(const std::map<std::string, torch::Tensor>& s, const std::string& source) override {
    auto it = s.find("counter");
    if (it == s.end() || it->second.numel() != 1 || it->second.scalar_type() != torch::kInt64)
      throw Error(source + ": the task stream's state lacks its int64 'counter'");
    counter_ = it->second.item<int64_t>();
  }

 private:
  std::unique_ptr<SyntheticTask> task_;
  int batch_size_;
  uint64_t seed_;
  AccuracyKind accuracy_;
  int64_t counter_ = 0;
  Batch val_, train_probe_, train_;  // train_: the fixed training set (data.train_sequences), else undefined
  torch::Tensor order_;              // this epoch's order of train_
  int64_t order_epoch_ = -1;
};

}  // namespace

std::unique_ptr<SyntheticTask> make_task(const DataConfig& d) {
  const TaskShape shape = task_shape(d);  // validates the parameters; the one home of the sizes
  const std::string& k = d.kind;
  if (k == "copy" || k == "reverse" || k == "sort") return std::make_unique<SequenceTask>(shape, k, d.seq_items, d.task_vocab);
  if (k == "recall" || k == "bilinear")
    return std::make_unique<RecallLikeTask>(shape, k == "bilinear", d.num_pairs, d.num_keys, d.num_values, d.num_queries,
                                            static_cast<uint64_t>(d.perm_seed));
  if (k == "induction") return std::make_unique<InductionTask>(shape, d.seq_items, d.task_vocab);
  if (k == "modadd") return std::make_unique<ModAddTask>(shape, d.modulus);
  if (is_tokenwise_task(k)) return std::make_unique<TokenwiseTask>(shape, k, d.seq_items, d.task_vocab);
  throw Error("config: data.kind: unknown task '" + k + "'");
}

std::unique_ptr<DataSource> make_task_source(const DataConfig& d, int batch_size, uint64_t seed) {
  return std::make_unique<TaskSource>(make_task(d), batch_size, seed, d.val_sequences, d.train_sequences);
}

std::vector<Batch> probe_batches(const ExperimentConfig& c, const TextCorpus* corpus) {
  const auto seed = static_cast<uint64_t>(c.train.seed);
  auto src = is_language_kind(c.data.kind)
                 ? make_text_source(*corpus, c.train.batch_size, at::make_generator<at::CPUGeneratorImpl>(seed))
                 : make_task_source(c.data, c.train.batch_size, seed);
  return src->eval_batches(true, c.train.eval_batches);
}

TextCorpus load_run_corpus(const ExperimentConfig& c, const std::string& run_dir) {
  DataConfig d = c.data;
  if (d.cache_dir.empty()) d.cache_dir = run_dir;
  return load_text_corpus(d, d.max_length > 0 ? d.max_length : c.model.context_length);
}

}  // namespace qk
