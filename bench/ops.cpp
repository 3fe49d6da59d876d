// bench/ops.cpp (euler-bench-ops): the tape's overhead over raw Eigen, measured in one run.
//
//   matmul   256x256x256 fp32:  raw  euler::gemm (Eigen GEMM pieces, same threads)  vs  euler::matmul on a tape
//            forward+backward:  raw  C = A B, dA = dC B^T, dB = A^T dC        vs  matmul + Tape::backward(C, dC)
//   exp      1M fp32:           raw  y = x.exp() (Eigen array, same threads)   vs  euler::exp on a tape
//            forward+backward:  raw  y = exp(x), dx = dy * y                   vs  exp + Tape::backward(y, dy)
//   add      1M fp32:           raw  y = a + b                                 vs  euler::add on a tape
//            forward+backward:  raw  y = a + b, da = dy, db = dy               vs  add + Tape::backward(y, dy)
//
// Every tape iteration starts with tape.reset(), so the buffer pool runs in steady state (no heap
// allocation after the first iteration; the bench prints the count to show it). Each figure is the
// median over --reps samples per side, the two sides alternating (raw, tape, tape, raw, ...), each
// sample timing enough iterations to last --min-ms. Both sides use the same thread count
// (euler::set_num_threads; the raw side splits its loops over euler's pool in the same chunks). Prints one line per figure, then one JSON
// line with the ratios (tape / raw; targets: matmul <= 1.10, elementwise <= 2). Never fails on timing.
//
//   ./build/bench/euler-bench-ops [--threads 2] [--reps 21] [--min-ms 20]
#include <euler/euler.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  int threads = 2;
  int reps = 21;
  double min_ms = 20;
};

