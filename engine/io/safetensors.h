// QKLab engine — safetensors I/O: 8-byte little-endian header length, JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then raw little-endian data.
// Readable by Python's `safetensors` and by the reference scripts in tests/reference.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace qk {

struct TensorFile {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // written in this order
  std::map<std::string, std::string> metadata;
  const torch::Tensor* find(const std::string& name) const;
};

void save_safetensors(const std::string& path, const TensorFile& f);  // atomic
TensorFile load_safetensors(const std::string& path);  // throws qk::Error naming file and field

}  // namespace qk
