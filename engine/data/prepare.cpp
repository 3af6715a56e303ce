// QKLab engine — text files -> a tokens folder, on every core (see prepare.h).
#include "prepare.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "bpe_tokenizer.h"
#include "error.h"
#include "fsutil.h"
#include "gpt2_tokenizer.h"
#include "token_files.h"
#include "tokenizer_factory.h"

namespace qk {

namespace fs = std::filesystem;

namespace {

constexpr int64_t kEndOfText = 50256;  // GPT-2's <|endoftext|>
constexpr size_t kPiece = 1 << 20;     // bytes per encoded piece

// The first position at or after `p` where a piece may start. Byte-level BPE (GPT-2's, trained):
// before a space or newline that follows a printable ASCII character — no pattern of GPT-2's
// pre-tokeniser takes a non-space and the white space after it, so its pieces split there. Char:
// wherever a code point starts.
size_t cut_at(const std::string& t, size_t p, bool any_code_point) {
  if (p == 0) return 0;
  if (any_code_point)
    while (p < t.size() && (static_cast<unsigned char>(t[p]) & 0xC0) == 0x80) ++p;
  else
    while (p < t.size() && !((t[p] == ' ' || t[p] == '\n') && t[p - 1] > ' ' && t[p - 1] < 0x7F)) ++p;
  return std::min(p, t.size());
}

// Token ids into a file, 2 or 4 bytes each, with their CRC-32.
class IdWriter {
 public:
  IdWriter(const std::string& path, int width) : w_(path), width_(width) {}
  void put(const std::vector<int64_t>& ids) {
    buf_.resize(ids.size() * width_);
    for (size_t i = 0; i < ids.size(); ++i) {
      const auto v = static_cast<uint32_t>(ids[i]);
      for (int b = 0; b < width_; ++b) buf_[i * width_ + b] = static_cast<unsigned char>(v >> (8 * b));
    }
    crc_ = crc32_of(buf_.data(), buf_.size(), crc_);
    w_.write(buf_.data(), buf_.size());
    n_ += static_cast<int64_t>(ids.size());
  }
  void sync() { w_.sync(); }
  void commit() { w_.commit(); }
  int64_t tokens() const { return n_; }
  int64_t bytes() const { return n_ * width_; }
  uint32_t crc() const { return crc_; }

