// The thread pool (euler/core/parallel.hpp) and the split GEMM (euler/ops/matmul.hpp): every index is
// visited exactly once for any thread count, nested loops run inline, several calling threads at once
// are safe, resizing works, and a split product equals the unsplit one (and has the same bits for any
// thread count).
#include <doctest/doctest.h>

#include <euler/euler.hpp>

#include <atomic>
#include <random>
#include <thread>
#include <vector>

namespace test_parallel {  // this file's own names: see "unity build" in CMakeLists.txt

using namespace euler;

namespace {

// Runs the body with `threads` threads, then restores the previous count.
template <class F>
void with_threads(int threads, F&& body) {
  int previous = num_threads();
  set_num_threads(threads);
  body();
  set_num_threads(previous);
}

}  // namespace

TEST_CASE("parallel_for visits every index exactly once, for any thread count and grain") {
  for (int threads : {1, 2, 3, 8}) {
    with_threads(threads, [&] {
      for (int64_t n : {int64_t(0), int64_t(1), int64_t(7), int64_t(1000), int64_t(100003)}) {
        for (int64_t grain : {int64_t(1), int64_t(64), int64_t(1) << 20}) {
          std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
          std::atomic<int> calls{0};
          parallel_for(n, grain, [&](int64_t begin, int64_t end) {
            CHECK(begin < end);
            ++calls;
            for (int64_t i = begin; i < end; ++i) ++hits[size_t(i)];
          });
          int wrong = 0;
          for (auto& h : hits) wrong += h.load() != 1;
          CAPTURE(threads);
          CAPTURE(n);
          CAPTURE(grain);
          CHECK(wrong == 0);
          CHECK(calls.load() <= threads);
        }
      }
    });
  }
}

TEST_CASE("parallel_for inside parallel_for runs inline on the calling thread") {
  with_threads(4, [&] {
    std::atomic<int> inner_total{0}, nested_inline{0};
    parallel_for(4, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        CHECK(in_parallel_region());
        std::thread::id outer = std::this_thread::get_id();
        parallel_for(1000, 1, [&](int64_t i0, int64_t i1) {
          if (std::this_thread::get_id() == outer) ++nested_inline;
          inner_total += int(i1 - i0);
        });
      }
    });
    CHECK(inner_total.load() == 4000);
    CHECK(nested_inline.load() == 4);  // each nested loop was one inline call
    CHECK(!in_parallel_region());
  });
}

TEST_CASE("parallel_for from several threads at once, thousands of small jobs, and resizing in between") {
  with_threads(2, [&] {
    std::atomic<int64_t> total{0};
    auto hammer = [&] {
      for (int job = 0; job < 2000; ++job)
        parallel_for(64, 1, [&](int64_t i0, int64_t i1) { total += i1 - i0; });
    };
    std::thread other(hammer);
    hammer();
    other.join();
    CHECK(total.load() == 2 * 2000 * 64);
    for (int threads : {3, 1, 2}) {
      set_num_threads(threads);
      CHECK(num_threads() == threads);
      total = 0;
      hammer();
      CHECK(total.load() == 2000 * 64);
    }
  });
}

TEST_CASE("an exception-free body sees the values the caller wrote before parallel_for, and the caller sees its writes") {
  with_threads(2, [&] {
    for (int round = 0; round < 200; ++round) {
      std::vector<int> in(4096, round), out(4096, -1);
      parallel_for(4096, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) out[size_t(i)] = in[size_t(i)] + 1;
      });
      int wrong = 0;
      for (int v : out) wrong += v != round + 1;
      REQUIRE(wrong == 0);
    }
  });
}

TEST_CASE("gemm_split: pieces by size alone, along rows, columns or the inner dimension") {
  CHECK(gemm_split(50, 50, 32).axis == GemmSplit::kNone);           // attention: one piece
  CHECK(gemm_split(12800, 64, 64).axis == GemmSplit::kRows);        // a linear layer
  CHECK(gemm_split(64, 3416, 64).axis == GemmSplit::kCols);         // few rows, many items
  CHECK(gemm_split(64, 64, 12800).axis == GemmSplit::kInner);       // a weight gradient
  CHECK(gemm_split(12800, 64, 64).pieces > 1);
  CHECK(gemm_split(12800, 64, 64).pieces <= 16);
}

TEST_CASE("gemm: split products equal the plain Eigen product, in every transpose, with the same bits for any thread count") {
  std::mt19937 gen(5);
  std::uniform_real_distribution<float> u(-1, 1);
  struct Case { int64_t m, n, k; };
  for (Case cs : {Case{3000, 48, 64}, Case{40, 2500, 64}, Case{48, 40, 9000}, Case{7, 5, 3}}) {
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (bool accumulate : {false, true}) {
          const int64_t ar = ta ? cs.k : cs.m, ac = ta ? cs.m : cs.k, br = tb ? cs.n : cs.k, bc = tb ? cs.k : cs.n;
          RowMatrix<float> A(ar, ac), B(br, bc), C0(cs.m, cs.n);
          for (float& x : A.reshaped()) x = u(gen);
          for (float& x : B.reshaped()) x = u(gen);
          for (float& x : C0.reshaped()) x = u(gen);
          RowMatrix<float> opA = ta ? RowMatrix<float>(A.transpose()) : A, opB = tb ? RowMatrix<float>(B.transpose()) : B;
          RowMatrix<float> expected = (accumulate ? C0 : RowMatrix<float>::Zero(cs.m, cs.n)) + opA * opB;
          std::vector<RowMatrix<float>> results;
          for (int threads : {1, 2, 5}) {
            with_threads(threads, [&] {
              RowMatrix<float> C = C0;
              gemm(A.data(), ar, ac, ta, B.data(), br, bc, tb, C.data(), accumulate);
              results.push_back(C);
            });
          }
          CAPTURE(cs.m);
          CAPTURE(cs.n);
          CAPTURE(cs.k);
          CAPTURE(ta);
          CAPTURE(tb);
          CHECK((results[0] - expected).cwiseAbs().maxCoeff() < 1e-3f * std::sqrt(float(cs.k)));
          CHECK(results[0] == results[1]);  // bitwise
          CHECK(results[0] == results[2]);
        }
  }
}

}  // namespace test_parallel
