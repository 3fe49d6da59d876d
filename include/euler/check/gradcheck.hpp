// euler/check/gradcheck.hpp: finite-difference gradient checks, for euler's ops and for your own.
//
// The check projects the output on a random direction w (loss = sum(w * f(x))), runs one backward
// for the analytic gradient, then perturbs every input element by +-h and takes central differences
// in double precision. An element passes when
//     |analytic - numeric| / max(1, |analytic|, |numeric|) <= tolerance,
// i.e. relative error for gradients above 1 in size, absolute error below (where cancellation would
// make a relative error meaningless). The default tolerance is 1e-6.
//
//     using euler::Tensor; using euler::Var; using euler::Tape;
//     auto result = euler::check::gradcheck(
//         [](Tape<double>&, std::span<const Var<double>> x) { return euler::exp(x[0]) * x[1]; },
//         {Tensor<double>::from({3}, {0.1, 0.2, 0.3}), Tensor<double>::from({3}, {1, 2, 3})});
//     if (!result.ok) std::cerr << result.report;
#pragma once

#include <cmath>
#include <functional>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <vector>

#include "euler/core/tape.hpp"

namespace euler::check {

struct GradcheckOptions {
  double step = 1e-6;       // h of the central difference
  double tolerance = 1e-6;  // see the formula above
  uint64_t seed = 1234;     // for the projection direction w
};

struct GradcheckResult {
  bool ok = true;
  double max_error = 0;   // worst element's error by the formula above
  std::string worst;      // where it was, e.g. "x[1] element 3: analytic 0.25, numeric 0.5"
  std::string report;     // one line per checked tensor
  int64_t elements = 0;   // how many elements were checked
};

// One tensor to differentiate with respect to: its values (perturbed in place, then restored) and
// the buffer that backward fills with its gradient.
struct Wrt {
  std::string name;
  TensorView<double> value;
  TensorView<double> grad;
};

// General form: `forward(tape)` builds the output on the tape, reading every Wrt's value through
// tape.param(value, grad) (or any other way, as long as backward fills `grad`).
template <class Forward>
GradcheckResult gradcheck_wrt(Forward&& forward, const std::vector<Wrt>& wrt, GradcheckOptions options = {}) {
  GradcheckResult result;
  Tape<double> tape;
  for (const Wrt& x : wrt) std::fill(x.grad.begin(), x.grad.end(), 0.0);

  // Analytic: backward of the projection sum(w * out).
  Var<double> out = forward(tape);
  std::mt19937_64 rng(options.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> w(size_t(out.numel()));
  for (double& v : w) v = normal(rng);
  tape.backward(out, TensorView<const double>{out.shape(), w.data()});

  auto projected = [&]() {
    tape.reset();
    NoGrad<double> no_grad(tape);
    Var<double> o = forward(tape);
    double s = 0;
    for (int64_t i = 0; i < o.numel(); ++i) s += w[size_t(i)] * o.value()[i];
    return s;
  };
  std::ostringstream report;
  for (const Wrt& x : wrt) {
    std::vector<double> analytic(x.grad.begin(), x.grad.end());
    double worst_here = 0;
    for (int64_t i = 0; i < x.value.numel(); ++i) {
      double saved = x.value[i];
      x.value[i] = saved + options.step;
      double plus = projected();
      x.value[i] = saved - options.step;
      double minus = projected();
      x.value[i] = saved;
      double numeric = (plus - minus) / (2 * options.step);
      double a = analytic[size_t(i)];
      double err = std::abs(a - numeric) / std::max({1.0, std::abs(a), std::abs(numeric)});
      if (!(err <= options.tolerance)) result.ok = false;  // NaN fails too
      if (!(err <= result.max_error)) {
        result.max_error = err;
        std::ostringstream where;
        where << x.name << " element " << i << ": analytic " << a << ", numeric " << numeric;
        result.worst = where.str();
      }
      worst_here = std::max(worst_here, err);
      ++result.elements;
    }
    report << x.name << " " << x.value.shape.str() << ": max error " << worst_here << "\n";
  }
  result.report = report.str() + (result.ok ? "ok" : "FAILED, worst " + result.worst) + "\n";
  return result;
}

// Convenient form for a function of tensors: f(tape, vars) with one Var per input, in order.
template <class F>
GradcheckResult gradcheck(F&& f, std::vector<Tensor<double>> inputs, GradcheckOptions options = {}) {
  std::vector<Tensor<double>> grads;
  std::vector<Wrt> wrt;
  for (size_t i = 0; i < inputs.size(); ++i) {
    grads.push_back(Tensor<double>::zeros(inputs[i].shape()));
    wrt.push_back({"x[" + std::to_string(i) + "]", inputs[i].view(), grads[i].view()});
  }
  std::vector<Var<double>> vars(inputs.size());
  auto forward = [&](Tape<double>& tape) {
    for (size_t i = 0; i < inputs.size(); ++i) vars[i] = tape.param(inputs[i].view(), grads[i].view(), "x");
    return f(tape, std::span<const Var<double>>(vars));
  };
  return gradcheck_wrt(forward, wrt, options);
}

}  // namespace euler::check
