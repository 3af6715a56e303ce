// QKLab engine — TensorBoard event files (see tensorboard.h): framing, CRC32C and the messages.
#include "tensorboard.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <sstream>

#include <boost/crc.hpp>
#include <nlohmann/json.hpp>

#include "error.h"
#include "fsutil.h"
#include "tensorboard.pb.h"

namespace qk {
namespace fs = std::filesystem;
namespace tb = ::qklab::tb;  // tensorboard.proto's messages

uint32_t crc32c(const void* data, size_t n) {
  // CRC-32C (Castagnoli): polynomial 0x1EDC6F41, reflected in and out, init and final xor ~0.
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(data, n);
  return crc.checksum();
}

uint32_t masked_crc32c(const void* data, size_t n) {
  const uint32_t c = crc32c(data, n);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

namespace {

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t get_le(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  return v;
}

constexpr const char* kHParamsPlugin = "hparams";
constexpr const char* kExperimentTag = "_hparams_/experiment";
constexpr const char* kSessionStartTag = "_hparams_/session_start_info";
constexpr const char* kSessionEndTag = "_hparams_/session_end_info";

void set_value(google::protobuf::Value* out, const HParamValue& v) {
  switch (v.kind) {
    case HParamValue::Kind::Number: out->set_number_value(v.number); break;
    case HParamValue::Kind::Bool: out->set_bool_value(v.boolean); break;
    case HParamValue::Kind::String: out->set_string_value(v.text); break;
  }
}

// An Event whose summary is one HParams plugin record (TensorBoard's hparams summary layout).
std::string hparams_event(const char* tag, const tb::HParamsPluginData& data, double wall_time) {
  tb::Event e;
  e.set_wall_time(wall_time);
  e.set_step(0);
  auto* v = e.mutable_summary()->add_value();
  v->set_tag(tag);
  auto* md = v->mutable_metadata();
  md->mutable_plugin_data()->set_plugin_name(kHParamsPlugin);
  md->mutable_plugin_data()->set_content(data.SerializeAsString());
  // The value itself is an empty tensor in TensorBoard's writer; a scalar-free summary reads the same.
  return e.SerializeAsString();
}

}  // namespace

std::string tfrecord_frame(const std::string& record) {
  std::string out;
  out.reserve(record.size() + 16);
  std::string len;
  put_le(len, record.size(), 8);
  out += len;
  put_le(out, masked_crc32c(len.data(), len.size()), 4);
  out += record;
  put_le(out, masked_crc32c(record.data(), record.size()), 4);
  return out;
}

double unix_time_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string tensorboard_file_name(double wall_time, const std::string& suffix) {
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) != 0 || !host[0]) std::strcpy(host, "localhost");
  std::string h(host);
  std::replace(h.begin(), h.end(), '/', '_');
  return "events.out.tfevents." + std::to_string(static_cast<int64_t>(wall_time)) + "." + h + "." + suffix;
}

std::string find_event_file(const std::string& dir, const std::string& suffix) {
  std::error_code ec;
  std::vector<std::string> names;
  const std::string tail = "." + suffix;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (e.is_regular_file() && n.rfind("events.out.tfevents.", 0) == 0 && n.size() > tail.size() &&
        n.compare(n.size() - tail.size(), tail.size(), tail) == 0)
      names.push_back(e.path().string());
  }
  std::sort(names.begin(), names.end());
  return names.empty() ? "" : names.front();
}

HParamValue HParamValue::from_json_text(const std::string& json_text) {
  HParamValue v;
  const auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (j.is_number()) {
    v.kind = Kind::Number;
    v.number = j.get<double>();
  } else if (j.is_boolean()) {
    v.kind = Kind::Bool;
    v.boolean = j.get<bool>();
  } else if (j.is_string()) {
    v.text = j.get<std::string>();
  } else {
    v.text = json_text;  // arrays, objects, or not JSON at all: shown as written
  }
  return v;
}

EventFileWriter::EventFileWriter(const std::string& path, int64_t keep_bytes) : path_(path) {
  make_dirs(fs::path(path).parent_path().string());
  if (keep_bytes >= 0) {
    if (!fs::exists(path)) {
      if (keep_bytes > 0)
        throw Error(path + ": missing, but the training state counts " + std::to_string(keep_bytes) + " bytes of it");
    } else {
      if (static_cast<int64_t>(fs::file_size(path)) < keep_bytes)
        throw Error(path + ": shorter than the training state records (" + std::to_string(keep_bytes) + " bytes)");
      fs::resize_file(path, static_cast<uintmax_t>(keep_bytes));
    }
    out_.open(path, std::ios::binary | std::ios::app);
    bytes_ = keep_bytes;
  } else {
    out_.open(path, std::ios::binary | std::ios::trunc);
  }
  if (!out_) throw Error(path + ": cannot write");
  if (bytes_ == 0) {
    tb::Event e;
    e.set_wall_time(unix_time_now());
    e.set_file_version("brain.Event:2");
    append(e.SerializeAsString());
    flush();
  }
}

