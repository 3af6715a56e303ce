// QKLab engine — built-in experiment presets (`qklab-cli presets`, the GUI's preset list).
#pragma once
#include <string>
#include <vector>

#include "config.h"

namespace qk {

struct Preset {
  std::string name, description;
  ExperimentConfig config;
};

const std::vector<Preset>& presets();
// Throws qk::Error listing the known names.
ExperimentConfig preset_config(const std::string& name);

}  // namespace qk
