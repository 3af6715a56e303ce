// QKLab engine — reads a PyTorch `torch.save(state_dict)` file (zip archive: data.pkl + data/<key>
// storages) without Python: a small pickle machine that knows exactly the opcodes and globals a
// state_dict uses (OrderedDict, torch._utils._rebuild_tensor_v2, typed storages by persistent id)
// and nothing else, so a crafted file cannot run code. LibTorch's own pickle_load cannot: it
// stops at the OrderedDict's _metadata.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

namespace qk {

// name -> tensor (a copy: no storage is shared with the file). Throws qk::Error naming the file
// and what it found instead (an unknown global or opcode, a missing storage, a bad stride).
std::map<std::string, torch::Tensor> read_torch_state_dict(const std::string& path);

}  // namespace qk
