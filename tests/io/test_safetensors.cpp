// QKLab tests — the safetensors reader trusts nothing: crafted headers (too long, not UTF-8, not
// JSON, unknown dtype, negative shape, ranges outside the data or overlapping) each fail with one
// message naming the file and field and never echoing raw bytes; F16 and BF16 read and convert.
#include <catch2/catch.hpp>

#include <fstream>

#include "checkpoint.h"
#include "error.h"
#include "helpers.h"
#include "safetensors.h"

using Catch::Matchers::Contains;

namespace {

std::string file_with(const std::string& dir, const std::string& name, const std::string& header, const std::string& data,
                      uint64_t claimed = 0) {
  const std::string path = dir + "/" + name;
  std::ofstream out(path, std::ios::binary);
  const uint64_t n = claimed ? claimed : header.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xFF));
  out << header << data;
  return path;
}

std::string error_of(const std::string& path) {
  try {
    qk::load_safetensors(path);
  } catch (const qk::Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("safetensors: crafted files fail with one clear line", "[safetensors]") {
  auto dir = qkt::temp_dir("st");
  const std::string eight(8, '\0');
  struct Case {
    std::string name, header, data, needle;
    uint64_t claimed;
  };
  const std::vector<Case> cases = {
      {"huge", "{}", "", "exceeds the limit of 100 MB", uint64_t{1} << 40},
      {"past_end", "{}", "", "exceeds the file size", 4096},
      {"not_utf8", "{\"a\xff\xfe\": 1}", "", "not valid UTF-8 (byte 11 of the file)", 0},
      {"not_json", "{\"a\": [1,", "", "malformed JSON header", 0},
      {"not_object", "[1, 2]", "", "header is not a JSON object", 0},
      {"dtype", R"({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}})", "x", "unsupported dtype 'F8_E4M3'", 0},
      {"shape", R"({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}})", eight, "shape must hold non-negative integers", 0},
      {"bytes", R"({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}})", eight, "need 12 bytes, data_offsets give 8", 0},
      {"outside", R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", eight, "lie outside the 8 data bytes", 0},
      {"overlap", R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
       eight, "tensors 'a' and 'b' overlap", 0},
      {"fields", R"({"w": {"dtype": "F32"}})", "", "tensor 'w' needs dtype, shape and data_offsets", 0},
      {"control", "{\"w\\u0001\": {\"dtype\": \"F32\", \"shape\": [5], \"data_offsets\": [0, 8]}}", eight, "tensor 'w\\x01'", 0},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    const std::string msg = error_of(file_with(dir, c.name, c.header, c.data, c.claimed));
    CHECK_THAT(msg, Contains(c.name + ": not a valid safetensors file") && Contains(c.needle));
    CHECK(msg.find('\n') == std::string::npos);
    CHECK(msg.find('\xff') == std::string::npos);  // raw bytes never reach the message
    CHECK(msg.find('\x01') == std::string::npos);
  }
  CHECK_THAT(error_of(dir + "/nope.safetensors"), Contains("nope.safetensors: cannot open"));
}

TEST_CASE("safetensors: F16 and BF16 weights read and convert to the model's dtype", "[safetensors]") {
  auto dir = qkt::temp_dir("st16");
  qk::GPTModel m(qk::Variant::Standard, qkt::tiny_model());
  for (auto dtype : {torch::kFloat16, torch::kBFloat16}) {
    qk::TensorFile f;
    for (const auto& p : m->named_parameters()) f.tensors.emplace_back(p.key(), p.value().to(dtype));
    qk::save_safetensors(dir + "/half.safetensors", f);
    auto back = qk::load_safetensors(dir + "/half.safetensors");
    REQUIRE(back.tensors.size() == f.tensors.size());
    CHECK(back.tensors[0].second.scalar_type() == dtype);
    qk::GPTModel m2(qk::Variant::Standard, qkt::tiny_model());
    qk::load_weights(m2, {back.tensors.begin(), back.tensors.end()}, "half");
    for (const auto& p : m2->named_parameters()) {
      INFO(p.key());
      CHECK(p.value().scalar_type() == torch::kFloat32);
      CHECK(torch::equal(p.value(), m->named_parameters()[p.key()].to(dtype).to(torch::kFloat32)));  // exact conversion
    }
  }
}
