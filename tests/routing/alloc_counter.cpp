// Counting replacement of the global operator new/delete (see alloc_counter.h). Kept in its own
// file so the compiler never sees these bodies next to the code under test.
#include "tests/routing/alloc_counter.h"

#include <atomic>
#include <cstdlib>
#include <new>

namespace {
std::atomic<bool> g_counting{false};  // set between start and stop
std::atomic<int> g_allocations{0};    // allocations seen while counting
}  // namespace

// Every non-aligned form is replaced so that new and delete always pair with malloc and free.
static void* counted_malloc(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  return std::malloc(n ? n : 1);
}
void* operator new(std::size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  if (void* p = counted_malloc(n)) return p;
  throw std::bad_alloc();
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counted_malloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }

namespace ringmail::testing {

void start_counting_allocations() {
  g_allocations = 0;
  g_counting = true;
}

int stop_counting_allocations() {
  g_counting = false;
  return g_allocations.load();
}

}  // namespace ringmail::testing
