// QKLab engine — exact resume: the experiment's full training state written to and read from a
// folder (see Experiment::save_state in trainer.h). One safetensors file per lane:
//   model.<name>               every parameter, in the model's dtype
//   adamw.exp_avg.<name>, adamw.exp_avg_sq.<name>, adamw.step (1,) int64
//   rng                        the lane's global-generator state (uint8)
//   data.<key>                 its data stream's position (data.h: DataSource::state)
//   __metadata__: qklab.variant, qklab.seed, qklab.tokens_seen, qklab.seconds (exact decimal)
// and state.json: {"format", "version", "step", "total", "lanes": [{variant, seed, file}], "note",
// "crc32"} (crc32: of the compact JSON without it). The lane files carry their own checksum
// (safetensors.h), so a damaged or cut state is found before anything is installed.
#include "trainer_impl.h"

#include <cstdio>

#include "checkpoint.h"
#include "config.h"
#include "error.h"
#include "fsutil.h"
#include "safetensors.h"

namespace qk {
namespace {

constexpr const char* kFormat = "qklab-train-state";
constexpr int kVersion = 1;

std::string lane_file(const Lane& l) { return variant_name(l.variant) + "-seed" + std::to_string(l.seed) + ".safetensors"; }

std::string exact(double v) {  // 17 significant digits: parses back to the same double
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

const torch::Tensor& need(const std::map<std::string, torch::Tensor>& m, const std::string& key, const std::string& file) {
  auto it = m.find(key);
  if (it == m.end()) throw Error(file + ": training state lacks tensor '" + key + "'");
  return it->second;
}

}  // namespace

void Experiment::save_state(const std::string& dir, const nlohmann::json& note) const {
  const auto& I = *impl_;
  make_dirs(dir);
  nlohmann::json lanes = nlohmann::json::array();
  for (const auto& l : I.lanes) {
    TensorFile f;
    const auto params = l.model->named_parameters();
    for (const auto& p : params) f.tensors.emplace_back("model." + p.key(), p.value());
    const auto st = l.opt->state();
    for (size_t i = 0; i < params.size(); ++i) {
      f.tensors.emplace_back("adamw.exp_avg." + params[i].key(), st.exp_avg.at(i));
      f.tensors.emplace_back("adamw.exp_avg_sq." + params[i].key(), st.exp_avg_sq.at(i));
    }
    f.tensors.emplace_back("adamw.step", torch::tensor({st.step}, torch::kInt64));
    f.tensors.emplace_back("rng", l.rng_state);
    for (const auto& [k, t] : l.data->state()) f.tensors.emplace_back("data." + k, t);
    f.metadata["qklab.variant"] = variant_name(l.variant);
    f.metadata["qklab.seed"] = std::to_string(l.seed);
    f.metadata["qklab.tokens_seen"] = std::to_string(l.tokens_seen);
    f.metadata["qklab.seconds"] = exact(l.seconds);
    if (l.halted) f.metadata["qklab.halted"] = l.halt_reason;
    save_safetensors(dir + "/" + lane_file(l), f);
    lanes.push_back({{"variant", variant_name(l.variant)}, {"seed", l.seed}, {"file", lane_file(l)}});
  }
  nlohmann::json j = {{"format", kFormat}, {"version", kVersion}, {"step", I.done},
                      {"total", I.total}, {"lanes", lanes}, {"note", note}};
  const std::string body = j.dump();
  j["crc32"] = crc32_hex(crc32_of(body.data(), body.size()));  // of the JSON without this key, compact
  write_file_atomic(dir + "/state.json", j.dump(2) + "\n");
}

nlohmann::json Experiment::load_state(const std::string& dir) {
  try {
    return load_state_checked(dir);
  } catch (const nlohmann::json::exception& e) {  // a field of the wrong JSON type
    throw Error(dir + "/state.json: unexpected content: " + std::string(e.what()));
  }
}

nlohmann::json Experiment::load_state_checked(const std::string& dir) {
  auto& I = *impl_;
  const std::string sj = dir + "/state.json";
  nlohmann::json jm = parse_json(read_file_bytes(sj, "training state"), sj);
  if (jm.is_object() && jm.contains("crc32")) {
    const auto want = jm["crc32"];
    jm.erase("crc32");
    const std::string body = jm.dump();
    if (!want.is_string() || want.get<std::string>() != crc32_hex(crc32_of(body.data(), body.size())))
      throw Error(sj + ": checksum mismatch: the file was damaged after it was written");
  }
  const nlohmann::json& j = jm;
  if (!j.is_object() || json_string(j, "format", sj) != kFormat)
    throw Error(sj + ": not a QKLab training state (format is not '" + std::string(kFormat) + "')");
  if (json_int(j, "version", sj, 0) != kVersion)
    throw Error(sj + ": training state version " + j.value("version", nlohmann::json()).dump() + ", this QKLab reads " +
                std::to_string(kVersion));
  if (!j.contains("step") || !j["step"].is_number_integer() || j["step"].get<int64_t>() < 0)
    throw Error(sj + ": step: expected a non-negative integer");
  const auto& lanes = j.value("lanes", nlohmann::json::array());
  if (!lanes.is_array() || lanes.size() != I.lanes.size())
    throw Error(sj + ": lanes: the state has " + std::to_string(lanes.is_array() ? lanes.size() : 0) +
                " variant×seed lanes, the config builds " + std::to_string(I.lanes.size()) +
                " (variants and train.seeds must not change on resume)");
  for (size_t i = 0; i < I.lanes.size(); ++i) {
    Lane& l = I.lanes[i];
    const std::string where = sj + ": lanes." + std::to_string(i);
    const std::string lv = json_string(lanes[i], "variant", where, "?");
    const int64_t ls = json_int(lanes[i], "seed", where, -1);
    if (lv != variant_name(l.variant) || ls != l.seed)
      throw Error(sj + ": lane " + std::to_string(i) + " is " + escape_name(lv) + " seed " +
                  std::to_string(ls) + ", the config builds " + variant_name(l.variant) +
                  " seed " + std::to_string(l.seed));
  }
  // Read every lane first, then install: a state that fails to load leaves the experiment as it was.
  struct Loaded {
    std::map<std::string, torch::Tensor> t;
    std::map<std::string, std::string> meta;
    std::string file;
  };
  std::vector<Loaded> loaded;
  for (size_t i = 0; i < I.lanes.size(); ++i) {
    const std::string file = dir + "/" + json_string(lanes[i], "file", sj + ": lanes." + std::to_string(i));
    TensorFile f = load_safetensors(file);
    Loaded L{{f.tensors.begin(), f.tensors.end()}, f.metadata, file};
    const auto params = I.lanes[i].model->named_parameters();
    for (const auto& p : params)
      for (const std::string pre : {"model.", "adamw.exp_avg.", "adamw.exp_avg_sq."}) {
        const auto& t = need(L.t, pre + p.key(), file);
        if (t.sizes() != p.value().sizes()) {
          std::ostringstream ss;
          ss << file << ": tensor '" << pre << p.key() << "' has shape " << t.sizes() << ", the model expects "
             << p.value().sizes() << " (model keys must not change on resume)";
          throw Error(ss.str());
        }
      }
    need(L.t, "adamw.step", file);
    need(L.t, "rng", file);
    for (const char* k : {"qklab.tokens_seen", "qklab.seconds"})
      if (!L.meta.count(k)) throw Error(file + ": __metadata__ lacks '" + std::string(k) + "'");
    loaded.push_back(std::move(L));
  }
  torch::NoGradGuard ng;
  for (size_t i = 0; i < I.lanes.size(); ++i) {
    Lane& l = I.lanes[i];
    const Loaded& L = loaded[i];
    const auto params = l.model->named_parameters();
    AdamW::State st;
    st.step = L.t.at("adamw.step").item<int64_t>();
    for (const auto& p : params) {
      p.value().copy_(L.t.at("model." + p.key()));
      st.exp_avg.push_back(L.t.at("adamw.exp_avg." + p.key()));
      st.exp_avg_sq.push_back(L.t.at("adamw.exp_avg_sq." + p.key()));
    }
    l.opt->set_state(st);
    std::map<std::string, torch::Tensor> data;
    for (const auto& [k, t] : L.t)
      if (k.rfind("data.", 0) == 0) data[k.substr(5)] = t;
    l.data->set_state(data, L.file);
    l.rng_state = L.t.at("rng").clone();
    l.tokens_seen = std::stoll(L.meta.at("qklab.tokens_seen"));
    l.seconds = std::stod(L.meta.at("qklab.seconds"));
    auto halted = L.meta.find("qklab.halted");
    l.halted = halted != L.meta.end();
    l.halt_reason = l.halted ? halted->second : "";
  }
  I.done = j["step"].get<int64_t>();
  return j.value("note", nlohmann::json::object());
}

}  // namespace qk
