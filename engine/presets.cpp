// QKLab engine — built-in presets.
#include "presets.h"

#include "error.h"

namespace qk {
namespace {

ExperimentConfig default_experiment() {
  ExperimentConfig c;  // the defaults in config.h: recall task, 2 layers, d 64, 4 heads
  c.name = "default";
  return c;
}

ExperimentConfig book_ch5(bool small) {
  ExperimentConfig c;
  c.name = small ? "book-ch5-small" : "book-ch5";
  c.variants = {Variant::Standard, Variant::Merged};
  auto& m = c.model;
  m.vocab_size = 50257;
  m.context_length = 256;
  m.emb_dim = small ? 128 : 768;
  m.n_heads = small ? 4 : 12;
  m.n_layers = small ? 2 : 12;
  m.drop_rate = 0.1;
  m.qkv_bias = false;
  auto& d = c.data;
  d.kind = "text";
  d.tokenizer = "gpt2";
  d.path = "";  // the user names the corpus: --set data.path=the-verdict.txt
  d.max_length = 256;
  d.stride = 256;
  d.train_ratio = 0.9;
  auto& t = c.train;
  t.batch_size = 2;
  t.epochs = 10;
  t.lr = 4e-4;
  t.weight_decay = 0.1;
  t.eval_every = 5;
  t.eval_batches = 5;
  t.seed = 123;
  t.mode = "book";
  return c;
}

}  // namespace

const std::vector<Preset>& presets() {
  static const std::vector<Preset> list = {
      {"default",
       "associative recall (4 pairs, 16 keys, 16 values), 2 layers, d=64, 4 heads; standard vs "
       "merged; learns in well under a minute on 2 cores",
       default_experiment()},
      {"book-ch5",
       "the book's chapter-5 run: GPT-2 BPE, 124M-style model (12x12, d=768, context 256), "
       "batch 2, AdamW 4e-4, 10 epochs, eval every 5 steps; set data.path to the-verdict.txt",
       book_ch5(false)},
      {"book-ch5-small",
       "chapter-5 setup with a small model (2 layers, d=128, 4 heads) that finishes in about a "
       "minute; set data.path",
       book_ch5(true)},
  };
  return list;
}

ExperimentConfig preset_config(const std::string& name) {
  std::string known;
  for (const auto& p : presets()) {
    if (p.name == name) return p.config;
    known += (known.empty() ? "" : ", ") + p.name;
  }
  throw Error("unknown preset '" + name + "' (known: " + known + ")");
}

}  // namespace qk