EventFileWriter::~EventFileWriter() {
  try {
    flush();
  } catch (...) {
  }
}

void EventFileWriter::append(const std::string& event) {
  const std::string framed = tfrecord_frame(event);
  pending_ += framed;
  bytes_ += static_cast<int64_t>(framed.size());
}

void EventFileWriter::flush() {
  if (pending_.empty()) return;
  out_.write(pending_.data(), static_cast<std::streamsize>(pending_.size()));
  out_.flush();
  if (!out_) {
    const int why = errno;
    pending_.clear();  // the record is lost; a resume cuts the file back to the state's length
    throw Error(path_ + ": write failed: " + std::strerror(why ? why : EIO) + " (" + free_space_text(path_) + ")");
  }
  pending_.clear();
}

void EventFileWriter::scalar(const std::string& tag, int64_t step, double wall_time, double value) {
  if (std::isnan(value)) return;
  tb::Event e;
  e.set_wall_time(wall_time);
  e.set_step(step);
  auto* v = e.mutable_summary()->add_value();
  v->set_tag(tag);
  v->set_simple_value(static_cast<float>(value));
  append(e.SerializeAsString());
}

void EventFileWriter::hparams_experiment(const std::vector<HParamDomain>& hparams,
                                         const std::vector<HParamMetric>& metrics, double wall_time) {
  tb::HParamsPluginData d;
  d.set_version(0);
  auto* x = d.mutable_experiment();
  x->set_time_created_secs(wall_time);
  for (const auto& h : hparams) {
    auto* info = x->add_hparam_infos();
    info->set_name(h.name);
    bool numbers = !h.values.empty(), bools = !h.values.empty();
    for (const auto& v : h.values) {
      numbers = numbers && v.kind == HParamValue::Kind::Number;
      bools = bools && v.kind == HParamValue::Kind::Bool;
      set_value(info->mutable_domain_discrete()->add_values(), v);
    }
    info->set_type(numbers ? tb::DATA_TYPE_FLOAT64 : bools ? tb::DATA_TYPE_BOOL : tb::DATA_TYPE_STRING);
  }
  for (const auto& m : metrics) {
    auto* info = x->add_metric_infos();
    info->mutable_name()->set_tag(m.tag);
    info->set_description(m.description);
    info->set_dataset_type(m.validation ? tb::DATASET_VALIDATION : tb::DATASET_TRAINING);
  }
  append(hparams_event(kExperimentTag, d, wall_time));
}

void EventFileWriter::hparams_session_start(const std::map<std::string, HParamValue>& hparams,
                                            const std::string& group, double wall_time) {
  tb::HParamsPluginData d;
  d.set_version(0);
  auto* s = d.mutable_session_start_info();
  for (const auto& [k, v] : hparams) set_value(&(*s->mutable_hparams())[k], v);
  s->set_group_name(group);
  s->set_start_time_secs(wall_time);
  append(hparams_event(kSessionStartTag, d, wall_time));
}

void EventFileWriter::hparams_session_end(bool success, double wall_time) {
  tb::HParamsPluginData d;
  d.set_version(0);
  auto* s = d.mutable_session_end_info();
  s->set_status(success ? tb::STATUS_SUCCESS : tb::STATUS_FAILURE);
  s->set_end_time_secs(wall_time);
  append(hparams_event(kSessionEndTag, d, wall_time));
}

std::vector<std::string> read_tfrecords(const std::string& path) {
  const std::string bytes = read_file_bytes(path, "TensorBoard event file");
  std::vector<std::string> out;
  size_t at = 0;
  while (at < bytes.size()) {
    auto bad = [&](const std::string& what) {
      return Error(path + ": byte " + std::to_string(at) + ": " + what);
    };
    if (bytes.size() - at < 12) throw bad("a record header needs 12 bytes, " + std::to_string(bytes.size() - at) + " left");
    const uint64_t len = get_le(bytes.data() + at, 8);
    if (static_cast<uint32_t>(get_le(bytes.data() + at + 8, 4)) != masked_crc32c(bytes.data() + at, 8))
      throw bad("the length's CRC32C does not match");
    if (len > bytes.size() - at - 12 || bytes.size() - at - 12 - len < 4)
      throw bad("a record of " + std::to_string(len) + " bytes runs past the end of the file");
    const char* rec = bytes.data() + at + 12;
    if (static_cast<uint32_t>(get_le(rec + len, 4)) != masked_crc32c(rec, len)) throw bad("the record's CRC32C does not match");
    out.emplace_back(rec, len);
    at += 12 + len + 4;
  }
  return out;
}

}  // namespace qk
