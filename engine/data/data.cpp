// QKLab engine — text data: the book's sliding windows, the PyTorch-compatible DataLoader, reading
// and validating a corpus, chunked tokenisation with a token cache, and the text batch source.
// (Synthetic tasks: tasks.cpp; tokenizers: tokenizer_factory.cpp.)
#include "data.h"

#include "tokenizer_factory.h"

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "error.h"
#include "bpe_tokenizer.h"
#include "fsutil.h"
#include "gpt2_tokenizer.h"
#include "token_files.h"

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

torch::Tensor DataLoader::position() const {
  std::vector<int64_t> v{pos_, started_, active_, static_cast<int64_t>(order_.size())};
  v.insert(v.end(), order_.begin(), order_.end());
  return torch::tensor(v, torch::kInt64);
}

void DataLoader::set_position(const torch::Tensor& p, const std::string& source) {
  if (p.scalar_type() != torch::kInt64 || p.dim() != 1 || p.numel() < 4 || p.numel() != 4 + p[3].item<int64_t>())
    throw Error(source + ": expected a loader position of 4 + N int64 values");
  auto a = p.accessor<int64_t, 1>();
  const int64_t n = a[3];
  if (n != 0 && n != ds_->size())
    throw Error(source + ": the loader's order has " + std::to_string(n) + " windows, the data has " +
                std::to_string(ds_->size()) + " (was the corpus or data.max_length changed?)");
  pos_ = a[0];
  started_ = a[1] != 0;
  active_ = a[2] != 0;
  order_.assign(p.data_ptr<int64_t>() + 4, p.data_ptr<int64_t>() + 4 + n);
}

torch::Tensor generator_state(at::Generator g) {
  std::lock_guard<std::mutex> lock(g.mutex());
  return g.get_state();
}

void set_generator_state(at::Generator& g, const torch::Tensor& s) {
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(s);
}

std::string read_text_file(const std::string& path) {
  std::string text = read_file_bytes(path, "corpus file (missing or unreadable)");
  if (text.empty()) throw Error(path + ": corpus file is empty");
  auto nul = text.find('\0');
  if (nul != std::string::npos)
    throw Error(path + ": looks like a binary file (NUL byte at offset " + std::to_string(nul) +
                "); expected UTF-8 text");
  utf8_check(text, path);  // throws with the byte offset of invalid UTF-8
  return text;
}

std::vector<int64_t> encode_chunked(const Tokenizer& t, const std::string& text, const ProgressFn& progress) {
  constexpr size_t kChunk = 1 << 20;
  std::vector<int64_t> ids;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = std::min(text.size(), pos + kChunk);
    while (end < text.size() && !(text[end] == ' ' && text[end - 1] > ' ' && text[end - 1] < 0x7F)) ++end;
    auto part = t.encode(text.substr(pos, end - pos));
    ids.insert(ids.end(), part.begin(), part.end());
    pos = end;
    if (progress) progress("tokenizing", static_cast<int64_t>(pos), static_cast<int64_t>(text.size()));
  }
  return ids;
}

namespace {

std::string cache_key(const DataConfig& d, const Tokenizer& t) {
  std::error_code ec;
  auto size = std::filesystem::file_size(d.path, ec);
  auto mtime = std::filesystem::last_write_time(d.path, ec).time_since_epoch().count();
  std::string key = std::filesystem::absolute(d.path).string() + "|" + std::to_string(size) + "|" +
                    std::to_string(mtime) + "|" + std::to_string(d.train_ratio) + "|" + t.to_json().dump();
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(std::hash<std::string>{}(key)));
  return hex;
}

// Cache file: "QKTOKENS" magic, int64 train count, int64 val count, then int32 ids.
bool read_cache(const std::string& path, std::vector<int64_t>& train, std::vector<int64_t>& val) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  char magic[8];
  int64_t n[2];
  if (!in.read(magic, 8) || std::string(magic, 8) != "QKTOKENS" || !in.read(reinterpret_cast<char*>(n), 16))
    return false;
  std::vector<int32_t> buf(n[0] + n[1]);
  if (!in.read(reinterpret_cast<char*>(buf.data()), static_cast<std::streamsize>(buf.size() * 4))) return false;
  train.assign(buf.begin(), buf.begin() + n[0]);
  val.assign(buf.begin() + n[0], buf.end());
  return true;
}

