// A pool of large output buffers for the core kernels (used by bindings.cpp only).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <cstdint>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

namespace snnkit {
namespace {

// A small cache of large output buffers. Fresh multi-megabyte allocations are mmap'ed and
// page-faulted (and zeroed by the OS) on every call, which costs more than the kernels
// themselves; outputs made by pooled_empty_like return their memory here when the tensor dies and
// the next call of the same size reuses it. At most POOL_SLOTS buffers / POOL_BYTES are kept,
// and an idle buffer that none of the next POOL_AGE requests reused is unmapped: sizes that do
// not recur (a last partial batch, an evaluation batch) must not stay resident for the rest of
// the process. Buffers are mmap'ed and munmap'ed directly, so freed memory goes back to the OS
// (free() could keep it in glibc's heap once the dynamic mmap threshold has grown past it).
constexpr size_t POOL_MIN = size_t(1) << 20;     // smaller tensors use the ordinary allocator
constexpr size_t POOL_BYTES = size_t(1) << 30;
constexpr size_t POOL_SLOTS = 8;
constexpr uint64_t POOL_AGE = 64;
constexpr size_t HUGE_PAGE = size_t(1) << 21;

struct Pool {
  std::mutex mutex;
  std::vector<std::tuple<size_t, void*, uint64_t>> free;  // bytes, buffer, request count
  size_t held = 0;
  uint64_t requests = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: tensors may die after static destruction
  return *p;
}

size_t mapped_bytes(size_t bytes) { return (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE; }

// Huge-page aligned anonymous memory (a larger mapping trimmed to the aligned span).
void* map_buffer(size_t bytes) {
  const size_t len = mapped_bytes(bytes), span = len + HUGE_PAGE;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  TORCH_CHECK(raw != MAP_FAILED, "snnkit: out of memory allocating ", bytes, " bytes");
  const uintptr_t a = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t b = (a + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE;
  if (b > a) munmap(raw, b - a);
  if (a + span > b + len) munmap(reinterpret_cast<void*>(b + len), a + span - b - len);
#ifdef MADV_HUGEPAGE
  madvise(reinterpret_cast<void*>(b), len, MADV_HUGEPAGE);
#endif
  return reinterpret_cast<void*>(b);
}

void unmap_buffer(void* ptr, size_t bytes) { munmap(ptr, mapped_bytes(bytes)); }

// Takes the idle buffers no request reused within POOL_AGE requests (the caller holds the lock).
std::vector<std::pair<void*, size_t>> take_stale(Pool& p) {
  std::vector<std::pair<void*, size_t>> stale;
  for (size_t i = p.free.size(); i-- > 0;) {
    auto [bytes, ptr, since] = p.free[i];
    if (p.requests - since > POOL_AGE) {
      stale.emplace_back(ptr, bytes);
      p.held -= bytes;
      p.free.erase(p.free.begin() + static_cast<std::ptrdiff_t>(i));
    }
  }
  return stale;
}

void pool_put(void* ptr, size_t bytes) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    if (p.free.size() < POOL_SLOTS && p.held + bytes <= POOL_BYTES) {
      p.free.emplace_back(bytes, ptr, p.requests);
      p.held += bytes;
      return;
    }
  }
  unmap_buffer(ptr, bytes);
}

void* pool_get(size_t bytes) {
  Pool& p = pool();
  void* found = nullptr;
  std::vector<std::pair<void*, size_t>> stale;
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    ++p.requests;
    for (size_t i = 0; i < p.free.size(); ++i) {
      if (std::get<0>(p.free[i]) == bytes) {
        found = std::get<1>(p.free[i]);
        p.free.erase(p.free.begin() + static_cast<std::ptrdiff_t>(i));
        p.held -= bytes;
        break;
      }
    }
    stale = take_stale(p);
  }
  for (auto [ptr, size] : stale) unmap_buffer(ptr, size);
  return found != nullptr ? found : map_buffer(bytes);
}

// A contiguous tensor of `sizes` with `options`, its memory from the pool when large.
at::Tensor pooled_empty(at::IntArrayRef sizes, const at::TensorOptions& options) {
  int64_t numel = 1;
  for (int64_t s : sizes) numel *= s;
  const size_t bytes = static_cast<size_t>(numel) * options.dtype().itemsize();
  if (bytes < POOL_MIN) return at::empty(sizes, options);
  void* ptr = pool_get(bytes);
  return at::from_blob(ptr, sizes, [bytes](void* q) { pool_put(q, bytes); }, options);
}

at::Tensor pooled_empty_like(const at::Tensor& like) {
  return pooled_empty(like.sizes(), like.options());
}

}  // namespace
}  // namespace snnkit
