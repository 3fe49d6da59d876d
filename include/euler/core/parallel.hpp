// euler/core/parallel.hpp: the one place euler runs work on several threads.
//
// parallel_for(n, grain, f) splits [0, n) into contiguous chunks, fixed by n, grain and the thread
// count (never by timing), and calls f(begin, end) on each. Small ranges, and calls made from inside a
// parallel_for, run inline on the calling thread, so nested loops never oversubscribe.
//
// The threads are euler's own pool, not OpenMP, and the reason is measured (docs/performance.md): on a
// laptop or a shared machine other programs take the cores, and an OpenMP region ends in a barrier that
// waits until every thread of the team has been scheduled, even one that had nothing to do. With two
// threads on two busy cores that made a training step ten times slower than one thread. Here the calling
// thread claims chunks itself, workers claim what is left when they wake, and the caller waits only for
// chunks a worker has actually started: if no worker gets a core, the caller does everything, at the
// speed of one thread. Eigen's own threading is off (EIGEN_DONT_PARALLELIZE, set in euler/core/eigen.hpp);
// euler::gemm splits large products over this pool instead.
//
//     euler::set_num_threads(2);
//     euler::parallel_for(n, 4096, [&](int64_t begin, int64_t end) {
//       for (int64_t i = begin; i < end; ++i) y[i] = 2 * x[i];
//     });
#pragma once

#include "euler/core/eigen.hpp"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace euler {

namespace detail {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Is this thread running a chunk of a parallel_for (a worker, or the caller inside its own job)?
inline bool& inside_parallel_for() {
  thread_local bool inside = false;
  return inside;
}

// A pool of worker threads that share one job at a time: chunk indices [0, chunks) of a function.
//
// The job's claim word packs (generation, chunk count, next chunk index). A thread claims a chunk with
// a compare-exchange on the word it read, so a claim succeeds only for a chunk of the generation it
// read, and the count it compares with is that generation's. The job's function is published before the
// word (release) and read after it (acquire); the caller writes the next job's function only after every
// chunk of the current one has finished, which a claimed chunk cannot have, so a thread that claims
// chunk i of generation g calls g's function. Workers spin briefly for the next job, then sleep on a
// futex (std::atomic::wait).
class ThreadPool {
 public:
  static ThreadPool& instance() {
    static ThreadPool pool;
    return pool;
  }
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  ~ThreadPool() { resize(1); }

  int threads() const { return threads_.load(std::memory_order_relaxed); }

  // Threads in all, the calling thread included (so 1 means no workers). When the system cannot
  // start them all, the pool keeps those it started (a working pool) and throws a runtime_error.
  void resize(int threads) {
    threads = std::max(1, threads);
    std::lock_guard<std::mutex> lock(run_mutex_);
    if (threads == threads_.load()) return;
    stop_.store(true);
    wake_.fetch_add(1);
    wake_.notify_all();
    for (std::thread& t : workers_) t.join();
    workers_.clear();
    stop_.store(false);
    try {
      workers_.reserve(size_t(threads - 1));
      for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
    } catch (const std::exception& e) {
      threads_.store(int(workers_.size()) + 1);
      throw std::runtime_error("could start only " + std::to_string(workers_.size() + 1) + " of " + std::to_string(threads) +
                               " threads: " + e.what());
    }
    threads_.store(threads);
  }

  // Calls f(i) for every i in [0, chunks), on the pool's threads and the caller's. Returns when all
  // have finished. A second thread that calls run() while a job is running runs its own chunks inline.
  template <class F>
  void run(int64_t chunks, F& f) {
    std::unique_lock<std::mutex> lock(run_mutex_, std::try_to_lock);
    if (!lock.owns_lock() || workers_.empty() || chunks <= 1 || chunks > kMaxChunks) {
      for (int64_t i = 0; i < chunks; ++i) f(i);
      return;
    }
    call_.store([](void* context, int64_t i) { (*static_cast<F*>(context))(i); }, std::memory_order_relaxed);
    context_.store(&f, std::memory_order_relaxed);
    unfinished_.store(chunks, std::memory_order_relaxed);
    const uint64_t generation = (claim_.load(std::memory_order_relaxed) >> kGenerationShift) + 1;
    claim_.store(generation << kGenerationShift | uint64_t(chunks) << kChunksShift, std::memory_order_release);
    wake_.fetch_add(1, std::memory_order_release);
    wake_.notify_all();
    claim_chunks();
    // Wait for chunks that workers claimed and are still running.
    for (int spins = 0; unfinished_.load(std::memory_order_acquire) != 0; ++spins) {
      if (spins < 4096) cpu_relax();
      else std::this_thread::yield();
    }
  }

