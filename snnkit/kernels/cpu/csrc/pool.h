// A pool of large output buffers for the neuron kernels (neuron_*.cpp; one pool per file).
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/from_blob.h>
#include <sys/mman.h>

#include <cstddef>
#include <cstdlib>
#include <mutex>
#include <utility>
#include <vector>

namespace snnkit {
namespace {

// A small cache of large output buffers. Fresh multi-megabyte allocations are mmap'ed and
// page-faulted (and zeroed by the OS) on every call, which costs more than the kernels
// themselves; outputs made by pooled_empty_like return their memory here when the tensor dies and
// the next call of the same size reuses it. At most POOL_SLOTS buffers / POOL_BYTES are kept.
constexpr size_t POOL_MIN = size_t(1) << 20;     // smaller tensors use the ordinary allocator
constexpr size_t POOL_BYTES = size_t(1) << 30;
constexpr size_t POOL_SLOTS = 8;
constexpr size_t HUGE_PAGE = size_t(1) << 21;

struct Pool {
  std::mutex mutex;
  std::vector<std::pair<size_t, void*>> free;
  size_t held = 0;
};

Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: tensors may die after static destruction
  return *p;
}

void pool_put(void* ptr, size_t bytes) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    if (p.free.size() < POOL_SLOTS && p.held + bytes <= POOL_BYTES) {
      p.free.emplace_back(bytes, ptr);
      p.held += bytes;
      return;
    }
  }
  std::free(ptr);
}

void* pool_get(size_t bytes) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    for (size_t i = 0; i < p.free.size(); ++i) {
      if (p.free[i].first == bytes) {
        void* ptr = p.free[i].second;
        p.free.erase(p.free.begin() + static_cast<std::ptrdiff_t>(i));
        p.held -= bytes;
        return ptr;
      }
    }
  }
  void* ptr = std::aligned_alloc(HUGE_PAGE, (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE);
  TORCH_CHECK(ptr != nullptr, "snnkit: out of memory allocating ", bytes, " bytes");
#ifdef MADV_HUGEPAGE
  madvise(ptr, (bytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE, MADV_HUGEPAGE);
#endif
  return ptr;
}

at::Tensor pooled_empty_like(const at::Tensor& like) {
  const size_t bytes = static_cast<size_t>(like.numel()) * like.element_size();
  if (bytes < POOL_MIN) return at::empty_like(like, at::MemoryFormat::Contiguous);
  void* ptr = pool_get(bytes);
  return at::from_blob(ptr, like.sizes(), [bytes](void* q) { pool_put(q, bytes); },
                       like.options());
}

}  // namespace
}  // namespace snnkit
