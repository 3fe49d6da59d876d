// A downstream program against an installed euler: builds a tape, runs backward on a tiny function,
// and checks one gradient against its closed form. Exit status 0 = ok.
//
//   f(x) = sum(tanh(x) * x),  df/dx_i = tanh(x_i) + x_i (1 - tanh(x_i)^2)
#include <euler/euler.hpp>

#include <cmath>
#include <cstdio>

int main() {
  euler::Tensor<double> X = euler::Tensor<double>::from({2, 2}, {0.5, -1.0, 2.0, 0.25});
  euler::Tape<double> tape;
  auto x = tape.input(X);
  auto f = euler::sum(euler::tanh(x) * x);
  tape.backward(f);

  double xi = X[2];
  double expected = std::tanh(xi) + xi * (1 - std::tanh(xi) * std::tanh(xi));
  double got = tape.grad(x)[2];
  std::printf("euler_consumer: euler %s (%d.%d.%d)\n", euler::version_string, EULER_VERSION_MAJOR, EULER_VERSION_MINOR,
              EULER_VERSION_PATCH);
  std::printf("euler_consumer: f = %.6f, df/dx[1,0] = %.12f (expected %.12f), %d thread(s)\n", f.value()[0], got,
              expected, euler::num_threads());
  if (!(std::abs(got - expected) <= 1e-12)) {
    std::printf("euler_consumer: gradient mismatch\n");
    return 1;
  }
  return 0;
}
