// QKLab engine — experiment configuration: strict JSON parsing, overrides, validation.
#include "config.h"
#include "variants.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "format.h"

#include "names.h"

#include <cmath>
#include <fstream>
#include <limits>
#include <type_traits>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

#include "error.h"

namespace qk {
using json = nlohmann::json;

namespace {

const char* type_name(const int&) { return "an integer"; }
const char* type_name(const double&) { return "a number"; }
const char* type_name(const bool&) { return "true or false"; }
const char* type_name(const std::string&) { return "a string"; }

bool json_fits(const json& v, const int&) {  // and within int's range: 1e12 steps is refused, not wrapped
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= uint64_t(std::numeric_limits<int>::max());
  return v.is_number_integer() && v.get<int64_t>() >= std::numeric_limits<int>::min() &&
         v.get<int64_t>() <= std::numeric_limits<int>::max();
}
bool json_fits(const json& v, const double&) { return v.is_number(); }
bool json_fits(const json& v, const bool&) { return v.is_boolean(); }
bool json_fits(const json& v, const std::string&) { return v.is_string(); }

// Reads the members of one section object, rejecting unknown keys and wrong types.
struct Reader {
  const json& obj;
  std::string where;  // "file: section"
  std::set<std::string> seen;
  template <class T> void operator()(const char* key, T& field) {
    seen.insert(key);
    auto it = obj.find(key);
    if (it == obj.end()) return;
    if (!json_fits(*it, field))
      throw Error(where + "." + key + ": expected " + type_name(field) +
                  (std::is_same_v<T, int> && it->is_number_integer() ? " (at most 2147483647)" : "") + ", got " +
                  escape_name(it->dump()));
    field = it->get<T>();
  }
  void check_unknown() const {
    for (auto it = obj.begin(); it != obj.end(); ++it)
      if (!seen.count(it.key())) {
        std::string known;
        for (auto& k : seen) known += (known.empty() ? "" : ", ") + k;
        throw Error(where + ": unknown key '" + escape_name(it.key()) + "' (known: " + known + ")");
      }
  }
};

struct Writer {
  json& obj;
  template <class T> void operator()(const char* key, const T& field) { obj[key] = field; }
};

struct KeyLister {
  std::string prefix;
  std::vector<std::pair<std::string, std::string>>& out;
  template <class T> void operator()(const char* key, const T& field) {
    out.emplace_back(prefix + key, json(field).dump());
  }
};

template <class Section>
void read_section(const json& j, const char* name, Section& s, const std::string& source) {
  auto it = j.find(name);
  if (it == j.end()) return;
  if (!it->is_object()) throw Error(source + ": '" + name + "' must be an object");
  Reader r{*it, source + ": " + name, {}};
  s.visit(r);
  r.check_unknown();
}

}  // namespace

ExperimentConfig config_from_json(const json& j, const std::string& source) {
  if (!j.is_object()) throw Error(source + ": expected a JSON object at top level");
  static const std::set<std::string> top{"name", "variants", "model", "data", "train"};
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!top.count(it.key()))
      throw Error(source + ": unknown key '" + it.key() +
                  "' (known: name, variants, model, data, train)");
  ExperimentConfig c;
  if (j.contains("name")) {
    if (!j["name"].is_string()) throw Error(source + ": name: expected a string");
    c.name = j["name"].get<std::string>();
  }
  if (j.contains("variants")) {
    const auto& v = j["variants"];
    if (!v.is_array() || v.empty())
      throw Error(source + ": variants: expected a non-empty list such as [\"standard\", \"merged\"]");
    c.variants.clear();
    for (const auto& e : v) {
      if (!e.is_string()) throw Error(source + ": variants: expected strings, got " + e.dump());
      try {
        c.variants.push_back(parse_variant(e.get<std::string>()));
      } catch (const Error& err) {
        throw Error(source + ": variants: " + err.what());
      }
    }
  }
  read_section(j, "model", c.model, source);
  read_section(j, "data", c.data, source);
  read_section(j, "train", c.train, source);
  return c;
}

json config_to_json(const ExperimentConfig& c) {
  json j;
  j["name"] = c.name;
  j["variants"] = json::array();
  for (auto v : c.variants) j["variants"].push_back(variant_name(v));
  json m = json::object(), d = json::object(), t = json::object();
  Writer wm{m}, wd{d}, wt{t};
  ExperimentConfig copy = c;  // visit() is non-const: it also serves the readers
  copy.model.visit(wm);
  copy.data.visit(wd);
  copy.train.visit(wt);
  j["model"] = m;
  j["data"] = d;
  j["train"] = t;
  return j;
}

