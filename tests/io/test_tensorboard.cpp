// TensorBoard event files: CRC32C against its published check value, the TFRecord framing byte
// by byte, the writer read back, cutting back to a byte count, and a damaged file refused with the
// offset named. (TensorBoard's own reader judges the content: tests/peers/judge_tensorboard.py.)
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "error.h"
#include "fsutil.h"
#include "helpers.h"
#include "tensorboard.h"

TEST_CASE("CRC32C and the TFRecord framing", "[tensorboard]") {
  // The check value of CRC-32C (Castagnoli) on "123456789" (RFC 3720, B.4; every CRC catalogue).
  CHECK(qk::crc32c("123456789", 9) == 0xE3069283u);
  CHECK(qk::crc32c("", 0) == 0u);
  const uint32_t c = qk::crc32c("abc", 3);
  CHECK(qk::masked_crc32c("abc", 3) == static_cast<uint32_t>(((c >> 15) | (c << 17)) + 0xa282ead8u));
  const std::string rec = "hello";
  const std::string f = qk::tfrecord_frame(rec);
  REQUIRE(f.size() == 8 + 4 + rec.size() + 4);
  CHECK(static_cast<unsigned char>(f[0]) == 5);  // little-endian uint64 length
  for (int i = 1; i < 8; ++i) CHECK(f[i] == 0);
  CHECK(f.substr(12, 5) == "hello");
  uint32_t len_crc = 0, data_crc = 0;
  for (int i = 0; i < 4; ++i) {
    len_crc |= static_cast<uint32_t>(static_cast<unsigned char>(f[8 + i])) << (8 * i);
    data_crc |= static_cast<uint32_t>(static_cast<unsigned char>(f[17 + i])) << (8 * i);
  }
  CHECK(len_crc == qk::masked_crc32c(f.data(), 8));
  CHECK(data_crc == qk::masked_crc32c("hello", 5));
}

TEST_CASE("event files: written, read back, cut back, damage named", "[tensorboard]") {
  const std::string dir = qkt::temp_dir("tb");
  const std::string path = dir + "/" + qk::tensorboard_file_name(1e9, "qklab");
  CHECK(std::filesystem::path(path).filename().string().rfind("events.out.tfevents.1000000000.", 0) == 0);
  int64_t after_two = 0;
  {
    qk::EventFileWriter w(path);
    w.scalar("a/loss", 1, 1e9, 2.5);
    w.scalar("a/loss", 2, 1e9, 2.25);
    w.flush();
    after_two = w.bytes();
    w.scalar("a/loss", 3, 1e9, std::nan(""));  // NaN: not written
    w.scalar("a/loss", 3, 1e9, 2.0);
  }
  CHECK(qk::read_tfrecords(path).size() == 4);  // file_version + 3 scalars
  CHECK(qk::find_event_file(dir, "qklab") == path);
  CHECK(qk::find_event_file(dir, "qklab-hparams").empty());
  {
    qk::EventFileWriter w(path, after_two);  // resume: the third scalar is dropped, one appended
    w.scalar("a/loss", 3, 1e9, 1.75);
  }
  const auto recs = qk::read_tfrecords(path);
  REQUIRE(recs.size() == 4);
  CHECK(recs[3].find("a/loss") != std::string::npos);
  // One flipped byte in the second record's payload: refused, naming the file and its offset.
  std::string bytes = qk::read_file_bytes(path, "test");
  const size_t first = qk::tfrecord_frame(recs[0]).size();
  bytes[first + 14] ^= 0x40;
  qk::write_file_atomic(path, bytes);
  try {
    qk::read_tfrecords(path);
    FAIL("a damaged record was read");
  } catch (const qk::Error& e) {
    const std::string m = e.what();
    CHECK(m.find(path) != std::string::npos);
    CHECK(m.find("byte " + std::to_string(first)) != std::string::npos);
    CHECK(m.find("CRC32C") != std::string::npos);
  }
  CHECK_THROWS_AS(qk::EventFileWriter(dir + "/missing.qklab", 10), qk::Error);  // a state counting bytes of no file

  // A scalar of exactly 0 (an accuracy at step 0, the KL of a twin start) keeps its value field:
  // Summary.Value field 2, wire type 5 (fixed32), key byte 0x15, then four zero bytes.
  const std::string zero = dir + "/" + qk::tensorboard_file_name(1e9, "zero");
  {
    qk::EventFileWriter w(zero);
    w.scalar("a/acc", 0, 1e9, 0.0);
  }
  const auto z = qk::read_tfrecords(zero);
  REQUIRE(z.size() == 2);
  CHECK(z[1].find(std::string("\x15\0\0\0\0", 5)) != std::string::npos);
}
