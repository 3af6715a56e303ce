// QKLab tests — synthetic task generators: shapes, loss masks, targets, determinism by seed.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>
#include <tuple>

#include "error.h"
#include "helpers.h"
#include "presets.h"
#include "tasks.h"

using namespace qk;
using Catch::Matchers::Contains;

namespace {
std::vector<int64_t> row(const torch::Tensor& t, int i) {
  auto r = t[i].contiguous();
  return std::vector<int64_t>(r.data_ptr<int64_t>(), r.data_ptr<int64_t>() + r.numel());
}
// Full sequence S from inputs and (masked) targets: S[0] = in[0], S[t+1] = in[t+1] or the target.
void check_deterministic(const SyntheticTask& t) {
  auto a = t.generate(16, 5), b = t.generate(16, 5), c = t.generate(16, 6);
  CHECK(torch::equal(a.inputs, b.inputs));
  CHECK(torch::equal(a.targets, b.targets));
  CHECK(!torch::equal(a.inputs, c.inputs));
  CHECK(a.inputs.size(1) == t.seq_len());
  CHECK(a.inputs.max().item<int64_t>() < t.vocab_size());
  CHECK(a.targets.max().item<int64_t>() < t.vocab_size());
  // Every target that is kept equals the next input token (the task is next-token prediction),
  // except at the last position.
  auto keep = a.targets.slice(1, 0, -1).ne(-100);
  auto next = a.inputs.slice(1, 1);
  CHECK(torch::equal(a.targets.slice(1, 0, -1).masked_select(keep), next.masked_select(keep)));
}
}  // namespace

TEST_CASE("copy / reverse / sort: second half is f(first half) — loss only there", "[tasks]") {
  for (std::string kind : {"copy", "reverse", "sort"}) {
    DataConfig d;
    d.kind = kind;
    d.seq_items = 6;
    d.task_vocab = 10;
    auto t = make_task(d);
    check_deterministic(*t);
    auto b = t->generate(32, 1);
    for (int i = 0; i < 32; ++i) {
      auto in = row(b.inputs, i), tg = row(b.targets, i);
      std::vector<int64_t> a(in.begin(), in.begin() + 6), expect = a;
      if (kind == "reverse") std::reverse(expect.begin(), expect.end());
      if (kind == "sort") std::sort(expect.begin(), expect.end());
      CHECK(in[6] == 10);  // SEP
      for (int k = 0; k < 6; ++k) CHECK(tg[k] == -100);
      for (int k = 0; k < 6; ++k) CHECK(tg[6 + k] == expect[k]);
    }
  }
}

TEST_CASE("recall: several queries — each target the value bound to its key", "[tasks]") {
  DataConfig d;
  d.kind = "recall";
  d.num_pairs = 5;
  d.num_keys = 12;
  d.num_values = 7;
  d.num_queries = 3;
  auto t = make_task(d);
  check_deterministic(*t);
  CHECK(t->seq_len() == 2 * 5 + 2 * 3);
  auto b = t->generate(64, 3);
  for (int i = 0; i < 64; ++i) {
    auto in = row(b.inputs, i), tg = row(b.targets, i);
    std::map<int64_t, int64_t> kv;
    for (int p = 0; p < 5; ++p) kv[in[2 * p]] = in[2 * p + 1];
    CHECK(kv.size() == 5);  // distinct keys
    CHECK(in[10] == 12 + 7);
    int masked = 0;
    for (int j = 0; j < 3; ++j) {
      const int qpos = 11 + 2 * j;
      CHECK(kv.count(in[qpos]));
      CHECK(tg[qpos] == kv[in[qpos]]);
      ++masked;
    }
    int kept = 0;
    for (auto v : tg) kept += v != -100;
    CHECK(kept == masked);
  }
}

