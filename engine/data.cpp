// QKLab engine — text windows, PyTorch-compatible DataLoader, corpus loading, recall task.
#include "data.h"

#include <fstream>
#include <random>
#include <sstream>

#include "error.h"
#include "gpt2_tokenizer.h"

namespace qk {

WindowDataset make_windows(const std::vector<int64_t>& ids, int max_length, int stride) {
  WindowDataset ds;
  const int64_t n = static_cast<int64_t>(ids.size());
  std::vector<int64_t> in, tg;
  int64_t count = 0;
  for (int64_t i = 0; i < n - max_length; i += stride) {
    in.insert(in.end(), ids.begin() + i, ids.begin() + i + max_length);
    tg.insert(tg.end(), ids.begin() + i + 1, ids.begin() + i + max_length + 1);
    ++count;
  }
  ds.inputs = torch::tensor(in, torch::kInt64).view({count, max_length});
  ds.targets = torch::tensor(tg, torch::kInt64).view({count, max_length});
  return ds;
}

DataLoader::DataLoader(std::shared_ptr<const WindowDataset> ds, int batch_size, bool shuffle,
                       bool drop_last, at::Generator gen)
    : ds_(std::move(ds)), batch_size_(batch_size), shuffle_(shuffle), drop_last_(drop_last),
      gen_(std::move(gen)) {}

int64_t DataLoader::num_batches() const {
  const int64_t n = ds_->size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

static int64_t draw_int64(at::Generator& gen) {
  // torch.empty((), dtype=torch.int64).random_(generator=gen).item()
  return torch::empty({}, torch::kInt64).random_(gen).item<int64_t>();
}

void DataLoader::begin() {
  draw_int64(gen_);  // _BaseDataLoaderIter.__init__: self._base_seed
  pos_ = 0;
  started_ = false;
  active_ = true;
}

std::optional<Batch> DataLoader::next() {
  if (!active_) return std::nullopt;
  const int64_t n = ds_->size();
  if (!started_) {
    started_ = true;
    order_.resize(n);
    if (shuffle_) {  // RandomSampler.__iter__
      const int64_t seed = draw_int64(gen_);
      auto g = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
      auto perm = torch::randperm(n, g, torch::kInt64);
      std::copy(perm.data_ptr<int64_t>(), perm.data_ptr<int64_t>() + n, order_.begin());
    } else {
      for (int64_t i = 0; i < n; ++i) order_[i] = i;
    }
  }
  int64_t take = std::min<int64_t>(batch_size_, n - pos_);
  if (take <= 0 || (drop_last_ && take < batch_size_)) {
    active_ = false;
    return std::nullopt;
  }
  auto idx = torch::tensor(std::vector<int64_t>(order_.begin() + pos_, order_.begin() + pos_ + take),
                           torch::kInt64);
  pos_ += take;
  return Batch{ds_->inputs.index_select(0, idx), ds_->targets.index_select(0, idx)};
}

std::string read_text_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open corpus file (missing or unreadable)");
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  if (text.empty()) throw Error(path + ": corpus file is empty");
  auto nul = text.find('\0');
  if (nul != std::string::npos)
    throw Error(path + ": looks like a binary file (NUL byte at offset " + std::to_string(nul) +
                "); expected UTF-8 text");
  utf8_decode(text, path);  // throws with the byte offset of invalid UTF-8
  return text;
}

TextCorpus load_text_corpus(const DataConfig& d, int max_length) {
  const std::string text = read_text_file(d.path);
  TextCorpus c;
  if (d.tokenizer == "gpt2") {
    std::string dir = d.gpt2_dir;
    if (dir.empty()) {
      auto slash = d.path.find_last_of('/');
      dir = slash == std::string::npos ? "." : d.path.substr(0, slash);
    }
    c.tokenizer = std::make_shared<Gpt2Tokenizer>(dir + "/gpt2-encoder.json",
                                                  dir + "/gpt2-vocab.bpe");
  } else {
    c.tokenizer = std::make_shared<CharTokenizer>(CharTokenizer::from_corpus(text));
  }
  // Split by characters (code points) as the book's chapter 5 does.
  auto cps = utf8_decode(text, d.path);
  const size_t split = static_cast<size_t>(d.train_ratio * static_cast<double>(cps.size()));
  std::string train_text = utf8_encode(std::vector<uint32_t>(cps.begin(), cps.begin() + split));
  std::string val_text = utf8_encode(std::vector<uint32_t>(cps.begin() + split, cps.end()));
  auto train_ids = c.tokenizer->encode(train_text);
  auto val_ids = c.tokenizer->encode(val_text);
  c.train_tokens = static_cast<int64_t>(train_ids.size());
  c.val_tokens = static_cast<int64_t>(val_ids.size());
  const int stride = d.stride > 0 ? d.stride : max_length;
  if (c.train_tokens <= max_length)
    throw Error(d.path + ": corpus too short: the training split has " +
                std::to_string(c.train_tokens) + " tokens, one window needs " +
                std::to_string(max_length + 1) + " (lower data.max_length or use a longer text)");
  if (c.val_tokens <= max_length)
    throw Error(d.path + ": corpus too short: the validation split has " +
                std::to_string(c.val_tokens) + " tokens, one window needs " +
                std::to_string(max_length + 1) +
                " (lower data.max_length or data.train_ratio, or use a longer text)");
  c.train = std::make_shared<WindowDataset>(make_windows(train_ids, max_length, stride));
  c.val = std::make_shared<WindowDataset>(make_windows(val_ids, max_length, stride));
  return c;
}

namespace {

class TextSource : public DataSource {
 public:
  TextSource(const TextCorpus& c, int batch_size, at::Generator gen)
      : train_(c.train, batch_size, /*shuffle=*/true, /*drop_last=*/true, gen),
        val_(c.val, batch_size, /*shuffle=*/false, /*drop_last=*/false, gen) {
    if (train_.num_batches() == 0)
      throw Error("data: the training split has " + std::to_string(c.train->size()) +
                  " windows, fewer than one batch of " + std::to_string(batch_size) +
                  " (lower train.batch_size or data.max_length)");
  }
  std::optional<Batch> next_train() override {
    if (!in_epoch_) {
      train_.begin();
      in_epoch_ = true;
    }
    auto b = train_.next();
    if (!b) in_epoch_ = false;
    return b;
  }
  std::vector<Batch> eval_batches(bool val, int max_batches) override {
    // A fresh iteration of the loader, as calc_loss_loader's `for ... in enumerate(loader)`;
    // the training loader used here is a separate iterator (its own draws), like Python's.
    DataLoader& l = val ? val_ : eval_train_loader();
    std::vector<Batch> out;
    l.begin();
    const int64_t n = std::min<int64_t>(max_batches, l.num_batches());
    for (int64_t i = 0; i < n; ++i) out.push_back(*l.next());
    return out;
  }
  int64_t batches_per_epoch() const override { return train_.num_batches(); }
  bool has_accuracy() const override { return false; }

