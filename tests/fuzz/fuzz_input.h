// Helpers shared by the fuzz targets: taking control bytes off the front of a fuzz input, and
// cutting the rest into chunks (as TCP would) from a seed, so that a target can compare feeding an
// input whole with feeding it in pieces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace ringmail::fuzz {

class Input {
 public:
  Input(const uint8_t* data, size_t size) : rest_(reinterpret_cast<const char*>(data), size) {}
  // The next byte, or 0 once the input is used up.
  uint8_t byte() {
    if (rest_.empty()) return 0;
    uint8_t b = static_cast<uint8_t>(rest_.front());
    rest_.remove_prefix(1);
    return b;
  }
  uint16_t u16() {  // little-endian; two statements, so the bytes are taken in order
    uint16_t low = byte();
    return static_cast<uint16_t>(low | byte() << 8);
  }
  // Up to n bytes.
  std::string_view take(size_t n) {
    std::string_view s = rest_.substr(0, n);
    rest_.remove_prefix(s.size());
    return s;
  }
  // A length-prefixed piece (one length byte).
  std::string_view piece() { return take(byte()); }
  std::string_view rest() const { return rest_; }
  bool empty() const { return rest_.empty(); }

 private:
  std::string_view rest_;  // bytes not taken yet
};

// Cuts `size` bytes into chunks of 1..max_chunk bytes chosen by a small generator seeded with
// `seed`; returns the end offset of every chunk (the last is `size`). Seed 0 gives one byte per chunk.
inline std::vector<size_t> cut_points(size_t size, uint32_t seed, size_t max_chunk = 64) {
  std::vector<size_t> ends;
  uint32_t x = seed * 2654435761u + 1;
  size_t at = 0;
  while (at < size) {
    size_t len = 1;
    if (seed != 0) {
      x ^= x << 13;
      x ^= x >> 17;
      x ^= x << 5;
      len = 1 + x % max_chunk;
    }
    at = at + len < size ? at + len : size;
    ends.push_back(at);
  }
  return ends;
}

}  // namespace ringmail::fuzz