// Seconds per call of f, over `inner` calls.
template <class F>
double seconds_per_call(F& f, int64_t inner) {
  auto t0 = Clock::now();
  for (int64_t i = 0; i < inner; ++i) f();
  return std::chrono::duration<double>(Clock::now() - t0).count() / double(inner);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Figure {
  std::string key;   // JSON key prefix
  double raw_s = 0;  // median seconds per iteration
  double tape_s = 0;
  double ratio() const { return tape_s / raw_s; }
};

template <class Raw, class TapeSide>
Figure compare(const std::string& key, Raw raw, TapeSide tape, const Options& opt) {
  // Warm up both (fills the buffer pool, faults pages in, wakes the thread pool).
  for (int i = 0; i < 3; ++i) raw(), tape();
  // Iterations per sample: enough for the slower side to last min_ms.
  double one = std::max(seconds_per_call(raw, 3), seconds_per_call(tape, 3));
  int64_t inner = std::max<int64_t>(1, int64_t(opt.min_ms * 1e-3 / std::max(one, 1e-9)));
  std::vector<double> r, t;
  for (int rep = 0; rep < opt.reps; ++rep) {
    if (rep % 2 == 0) {
      r.push_back(seconds_per_call(raw, inner));
      t.push_back(seconds_per_call(tape, inner));
    } else {
      t.push_back(seconds_per_call(tape, inner));
      r.push_back(seconds_per_call(raw, inner));
    }
  }
  return {key, median(r), median(t)};
}

void report(const Figure& f, const char* what, double flops, double target) {
  std::printf("%-44s raw %9.3f ms", what, f.raw_s * 1e3);
  if (flops > 0) std::printf(" (%6.1f GFLOP/s)", flops / f.raw_s * 1e-9);
  std::printf("   tape %9.3f ms", f.tape_s * 1e3);
  if (flops > 0) std::printf(" (%6.1f GFLOP/s)", flops / f.tape_s * 1e-9);
  std::printf("   ratio %.3f (target <= %.2f)\n", f.ratio(), target);
  std::fflush(stdout);
}

// Raw side of the elementwise figures: Eigen array expressions on the same contiguous chunks, over the
// same threads, as the tape's parallel_for (one chunk per thread), but with no tape around them.
template <class F>
void raw_chunks(int64_t n, int threads, F&& f) {
  euler::parallel_for(n, std::max<int64_t>(1, n / std::max(1, threads)), f);
}

using Arr = Eigen::Array<float, Eigen::Dynamic, 1>;
Eigen::Map<Arr> seg(const euler::Tensor<float>& t, int64_t i0, int64_t i1) { return {t.data() + i0, i1 - i0}; }

// Returns -1 to go on, else the exit status (0 after --help, 2 on a bad argument).
int parse(int argc, char** argv, Options& opt) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* name) -> const char* {
      std::string prefix = std::string(name) + "=";
      if (a.rfind(prefix, 0) == 0) return argv[i] + prefix.size();
      if (a == name && i + 1 < argc) return argv[++i];
      return nullptr;
    };
    if (const char* v = value("--threads")) opt.threads = std::atoi(v);
    else if (const char* v = value("--reps")) opt.reps = std::atoi(v);
    else if (const char* v = value("--min-ms")) opt.min_ms = std::atof(v);
    else {
      std::printf("usage: %s [--threads N (2)] [--reps R (21)] [--min-ms MS (20)]\n", argv[0]);
      return a == "--help" || a == "-h" ? 0 : 2;
    }
  }
  opt.threads = std::max(1, opt.threads);
  opt.reps = std::max(1, opt.reps);
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (int status = parse(argc, argv, opt); status >= 0) return status;
  euler::set_num_threads(opt.threads);
  std::printf("euler-bench-ops: %d thread(s) (euler pool %d, Eigen %d), %s, median of %d samples of >= %.0f ms\n",
              opt.threads, euler::num_threads(), Eigen::nbThreads(), Eigen::SimdInstructionSetsInUse(), opt.reps,
              opt.min_ms);

  std::mt19937 rng(7);
  std::vector<Figure> figures;
  double checksum = 0;  // keeps every result observable

  // ---- (a) matmul 256 x 256 x 256 -------------------------------------------------------------
  {
    const int64_t n = 256;
    const double flops = 2.0 * n * n * n;
    using T = euler::Tensor<float>;
    T A = T::uniform({n, n}, rng), B = T::uniform({n, n}, rng), dC = T::uniform({n, n}, rng);
    T C({n, n}), dA({n, n}), dB({n, n});
    euler::Tape<float> tape;

    // The raw side calls the kernel the op calls (euler::gemm splits the product over the same threads
    // as the tape's matmul), so the ratio is the tape's own cost.
    auto raw_fwd = [&] { euler::gemm(A.data(), n, n, false, B.data(), n, n, false, C.data(), false); };
    auto tape_fwd = [&] {
      tape.reset();
      auto a = tape.input(A), b = tape.input(B);
      auto c = euler::matmul(a, b);
      checksum += c.value()[0];
    };
    Figure f = compare("matmul_fwd", raw_fwd, tape_fwd, opt);
    report(f, "matmul 256x256x256 forward", flops, 1.10);
    figures.push_back(f);

    auto raw_fwd_bwd = [&] {
      euler::gemm(A.data(), n, n, false, B.data(), n, n, false, C.data(), false);
      euler::gemm(dC.data(), n, n, false, B.data(), n, n, true, dA.data(), false);
      euler::gemm(A.data(), n, n, true, dC.data(), n, n, false, dB.data(), false);
    };
    auto tape_fwd_bwd = [&] {
      tape.reset();
      auto a = tape.input(A), b = tape.input(B);
      auto c = euler::matmul(a, b);
      tape.backward(c, dC);
      checksum += tape.grad(a)[0] + tape.grad(b)[0];
    };
    f = compare("matmul_fwd_bwd", raw_fwd_bwd, tape_fwd_bwd, opt);
    report(f, "matmul 256^3 forward+backward (3 GEMMs)", 3 * flops, 1.10);
    figures.push_back(f);
    size_t allocs = tape.pool().heap_allocations();
    tape_fwd_bwd();
    std::printf("  (pool: %zu buffers ever allocated, %zu more in one more step)\n", allocs,
                tape.pool().heap_allocations() - allocs);
    checksum += C[0] + dA[0] + dB[0];
  }

  // ---- (b) elementwise over 1M floats --------------------------------------------------------
  {
    const int64_t n = int64_t(1) << 20;
    const int th = opt.threads;
    using T = euler::Tensor<float>;
    T X = T::uniform({n}, rng), Y = T::uniform({n}, rng), dY = T::uniform({n}, rng);
    T out({n}), dX({n}), dX2({n});
    euler::Tape<float> tape;

    // exp
    auto raw_exp = [&] { raw_chunks(n, th, [&](int64_t i0, int64_t i1) { seg(out, i0, i1) = seg(X, i0, i1).exp(); }); };
    auto tape_exp = [&] {
      tape.reset();
      auto y = euler::exp(tape.input(X));
      checksum += y.value()[0];
    };
    Figure f = compare("exp_fwd", raw_exp, tape_exp, opt);
    report(f, "exp 1M fp32 forward", 0, 2.0);
    figures.push_back(f);

    auto raw_exp_bwd = [&] {
      raw_chunks(n, th, [&](int64_t i0, int64_t i1) {
        seg(out, i0, i1) = seg(X, i0, i1).exp();
        seg(dX, i0, i1) = seg(dY, i0, i1) * seg(out, i0, i1);
      });
    };
    auto tape_exp_bwd = [&] {
      tape.reset();
      auto x = tape.input(X);
      auto y = euler::exp(x);
      tape.backward(y, dY);
      checksum += tape.grad(x)[0];
    };
    f = compare("exp_fwd_bwd", raw_exp_bwd, tape_exp_bwd, opt);
    report(f, "exp 1M fp32 forward+backward", 0, 2.0);
    figures.push_back(f);

    // add
    auto raw_add = [&] { raw_chunks(n, th, [&](int64_t i0, int64_t i1) { seg(out, i0, i1) = seg(X, i0, i1) + seg(Y, i0, i1); }); };
    auto tape_add = [&] {
      tape.reset();
      auto y = tape.input(X) + tape.input(Y);
      checksum += y.value()[0];
    };
    f = compare("add_fwd", raw_add, tape_add, opt);
    report(f, "add 1M fp32 forward", 0, 2.0);
    figures.push_back(f);

    auto raw_add_bwd = [&] {
      raw_chunks(n, th, [&](int64_t i0, int64_t i1) {
        seg(out, i0, i1) = seg(X, i0, i1) + seg(Y, i0, i1);
        seg(dX, i0, i1) = seg(dY, i0, i1);
        seg(dX2, i0, i1) = seg(dY, i0, i1);
      });
    };
    auto tape_add_bwd = [&] {
      tape.reset();
      auto a = tape.input(X), b = tape.input(Y);
      auto y = a + b;
      tape.backward(y, dY);
      checksum += tape.grad(a)[0] + tape.grad(b)[0];
    };
    f = compare("add_fwd_bwd", raw_add_bwd, tape_add_bwd, opt);
    report(f, "add 1M fp32 forward+backward", 0, 2.0);
    figures.push_back(f);
    checksum += out[0] + dX[0] + dX2[0];
  }

  std::printf("{\"bench\":\"ops\",\"threads\":%d", opt.threads);
  for (const Figure& f : figures)
    std::printf(",\"%s_ratio\":%.4f,\"%s_raw_ms\":%.4f,\"%s_tape_ms\":%.4f", f.key.c_str(), f.ratio(), f.key.c_str(),
                f.raw_s * 1e3, f.key.c_str(), f.tape_s * 1e3);
  std::printf(",\"checksum\":%.6g}\n", checksum);
  return 0;
}