 private:
  AtomicFileWriter w_;
  int width_;
  std::vector<unsigned char> buf_;
  int64_t n_ = 0;
  uint32_t crc_ = 0;
};

}  // namespace

PrepareResult prepare_tokens(const PrepareOptions& o, const ProgressFn& progress) {
  if (o.inputs.empty()) throw Error("prepare: no input text files");
  if (!(o.val_fraction > 0 && o.val_fraction < 1))
    throw Error("prepare: --val-fraction: expected a number in (0, 1), got " + std::to_string(o.val_fraction));
  if (o.out_dir.empty()) throw Error("prepare: --out: expected the folder to write");
  int64_t total = 0;
  for (const auto& in : o.inputs) {
    std::error_code ec;
    if (!fs::is_regular_file(in, ec)) throw Error(in + ": cannot open the text file (missing or not a file)");
    total += static_cast<int64_t>(fs::file_size(in, ec));
  }

  // The tokenizer.
  std::shared_ptr<Tokenizer> tok;
  std::string kind;
  const std::string& spec = o.tokenizer;
  std::string gpt2_dir = o.gpt2_dir;
  if (spec == "gpt2") {
    kind = "gpt2";
    if (gpt2_dir.empty()) gpt2_dir = fs::path(o.inputs[0]).parent_path().string();
    if (gpt2_dir.empty()) gpt2_dir = ".";
    for (const char* f : {"gpt2-encoder.json", "gpt2-vocab.bpe"})
      if (!fs::exists(gpt2_dir + "/" + f))
        throw Error("prepare: --tokenizer gpt2: " + gpt2_dir + "/" + f + " is missing (name the folder with --gpt2-dir)");
    // As nanoGPT's prepare scripts (encode_ordinary): "<|endoftext|>" inside a text is text; the
    // token itself only separates the files.
    tok = std::make_shared<Gpt2Tokenizer>(gpt2_dir + "/gpt2-encoder.json", gpt2_dir + "/gpt2-vocab.bpe",
                                          /*allow_special=*/false);
  } else if (spec == "char") {
    kind = "char";
    std::set<uint32_t> seen;  // the code points of every input
    std::string all;
    for (const auto& in : o.inputs) {
      const std::string text = read_text_file(in);
      for (size_t p = 0; p < text.size();) {  // 16 MB at a time, cut where a code point starts
        size_t q = std::min(text.size(), p + (size_t{16} << 20));
        while (q < text.size() && (static_cast<unsigned char>(text[q]) & 0xC0) == 0x80) ++q;
        for (uint32_t cp : utf8_decode(text.substr(p, q - p), in)) seen.insert(cp);
        p = q;
      }
    }
    for (uint32_t cp : seen) all += utf8_encode(cp);
    tok = std::make_shared<CharTokenizer>(CharTokenizer::from_corpus(all, /*unk=*/false));
  } else if (spec.rfind("bpe:", 0) == 0 && spec.size() > 4) {
    kind = "bpe";
    const std::string arg = spec.substr(4);
    if (arg.find_first_not_of("0123456789") == std::string::npos) {
      const long long n = std::stoll(arg.substr(0, 9));
      if (arg.size() > 9 || n < 257 || n > 1 << 20)
        throw Error("prepare: --tokenizer bpe:N: N is the vocabulary size, 257 to 1048576, got " + arg);
      std::string all;
      for (const auto& in : o.inputs) all += read_text_file(in);
      tok = std::make_shared<BpeTokenizer>(BpeTokenizer::train(all, static_cast<int>(n), [&](int64_t d, int64_t t) {
        if (progress) progress("training the BPE (merges)", d, t);
      }));
    } else {
      tok = std::make_shared<BpeTokenizer>(BpeTokenizer::load(arg));
    }
  } else {
    throw Error("prepare: --tokenizer: expected gpt2, char, bpe:N (train a BPE of N tokens) or bpe:FILE, got '" + spec + "'");
  }
  const int64_t vocab = tok->vocab_size();
  const int width = vocab <= 65536 ? 2 : 4;

  // One tokenizer per thread (their word caches are not shared).
  const int threads = o.threads > 0 ? o.threads : std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::shared_ptr<Tokenizer>> toks{tok};
  const auto tj = tok->to_json();
  for (int i = 1; i < threads; ++i) toks.push_back(tokenizer_from_json(tj));

  make_dirs(o.out_dir);
  const auto t0 = std::chrono::steady_clock::now();
  IdWriter train(o.out_dir + "/" + token_files::kTrain, width), val(o.out_dir + "/" + token_files::kVal, width);
  int64_t done = 0;
  nlohmann::json sources = nlohmann::json::array();
  auto encode_into = [&](const std::string& text, size_t begin, size_t end, IdWriter& out) {
    std::vector<std::pair<size_t, size_t>> pieces;
    for (size_t p = begin; p < end;) {
      size_t q = std::min(end, cut_at(text, std::min(end, p + kPiece), kind == "char"));
      if (q <= p) q = end;
      pieces.push_back({p, q});
      p = q;
    }
    const size_t wave = static_cast<size_t>(threads) * 4;  // pieces encoded together, then written in order
    for (size_t w = 0; w < pieces.size(); w += wave) {
      const size_t n = std::min(wave, pieces.size() - w);
      std::vector<std::vector<int64_t>> ids(n);
      std::atomic<size_t> next{0};
      std::vector<std::string> errors(threads);
      auto work = [&](int t) {
        try {
          for (size_t k; (k = next++) < n;)
            ids[k] = toks[t]->encode(text.substr(pieces[w + k].first, pieces[w + k].second - pieces[w + k].first));
        } catch (const std::exception& e) {
          errors[t] = e.what();
        }
      };
      std::vector<std::thread> pool;
      for (int t = 1; t < threads; ++t) pool.emplace_back(work, t);
      work(0);
      for (auto& th : pool) th.join();
      for (const auto& e : errors)
        if (!e.empty()) throw Error(e);
      for (size_t k = 0; k < n; ++k) {
        out.put(ids[k]);
        done += static_cast<int64_t>(pieces[w + k].second - pieces[w + k].first);
      }
      if (progress) progress("tokenizing", done, total);
    }
    if (kind == "gpt2") out.put({kEndOfText});
  };
  for (const auto& in : o.inputs) {
    const std::string text = read_text_file(in);  // one file in memory at a time; UTF-8 checked
    const size_t cut = cut_at(text, static_cast<size_t>((1.0 - o.val_fraction) * static_cast<double>(text.size())), kind == "char");
    encode_into(text, 0, cut, train);
    if (cut < text.size()) encode_into(text, cut, text.size(), val);
    sources.push_back({{"path", fs::absolute(in).string()}, {"bytes", text.size()}});
  }
  if (train.tokens() < 2) throw Error("prepare: the training part has " + std::to_string(train.tokens()) + " tokens; give more text");
  if (val.tokens() < 2)
    throw Error("prepare: the validation part has " + std::to_string(val.tokens()) +
                " tokens (no place to cut the last " + std::to_string(o.val_fraction) +
                " of the text: raise --val-fraction or give more text)");

  // Every new file complete on the disk first (a full disk shows here, before anything of an old
  // folder is touched), then all renamed into place, meta.json last: a folder with meta.json is whole.
  std::vector<std::unique_ptr<AtomicFileWriter>> extra;
  auto add = [&](const std::string& name, const std::string& bytes) {
    extra.push_back(std::make_unique<AtomicFileWriter>(o.out_dir + "/" + name));
    extra.back()->write(bytes.data(), bytes.size());
  };
  std::error_code same;
  if (kind == "gpt2") {
    if (!fs::equivalent(gpt2_dir, o.out_dir, same))
      for (const char* f : {"gpt2-encoder.json", "gpt2-vocab.bpe"}) add(f, read_file_bytes(gpt2_dir + "/" + f, "GPT-2 tokenizer file"));
  } else {
    add(token_files::kTokenizer, tok->to_json().dump() + "\n");
  }
  train.sync();
  val.sync();
  for (auto& w : extra) w->sync();
  std::error_code ec;
  fs::remove(o.out_dir + "/" + token_files::kMeta, ec);  // the old meta.json no longer describes the folder
  for (auto& w : extra) w->commit();
  train.commit();
  val.commit();
  const std::string dtype = width == 2 ? "uint16" : "uint32";
  nlohmann::json meta = {
      {"format", token_files::kFormat}, {"version", 1}, {"tokenizer", kind}, {"vocab_size", vocab},
      {"dtype", dtype}, {"train_tokens", train.tokens()}, {"val_tokens", val.tokens()},
      {"val_fraction", o.val_fraction}, {"sources", sources},
      {"files",
       {{token_files::kTrain, {{"bytes", train.bytes()}, {"crc32", crc32_hex(train.crc())}}},
        {token_files::kVal, {{"bytes", val.bytes()}, {"crc32", crc32_hex(val.crc())}}}}}};
  write_file_atomic(o.out_dir + "/" + token_files::kMeta, meta.dump(2) + "\n");
  PrepareResult r;
  r.train_tokens = train.tokens();
  r.val_tokens = val.tokens();
  r.input_bytes = total;
  r.vocab_size = vocab;
  r.tokenizer = kind;
  r.dtype = dtype;
  r.threads = threads;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

}  // namespace qk
