// QKLab engine — safetensors I/O: 8-byte little-endian header length, JSON header
// {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}}, then raw little-endian data.
// Readable by Python's `safetensors` and by the reference scripts in tests/reference.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "format.h"  // escape_name

namespace qk {

struct TensorFile {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // written in this order
  std::map<std::string, std::string> metadata;
  const torch::Tensor* find(const std::string& name) const;
};

// Atomic; the metadata gets qklab.crc32, the CRC-32 of the whole file with those 8 digits as zeros.
void save_safetensors(const std::string& path, const TensorFile& f);
constexpr const char* kChecksumKey = "qklab.crc32";
// Validates before it trusts: header length <= 100 MB and inside the file, UTF-8 JSON object,
// known dtype, non-negative shape whose size x dtype equals the byte range, ranges inside the
// data and not overlapping. The file is memory-mapped, not read whole. Errors name the file and the
// field; names are shown escaped (escape_name), never as raw bytes. A file that records qklab.crc32
// is verified against it (then the key is dropped from the metadata returned).
TensorFile load_safetensors(const std::string& path);
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

}  // namespace qk
