// Fuzz target: tokenizer files and encoders. Input: a selector byte, then NUL-separated parts.
//   0: a trained-BPE JSON + text to encode and decode again (must round-trip)
//   1: a GPT-2 encoder.json + vocab.bpe (merges) + text to encode
//   2: a char tokenizer built from a corpus + text
#include "bpe_tokenizer.h"
#include <nlohmann/json.hpp>

#include "config.h"
#include "fuzz_common.h"
#include "gpt2_tokenizer.h"
#include "tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const int which = data[0] % 3;
  const auto p = qkf::parts(data + 1, size - 1, 3);
  qkf::expect_only_qk_errors([&] {
    if (which == 0) {
      auto tok = qk::BpeTokenizer::from_json(qk::parse_json(p[0], "bpe.json"), "bpe.json");
      const auto ids = tok.encode(p[1]);
      if (tok.decode(ids) != p[1]) std::abort();  // byte-level BPE loses nothing
    } else if (which == 1) {
      const auto enc = qkf::write("encoder.json", p[0]), merges = qkf::write("vocab.bpe", p[1]);
      qk::Gpt2Tokenizer tok(enc, merges);
      tok.decode(tok.encode(p[2]));
    } else {
      auto tok = qk::CharTokenizer::from_corpus(p[0], true);
      tok.decode(tok.encode(p[1]));
    }
  });
  return 0;
}
