// A fixed-size array of trivially copyable elements in its own anonymous mapping, with
// transparent huge pages requested (MADV_HUGEPAGE) once it is 2 MiB or more. The routing table
// keeps its hash slots and candidate lists here so that a lookup over a 100k-space table does
// not miss in the TLB.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace ringmail::routing {

template <typename T>
class HugePageArray {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);

 public:
  HugePageArray() = default;
  HugePageArray(const HugePageArray&) = delete;
  HugePageArray& operator=(const HugePageArray&) = delete;
  HugePageArray(HugePageArray&& o) noexcept { swap(o); }
  HugePageArray& operator=(HugePageArray&& o) noexcept {
    swap(o);
    return *this;
  }
  ~HugePageArray() {
    if (data_ != nullptr) munmap(data_, mapped_);
  }

  // Maps room for `count` zero-filled elements; false if the mapping fails.
  bool allocate(size_t count) {
    constexpr size_t kHugePage = size_t{2} << 20;
    constexpr size_t kPage = 4096;
    size_t bytes = count * sizeof(T);
    if (bytes == 0) bytes = sizeof(T);
    // Small arrays (small tables, tests) stay in ordinary pages: a huge page would waste memory.
    const bool huge = bytes >= kHugePage;
    const size_t unit = huge ? kHugePage : kPage;
    size_t mapped = (bytes + unit - 1) / unit * unit;
    void* p = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return false;
    if (huge) madvise(p, mapped, MADV_HUGEPAGE);  // a hint; without THP the array still works
    HugePageArray fresh;
    fresh.data_ = static_cast<T*>(p);
    fresh.size_ = count;
    fresh.mapped_ = mapped;
    swap(fresh);
    return true;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }

 private:
  void swap(HugePageArray& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(mapped_, o.mapped_);
  }

  T* data_ = nullptr;  // start of the mapping (anonymous memory is zero-filled)
  size_t size_ = 0;    // elements
  size_t mapped_ = 0;  // bytes mapped, a multiple of the page size used
};

}  // namespace ringmail::routing