TEST_CASE("bilinear: the query asks for key pi(query) — pi fixed across seeds", "[tasks]") {
  DataConfig d;
  d.kind = "bilinear";
  d.num_pairs = 4;
  d.num_keys = 40;
  d.num_values = 9;
  d.num_queries = 2;
  auto t = make_task(d);
  check_deterministic(*t);
  // Recover pi from many sequences: query q -> the key whose value is the target. Consistent
  // across batches (a permutation) and not the identity.
  std::map<int64_t, std::set<int64_t>> seen;
  for (uint64_t seed : {1, 2, 3}) {
    auto b = t->generate(256, seed);
    for (int i = 0; i < 256; ++i) {
      auto in = row(b.inputs, i), tg = row(b.targets, i);
      for (int j = 0; j < 2; ++j) {
        const int qpos = 9 + 2 * j;
        std::vector<int64_t> candidates;
        for (int p = 0; p < 4; ++p) if (in[2 * p + 1] == tg[qpos]) candidates.push_back(in[2 * p]);
        if (candidates.size() == 1) seen[in[qpos]].insert(candidates[0]);
      }
    }
  }
  int identity = 0;
  for (auto& [q, keys] : seen) {
    CHECK(keys.size() == 1);
    identity += *keys.begin() == q;
  }
  CHECK(seen.size() > 30);
  CHECK(identity < 5);
  d.perm_seed = 1;  // another permutation
  CHECK(!torch::equal(make_task(d)->generate(8, 1).inputs, t->generate(8, 1).inputs));
}

TEST_CASE("induction: the repeat is predictable — its period varies — the first copy is not scored", "[tasks]") {
  DataConfig d;
  d.kind = "induction";
  d.seq_items = 7;
  d.task_vocab = 20;
  auto t = make_task(d);
  check_deterministic(*t);
  auto b = t->generate(64, 9);
  std::set<int> periods;
  for (int i = 0; i < 64; ++i) {
    auto in = row(b.inputs, i), tg = row(b.targets, i);
    int P = 1;
    while (in[P] != in[0]) ++P;  // the first P tokens are distinct
    periods.insert(P);
    CHECK(P >= 4);
    CHECK(P <= 7);
    for (int k = 0; k < P; ++k) CHECK(tg[k] == -100);
    for (int k = P; k < 13; ++k) CHECK(tg[k] == in[k + 1 - P]);  // one past the earlier occurrence
  }
  CHECK(periods.size() == 4);  // no fixed offset to learn
  d.task_vocab = 5;
  CHECK_THROWS_WITH(make_task(d), Catch::Contains("data.task_vocab"));
}

TEST_CASE("modadd: a + b = (a+b) mod p", "[tasks]") {
  DataConfig d;
  d.kind = "modadd";
  d.modulus = 11;
  auto t = make_task(d);
  check_deterministic(*t);
  auto b = t->generate(50, 2);
  for (int i = 0; i < 50; ++i) {
    auto in = row(b.inputs, i), tg = row(b.targets, i);
    CHECK(in[1] == 11);
    CHECK(in[3] == 12);
    CHECK(tg[3] == (in[0] + in[2]) % 11);
    CHECK(tg[0] == -100);
  }
}

TEST_CASE("task parameters are validated with the key named", "[tasks]") {
  ExperimentConfig c = preset_config("task-copy");
  c.data.seq_items = 0;
  CHECK_THROWS_WITH(validate_config(c, "cfg"), Contains("data.seq_items"));
  c = preset_config("task-recall");
  c.model.context_length = 10;
  CHECK_THROWS_WITH(validate_config(c, "cfg"), Contains("model.context_length: must be >= 24"));
  for (const auto& p : presets()) {
    if (p.config.data.kind == "text") continue;
    INFO(p.name);
    CHECK_NOTHROW(validate_config(p.config, p.name));
  }
}

