// QKLab engine — models in and out of other tools' formats.
//   hf-gpt2: a Hugging Face GPT-2-family folder: model.safetensors (names wte, wpe, h.{i}.ln_1,
//            h.{i}.attn.c_attn (Conv1D layout (in, 3·out)), h.{i}.attn.c_proj, h.{i}.ln_2,
//            h.{i}.mlp.c_fc, h.{i}.mlp.c_proj, ln_f; optional "transformer." prefix; lm_head.weight
//            only when untied) with config.json beside it, and vocab.json + merges.txt (the GPT-2
//            tokenizer) when present. The book's alternative loader (ch05/02) maps it the same way.
//   pth:     the book's own `torch.save(model.state_dict(), "model.pth")` (zip + pickle), read and
//            written with LibTorch's pickler: the state_dict names are QKLab's (the book's).
// Imports give the standard variant (qkv_bias = true for GPT-2); a merged model exports to pth only.
#pragma once
#include <string>
#include <vector>

#include "checkpoint.h"

namespace qk {

// `file`: model.safetensors (config.json beside it). Errors name the file and the tensor (missing,
// unknown, or a shape that does not fit, with both shapes).
LoadedModel import_hf_gpt2(const std::string& file);
// `base` supplies what a state_dict does not record (model.n_heads, drop_rate, the data section);
// the rest (vocab, d, context, layers, qkv_bias, variant) is read off the tensors.
// `heads_given`: whether the user set model.n_heads (a standard .pth cannot tell).
LoadedModel import_pth(const std::string& file, const ExperimentConfig& base, bool heads_given);
// Writes out_dir/model.safetensors, config.json (and vocab.json + merges.txt for a GPT-2 tokenizer).
void export_hf_gpt2(const LoadedModel& m, const std::string& out_dir);
void export_pth(const LoadedModel& m, const std::string& out_file);

}  // namespace qk
