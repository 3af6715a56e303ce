// QKLab engine — safetensors reader/writer.
#include "safetensors.h"

#include <cstring>

#include <nlohmann/json.hpp>

#include "error.h"
#include "fsutil.h"

namespace qk {
namespace {

struct DtypeName { torch::Dtype dtype; const char* name; };
const DtypeName kDtypes[] = {{torch::kFloat32, "F32"}, {torch::kFloat64, "F64"},
                             {torch::kFloat16, "F16"}, {torch::kBFloat16, "BF16"},
                             {torch::kInt64, "I64"},   {torch::kInt32, "I32"},
                             {torch::kInt16, "I16"},   {torch::kInt8, "I8"},
                             {torch::kUInt8, "U8"},    {torch::kBool, "BOOL"}};

const char* dtype_to_name(torch::Dtype d) {
  for (auto& e : kDtypes) if (e.dtype == d) return e.name;
  throw Error("safetensors: unsupported dtype " + std::string(c10::toString(d)));
}

}  // namespace

const torch::Tensor* TensorFile::find(const std::string& name) const {
  for (auto& [n, t] : tensors) if (n == name) return &t;
  return nullptr;
}

void save_safetensors(const std::string& path, const TensorFile& f) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<torch::Tensor> blobs;
  size_t offset = 0;
  for (const auto& [name, t] : f.tensors) {
    auto c = t.detach().to(torch::kCPU).contiguous();
    const size_t bytes = c.numel() * c.element_size();
    header[name] = {{"dtype", dtype_to_name(c.scalar_type())},
                    {"shape", c.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    blobs.push_back(c);
  }
  if (!f.metadata.empty()) header["__metadata__"] = f.metadata;
  std::string hs = header.dump();
  while ((8 + hs.size()) % 8 != 0) hs += ' ';
  std::string out(8, '\0');
  uint64_t n = hs.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);  // little endian
  out += hs;
  out.reserve(out.size() + offset);
  for (auto& c : blobs) out.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  write_file_atomic(path, out);
}

TensorFile load_safetensors(const std::string& path) {
  const std::string data = read_file_bytes(path, "safetensors file");
  auto bad = [&](const std::string& what) { return Error(path + ": not a valid safetensors file: " + what); };
  if (data.size() < 8) throw bad("shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(data[i])) << (8 * i);
  if (n > data.size() - 8) throw bad("header length " + std::to_string(n) + " exceeds the file size");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(data.substr(8, n));
  } catch (const nlohmann::json::parse_error& e) {
    throw bad(std::string("malformed JSON header: ") + e.what());
  }
  if (!header.is_object()) throw bad("header is not a JSON object");
  const size_t base = 8 + n, avail = data.size() - base;
  TensorFile f;
  for (auto it = header.begin(); it != header.end(); ++it) {
    if (it.key() == "__metadata__") {
      if (!it->is_object()) throw bad("__metadata__ must be an object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) throw bad("__metadata__." + m.key() + " must be a string");
        f.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const auto& e = *it;
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      throw bad("tensor '" + it.key() + "' needs dtype, shape and data_offsets");
    std::string dt = e["dtype"].get<std::string>();
    torch::Dtype dtype{};
    bool found = false;
    for (auto& d : kDtypes) if (dt == d.name) { dtype = d.dtype; found = true; }
    if (!found) throw bad("tensor '" + it.key() + "': unsupported dtype " + dt);
    std::vector<int64_t> shape = e["shape"].get<std::vector<int64_t>>();
    auto offs = e["data_offsets"].get<std::vector<uint64_t>>();
    if (offs.size() != 2 || offs[0] > offs[1] || offs[1] > avail)
      throw bad("tensor '" + it.key() + "': data_offsets out of range");
    auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    const size_t bytes = t.numel() * t.element_size();
    if (bytes != offs[1] - offs[0])
      throw bad("tensor '" + it.key() + "': shape and dtype need " + std::to_string(bytes) +
                " bytes, data_offsets give " + std::to_string(offs[1] - offs[0]));
    std::memcpy(t.data_ptr(), data.data() + base + offs[0], bytes);
    f.tensors.emplace_back(it.key(), t);
  }
  return f;
}

}  // namespace qk