 private:
  DataLoader& eval_train_loader() {
    if (!eval_train_) eval_train_ = std::make_unique<DataLoader>(train_);
    return *eval_train_;
  }
  DataLoader train_, val_;
  std::unique_ptr<DataLoader> eval_train_;
  bool in_epoch_ = false;
};

// Bounded integer in [0, n) from a 64-bit engine, identical on every platform.
uint64_t bounded(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do x = rng(); while (x >= limit);
  return x % n;
}

class RecallSource : public DataSource {
 public:
  RecallSource(const DataConfig& d, int batch_size, uint64_t seed)
      : task_{d.num_pairs, d.num_keys, d.num_values}, batch_size_(batch_size), seed_(seed) {
    // Fixed evaluation sets: the validation set and a probe of the training distribution.
    val_ = task_.generate(d.val_sequences, seed ^ 0x5eed0001ULL);
    train_probe_ = task_.generate(d.val_sequences, seed ^ 0x5eed0002ULL);
  }
  std::optional<Batch> next_train() override {
    return task_.generate(batch_size_, seed_ * 1000003ULL + static_cast<uint64_t>(counter_++));
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
  int64_t batches_per_epoch() const override { return 0; }
  bool has_accuracy() const override { return true; }

 private:
  RecallTask task_;
  int batch_size_;
  uint64_t seed_;
  int64_t counter_ = 0;
  Batch val_, train_probe_;
};

}  // namespace

std::unique_ptr<DataSource> make_text_source(const TextCorpus& corpus, int batch_size, at::Generator gen) {
  return std::make_unique<TextSource>(corpus, batch_size, std::move(gen));
}

Batch RecallTask::generate(int batch_size, uint64_t seed) const {
  std::mt19937_64 rng(seed);
  const int T = seq_len();
  const int64_t sep = num_keys + num_values;
  std::vector<int64_t> in(static_cast<size_t>(batch_size) * T), tg(in.size(), -100);
  std::vector<int64_t> keys(num_keys);
  for (int b = 0; b < batch_size; ++b) {
    for (int k = 0; k < num_keys; ++k) keys[k] = k;
    for (int i = 0; i < num_pairs; ++i) {  // partial Fisher–Yates: distinct keys
      std::swap(keys[i], keys[i + bounded(rng, num_keys - i)]);
    }
    int64_t* row = &in[static_cast<size_t>(b) * T];
    std::vector<int64_t> vals(num_pairs);
    for (int i = 0; i < num_pairs; ++i) {
      vals[i] = num_keys + static_cast<int64_t>(bounded(rng, num_values));
      row[2 * i] = keys[i];
      row[2 * i + 1] = vals[i];
    }
    const int q = static_cast<int>(bounded(rng, num_pairs));
    row[T - 2] = sep;
    row[T - 1] = keys[q];
    tg[static_cast<size_t>(b) * T + T - 1] = vals[q];
  }
  return {torch::tensor(in, torch::kInt64).view({batch_size, T}),
          torch::tensor(tg, torch::kInt64).view({batch_size, T})};
}

std::unique_ptr<DataSource> make_recall_source(const DataConfig& d, int batch_size, uint64_t seed) {
  return std::make_unique<RecallSource>(d, batch_size, seed);
}

}  // namespace qk
