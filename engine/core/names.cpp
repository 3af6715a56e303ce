// QKLab engine — task kinds and tokenizer specs (see names.h).
#include "names.h"

#include <algorithm>

#include "error.h"

namespace qk {

const std::vector<std::string>& task_kinds() {
  static const std::vector<std::string> k{"copy",     "reverse",     "sort",     "recall",  "induction", "modadd",
                                          "bilinear", "enc-copy",    "enc-reverse", "enc-sort", "enc-sub", "enc-swap"};
  return k;
}

bool is_tokenwise_task(const std::string& kind) { return kind.rfind("enc-", 0) == 0 && is_task_kind(kind); }

AccuracyKind accuracy_kind(const std::string& data_kind) {
  if (is_language_kind(data_kind)) return AccuracyKind::None;
  return is_tokenwise_task(data_kind) ? AccuracyKind::Token : AccuracyKind::Sequence;
}

bool is_task_kind(const std::string& kind) {
  const auto& k = task_kinds();
  return std::find(k.begin(), k.end(), kind) != k.end();
}

bool is_language_kind(const std::string& kind) { return kind == "text" || kind == "tokens"; }

TaskShape task_shape(const DataConfig& d) {
  auto need = [](bool ok, const std::string& key, const std::string& what) {
    if (!ok) throw Error("config: " + key + ": " + what);
  };
  const std::string& k = d.kind;
  if (k == "copy" || k == "reverse" || k == "sort") {  // a1..an SEP f(a): 2n+1 tokens, SEP = vocab
    need(d.seq_items > 0, "data.seq_items", "must be a positive integer");
    need(d.task_vocab > 0, "data.task_vocab", "must be a positive integer");
    return {d.task_vocab + 1, 2 * d.seq_items};
  }
  if (k == "recall" || k == "bilinear") {  // k1 v1 .. kn vn SEP q1 a1 .. qm am: 2n+1+2m tokens
    need(d.num_pairs > 0, "data.num_pairs", "must be a positive integer");
    need(d.num_keys >= d.num_pairs, "data.num_keys", "must be >= data.num_pairs (keys in a sequence are distinct)");
    need(d.num_values > 0, "data.num_values", "must be a positive integer");
    need(d.num_queries > 0, "data.num_queries", "must be a positive integer");
    return {int64_t(d.num_keys) + d.num_values + 1, 2 * d.num_pairs + 2 * d.num_queries};
  }
  if (k == "induction") {  // r1..rP repeated with period P ≤ n: 2n tokens
    need(d.seq_items > 1, "data.seq_items", "must be >= 2");
    need(d.task_vocab > 0, "data.task_vocab", "must be a positive integer");
    need(d.task_vocab >= d.seq_items, "data.task_vocab", "must be >= data.seq_items (the repeated tokens are distinct)");
    return {d.task_vocab, 2 * d.seq_items - 1};
  }
  if (is_tokenwise_task(k)) {  // x1..xn -> y1..yn, a label at every position, no separator
    need(d.seq_items > 0, "data.seq_items", "must be a positive integer (the sequence length)");
    need(d.task_vocab > 1, "data.task_vocab", "must be >= 2");
    if (k == "enc-swap") need(d.seq_items % 2 == 0, "data.seq_items", "must be even for enc-swap (two halves exchanged)");
    return {d.task_vocab, d.seq_items};
  }
  if (k == "modadd") {  // a + b = c: residues, '+', '='
    need(d.modulus > 1, "data.modulus", "must be >= 2");
    return {int64_t(d.modulus) + 2, 4};
  }
  throw Error("config: data.kind: unknown task '" + k + "'");
}

TokenizerSpec parse_tokenizer_spec(const std::string& name, const std::string& field) {
  if (name == "char") return {TokenizerSpec::Kind::Char, ""};
  if (name == "gpt2") return {TokenizerSpec::Kind::Gpt2, ""};
  if (name.rfind("bpe:", 0) == 0 && name.size() > 4) return {TokenizerSpec::Kind::Bpe, name.substr(4)};
  throw Error(field + ": expected 'char', 'gpt2' or 'bpe:FILE', got '" + name + "'");
}

}  // namespace qk
