// QKLab engine — the mechanism outputs of `qklab-cli analyze` (geometry, circuits, composition,
// ablation, patching, spectral health), one writer per CSV, each over every model of the run.
// Columns are documented in the README ("What analyze writes").
#pragma once
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config.h"
#include "data.h"
#include "model.h"
#include "observer.h"
#include "causal.h"
#include "tokenizer.h"

namespace qk {

struct MechanismModel {
  std::string name;  // variant
  int seed = 0;
  int64_t step = 0;  // optimiser steps the model has taken
  GPTModelImpl* model = nullptr;
};
struct MechanismInputs {
  ExperimentConfig cfg;
  std::vector<MechanismModel> models;
  const std::vector<Batch>* val = nullptr;
  const Tokenizer* tokenizer = nullptr;     // text runs: token labels
  std::vector<SpectraRecord> history;       // the run's spectra over training (may be empty)
  std::string dir;                          // output folder
  std::vector<PatchPair> pairs;             // given pairs (else made from the validation batches)
  bool ablation = true;                     // ablation.csv and patching.csv (header only when false)
};
// Writes geometry.csv, eigenvalues.csv, circuits.csv, composition.csv, ablation.csv,
// patching.csv and esd.csv into in.dir and adds their contents to `report`. Progress on err (tty).
void write_mechanisms(const MechanismInputs& in, nlohmann::json& report, std::ostream& out, std::ostream& err);

}  // namespace qk
