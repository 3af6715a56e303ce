// Fuzz target: a TensorBoard event file — the TFRecord reader (lengths, both masked CRC32Cs), then
// a run folder's log continued from it (cut back to a state's byte count and appended to).
#include "fuzz_common.h"
#include "tensorboard.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  const std::string path = qkf::write("events.out.tfevents.0.fuzz.qklab", bytes);
  qkf::expect_only_qk_errors([&] {
    const auto records = qk::read_tfrecords(path);
    qk::EventFileWriter w(path, static_cast<int64_t>(size / 2));
    w.scalar("fuzz/value", static_cast<int64_t>(records.size()), 0.0, 1.0);
    w.flush();
  });
  return 0;
}
