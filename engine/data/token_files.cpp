// QKLab engine — prepared token files: mapping, checking, the tokenizer of a tokens folder, and the
// batch source with nanoGPT's random windows (see token_files.h).
#include "token_files.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "error.h"
#include "fsutil.h"
#include "gpt2_tokenizer.h"
#include "tokenizer_factory.h"

namespace qk {

namespace fs = std::filesystem;

TokenFile::TokenFile(const std::string& path, int width) : path_(path), width_(width) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    throw Error(path + ": cannot open token file (" + std::strerror(errno) +
                "); a tokens folder holds train.bin and val.bin (qklab-cli prepare writes them)");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(path + ": not a regular file; expected token ids");
  }
  const auto size = static_cast<int64_t>(st.st_size);
  if (size % width != 0) {
    ::close(fd);
    throw Error(path + ": " + std::to_string(size) + " bytes is not a whole number of " +
                (width == 2 ? "uint16" : "uint32") + " tokens (" + std::to_string(width) +
                " bytes each): the file is truncated or not a token file");
  }
  n_ = size / width;
  if (size > 0) {
    void* p = ::mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      const int why = errno;
      ::close(fd);
      throw Error(path + ": cannot map the token file (" + std::strerror(why) + ")");
    }
    data_ = static_cast<const unsigned char*>(p);
    mapped_ = static_cast<size_t>(size);
    ::madvise(p, mapped_, MADV_RANDOM);  // training reads short windows at random positions
  }
  ::close(fd);  // the mapping keeps the file
}

TokenFile::~TokenFile() {
  if (data_) ::munmap(const_cast<unsigned char*>(data_), mapped_);
}

void TokenFile::copy(int64_t pos, int64_t n, int64_t* out) const {
  const unsigned char* p = data_ + pos * width_;
  if (width_ == 2)
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<int64_t>(p[2 * i] | (p[2 * i + 1] << 8));
  else
    for (int64_t i = 0; i < n; ++i)
      out[i] = static_cast<int64_t>(static_cast<uint32_t>(p[4 * i]) | (static_cast<uint32_t>(p[4 * i + 1]) << 8) |
                                    (static_cast<uint32_t>(p[4 * i + 2]) << 16) |
                                    (static_cast<uint32_t>(p[4 * i + 3]) << 24));
}

TokenFile::Scan TokenFile::scan(int64_t vocab_size, const ProgressFn& progress) const {
  Scan s;
  constexpr int64_t kBlock = 1 << 20;  // tokens
  std::vector<int64_t> buf(kBlock);
  for (int64_t pos = 0; pos < n_; pos += kBlock) {
    const int64_t m = std::min(kBlock, n_ - pos);
    copy(pos, m, buf.data());
    for (int64_t i = 0; i < m; ++i) {
      if (buf[i] > s.max_id) s.max_id = buf[i];
      if (s.first_bad < 0 && buf[i] >= vocab_size) s.first_bad = pos + i;
    }
    s.crc32 = crc32_of(data_ + pos * width_, static_cast<size_t>(m * width_), s.crc32);
    if (progress) progress("checking " + fs::path(path_).filename().string(), pos + m, n_);
  }
  return s;
}

namespace {

std::shared_ptr<Tokenizer> gpt2_from(const std::vector<std::string>& dirs, const std::string& folder) {
  for (const auto& dir : dirs)
    if (!dir.empty() && fs::exists(dir + "/gpt2-encoder.json") && fs::exists(dir + "/gpt2-vocab.bpe"))
      return std::make_shared<Gpt2Tokenizer>(dir + "/gpt2-encoder.json", dir + "/gpt2-vocab.bpe");
  throw Error(folder + ": GPT-2 token ids need gpt2-encoder.json and gpt2-vocab.bpe, in data.gpt2_dir or in the folder");
}

int64_t meta_int(const nlohmann::json& m, const char* key, const std::string& file) {
  if (!m.contains(key) || !m[key].is_number_integer() || m[key].get<int64_t>() < 0)
    throw Error(file + ": " + key + ": expected a non-negative integer");
  return m[key].get<int64_t>();
}

}  // namespace