nlohmann::json parse_json(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    std::string what = e.what();
    const auto colon = what.find("]: ");  // drop nlohmann's "[json.exception.parse_error.101] "
    if (colon != std::string::npos) what = what.substr(colon + 3);
    throw Error(source + ": malformed JSON (byte " + std::to_string(e.byte) + "): " + escape_name(what));
  } catch (const json::exception&) {
    throw Error(source + ": malformed JSON: a number out of range");
  }
}

std::string json_string(const json& j, const char* key, const std::string& source, const std::string& fallback) {
  if (!j.is_object() || !j.contains(key)) return fallback;
  const auto& v = j[key];
  if (!v.is_string()) throw Error(source + ": " + key + ": expected a string, got " + escape_name(v.dump()));
  return v.get<std::string>();
}

int64_t json_int(const json& j, const char* key, const std::string& source, int64_t fallback) {
  if (!j.is_object() || !j.contains(key)) return fallback;
  const auto& v = j[key];
  if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(INT64_MAX)))
    throw Error(source + ": " + key + ": expected an integer, got " + escape_name(v.dump()));
  return v.get<int64_t>();
}

ExperimentConfig load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open config file");
  std::stringstream ss;
  ss << in.rdbuf();
  return config_from_json(parse_json(ss.str(), path), path);
}

void apply_override(ExperimentConfig& c, const std::string& assignment) {
  auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error("--set '" + assignment + "': expected key=value, e.g. train.lr=0.001");
  std::string key = assignment.substr(0, eq), text = assignment.substr(eq + 1);
  json value;
  try {
    value = json::parse(text);
  } catch (const json::exception&) {  // not JSON, or a number out of range (found by fuzzing)
    value = text;                      // a bare string: a numeric key then says it expected a number
  }
  json j = config_to_json(c);
  auto dot = key.find('.');
  if (dot == std::string::npos) {
    if (key == "variants" && value.is_string()) {  // allow variants=standard,merged
      json arr = json::array();
      std::stringstream ss(value.get<std::string>());
      for (std::string part; std::getline(ss, part, ',');) arr.push_back(part);
      value = arr;
    }
    if (!j.contains(key)) throw Error("--set: unknown key '" + key + "'");
    j[key] = value;
  } else {
    std::string section = key.substr(0, dot), field = key.substr(dot + 1);
    if (!j.contains(section) || !j[section].is_object())
      throw Error("--set: unknown section '" + section + "' in '" + key +
                  "' (known: model, data, train)");
    if (!j[section].contains(field)) throw Error("--set: unknown key '" + key + "'");
    // Numbers given for string fields stay text (e.g. data.path=123).
    if (j[section][field].is_string() && !value.is_string()) value = text;
    if (j[section][field].is_number_float() && value.is_number_integer())
      value = value.get<double>();
    j[section][field] = value;
  }
  c = config_from_json(j, "--set " + key);
}