void write_cache(const std::string& path, const std::vector<int64_t>& train, const std::vector<int64_t>& val) {
  std::string out = "QKTOKENS";
  int64_t n[2] = {static_cast<int64_t>(train.size()), static_cast<int64_t>(val.size())};
  out.append(reinterpret_cast<const char*>(n), 16);
  for (const auto* v : {&train, &val})
    for (int64_t id : *v) {
      int32_t x = static_cast<int32_t>(id);
      out.append(reinterpret_cast<const char*>(&x), 4);
    }
  write_file_atomic(path, out);
}

}  // namespace

TextCorpus load_text_corpus(const DataConfig& d, int max_length, const ProgressFn& progress) {
  if (d.kind == "tokens") return load_token_corpus(d, max_length, progress);
  const std::string text = read_text_file(d.path);
  TextCorpus c;
  c.tokenizer = make_tokenizer(d, text);
  std::vector<int64_t> train_ids, val_ids;
  const std::string cache = d.cache_dir.empty() ? "" : d.cache_dir + "/tokens-" + cache_key(d, *c.tokenizer) + ".bin";
  if (cache.empty() || !read_cache(cache, train_ids, val_ids)) {
    // Split by characters (code points) as the book's chapter 5 does; the text is valid UTF-8
    // (read_text_file checked it), so code points start at bytes that are not 10xxxxxx.
    auto is_start = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; };
    size_t n_cp = 0;
    for (char c : text) n_cp += is_start(c);
    const size_t split = static_cast<size_t>(d.train_ratio * static_cast<double>(n_cp));
    size_t byte = 0;
    for (size_t seen = 0; byte < text.size(); ++byte)
      if (is_start(text[byte]) && seen++ == split) break;
    const std::string train_text = text.substr(0, byte);
    const std::string val_text = text.substr(byte);
    const int64_t total = static_cast<int64_t>(text.size());
    train_ids = encode_chunked(*c.tokenizer, train_text, [&](const std::string& s, int64_t done, int64_t) {
      if (progress) progress(s, done, total);
    });
    val_ids = encode_chunked(*c.tokenizer, val_text, [&](const std::string& s, int64_t done, int64_t) {
      if (progress) progress(s, static_cast<int64_t>(train_text.size()) + done, total);
    });
    if (!cache.empty()) {
      make_dirs(d.cache_dir);
      write_cache(cache, train_ids, val_ids);
    }
  }
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
      : gen_(gen), train_(c.train, batch_size, /*shuffle=*/true, /*drop_last=*/true, gen),
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
  AccuracyKind accuracy() const override { return AccuracyKind::None; }
  std::map<std::string, torch::Tensor> state() const override {
    // In book mode gen_ is the global generator, whose state the trainer keeps per lane as well.
    return {{"gen", generator_state(gen_)},
            {"train", train_.position()},
            {"in_epoch", torch::tensor({static_cast<int64_t>(in_epoch_)}, torch::kInt64)}};
  }
  void set_state(const std::map<std::string, torch::Tensor>& s, const std::string& source) override {
    for (const char* k : {"gen", "train", "in_epoch"})
      if (!s.count(k)) throw Error(source + ": the text data's state lacks '" + std::string(k) + "'");
    set_generator_state(gen_, s.at("gen"));
    train_.set_position(s.at("train"), source + ": data.train");
    in_epoch_ = s.at("in_epoch").item<int64_t>() != 0;
  }

 private:
  DataLoader& eval_train_loader() {
    if (!eval_train_) eval_train_ = std::make_unique<DataLoader>(train_);
    return *eval_train_;
  }
  at::Generator gen_;  // shared with the loaders
  DataLoader train_, val_;
  std::unique_ptr<DataLoader> eval_train_;
  bool in_epoch_ = false;
};

}  // namespace

std::unique_ptr<DataSource> make_text_source(const TextCorpus& corpus, int batch_size, at::Generator gen) {
  if (corpus.train_file) return make_token_source(corpus, batch_size, std::move(gen));
  return std::make_unique<TextSource>(corpus, batch_size, std::move(gen));
}

}  // namespace qk