TextCorpus load_token_corpus(const DataConfig& d, int max_length, const ProgressFn& progress) {
  const std::string dir = d.path;
  if (!fs::is_directory(dir))
    throw Error(dir + ": not a folder; data.kind=tokens names a folder with train.bin and val.bin (qklab-cli prepare)");
  const std::string meta_path = dir + "/" + token_files::kMeta;
  TextCorpus c;
  int width = 2;
  int64_t vocab = kGpt2VocabSize;
  nlohmann::json files = nlohmann::json::object();
  if (fs::exists(meta_path)) {
    const auto m = parse_json(read_file_bytes(meta_path, "tokens meta.json"), meta_path);
    if (!m.is_object() || json_string(m, "format", meta_path) != token_files::kFormat)
      throw Error(meta_path + ": format: expected \"" + std::string(token_files::kFormat) + "\"");
    const std::string dtype = json_string(m, "dtype", meta_path);
    if (dtype != "uint16" && dtype != "uint32")
      throw Error(meta_path + ": dtype: expected \"uint16\" or \"uint32\", got " + m.value("dtype", nlohmann::json()).dump());
    width = dtype == "uint16" ? 2 : 4;
    vocab = meta_int(m, "vocab_size", meta_path);
    if (vocab < 1 || (width == 2 && vocab > 65536))
      throw Error(meta_path + ": vocab_size: " + std::to_string(vocab) + " does not fit " + dtype);
    const std::string kind = json_string(m, "tokenizer", meta_path);
    if (kind == "gpt2") {
      c.tokenizer = gpt2_from({dir, d.gpt2_dir}, dir);
    } else if (kind == "char" || kind == "bpe") {
      const std::string tp = dir + "/" + token_files::kTokenizer;
      c.tokenizer = tokenizer_from_json(parse_json(read_file_bytes(tp, "tokenizer of the tokens folder"), tp));
      if (c.tokenizer->kind() != kind)
        throw Error(tp + ": a " + c.tokenizer->kind() + " tokenizer, meta.json says " + kind);
    } else {
      throw Error(meta_path + ": tokenizer: expected \"gpt2\", \"char\" or \"bpe\", got " +
                  m.value("tokenizer", nlohmann::json()).dump());
    }
    if (c.tokenizer->vocab_size() != vocab)
      throw Error(meta_path + ": vocab_size " + std::to_string(vocab) + ", its tokenizer has " +
                  std::to_string(c.tokenizer->vocab_size()));
    if (m.contains("files")) files = m["files"];
    if (!files.is_object()) throw Error(meta_path + ": files: expected an object");
  } else {
    c.tokenizer = gpt2_from({d.gpt2_dir, dir}, dir);  // nanoGPT's folders: GPT-2 ids, uint16
  }
  auto open = [&](const char* name) {
    auto f = std::make_shared<TokenFile>(dir + "/" + name, width);
    const auto s = f->scan(vocab, progress);
    if (files.contains(name)) {
      const auto& e = files[name];
      if (!e.is_object()) throw Error(meta_path + ": files." + name + ": expected an object");
      const int64_t bytes = meta_int(e, "bytes", meta_path + ": files." + name);
      if (bytes != f->bytes())
        throw Error(f->path() + ": " + std::to_string(f->bytes()) + " bytes, meta.json recorded " + std::to_string(bytes) +
                    " when it was written: the file was truncated or replaced");
      const std::string want = json_string(e, "crc32", meta_path + ": files." + name);
      if (!want.empty() && want != crc32_hex(s.crc32))
        throw Error(f->path() + ": checksum " + crc32_hex(s.crc32) + ", meta.json recorded " + want +
                    " when it was written: the file is damaged (prepare it again)");
    }
    if (s.first_bad >= 0) {
      int64_t id = 0;
      f->copy(s.first_bad, 1, &id);
      throw Error(f->path() + ": token " + std::to_string(s.first_bad) + " is " + std::to_string(id) +
                  ", outside the vocabulary of " + std::to_string(vocab) + " (ids 0.." + std::to_string(vocab - 1) + ")");
    }
    if (f->size() <= max_length)
      throw Error(f->path() + ": " + std::to_string(f->size()) + " tokens, one window needs " +
                  std::to_string(max_length + 1) + " (lower data.max_length or prepare more text)");
    return f;
  };
  c.train_file = open(token_files::kTrain);
  c.val_file = open(token_files::kVal);
  c.train_tokens = c.train_file->size();
  c.val_tokens = c.val_file->size();
  c.max_length = max_length;
  return c;
}

namespace {

class TokenSource : public DataSource {
 public:
  TokenSource(const TextCorpus& c, int batch_size, at::Generator gen)
      : train_(c.train_file), val_(c.val_file), L_(c.max_length), B_(batch_size), gen_(std::move(gen)) {}

  std::optional<Batch> next_train() override {
    const int64_t n = train_->size();
    const auto ix = torch::randint(n - L_, {B_}, gen_, torch::kInt64);  // nanoGPT's get_batch
    std::vector<int64_t> pos(ix.data_ptr<int64_t>(), ix.data_ptr<int64_t>() + B_);
    return windows(*train_, pos);
  }
  std::vector<Batch> eval_batches(bool val, int max_batches) override {
    const TokenFile& f = val ? *val_ : *train_;
    const int64_t count = (f.size() - 1) / L_;  // windows k·L with k·L + L + 1 <= n
    std::vector<Batch> out;
    for (int64_t k = 0; k < count && static_cast<int64_t>(out.size()) < max_batches; k += B_) {
      std::vector<int64_t> pos;
      for (int64_t j = k; j < std::min<int64_t>(count, k + B_); ++j) pos.push_back(j * L_);
      out.push_back(windows(f, pos));
    }
    return out;
  }
  int64_t batches_per_epoch() const override { return 0; }  // an endless stream of random windows
  AccuracyKind accuracy() const override { return AccuracyKind::None; }
  std::map<std::string, torch::Tensor> state() const override { return {{"gen", generator_state(gen_)}}; }
  void set_state(const std::map<std::string, torch::Tensor>& s, const std::string& source) override {
    if (!s.count("gen")) throw Error(source + ": the token data's state lacks 'gen'");
    set_generator_state(gen_, s.at("gen"));
  }

 private:
  Batch windows(const TokenFile& f, const std::vector<int64_t>& pos) const {
    const auto b = static_cast<int64_t>(pos.size());
    auto x = torch::empty({b, L_}, torch::kInt64), y = torch::empty({b, L_}, torch::kInt64);  // (B, T)
    std::vector<int64_t> buf(L_ + 1);
    for (int64_t r = 0; r < b; ++r) {
      f.copy(pos[r], L_ + 1, buf.data());
      std::memcpy(x.data_ptr<int64_t>() + r * L_, buf.data(), L_ * sizeof(int64_t));
      std::memcpy(y.data_ptr<int64_t>() + r * L_, buf.data() + 1, L_ * sizeof(int64_t));
    }
    return {x, y};
  }
  std::shared_ptr<const TokenFile> train_, val_;
  int64_t L_, B_;
  at::Generator gen_;
};

}  // namespace

std::unique_ptr<DataSource> make_token_source(const TextCorpus& corpus, int batch_size, at::Generator gen) {
  return std::make_unique<TokenSource>(corpus, batch_size, std::move(gen));
}

}  // namespace qk