void validate_config(const ExperimentConfig& c, const std::string& source, bool need_data) {
  auto fail = [&](const std::string& key, const std::string& what) {
    throw Error(source + ": " + key + ": " + what);
  };
  const auto& m = c.model;
  if (m.vocab_size < 0) fail("model.vocab_size", "must be >= 0 (0 = from the data)");
  if (m.context_length <= 0) fail("model.context_length", "must be a positive integer");
  if (m.emb_dim <= 0) fail("model.emb_dim", "must be a positive integer");
  if (m.n_heads <= 0) fail("model.n_heads", "must be a positive integer");
  if (m.n_layers <= 0) fail("model.n_layers", "must be a positive integer");
  if (m.emb_dim % m.n_heads != 0)
    fail("model.emb_dim", "must be divisible by model.n_heads (" + std::to_string(m.emb_dim) +
                              " % " + std::to_string(m.n_heads) + " != 0)");
  if (m.drop_rate < 0 || m.drop_rate >= 1) fail("model.drop_rate", "must be in [0, 1)");
  // Sizes beyond any model this lab can train are refused before anything is allocated.
  if (m.emb_dim > 65536) fail("model.emb_dim", "must be at most 65536");
  if (m.n_layers > 1024) fail("model.n_layers", "must be at most 1024");
  if (m.context_length > 1 << 20) fail("model.context_length", "must be at most 1048576");
  if (m.vocab_size > 1 << 24) fail("model.vocab_size", "must be at most 16777216");
  if (m.qk_head_dim > m.emb_dim) fail("model.qk_head_dim", "must be at most model.emb_dim");
  if (m.qk_head_dim < 0) fail("model.qk_head_dim", "must be >= 0 (0 = emb_dim / n_heads)");
  if (m.value_proj != "linear" && m.value_proj != "identity")
    fail("model.value_proj", "expected 'linear' or 'identity', got '" + m.value_proj + "'");
  if (m.value_proj == "identity")
    for (const auto v : c.variants)
      if (keys_are_values(v))
        fail("model.value_proj", "'identity' is not available for " + variant_name(v) + " (its keys are its values: it needs W_value)");
  if (m.dtype != "float32" && m.dtype != "float64")
    fail("model.dtype", "expected 'float32' or 'float64', got '" + m.dtype + "'");
  const auto& d = c.data;
  if (!is_language_kind(d.kind) && !is_task_kind(d.kind)) {
    std::string known = "text, tokens";
    for (const auto& k : task_kinds()) known += ", " + k;
    fail("data.kind", "expected one of " + known + ", got '" + d.kind + "'");
  }
  if (d.kind == "tokens") {
    if (d.path.empty() && need_data) fail("data.path", "token data needs a folder with train.bin and val.bin (qklab-cli prepare)");
    if (d.max_length < 0) fail("data.max_length", "must be >= 0 (0 = model.context_length)");
    if (d.max_length > m.context_length)
      fail("data.max_length", "must not exceed model.context_length");
  } else if (d.kind == "text") {
    if (d.path.empty() && need_data) fail("data.path", "a text corpus needs a file path");
    try {
      parse_tokenizer_spec(d.tokenizer, "data.tokenizer");
    } catch (const Error&) {
      fail("data.tokenizer", "expected 'char', 'gpt2' or 'bpe:FILE', got '" + d.tokenizer + "'");
    }
    if (d.char_unknown != "unk" && d.char_unknown != "error")
      fail("data.char_unknown", "expected 'unk' or 'error', got '" + d.char_unknown + "'");
    if (d.max_length < 0) fail("data.max_length", "must be >= 0 (0 = model.context_length)");
    if (d.max_length > m.context_length)
      fail("data.max_length", "must not exceed model.context_length");
    if (d.stride < 0) fail("data.stride", "must be >= 0 (0 = max_length)");
    if (d.train_ratio <= 0 || d.train_ratio >= 1) fail("data.train_ratio", "must be in (0, 1)");
  } else {
    if (d.val_sequences <= 0) fail("data.val_sequences", "must be a positive integer");
    TaskShape shape;
    try {
      shape = task_shape(d);
    } catch (const Error& e) {
      std::string msg = e.what();
      throw Error(source + msg.substr(msg.find(':')));
    }
    if (shape.seq_len > m.context_length)
      fail("model.context_length", "must be >= " + std::to_string(shape.seq_len) + ", the " +
                                       d.kind + " task's sequence length");
    if (d.train_sequences < 0) fail("data.train_sequences", "must be >= 0 (0 = an endless stream)");
    if (d.train_sequences > 100000000) fail("data.train_sequences", "must be at most 100000000");
    if (d.train_sequences == 0 && c.train.epochs > 0)
      fail("train.epochs", "synthetic tasks are an endless stream unless data.train_sequences fixes the training set; use train.steps");
  }
  if (!m.causal && !is_tokenwise_task(d.kind))
    fail("model.causal", "false (an encoder: every position sees every other) needs a token-wise task (enc-copy, "
                         "enc-reverse, enc-sort, enc-sub, enc-swap): predicting the next token of '" + d.kind +
                         "' would see the token it predicts");
  const auto& t = c.train;
  if (t.batch_size <= 0) fail("train.batch_size", "must be a positive integer");
  if (t.batch_size > 1 << 20) fail("train.batch_size", "must be at most 1048576");
  if (t.steps > 1000000000) fail("train.steps", "must be at most 1000000000");
  if (t.epochs > 1000000) fail("train.epochs", "must be at most 1000000");
  if (t.eval_batches > 1000000) fail("train.eval_batches", "must be at most 1000000");
  if (t.seeds > 1000) fail("train.seeds", "must be at most 1000");
  if (!std::isfinite(t.lr) || !std::isfinite(t.weight_decay) || !std::isfinite(t.min_lr) || !std::isfinite(t.grad_clip) ||
      !std::isfinite(t.autosave_minutes))
    fail("train", "numbers must be finite");
  if (t.steps <= 0 && t.epochs <= 0) fail("train.steps", "must be positive (or set train.epochs)");
  if (t.epochs < 0) fail("train.epochs", "must be >= 0");
  if (t.lr <= 0) fail("train.lr", "must be positive");
  if (t.beta1 < 0 || t.beta1 >= 1) fail("train.beta1", "must be in [0, 1)");
  if (t.beta2 < 0 || t.beta2 >= 1) fail("train.beta2", "must be in [0, 1)");
  if (t.eps <= 0) fail("train.eps", "must be positive");
  if (t.weight_decay < 0) fail("train.weight_decay", "must be >= 0");
  if (t.warmup_steps < 0) fail("train.warmup_steps", "must be >= 0");
  if (t.grad_clip < 0) fail("train.grad_clip", "must be >= 0 (0 = off)");
  if (t.eval_every <= 0) fail("train.eval_every", "must be a positive integer");
  if (t.eval_batches <= 0) fail("train.eval_batches", "must be a positive integer");
  if (t.mode != "fair" && t.mode != "book")
    fail("train.mode", "expected 'fair' or 'book', got '" + t.mode + "'");
  if (t.seeds <= 0) fail("train.seeds", "must be a positive integer");
  if (t.precision != "float32" && t.precision != "bf16")
    fail("train.precision", "expected 'float32' or 'bf16', got '" + t.precision + "'");
  if (t.precision == "bf16" && t.mode != "fair")
    fail("train.precision", "bf16 needs train.mode 'fair' (book mode reproduces the book's float32 ops)");
  if (t.precision == "bf16" && c.model.dtype != "float32")
    fail("train.precision", "bf16 needs model.dtype 'float32' (the weights it rounds from)");
  if (t.spectra_every < 0) fail("train.spectra_every", "must be >= 0 (0 = off)");
  if (t.autosave_steps < 0) fail("train.autosave_steps", "must be >= 0 (0 = off)");
  if (!(t.autosave_minutes >= 0)) fail("train.autosave_minutes", "must be >= 0 (0 = off)");
  if (t.twin_start) {
    if (c.variants.empty() || c.variants[0] != Variant::Standard)
      fail("train.twin_start", "needs 'standard' as the first variant (the merged ones start from it)");
    if (t.mode != "fair") fail("train.twin_start", "needs train.mode 'fair'");
    for (const auto v : c.variants)
      if (!has_out_proj(v))
        fail("train.twin_start", variant_name(v) + " has no out_proj: it cannot start as the standard model's exact conversion");
  }
  if (t.threads < 0) fail("train.threads", "must be a positive integer, or 0 for automatic");
  if (t.blas_threads < 0) fail("train.blas_threads", "must be a positive integer, or 0 for automatic");
  if (t.device != "cpu" && t.device != "cuda")
    fail("train.device", "expected 'cpu' or 'cuda', got '" + t.device + "'");
  if (c.variants.empty()) fail("variants", "must name at least one variant");
}

