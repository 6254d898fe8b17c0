// A short list of recipient indices with room for three inline: a queued work item usually
// carries one recipient (one message, one destination), and a queue of a million of them should
// not cost a heap block each. Longer lists spill to one heap array. Copyable and movable.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace ringmail::engine {

class IndexList {
 public:
  IndexList() = default;
  explicit IndexList(const std::vector<uint32_t>& v) { assign(v.data(), v.size()); }
  IndexList(const uint32_t* p, size_t n) { assign(p, n); }
  IndexList(const IndexList& o) { assign(o.data(), o.size_); }
  IndexList(IndexList&& o) noexcept : size_(o.size_) {
    std::memcpy(&u_, &o.u_, sizeof u_);
    o.size_ = 0;
  }
  IndexList& operator=(const IndexList& o) {
    if (this != &o) {
      release();
      assign(o.data(), o.size_);
    }
    return *this;
  }
  IndexList& operator=(IndexList&& o) noexcept {
    if (this != &o) {
      release();
      size_ = o.size_;
      std::memcpy(&u_, &o.u_, sizeof u_);
      o.size_ = 0;
    }
    return *this;
  }
  ~IndexList() { release(); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const uint32_t* begin() const { return data(); }
  const uint32_t* end() const { return data() + size_; }
  uint32_t operator[](size_t i) const { return data()[i]; }
  std::vector<uint32_t> to_vector() const { return {begin(), end()}; }

 private:
  static constexpr uint32_t kInline = 3;
  const uint32_t* data() const { return size_ <= kInline ? u_.inline_ : u_.heap_; }
  void assign(const uint32_t* p, size_t n) {
    size_ = static_cast<uint32_t>(n);
    if (n <= kInline) {
      std::copy(p, p + n, u_.inline_);
    } else {
      u_.heap_ = new uint32_t[n];
      std::copy(p, p + n, u_.heap_);
    }
  }
  void release() {
    if (size_ > kInline) delete[] u_.heap_;
    size_ = 0;
  }

  uint32_t size_ = 0;   // number of indices
  union {
    uint32_t inline_[kInline];  // size_ <= kInline
    uint32_t* heap_;            // size_ > kInline
  } u_{};
};

}  // namespace ringmail::engine