 private:
  // The claim word: bits 0-19 the next chunk, 20-39 the chunk count, 40-63 the generation.
  static constexpr int kChunksShift = 20, kGenerationShift = 40;
  static constexpr uint64_t kIndexMask = (uint64_t(1) << kChunksShift) - 1;

 public:
  static constexpr int64_t kMaxChunks = int64_t(kIndexMask);

 private:
  using Call = void (*)(void*, int64_t);

  ThreadPool() = default;

  // Claim and run chunks of the current job until none is left; returns whether it ran any.
  bool claim_chunks() {
    bool ran = false;
    uint64_t claim = claim_.load(std::memory_order_acquire);
    while (true) {
      const uint64_t index = claim & kIndexMask, chunks = (claim >> kChunksShift) & kIndexMask;
      if (index >= chunks) return ran;
      Call call = call_.load(std::memory_order_relaxed);
      void* context = context_.load(std::memory_order_relaxed);
      if (!claim_.compare_exchange_weak(claim, claim + 1, std::memory_order_acq_rel, std::memory_order_acquire)) continue;
      bool& inside = inside_parallel_for();
      inside = true;
      call(context, int64_t(index));
      inside = false;
      ran = true;
      unfinished_.fetch_sub(1, std::memory_order_release);
      claim = claim_.load(std::memory_order_acquire);
    }
  }

  void work() {
    uint32_t seen = wake_.load(std::memory_order_acquire);
    while (!stop_.load(std::memory_order_acquire)) {
      if (claim_chunks()) continue;
      // Nothing to claim: spin a little for the next job (the next op follows within microseconds),
      // then sleep until the caller publishes one.
      bool woke = false;
      for (int spins = 0; spins < kSpins; ++spins) {
        if (wake_.load(std::memory_order_acquire) != seen) {
          woke = true;
          break;
        }
        cpu_relax();
      }
      if (!woke) wake_.wait(seen, std::memory_order_acquire);
      seen = wake_.load(std::memory_order_acquire);
    }
  }

  static constexpr int kSpins = 1 << 13;  // ~50 us of pause instructions

  std::mutex run_mutex_;  // one job at a time; also guards resize
  std::vector<std::thread> workers_;
  std::atomic<int> threads_{1};
  std::atomic<bool> stop_{false};
  std::atomic<uint32_t> wake_{0};
  std::atomic<uint64_t> claim_{0};
  std::atomic<Call> call_{nullptr};
  std::atomic<void*> context_{nullptr};
  std::atomic<int64_t> unfinished_{0};
};

inline int& requested_threads() {
  static int threads = 1;
  return threads;
}

}  // namespace detail

// The most threads set_num_threads accepts: 4 per hardware thread (more only slows every op down).
inline int max_threads() { return 4 * int(std::max(1u, std::thread::hardware_concurrency())); }

// Threads euler uses from now on, the calling thread included (1: everything runs on the caller).
// Throws std::invalid_argument above max_threads(), and std::runtime_error when the system cannot
// start them (euler then keeps the threads it could start).
inline void set_num_threads(int threads) {
  threads = std::max(1, threads);
  if (threads > max_threads())
    throw std::invalid_argument(std::to_string(threads) + " threads is more than " + std::to_string(max_threads()) + " (4 per hardware thread, " +
                                std::to_string(std::max(1u, std::thread::hardware_concurrency())) + " here)");
  try {
    detail::ThreadPool::instance().resize(threads);
  } catch (...) {
    detail::requested_threads() = detail::ThreadPool::instance().threads();
    throw;
  }
  detail::requested_threads() = threads;
}

inline int num_threads() { return detail::requested_threads(); }

inline bool in_parallel_region() { return detail::inside_parallel_for(); }

// Call f(begin, end) on disjoint chunks covering [0, n), one chunk per thread. `grain` is the smallest
// chunk worth a thread. The chunk boundaries depend only on n, grain and num_threads().
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
  int64_t max_chunks = std::max<int64_t>(1, n / std::max<int64_t>(1, grain));
  int64_t chunks = std::min<int64_t>(num_threads(), max_chunks);
  if (chunks <= 1 || in_parallel_region()) {
    f(int64_t(0), n);
    return;
  }
  auto chunk = [&](int64_t i) {
    int64_t begin = n * i / chunks, end = n * (i + 1) / chunks;
    if (begin < end) f(begin, end);
  };
  detail::ThreadPool::instance().run(chunks, chunk);
}

}  // namespace euler
