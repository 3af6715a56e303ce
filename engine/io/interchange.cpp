// QKLab engine — Hugging Face GPT-2 and the book's .pth (see interchange.h).
#include "interchange.h"

#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/csrc/api/include/torch/serialize.h>

#include "config.h"
#include "error.h"
#include "fsutil.h"
#include "gpt2_tokenizer.h"
#include "pth_reader.h"
#include "safetensors.h"
#include "tokenizer_factory.h"

namespace qk {
namespace fs = std::filesystem;

namespace {

std::string shape_str(const torch::Tensor& t) {
  std::ostringstream ss;
  ss << t.sizes();
  return ss.str();
}

// One tensor of the Hugging Face file, with its name checked off.
struct HfFile {
  std::string path, prefix;
  std::map<std::string, torch::Tensor> t;
  std::set<std::string> used;
  const torch::Tensor& get(const std::string& name, std::vector<int64_t> shape) {
    auto it = t.find(prefix + name);
    if (it == t.end()) throw Error(path + ": missing tensor '" + prefix + name + "'");
    if (it->second.sizes() != torch::IntArrayRef(shape))
      throw Error(path + ": tensor '" + prefix + name + "' has shape " + shape_str(it->second) + ", expected " +
                  shape_str(torch::empty(shape)));
    used.insert(it->first);
    return it->second;
  }
};

int positive_int(const nlohmann::json& j, const std::string& key, const std::string& src, int fallback = -1) {
  if (!j.contains(key) || j[key].is_null()) {
    if (fallback >= 0) return fallback;
    throw Error(src + ": missing '" + key + "'");
  }
  if (!j[key].is_number_integer() || j[key].get<int64_t>() <= 0)
    throw Error(src + ": " + key + ": expected a positive integer, got " + j[key].dump());
  return j[key].get<int>();
}

// The GPT-2 tokenizer of a Hugging Face folder, as a checkpoint's tokenizer JSON ("" if absent).
std::string folder_tokenizer(const std::string& dir) {
  const std::string vocab = dir + "/vocab.json", merges = dir + "/merges.txt";
  if (!fs::exists(vocab) || !fs::exists(merges)) return "";
  Gpt2Tokenizer tok(fs::absolute(vocab).string(), fs::absolute(merges).string());  // validates both files
  return tok.to_json().dump();
}

}  // namespace

namespace {
LoadedModel import_hf_gpt2_checked(const std::string& file);
}

LoadedModel import_hf_gpt2(const std::string& file) {
  try {
    return import_hf_gpt2_checked(file);
  } catch (const nlohmann::json::exception& e) {  // config.json fields of the wrong type
    throw Error(file + ": config.json beside it has unexpected content: " + std::string(e.what()));
  }
}

namespace {
LoadedModel import_hf_gpt2_checked(const std::string& file) {
  const std::string dir = fs::path(file).parent_path().empty() ? "." : fs::path(file).parent_path().string();
  const std::string cj = dir + "/config.json";
  if (!fs::exists(cj)) throw Error(file + ": no config.json beside it (n_embd, n_head, n_layer, n_positions, vocab_size)");
  const nlohmann::json c = parse_json(read_file_bytes(cj, "config file"), cj);
  if (!c.is_object()) throw Error(cj + ": expected a JSON object");
  LoadedModel lm;
  ExperimentConfig& cfg = lm.config;
  cfg.name = "hf-gpt2:" + fs::path(dir).filename().string();
  cfg.variants = {Variant::Standard};
  ModelConfig& m = cfg.model;
  m.emb_dim = positive_int(c, "n_embd", cj);
  m.n_heads = positive_int(c, "n_head", cj);
  m.n_layers = positive_int(c, "n_layer", cj);
  m.context_length = positive_int(c, "n_positions", cj, c.contains("n_ctx") ? positive_int(c, "n_ctx", cj) : -1);
  m.vocab_size = positive_int(c, "vocab_size", cj);
  m.qkv_bias = true;
  m.qk_head_dim = 0;
  m.drop_rate = 0.0;
  if (c.contains("layer_norm_epsilon") && !c["layer_norm_epsilon"].is_number())
    throw Error(cj + ": layer_norm_epsilon: expected a number, got " + escape_name(c["layer_norm_epsilon"].dump()));
  const double eps = c.value("layer_norm_epsilon", 1e-5);
  if (std::abs(eps - 1e-5) > 1e-12)
    throw Error(cj + ": layer_norm_epsilon " + std::to_string(eps) + ": QKLab's LayerNorm (the book's) uses 1e-5");
  const std::string act = json_string(c, "activation_function", cj, "gelu_new");
  if (act != "gelu_new")
    throw Error(cj + ": activation_function '" + act + "': QKLab's GPT uses GPT-2's tanh GELU ('gelu_new')");
  if (c.contains("n_inner") && !c["n_inner"].is_null() && c["n_inner"] != 4 * m.emb_dim)
    throw Error(cj + ": n_inner " + c["n_inner"].dump() + ": QKLab's feed-forward is 4·n_embd wide");
  if (m.emb_dim % m.n_heads != 0) throw Error(cj + ": n_embd must be divisible by n_head");
  cfg.data.kind = "text";
  cfg.data.tokenizer = "gpt2";
  cfg.data.max_length = m.context_length;
  validate_config(cfg, cj, /*need_data=*/false);

  HfFile f{file, "", {}, {}};
  {
    TensorFile tf = load_safetensors(file);
    for (auto& [n, t] : tf.tensors) f.t[n] = t;
  }
  if (!f.t.count("wte.weight") && f.t.count("transformer.wte.weight")) f.prefix = "transformer.";
  const int64_t d = m.emb_dim, V = m.vocab_size, P = m.context_length;
  std::map<std::string, torch::Tensor> w;
  auto lin = [](const torch::Tensor& conv1d) { return conv1d.t().contiguous(); };  // (in, out) -> (out, in)
  w["tok_emb.weight"] = f.get("wte.weight", {V, d});
  w["pos_emb.weight"] = f.get("wpe.weight", {P, d});
  for (int i = 0; i < m.n_layers; ++i) {
    const std::string h = "h." + std::to_string(i) + ".", b = "trf_blocks." + std::to_string(i) + ".";
    auto qkv_w = f.get(h + "attn.c_attn.weight", {d, 3 * d});
    auto qkv_b = f.get(h + "attn.c_attn.bias", {3 * d});
    const char* names[3] = {"W_query", "W_key", "W_value"};
    for (int k = 0; k < 3; ++k) {
      w[b + "att." + names[k] + ".weight"] = lin(qkv_w.slice(1, k * d, (k + 1) * d));
      w[b + "att." + names[k] + ".bias"] = qkv_b.slice(0, k * d, (k + 1) * d).contiguous();
    }
    w[b + "att.out_proj.weight"] = lin(f.get(h + "attn.c_proj.weight", {d, d}));
    w[b + "att.out_proj.bias"] = f.get(h + "attn.c_proj.bias", {d});
    w[b + "ff.layers.0.weight"] = lin(f.get(h + "mlp.c_fc.weight", {d, 4 * d}));
    w[b + "ff.layers.0.bias"] = f.get(h + "mlp.c_fc.bias", {4 * d});
    w[b + "ff.layers.2.weight"] = lin(f.get(h + "mlp.c_proj.weight", {4 * d, d}));
    w[b + "ff.layers.2.bias"] = f.get(h + "mlp.c_proj.bias", {d});
    w[b + "norm1.scale"] = f.get(h + "ln_1.weight", {d});
    w[b + "norm1.shift"] = f.get(h + "ln_1.bias", {d});
    w[b + "norm2.scale"] = f.get(h + "ln_2.weight", {d});
    w[b + "norm2.shift"] = f.get(h + "ln_2.bias", {d});
    for (const char* buf : {"attn.bias", "attn.masked_bias"})  // causal-mask buffers of older files
      if (f.t.count(f.prefix + h + buf)) f.used.insert(f.prefix + h + buf);
  }
  w["final_norm.scale"] = f.get("ln_f.weight", {d});
  w["final_norm.shift"] = f.get("ln_f.bias", {d});
  // The output head is tied to wte in GPT-2; a file with its own lm_head.weight is untied.
  if (f.t.count("lm_head.weight")) w["out_head.weight"] = f.get("lm_head.weight", {V, d}).clone();
  else w["out_head.weight"] = w["tok_emb.weight"].clone();
  f.prefix.clear();
  std::vector<std::string> unknown;
  for (const auto& [n, t] : f.t)
    if (!f.used.count(n)) unknown.push_back(n);
  if (!unknown.empty()) {
    std::string list;
    for (size_t i = 0; i < unknown.size() && i < 8; ++i) list += (i ? ", " : "") + escape_name(unknown[i]);
    throw Error(file + ": unknown tensor" + (unknown.size() > 1 ? "s " : " ") + list +
                (unknown.size() > 8 ? " and " + std::to_string(unknown.size() - 8) + " more" : "") +
                " (expected GPT-2's wte, wpe, h.{i}.*, ln_f; a config.json with n_layer=" + std::to_string(m.n_layers) + ")");
  }
  if (w["tok_emb.weight"].scalar_type() == torch::kFloat64) m.dtype = "float64";
  lm.variant = Variant::Standard;
  lm.model = GPTModel(Variant::Standard, m);
  load_weights(lm.model, w, file);
  lm.tokenizer_json = folder_tokenizer(dir);
  if (!lm.tokenizer_json.empty() && V < kGpt2VocabSize)
    throw Error(dir + "/vocab.json: the GPT-2 tokenizer has " + std::to_string(kGpt2VocabSize) +
                " tokens, the model's vocab_size is " + std::to_string(V));
  return lm;
}
}  // namespace

LoadedModel import_pth(const std::string& file, const ExperimentConfig& base, bool heads_given) {
  std::map<std::string, torch::Tensor> w = read_torch_state_dict(file);
  auto need = [&](const std::string& n) -> const torch::Tensor& {
    auto it = w.find(n);
    if (it == w.end()) throw Error(file + ": missing tensor '" + n + "' (expected the book's GPTModel.state_dict())");
    return it->second;
  };
  LoadedModel lm;
  lm.config = base;
  ModelConfig& m = lm.config.model;
  const auto& emb = need("tok_emb.weight");
  if (emb.dim() != 2) throw Error(file + ": tok_emb.weight has shape " + shape_str(emb) + ", expected (vocab, d)");
  m.vocab_size = static_cast<int>(emb.size(0));
  m.emb_dim = static_cast<int>(emb.size(1));
  m.context_length = static_cast<int>(need("pos_emb.weight").size(0));
  int layers = 0;
  while (w.count("trf_blocks." + std::to_string(layers) + ".norm1.scale")) ++layers;
  if (layers == 0) throw Error(file + ": missing tensor 'trf_blocks.0.norm1.scale' (no transformer blocks)");
  m.n_layers = layers;
  const bool merged = w.count("trf_blocks.0.att.S") > 0;
  const bool seed = w.count("trf_blocks.0.att.heads.0.S.weight") > 0;  // the seed's MHA_alt1 (merged-seed)
  lm.variant = seed ? Variant::MergedSeed : merged ? Variant::Merged : Variant::Standard;
  m.qkv_bias = w.count("trf_blocks.0.att.W_value.bias") > 0 || w.count("trf_blocks.0.att.heads.0.S.bias") > 0;
  if (seed) {
    int heads = 0;  // one module per head: the state_dict records their number
    while (w.count("trf_blocks.0.att.heads." + std::to_string(heads) + ".S.weight")) ++heads;
    m.n_heads = heads;
  } else if (merged) {
    m.n_heads = static_cast<int>(w["trf_blocks.0.att.S"].size(0));
  } else {
    if (!heads_given)
      throw Error(file + ": a standard state_dict does not record its number of heads; pass --set model.n_heads=H "
                  "(the book's GPT-2 124M: 12)");
    m.qk_head_dim = static_cast<int>(need("trf_blocks.0.att.W_query.weight").size(0)) / m.n_heads;
  }
  if (emb.scalar_type() == torch::kFloat64) m.dtype = "float64";
  lm.config.variants = {lm.variant};
  if (lm.config.name == "default") lm.config.name = "pth:" + fs::path(file).stem().string();
  validate_config(lm.config, file, /*need_data=*/false);
  lm.model = GPTModel(lm.variant, m);
  std::map<std::string, torch::Tensor> params;
  auto buffers = lm.model->named_buffers();
  for (auto& [n, t] : w)
    if (!buffers.contains(n)) params[n] = t;  // the causal masks are rebuilt, not read
  load_weights(lm.model, params, file);
  return lm;
}

void export_hf_gpt2(const LoadedModel& lm, const std::string& out_dir) {
  const ModelConfig& m = lm.config.model;
  if (lm.variant != Variant::Standard)
    throw Error("export --to hf-gpt2: GPT-2 has separate W_Q and W_K; this model is " + variant_name(lm.variant) +
                " (convert --to standard first)");
  if (m.effective_qk_head_dim() != m.head_dim())
    throw Error("export --to hf-gpt2: GPT-2 needs qk_head_dim = d/H = " + std::to_string(m.head_dim()) + ", this model has " +
                std::to_string(m.effective_qk_head_dim()));
  if (m.value_proj != "linear")
    throw Error("export --to hf-gpt2: GPT-2 has a value projection; this model has model.value_proj '" + m.value_proj + "'");
  const int64_t d = m.emb_dim;
  auto p = lm.model->named_parameters();
  auto get = [&](const std::string& n) { return p[n].detach().contiguous(); };
  auto bias = [&](const std::string& n) {  // GPT-2 always has q/k/v biases: zeros for a model without
    return p.contains(n) ? get(n) : torch::zeros({d}, p["tok_emb.weight"].options());
  };
  auto conv = [](const torch::Tensor& linear) { return linear.t().contiguous(); };  // (out, in) -> (in, out)
  TensorFile f;
  f.tensors.emplace_back("wte.weight", get("tok_emb.weight"));
  f.tensors.emplace_back("wpe.weight", get("pos_emb.weight"));
  for (int i = 0; i < m.n_layers; ++i) {
    const std::string h = "h." + std::to_string(i) + ".", b = "trf_blocks." + std::to_string(i) + ".";
    f.tensors.emplace_back(h + "ln_1.weight", get(b + "norm1.scale"));
    f.tensors.emplace_back(h + "ln_1.bias", get(b + "norm1.shift"));
    f.tensors.emplace_back(h + "attn.c_attn.weight",
                           torch::cat({conv(get(b + "att.W_query.weight")), conv(get(b + "att.W_key.weight")),
                                       conv(get(b + "att.W_value.weight"))}, 1));
    f.tensors.emplace_back(h + "attn.c_attn.bias", torch::cat({bias(b + "att.W_query.bias"), bias(b + "att.W_key.bias"),
                                                               bias(b + "att.W_value.bias")}));
    f.tensors.emplace_back(h + "attn.c_proj.weight", conv(get(b + "att.out_proj.weight")));
    f.tensors.emplace_back(h + "attn.c_proj.bias", get(b + "att.out_proj.bias"));
    f.tensors.emplace_back(h + "ln_2.weight", get(b + "norm2.scale"));
    f.tensors.emplace_back(h + "ln_2.bias", get(b + "norm2.shift"));
    f.tensors.emplace_back(h + "mlp.c_fc.weight", conv(get(b + "ff.layers.0.weight")));
    f.tensors.emplace_back(h + "mlp.c_fc.bias", get(b + "ff.layers.0.bias"));
    f.tensors.emplace_back(h + "mlp.c_proj.weight", conv(get(b + "ff.layers.2.weight")));
    f.tensors.emplace_back(h + "mlp.c_proj.bias", get(b + "ff.layers.2.bias"));
  }
  f.tensors.emplace_back("ln_f.weight", get("final_norm.scale"));
  f.tensors.emplace_back("ln_f.bias", get("final_norm.shift"));
  // The book's head is untied; GPT-2's is tied to wte. Untied weights go out as lm_head.weight with
  // tie_word_embeddings = false, so transformers uses them.
  const bool tied = torch::equal(get("out_head.weight"), get("tok_emb.weight"));
  if (!tied) f.tensors.emplace_back("lm_head.weight", get("out_head.weight"));
  f.metadata["format"] = "pt";
  make_dirs(out_dir);
  save_safetensors(out_dir + "/model.safetensors", f);
  nlohmann::json c = {{"model_type", "gpt2"},
                      {"architectures", {"GPT2LMHeadModel"}},
                      {"n_embd", m.emb_dim},
                      {"n_head", m.n_heads},
                      {"n_layer", m.n_layers},
                      {"n_positions", m.context_length},
                      {"n_ctx", m.context_length},
                      {"vocab_size", m.vocab_size},
                      {"layer_norm_epsilon", 1e-5},
                      {"activation_function", "gelu_new"},
                      {"n_inner", nullptr},
                      {"resid_pdrop", m.drop_rate},
                      {"embd_pdrop", m.drop_rate},
                      {"attn_pdrop", m.drop_rate},
                      {"tie_word_embeddings", tied},
                      {"bos_token_id", 50256},
                      {"eos_token_id", 50256},
                      {"torch_dtype", m.dtype == "float64" ? "float64" : "float32"}};
  write_file_atomic(out_dir + "/config.json", c.dump(2) + "\n");
  if (!lm.tokenizer_json.empty()) {
    auto tj = parse_json(lm.tokenizer_json, "the checkpoint's qklab.tokenizer");
    const std::string src = "the checkpoint's qklab.tokenizer";
    if (json_string(tj, "kind", src) == "gpt2") {
      write_file_atomic(out_dir + "/vocab.json", read_file_bytes(json_string(tj, "encoder", src), "GPT-2 encoder file"));
      write_file_atomic(out_dir + "/merges.txt", read_file_bytes(json_string(tj, "vocab", src), "GPT-2 merges file"));
    }
  }
}

void export_pth(const LoadedModel& lm, const std::string& out_file) {
  c10::impl::GenericDict dict(c10::StringType::get(), c10::TensorType::get());
  for (const auto& p : lm.model->named_parameters()) dict.insert(p.key(), p.value().detach().contiguous());
  for (const auto& b : lm.model->named_buffers()) dict.insert(b.key(), b.value().detach().contiguous());
  const std::vector<char> bytes = torch::pickle_save(torch::IValue(dict));
  write_file_atomic(out_file, std::string(bytes.begin(), bytes.end()));
}

}  // namespace qk
