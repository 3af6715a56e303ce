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

// The experiment that started QKLab: the book's chapter 5 with the seed's MHA_alt1 (merged-seed),
// beside the book's own attention.
ExperimentConfig seed_ch5() {
  ExperimentConfig c = book_ch5(false);
  c.name = "seed-ch5";
  c.variants = {Variant::Standard, Variant::MergedSeed};
  return c;
}

ExperimentConfig task(const std::string& kind, int context, int steps) {
  ExperimentConfig c;
  c.name = "task-" + kind;
  c.data.kind = kind;
  c.model.context_length = context;
  c.train.steps = steps;
  c.train.eval_every = 50;
  c.train.eval_batches = 8;
  c.train.warmup_steps = 50;
  c.train.cosine = true;
  c.train.min_lr = 1e-4;
  return c;
}

ExperimentConfig task_recall() {
  auto c = task("recall", 24, 2000);
  c.data.num_pairs = 8;
  c.data.num_keys = 32;
  c.data.num_values = 32;
  c.data.num_queries = 4;
  return c;
}

ExperimentConfig task_bilinear() {
  auto c = task("bilinear", 16, 2500);
  c.data.num_pairs = 4;
  c.data.num_keys = 64;  // 64 keys >> head_dim 16
  c.data.num_values = 16;
  c.data.num_queries = 4;
  return c;
}

ExperimentConfig task_modadd() {
  auto c = task("modadd", 4, 3000);
  c.data.modulus = 23;
  c.train.weight_decay = 1.0;
  c.train.batch_size = 64;
  return c;
}

ExperimentConfig task_seq(const std::string& kind, int items, int vocab, int steps) {
  auto c = task(kind, 2 * items, steps);
  c.data.seq_items = items;
  c.data.task_vocab = vocab;
  return c;
}

// The protocol of Kayyam, Madan Gopal & Lewis, "Do Transformers Need Three Projections?" (ICML
// 2026, Section 4.1): a pre-norm encoder (model.causal = false) on a token-wise task over 10
// symbols, length 16, d 64, 2 layers, 2 heads; 10k training sequences seen for 2 epochs, 2k test
// sequences (their token accuracy is val_acc); Adam lr 1e-3 (no weight decay), cosine with 5 %
// warm-up, gradient clipping at 5, batch 128.
ExperimentConfig projections(const std::string& task) {
  ExperimentConfig c;
  c.name = "projections-" + task;
  c.variants = {Variant::Standard, Variant::SharedQK, Variant::SharedKV, Variant::SharedQKV, Variant::Merged};
  auto& m = c.model;
  m.emb_dim = 64;
  m.n_layers = 2;
  m.n_heads = 2;
  m.context_length = 16;
  m.causal = false;
  m.qkv_bias = true;  // their nn.Linear projections carry biases
  auto& d = c.data;
  d.kind = "enc-" + task;
  d.seq_items = 16;
  d.task_vocab = 10;
  d.train_sequences = 10000;
  d.val_sequences = 2000;
  auto& t = c.train;
  t.batch_size = 128;
  t.epochs = 2;                                   // 2 × ceil(10000 / 128) = 158 steps
  t.lr = 1e-3;
  t.weight_decay = 0.0;
  t.warmup_steps = 7;                             // int(5 % of 158), as their script
  t.cosine = true;
  t.min_lr = 0.0;
  t.grad_clip = 5.0;
  t.eval_every = 20;
  t.eval_batches = 16;                            // the whole test set: ceil(2000 / 128)
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
       "chapter-5 setup with a small model (2 layers, d=128, 4 heads): about a minute per "
       "variant; set data.path",
       book_ch5(true)},
      {"seed-ch5",
       "the seed's experiment: book-ch5 with the seed's merged attention (MHA_alt1: per-head S and "
       "W_value, no out_proj) beside the book's; set data.path to the-verdict.txt",
       seed_ch5()},
      {"task-copy", "copy 8 symbols (vocabulary 16) after a separator: an offset lookup",
       task_seq("copy", 8, 16, 1500)},
      {"task-reverse", "reverse 8 symbols after a separator: a mirrored lookup", task_seq("reverse", 8, 16, 1500)},
      {"task-sort", "sort 8 symbols (vocabulary 16): content-based attention", task_seq("sort", 8, 16, 2000)},
      {"task-recall", "associative recall, 8 pairs of 32 keys/32 values, 4 queries per sequence", task_recall()},
      {"task-induction", "induction: a random sequence of 16 (vocabulary 32) repeated; predict the repeat",
       task_seq("induction", 16, 32, 1500)},
      {"task-modadd", "modular addition a + b = c mod 23", task_modadd()},
      {"task-bilinear",
       "bilinear matching: query a must attend to key pi(a) of 64 keys (>> head_dim 16); where rank "
       "should matter",
       task_bilinear()},
      {"projections-copy", "Do Transformers Need Three Projections? (Table 1): token-wise copy, encoder, their protocol",
       projections("copy")},
      {"projections-reverse", "the same protocol: token-wise reverse (position i reads n+1-i)", projections("reverse")},
      {"projections-sort", "the same protocol: token-wise sort of the whole sequence", projections("sort")},
      {"projections-sub", "the same protocol: y = 9 - x at every position", projections("sub")},
      {"projections-swap", "the same protocol: the two halves of the sequence exchanged", projections("swap")},
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