TEST_CASE("task_shape (torch-free — used by config validation and the GUI) matches every generator", "[tasks]") {
  for (const auto& kind : qk::task_kinds()) {
    qk::DataConfig d;
    d.kind = kind;
    const auto shape = qk::task_shape(d);
    auto task = qk::make_task(d);
    INFO(kind);
    CHECK(task->vocab_size() == shape.vocab_size);
    CHECK(task->seq_len() == shape.seq_len);
    const auto b = task->generate(4, 7);
    CHECK(b.inputs.size(1) == shape.seq_len);
    CHECK(b.inputs.max().item<int64_t>() < shape.vocab_size);
  }
  qk::DataConfig bad;
  bad.kind = "modadd";
  bad.modulus = 1;
  CHECK_THROWS_WITH(qk::task_shape(bad), Catch::Matchers::Contains("data.modulus: must be >= 2"));
}

TEST_CASE("token-wise enc-* tasks: a label at every position, f(x) per task", "[tasks][encoder]") {
  for (std::string kind : {"enc-copy", "enc-reverse", "enc-sort", "enc-sub", "enc-swap"}) {
    INFO(kind);
    DataConfig d;
    d.kind = kind;
    d.seq_items = 6;
    d.task_vocab = 10;
    auto t = make_task(d);
    CHECK(t->vocab_size() == 10);  // no separator
    CHECK(t->seq_len() == 6);
    auto b = t->generate(20, 3);
    CHECK(b.targets.ne(-100).all().item<bool>());  // scored everywhere
    CHECK(torch::equal(b.inputs, t->generate(20, 3).inputs));
    for (int i = 0; i < 20; ++i) {
      auto x = row(b.inputs, i), y = row(b.targets, i), want = x;
      if (kind == "enc-reverse") std::reverse(want.begin(), want.end());
      if (kind == "enc-sort") std::sort(want.begin(), want.end());
      if (kind == "enc-sub")
        for (auto& v : want) v = 9 - v;
      if (kind == "enc-swap") want = {x[3], x[4], x[5], x[0], x[1], x[2]};
      CHECK(y == want);
    }
  }
  DataConfig odd;
  odd.kind = "enc-swap";
  odd.seq_items = 5;
  CHECK_THROWS_WITH(task_shape(odd), Contains("data.seq_items: must be even for enc-swap"));
}

TEST_CASE("data.train_sequences: a fixed training set, each sequence once per epoch, reshuffled, resumable", "[tasks][encoder]") {
  DataConfig d;
  d.kind = "enc-reverse";
  d.seq_items = 8;
  d.task_vocab = 10;
  d.train_sequences = 100;
  d.val_sequences = 40;
  auto src = make_task_source(d, 32, 9);
  REQUIRE(src->batches_per_epoch() == 4);  // ceil(100 / 32): 32, 32, 32, 4
  CHECK(src->accuracy() == AccuracyKind::Token);
  auto epoch = [&] {
    std::multiset<std::vector<int64_t>> rows;
    std::vector<int64_t> sizes, first;
    for (int k = 0; k < 4; ++k) {
      auto b = *src->next_train();
      sizes.push_back(b.inputs.size(0));
      for (int64_t i = 0; i < b.inputs.size(0); ++i) rows.insert(row(b.inputs, static_cast<int>(i)));
      if (k == 0) first = row(b.inputs, 0);
    }
    return std::make_tuple(rows, sizes, first);
  };
  auto [rows1, sizes1, first1] = epoch();
  auto [rows2, sizes2, first2] = epoch();
  CHECK(sizes1 == std::vector<int64_t>{32, 32, 32, 4});
  CHECK(rows1.size() == 100);
  CHECK(rows1 == rows2);    // the same 100 sequences...
  CHECK(first1 != first2);  // ...in another order
  // The training probe is seen data; validation is not.
  auto probe = src->eval_batches(false, 10);
  CHECK(rows1.count(row(probe[0].inputs, 0)) == 1);
  // Resume: the state (a counter) restores the exact next batch.
  auto fresh = make_task_source(d, 32, 9);
  for (int k = 0; k < 5; ++k) fresh->next_train();
  auto again = make_task_source(d, 32, 9);
  again->set_state(fresh->state(), "test");
  CHECK(torch::equal(fresh->next_train()->inputs, again->next_train()->inputs));
}
