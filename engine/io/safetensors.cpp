// QKLab engine — safetensors reader/writer.
#include "safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
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
  // The file's CRC-32 (its own 8 digits taken as zeros) in the metadata: any flipped or lost byte
  // is found when it is read (load_safetensors).
  auto meta = f.metadata;
  meta[kChecksumKey] = "00000000";
  header["__metadata__"] = meta;
  std::string hs = header.dump();
  while ((8 + hs.size()) % 8 != 0) hs += ' ';
  std::string out(8, '\0');
  uint64_t n = hs.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);  // little endian
  out += hs;
  out.reserve(out.size() + offset);
  for (auto& c : blobs) out.append(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
  const size_t at = 8 + hs.find("\"" + std::string(kChecksumKey) + "\":\"") + std::strlen(kChecksumKey) + 4;
  const std::string crc = crc32_hex(crc32_of(out.data(), out.size()));
  out.replace(at, 8, crc);
  write_file_atomic(path, out);
}

namespace {

// Length of the valid UTF-8 sequence at s[i] (1-4), or 0 if the bytes there are not one.
size_t utf8_len_at(const std::string& s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t len = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  return len;
}

// A read-only memory map of a whole file (large checkpoints are not read into memory twice).
class MappedFile {
 public:
  explicit MappedFile(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDONLY);
    if (fd_ < 0) throw Error(path + ": cannot open safetensors file (missing or unreadable)");
    struct stat st {};
    if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd_);
      throw Error(path + ": not a regular file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0) {
      void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
      if (p == MAP_FAILED) {
        ::close(fd_);
        throw Error(path + ": cannot map the file into memory");
      }
      data_ = static_cast<const char*>(p);
    }
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<char*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  const char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  int fd_ = -1;
  const char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace

TensorFile load_safetensors(const std::string& path) {
  MappedFile map(path);
  auto bad = [&](const std::string& what) { return Error(path + ": not a valid safetensors file: " + what); };
  if (map.size() < 8) throw bad("shorter than the 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(map.data()[i])) << (8 * i);
  if (n > kMaxHeaderBytes) throw bad("header length " + std::to_string(n) + " exceeds the limit of 100 MB");
  if (n > map.size() - 8) throw bad("header length " + std::to_string(n) + " exceeds the file size");
  const std::string hs(map.data() + 8, n);
  for (size_t i = 0; i < hs.size();) {  // the header must be UTF-8: name the offset, never the bytes
    const size_t len = utf8_len_at(hs, i);
    if (len == 0) throw bad("the JSON header is not valid UTF-8 (byte " + std::to_string(8 + i) + " of the file)");
    i += len;
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(hs);
  } catch (const nlohmann::json::parse_error& e) {
    throw bad("malformed JSON header (at header byte " + std::to_string(e.byte) + ")");
  } catch (const nlohmann::json::exception&) {  // e.g. a number too large for any type
    throw bad("malformed JSON header (a number out of range)");
  }
  if (!header.is_object()) throw bad("header is not a JSON object");
  // The checksum QKLab wrote (files from elsewhere have none): over the file with its digits as zeros.
  if (header.contains("__metadata__") && header["__metadata__"].is_object() &&
      header["__metadata__"].contains(kChecksumKey) && header["__metadata__"][kChecksumKey].is_string()) {
    const std::string want = header["__metadata__"][kChecksumKey].get<std::string>();
    const size_t key = hs.find("\"" + std::string(kChecksumKey) + "\":\"");
    if (want.size() != 8 || key == std::string::npos) throw bad(std::string(kChecksumKey) + ": expected 8 hex digits");
    const size_t at = 8 + key + std::strlen(kChecksumKey) + 4;
    uint32_t crc = crc32_of(map.data(), at);
    crc = crc32_of("00000000", 8, crc);
    crc = crc32_of(map.data() + at + 8, map.size() - at - 8, crc);
    if (crc32_hex(crc) != want)
      throw Error(path + ": checksum " + crc32_hex(crc) + ", the file recorded " + escape_name(want) +
                  " when it was written: it was damaged or cut short since");
    header["__metadata__"].erase(kChecksumKey);
  }
  const size_t base = 8 + n, avail = map.size() - base;
  TensorFile f;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  std::vector<std::string> range_names;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string name = escape_name(it.key());
    if (it.key() == "__metadata__") {
      if (!it->is_object()) throw bad("__metadata__ must be an object of strings");
      for (auto m = it->begin(); m != it->end(); ++m) {
        if (!m->is_string()) throw bad("__metadata__." + escape_name(m.key()) + " must be a string");
        f.metadata[m.key()] = m->get<std::string>();
      }
      continue;
    }
    const auto& e = *it;
    if (!e.is_object() || !e.contains("dtype") || !e.contains("shape") || !e.contains("data_offsets"))
      throw bad("tensor '" + name + "' needs dtype, shape and data_offsets");
    if (!e["dtype"].is_string()) throw bad("tensor '" + name + "': dtype must be a string");
    const std::string dt = e["dtype"].get<std::string>();
    torch::Dtype dtype{};
    bool found = false;
    for (auto& d : kDtypes)
      if (dt == d.name) {
        dtype = d.dtype;
        found = true;
      }
    if (!found)
      throw bad("tensor '" + name + "': unsupported dtype '" + escape_name(dt) +
                "' (F32, F64, F16, BF16, I64, I32, I16, I8, U8, BOOL)");
    if (!e["shape"].is_array()) throw bad("tensor '" + name + "': shape must be a list of sizes");
    std::vector<int64_t> shape;
    uint64_t count = 1;
    for (const auto& s : e["shape"]) {
      if (!s.is_number_unsigned()) throw bad("tensor '" + name + "': shape must hold non-negative integers, got " + e["shape"].dump());
      const uint64_t k = s.get<uint64_t>();
      if (k > (uint64_t{1} << 40) || (k != 0 && count > (uint64_t{1} << 50) / k)) throw bad("tensor '" + name + "': shape too large");
      count *= k;
      shape.push_back(static_cast<int64_t>(k));
    }
    const auto& o = e["data_offsets"];
    if (!o.is_array() || o.size() != 2 || !o[0].is_number_unsigned() || !o[1].is_number_unsigned())
      throw bad("tensor '" + name + "': data_offsets must be two non-negative integers [begin, end]");
    const uint64_t b = o[0].get<uint64_t>(), en = o[1].get<uint64_t>();
    if (b > en || en > avail)
      throw bad("tensor '" + name + "': data_offsets [" + std::to_string(b) + ", " + std::to_string(en) +
                "] lie outside the " + std::to_string(avail) + " data bytes");
    const uint64_t bytes = count * static_cast<uint64_t>(c10::elementSize(dtype));
    if (bytes != en - b)
      throw bad("tensor '" + name + "': shape and dtype need " + std::to_string(bytes) + " bytes, data_offsets give " +
                std::to_string(en - b));
    auto t = torch::empty(shape, torch::TensorOptions().dtype(dtype));
    if (bytes > 0) std::memcpy(t.data_ptr(), map.data() + base + b, bytes);
    ranges.emplace_back(b, en);
    range_names.push_back(name);
    f.tensors.emplace_back(it.key(), t);
  }
  // Ranges must not overlap: two tensors sharing bytes is a corrupt or crafted file.
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  for (size_t k = 1; k < order.size(); ++k) {
    const auto& prev = ranges[order[k - 1]];
    const auto& cur = ranges[order[k]];
    if (cur.first < prev.second && cur.first != cur.second)
      throw bad("tensors '" + range_names[order[k - 1]] + "' and '" + range_names[order[k]] + "' overlap in the data");
  }
  return f;
}

}  // namespace qk
