// QKLab engine — TensorBoard event files, written as TensorBoard reads them: TFRecord framing
// (uint64 length, masked CRC32C of the length, the bytes, masked CRC32C of the bytes; all
// little-endian) around serialized `Event` messages (tensorboard.proto beside this file:
// TensorBoard's own field numbers, encoded by Debian's libprotobuf; CRC32C from Boost.CRC).
//   scalars   Summary.Value{tag, simple_value} at (step, wall_time)
//   hparams   the HParams plugin's experiment / session start / session end records, as
//             `_hparams_/...` summaries with plugin_data {plugin_name "hparams", content}
// A file is append-only and can be cut back to an earlier size (a resumed run drops what was
// written after its saved state, like the other logs of the run folder).
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace qk {

uint32_t crc32c(const void* data, size_t n);
uint32_t masked_crc32c(const void* data, size_t n);  // ((crc >> 15) | (crc << 17)) + 0xa282ead8
std::string tfrecord_frame(const std::string& record);  // length, its CRC, record, its CRC

// "events.out.tfevents.<seconds>.<host>.<suffix>": the name TensorBoard's loader looks for.
std::string tensorboard_file_name(double wall_time, const std::string& suffix);
// The event file in `dir` whose name ends in ".<suffix>" (the first, by name), or "" when none.
std::string find_event_file(const std::string& dir, const std::string& suffix);

// One value of an HParams session: a number, a bool or a string (google.protobuf.Value).
struct HParamValue {
  enum class Kind { Number, Bool, String } kind = Kind::String;
  double number = 0;
  bool boolean = false;
  std::string text;
  static HParamValue from_json_text(const std::string& json_text);  // 1e-3 -> number, "x" -> string
};
struct HParamDomain {
  std::string name;
  std::vector<HParamValue> values;  // the discrete domain (every value swept)
};
struct HParamMetric {
  std::string tag;      // a scalar tag in each session's run
  std::string description;
  bool validation = true;
};

class EventFileWriter {
 public:
  // Creates `path` (its folder too) and writes the file_version record, unless `keep_bytes` >= 0:
  // then the existing file is cut back to that many bytes and appended to.
  explicit EventFileWriter(const std::string& path, int64_t keep_bytes = -1);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  void scalar(const std::string& tag, int64_t step, double wall_time, double value);  // NaN: skipped
  void hparams_experiment(const std::vector<HParamDomain>& hparams, const std::vector<HParamMetric>& metrics,
                          double wall_time);
  void hparams_session_start(const std::map<std::string, HParamValue>& hparams, const std::string& group,
                             double wall_time);
  void hparams_session_end(bool success, double wall_time);
  void flush();                      // everything written so far reaches the file
  int64_t bytes() const { return bytes_; }  // the file's size once flushed
  const std::string& path() const { return path_; }

 private:
  void append(const std::string& event);
  std::string path_;
  std::ofstream out_;
  std::string pending_;
  int64_t bytes_ = 0;
};

// An event file read back record by record (framing and both CRCs checked): the serialized
// Events. Throws qk::Error naming the file and the byte offset of a bad record.
std::vector<std::string> read_tfrecords(const std::string& path);

double unix_time_now();

}  // namespace qk
