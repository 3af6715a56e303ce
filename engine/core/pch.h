// Precompiled header for engine, tests and the CLI: LibTorch is most of the compile time.
#pragma once
#include <torch/torch.h>
#include <nlohmann/json.hpp>