std::vector<std::pair<std::string, std::string>> config_keys(const ExperimentConfig& c) {
  std::vector<std::pair<std::string, std::string>> out;
  KeyLister lm{"model.", out}, ld{"data.", out}, lt{"train.", out};
  ExperimentConfig copy = c;
  copy.model.visit(lm);
  copy.data.visit(ld);
  copy.train.visit(lt);
  return out;
}

namespace {

// A positive thread count from the environment variable `name`, or 0 when it is unset or not one.
int env_threads(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v) return 0;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  return (*end == '\0' && n > 0 && n < 4096) ? static_cast<int>(n) : 0;
}

}  // namespace

std::pair<int, int> resolved_threads(const TrainConfig& t) {
  const bool book = t.mode == "book";
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  // OMP_NUM_THREADS / OPENBLAS_NUM_THREADS, when set, cap the automatic values (the convention that
  // ctest -j, make -j and job schedulers rely on): several trainings that each take every core spin
  // against each other in OpenMP's barriers, up to 18x slower than one thread each (docs/speed.md).
  const int omp = env_threads("OMP_NUM_THREADS");
  const int blas_env = env_threads("OPENBLAS_NUM_THREADS") ? env_threads("OPENBLAS_NUM_THREADS") : omp;
  auto cap = [](int value, int limit) { return limit > 0 ? std::min(value, limit) : value; };
  const int torch_threads = t.threads > 0 ? t.threads : cap(book ? 1 : std::min(cores, 16), omp);
  const int blas_threads = t.blas_threads > 0 ? t.blas_threads : cap(book ? 2 : 1, blas_env);
  return {torch_threads, blas_threads};
}

}  // namespace qk
