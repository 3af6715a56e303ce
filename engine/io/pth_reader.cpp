// QKLab engine — the state_dict unpickler (see pth_reader.h). Pickle protocol 2 as torch.save
// writes it; values are a small tagged union.
#include "pth_reader.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <map>
#include <memory>
#include <variant>
#include <vector>

#include "error.h"
#include "safetensors.h"

namespace qk {
namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;
struct Value {
  enum class Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor, Mark } kind = Kind::None;
  int64_t i = 0;
  double f = 0;
  std::string s;                                      // Str, Global ("module.name"), Storage key
  std::vector<ValuePtr> items;                        // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> dict;    // Dict, in insertion order
  torch::Dtype dtype = torch::kFloat32;               // Storage
  torch::Tensor tensor;
};

ValuePtr make(Value::Kind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

torch::Dtype storage_dtype(const std::string& cls, const std::string& file) {
  static const std::map<std::string, torch::Dtype> m = {
      {"torch.FloatStorage", torch::kFloat32}, {"torch.DoubleStorage", torch::kFloat64},
      {"torch.HalfStorage", torch::kFloat16},  {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kInt64},    {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16},   {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8},    {"torch.BoolStorage", torch::kBool}};
  auto it = m.find(cls);
  if (it == m.end()) throw Error(file + ": unsupported storage type '" + escape_name(cls) + "'");
  return it->second;
}

class Machine {
 public:
  Machine(const std::string& file, caffe2::serialize::PyTorchStreamReader& zip, const char* p, size_t n)
      : file_(file), zip_(zip), p_(p), end_(p + n) {}

  ValuePtr run() {
    while (true) {
      const auto op = static_cast<unsigned char>(byte());
      switch (op) {
        case 0x80: byte(); break;  // PROTO n
        case '.': return pop();    // STOP
        case '(': stack_.push_back(make(Value::Kind::Mark)); break;
        case 'N': stack_.push_back(make(Value::Kind::None)); break;
        case 0x88: case 0x89: {
          auto v = make(Value::Kind::Bool);
          v->i = op == 0x88;
          stack_.push_back(v);
          break;
        }
        case 'K': push_int(static_cast<unsigned char>(byte())); break;  // BININT1
        case 'M': push_int(static_cast<int64_t>(le(2))); break;          // BININT2
        case 'J': push_int(static_cast<int32_t>(le(4))); break;          // BININT
        case 0x8a: {                                                     // LONG1
          const int n = static_cast<unsigned char>(byte());
          if (n > 8) fail("an integer wider than 64 bits");
          uint64_t u = le(n);
          if (n > 0 && n < 8 && (u >> (8 * n - 1)) & 1) u |= ~uint64_t{0} << (8 * n);  // sign-extend
          push_int(static_cast<int64_t>(u));
          break;
        }
        case 'G': {  // BINFLOAT, big endian
          uint64_t u = 0;
          for (int k = 0; k < 8; ++k) u = (u << 8) | static_cast<unsigned char>(byte());
          auto v = make(Value::Kind::Float);
          std::memcpy(&v->f, &u, 8);
          stack_.push_back(v);
          break;
        }
        case 'X': {  // BINUNICODE
          const uint64_t n = le(4);
          auto v = make(Value::Kind::Str);
          v->s = bytes(n);
          stack_.push_back(v);
          break;
        }
        case 0x8c: {  // SHORT_BINUNICODE (protocol 4)
          const uint64_t n = static_cast<unsigned char>(byte());
          auto v = make(Value::Kind::Str);
          v->s = bytes(n);
          stack_.push_back(v);
          break;
        }
        case '}': stack_.push_back(make(Value::Kind::Dict)); break;
        case ']': stack_.push_back(make(Value::Kind::List)); break;
        case ')': stack_.push_back(make(Value::Kind::Tuple)); break;
        case 't': {
          auto v = make(Value::Kind::Tuple);
          v->items = pop_to_mark();
          stack_.push_back(v);
          break;
        }
        case 0x85: case 0x86: case 0x87: {  // TUPLE1..3
          auto v = make(Value::Kind::Tuple);
          v->items.resize(op - 0x84);
          for (size_t k = v->items.size(); k-- > 0;) v->items[k] = pop();
          stack_.push_back(v);
          break;
        }
        case 'q': memo(static_cast<unsigned char>(byte())); break;  // BINPUT
        case 'r': memo(le(4)); break;                                // LONG_BINPUT
        case 0x94: memo(memo_.empty() ? 0 : memo_.rbegin()->first + 1); break;  // MEMOIZE
        case 'h': get(static_cast<unsigned char>(byte())); break;   // BINGET
        case 'j': get(le(4)); break;                                 // LONG_BINGET
        case 'c': {                                                  // GLOBAL module\nname\n
          auto v = make(Value::Kind::Global);
          const std::string module = line();  // two statements: the order of reads matters
          v->s = module + "." + line();
          if (v->s != "collections.OrderedDict" && v->s != "torch._utils._rebuild_tensor_v2" &&
              v->s != "torch._utils._rebuild_parameter" && v->s != "torch.jit._pickle.restore_type_tag" &&
              storage_name(v->s).empty())
            fail("the global '" + escape_name(v->s) + "' is not part of a state_dict");
          stack_.push_back(v);
          break;
        }
        case 'Q': {  // BINPERSID: ('storage', storage_type, key, location, numel)
          auto pid = pop();
          if (pid->kind != Value::Kind::Tuple || pid->items.size() < 5 || pid->items[1]->kind != Value::Kind::Global)
            fail("a persistent id that is not a storage");
          auto v = make(Value::Kind::Storage);
          v->dtype = storage_dtype(pid->items[1]->s, file_);
          v->s = pid->items[2]->s;
          stack_.push_back(v);
          break;
        }
        case 'R': {  // REDUCE
          auto args = pop();
          auto fn = pop();
          stack_.push_back(reduce(fn, args));
          break;
        }
        case 'b': pop(); break;  // BUILD: the OrderedDict's _metadata (versions): not needed
        case 's': {
          auto v = pop();
          auto k = pop();
          top_dict()->dict.emplace_back(k, v);
          break;
        }
        case 'u': {
          auto items = pop_to_mark();
          if (items.size() % 2) fail("SETITEMS with an odd number of items");
          auto d = top_dict();
          for (size_t k = 0; k < items.size(); k += 2) d->dict.emplace_back(items[k], items[k + 1]);
          break;
        }
        case 'a': {
          auto v = pop();
          top()->items.push_back(v);
          break;
        }
        case 'e': {
          auto items = pop_to_mark();
          auto l = top();
          l->items.insert(l->items.end(), items.begin(), items.end());
          break;
        }
        default: {
          char buf[8];
          std::snprintf(buf, sizeof buf, "0x%02X", op);
          fail(std::string("pickle opcode ") + buf + " is not one a state_dict uses");
        }
      }
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw Error(file_ + ": not a state_dict QKLab can read: " + what);
  }
  char byte() {
    if (p_ >= end_) fail("data.pkl ends early");
    return *p_++;
  }
  uint64_t le(int n) {
    uint64_t u = 0;
    for (int k = 0; k < n; ++k) u |= static_cast<uint64_t>(static_cast<unsigned char>(byte())) << (8 * k);
    return u;
  }
  std::string bytes(uint64_t n) {
    if (n > static_cast<uint64_t>(end_ - p_)) fail("data.pkl ends early");
    std::string s(p_, n);
    p_ += n;
    return s;
  }
  std::string line() {
    std::string s;
    for (char c = byte(); c != '\n'; c = byte()) s += c;
    return s;
  }
  static std::string storage_name(const std::string& g) {
    return g.rfind("torch.", 0) == 0 && g.size() > 13 && g.compare(g.size() - 7, 7, "Storage") == 0 ? g : "";
  }
  void push_int(int64_t x) {
    auto v = make(Value::Kind::Int);
    v->i = x;
    stack_.push_back(v);
  }
  ValuePtr pop() {
    if (stack_.empty()) fail("the pickle stack runs empty");
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  ValuePtr top() {
    if (stack_.empty()) fail("the pickle stack runs empty");
    return stack_.back();
  }
  ValuePtr top_dict() {
    auto d = top();
    if (d->kind != Value::Kind::Dict) fail("SETITEM on something that is not a dict");
    return d;
  }
  std::vector<ValuePtr> pop_to_mark() {
    std::vector<ValuePtr> items;
    while (true) {
      auto v = pop();
      if (v->kind == Value::Kind::Mark) break;
      items.push_back(v);
    }
    return {items.rbegin(), items.rend()};
  }
  void memo(uint64_t k) { memo_[k] = top(); }  // a map: a crafted huge index allocates nothing
  void get(uint64_t k) {
    auto it = memo_.find(k);
    if (it == memo_.end()) fail("a memo reference to nothing");
    stack_.push_back(it->second);
  }
  std::vector<int64_t> ints(const ValuePtr& t) {
    if (t->kind != Value::Kind::Tuple) fail("expected a tuple of sizes");
    std::vector<int64_t> out;
    for (const auto& x : t->items) {
      if (x->kind != Value::Kind::Int || x->i < 0) fail("expected non-negative sizes");
      out.push_back(x->i);
    }
    return out;
  }
  ValuePtr reduce(const ValuePtr& fn, const ValuePtr& args) {
    if (fn->kind != Value::Kind::Global || args->kind != Value::Kind::Tuple) fail("REDUCE of something not callable");
    if (fn->s == "collections.OrderedDict") return make(Value::Kind::Dict);
    if (fn->s == "torch.jit._pickle.restore_type_tag") {  // LibTorch's pickle_save: (value, type string)
      if (args->items.empty()) fail("restore_type_tag without a value");
      return args->items[0];
    }
    if (fn->s == "torch._utils._rebuild_parameter") {
      if (args->items.empty() || args->items[0]->kind != Value::Kind::Tensor) fail("a parameter without a tensor");
      return args->items[0];
    }
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks)
    if (args->items.size() < 4 || args->items[0]->kind != Value::Kind::Storage || args->items[1]->kind != Value::Kind::Int)
      fail("_rebuild_tensor_v2 with unexpected arguments");
    const auto& st = *args->items[0];
    const auto size = ints(args->items[2]), stride = ints(args->items[3]);
    if (size.size() != stride.size()) fail("a tensor whose size and stride differ in length");
    const std::string rec = "data/" + st.s;
    if (!zip_.hasRecord(rec)) fail("the storage '" + escape_name(rec) + "' is missing from the archive");
    auto [ptr, nbytes] = zip_.getRecord(rec);
    const size_t esize = c10::elementSize(st.dtype);
    const int64_t numel = static_cast<int64_t>(nbytes / esize);
    int64_t last = args->items[1]->i;  // the highest element the view touches must lie in the storage
    bool empty = false;
    for (size_t k = 0; k < size.size(); ++k) {
      if (size[k] == 0) empty = true;
      last += (size[k] - 1) * stride[k];
    }
    if (!empty && last >= numel) fail("tensor view past the end of storage '" + escape_name(rec) + "'");
    auto storage = torch::from_blob(ptr.get(), {numel}, torch::TensorOptions().dtype(st.dtype));
    auto v = make(Value::Kind::Tensor);
    v->tensor = empty ? torch::empty(size, torch::TensorOptions().dtype(st.dtype))
                      : storage.as_strided(size, stride, args->items[1]->i).clone();
    return v;
  }

  std::string file_;
  caffe2::serialize::PyTorchStreamReader& zip_;
  const char* p_;
  const char* end_;
  std::vector<ValuePtr> stack_;
  std::map<uint64_t, ValuePtr> memo_;
};

}  // namespace

std::map<std::string, torch::Tensor> read_torch_state_dict(const std::string& path) {
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> zip;
  try {
    zip = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error&) {
    throw Error(path + ": not a torch.save() zip archive (the legacy pre-1.6 format is not read; re-save with torch.save)");
  }
  ValuePtr v;
  try {  // LibTorch's zip reader reports corrupt records as c10::Error: one line as well
    if (!zip->hasRecord("data.pkl")) throw Error(path + ": the archive holds no data.pkl");
    auto [pkl, n] = zip->getRecord("data.pkl");
    Machine m(path, *zip, static_cast<const char*>(pkl.get()), n);
    v = m.run();
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw Error(path + ": corrupt archive: " + what.substr(0, what.find('\n')));
  }
  if (v->kind != Value::Kind::Dict) throw Error(path + ": expected a state_dict (a dict of tensors)");
  std::map<std::string, torch::Tensor> out;
  for (const auto& [k, t] : v->dict) {
    if (k->kind != Value::Kind::Str || t->kind != Value::Kind::Tensor)
      throw Error(path + ": expected a state_dict of name → tensor");
    out[k->s] = t->tensor;
  }
  return out;
}

}  // namespace qk
