// Fuzz target: a tokens folder and `prepare`. The input, split at 0x1E bytes, is meta.json,
// train.bin, val.bin and a text: the folder (with a fixed char tokenizer.json beside it) goes to
// load_token_corpus and, when it loads, through a batch source (random and in-order windows, every
// id checked below the vocabulary); the text goes to prepare_tokens (char, two threads) and, when
// that succeeds, the folder it wrote must load and decode back to the text.
#include <filesystem>

#include "fuzz_common.h"
#include "prepare.h"
#include "token_files.h"

namespace {

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_tokens: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto p = qkf::parts(data, size, 4, '\x1e');
  const std::string dir = qkf::scratch() + "/tok";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  qkf::write("tok/meta.json", p[0]);
  qkf::write("tok/train.bin", p[1]);
  qkf::write("tok/val.bin", p[2]);
  qkf::write("tok/tokenizer.json", R"({"kind": "char", "chars": [97, 98, 99], "unk": true})");
  qk::DataConfig d;
  d.kind = "tokens";
  d.path = dir;
  qkf::expect_only_qk_errors([&] {
    const auto c = qk::load_text_corpus(d, 2);
    const int64_t vocab = c.tokenizer->vocab_size();
    auto src = qk::make_text_source(c, 2, at::make_generator<at::CPUGeneratorImpl>(1));
    for (int k = 0; k < 2; ++k) {
      const auto b = src->next_train();
      check(b && b->inputs.max().item<int64_t>() < vocab && b->targets.min().item<int64_t>() >= 0, "a window outside the vocabulary");
    }
    for (const auto& b : src->eval_batches(true, 3)) check(b.inputs.max().item<int64_t>() < vocab, "an eval window outside the vocabulary");
  });
  const std::string text = qkf::write("text.txt", p[3]);
  qk::PrepareOptions o;
  o.inputs = {text};
  o.tokenizer = "char";
  o.val_fraction = 0.3;
  o.out_dir = qkf::scratch() + "/prep";
  o.threads = 2;
  std::filesystem::remove_all(o.out_dir);
  qkf::expect_only_qk_errors([&] {
    const auto r = qk::prepare_tokens(o);
    qk::DataConfig pd;
    pd.kind = "tokens";
    pd.path = o.out_dir;
    const auto c = qk::load_text_corpus(pd, 1);
    check(c.train_tokens == r.train_tokens && c.val_tokens == r.val_tokens, "prepare's counts differ from the files'");
    std::vector<int64_t> tr(c.train_tokens), va(c.val_tokens);
    c.train_file->copy(0, c.train_tokens, tr.data());
    c.val_file->copy(0, c.val_tokens, va.data());
    check(c.tokenizer->decode(tr) + c.tokenizer->decode(va) == p[3], "the prepared folder does not decode to the text");
  });
  return 0;
}
